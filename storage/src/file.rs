//! The file backend: software keys, and a master key kept in the clear in `master.key` (0600).
//! [`FileKeystore`] is the [`Store`] over it.

use std::path::Path;

use protocol::env::{Algorithm, KeyMaterial, KeystoreError, PublicKey, Rng};
use protocol::software_key;
use zeroize::Zeroizing;

use crate::backend::{
    sealed, BackendKind, DictionaryAttack, KeyAuth, KeyBackend, MonotonicCounters, PinAuth,
    PinHashCost, PinSecret, PinUnseal, TpmInfo, UnsealError, VerifierKind, FILE_MASTER_FILE,
};
use crate::credential_id;
use crate::crypto::MasterKey;
use crate::persistence::MemoryPersistence;
use crate::pin;
use crate::store::{KeystoreOptions, Store};
use crate::StorageError;

/// Private keys made and used in memory (P-256 and Ed25519), wrapped with the master key.
#[derive(Debug, Default, Clone, Copy)]
pub struct SoftwareKeys;

/// The encrypted file keystore.
pub type FileKeystore<R> = Store<SoftwareKeys, R>;

impl<R: Rng> Store<SoftwareKeys, R> {
    /// Opens (or creates) the file keystore in `state_dir` with the default options.
    pub fn open(state_dir: &Path, rng: R) -> Result<Self, StorageError> {
        Self::open_with(state_dir, rng, KeystoreOptions::default())
    }

    /// Opens (or creates) the file keystore in `state_dir`.
    pub fn open_with(
        state_dir: &Path,
        rng: R,
        options: KeystoreOptions,
    ) -> Result<Self, StorageError> {
        Store::open_dir(state_dir, SoftwareKeys, rng, options)
    }

    /// A fresh file keystore that keeps everything in memory, for tests, fuzzers and benches:
    /// nothing of it outlives the process, so its PIN verifier uses Argon2id's smallest
    /// parameters ([`PinHashCost::INSECURE_FAST`](crate::PinHashCost::INSECURE_FAST)).
    pub fn in_memory(rng: R) -> Self {
        Store::with_persistence(
            Box::new(MemoryPersistence::new()),
            SoftwareKeys,
            rng,
            KeystoreOptions {
                pin_hash_cost: crate::PinHashCost::INSECURE_FAST,
                ..KeystoreOptions::default()
            },
        )
        .expect("an in-memory keystore cannot fail to open")
    }
}

impl sealed::Sealed for SoftwareKeys {}

impl KeyBackend for SoftwareKeys {
    fn kind(&self) -> BackendKind {
        BackendKind::File
    }

    fn tpm_info(&self) -> Option<&TpmInfo> {
        None
    }

    fn supports(&self, _algorithm: Algorithm) -> bool {
        true
    }

    fn id_version(&self) -> u8 {
        credential_id::VERSION_SOFTWARE
    }

    fn max_key_material_len(&self) -> usize {
        software_key::SECRET_LEN
    }

    /// Software keys need no authorization beyond holding them: `auth` is not used.
    fn generate(
        &mut self,
        algorithm: Algorithm,
        _auth: &KeyAuth,
        rng: &mut dyn Rng,
    ) -> Result<(KeyMaterial, PublicKey), KeystoreError> {
        let (secret, public) = software_key::generate(algorithm, |b| rng.fill_bytes(b));
        Ok((KeyMaterial::new(secret.to_vec()), public))
    }

    fn public_key(
        &self,
        algorithm: Algorithm,
        key: &KeyMaterial,
    ) -> Result<PublicKey, KeystoreError> {
        software_key::public_key(algorithm, key.as_bytes())
            .ok_or_else(|| KeystoreError::Failure("invalid private key material".into()))
    }

    fn sign(
        &mut self,
        algorithm: Algorithm,
        key: &KeyMaterial,
        _auth: &KeyAuth,
        message: &[u8],
    ) -> Result<Vec<u8>, KeystoreError> {
        match algorithm {
            Algorithm::Es256 => crate::es256::sign(key.as_bytes(), message),
            Algorithm::EdDsa => software_key::sign(algorithm, key.as_bytes(), message),
        }
        .ok_or_else(|| KeystoreError::Failure("invalid private key material".into()))
    }

    fn master_file(&self) -> &'static str {
        FILE_MASTER_FILE
    }

    fn seal_master(&mut self, master: &MasterKey) -> Result<Zeroizing<Vec<u8>>, StorageError> {
        Ok(master.to_file())
    }

    fn unseal_master(&mut self, sealed: &[u8]) -> Result<MasterKey, UnsealError> {
        MasterKey::from_file(sealed).map_err(UnsealError::Corrupt)
    }

    fn pin_verifier_kind(&self) -> VerifierKind {
        VerifierKind::Argon2id
    }

    /// Argon2id of the PIN's authorization keys an AES-256-GCM seal of the secret.
    fn seal_pin_secret(
        &mut self,
        auth: &PinAuth,
        secret: &PinSecret,
        cost: PinHashCost,
        rng: &mut dyn Rng,
    ) -> Result<Vec<u8>, StorageError> {
        pin::argon2_seal(auth, secret, cost, &mut |b| rng.fill_bytes(b)).map_err(|reason| {
            StorageError::Corrupt {
                kind: "PIN verifier",
                path: "pin.state".into(),
                reason,
            }
        })
    }

    fn unseal_pin_secret(
        &mut self,
        verifier: &[u8],
        auth: &PinAuth,
    ) -> Result<PinUnseal, StorageError> {
        match pin::argon2_open(verifier, auth) {
            Ok(Some(secret)) => Ok(PinUnseal::Secret(secret)),
            Ok(None) => Ok(PinUnseal::Wrong),
            Err(reason) => Err(StorageError::Corrupt {
                kind: "PIN verifier",
                path: "pin.state".into(),
                reason,
            }),
        }
    }

    fn dictionary_attack(&mut self) -> Result<Option<DictionaryAttack>, StorageError> {
        Ok(None)
    }

    fn monotonic_counters(&mut self) -> Option<&mut dyn MonotonicCounters> {
        None
    }
}
