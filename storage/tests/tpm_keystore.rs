//! What only the TPM backend does, against a real TPM 2.0 simulator (swtpm): keys the TPM
//! refuses to use when tampered with or authorized for another RP, a TPM restart and a TPM
//! clear, an owner password and a persistent parent key, a TPM that is absent or not started.
//! The backend-independent cases run against it in `tests/keystore.rs`.

#![cfg(feature = "tpm")]

use std::fs;
use std::path::{Path, PathBuf};

use fido2d_swtpm::Swtpm;
use protocol::env::{
    Algorithm, Credential, CredentialExtras, KeyMaterial, Keystore, KeystoreError, NewCredential,
    PublicKey, RelyingParty, UserEntity,
};
use storage::tpm::TpmConnection;
use storage::{
    BackendKind, FileKeystore, KeystoreOptions, OsRng, StorageError, TpmConfig, TpmError, TpmKeys,
    TpmKeystore,
};
use tempfile::TempDir;

const RP_HASH: [u8; 32] = [0xA1; 32];

fn state_dir() -> (TempDir, PathBuf) {
    let temp = TempDir::new().unwrap();
    let dir = temp.path().join("state");
    (temp, dir)
}

fn config(tpm: &Swtpm) -> TpmConfig {
    TpmConfig {
        tcti: tpm.tcti(),
        parent: None,
    }
}

fn try_open(tpm: &Swtpm, dir: &Path) -> Result<TpmKeystore<OsRng>, StorageError> {
    let keys = TpmKeys::open(&config(tpm))?;
    TpmKeystore::open(dir, keys, OsRng, KeystoreOptions::default())
}

fn open(tpm: &Swtpm, dir: &Path) -> TpmKeystore<OsRng> {
    try_open(tpm, dir).unwrap()
}

fn create(
    store: &mut impl Keystore,
    user_id: &[u8],
    discoverable: bool,
) -> (Credential, PublicKey) {
    let rp = RelyingParty {
        id: "example.com".into(),
        name: None,
    };
    let user = UserEntity {
        id: user_id.to_vec(),
        ..UserEntity::default()
    };
    store
        .create_credential(&NewCredential {
            rp: &rp,
            rp_id_hash: &RP_HASH,
            user: &user,
            algorithm: Algorithm::Es256,
            discoverable,
            extras: &CredentialExtras::default(),
        })
        .unwrap()
}

fn verifies(public: &PublicKey, message: &[u8], signature: &[u8]) -> bool {
    use p256::ecdsa::signature::Verifier as _;
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&public.raw).unwrap();
    p256::ecdsa::DerSignature::try_from(signature)
        .is_ok_and(|signature| key.verify(message, &signature).is_ok())
}

/// The blob's two parts: `u16 len | private | u16 len | public`.
fn blob_parts(blob: &[u8]) -> (&[u8], &[u8]) {
    let private_len = usize::from(u16::from_be_bytes([blob[0], blob[1]]));
    let private = &blob[2..2 + private_len];
    let rest = &blob[2 + private_len..];
    let public_len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
    assert_eq!(rest.len(), 2 + public_len, "nothing after the public area");
    (private, &rest[2..])
}

fn with_key(credential: &Credential, key: Vec<u8>) -> Credential {
    Credential {
        key: KeyMaterial::new(key),
        ..credential.clone()
    }
}

#[test]
fn the_status_names_the_tpm_and_counts_credentials() {
    let tpm = Swtpm::start();
    let (_temp, dir) = state_dir();
    let mut store = open(&tpm, &dir);
    create(&mut store, b"1", true);
    create(&mut store, b"2", false);

    let status = store.status();

    assert_eq!(status.backend, BackendKind::Tpm);
    let info = status.tpm.as_ref().expect("TPM details");
    // swtpm (libtpms) reports IBM as its manufacturer and "SW TPM" as its vendor string.
    assert_eq!(info.manufacturer, "IBM");
    assert_eq!(info.vendor, "SW TPM");
    assert_eq!(info.tcti, tpm.tcti());
    assert!(info.firmware_version.split('.').count() == 4, "{info:?}");
    assert_eq!(status.discoverable_credentials, 1);
    assert!(status.to_string().starts_with("tpm (manufacturer IBM"));
    assert!(!store.supports(Algorithm::EdDsa));
}

