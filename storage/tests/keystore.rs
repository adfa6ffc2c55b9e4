//! Behaviour of the keystore on a real state directory: one suite, run against each backend
//! (the encrypted file, and the TPM backend on a real TPM 2.0 simulator, swtpm).
//!
//! Every case is a function generic over a [`Harness`] (how to get a backend); the
//! `backend_suite!` list at the end instantiates each for both. Cases that only make sense
//! for one backend are in `tests/tpm_keystore.rs` (TPM) or are plain tests here (file).

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

#[cfg(feature = "tpm")]
use fido2d_swtpm::Swtpm;
use protocol::env::{
    Algorithm, Credential, CredentialExtras, Keystore, KeystoreError, NewCredential, PublicKey,
    RelyingParty, StateSlot, UserEntity,
};
use protocol::env::{CredProtect, HmacSecret};
use protocol::env::{PinCheck, MAX_PIN_RETRIES};
use sha2::{Digest as _, Sha256};
use storage::{
    FileKeystore, KeyBackend, KeystoreOptions, OsRng, PinHashCost, SoftwareKeys, StorageError,
    Store,
};
#[cfg(feature = "tpm")]
use storage::{TpmConfig, TpmKeys};
use tempfile::TempDir;
use zeroize::Zeroizing;

const RP_HASH: [u8; 32] = [0xA1; 32];
const OTHER_RP_HASH: [u8; 32] = [0xB2; 32];

/// How a case gets the backend under test.
trait Harness {
    type Keys: KeyBackend;
    /// The master-secret file of this backend, and its magic.
    const MASTER_FILE: &'static str;
    const MASTER_MAGIC: &'static [u8];
    /// The (algorithm, discoverable) pairs the backend creates.
    const KINDS: &'static [(Algorithm, bool)];
    /// A second algorithm for cases that mix two (the first one again if there is no other).
    const SECOND_ALGORITHM: Algorithm;

    fn new() -> Self;
    fn keys(&self) -> Self::Keys;

    fn try_open_with(
        &self,
        dir: &Path,
        options: KeystoreOptions,
    ) -> Result<Store<Self::Keys, OsRng>, StorageError> {
        Store::open_dir(dir, self.keys(), OsRng, options)
    }

    fn try_open(&self, dir: &Path) -> Result<Store<Self::Keys, OsRng>, StorageError> {
        self.try_open_with(dir, KeystoreOptions::default())
    }

    fn open_with(
        &self,
        dir: &Path,
        options: KeystoreOptions,
    ) -> Result<Store<Self::Keys, OsRng>, StorageError> {
        self.try_open_with(dir, options)
    }

    fn open(&self, dir: &Path) -> Store<Self::Keys, OsRng> {
        self.try_open(dir).unwrap()
    }

    /// The process dies: nothing of the store runs any more.
    fn crash(store: Store<Self::Keys, OsRng>);

    /// Lets a test try many wrong PINs: a TPM's dictionary-attack lockout (swtpm's default:
    /// 3 failures) would otherwise refuse PIN checks after the third.
    fn allow_wrong_pins(&self) {}
}

/// The encrypted file backend.
struct File;

impl Harness for File {
    type Keys = SoftwareKeys;
    const MASTER_FILE: &'static str = "master.key";
    const MASTER_MAGIC: &'static [u8] = b"FIDO2DMK";
    const KINDS: &'static [(Algorithm, bool)] = &[
        (Algorithm::Es256, false),
        (Algorithm::Es256, true),
        (Algorithm::EdDsa, false),
        (Algorithm::EdDsa, true),
    ];
    const SECOND_ALGORITHM: Algorithm = Algorithm::EdDsa;

    fn new() -> Self {
        File
    }

    fn keys(&self) -> SoftwareKeys {
        SoftwareKeys
    }

    fn crash(store: Store<SoftwareKeys, OsRng>) {
        std::mem::forget(store);
    }
}

/// The TPM backend, on a swtpm of its own.
#[cfg(feature = "tpm")]
struct Tpm(Swtpm);

#[cfg(feature = "tpm")]
impl Harness for Tpm {
    type Keys = TpmKeys;
    const MASTER_FILE: &'static str = "master.tpm";
    const MASTER_MAGIC: &'static [u8] = b"FIDO2DMT";
    const KINDS: &'static [(Algorithm, bool)] =
        &[(Algorithm::Es256, false), (Algorithm::Es256, true)];
    const SECOND_ALGORITHM: Algorithm = Algorithm::Es256;

    fn new() -> Self {
        Tpm(Swtpm::start())
    }

    fn keys(&self) -> TpmKeys {
        TpmKeys::open(&TpmConfig {
            tcti: self.0.tcti(),
            parent: None,
        })
        .unwrap()
    }

    /// swtpm serves one connection at a time, and a dead process's connection closes: the
    /// TPM side of a crash is the connection going away, which is what dropping does. (A
    /// crash leaves loaded objects behind only without a resource manager; /dev/tpmrm0
    /// flushes them.)
    fn crash(store: Store<TpmKeys, OsRng>) {
        drop(store);
    }

    fn allow_wrong_pins(&self) {
        self.0.set_dictionary_attack(1000, 1, 1);
    }
}

fn state_dir() -> (TempDir, PathBuf) {
    let temp = TempDir::new().unwrap();
    let dir = temp.path().join("state");
    (temp, dir)
}

fn user(id: &[u8], name: &str) -> UserEntity {
    UserEntity {
        id: id.to_vec(),
        name: Some(name.into()),
        display_name: Some(format!("{name} (display)")),
    }
}

fn create_for(
    store: &mut Store<impl KeyBackend, OsRng>,
    rp_id_hash: &[u8; 32],
    user: &UserEntity,
    algorithm: Algorithm,
    discoverable: bool,
) -> (Credential, PublicKey) {
    let rp = RelyingParty {
        id: "example.com".into(),
        name: Some("Example".into()),
    };
    let new = NewCredential {
        rp: &rp,
        rp_id_hash,
        user,
        algorithm,
        discoverable,
        extras: &CredentialExtras::default(),
    };
    store.create_credential(&new).unwrap()
}

fn create(
    store: &mut Store<impl KeyBackend, OsRng>,
    algorithm: Algorithm,
    discoverable: bool,
) -> (Credential, PublicKey) {
    let user = user(&[algorithm.to_byte(), u8::from(discoverable)], "alice");
    create_for(store, &RP_HASH, &user, algorithm, discoverable)
}

fn find(store: &mut Store<impl KeyBackend, OsRng>, rp: &[u8; 32], id: &[u8]) -> Option<Credential> {
    store.find_credential(rp, id).unwrap()
}

fn verify(public: &PublicKey, message: &[u8], signature: &[u8]) -> bool {
    match public.algorithm {
        Algorithm::Es256 => {
            use p256::ecdsa::signature::Verifier as _;
            let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&public.raw).unwrap();
            let Ok(signature) = p256::ecdsa::DerSignature::try_from(signature) else {
                return false;
            };
            key.verify(message, &signature).is_ok()
        }
        Algorithm::EdDsa => {
            let key =
                ed25519_dalek::VerifyingKey::from_bytes(&public.raw.clone().try_into().unwrap())
                    .unwrap();
            let Ok(signature) = ed25519_dalek::Signature::from_slice(signature) else {
                return false;
            };
            key.verify_strict(message, &signature).is_ok()
        }
    }
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn record_files(dir: &Path) -> Vec<PathBuf> {
    let credentials = dir.join("credentials");
    if !credentials.exists() {
        return Vec::new();
    }
    files(&credentials)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "cred"))
        .collect()
}

