//! How fido2d picks its keystore at start (`--keystore auto|tpm|file`, `--tcti`) and closes it
//! at stop, against a real TPM 2.0 simulator (swtpm), nothing at all, and an endpoint that
//! accepts connections and never answers.

use fido2d_tests::tiers::{skip, Tier};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use std::process::Command;

use fido2d_tests::swtpm::{SilentEndpoint, Swtpm};
use fido2d_tests::{fido2ctl_bin, run_with_timeout, Daemon};

/// Generous: a refusal takes well under a second, a TPM timeout the given --tpm-timeout.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(20);

fn state_dir() -> (tempfile::TempDir, PathBuf) {
    use std::os::unix::fs::PermissionsExt as _;
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("state");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    (temp, dir)
}

fn closed_port_tcti() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("swtpm:host=127.0.0.1,port={port}")
}

fn is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).unwrap().next().is_none()
}

/// The start-up log's one line about the keystore: what was opened and why. A second line
/// (say, a TPM named and then the file taken) would be two decisions for one.
fn keystore_line(logs: &str) -> &str {
    let lines: Vec<&str> = logs
        .lines()
        .filter(|l| {
            // `<time> <level> <target>: <message>`
            let message = l.split_once(": ").map_or("", |(_, m)| m);
            message.starts_with("keystore") || message.starts_with("TPM answered")
        })
        .collect();
    assert_eq!(lines.len(), 1, "one keystore line:\n{logs}");
    lines[0]
}

fn stop(mut daemon: Daemon) {
    let status = daemon.stop();
    assert!(status.success(), "fido2d exited with {status}");
}

#[test]
fn auto_takes_the_tpm_when_it_answers() {
    if skip(Tier::Tpm) {
        return;
    }
    let tpm = Swtpm::start();
    let (_temp, dir) = state_dir();

    let daemon = Daemon::builder()
        .state_dir(&dir)
        .args(&["--tcti", &tpm.tcti()])
        .start();

    let logs = daemon.logs();
    let line = keystore_line(&logs);
    assert!(
        line.contains("keystore: tpm (manufacturer IBM, vendor \"SW TPM\", firmware "),
        "{line}"
    );
    assert!(line.contains("0 discoverable credentials"), "{line}");
    assert!(
        line.ends_with(", because a new state directory, and a TPM is preferred"),
        "{line}"
    );
    assert!(dir.join("master.tpm").exists());
    assert!(!dir.join("master.key").exists());
    let status = fido2ctl_status(&daemon);
    assert_eq!(status["backend"], "tpm");
    let detail = status["backend_detail"].as_str().unwrap();
    assert!(
        detail.starts_with("manufacturer IBM, vendor \"SW TPM\", firmware "),
        "{detail}"
    );
    assert!(detail.contains(&format!("via {}", tpm.tcti())), "{detail}");
    assert_eq!(status["discoverable_credentials"], 0);
    stop(daemon);
}

/// `fido2ctl --json status` against the daemon.
fn fido2ctl_status(daemon: &Daemon) -> serde_json::Value {
    let outcome = run_with_timeout(
        Command::new(fido2ctl_bin())
            .arg("--socket")
            .arg(daemon.control_socket())
            .args(["--json", "status"]),
        Duration::from_secs(10),
    );
    assert!(outcome.success(), "{}", outcome.stderr);
    serde_json::from_str(&outcome.stdout).expect("JSON status")
}

#[test]
fn auto_takes_the_file_when_no_tpm_is_there() {
    if skip(Tier::Udp) {
        return;
    }
    let (_temp, dir) = state_dir();

    let daemon = Daemon::builder()
        .state_dir(&dir)
        .args(&["--tcti", &closed_port_tcti()])
        .start();

    let logs = daemon.logs();
    let line = keystore_line(&logs);
    assert!(line.contains("keystore: encrypted file in"), "{line}");
    assert!(
        line.contains(", because no TPM at swtpm:host=127.0.0.1"),
        "{line}"
    );
    assert!(
        line.ends_with("(a new state directory, and a TPM is preferred, --keystore auto)"),
        "{line}"
    );
    assert!(dir.join("master.key").exists());
    stop(daemon);
}

