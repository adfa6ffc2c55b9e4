//! The PIN and the counters with the TPM backend, against a real TPM 2.0 simulator (swtpm):
//! the TPM checks the PIN and counts every wrong one in its dictionary-attack logic
//! (TPM_PT_LOCKOUT_COUNTER, read with tpm2_getcap), a TPM in lockout refuses every PIN without
//! costing a retry and recovers by itself, and a state directory put back from an older copy
//! neither brings retries back nor moves the signature counter back.
//!
//! swtpm serves one connection at a time: each case closes the store before tpm2-tools talk to
//! the TPM, and opens it again after.

#![cfg(feature = "tpm")]

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fido2d_swtpm::Swtpm;
use protocol::env::{
    Algorithm, CredentialExtras, Keystore, NewCredential, PinCheck, RelyingParty, UserEntity,
    MAX_PIN_RETRIES,
};
use sha2::{Digest as _, Sha256};
use storage::{KeystoreOptions, OsRng, TpmConfig, TpmKeys, TpmKeystore};
use tempfile::TempDir;

const RP_HASH: [u8; 32] = [0xA1; 32];

fn state_dir() -> (TempDir, PathBuf) {
    let temp = TempDir::new().unwrap();
    let dir = temp.path().join("state");
    (temp, dir)
}

fn open(tpm: &Swtpm, dir: &Path) -> TpmKeystore<OsRng> {
    let keys = TpmKeys::open(&TpmConfig {
        tcti: tpm.tcti(),
        parent: None,
    })
    .unwrap();
    TpmKeystore::open(dir, keys, OsRng, KeystoreOptions::default()).unwrap()
}

fn pin_hash(pin: &str) -> [u8; 16] {
    Sha256::digest(pin.as_bytes())[..16].try_into().unwrap()
}

fn lockout_counter(tpm: &Swtpm) -> u32 {
    tpm.variable_property("TPM2_PT_LOCKOUT_COUNTER")
}

/// Every file under `dir`, recursively, with its bytes.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            let bytes = fs::read(&path).unwrap();
            out.push((path, bytes));
        }
    }
    out.sort();
    out
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    fs::set_permissions(to, fs::metadata(from).unwrap().permissions()).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            fs::copy(&path, &target).unwrap();
        }
    }
}

fn sign_in(store: &mut TpmKeystore<OsRng>, id: &[u8]) -> u32 {
    let credential = store.find_credential(&RP_HASH, id).unwrap().unwrap();
    store.sign(&credential, b"client data").unwrap();
    store.next_signature_counter().unwrap()
}

#[test]
fn after_set_pin_no_file_holds_anything_that_tests_a_pin_offline() {
    let tpm = Swtpm::start();
    let (_temp, dir) = state_dir();
    let mut store = open(&tpm, &dir);
    store.set_pin(&pin_hash("271828"), MAX_PIN_RETRIES).unwrap();
    assert_eq!(
        store.verify_pin(&pin_hash("271828")).unwrap(),
        PinCheck::Match
    );
    drop(store);

    // The PIN, its CTAP hash (in bytes and in hex) and the whole SHA-256: none is anywhere.
    let full = Sha256::digest(b"271828").to_vec();
    let needles = [
        b"271828".to_vec(),
        pin_hash("271828").to_vec(),
        hex::encode(pin_hash("271828")).into_bytes(),
        full,
    ];
    let files = files(&dir);
    for (path, bytes) in &files {
        for needle in &needles {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_slice()),
                "{} holds {needle:02x?}",
                path.display()
            );
        }
    }
    // What stands for the PIN is a TPM object (its private part encrypted by the TPM's
    // storage key): `pin.state` is a sealed file of about that size, nothing more.
    let (_, pin_file) = files
        .iter()
        .find(|(path, _)| path.ends_with("pin.state"))
        .expect("pin.state");
    assert_eq!(&pin_file[..8], b"FIDO2DST");
    assert!(pin_file.len() < 400, "{} bytes", pin_file.len());
}