fn write_private(path: &Path, bytes: &[u8]) {
    fs::write(path, bytes).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

// ---- round trips ----

fn credentials_of_both_algorithms_and_kinds_survive_a_reopen_and_sign<H: Harness>() {
    let h = H::new();
    let (_temp, dir) = state_dir();
    let mut store = h.open(&dir);
    let created: Vec<_> = H::KINDS
        .iter()
        .map(|&(algorithm, discoverable)| create(&mut store, algorithm, discoverable))
        .collect();
    drop(store);

    let mut store = h.open(&dir);

    for (credential, public) in created {
        let found = find(&mut store, &RP_HASH, &credential.id).expect("found after reopen");
        assert_eq!(found, credential);
        assert_eq!(found.algorithm, public.algorithm);
        assert!(found.id.len() <= 255, "fits a U2F key handle");
        let signature = store.sign(&found, b"client data").unwrap();
        assert!(verify(&public, b"client data", &signature));
        assert!(!verify(&public, b"client datA", &signature));
    }
}

fn the_public_key_of_a_credential_is_the_one_it_was_made_with<H: Harness>() {
    let h = H::new();
    let (_temp, dir) = state_dir();
    let mut store = h.open(&dir);
    let created: Vec<_> = H::KINDS
        .iter()
        .map(|&(algorithm, discoverable)| create(&mut store, algorithm, discoverable))
        .collect();
    drop(store);
    let mut store = h.open(&dir);

    for (credential, public) in created {
        let found = find(&mut store, &RP_HASH, &credential.id).unwrap();
        assert_eq!(store.public_key(&found).unwrap(), public);
    }
    let bogus = Credential {
        key: protocol::env::KeyMaterial::new(vec![0xff; 7]),
        ..create(&mut store, Algorithm::Es256, false).0
    };
    assert!(matches!(
        store.public_key(&bogus),
        Err(KeystoreError::Failure(_))
    ));
}

fn discoverable_credentials_keep_their_user_rp_id_and_order<H: Harness>() {
    let h = H::new();
    let (_temp, dir) = state_dir();
    let mut store = h.open(&dir);
    let (first, _) = create_for(
        &mut store,
        &RP_HASH,
        &user(b"u1", "alice"),
        Algorithm::Es256,
        true,
    );
    let (second, _) = create_for(
        &mut store,
        &RP_HASH,
        &user(b"u2", "bob"),
        H::SECOND_ALGORITHM,
        true,
    );
    create_for(
        &mut store,
        &OTHER_RP_HASH,
        &user(b"u3", "carol"),
        Algorithm::Es256,
        true,
    );
    create_for(
        &mut store,
        &RP_HASH,
        &user(b"u4", "dave"),
        Algorithm::Es256,
        false,
    );
    drop(store);

    let mut store = h.open(&dir);
    let listed = store.discoverable_credentials(&RP_HASH).unwrap();

    assert_eq!(listed, vec![second.clone(), first.clone()]);
    assert_eq!(listed[1].user, Some(user(b"u1", "alice")));
    assert_eq!(listed[1].rp_id.as_deref(), Some("example.com"));
    assert!(second.created > first.created);
    assert_eq!(
        store
            .discoverable_credentials(&OTHER_RP_HASH)
            .unwrap()
            .len(),
        1
    );
    assert!(store.discoverable_credentials(&[0; 32]).unwrap().is_empty());
    assert_eq!(store.discoverable_count(), 3);
    assert_eq!(
        store.remaining_discoverable_credentials(),
        KeystoreOptions::DEFAULT_MAX_DISCOVERABLE - 3
    );
}

fn non_discoverable_credentials_store_nothing<H: Harness>() {
    let h = H::new();
    let (_temp, dir) = state_dir();
    let mut store = h.open(&dir);

    let (credential, _) = create(&mut store, Algorithm::Es256, false);

    assert!(record_files(&dir).is_empty());
    assert_eq!(store.discoverable_count(), 0);
    assert!(!credential.discoverable);
    assert_eq!(credential.user, None);
}

// ---- foreign IDs ----

fn an_id_with_any_bit_flipped_is_not_found<H: Harness>() {
    let h = H::new();
    let (_temp, dir) = state_dir();
    let mut store = h.open(&dir);
    for &(algorithm, discoverable) in H::KINDS {
        let (credential, _) = create(&mut store, algorithm, discoverable);

        for i in 0..credential.id.len() {
            for bit in 0..8 {
                let mut tampered = credential.id.clone();
                tampered[i] ^= 1 << bit;

                assert_eq!(
                    find(&mut store, &RP_HASH, &tampered),
                    None,
                    "byte {i} bit {bit}"
                );
            }
        }
    }
}

fn truncated_extended_and_empty_ids_are_not_found<H: Harness>() {
    let h = H::new();
    let (_temp, dir) = state_dir();
    let mut store = h.open(&dir);
    for &(algorithm, discoverable) in H::KINDS {
        let (credential, _) = create(&mut store, algorithm, discoverable);
        let mut extended = credential.id.clone();
        extended.push(0);

        for len in 0..credential.id.len() {
            assert_eq!(find(&mut store, &RP_HASH, &credential.id[..len]), None);
        }
        assert_eq!(find(&mut store, &RP_HASH, &extended), None);
        assert_eq!(find(&mut store, &RP_HASH, &vec![0x01; 1024]), None);
    }
}

fn an_id_is_bound_to_its_rp<H: Harness>() {
    let h = H::new();
    let (_temp, dir) = state_dir();
    let mut store = h.open(&dir);
    for &(algorithm, discoverable) in H::KINDS {
        let (credential, _) = create(&mut store, algorithm, discoverable);

        let found = find(&mut store, &OTHER_RP_HASH, &credential.id);

        assert_eq!(found, None);
    }
}

fn an_id_from_another_keystore_is_not_found<H: Harness>() {
    let h = H::new();
    let (_temp, dir) = state_dir();
    let (_other_temp, other_dir) = state_dir();
    let mut other = h.open(&other_dir);
    let foreign: Vec<Credential> = H::KINDS
        .iter()
        .map(|&(algorithm, discoverable)| create(&mut other, algorithm, discoverable).0)
        .collect();
    drop(other);
    let mut store = h.open(&dir);

    for credential in foreign {
        let found = find(&mut store, &RP_HASH, &credential.id);

        assert_eq!(found, None);
    }
}

// ---- replacement and revocation ----

fn a_discoverable_credential_for_the_same_user_replaces_the_old_one<H: Harness>() {
    let h = H::new();
    let (_temp, dir) = state_dir();
    let mut store = h.open(&dir);
    let alice = user(b"user-1", "alice");
    let (old, _) = create_for(&mut store, &RP_HASH, &alice, Algorithm::Es256, true);
    let renamed = user(b"user-1", "alice.new");

    let (new, _) = create_for(&mut store, &RP_HASH, &renamed, H::SECOND_ALGORITHM, true);
    drop(store);
    let mut store = h.open(&dir);

    assert_eq!(find(&mut store, &RP_HASH, &old.id), None);
    assert_eq!(find(&mut store, &RP_HASH, &new.id), Some(new.clone()));
    assert_eq!(store.discoverable_credentials(&RP_HASH).unwrap(), vec![new]);
    assert_eq!(record_files(&dir).len(), 1);
}

fn the_same_user_id_at_another_rp_is_not_replaced<H: Harness>() {
    let h = H::new();
    let (_temp, dir) = state_dir();
    let mut store = h.open(&dir);
    let alice = user(b"user-1", "alice");
    let (first, _) = create_for(&mut store, &RP_HASH, &alice, Algorithm::Es256, true);

    create_for(&mut store, &OTHER_RP_HASH, &alice, Algorithm::Es256, true);

    assert_eq!(find(&mut store, &RP_HASH, &first.id), Some(first));
    assert_eq!(store.discoverable_count(), 2);
}

fn a_discoverable_id_whose_record_is_deleted_is_not_found<H: Harness>() {
    let h = H::new();
    let (_temp, dir) = state_dir();
    let mut store = h.open(&dir);
    let (kept, _) = create_for(
        &mut store,
        &RP_HASH,
        &user(b"1", "a"),
        Algorithm::Es256,
        true,
    );
    let before = record_files(&dir);
    let (deleted, _) = create_for(
        &mut store,
        &RP_HASH,
        &user(b"2", "b"),
        Algorithm::Es256,
        true,
    );
    let deleted_file = record_files(&dir)
        .into_iter()
        .find(|f| !before.contains(f))
        .unwrap();
    drop(store);

    fs::remove_file(deleted_file).unwrap();
    let mut store = h.open(&dir);

    assert_eq!(find(&mut store, &RP_HASH, &deleted.id), None);
    assert_eq!(find(&mut store, &RP_HASH, &kept.id), Some(kept));
}

fn a_full_keystore_refuses_discoverable_credentials_only<H: Harness>() {
    let h = H::new();
    let (_temp, dir) = state_dir();
    let options = KeystoreOptions {
        max_discoverable: 1,
        ..KeystoreOptions::default()
    };
    let mut store = h.open_with(&dir, options.clone()).unwrap();
    create_for(
        &mut store,
        &RP_HASH,
        &user(b"1", "a"),
        Algorithm::Es256,
        true,
    );
    let rp = RelyingParty::default();
    let second_user = user(b"2", "b");
    let new = NewCredential {
        rp: &rp,
        rp_id_hash: &RP_HASH,
        user: &second_user,
        algorithm: Algorithm::Es256,
        discoverable: true,
        extras: &CredentialExtras::default(),
    };

    let refused = store.create_credential(&new);
    let replaced = create_for(
        &mut store,
        &RP_HASH,
        &user(b"1", "a2"),
        H::SECOND_ALGORITHM,
        true,
    );
    let non_discoverable = create_for(&mut store, &RP_HASH, &second_user, Algorithm::Es256, false);
    drop(store);
    let store = h.open_with(&dir, options).unwrap();

    assert_eq!(refused.unwrap_err(), KeystoreError::Full);
    assert!(replaced.0.discoverable);
    assert!(!non_discoverable.0.discoverable);
    assert_eq!(store.remaining_discoverable_credentials(), 0);
}

// ---- signature counter ----

fn the_counter_increases_strictly_across_reopens_and_crashes<H: Harness>() {
    let h = H::new();
    let (_temp, dir) = state_dir();
    let mut seen = Vec::new();

    for round in 0..4 {
        let mut store = h.open(&dir);
        for _ in 0..(700 * round + 1) {
            seen.push(store.next_signature_counter().unwrap());
        }
        if round % 2 == 0 {
            drop(store);
        } else {
            // A crash: nothing of the store runs any more.
            H::crash(store);
        }
    }

    assert!(seen[0] >= 1);
    assert!(seen.windows(2).all(|w| w[1] > w[0]), "strictly increasing");
}

fn creating_discoverable_credentials_keeps_the_counter_increasing<H: Harness>() {
    let h = H::new();
    let (_temp, dir) = state_dir();
    let mut store = h.open(&dir);
    let before = store.next_signature_counter().unwrap();

    let (credential, _) = create(&mut store, Algorithm::Es256, true);
    let after = store.next_signature_counter().unwrap();

    assert!(u64::from(before) < credential.created);
    assert!(credential.created < u64::from(after));
}

// ---- crashes and damage ----

fn stray_temporary_files_from_an_interrupted_write_are_ignored_and_removed<H: Harness>() {
    let h = H::new();
    let (_temp, dir) = state_dir();
    let mut store = h.open(&dir);
    let (credential, _) = create(&mut store, Algorithm::Es256, true);
    let counter = store.next_signature_counter().unwrap();
    drop(store);
    let record = record_files(&dir).pop().unwrap();
    let record_name = record.file_name().unwrap().to_str().unwrap().to_owned();
    let strays = [
        dir.join("credentials").join(format!(".{record_name}.tmp")),
        dir.join("credentials")
            .join(".0123456789abcdef0123456789abcdef.cred.tmp"),
        dir.join(".counter.tmp"),
        dir.join(format!(".{}.tmp", H::MASTER_FILE)),
    ];
    let valid_prefix = fs::read(&record).unwrap();
    fs::write(&strays[0], &valid_prefix[..valid_prefix.len() / 2]).unwrap();
    fs::write(&strays[1], b"").unwrap();
    fs::write(&strays[2], b"FIDO2DCT\x01garbage").unwrap();
    fs::write(&strays[3], H::MASTER_MAGIC).unwrap();

    let mut store = h.open(&dir);

    assert_eq!(find(&mut store, &RP_HASH, &credential.id), Some(credential));
    assert!(store.next_signature_counter().unwrap() > counter);
    assert!(store.damaged_files().is_empty());
    assert!(strays.iter().all(|p| !p.exists()));
}

fn an_interrupted_replacement_keeps_the_newer_record<H: Harness>() {
    let h = H::new();
    let (_temp, dir) = state_dir();
    let mut store = h.open(&dir);
    let alice = user(b"user-1", "alice");
    let (old, _) = create_for(&mut store, &RP_HASH, &alice, Algorithm::Es256, true);
    let old_file = record_files(&dir).pop().unwrap();
    let old_bytes = fs::read(&old_file).unwrap();
    let (new, _) = create_for(&mut store, &RP_HASH, &alice, Algorithm::Es256, true);
    H::crash(store);
    // The crash came between writing the new record and removing the old one.
    fs::write(&old_file, old_bytes).unwrap();

    let mut store = h.open(&dir);

    assert_eq!(find(&mut store, &RP_HASH, &old.id), None);
    assert_eq!(find(&mut store, &RP_HASH, &new.id), Some(new));
    assert_eq!(store.discoverable_count(), 1);
    assert_eq!(record_files(&dir).len(), 1);
    assert!(!old_file.exists());
}

fn a_damaged_record_is_set_aside_and_the_others_still_load<H: Harness>() {
    let h = H::new();
    let (_temp, dir) = state_dir();
    let mut store = h.open(&dir);
    let (good, _) = create_for(
        &mut store,
        &RP_HASH,
        &user(b"1", "a"),
        Algorithm::Es256,
        true,
    );
    let good_file = record_files(&dir).pop().unwrap();
    let (bad, _) = create_for(
        &mut store,
        &RP_HASH,
        &user(b"2", "b"),
        H::SECOND_ALGORITHM,
        true,
    );
    drop(store);
    let bad_file = record_files(&dir)
        .into_iter()
        .find(|f| *f != good_file)
        .unwrap();
    let mut bytes = fs::read(&bad_file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    fs::write(&bad_file, &bytes).unwrap();

    let mut store = h.open(&dir);

    let aside = PathBuf::from(format!("{}.damaged", bad_file.display()));
    assert_eq!(store.damaged_files(), std::slice::from_ref(&aside));
    assert_eq!(fs::read(&aside).unwrap(), bytes, "kept as it was");
    assert!(!bad_file.exists());
    assert_eq!(find(&mut store, &RP_HASH, &good.id), Some(good));
    assert_eq!(find(&mut store, &RP_HASH, &bad.id), None);
    assert_eq!(store.discoverable_count(), 1);
    drop(store);
    let store = h.open(&dir);
    assert!(store.damaged_files().is_empty(), "reported once");
}

fn a_record_renamed_to_another_credential_s_name_is_damaged<H: Harness>() {
    let h = H::new();
    let (_temp, dir) = state_dir();
    let mut store = h.open(&dir);
    create_for(
        &mut store,
        &RP_HASH,
        &user(b"1", "a"),
        Algorithm::Es256,
        true,
    );
    drop(store);
    let file = record_files(&dir).pop().unwrap();
    let moved = dir
        .join("credentials")
        .join("00000000000000000000000000000000.cred");
    fs::rename(&file, &moved).unwrap();

    let store = h.open(&dir);

    assert_eq!(store.damaged_files().len(), 1);
    assert_eq!(store.discoverable_count(), 0);
}

fn a_corrupt_master_key_is_an_error_naming_the_file_and_is_left_untouched<H: Harness>() {
    let h = H::new();
    for (name, corrupt, reason) in [
        ("bad magic", b"NOTAKEY!\x01".repeat(6), "bad magic"),
        (
            "truncated",
            [H::MASTER_MAGIC, b"\x01abc"].concat(),
            "truncated",
        ),
        ("empty", Vec::new(), "truncated"),
    ] {
        let (_temp, dir) = state_dir();
        let mut store = h.open(&dir);
        let (credential, _) = create(&mut store, Algorithm::Es256, true);
        drop(store);
        let master = dir.join(H::MASTER_FILE);
        fs::write(&master, &corrupt).unwrap();

        let err = h.try_open(&dir).unwrap_err();

        let message = err.to_string();
        assert!(matches!(err, StorageError::Corrupt { .. }), "{name}");
        assert!(message.contains(&master.display().to_string()), "{message}");
        assert!(message.contains("master key file"), "{message}");
        assert!(message.contains(reason), "{message}");
        assert_eq!(fs::read(&master).unwrap(), corrupt, "{name}: untouched");
        assert_eq!(record_files(&dir).len(), 1, "{name}: records untouched");
        assert!(!credential.id.is_empty());
    }
}

fn a_missing_master_key_beside_existing_data_is_an_error<H: Harness>() {
    let h = H::new();
    let (_temp, dir) = state_dir();
    let mut store = h.open(&dir);
    create(&mut store, Algorithm::Es256, true);
    drop(store);
    fs::remove_file(dir.join(H::MASTER_FILE)).unwrap();

    let err = h.try_open(&dir).unwrap_err();

    assert!(
        matches!(err, StorageError::MissingMasterKey { .. }),
        "{err}"
    );
    assert!(!dir.join(H::MASTER_FILE).exists());
}

fn a_corrupt_counter_file_is_an_error<H: Harness>() {
    let h = H::new();
    let (_temp, dir) = state_dir();
    drop(h.open(&dir));
    let counter = dir.join("counter");
    let mut bytes = fs::read(&counter).unwrap();
    bytes[20] ^= 0x40;
    fs::write(&counter, &bytes).unwrap();

    let err = h.try_open(&dir).unwrap_err();

    assert!(err
        .to_string()
        .starts_with(&format!("counter file {} is corrupt", counter.display())));
    assert_eq!(fs::read(&counter).unwrap(), bytes);
}

// ---- reset ----

fn reset_makes_every_earlier_id_unusable_and_keeps_the_counter_increasing<H: Harness>() {
    let h = H::new();
    let (_temp, dir) = state_dir();
    let mut store = h.open(&dir);
    let created: Vec<_> = H::KINDS
        .iter()
        .map(|&(algorithm, discoverable)| create(&mut store, algorithm, discoverable).0)
        .collect();
    let counter = store.next_signature_counter().unwrap();
    let old_master = fs::read(dir.join(H::MASTER_FILE)).unwrap();

    store.reset().unwrap();

    for credential in &created {
        assert_eq!(find(&mut store, &RP_HASH, &credential.id), None);
    }
    assert!(store.discoverable_credentials(&RP_HASH).unwrap().is_empty());
    assert!(store.next_signature_counter().unwrap() > counter);
    assert_ne!(fs::read(dir.join(H::MASTER_FILE)).unwrap(), old_master);
    assert!(files(&dir.join("credentials")).is_empty());
    drop(store);
    let mut store = h.open(&dir);
    for credential in &created {
        assert_eq!(find(&mut store, &RP_HASH, &credential.id), None);
    }
    assert!(store.next_signature_counter().unwrap() > counter + 1);
    assert_eq!(
        store.remaining_discoverable_credentials(),
        KeystoreOptions::DEFAULT_MAX_DISCOVERABLE
    );
    let (fresh, _) = create(&mut store, Algorithm::Es256, true);
    assert!(find(&mut store, &RP_HASH, &fresh.id).is_some());
}

/// Copies the regular files of a state directory (one level of folders).
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    files(dir)
        .into_iter()
        .map(|f| {
            (
                f.strip_prefix(dir).unwrap().to_path_buf(),
                fs::read(&f).unwrap(),
            )
        })
        .collect()
}

fn a_crash_during_reset_before_the_new_key_is_committed_leaves_the_old_state<H: Harness>() {
    let h = H::new();
    let (_temp, dir) = state_dir();
    let mut store = h.open(&dir);
    let (credential, _) = create(&mut store, Algorithm::Es256, true);
    let counter = store.next_signature_counter().unwrap();
    let before = snapshot(&dir);
    store.reset().unwrap();
    let new_counter = fs::read(dir.join("counter")).unwrap();
    drop(store);
    // Rebuild the state the crash left: old files, plus the counter sealed with the key that was
    // never committed.
    fs::remove_dir_all(&dir).unwrap();
    fs::create_dir_all(dir.join("credentials")).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    for (name, bytes) in &before {
        write_private(&dir.join(name), bytes);
    }
    write_private(&dir.join("counter.next"), &new_counter);

    let mut store = h.open(&dir);

    assert_eq!(find(&mut store, &RP_HASH, &credential.id), Some(credential));
    assert!(store.next_signature_counter().unwrap() > counter);
    assert!(!dir.join("counter.next").exists());
}

fn a_crash_during_reset_after_the_new_key_is_committed_leaves_the_new_state<H: Harness>() {
    let h = H::new();
    let (_temp, dir) = state_dir();
    let mut store = h.open(&dir);
    let (credential, _) = create(&mut store, Algorithm::Es256, true);
    let record = record_files(&dir).pop().unwrap();
    let record_bytes = fs::read(&record).unwrap();
    let old_counter = fs::read(dir.join("counter")).unwrap();
    let counter = store.next_signature_counter().unwrap();
    store.reset().unwrap();
    H::crash(store);
    // The crash came after master.key was replaced: the new counter is still `counter.next`,
    // the old counter and record are still there.
    fs::rename(dir.join("counter"), dir.join("counter.next")).unwrap();
    fs::write(dir.join("counter"), old_counter).unwrap();
    fs::write(&record, record_bytes).unwrap();

    let mut store = h.open(&dir);

    assert_eq!(find(&mut store, &RP_HASH, &credential.id), None);
    assert_eq!(store.discoverable_count(), 0);
    assert!(!record.exists(), "open finishes the reset: the record goes");
    assert_eq!(store.damaged_files(), [] as [PathBuf; 0]);
    assert!(store.next_signature_counter().unwrap() > counter);
    assert!(!dir.join("counter.next").exists());
}

// ---- extension state, credential management, state slots ----

fn extras() -> CredentialExtras {
    CredentialExtras {
        cred_protect: CredProtect::UserVerificationOptionalWithCredentialIdList,
        hmac_secret: Some(HmacSecret {
            with_uv: Zeroizing::new([0x51; 32]),
            without_uv: Zeroizing::new([0x52; 32]),
        }),
        cred_blob: Some(b"a credential blob".to_vec()),
        large_blob_key: Some(Zeroizing::new([0x53; 32])),
        third_party_payment: true,
    }
}

fn extension_state_comes_back_with_both_kinds_after_a_reopen<H: Harness>() {
    let h = H::new();
    let (_temp, dir) = state_dir();
    let mut store = h.open(&dir);
    let rp = RelyingParty {
        id: "example.com".into(),
        name: None,
    };
    let ids: Vec<Vec<u8>> = [false, true]
        .into_iter()
        .map(|discoverable| {
            let user = user(&[u8::from(discoverable)], "alice");
            let new = NewCredential {
                rp: &rp,
                rp_id_hash: &RP_HASH,
                user: &user,
                algorithm: Algorithm::Es256,
                discoverable,
                extras: &extras(),
            };
            let (credential, _) = store.create_credential(&new).unwrap();
            assert_eq!(credential.extras, extras());
            credential.id
        })
        .collect();
    drop(store);

    let mut store = h.open(&dir);

    for id in &ids {
        assert_eq!(find(&mut store, &RP_HASH, id).unwrap().extras, extras());
    }
    let discovered = store.discoverable_credentials(&RP_HASH).unwrap();
    assert_eq!(discovered[0].extras, extras());
    for file in files(&dir) {
        let bytes = fs::read(&file).unwrap();
        assert!(
            !bytes.windows(8).any(|w| w == [0x51; 8] || w == [0x53; 8]),
            "{} holds a secret in the clear",
            file.display()
        );
    }
}

fn all_discoverable_credentials_spans_every_rp<H: Harness>() {
    let h = H::new();
    let (_temp, dir) = state_dir();
    let mut store = h.open(&dir);
    let (a, _) = create_for(
        &mut store,
        &[1; 32],
        &user(b"a", "a"),
        Algorithm::Es256,
        true,
    );
    let (b, _) = create_for(
        &mut store,
        &[2; 32],
        &user(b"b", "b"),
        H::SECOND_ALGORITHM,
        true,
    );
    create_for(
        &mut store,
        &[2; 32],
        &user(b"c", "c"),
        Algorithm::Es256,
        false,
    );

    let mut ids: Vec<Vec<u8>> = store
        .all_discoverable_credentials()
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    ids.sort();
    let mut expected = vec![a.id, b.id];
    expected.sort();

    assert_eq!(ids, expected);
    assert_eq!(store.discoverable_count(), 2);
}

fn a_deleted_credential_is_gone_for_good_and_its_id_stops_working<H: Harness>() {
    let h = H::new();
    let (_temp, dir) = state_dir();
    let mut store = h.open(&dir);
    let (deleted, _) = create_for(
        &mut store,
        &RP_HASH,
        &user(b"deleted", "a"),
        Algorithm::Es256,
        true,
    );
    let (kept, _) = create_for(
        &mut store,
        &RP_HASH,
        &user(b"kept", "b"),
        H::SECOND_ALGORITHM,
        true,
    );
    let (plain, _) = create(&mut store, Algorithm::Es256, false);

    assert!(store.delete_credential(&deleted.id).unwrap());
    assert!(!store.delete_credential(&deleted.id).unwrap(), "only once");
    assert!(
        !store.delete_credential(&plain.id).unwrap(),
        "a non-discoverable credential is stored nowhere"
    );
    assert!(!store.delete_credential(b"not an id").unwrap());
    assert_eq!(find(&mut store, &RP_HASH, &deleted.id), None);
    drop(store);

    let mut store = h.open(&dir);
    assert_eq!(find(&mut store, &RP_HASH, &deleted.id), None);
    assert_eq!(find(&mut store, &RP_HASH, &kept.id), Some(kept));
    assert_eq!(store.discoverable_count(), 1);
    assert_eq!(record_files(&dir).len(), 1);
}

fn an_updated_user_is_kept_across_a_reopen<H: Harness>() {
    let h = H::new();
    let (_temp, dir) = state_dir();
    let mut store = h.open(&dir);
    let (credential, _) = create(&mut store, Algorithm::Es256, true);
    let (plain, _) = create(&mut store, Algorithm::Es256, false);
    let mut renamed = credential.user.clone().unwrap();
    renamed.name = Some("alice.smith".into());
    renamed.display_name = None;

    assert!(store.update_user(&credential.id, &renamed).unwrap());
    assert!(!store.update_user(&plain.id, &renamed).unwrap());
    drop(store);

    let mut store = h.open(&dir);
    let found = find(&mut store, &RP_HASH, &credential.id).unwrap();
    assert_eq!(found.user, Some(renamed));
    assert_eq!(found.created, credential.created);
    assert_eq!(record_files(&dir).len(), 1);
}

fn state_slots_are_durable_separate_and_sealed<H: Harness>() {
    let h = H::new();
    let (_temp, dir) = state_dir();
    let mut store = h.open(&dir);
    assert_eq!(store.read_state(StateSlot::Authenticator).unwrap(), None);

    store
        .write_state(StateSlot::Authenticator, b"PIN-STATE-1")
        .unwrap();
    store
        .write_state(StateSlot::Authenticator, b"PIN-STATE-2")
        .unwrap();
    store.write_state(StateSlot::LargeBlobs, b"BLOBS").unwrap();
    drop(store);

    let mut store = h.open(&dir);
    let read = |store: &mut Store<H::Keys, OsRng>, slot| {
        store.read_state(slot).unwrap().map(|b| b.to_vec())
    };
    assert_eq!(
        read(&mut store, StateSlot::Authenticator),
        Some(b"PIN-STATE-2".to_vec())
    );
    assert_eq!(
        read(&mut store, StateSlot::LargeBlobs),
        Some(b"BLOBS".to_vec())
    );
    for file in files(&dir) {
        let bytes = fs::read(&file).unwrap();
        assert!(!bytes.windows(9).any(|w| w == b"PIN-STATE"));
        assert_eq!(mode(&file), 0o600);
    }
}

fn reset_erases_the_state_slots<H: Harness>() {
    let h = H::new();
    let (_temp, dir) = state_dir();
    let mut store = h.open(&dir);
    store.write_state(StateSlot::Authenticator, b"pin").unwrap();
    store.write_state(StateSlot::LargeBlobs, b"blobs").unwrap();

    store.reset().unwrap();

    assert_eq!(store.read_state(StateSlot::Authenticator).unwrap(), None);
    assert!(!dir.join("authenticator.state").exists());
    drop(store);
    let mut store = h.open(&dir);
    assert_eq!(store.read_state(StateSlot::LargeBlobs).unwrap(), None);
}

fn a_reset_interrupted_after_its_commit_is_finished_at_open<H: Harness>() {
    let h = H::new();
    let (_temp, dir) = state_dir();
    let mut store = h.open_with(&dir, fast_pin()).unwrap();
    store
        .write_state(StateSlot::Authenticator, b"old settings")
        .unwrap();
    store.set_pin(&pin_hash("1234"), MAX_PIN_RETRIES).unwrap();
    let old: Vec<(&str, Vec<u8>)> = ["authenticator.state", "pin.state", "counter"]
        .into_iter()
        .map(|name| (name, fs::read(dir.join(name)).unwrap()))
        .collect();
    store.reset().unwrap();
    H::crash(store);
    // The crash came after the new master key was committed, before the old key's files were
    // removed: the new counter is still `counter.next`.
    fs::rename(dir.join("counter"), dir.join("counter.next")).unwrap();
    for (name, bytes) in &old {
        write_private(&dir.join(name), bytes);
    }

    let mut store = h.open_with(&dir, fast_pin()).unwrap();

    assert_eq!(store.read_state(StateSlot::Authenticator).unwrap(), None);
    assert_eq!(
        store.pin_retries().unwrap(),
        None,
        "the reset removed the PIN"
    );
    assert_eq!(
        store.damaged_files(),
        [] as [PathBuf; 0],
        "nothing set aside"
    );
    for name in ["authenticator.state", "pin.state", "counter.next"] {
        assert!(!dir.join(name).exists(), "{name} is still there");
    }
}

/// Issue 15: one flipped byte in a state file's header (the master key id) used to make the
/// file read as "another key's leftover" and the slot as empty, forgetting the PIN. No reset
/// leaves such a file, so it is an error, and the file stays as it is.
fn a_state_file_under_another_key_id_is_an_error_never_an_empty_state<H: Harness>() {
    /// The master key id's first byte: after the magic (8) and the format version (1).
    const KEY_ID_AT: usize = 9;
    let h = H::new();
    let (_temp, dir) = state_dir();
    let mut store = h.open_with(&dir, fast_pin()).unwrap();
    store.set_pin(&pin_hash("1234"), MAX_PIN_RETRIES).unwrap();
    store
        .write_state(StateSlot::Authenticator, b"settings")
        .unwrap();
    drop(store);

    for name in ["pin.state", "authenticator.state"] {
        let path = dir.join(name);
        let genuine = fs::read(&path).unwrap();
        let mut flipped = genuine.clone();
        flipped[KEY_ID_AT] ^= 0x01;
        write_private(&path, &flipped);

        let Err(err) = h.try_open_with(&dir, fast_pin()) else {
            panic!("a store with {name} under another key id opened");
        };

        assert!(
            matches!(&err, StorageError::Corrupt { path: p, .. } if *p == path),
            "{err}"
        );
        assert!(err.to_string().contains("another master key"), "{err}");
        assert_eq!(fs::read(&path).unwrap(), flipped, "{name} is left as it is");
        write_private(&path, &genuine);
    }
    let mut store = h.open_with(&dir, fast_pin()).unwrap();
    assert_eq!(store.pin_retries().unwrap(), Some(MAX_PIN_RETRIES));
    assert_eq!(
        store
            .read_state(StateSlot::Authenticator)
            .unwrap()
            .map(|b| b.to_vec()),
        Some(b"settings".to_vec())
    );
}

fn a_damaged_state_file_is_an_error_and_is_left_in_place<H: Harness>() {
    let h = H::new();
    let (_temp, dir) = state_dir();
    let mut store = h.open(&dir);
    store.write_state(StateSlot::Authenticator, b"pin").unwrap();
    drop(store);
    let path = dir.join("authenticator.state");
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    write_private(&path, &bytes);

    let err = h.try_open(&dir).unwrap_err();

    assert!(matches!(
        err,
        StorageError::Corrupt {
            kind: "state file",
            ..
        }
    ));
    assert!(err.to_string().contains("authenticator.state"), "{err}");
    assert_eq!(fs::read(&path).unwrap(), bytes, "nothing overwritten");
}

// ---- algorithms ----

fn unsupported_algorithms_are_refused<H: Harness>() {
    let h = H::new();
    let (_temp, dir) = state_dir();
    let mut store = h.open(&dir);
    let rp = RelyingParty::default();
    let alice = user(b"1", "alice");

    for algorithm in [Algorithm::Es256, Algorithm::EdDsa] {
        let made = H::KINDS.iter().any(|&(a, _)| a == algorithm);
        assert_eq!(store.supports(algorithm), made, "{algorithm:?}");
        if made {
            continue;
        }
        for discoverable in [false, true] {
            let new = NewCredential {
                rp: &rp,
                rp_id_hash: &RP_HASH,
                user: &alice,
                algorithm,
                discoverable,
                extras: &CredentialExtras::default(),
            };

            let refused = store.create_credential(&new);

            assert!(
                matches!(refused, Err(KeystoreError::Failure(_))),
                "{refused:?}"
            );
        }
    }
    assert_eq!(store.discoverable_count(), 0);
    assert!(record_files(&dir).is_empty());
}

// ---- the state directory ----

fn files_and_folders_are_private<H: Harness>() {
    let h = H::new();
    let (_temp, dir) = state_dir();
    let mut store = h.open(&dir);
    create(&mut store, Algorithm::Es256, true);
    store.next_signature_counter().unwrap();

    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("credentials")), 0o700);
    assert_eq!(mode(&dir.join(H::MASTER_FILE)), 0o600);
    assert_eq!(mode(&dir.join("counter")), 0o600);
    let all = files(&dir);
    assert_eq!(all.len(), 3);
    for file in all {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}