#[test]
fn a_tpm_that_never_answers_does_not_hang_start_up() {
    if skip(Tier::Udp) {
        return;
    }
    let silent = SilentEndpoint::start();
    let (_temp, dir) = state_dir();
    let (_other_temp, other_dir) = state_dir();

    let started = Instant::now();
    let daemon = Daemon::builder()
        .state_dir(&dir)
        .args(&["--tcti", &silent.tcti(), "--tpm-timeout", "1"])
        .start();
    let auto_took = started.elapsed();
    let started = Instant::now();
    let refused = Daemon::builder()
        .state_dir(&other_dir)
        .args(&[
            "--keystore",
            "tpm",
            "--tcti",
            &silent.tcti(),
            "--tpm-timeout",
            "1",
        ])
        .expect_refusal(REFUSAL_TIMEOUT);
    let tpm_took = started.elapsed();

    let logs = daemon.logs();
    assert!(
        silent.connections() >= 2,
        "both daemons reached the endpoint"
    );
    let line = keystore_line(&logs);
    assert!(line.contains(" WARN "), "{line}");
    assert!(line.contains("keystore: encrypted file in"), "{line}");
    assert!(
        line.contains(&format!(
            ", because the TPM at {} did not answer within 1s",
            silent.tcti()
        )),
        "{line}"
    );
    assert!(dir.join("master.key").exists());
    assert!(auto_took < Duration::from_secs(15), "{auto_took:?}");
    assert!(!refused.success());
    assert!(
        refused
            .stderr
            .contains("did not answer within 1s (--tpm-timeout)"),
        "{}",
        refused.stderr
    );
    assert!(tpm_took < Duration::from_secs(15), "{tpm_took:?}");
    assert!(is_empty(&other_dir), "--keystore tpm wrote nothing");
    stop(daemon);
}

#[test]
fn a_tpm_that_answers_but_fails_is_an_error_never_a_switch_to_the_file() {
    if skip(Tier::Tpm) {
        return;
    }
    let tpm = Swtpm::start();
    tpm.tool(&["tpm2_changeauth", "-c", "owner", "owner-secret"]);
    let unstarted = Swtpm::start_without_startup();
    let (_temp, dir) = state_dir();

    let owner_password = Daemon::builder()
        .state_dir(&dir)
        .args(&["--tcti", &tpm.tcti()])
        .expect_refusal(REFUSAL_TIMEOUT);
    let not_started = Daemon::builder()
        .state_dir(&dir)
        .args(&["--tcti", &unstarted.tcti()])
        .expect_refusal(REFUSAL_TIMEOUT);

    assert!(!owner_password.success());
    assert!(
        owner_password
            .stderr
            .contains("the TPM's owner hierarchy has a password"),
        "{}",
        owner_password.stderr
    );
    assert!(owner_password.stderr.contains("--tpm-parent"));
    assert!(!not_started.success());
    assert!(
        not_started.stderr.contains("the TPM has not been started"),
        "{}",
        not_started.stderr
    );
    assert!(is_empty(&dir), "no file keystore was created instead");
}