#[test]
fn every_wrong_pin_raises_the_tpms_lockout_counter_and_a_right_one_does_not() {
    let tpm = Swtpm::start();
    tpm.set_dictionary_attack(32, 1000, 1000);
    let (_temp, dir) = state_dir();
    let mut store = open(&tpm, &dir);
    store.set_pin(&pin_hash("1234"), MAX_PIN_RETRIES).unwrap();
    drop(store);

    let mut seen = vec![lockout_counter(&tpm)];
    for wrong in ["0000", "1111", "2222"] {
        let mut store = open(&tpm, &dir);
        let check = store.verify_pin(&pin_hash(wrong)).unwrap();
        assert!(matches!(check, PinCheck::Mismatch { .. }), "{check:?}");
        drop(store);
        seen.push(lockout_counter(&tpm));
    }
    let mut store = open(&tpm, &dir);
    assert_eq!(
        store.verify_pin(&pin_hash("1234")).unwrap(),
        PinCheck::Match
    );
    let status = store.status();
    drop(store);
    seen.push(lockout_counter(&tpm));

    assert_eq!(
        seen,
        [0, 1, 2, 3, 3],
        "TPM2_PT_LOCKOUT_COUNTER after each PIN"
    );
    let state = status
        .dictionary_attack
        .clone()
        .expect("the TPM's lockout state");
    assert_eq!((state.failures, state.max_failures), (3, 32));
    assert!(status.pin_protection().contains("checked by the TPM"));
}

#[test]
fn a_tpm_in_lockout_refuses_every_pin_without_spending_a_retry_and_recovers_by_itself() {
    let tpm = Swtpm::start();
    // Two failures lock the TPM out; one is forgiven every 2 seconds.
    tpm.set_dictionary_attack(2, 2, 2);
    let (_temp, dir) = state_dir();
    let mut store = open(&tpm, &dir);
    store.set_pin(&pin_hash("1234"), MAX_PIN_RETRIES).unwrap();
    store.take_notices();

    let wrong = [
        store.verify_pin(&pin_hash("0000")).unwrap(),
        store.verify_pin(&pin_hash("1111")).unwrap(),
    ];
    let locked = store.verify_pin(&pin_hash("1234")).unwrap();
    let retries_when_locked = store.pin_retries().unwrap();
    let status = store.status();
    let notices = store.take_notices();
    drop(store);
    let in_lockout = tpm.variable_property("inLockout");

    assert_eq!(
        wrong,
        [
            PinCheck::Mismatch { retries: 7 },
            PinCheck::Mismatch { retries: 6 }
        ]
    );
    assert_eq!(locked, PinCheck::LockedOut, "even the right PIN");
    assert_eq!(retries_when_locked, Some(6), "no retry spent");
    assert_eq!(in_lockout, 1);
    assert!(status.dictionary_attack.as_ref().unwrap().in_lockout);
    assert!(
        status.pin_protection().contains("in lockout: 2 of 2"),
        "{}",
        status.pin_protection()
    );
    assert!(
        notices
            .iter()
            .any(|n| n.contains("dictionary-attack lockout") && n.contains("PIN_AUTH_BLOCKED")),
        "{notices:?}"
    );

    // It forgives a failure after its recovery time: the right PIN works again.
    let started = Instant::now();
    let mut store = open(&tpm, &dir);
    let recovered = loop {
        match store.verify_pin(&pin_hash("1234")).unwrap() {
            PinCheck::LockedOut if started.elapsed() < Duration::from_secs(15) => {
                std::thread::sleep(Duration::from_millis(250));
            }
            other => break other,
        }
    };
    println!("recovered after {:?}", started.elapsed());
    assert_eq!(recovered, PinCheck::Match);
    assert_eq!(store.pin_retries().unwrap(), Some(8));
}

fn create(store: &mut TpmKeystore<OsRng>) -> Vec<u8> {
    let rp = RelyingParty {
        id: "example.com".into(),
        name: None,
    };
    let user = UserEntity {
        id: vec![1],
        ..UserEntity::default()
    };
    let new = NewCredential {
        rp: &rp,
        rp_id_hash: &RP_HASH,
        user: &user,
        algorithm: Algorithm::Es256,
        discoverable: true,
        extras: &CredentialExtras::default(),
    };
    store.create_credential(&new).unwrap().0.id
}