#[test]
fn a_credential_id_carries_the_tpm_blob_and_nothing_else_of_the_key() {
    let tpm = Swtpm::start();
    let (_temp, dir) = state_dir();
    let mut store = open(&tpm, &dir);

    let (plain, public) = create(&mut store, b"1", false);
    let (discoverable, _) = create(&mut store, b"2", true);

    let blob = plain.key.as_bytes();
    let (private, public_area) = blob_parts(blob);
    // A TPMT_PUBLIC of an ECC key ends with its point: u16 32 | x | u16 32 | y.
    let mut point = vec![0, 32];
    point.extend_from_slice(&public.raw[1..33]);
    point.extend_from_slice(&[0, 32]);
    point.extend_from_slice(&public.raw[33..]);
    assert!(
        public_area.ends_with(&point),
        "the blob's public area is the key's"
    );
    assert!(
        private.len() > 32,
        "an encrypted private area, not a scalar"
    );
    // version | nonce | AES-GCM(flags | algorithm | u16 length | blob | no extras) | tag
    assert_eq!(plain.id[0], 0x02, "the TPM blob format");
    assert_eq!(plain.id.len(), 1 + 12 + 4 + blob.len() + 16);
    assert!(plain.id.len() <= store.max_credential_id_len());
    assert_eq!(
        discoverable.id.len(),
        1 + 12 + 4 + 16,
        "a discoverable ID only names its record"
    );
    assert!(blob.len() < 300, "{} bytes", blob.len());
}

#[test]
fn a_tampered_blob_is_refused_by_the_tpm_and_the_store_goes_on() {
    let tpm = Swtpm::start();
    let (_temp, dir) = state_dir();
    let mut store = open(&tpm, &dir);
    let (credential, public) = create(&mut store, b"1", false);
    let blob = credential.key.as_bytes().to_vec();
    let (private, _) = blob_parts(&blob);
    let private_end = 2 + private.len();
    // Bytes of the integrity value, of the encrypted sensitive area, of the public area's
    // attributes and of its point.
    let positions = [3, 40, private_end - 1, private_end + 6, blob.len() - 1];
    let mut tampered: Vec<Vec<u8>> = positions
        .iter()
        .map(|&i| {
            let mut bytes = blob.clone();
            bytes[i] ^= 0x01;
            bytes
        })
        .collect();
    tampered.push(blob[..blob.len() - 1].to_vec());
    tampered.push(Vec::new());
    tampered.push(vec![0u8; blob.len()]);

    for bytes in tampered {
        let refused = store.sign(&with_key(&credential, bytes), b"message");

        assert!(
            matches!(refused, Err(KeystoreError::Failure(_))),
            "{refused:?}"
        );
    }
    let signature = store.sign(&credential, b"message").unwrap();
    assert!(verifies(&public, b"message", &signature));
}

#[test]
fn a_key_does_not_sign_for_another_rp_or_after_a_reset() {
    let tpm = Swtpm::start();
    let (_temp, dir) = state_dir();
    let mut store = open(&tpm, &dir);
    let (credential, public) = create(&mut store, b"1", false);
    let other_rp = Credential {
        rp_id_hash: [0xB2; 32],
        ..credential.clone()
    };

    // Its authValue is derived from the RP ID hash: the TPM refuses the other RP's.
    let refused = store.sign(&other_rp, b"message");
    let signed = store.sign(&credential, b"message").unwrap();
    store.reset().unwrap();
    // And from the master secret, which the reset replaced.
    let after_reset = store.sign(&credential, b"message");

    assert!(matches!(refused, Err(KeystoreError::Failure(ref m)) if m.contains("Sign")));
    assert!(verifies(&public, b"message", &signed));
    assert!(matches!(after_reset, Err(KeystoreError::Failure(_))));
    assert_eq!(
        store.find_credential(&RP_HASH, &credential.id).unwrap(),
        None
    );
}

#[test]
fn credentials_survive_a_restart_of_the_tpm() {
    let mut tpm = Swtpm::start();
    let (_temp, dir) = state_dir();
    let mut store = open(&tpm, &dir);
    let created = [
        create(&mut store, b"1", false),
        create(&mut store, b"2", true),
    ];
    drop(store);

    tpm.restart();
    let mut store = open(&tpm, &dir);

    for (credential, public) in created {
        let found = store
            .find_credential(&RP_HASH, &credential.id)
            .unwrap()
            .expect("found after the TPM restarted");
        let signature = store.sign(&found, b"after a reboot").unwrap();
        assert!(verifies(&public, b"after a reboot", &signature));
    }
    assert_eq!(store.discoverable_count(), 1);
}