#[test]
fn a_state_directory_keeps_its_backend() {
    if skip(Tier::Tpm) {
        return;
    }
    let tpm = Swtpm::start();
    let (_temp, tpm_dir) = state_dir();
    let (_file_temp, file_dir) = state_dir();
    stop(
        Daemon::builder()
            .state_dir(&tpm_dir)
            .args(&["--tcti", &tpm.tcti()])
            .start(),
    );
    stop(
        Daemon::builder()
            .state_dir(&file_dir)
            .args(&["--keystore", "file"])
            .start(),
    );

    // The TPM's credentials are in the TPM: without it, no silent fallback to the file.
    let tpm_gone = Daemon::builder()
        .state_dir(&tpm_dir)
        .args(&["--tcti", &closed_port_tcti()])
        .expect_refusal(REFUSAL_TIMEOUT);
    // A file state directory stays with the file, though a TPM answers now.
    let file_kept = Daemon::builder()
        .state_dir(&file_dir)
        .args(&["--tcti", &tpm.tcti()])
        .start();
    let logs = file_kept.logs();
    // One daemon per state directory: the one that kept the file stops first.
    stop(file_kept);
    // And an explicit backend does not take over the other's directory.
    let tpm_on_file = Daemon::builder()
        .state_dir(&file_dir)
        .args(&["--keystore", "tpm", "--tcti", &tpm.tcti()])
        .expect_refusal(REFUSAL_TIMEOUT);

    assert!(!tpm_gone.success());
    assert!(
        tpm_gone
            .stderr
            .contains("(the state directory holds TPM credentials (master.tpm))"),
        "{}",
        tpm_gone.stderr
    );
    assert!(!tpm_dir.join("master.key").exists());
    assert!(
        keystore_line(&logs)
            .ends_with("because the state directory holds file credentials (master.key)"),
        "{logs}"
    );
    assert!(!tpm_on_file.success());
    assert!(
        tpm_on_file
            .stderr
            .contains("belongs to the file keystore, not the tpm one"),
        "{}",
        tpm_on_file.stderr
    );
}

#[test]
fn the_tcti_comes_from_the_option_then_the_environment() {
    if skip(Tier::Tpm) {
        return;
    }
    let tpm = Swtpm::start();
    let (_temp, dir) = state_dir();
    let (_other_temp, other_dir) = state_dir();

    let from_env = Daemon::builder()
        .state_dir(&dir)
        .args(&["--keystore", "tpm"])
        .envs(&[
            ("TPM2TOOLS_TCTI", &tpm.tcti()),
            ("TCTI", &closed_port_tcti()),
        ])
        .start();
    let env_logs = from_env.logs();
    stop(from_env);
    let from_tcti = Daemon::builder()
        .state_dir(&other_dir)
        .args(&["--keystore", "tpm"])
        .envs(&[("TCTI", &tpm.tcti())])
        .start();
    let tcti_logs = from_tcti.logs();
    stop(from_tcti);
    let option_wins = Daemon::builder()
        .state_dir(&dir)
        .args(&["--keystore", "tpm", "--tcti", &tpm.tcti()])
        .envs(&[("TPM2TOOLS_TCTI", &closed_port_tcti())])
        .start();

    let via = format!("via {})", tpm.tcti());
    assert!(env_logs.contains(&via), "{env_logs}");
    assert!(tcti_logs.contains(&via), "{tcti_logs}");
    assert!(option_wins.logs().contains(&via), "{}", option_wins.logs());
    stop(option_wins);
}

/// A daemon that stops closes its keystore: the storage key and the session it loaded into the
/// TPM are flushed, at once, not after its shutdown grace. Without the kernel's resource
/// manager (a TPM over TCP, or /dev/tpm0) nobody else flushes them, and a TPM has room for
/// only a few loaded objects: leaked ones make a later start fail with "no room".
#[test]
fn a_stopped_daemon_leaves_nothing_loaded_in_the_tpm() {
    if skip(Tier::Tpm) {
        return;
    }
    let tpm = Swtpm::start();
    let (_temp, dir) = state_dir();

    // More starts than the simulator has object slots (3).
    for _ in 0..4 {
        let mut daemon = Daemon::builder()
            .state_dir(&dir)
            .args(&["--keystore", "tpm", "--tcti", &tpm.tcti()])
            .start();
        let status = daemon.stop();
        let logs = daemon.logs();
        assert!(status.success(), "fido2d exited with {status}\n{logs}");
        assert!(
            !logs.contains("exiting without it"),
            "the keystore was not closed:\n{logs}"
        );
        assert_eq!(tpm.tool(&["tpm2_getcap", "handles-transient"]).trim(), "");
        assert_eq!(
            tpm.tool(&["tpm2_getcap", "handles-loaded-session"]).trim(),
            ""
        );
    }
}