fn private_keys_never_appear_in_any_file<H: Harness>() {
    let h = H::new();
    let (_temp, dir) = state_dir();
    let mut store = h.open(&dir);
    let mut created = Vec::new();
    for _ in 0..3 {
        for &(algorithm, discoverable) in H::KINDS {
            created.push(create(&mut store, algorithm, discoverable));
        }
    }
    store.reset().unwrap();
    for &(algorithm, discoverable) in H::KINDS {
        created.push(create(&mut store, algorithm, discoverable));
    }
    drop(store);
    let publics: Vec<&PublicKey> = created.iter().map(|(_, public)| public).collect();

    let mut written: Vec<(String, Vec<u8>)> = files(&dir)
        .into_iter()
        .map(|file| (file.display().to_string(), fs::read(&file).unwrap()))
        .collect();
    written.extend(
        created
            .iter()
            .map(|(credential, _)| ("a credential ID".to_owned(), credential.id.clone())),
    );
    for (name, bytes) in &written {
        // The key material (a wrapped scalar, a TPM blob) is never in the clear...
        for (credential, _) in &created {
            let material = credential.key.as_bytes();
            assert!(
                !bytes
                    .windows(8)
                    .any(|w| material.windows(8).any(|m| m == w)),
                "{name} holds key material in the clear"
            );
        }
        // ...and no 32 bytes anywhere are a private key of any credential (a raw scalar or
        // seed, as on its own or inside a DER or PKCS#8 encoding).
        assert!(
            !holds_a_private_key_of(bytes, &publics),
            "{name} holds a private key"
        );
    }
}

