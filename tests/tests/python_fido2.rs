//! WebAuthn/CTAP2/U2F ceremonies against a real fido2d, driven and verified by
//! python-fido2 (tests/e2e/*.py), with each keystore backend: the encrypted file, and the TPM
//! (on swtpm, a real TPM 2.0 simulator). Needs `pip install fido2==2.2.1` and swtpm
//! (`.ci/deps`); a missing one fails the test.

use fido2d_tests::state_tree::snapshot;
use fido2d_tests::tiers::{skip, Tier};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use fido2d_tests::swtpm::Swtpm;
use fido2d_tests::{python, require_python_fido2, run_e2e_script, Daemon};

/// The whole script; each CTAPHID read in it times out after 5 s on its own.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);

/// Runs `tests/e2e/<script> PORT <args>` and fails the test with its failed checks.
fn run_script(script: &str, daemon: &Daemon, args: &[&str]) {
    run_e2e_script(script, daemon, args, SCRIPT_TIMEOUT);
}

fn stop(mut daemon: Daemon) {
    let status = daemon.stop();
    assert!(status.success(), "fido2d exited with {status} on SIGTERM");
}

/// A 0700 state directory the test owns (it outlives each daemon).
fn state_dir() -> (tempfile::TempDir, PathBuf) {
    use std::os::unix::fs::PermissionsExt as _;
    let temp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(temp.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let dir = temp.path().to_path_buf();
    (temp, dir)
}

fn tpm_args(tpm: &Swtpm) -> Vec<String> {
    vec![
        "--presence".into(),
        "auto-approve".into(),
        "--keystore".into(),
        "tpm".into(),
        "--tcti".into(),
        tpm.tcti(),
    ]
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[test]
fn python_fido2_ceremonies_with_the_file_keystore() {
    if skip(Tier::Python) {
        return;
    }
    require_python_fido2();
    let daemon = Daemon::start(&["--presence", "auto-approve", "--keystore", "file"]);

    run_script("ceremonies.py", &daemon, &[]);

    assert!(daemon.logs().contains("keystore: encrypted file in"));
    stop(daemon);
}

#[test]
fn python_fido2_ceremonies_with_the_tpm_keystore() {
    if skip(Tier::Tpm) {
        return;
    }
    require_python_fido2();
    let tpm = Swtpm::start();
    let daemon = Daemon::start(&strs(&tpm_args(&tpm)));

    // The TPM makes P-256 keys only: getInfo lists ES256 alone, EdDSA-only RPs are refused.
    run_script("ceremonies.py", &daemon, &["--algorithms", "es256"]);

    let logs = daemon.logs();
    assert!(
        logs.contains("keystore: tpm (manufacturer IBM, vendor \"SW TPM\""),
        "{logs}"
    );
    assert!(
        !daemon.state_dir().join("master.key").exists(),
        "no software master key beside the TPM's"
    );
    stop(daemon);
}

#[test]
fn credentials_survive_restarts_of_the_daemon_with_the_file_keystore() {
    if skip(Tier::Python) {
        return;
    }
    require_python_fido2();
    let (_temp, dir) = state_dir();
    let saved = dir.parent().unwrap().join("file-credentials.json");
    let saved = saved.to_str().unwrap();
    let args = ["--presence", "auto-approve", "--keystore", "file"];

    let daemon = Daemon::builder().state_dir(&dir).args(&args).start();
    run_script("persistence.py", &daemon, &["register", saved]);
    stop(daemon);
    let daemon = Daemon::builder().state_dir(&dir).args(&args).start();
    run_script("persistence.py", &daemon, &["authenticate", saved]);
    stop(daemon);
}

#[test]
fn credentials_survive_restarts_of_the_daemon_and_of_the_tpm() {
    if skip(Tier::Tpm) {
        return;
    }
    require_python_fido2();
    let mut tpm = Swtpm::start();
    let (_temp, dir) = state_dir();
    let saved_file = tempfile::NamedTempFile::new().unwrap();
    let saved = saved_file.path().to_str().unwrap();

    let daemon = Daemon::builder()
        .state_dir(&dir)
        .args(&strs(&tpm_args(&tpm)))
        .start();
    run_script("persistence.py", &daemon, &["register", saved]);
    stop(daemon);
    // The same TPM, a new daemon.
    let daemon = Daemon::builder()
        .state_dir(&dir)
        .args(&strs(&tpm_args(&tpm)))
        .start();
    run_script("persistence.py", &daemon, &["authenticate", saved]);
    stop(daemon);
    // The TPM restarts (a reboot: TPM2_Startup(CLEAR)), and so does the daemon, in auto mode:
    // the state directory says it is the TPM's.
    tpm.restart();
    let daemon = Daemon::builder()
        .state_dir(&dir)
        .args(&["--presence", "auto-approve", "--tcti", &tpm.tcti()])
        .start();
    run_script("persistence.py", &daemon, &["authenticate", saved]);
    let logs = daemon.logs();
    assert!(
        logs.contains("because the state directory holds TPM credentials (master.tpm)"),
        "{logs}"
    );
    stop(daemon);

    let points = public_points(saved);
    assert_eq!(points.len(), 3, "two WebAuthn credentials and a U2F one");
    for (file, bytes) in snapshot(&dir) {
        assert!(
            !holds_a_private_key_of(&bytes, &points),
            "{file} holds a private key"
        );
    }
}

/// The uncompressed P-256 points of the credentials persistence.py saved.
fn public_points(saved: &str) -> Vec<Vec<u8>> {
    let output = Command::new(python())
        .arg("-c")
        .arg(
            "import json, sys\n\
             from fido2.webauthn import AttestedCredentialData\n\
             state = json.load(open(sys.argv[1]))\n\
             for e in state['webauthn']:\n\
             \x20   k = AttestedCredentialData(bytes.fromhex(e['credential'])).public_key\n\
             \x20   print((b'\\x04' + k[-2] + k[-3]).hex())\n\
             print(state['u2f']['public_key'])\n",
        )
        .arg(saved)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| hex_decode(line.trim()))
        .collect()
}

fn hex_decode(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// Whether some 32 consecutive bytes are a P-256 private key of one of `points` (raw, or
/// inside any DER/PKCS#8 encoding).
fn holds_a_private_key_of(bytes: &[u8], points: &[Vec<u8>]) -> bool {
    use p256::elliptic_curve::sec1::ToSec1Point as _;
    bytes.windows(32).any(|window| {
        p256::NonZeroScalar::try_from(window).is_ok_and(|scalar| {
            let point = p256::PublicKey::from_secret_scalar(&scalar).to_sec1_point(false);
            points.iter().any(|p| p.as_slice() == point.as_bytes())
        })
    })
}