#[test]
fn a_cleared_tpm_is_a_clear_error_and_nothing_is_deleted() {
    let tpm = Swtpm::start();
    let (_temp, dir) = state_dir();
    let mut store = open(&tpm, &dir);
    create(&mut store, b"1", true);
    drop(store);
    let before: Vec<(PathBuf, Vec<u8>)> = walk(&dir);

    tpm.tool(&["tpm2_clear", "-c", "p"]);
    let err = try_open(&tpm, &dir).unwrap_err();

    let message = err.to_string();
    assert!(
        matches!(err, StorageError::Tpm(TpmError::MasterSecretLost { .. })),
        "{message}"
    );
    assert!(message.contains("cleared"), "{message}");
    assert!(message.contains("master.tpm"), "{message}");
    assert_eq!(walk(&dir), before, "nothing changed in the state directory");
}

fn walk(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            let bytes = fs::read(&path).unwrap();
            out.push((path, bytes));
        }
    }
    out.sort();
    out
}

#[test]
fn an_owner_password_is_a_clear_error_and_a_persistent_parent_works_around_it() {
    let tpm = Swtpm::start();
    let (_temp, dir) = state_dir();
    tpm.tool(&["tpm2_changeauth", "-c", "owner", "owner-secret"]);

    let refused = TpmKeys::open(&config(&tpm)).unwrap_err();
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
    // Without a resource manager the tools leave their transient copy loaded.
    tpm.tool(&["tpm2_flushcontext", "-t"]);
    let with_parent = |parent| {
        let keys = TpmKeys::open(&TpmConfig {
            tcti: tpm.tcti(),
            parent: Some(parent),
        })?;
        TpmKeystore::open(&dir, keys, OsRng, KeystoreOptions::default())
    };
    let mut store = with_parent(0x8100_0001).unwrap();
    let (credential, public) = create(&mut store, b"1", true);
    drop(store);
    let mut store = with_parent(0x8100_0001).unwrap();
    let found = store.find_credential(&RP_HASH, &credential.id).unwrap();
    let signature = store.sign(&found.unwrap(), b"m").unwrap();
    drop(store);
    let missing = with_parent(0x8100_0002).unwrap_err();

    assert!(matches!(refused, TpmError::OwnerAuthSet), "{refused}");
    assert!(refused.to_string().contains("--tpm-parent"), "{refused}");
    assert!(verifies(&public, b"m", &signature));
    assert!(
        matches!(
            missing,
            StorageError::Tpm(TpmError::NoParent {
                handle: 0x8100_0002,
                ..
            })
        ),
        "{missing}"
    );
}

#[test]
fn a_tpm_that_was_not_started_is_an_error_not_an_absent_tpm() {
    let tpm = Swtpm::start_without_startup();

    let err = TpmKeys::open(&config(&tpm)).unwrap_err();

    assert!(matches!(err, TpmError::NotStarted), "{err}");
    assert!(!err.is_absent());
}

#[test]
fn no_tpm_at_the_tcti_is_absent_and_a_bad_tcti_is_refused() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };

    let closed = TpmConnection::connect(&format!("swtpm:host=127.0.0.1,port={port}")).unwrap_err();
    let no_device = TpmConnection::connect("device:/nonexistent/tpmrm0").unwrap_err();
    let bad = TpmConnection::connect("carrier-pigeon:coop=1").unwrap_err();

    assert!(closed.is_absent(), "{closed}");
    assert!(no_device.is_absent(), "{no_device}");
    assert!(no_device
        .to_string()
        .contains("/nonexistent/tpmrm0 does not exist"));
    assert!(matches!(bad, TpmError::BadTcti { .. }), "{bad}");
    assert!(!bad.is_absent());
}

#[test]
fn a_device_node_that_is_not_usable_is_an_error_not_an_absent_tpm() {
    // Exists, but is no TPM: opening it works or not, talking to it fails.
    let temp = TempDir::new().unwrap();
    let node = temp.path().join("tpmrm0");
    fs::write(&node, b"").unwrap();

    let err = TpmConnection::connect(&format!("device:{}", node.display())).unwrap_err();

    assert!(!err.is_absent(), "{err}");
}