/// Whether some 32 consecutive bytes of `bytes` are the private key of one of `publics`.
fn holds_a_private_key_of(bytes: &[u8], publics: &[&PublicKey]) -> bool {
    use p256::elliptic_curve::sec1::ToSec1Point as _;
    let es256: Vec<&[u8]> = publics
        .iter()
        .filter(|p| p.algorithm == Algorithm::Es256)
        .map(|p| p.raw.as_slice())
        .collect();
    let eddsa: Vec<&[u8]> = publics
        .iter()
        .filter(|p| p.algorithm == Algorithm::EdDsa)
        .map(|p| p.raw.as_slice())
        .collect();
    bytes.windows(32).any(|window| {
        let p256_match = !es256.is_empty()
            && p256::NonZeroScalar::try_from(window).is_ok_and(|scalar| {
                let point = p256::PublicKey::from_secret_scalar(&scalar).to_sec1_point(false);
                es256.contains(&point.as_bytes())
            });
        let ed25519_match = !eddsa.is_empty() && {
            let seed: [u8; 32] = window.try_into().unwrap();
            let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
            eddsa.contains(&public.as_bytes().as_slice())
        };
        p256_match || ed25519_match
    })
}

fn a_state_directory_open_to_others_is_refused<H: Harness>() {
    let h = H::new();
    let (_temp, dir) = state_dir();
    drop(h.open(&dir));
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();

    let err = h.try_open(&dir).unwrap_err();

    assert_eq!(
        err.to_string(),
        format!(
            "{} has permissions 0755; it must not be accessible to group or others (chmod 0700)",
            dir.display()
        )
    );
}

