//! The PIN and the counters against the real fido2d, driven by python-fido2
//! (tests/e2e/pin_state.py):
//!
//! - a state directory written by the release before the PIN verifier (the fixtures in
//!   tests/fixtures/state-before-pin-verifier, made by that release) opens without losing a
//!   credential, the PIN or its retries, with either keystore; with the TPM the PIN is then
//!   checked by the TPM (a wrong one raises TPM_PT_LOCKOUT_COUNTER);
//! - a copy of the state directory taken before 3 sign-ins and 2 wrong PINs, put back after
//!   them while the TPM keeps its state: the next counter is above every one seen, the
//!   retries stay spent, the log names the rollback;
//! - a TPM in dictionary-attack lockout: PIN use is refused with CTAP2_ERR_PIN_AUTH_BLOCKED
//!   and a log line that says why, `fido2ctl status` shows the lockout, and the PIN works
//!   again after the TPM's recovery time, without a restart.

use fido2d_tests::tiers::{skip, Tier};
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use fido2d_tests::swtpm::Swtpm;
use fido2d_tests::{fido2ctl_bin, python, require_python_fido2, run_with_timeout, Daemon};
use sha2::{Digest, Sha256};

/// CTAP2_ERR_PIN_AUTH_BLOCKED.
const PIN_AUTH_BLOCKED: &str = "52";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/state-before-pin-verifier")
}

/// `pin_state.py PORT args...`: its `key value` lines.
fn script(daemon: &Daemon, args: &[&str]) -> Vec<(String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/pin_state.py");
    let outcome = run_with_timeout(
        Command::new(python())
            .arg(&path)
            .arg(daemon.port().to_string())
            .args(args)
            .env("PYTHONDONTWRITEBYTECODE", "1"),
        Duration::from_secs(120),
    );
    assert!(
        outcome.success(),
        "pin_state.py {args:?}:\n{}\n{}\nfido2d:\n{}",
        outcome.stdout,
        outcome.stderr,
        daemon.logs()
    );
    lines(&outcome.stdout)
}

fn lines(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn value<'a>(lines: &'a [(String, String)], key: &str) -> &'a str {
    &lines
        .iter()
        .find(|(k, _)| k == key)
        .unwrap_or_else(|| panic!("no {key} in {lines:?}"))
        .1
}

fn values(lines: &[(String, String)], key: &str) -> Vec<u32> {
    lines
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.parse().unwrap())
        .collect()
}

/// A copy of `from` in `to`, private as fido2d wants it (git keeps no modes).
fn copy_private(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    fs::set_permissions(to, fs::Permissions::from_mode(0o700)).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_private(&path, &target);
        } else {
            fs::copy(&path, &target).unwrap();
            fs::set_permissions(&target, fs::Permissions::from_mode(0o600)).unwrap();
        }
    }
}

fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            let bytes = fs::read(&path).unwrap();
            out.push((path, bytes));
        }
    }
    out
}