#[test]
fn credentials_of_one_backend_are_not_the_others() {
    let tpm = Swtpm::start();
    let (_file_temp, file_dir) = state_dir();
    let (_tpm_temp, tpm_dir) = state_dir();
    let mut file = FileKeystore::open(&file_dir, OsRng).unwrap();
    let mut store = open(&tpm, &tpm_dir);
    let file_ids: Vec<Vec<u8>> = [false, true]
        .map(|d| create(&mut file, b"f", d).0.id)
        .to_vec();
    let tpm_ids: Vec<Vec<u8>> = [false, true]
        .map(|d| create(&mut store, b"t", d).0.id)
        .to_vec();

    for id in &file_ids {
        assert_eq!(store.find_credential(&RP_HASH, id).unwrap(), None);
    }
    for id in &tpm_ids {
        assert_eq!(file.find_credential(&RP_HASH, id).unwrap(), None);
    }
    drop(store);
    drop(file);
    // Nor does one backend take over the other's state directory.
    let tpm_on_file_dir = try_open(&tpm, &file_dir).unwrap_err();
    let file_on_tpm_dir = FileKeystore::open(&tpm_dir, OsRng).unwrap_err();
    assert!(
        matches!(
            tpm_on_file_dir,
            StorageError::OtherBackend {
                found: BackendKind::File,
                wanted: BackendKind::Tpm,
                ..
            }
        ),
        "{tpm_on_file_dir}"
    );
    assert!(
        tpm_on_file_dir
            .to_string()
            .contains("start with --keystore file"),
        "{tpm_on_file_dir}"
    );
    assert!(
        matches!(
            file_on_tpm_dir,
            StorageError::OtherBackend {
                found: BackendKind::Tpm,
                ..
            }
        ),
        "{file_on_tpm_dir}"
    );
}

#[test]
fn a_tpm_in_dictionary_attack_lockout_still_serves_its_no_da_keys() {
    let tpm = Swtpm::start();
    let (_temp, dir) = state_dir();
    let mut store = open(&tpm, &dir);
    let (credential, public) = create(&mut store, b"1", true);
    drop(store);
    // One failed authorization of a DA-protected key puts the TPM in lockout. (Without a
    // resource manager every tool leaves its objects loaded: flush them after each.)
    let tool = |args: &[&str]| {
        tpm.tool(args);
        tpm.tool(&["tpm2_flushcontext", "-t"]);
    };
    tool(&[
        "tpm2_dictionarylockout",
        "-s",
        "-n",
        "1",
        "-t",
        "600",
        "-l",
        "600",
    ]);
    tool(&["tpm2_createprimary", "-C", "o", "-c", "primary.ctx"]);
    tool(&[
        "tpm2_create",
        "-C",
        "primary.ctx",
        "-G",
        "ecc",
        "-p",
        "right",
        "-u",
        "da.pub",
        "-r",
        "da.priv",
    ]);
    tool(&[
        "tpm2_load",
        "-C",
        "primary.ctx",
        "-u",
        "da.pub",
        "-r",
        "da.priv",
        "-c",
        "da.ctx",
    ]);
    fs::write(tpm.work_dir().join("data.txt"), b"data").unwrap();
    let sign = |auth: &str| {
        let stderr = tpm.tool_fails(&[
            "tpm2_sign",
            "-c",
            "da.ctx",
            "-p",
            auth,
            "-g",
            "sha256",
            "-o",
            "sig",
            "data.txt",
        ]);
        tpm.tool(&["tpm2_flushcontext", "-t"]);
        stderr
    };
    let wrong = sign("wrong");
    let locked = sign("right");

    let mut store = open(&tpm, &dir);
    let found = store
        .find_credential(&RP_HASH, &credential.id)
        .unwrap()
        .unwrap();
    let signature = store.sign(&found, b"during lockout").unwrap();
    let (fresh, fresh_public) = create(&mut store, b"2", false);
    let fresh_signature = store.sign(&fresh, b"during lockout").unwrap();

    assert!(wrong.contains("0x98E"), "authorization failure: {wrong}");
    assert!(locked.contains("0x921"), "TPM_RC_LOCKOUT: {locked}");
    assert!(verifies(&public, b"during lockout", &signature));
    assert!(verifies(&fresh_public, b"during lockout", &fresh_signature));
}