fn a_master_key_readable_by_others_is_refused<H: Harness>() {
    let h = H::new();
    let (_temp, dir) = state_dir();
    drop(h.open(&dir));
    let master = dir.join(H::MASTER_FILE);
    fs::set_permissions(&master, fs::Permissions::from_mode(0o644)).unwrap();

    let err = h.try_open(&dir).unwrap_err();

    assert!(matches!(
        err,
        StorageError::InsecurePermissions { mode: 0o644, .. }
    ));
    assert!(err.to_string().starts_with(&master.display().to_string()));
}

fn a_state_directory_that_cannot_be_created_is_a_clear_error<H: Harness>() {
    let h = H::new();
    let temp = TempDir::new().unwrap();
    let blocker = temp.path().join("file");
    fs::write(&blocker, b"").unwrap();
    let dir = blocker.join("state");

    let err = h.try_open(&dir).unwrap_err();

    assert!(err.to_string().starts_with(&format!(
        "cannot create state directory {}: ",
        dir.display()
    )));
}

fn a_state_directory_that_is_a_file_is_refused<H: Harness>() {
    let h = H::new();
    let temp = TempDir::new().unwrap();
    let file = temp.path().join("state");
    fs::write(&file, b"").unwrap();

    let err = h.try_open(&file).unwrap_err();

    assert_eq!(
        err.to_string(),
        format!("state directory {} is not a directory", file.display())
    );
}

