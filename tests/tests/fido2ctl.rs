//! fido2ctl's CTAP commands against a real fido2d over its UDP transport: fido2ctl talks CTAP
//! like any platform (the same code drives a hardware key through hidraw).

use fido2d_tests::tiers::{skip, Tier};
use std::process::Command;
use std::time::Duration;

use fido2d_tests::{fido2ctl_bin, run_with_timeout, Daemon, Outcome};

const TIMEOUT: Duration = Duration::from_secs(60);

fn fido2ctl(daemon: &Daemon, args: &[&str]) -> Outcome {
    run_with_timeout(
        Command::new(fido2ctl_bin())
            .arg("--device")
            .arg(format!("udp:127.0.0.1:{}", daemon.port()))
            .args(args),
        TIMEOUT,
    )
}

#[test]
fn info_names_the_get_info_fields() {
    if skip(Tier::Udp) {
        return;
    }
    let daemon = Daemon::auto_approve();

    let outcome = fido2ctl(&daemon, &["--json", "info"]);

    assert!(outcome.success(), "{}", outcome.stderr);
    let info: serde_json::Value = serde_json::from_str(&outcome.stdout).unwrap();
    let versions = info["versions"].as_array().unwrap();
    assert!(versions.contains(&"FIDO_2_1".into()), "{info}");
    assert!(versions.contains(&"U2F_V2".into()), "{info}");
    // fido2d's AAGUID (protocol::authenticator::FIDO2D_AAGUID).
    assert_eq!(info["aaguid"], "6d44ba9bf6ec4c4d9c2e3b1f520d6a91");
    assert_eq!(info["options"]["rk"], true);
    assert!(info["maxMsgSize"].as_u64().unwrap() >= 1024);

    let text = fido2ctl(&daemon, &["info"]);
    assert!(text.success(), "{}", text.stderr);
    assert!(text.stdout.contains("versions:"), "{}", text.stdout);
}

#[test]
fn no_key_is_exit_code_5() {
    if skip(Tier::Udp) {
        return;
    }
    let outcome = run_with_timeout(
        Command::new(fido2ctl_bin()).args(["--device", "/dev/nonexistent-hidraw", "info"]),
        TIMEOUT,
    );

    assert_eq!(
        outcome.status.and_then(|s| s.code()),
        Some(5),
        "{}",
        outcome.stderr
    );
    assert!(outcome.stderr.contains("cannot open"), "{}", outcome.stderr);
}

