//! PIN, credential management, authenticatorConfig, extensions and large blobs against a
//! real fido2d, driven and verified by python-fido2 (tests/e2e/pin.py); and the PIN lockout
//! across daemon restarts. Needs `pip install fido2==2.2.1`.

use fido2d_tests::tiers::{skip, Tier};
use std::time::Duration;

use fido2d_tests::{run_e2e_script, Daemon};

const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);

/// Runs `pin.py PORT args...` against `daemon`; fails the test with the failed checks.
fn run_script(daemon: &Daemon, args: &[&str]) {
    run_e2e_script("pin.py", daemon, args, SCRIPT_TIMEOUT);
}

#[test]
fn python_fido2_pin_credential_management_config_extensions_large_blobs() {
    if skip(Tier::Python) {
        return;
    }
    let mut daemon = Daemon::auto_approve();
    run_script(&daemon, &["features"]);
    assert!(daemon.stop().success(), "fido2d did not exit cleanly");
}

/// The same with the TPM keystore (on swtpm): credential management lists the TPM keys'
/// public keys, extension state is kept with their blobs, the PIN is checked by the TPM.
#[test]
fn python_fido2_pin_credential_management_config_extensions_large_blobs_with_the_tpm() {
    if skip(Tier::Tpm) {
        return;
    }
    let tpm = fido2d_tests::swtpm::Swtpm::start();
    // The TPM checks the PIN and counts each wrong one (the script tries several) towards its
    // dictionary-attack lockout: swtpm's default is 3 failures, a real TPM's often 32, one
    // forgiven every 2 hours. As a real one.
    tpm.set_dictionary_attack(32, 7200, 86400);
    let tcti = tpm.tcti();
    let mut daemon = Daemon::start(&[
        "--presence",
        "auto-approve",
        "--keystore",
        "tpm",
        "--tcti",
        &tcti,
    ]);
    run_script(&daemon, &["features"]);
    assert!(daemon.logs().contains("keystore: tpm (manufacturer IBM"));
    assert!(daemon.stop().success(), "fido2d did not exit cleanly");
}

/// 3 wrong PINs block PIN use until a restart, which clears the block but not the count;
/// 8 wrong block the PIN across restarts until authenticatorReset.
#[test]
fn pin_lockout_across_daemon_restarts() {
    if skip(Tier::Python) {
        return;
    }
    let state = tempfile::Builder::new()
        .prefix("fido2d-lockout-")
        .tempdir()
        .expect("temporary state directory");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(state.path(), std::fs::Permissions::from_mode(0o700))
            .expect("chmod 0700");
    }
    for phase in ["a", "b", "c", "d", "e"] {
        let mut daemon = Daemon::builder()
            .state_dir(state.path())
            .args(&["--presence", "auto-approve"])
            .start();
        run_script(&daemon, &["lockout", phase]);
        assert!(
            daemon.stop().success(),
            "fido2d did not exit cleanly after phase {phase}"
        );
    }
}