fn an_unreadable_state_directory_is_a_clear_error<H: Harness>() {
    let h = H::new();
    let (_temp, dir) = state_dir();
    drop(h.open(&dir));
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o000)).unwrap();
    if fs::read_dir(&dir).is_ok() {
        // Running as root: permissions do not apply.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        return;
    }

    let err = h.try_open(&dir).unwrap_err();

    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    assert!(
        err.to_string().starts_with("cannot read state directory"),
        "{err}"
    );
}

fn storage_errors_become_keystore_failures_with_the_same_message<H: Harness>() {
    let h = H::new();
    let temp = TempDir::new().unwrap();
    let file = temp.path().join("state");
    fs::write(&file, b"").unwrap();
    let err = h.try_open(&file).unwrap_err();
    let message = err.to_string();

    let converted = KeystoreError::from(err);

    assert_eq!(converted, KeystoreError::Failure(message));
}

// ---- the in-memory variant ----

#[test]
fn the_in_memory_keystore_behaves_like_the_file_one() {
    let mut store = FileKeystore::in_memory(OsRng);
    let rp = RelyingParty {
        id: "example.com".into(),
        name: None,
    };
    let alice = user(b"1", "alice");
    let new = NewCredential {
        rp: &rp,
        rp_id_hash: &RP_HASH,
        user: &alice,
        algorithm: Algorithm::EdDsa,
        discoverable: true,
        extras: &CredentialExtras::default(),
    };

    let (credential, public) = store.create_credential(&new).unwrap();
    let found = store.find_credential(&RP_HASH, &credential.id).unwrap();
    let signature = store.sign(&credential, b"m").unwrap();

    assert_eq!(found, Some(credential));
    assert!(verify(&public, b"m", &signature));
    assert_eq!(
        store
            .find_credential(&OTHER_RP_HASH, &found.unwrap().id)
            .unwrap(),
        None
    );
}

/// Slow to set up (10,000 synced writes): `cargo test --release -- --ignored`.
fn ten_thousand_discoverable_credentials_open_and_are_found_quickly<H: Harness>() {
    let h = H::new();
    let (_temp, dir) = state_dir();
    let mut store = h.open(&dir);
    let mut ids = Vec::new();
    for i in 0..10_000u32 {
        let rp = [(i % 100) as u8; 32];
        let (credential, _) = create_for(
            &mut store,
            &rp,
            &user(&i.to_be_bytes(), "user"),
            Algorithm::Es256,
            true,
        );
        ids.push((rp, credential.id));
    }
    drop(store);

    let started = std::time::Instant::now();
    let mut store = h.open(&dir);
    let opened = started.elapsed();
    let started = std::time::Instant::now();
    for (rp, id) in &ids {
        assert!(find(&mut store, rp, id).is_some());
    }
    let found = started.elapsed();
    let listed = store.discoverable_credentials(&[0; 32]).unwrap().len();

    println!("open: {opened:?}, 10,000 lookups: {found:?}");
    assert_eq!(listed, 100);
    assert_eq!(store.remaining_discoverable_credentials(), 0);
    assert!(opened < std::time::Duration::from_secs(2), "{opened:?}");
}

// ---- PIN ----

/// Argon2id at its cheapest: the cases check behaviour, not cost.
fn fast_pin() -> KeystoreOptions {
    KeystoreOptions {
        pin_hash_cost: PinHashCost::INSECURE_FAST,
        ..KeystoreOptions::default()
    }
}

