//! The CTAP 2.2/2.3 surface of a real fido2d (getInfo's new members, the pcmr persistent
//! token, encIdentifier and encCredStoreState, thirdPartyPayment) read by python-fido2
//! (tests/e2e/ctap23.py), which also decrypts the encrypted members with its own code; and the
//! persistent token across a restart of the daemon. Needs `pip install fido2==2.2.1`.

use std::time::Duration;

use fido2d_tests::state_tree::snapshot;
use fido2d_tests::tiers::{skip, Tier};
use fido2d_tests::{require_python_fido2, run_e2e_script, Daemon};

const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);

/// Runs `ctap23.py PORT args...` against `daemon`; fails the test with the failed checks.
fn run_script(daemon: &Daemon, args: &[&str]) {
    run_e2e_script("ctap23.py", daemon, args, SCRIPT_TIMEOUT);
}

/// A fresh key: the getInfo members, the pcmr token, the encrypted members through it and
/// their change after a new discoverable credential, thirdPartyPayment. Then a new daemon over
/// the same state directory: the saved persistent token still reads, the identifier and the
/// state are unchanged; a PIN change ends the token. The token is in no log and, in clear, in
/// no file of the state directory (the keystore seals it).
fn enc_identifier_and_cred_store_state_through_a_persistent_token(args: &[&str]) {
    use std::os::unix::fs::PermissionsExt as _;
    require_python_fido2();
    let temp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(temp.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let dir = temp.path().join("state");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let saved = temp.path().join("ctap23.json");
    let saved = saved.to_str().unwrap();

    let mut daemon = Daemon::builder().state_dir(&dir).args(args).start();
    run_script(&daemon, &["first", saved]);
    let first_logs = daemon.logs();
    assert!(daemon.stop().success(), "fido2d did not exit cleanly");
    let token_hex = {
        let json = std::fs::read_to_string(saved).unwrap();
        let after = json.split("\"token\": \"").nth(1).unwrap();
        after.split('"').next().unwrap().to_owned()
    };
    let token: Vec<u8> = (0..token_hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&token_hex[i..i + 2], 16).unwrap())
        .collect();
    assert_eq!(token.len(), 32);
    for (file, bytes) in snapshot(&dir) {
        assert!(
            !bytes.windows(token.len()).any(|w| w == token.as_slice()),
            "{file} holds the persistent token in clear"
        );
    }

    let mut daemon = Daemon::builder().state_dir(&dir).args(args).start();
    run_script(&daemon, &["restarted", saved]);
    let logs = format!("{first_logs}{}", daemon.logs());
    assert!(
        !logs.contains(&token_hex),
        "the persistent token is never logged"
    );
    assert!(daemon.stop().success(), "fido2d did not exit cleanly");
}

#[test]
fn python_fido2_reads_enc_identifier_and_cred_store_state_through_a_persistent_token() {
    if skip(Tier::Python) {
        return;
    }
    enc_identifier_and_cred_store_state_through_a_persistent_token(&[
        "--presence",
        "auto-approve",
        "--keystore",
        "file",
    ]);
}

/// The same with the TPM keystore (on swtpm): the persistent token is sealed under the
/// TPM-sealed master secret and survives the restart there too.
#[test]
fn python_fido2_reads_enc_identifier_and_cred_store_state_with_the_tpm_keystore() {
    if skip(Tier::Tpm) {
        return;
    }
    let tpm = fido2d_tests::swtpm::Swtpm::start();
    // The script tries wrong PINs nowhere, but changes the PIN: a real TPM's lockout settings.
    tpm.set_dictionary_attack(32, 7200, 86400);
    let tcti = tpm.tcti();
    enc_identifier_and_cred_store_state_through_a_persistent_token(&[
        "--presence",
        "auto-approve",
        "--keystore",
        "tpm",
        "--tcti",
        &tcti,
    ]);
}