/// fido2ctl with `stdin` as its input (PINs are read from stdin when it is not a terminal).
fn fido2ctl_with_input(daemon: &Daemon, args: &[&str], stdin: &str) -> Outcome {
    use std::io::Write as _;
    use std::process::Stdio;
    let mut child = Command::new(fido2ctl_bin())
        .arg("--device")
        .arg(format!("udp:127.0.0.1:{}", daemon.port()))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run fido2ctl");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    Outcome {
        status: Some(output.status),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn make_discoverable(daemon: &Daemon, rp: &str, user: &str) {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/presence_probe.py");
    let outcome = run_with_timeout(
        Command::new(fido2d_tests::python())
            .arg(script)
            .arg(daemon.port().to_string())
            .args(["--rk", "--rp", rp, "--user", user]),
        TIMEOUT,
    );
    assert!(
        outcome.stdout.contains("status=0x00"),
        "{}{}",
        outcome.stdout,
        outcome.stderr
    );
}

fn json_of(outcome: &Outcome) -> serde_json::Value {
    assert!(outcome.success(), "{}\n{}", outcome.stdout, outcome.stderr);
    serde_json::from_str(&outcome.stdout).expect("JSON output")
}

#[test]
fn pin_set_change_and_status_through_client_pin() {
    if skip(Tier::Udp) {
        return;
    }
    let daemon = Daemon::auto_approve();

    let before = json_of(&fido2ctl(&daemon, &["--json", "pin", "status"]));
    let set = fido2ctl_with_input(&daemon, &["pin", "set"], "1234\n1234\n");
    let after = json_of(&fido2ctl(&daemon, &["--json", "pin", "status"]));
    let again = fido2ctl_with_input(&daemon, &["pin", "set"], "5678\n5678\n");
    let wrong = fido2ctl_with_input(&daemon, &["pin", "change"], "0000\n5678\n5678\n");
    let after_wrong = json_of(&fido2ctl(&daemon, &["--json", "pin", "status"]));
    let change = fido2ctl_with_input(&daemon, &["pin", "change"], "1234\n567890\n567890\n");
    let mismatch = fido2ctl_with_input(&daemon, &["pin", "change"], "567890\n1111\n2222\n");

    assert_eq!(before["pin_set"], false);
    assert!(set.success(), "{}", set.stderr);
    assert_eq!(after["pin_set"], true);
    assert_eq!(after["retries"], 8);
    assert_eq!(again.status.and_then(|s| s.code()), Some(1));
    assert!(again.stderr.contains("pin change"), "{}", again.stderr);
    assert_eq!(wrong.status.and_then(|s| s.code()), Some(1));
    assert!(
        wrong.stderr.contains("PIN_INVALID (0x31)"),
        "{}",
        wrong.stderr
    );
    assert_eq!(after_wrong["retries"], 7, "a wrong PIN costs one try");
    assert!(change.success(), "{}", change.stderr);
    assert!(
        mismatch.stderr.contains("the two PINs differ"),
        "{}",
        mismatch.stderr
    );
}

#[test]
fn credentials_list_and_delete_with_the_pin() {
    if skip(Tier::Udp) {
        return;
    }
    let daemon = Daemon::auto_approve();
    make_discoverable(&daemon, "one.fido2d.test", "alice");
    make_discoverable(&daemon, "two.fido2d.test", "bob");
    assert!(fido2ctl_with_input(&daemon, &["pin", "set"], "1234\n1234\n").success());

    let listed = json_of(&fido2ctl_with_input(
        &daemon,
        &["--json", "credentials", "list"],
        "1234\n",
    ));
    let alice = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["user_name"] == "alice")
        .expect("alice's credential")
        .clone();
    let delete = fido2ctl_with_input(
        &daemon,
        &[
            "credentials",
            "delete",
            alice["credential_id"].as_str().unwrap(),
        ],
        "1234\n",
    );
    let after = json_of(&fido2ctl_with_input(
        &daemon,
        &["--json", "credentials", "list"],
        "1234\n",
    ));
    let wrong_pin = fido2ctl_with_input(&daemon, &["credentials", "list"], "9999\n");

    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    assert_eq!(alice["rp_id"], "one.fido2d.test");
    assert!(delete.success(), "{}", delete.stderr);
    let remaining: Vec<&str> = after
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["user_name"].as_str().unwrap())
        .collect();
    assert_eq!(remaining, ["bob"]);
    assert!(
        wrong_pin.stderr.contains("PIN_INVALID"),
        "{}",
        wrong_pin.stderr
    );
}

/// `credentials list` on fido2d lists thirdPartyPayment (credential management's 0x0C), and
/// the credential it listed can still be deleted (with a cm token: list asks for the read-only
/// pcmr one, see `manage::list_permission`'s unit test).
#[test]
fn credentials_list_shows_third_party_payment_and_delete_still_works() {
    if skip(Tier::Udp) {
        return;
    }
    let daemon = Daemon::auto_approve();
    make_discoverable(&daemon, "one.fido2d.test", "alice");
    assert!(fido2ctl_with_input(&daemon, &["pin", "set"], "1234\n1234\n").success());
    let info = json_of(&fido2ctl(&daemon, &["--json", "info"]));
    let listed = json_of(&fido2ctl_with_input(
        &daemon,
        &["--json", "credentials", "list"],
        "1234\n",
    ));

    assert_eq!(info["options"]["perCredMgmtRO"], true, "{info}");
    assert!(
        info["encIdentifier"].is_string(),
        "named by fido2ctl info: {info}"
    );
    assert_eq!(listed[0]["user_name"], "alice", "{listed}");
    assert_eq!(listed[0]["third_party_payment"], false, "{listed}");
    let id = listed[0]["credential_id"].as_str().unwrap();
    let delete = fido2ctl_with_input(&daemon, &["credentials", "delete", id], "1234\n");
    assert!(delete.success(), "{}", delete.stderr);
}