fn pin_hash(pin: &str) -> [u8; 16] {
    Sha256::digest(pin.as_bytes())[..16].try_into().unwrap()
}

fn a_pin_is_checked_counted_and_restored_across_reopens<H: Harness>() {
    let h = H::new();
    h.allow_wrong_pins();
    let (_temp, dir) = state_dir();
    let mut store = h.open_with(&dir, fast_pin()).unwrap();
    assert_eq!(store.pin_retries().unwrap(), None);
    store.set_pin(&pin_hash("1234"), MAX_PIN_RETRIES).unwrap();

    let wrong = store.verify_pin(&pin_hash("9999")).unwrap();
    let again = store.verify_pin(&pin_hash("0000")).unwrap();
    drop(store);
    let mut store = h.open_with(&dir, fast_pin()).unwrap();
    let after_reopen = store.pin_retries().unwrap();
    let right = store.verify_pin(&pin_hash("1234")).unwrap();

    assert_eq!(wrong, PinCheck::Mismatch { retries: 7 });
    assert_eq!(again, PinCheck::Mismatch { retries: 6 });
    assert_eq!(after_reopen, Some(6));
    assert_eq!(right, PinCheck::Match);
    assert_eq!(store.pin_retries().unwrap(), Some(8));
}

fn eight_wrong_pins_block_the_pin_until_a_reset<H: Harness>() {
    let h = H::new();
    h.allow_wrong_pins();
    let (_temp, dir) = state_dir();
    let mut store = h.open_with(&dir, fast_pin()).unwrap();
    store.set_pin(&pin_hash("1234"), MAX_PIN_RETRIES).unwrap();

    let checks: Vec<PinCheck> = (0..8)
        .map(|i| store.verify_pin(&pin_hash(&format!("wrong{i}"))).unwrap())
        .collect();
    let right = store.verify_pin(&pin_hash("1234")).unwrap();
    drop(store);
    let mut store = h.open_with(&dir, fast_pin()).unwrap();
    let after_reopen = store.verify_pin(&pin_hash("1234")).unwrap();
    store.reset().unwrap();

    assert_eq!(checks[0], PinCheck::Mismatch { retries: 7 });
    assert_eq!(checks[7], PinCheck::Mismatch { retries: 0 });
    assert_eq!(right, PinCheck::Blocked);
    assert_eq!(after_reopen, PinCheck::Blocked);
    assert_eq!(store.pin_retries().unwrap(), None);
    store.set_pin(&pin_hash("5678"), MAX_PIN_RETRIES).unwrap();
    assert_eq!(
        store.verify_pin(&pin_hash("5678")).unwrap(),
        PinCheck::Match
    );
}

fn a_changed_pin_replaces_the_old_one<H: Harness>() {
    let h = H::new();
    h.allow_wrong_pins();
    let (_temp, dir) = state_dir();
    let mut store = h.open_with(&dir, fast_pin()).unwrap();
    store.set_pin(&pin_hash("1234"), MAX_PIN_RETRIES).unwrap();
    assert_eq!(
        store.verify_pin(&pin_hash("1234")).unwrap(),
        PinCheck::Match
    );

    store.set_pin(&pin_hash("24680"), MAX_PIN_RETRIES).unwrap();
    drop(store);
    let mut store = h.open_with(&dir, fast_pin()).unwrap();

    assert_eq!(
        store.verify_pin(&pin_hash("1234")).unwrap(),
        PinCheck::Mismatch { retries: 7 }
    );
    assert_eq!(
        store.verify_pin(&pin_hash("24680")).unwrap(),
        PinCheck::Match
    );
}

fn a_pin_hash_of_the_wrong_length_costs_a_retry_and_never_matches<H: Harness>() {
    let h = H::new();
    h.allow_wrong_pins();
    let (_temp, dir) = state_dir();
    let mut store = h.open_with(&dir, fast_pin()).unwrap();
    store.set_pin(&pin_hash("1234"), MAX_PIN_RETRIES).unwrap();
    let hash = pin_hash("1234");

    let short = store.verify_pin(&hash[..15]).unwrap();
    let long = store.verify_pin(&[&hash[..], &[0]].concat()).unwrap();
    let empty = store.verify_pin(&[]).unwrap();

    assert_eq!(short, PinCheck::Mismatch { retries: 7 });
    assert_eq!(long, PinCheck::Mismatch { retries: 6 });
    assert_eq!(empty, PinCheck::Mismatch { retries: 5 });
}

fn no_file_holds_the_pin_or_its_hash<H: Harness>() {
    let h = H::new();
    h.allow_wrong_pins();
    let (_temp, dir) = state_dir();
    let mut store = h.open_with(&dir, fast_pin()).unwrap();
    create(&mut store, Algorithm::Es256, true);
    store.set_pin(&pin_hash("314159"), MAX_PIN_RETRIES).unwrap();
    store.verify_pin(&pin_hash("000000")).unwrap();
    store.verify_pin(&pin_hash("314159")).unwrap();
    store.set_pin(&pin_hash("271828"), MAX_PIN_RETRIES).unwrap();
    drop(store);

    let full = |pin: &str| Sha256::digest(pin.as_bytes()).to_vec();
    let needles: Vec<Vec<u8>> = ["314159", "271828"]
        .iter()
        .flat_map(|pin| {
            [
                pin.as_bytes().to_vec(),
                pin_hash(pin).to_vec(),
                full(pin),
                hex::encode(pin_hash(pin)).into_bytes(),
            ]
        })
        .collect();
    let files = files(&dir);
    assert!(files.iter().any(|f| f.ends_with("pin.state")), "{files:?}");
    for file in files {
        let bytes = fs::read(&file).unwrap();
        for needle in &needles {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_slice()),
                "{} holds {needle:02x?}",
                file.display()
            );
        }
    }
}

fn a_pin_survives_a_crash_and_a_reset_removes_it<H: Harness>() {
    let h = H::new();
    h.allow_wrong_pins();
    let (_temp, dir) = state_dir();
    let mut store = h.open_with(&dir, fast_pin()).unwrap();
    store.set_pin(&pin_hash("1234"), MAX_PIN_RETRIES).unwrap();
    store.verify_pin(&pin_hash("4321")).unwrap();
    H::crash(store);

    let mut store = h.open_with(&dir, fast_pin()).unwrap();
    let after_crash = store.pin_retries().unwrap();
    store.reset().unwrap();
    let after_reset = store.pin_retries().unwrap();
    let check = store.verify_pin(&pin_hash("1234"));
    drop(store);
    let mut store = h.open_with(&dir, fast_pin()).unwrap();

    assert_eq!(after_crash, Some(7));
    assert_eq!(after_reset, None);
    assert!(check.is_err(), "{check:?}");
    assert_eq!(store.pin_retries().unwrap(), None);
    assert!(!dir.join("pin.state").exists());
}

fn create_with_extras(
    store: &mut Store<impl KeyBackend, OsRng>,
    user_id: u8,
    discoverable: bool,
    extras: &CredentialExtras,
) -> Credential {
    let rp = RelyingParty {
        id: "example.com".into(),
        name: None,
    };
    let user = user(&[user_id], "alice");
    let new = NewCredential {
        rp: &rp,
        rp_id_hash: &RP_HASH,
        user: &user,
        algorithm: Algorithm::Es256,
        discoverable,
        extras,
    };
    store.create_credential(&new).unwrap().0
}

fn level_3_extras() -> CredentialExtras {
    CredentialExtras {
        cred_protect: CredProtect::UserVerificationRequired,
        ..extras()
    }
}

