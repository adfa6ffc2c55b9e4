//! Strict CTAP against a real fido2d over UDP: the state one program began cannot be spent by
//! another (python-fido2 as two clients on two channels; a raw client writing another peer's
//! channel number), nothing secret leaves without a gesture, and the test modes refuse the
//! service's real credentials.

use fido2d_tests::tiers::{skip, Tier};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use fido2d_tests::requests::{get_assertion_discovery, make_credential_es256};
use fido2d_tests::{
    fido2ctl_bin, fido2d_bin, python, require_python_fido2, run_with_timeout, Daemon, HidAnswer,
    HidClient,
};
use protocol::wire::{GetNextAssertionRequest, Request as _, StatusCode};

const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// tests/e2e/strict_ctap.py: two python-fido2 clients, each on its own channel and socket.
#[test]
fn a_second_python_fido2_client_cannot_continue_the_first_ones_state() {
    if skip(Tier::Python) {
        return;
    }
    require_python_fido2();
    let mut daemon = Daemon::auto_approve();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/strict_ctap.py");
    let outcome = run_with_timeout(
        Command::new(python())
            .arg(&script)
            .arg(daemon.port().to_string())
            .env("PYTHONDONTWRITEBYTECODE", "1"),
        SCRIPT_TIMEOUT,
    );
    println!("{}", outcome.stdout);
    assert!(
        outcome.success(),
        "strict_ctap.py failed ({:?}):\n{}\n{}\n--- fido2d ---\n{}",
        outcome.status,
        outcome.stdout,
        outcome.stderr,
        daemon.logs()
    );
    assert!(outcome.stdout.contains("5 passed, 0 failed"));
    assert!(daemon.stop().success());
}

fn status(answer: HidAnswer) -> StatusCode {
    match answer {
        HidAnswer::Message(HidClient::CMD_CBOR, payload) => {
            StatusCode::from_byte(payload[0]).expect("a CTAP status")
        }
        other => panic!("not a CBOR answer: {other:?}"),
    }
}

/// Over UDP any local program can write any channel number: the origin is the channel *and*
/// the peer's address, so the numbers alone continue nothing.
#[test]
fn another_peer_writing_the_same_channel_number_continues_nothing() {
    if skip(Tier::Udp) {
        return;
    }
    let mut daemon = Daemon::auto_approve();
    let mut a = HidClient::connect(daemon.addr()).unwrap();
    for user in [b"alice".as_slice(), b"bob"] {
        let answer = a
            .cbor(&make_credential_es256("x.test", user, true))
            .unwrap();
        assert_eq!(status(answer), StatusCode::Success);
    }
    assert_eq!(
        status(a.cbor(&get_assertion_discovery("x.test")).unwrap()),
        StatusCode::Success
    );

    let mut b = HidClient::connect(daemon.addr()).unwrap();
    b.cid = a.cid;
    assert_eq!(
        status(b.cbor(&GetNextAssertionRequest.encode()).unwrap()),
        StatusCode::NotAllowed,
        "getNextAssertion from another peer on A's channel number: NOT_ALLOWED"
    );
    assert_eq!(
        status(a.cbor(&GetNextAssertionRequest.encode()).unwrap()),
        StatusCode::NotAllowed,
        "and A's batch is over"
    );
    // Undisturbed, A continues its own.
    assert_eq!(
        status(a.cbor(&get_assertion_discovery("x.test")).unwrap()),
        StatusCode::Success
    );
    assert_eq!(
        status(a.cbor(&GetNextAssertionRequest.encode()).unwrap()),
        StatusCode::Success
    );
    assert!(daemon.stop().success());
}

/// A test mode that is refused: fido2d exits at once, with one line that says why, and leaves
/// nothing behind.
fn refused(args: &[&str], expected: &str) {
    let service_dir = Path::new("/var/lib/fido2d");
    let existed = service_dir.exists();
    let outcome = run_with_timeout(
        Command::new(fido2d_bin()).args(args).env("NO_COLOR", "1"),
        Duration::from_secs(20),
    );
    assert!(
        outcome.status.is_some_and(|s| !s.success()),
        "{args:?} should be refused: {outcome:?}"
    );
    let lines: Vec<&str> = outcome.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{args:?}: one line, got {lines:?}");
    assert!(lines[0].contains(expected), "{args:?}: {lines:?}");
    assert_eq!(
        service_dir.exists(),
        existed,
        "{args:?} touched the service's state directory"
    );
}

#[test]
fn test_modes_refuse_the_service_credentials_and_other_computers() {
    if skip(Tier::Udp) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let state = state.to_str().unwrap();
    let no_config = ["--config", "/dev/null"];
    let with = |extra: &[&'static str]| [&no_config[..], extra].concat();

    refused(
        &with(&["--presence", "auto-approve"]),
        "refuses the service's state directory",
    );
    refused(
        &with(&[
            "--presence",
            "auto-approve",
            "--state-dir",
            "/var/lib/fido2d/",
        ]),
        "refuses the service's state directory",
    );
    refused(
        &with(&["--transport", "udp", "--presence", "deny"]),
        "--transport udp is for tests",
    );
    let hybrid = [
        "--config",
        "/dev/null",
        "--presence",
        "auto-approve",
        "--state-dir",
        state,
        "--hybrid",
        "FIDO:/0",
    ];
    refused(&hybrid, "never serves another computer");

    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!("presence = \"auto-approve\"\nstate-dir = \"{state}\"\ntransport = \"udp\"\n"),
    )
    .unwrap();
    refused(
        &["--config", config.to_str().unwrap()],
        "only on the command line",
    );

    // A daemon in auto-approve (on a test directory) runs, but serves no hybrid session.
    let mut daemon = Daemon::auto_approve();
    assert!(daemon.logs().contains(
        "hybrid sessions are off: --presence auto-approve never serves another computer"
    ));
    let outcome = run_with_timeout(
        Command::new(fido2ctl_bin())
            .arg("--socket")
            .arg(daemon.control_socket())
            .args(["hybrid", "FIDO:/0"]),
        Duration::from_secs(20),
    );
    assert!(!outcome.success(), "{outcome:?}");
    assert!(
        outcome.stderr.contains("does not serve hybrid sessions"),
        "{}",
        outcome.stderr
    );
    assert!(daemon.stop().success());
}