fn tpm_args(tpm: &Swtpm) -> Vec<String> {
    ["--presence", "auto-approve", "--keystore", "tpm", "--tcti"]
        .map(str::to_owned)
        .into_iter()
        .chain([tpm.tcti()])
        .collect()
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Opens a copy of the fixture `kind` with today's fido2d and checks everything came through.
fn migrates(kind: &str, args: &[&str], tpm: Option<&Swtpm>) -> String {
    require_python_fido2();
    let made = lines(&fs::read_to_string(fixtures().join(format!("{kind}.txt"))).unwrap());
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("state");
    copy_private(&fixtures().join(kind), &dir);
    let state_before = fs::read(dir.join("authenticator.state")).unwrap();
    let failures_before = tpm.map(|tpm| tpm.variable_property("TPM2_PT_LOCKOUT_COUNTER"));

    let mut daemon = Daemon::builder().state_dir(&dir).args(args).start();
    let checked = script(
        &daemon,
        &["check", value(&made, "resident"), value(&made, "plain")],
    );
    let wrong = script(&daemon, &["wrong", "1"]);
    daemon.stop();
    let logs = daemon.logs();

    assert_eq!(
        value(&checked, "retries"),
        value(&made, "retries"),
        "7 left"
    );
    assert_eq!(value(&checked, "token"), "ok", "the PIN still works");
    assert_eq!(value(&checked, "credentials"), "1", "the discoverable one");
    let old_counter: u32 = value(&made, "counter").parse().unwrap();
    let resident: u32 = value(&checked, "resident-counter").parse().unwrap();
    let plain: u32 = value(&checked, "plain-counter").parse().unwrap();
    assert!(
        old_counter < resident && resident < plain,
        "{old_counter} then {resident}, {plain}"
    );
    assert_eq!(
        value(&checked, "hmac"),
        value(&made, "hmac"),
        "the same hmac-secret output: the credential's CredRandom came through"
    );
    assert_eq!(value(&wrong, "answer"), "49", "CTAP2_ERR_PIN_INVALID");
    assert!(!logs.contains("rollback"), "{logs}");
    // The state slot was written again, without the PIN hash; the PIN is in pin.state.
    assert_ne!(
        fs::read(dir.join("authenticator.state")).unwrap(),
        state_before
    );
    assert!(dir.join("pin.state").exists());
    let hash = &Sha256::digest(b"248163")[..16];
    for (path, bytes) in files_under(&dir) {
        assert!(
            !bytes.windows(16).any(|w| w == hash),
            "{} holds the PIN hash",
            path.display()
        );
    }
    if let (Some(tpm), Some(before)) = (tpm, failures_before) {
        assert_eq!(
            tpm.variable_property("TPM2_PT_LOCKOUT_COUNTER"),
            before + 1,
            "the wrong PIN after the move was checked by the TPM"
        );
    }
    logs
}

#[test]
fn a_file_state_directory_of_the_previous_release_keeps_its_credentials_and_its_pin() {
    if skip(Tier::Python) {
        return;
    }
    let logs = migrates(
        "file",
        &["--presence", "auto-approve", "--keystore", "file"],
        None,
    );
    assert!(logs.contains("PIN: Argon2id verifier"), "{logs}");
}

#[test]
fn a_tpm_state_directory_of_the_previous_release_moves_its_pin_into_the_tpm() {
    if skip(Tier::Tpm) {
        return;
    }
    let tpm = Swtpm::start_from(&fixtures().join("swtpm"));
    let args = tpm_args(&tpm);
    let logs = migrates("tpm", &strs(&args), Some(&tpm));
    assert!(logs.contains("PIN: checked by the TPM"), "{logs}");
}

#[test]
fn a_state_directory_put_back_from_an_older_copy_moves_no_counter_back_and_refills_no_retry() {
    if skip(Tier::Tpm) {
        return;
    }
    require_python_fido2();
    let tpm = Swtpm::start();
    tpm.set_dictionary_attack(32, 1000, 1000);
    let args = tpm_args(&tpm);
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("state");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    let mut daemon = Daemon::builder().state_dir(&dir).args(&strs(&args)).start();
    let made = script(&daemon, &["make"]);
    let resident = value(&made, "resident").to_owned();
    let mut seen = values(&made, "counter");

    // A copy, as a backup tool takes it while fido2d runs; then 3 sign-ins and 2 wrong PINs.
    let copy = temp.path().join("copy");
    copy_private(&dir, &copy);
    seen.extend(values(
        &script(&daemon, &["sign", "3", &resident]),
        "counter",
    ));
    script(&daemon, &["wrong", "2"]);
    let retries_before: u32 = value(&script(&daemon, &["retries"]), "retries")
        .parse()
        .unwrap();
    daemon.stop();

    fs::remove_dir_all(&dir).unwrap();
    copy_private(&copy, &dir);
    let mut daemon = Daemon::builder().state_dir(&dir).args(&strs(&args)).start();
    let next = values(&script(&daemon, &["sign", "1", &resident]), "counter")[0];
    let retries_after: u32 = value(&script(&daemon, &["retries"]), "retries")
        .parse()
        .unwrap();
    daemon.stop();
    let logs = daemon.logs();

    assert_eq!(retries_before, 5, "one wrong PIN in make, two after");
    assert_eq!(retries_after, 5, "the copy had 7; the TPM counted 2 more");
    assert!(
        next > *seen.iter().max().unwrap(),
        "counter {next} after {seen:?}"
    );
    assert!(
        logs.contains("rollback:") && logs.contains("put back from an older copy"),
        "{logs}"
    );
}

/// One flipped byte in `pin.state`'s header (the master key id) used to read as "another key's
/// leftover": set aside, no PIN, and anyone could set a new one. fido2d now refuses to start,
/// names the file and changes nothing; with the byte put back the PIN and its retries are as
/// they were.
#[test]
fn a_pin_file_under_another_key_id_stops_fido2d_and_forgets_no_pin() {
    if skip(Tier::Python) {
        return;
    }
    require_python_fido2();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("state");
    let mut daemon = Daemon::builder()
        .state_dir(&dir)
        .args(&["--presence", "auto-approve"])
        .start();
    let made = script(&daemon, &["make"]);
    daemon.stop();
    let path = dir.join("pin.state");
    let genuine = fs::read(&path).unwrap();
    let mut flipped = genuine.clone();
    // The master key id's first byte: after the magic (8) and the format version (1).
    flipped[9] ^= 0x01;
    fs::write(&path, &flipped).unwrap();
    let before = files_under(&dir);

    let outcome = Daemon::builder()
        .state_dir(&dir)
        .args(&[])
        .expect_refusal(Duration::from_secs(30));

    assert!(!outcome.success(), "{}", outcome.stderr);
    assert!(
        outcome.stderr.contains("pin.state") && outcome.stderr.contains("another master key"),
        "{}",
        outcome.stderr
    );
    let mut after = files_under(&dir);
    let mut expected = before;
    after.sort();
    expected.sort();
    assert_eq!(after, expected, "a file was changed");

    fs::write(&path, &genuine).unwrap();
    let mut daemon = Daemon::builder()
        .state_dir(&dir)
        .args(&["--presence", "auto-approve"])
        .start();
    let retries = script(&daemon, &["retries"]);
    let token = script(&daemon, &["token"]);
    daemon.stop();
    assert_eq!(value(&retries, "retries"), value(&made, "retries"));
    assert_eq!(value(&token, "token"), "ok", "the PIN still works");
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
fn a_tpm_in_lockout_refuses_the_pin_says_why_and_serves_it_again_after_its_recovery_time() {
    if skip(Tier::Tpm) {
        return;
    }
    require_python_fido2();
    let tpm = Swtpm::start();
    // Two failures lock the TPM out; one is forgiven every 3 seconds.
    tpm.set_dictionary_attack(2, 3, 3);
    let args = tpm_args(&tpm);
    let mut daemon = Daemon::start(&strs(&args));
    // `make` spends one wrong PIN, `wrong 1` the second: the TPM is in lockout.
    script(&daemon, &["make"]);
    let wrong = script(&daemon, &["wrong", "1"]);
    let locked = script(&daemon, &["token"]);
    let retries = script(&daemon, &["retries"]);
    let status = fido2ctl_status(&daemon);

    assert_eq!(value(&wrong, "answer"), "49", "CTAP2_ERR_PIN_INVALID");
    assert_eq!(
        value(&locked, "token"),
        PIN_AUTH_BLOCKED,
        "even the right PIN"
    );
    assert_eq!(
        value(&retries, "retries"),
        "6",
        "the refused try cost nothing"
    );
    let pin = status["pin_protection"].as_str().unwrap();
    assert!(
        pin.contains("checked by the TPM (in lockout: 2 of 2"),
        "{pin}"
    );
    let logs = daemon.logs();
    assert!(
        logs.contains("the TPM is in dictionary-attack lockout")
            && logs.contains("CTAP2_ERR_PIN_AUTH_BLOCKED"),
        "{logs}"
    );

    let started = Instant::now();
    let recovered = loop {
        let token = script(&daemon, &["token"]);
        let answer = value(&token, "token").to_owned();
        if answer != PIN_AUTH_BLOCKED || started.elapsed() > Duration::from_secs(20) {
            break answer;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    println!("the PIN worked again after {:?}", started.elapsed());
    assert_eq!(recovered, "ok");
    assert_eq!(value(&script(&daemon, &["retries"]), "retries"), "8");
    daemon.stop();
}