fn uv_only_secrets_are_bound_to_the_pin_and_locked_until_it_is_verified<H: Harness>() {
    let h = H::new();
    let (_temp, dir) = state_dir();
    let mut store = h.open_with(&dir, fast_pin()).unwrap();
    let before_pin = create_with_extras(&mut store, 1, false, &extras());
    store.set_pin(&pin_hash("1234"), MAX_PIN_RETRIES).unwrap();
    let plain = create_with_extras(&mut store, 2, false, &extras());
    let level_3 = create_with_extras(&mut store, 3, true, &level_3_extras());
    let in_session = find(&mut store, &RP_HASH, &plain.id).unwrap();
    drop(store);

    // A new process: the master secret is there, the PIN's secret is not.
    let mut store = h.open_with(&dir, fast_pin()).unwrap();
    let unbound = find(&mut store, &RP_HASH, &before_pin.id).unwrap();
    let locked_plain = find(&mut store, &RP_HASH, &plain.id).unwrap();
    let locked_3 = find(&mut store, &RP_HASH, &level_3.id).unwrap();
    let listed_3 = store.discoverable_credentials(&RP_HASH).unwrap();
    let signed_locked = store.sign(&locked_3, b"m");
    assert_eq!(
        store.verify_pin(&pin_hash("1234")).unwrap(),
        PinCheck::Match
    );
    let opened_plain = find(&mut store, &RP_HASH, &plain.id).unwrap();
    let opened_3 = find(&mut store, &RP_HASH, &level_3.id).unwrap();
    let signed_opened = store.sign(&opened_3, b"m");

    assert_eq!(in_session.extras, extras());
    assert!(!in_session.uv_secrets_locked);
    assert_eq!(
        unbound.extras,
        extras(),
        "made before the PIN: nothing to bind to"
    );
    assert!(!unbound.uv_secrets_locked);
    // Without the PIN: CredRandomWithUV is out of reach, the rest of a level 1 credential
    // is there; of a level 3 credential nothing secret is.
    assert!(locked_plain.uv_secrets_locked);
    let secret = locked_plain.extras.hmac_secret.as_ref().unwrap();
    let expected = extras().hmac_secret.unwrap();
    assert_eq!(secret.without_uv, expected.without_uv);
    assert_ne!(secret.with_uv, expected.with_uv);
    assert_eq!(locked_plain.extras.cred_blob, extras().cred_blob);
    assert!(locked_3.uv_secrets_locked);
    assert_eq!(
        locked_3.extras.cred_protect,
        CredProtect::UserVerificationRequired
    );
    assert!(locked_3.extras.hmac_secret.is_none());
    assert!(locked_3.extras.cred_blob.is_none());
    assert!(locked_3.extras.large_blob_key.is_none());
    assert!(listed_3[0].uv_secrets_locked);
    // A TPM key of a level 3 credential is authorised from the PIN's secret: no signature
    // without it. (A software key is not: the file backend binds the extras only.)
    if store.backend().kind() == storage::BackendKind::Tpm {
        assert!(signed_locked.is_err(), "{signed_locked:?}");
    }
    // The right PIN opens everything again.
    assert_eq!(opened_plain.extras, extras());
    assert!(!opened_plain.uv_secrets_locked);
    assert_eq!(opened_3.extras, level_3_extras());
    assert!(!opened_3.uv_secrets_locked);
    let public = store.public_key(&opened_3).unwrap();
    assert!(verify(&public, b"m", &signed_opened.unwrap()));
}

fn a_changed_pin_keeps_the_bound_secrets<H: Harness>() {
    let h = H::new();
    let (_temp, dir) = state_dir();
    let mut store = h.open_with(&dir, fast_pin()).unwrap();
    store.set_pin(&pin_hash("1234"), MAX_PIN_RETRIES).unwrap();
    let level_3 = create_with_extras(&mut store, 3, false, &level_3_extras());
    drop(store);
    let mut store = h.open_with(&dir, fast_pin()).unwrap();
    assert_eq!(
        store.verify_pin(&pin_hash("1234")).unwrap(),
        PinCheck::Match
    );
    store.set_pin(&pin_hash("98765"), MAX_PIN_RETRIES).unwrap();
    drop(store);

    let mut store = h.open_with(&dir, fast_pin()).unwrap();
    assert_eq!(
        store.verify_pin(&pin_hash("98765")).unwrap(),
        PinCheck::Match
    );
    let found = find(&mut store, &RP_HASH, &level_3.id).unwrap();

    assert!(!found.uv_secrets_locked);
    assert_eq!(found.extras, level_3_extras());
    assert!(store.sign(&found, b"m").is_ok());
}

/// The file backend's default Argon2id cost is real work: about half a second here (the
/// figure is in storage/PIN_AND_COUNTERS.md; `cargo bench --bench pin` measures it).
#[test]
fn the_default_argon2id_cost_makes_a_pin_check_take_a_noticeable_time() {
    let (_temp, dir) = state_dir();
    let mut store = FileKeystore::open(&dir, OsRng).unwrap();
    store.set_pin(&pin_hash("1234"), MAX_PIN_RETRIES).unwrap();

    let started = std::time::Instant::now();
    let check = store.verify_pin(&pin_hash("1234")).unwrap();
    let took = started.elapsed();

    println!("one PIN check with the default Argon2id cost: {took:?}");
    assert_eq!(check, PinCheck::Match);
    assert!(took > std::time::Duration::from_millis(100), "{took:?}");
}

/// Instantiates every backend-independent case for one harness.
macro_rules! backend_suite {
    ($module:ident, $harness:ty) => {
        mod $module {
            backend_suite!(@cases $harness;
                credentials_of_both_algorithms_and_kinds_survive_a_reopen_and_sign,
                the_public_key_of_a_credential_is_the_one_it_was_made_with,
                discoverable_credentials_keep_their_user_rp_id_and_order,
                non_discoverable_credentials_store_nothing,
                an_id_with_any_bit_flipped_is_not_found,
                truncated_extended_and_empty_ids_are_not_found,
                an_id_is_bound_to_its_rp,
                an_id_from_another_keystore_is_not_found,
                a_discoverable_credential_for_the_same_user_replaces_the_old_one,
                the_same_user_id_at_another_rp_is_not_replaced,
                a_discoverable_id_whose_record_is_deleted_is_not_found,
                a_full_keystore_refuses_discoverable_credentials_only,
                the_counter_increases_strictly_across_reopens_and_crashes,
                creating_discoverable_credentials_keeps_the_counter_increasing,
                stray_temporary_files_from_an_interrupted_write_are_ignored_and_removed,
                an_interrupted_replacement_keeps_the_newer_record,
                a_damaged_record_is_set_aside_and_the_others_still_load,
                a_record_renamed_to_another_credential_s_name_is_damaged,
                a_corrupt_master_key_is_an_error_naming_the_file_and_is_left_untouched,
                a_missing_master_key_beside_existing_data_is_an_error,
                a_corrupt_counter_file_is_an_error,
                reset_makes_every_earlier_id_unusable_and_keeps_the_counter_increasing,
                a_crash_during_reset_before_the_new_key_is_committed_leaves_the_old_state,
                a_crash_during_reset_after_the_new_key_is_committed_leaves_the_new_state,
                extension_state_comes_back_with_both_kinds_after_a_reopen,
                all_discoverable_credentials_spans_every_rp,
                a_deleted_credential_is_gone_for_good_and_its_id_stops_working,
                an_updated_user_is_kept_across_a_reopen,
                state_slots_are_durable_separate_and_sealed,
                reset_erases_the_state_slots,
                a_reset_interrupted_after_its_commit_is_finished_at_open,
                a_state_file_under_another_key_id_is_an_error_never_an_empty_state,
                a_damaged_state_file_is_an_error_and_is_left_in_place,
                files_and_folders_are_private,
                private_keys_never_appear_in_any_file,
                a_state_directory_open_to_others_is_refused,
                a_master_key_readable_by_others_is_refused,
                a_state_directory_that_cannot_be_created_is_a_clear_error,
                a_state_directory_that_is_a_file_is_refused,
                an_unreadable_state_directory_is_a_clear_error,
                storage_errors_become_keystore_failures_with_the_same_message,
                unsupported_algorithms_are_refused,
                a_pin_is_checked_counted_and_restored_across_reopens,
                eight_wrong_pins_block_the_pin_until_a_reset,
                a_changed_pin_replaces_the_old_one,
                a_pin_hash_of_the_wrong_length_costs_a_retry_and_never_matches,
                no_file_holds_the_pin_or_its_hash,
                a_pin_survives_a_crash_and_a_reset_removes_it,
                uv_only_secrets_are_bound_to_the_pin_and_locked_until_it_is_verified,
                a_changed_pin_keeps_the_bound_secrets,
            );
            #[test]
            #[ignore = "slow to set up (10,000 synced writes): cargo test --release -- --ignored"]
            fn ten_thousand_discoverable_credentials_open_and_are_found_quickly() {
                super::ten_thousand_discoverable_credentials_open_and_are_found_quickly::<$harness>();
            }
        }
    };
    (@cases $harness:ty; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                super::$case::<$harness>();
            }
        )*
    };
}

backend_suite!(file, super::File);
#[cfg(feature = "tpm")]
backend_suite!(tpm, super::Tpm);
