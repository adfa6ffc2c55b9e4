//! Built-in user verification end to end: a real fido2d with `--user-verification pam`, a real
//! PAM stack (pam_exec checking the secret, pam_deny/pam_permit as Debian's common-auth does),
//! the real `fido2ctl agent --terminal` relaying PAM's question, and python-fido2 as the
//! platform (getUVRetries, getPinUvAuthTokenUsingUvWithPermissions, makeCredential with uv).
//!
//! Runs as root: it installs a PAM service of its own under /etc/pam.d for the test's length.

use fido2d_tests::tiers::{skip, Tier};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use fido2d_tests::{fido2ctl_bin, process_memory, run_with_timeout, uv_probe, Daemon, Watched};

const SECRET: &str = "correct horse battery";
const WAIT: Duration = Duration::from_secs(30);

/// A PAM service that accepts exactly [`SECRET`], removed on drop.
struct PamService {
    name: String,
    _dir: tempfile::TempDir,
}

impl PamService {
    fn install() -> PamService {
        // SAFETY: getuid(2) has no preconditions.
        assert_eq!(
            unsafe { libc::getuid() },
            0,
            "this test installs a PAM service: run the suite as root (as .ci/run does)"
        );
        let dir = tempfile::tempdir().unwrap();
        let check = dir.path().join("check-secret");
        std::fs::write(
            &check,
            format!("#!/bin/sh\nIFS= read -r secret\n[ \"$secret\" = \"{SECRET}\" ]\n"),
        )
        .unwrap();
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&check, std::fs::Permissions::from_mode(0o755)).unwrap();
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let name = format!("fido2d-uv-test-{}", std::process::id());
        std::fs::write(
            Path::new("/etc/pam.d").join(&name),
            format!(
                "auth [success=1 default=ignore] pam_exec.so expose_authtok quiet {}\n\
                 auth requisite pam_deny.so\n\
                 auth required pam_permit.so\n\
                 account required pam_permit.so\n",
                check.display()
            ),
        )
        .expect("write a PAM service under /etc/pam.d");
        PamService { name, _dir: dir }
    }
}

impl Drop for PamService {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(Path::new("/etc/pam.d").join(&self.name));
    }
}

fn start_agent(socket: PathBuf) -> Watched {
    let mut agent = Watched::spawn(
        Command::new(fido2ctl_bin())
            .arg("--socket")
            .arg(socket)
            .args(["agent", "--terminal"]),
    );
    agent.wait_for("connected to fido2d");
    agent
}

/// Runs `action` while the agent answers the verifier's question with `answer`.
fn probe_answering(daemon: &Daemon, agent: &mut Watched, action: &str, answer: &str) -> String {
    std::thread::scope(|scope| {
        let result = scope.spawn(|| uv_probe(daemon, action));
        let prompt = agent.wait_for("verify that it is you");
        assert!(!prompt.is_empty());
        agent.wait_for("fido2d checks your login");
        agent.type_line(answer);
        result.join().unwrap()
    })
}

#[test]
fn the_login_secret_checked_through_pam_is_the_keys_user_verification() {
    if skip(Tier::Udp) {
        return;
    }
    let pam = PamService::install();
    let daemon = Daemon::start(&[
        "--presence",
        "agent",
        "--owner",
        "0",
        "--user-verification",
        "pam",
        "--pam-service",
        &pam.name,
    ]);
    let mut agent = start_agent(daemon.control_socket());

    let info = uv_probe(&daemon, "info");
    let before = uv_probe(&daemon, "retries");
    let wrong = probe_answering(&daemon, &mut agent, "token", "not the secret");
    let after_wrong = uv_probe(&daemon, "retries");
    let refused = probe_answering(&daemon, &mut agent, "token", "");
    let right = probe_answering(&daemon, &mut agent, "token", SECRET);
    let after_right = uv_probe(&daemon, "retries");
    let registered = probe_answering(&daemon, &mut agent, "register", SECRET);

    // getInfo: uv, uvModality = passcode external (FIDO registry 0x800).
    assert_eq!(info, "uv=True modality=2048 attempts=3");
    assert_eq!(before, "retries=8");
    assert_eq!(wrong, "status=0x3f", "CTAP2_ERR_UV_INVALID");
    assert_eq!(after_wrong, "retries=7", "a wrong secret costs one uvRetry");
    assert_eq!(
        refused, "status=0x27",
        "refusing in the agent is OPERATION_DENIED"
    );
    assert_eq!(right, "token=ok");
    assert_eq!(
        after_right, "retries=8",
        "a verified user gets every try back"
    );
    // authData flags: UP (0x01) | UV (0x04) | AT (0x40).
    assert_eq!(registered, "flags=0x45");
    daemon.logs_after("user verification", 1);
    assert!(
        !daemon.logs().contains(SECRET),
        "the secret must never reach the log"
    );
    // Every copy of the typed secret was wiped once used: the agent's (the line it read, the
    // JSON it sent) and the daemon's (the line it received, the reply it decoded, the C string
    // handed to PAM). Both still run, with their heaps as they are.
    for (who, pid) in [("fido2d", daemon.pid()), ("the agent", agent.pid())] {
        let hits = process_memory::occurrences(pid, SECRET.as_bytes());
        assert!(
            hits.is_empty(),
            "the secret is still in the memory of {who}: {hits:?}"
        );
    }
}

#[test]
fn user_verification_needs_the_agent() {
    if skip(Tier::Udp) {
        return;
    }
    let outcome = run_with_timeout(
        Command::new(fido2d_tests::fido2d_bin()).args([
            "--config",
            "/dev/null",
            "--transport",
            "udp",
            "--state-dir",
            "/nonexistent/fido2d-test",
            "--presence",
            "deny",
            "--user-verification",
            "pam",
        ]),
        WAIT,
    );

    assert!(!outcome.success());
    assert!(
        outcome.stderr.contains("needs --presence agent"),
        "{}",
        outcome.stderr
    );
}