#[test]
fn credentials_update_renames_an_account_and_pin_verify_checks_the_pin() {
    if skip(Tier::Udp) {
        return;
    }
    let daemon = Daemon::auto_approve();
    make_discoverable(&daemon, "one.fido2d.test", "alice");
    assert!(fido2ctl_with_input(&daemon, &["pin", "set"], "1234\n1234\n").success());
    let list = || {
        json_of(&fido2ctl_with_input(
            &daemon,
            &["--json", "credentials", "list"],
            "1234\n",
        ))
    };
    let before = list()[0].clone();
    let id = before["credential_id"].as_str().unwrap();

    let renamed = fido2ctl_with_input(
        &daemon,
        &["credentials", "update", id, "--name", "alice@new.example"],
        "1234\n",
    );
    assert!(renamed.success(), "{}", renamed.stderr);
    let after = list()[0].clone();
    assert_eq!(after["user_name"], "alice@new.example");
    assert_eq!(
        after["user_id"], before["user_id"],
        "the user handle never changes"
    );
    assert_eq!(
        after["display_name"], before["display_name"],
        "kept when not given"
    );

    // An empty display name removes it (CTAP 2.1 §6.8.6).
    let emptied = fido2ctl_with_input(
        &daemon,
        &["credentials", "update", id, "--display-name", ""],
        "1234\n",
    );
    assert!(emptied.success(), "{}", emptied.stderr);
    assert!(list()[0]["display_name"].is_null());

    let right = fido2ctl_with_input(&daemon, &["pin", "verify"], "1234\n");
    assert!(right.success(), "{}", right.stderr);
    let wrong = fido2ctl_with_input(&daemon, &["pin", "verify"], "9999\n");
    assert!(!wrong.success());
    assert!(wrong.stderr.contains("PIN_INVALID"), "{}", wrong.stderr);
    let status = json_of(&fido2ctl(&daemon, &["--json", "pin", "status"]));
    assert_eq!(status["retries"], 7, "the wrong PIN cost one try");
}

#[test]
fn config_sets_the_minimum_pin_length_and_always_uv() {
    if skip(Tier::Udp) {
        return;
    }
    let daemon = Daemon::auto_approve();
    assert!(fido2ctl_with_input(&daemon, &["pin", "set"], "123456\n123456\n").success());

    let min = fido2ctl_with_input(&daemon, &["config", "min-pin-length", "6"], "123456\n");
    let always = fido2ctl_with_input(&daemon, &["config", "always-uv"], "123456\n");
    let info = json_of(&fido2ctl(&daemon, &["--json", "info"]));

    assert!(min.success(), "{}", min.stderr);
    assert!(always.success(), "{}", always.stderr);
    assert!(
        always.stdout.contains("alwaysUv is now true"),
        "{}",
        always.stdout
    );
    assert_eq!(info["minPINLength"], 6);
    assert_eq!(info["options"]["alwaysUv"], true);
}

#[test]
fn reset_needs_confirmation_and_a_fresh_key() {
    if skip(Tier::Udp) {
        return;
    }
    let mut first = Daemon::auto_approve();
    assert!(fido2ctl_with_input(&first, &["pin", "set"], "1234\n1234\n").success());
    // A restart is the "power-up" that opens the 10 s reset window, as the error says.
    first.stop();
    let daemon = Daemon::builder()
        .state_dir(first.state_dir())
        .args(&["--presence", "auto-approve"])
        .start();

    let unconfirmed = fido2ctl_with_input(&daemon, &["reset"], "no\n");
    let confirmed = fido2ctl_with_input(&daemon, &["reset"], "erase\n");
    let status = json_of(&fido2ctl(&daemon, &["--json", "pin", "status"]));

    assert_eq!(unconfirmed.status.and_then(|s| s.code()), Some(1));
    assert!(
        unconfirmed.stderr.contains("nothing was erased"),
        "{}",
        unconfirmed.stderr
    );
    assert!(confirmed.success(), "{}", confirmed.stderr);
    assert_eq!(status["pin_set"], false, "the reset removed the PIN");

    // CTAP 2.1 §6.6: only within 10 s of power-up (here, over UDP, fido2d's start).
    std::thread::sleep(Duration::from_secs(11));
    let late = fido2ctl(
        &daemon,
        &["--socket", "/nonexistent/control.sock", "reset", "--yes"],
    );
    assert_eq!(late.status.and_then(|s| s.code()), Some(1));
    assert!(
        late.stderr.contains("NOT_ALLOWED (0x30)"),
        "{}",
        late.stderr
    );
    assert!(
        late.stderr.contains("could not replug it through fido2d"),
        "{}",
        late.stderr
    );
    // Through the daemon's control socket, fido2ctl replugs the key (a power cycle, after the
    // person's gesture), which opens the window again.
    let socket = daemon.control_socket();
    let replugged = fido2ctl(
        &daemon,
        &["--socket", socket.to_str().unwrap(), "reset", "--yes"],
    );
    assert!(replugged.success(), "{}", replugged.stderr);
    assert!(
        replugged.stderr.contains("the key was replugged"),
        "{}",
        replugged.stderr
    );
    daemon.logs_after("the key was replugged", 1);
}
