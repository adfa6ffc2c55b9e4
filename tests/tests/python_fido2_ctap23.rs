//! The CTAP 2.2/2.3 surface of a real fido2d (getInfo's new members, the pcmr persistent
//! token, encIdentifier and encCredStoreState, thirdPartyPayment) read by python-fido2
//! (tests/e2e/ctap23.py), which also decrypts the encrypted members with its own code; and the
//! persistent token across a restart of the daemon. Needs `pip install fido2==2.2.1`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use fido2d_tests::{python, require_python_fido2, run_with_timeout, Daemon};

const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);

/// Runs `ctap23.py PORT args...` against `daemon`; fails the test with the failed checks.
fn run_script(daemon: &Daemon, args: &[&str]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/ctap23.py");
    let outcome = run_with_timeout(
        Command::new(python())
            .arg(&script)
            .arg(daemon.port().to_string())
            .args(args)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("PYTHONUNBUFFERED", "1"),
        SCRIPT_TIMEOUT,
    );
    println!("{}", outcome.stdout);
    if !outcome.stderr.is_empty() {
        eprintln!("----- ctap23.py {args:?} stderr -----\n{}", outcome.stderr);
    }
    let failures: Vec<&str> = outcome
        .stdout
        .lines()
        .filter(|l| l.starts_with("FAIL "))
        .collect();
    match outcome.status {
        None => panic!("ctap23.py {args:?} did not finish within {SCRIPT_TIMEOUT:?}"),
        Some(status) => assert!(
            status.success(),
            "ctap23.py {args:?} exited with {status}; failed checks:\n{}",
            failures.join("\n")
        ),
    }
}

/// A fresh key: the getInfo members, the pcmr token, the encrypted members through it and
/// their change after a new discoverable credential, thirdPartyPayment. Then a new daemon over
/// the same state directory: the saved persistent token still reads, the identifier and the
/// state are unchanged; a PIN change ends the token.
#[test]
fn python_fido2_reads_enc_identifier_and_cred_store_state_through_a_persistent_token() {
    use std::os::unix::fs::PermissionsExt as _;
    require_python_fido2();
    let temp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(temp.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let dir = temp.path().join("state");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let saved = temp.path().join("ctap23.json");
    let saved = saved.to_str().unwrap();
    let args = ["--presence", "auto-approve", "--keystore", "file"];

    let mut daemon = Daemon::start_in(&dir, &args);
    run_script(&daemon, &["first", saved]);
    assert!(daemon.stop().success(), "fido2d did not exit cleanly");

    let mut daemon = Daemon::start_in(&dir, &args);
    run_script(&daemon, &["restarted", saved]);
    let logs = daemon.logs();
    let token = std::fs::read_to_string(saved).unwrap();
    let token = token
        .split("\"token\": \"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    assert!(
        !logs.contains(token),
        "the persistent token is never logged"
    );
    assert!(daemon.stop().success(), "fido2d did not exit cleanly");
}