#[test]
fn a_state_directory_put_back_from_an_older_copy_brings_back_neither_retries_nor_counter() {
    let tpm = Swtpm::start();
    tpm.set_dictionary_attack(32, 1000, 1000);
    let (temp, dir) = state_dir();
    let mut store = open(&tpm, &dir);
    let id = create(&mut store);
    store.set_pin(&pin_hash("1234"), MAX_PIN_RETRIES).unwrap();
    let mut seen = vec![sign_in(&mut store, &id)];
    drop(store);
    let copy = temp.path().join("copy");
    copy_dir(&dir, &copy);

    // Three sign-ins and two wrong PINs, with a restart between.
    let mut store = open(&tpm, &dir);
    seen.extend((0..3).map(|_| sign_in(&mut store, &id)));
    for wrong in ["0000", "1111"] {
        store.verify_pin(&pin_hash(wrong)).unwrap();
    }
    let retries_before = store.pin_retries().unwrap();
    drop(store);
    fs::remove_dir_all(&dir).unwrap();
    copy_dir(&copy, &dir);
    let mut store = open(&tpm, &dir);
    let notices = store.take_notices();
    let next = sign_in(&mut store, &id);

    assert_eq!(retries_before, Some(6));
    assert_eq!(store.pin_retries().unwrap(), Some(6), "not refilled");
    assert!(next > *seen.iter().max().unwrap(), "{next} after {seen:?}");
    assert!(
        notices
            .iter()
            .any(|n| n.starts_with("rollback:") && n.contains("pin.state")),
        "{notices:?}"
    );
    assert!(
        notices
            .iter()
            .any(|n| n.starts_with("rollback:") && n.contains("counter")),
        "{notices:?}"
    );
    // Said once: the files now say what the TPM says.
    drop(store);
    let mut store = open(&tpm, &dir);
    assert_eq!(store.take_notices(), Vec::<String>::new());
    assert_eq!(
        store.verify_pin(&pin_hash("1234")).unwrap(),
        PinCheck::Match
    );
}

#[test]
fn a_pin_whose_file_is_gone_is_blocked_not_absent() {
    let tpm = Swtpm::start();
    let (temp, dir) = state_dir();
    let store = open(&tpm, &dir);
    drop(store);
    let before_pin = temp.path().join("before-pin");
    copy_dir(&dir, &before_pin);
    let mut store = open(&tpm, &dir);
    store.set_pin(&pin_hash("1234"), MAX_PIN_RETRIES).unwrap();
    drop(store);

    fs::remove_dir_all(&dir).unwrap();
    copy_dir(&before_pin, &dir);
    let mut store = open(&tpm, &dir);
    let notices = store.take_notices();

    assert_eq!(store.pin_retries().unwrap(), Some(0));
    assert_eq!(
        store.verify_pin(&pin_hash("1234")).unwrap(),
        PinCheck::Blocked
    );
    assert!(
        notices
            .iter()
            .any(|n| n.starts_with("rollback:") && n.contains("older than the PIN")),
        "{notices:?}"
    );
    // A reset is the way out, as for any blocked PIN.
    store.reset().unwrap();
    assert_eq!(store.pin_retries().unwrap(), None);
}

#[test]
fn with_an_owner_password_the_pin_is_still_checked_by_the_tpm_and_the_log_says_what_is_missing() {
    let tpm = Swtpm::start();
    tpm.set_dictionary_attack(32, 1000, 1000);
    tpm.tool(&["tpm2_changeauth", "-c", "owner", "owner-secret"]);
    tpm.tool(&[
        "tpm2_createprimary",
        "-C",
        "o",
        "-P",
        "owner-secret",
        "-G",
        "ecc256",
        "-c",
        "parent.ctx",
    ]);
    tpm.tool(&[
        "tpm2_evictcontrol",
        "-C",
        "o",
        "-P",
        "owner-secret",
        "-c",
        "parent.ctx",
        "0x81000001",
    ]);
    tpm.tool(&["tpm2_flushcontext", "-t"]);
    let (_temp, dir) = state_dir();
    let open = || {
        let keys = TpmKeys::open(&TpmConfig {
            tcti: tpm.tcti(),
            parent: Some(0x8100_0001),
        })
        .unwrap();
        TpmKeystore::open(&dir, keys, OsRng, KeystoreOptions::default()).unwrap()
    };
    let mut store = open();
    let notices = store.take_notices();
    store.set_pin(&pin_hash("1234"), MAX_PIN_RETRIES).unwrap();
    let wrong = store.verify_pin(&pin_hash("0000")).unwrap();
    let status = store.status();
    drop(store);
    let failures = lockout_counter(&tpm);
    let mut store = open();

    assert!(
        notices
            .iter()
            .any(|n| n.contains("owner hierarchy has a password")),
        "{notices:?}"
    );
    assert!(!status.rollback_protection);
    assert_eq!(wrong, PinCheck::Mismatch { retries: 7 });
    assert_eq!(failures, 1, "the TPM counted the wrong PIN");
    assert_eq!(store.pin_retries().unwrap(), Some(7));
    assert_eq!(
        store.verify_pin(&pin_hash("1234")).unwrap(),
        PinCheck::Match
    );
}
