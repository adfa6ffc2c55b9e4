//! The part of a keystore that differs between the encrypted file and the TPM: where private
//! keys live, how they sign, and how the master secret is kept at rest.
//!
//! [`Store`](crate::Store) does everything else (credential IDs, discoverable records, state
//! slots, the signature counter, atomic writes, damaged files) the same way for every backend.

use std::fmt;

use protocol::env::{Algorithm, KeyMaterial, KeystoreError, PublicKey, Rng};
use zeroize::Zeroizing;

pub use crate::crypto::MasterKey;
use crate::StorageError;

/// Which backend keeps the private keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// Software keys wrapped with a master key kept in `master.key`.
    File,
    /// Keys created by, kept in and used inside a TPM 2.0.
    Tpm,
}

impl BackendKind {
    /// "file" or "tpm", as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::File => "file",
            BackendKind::Tpm => "tpm",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the TPM says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpmInfo {
    /// The TCTI it was reached through, e.g. `device:/dev/tpmrm0`.
    pub tcti: String,
    /// TPM_PT_MANUFACTURER as its four ASCII letters, e.g. "IFX", "INTC", "IBM".
    pub manufacturer: String,
    /// TPM_PT_VENDOR_STRING_1..4, trimmed.
    pub vendor: String,
    /// TPM_PT_FIRMWARE_VERSION_1 and _2 as four 16-bit parts, e.g. "7.85.4555.0".
    pub firmware_version: String,
    /// The TPM 2.0 library specification revision it implements, e.g. "1.59".
    pub spec_revision: String,
}

impl fmt::Display for TpmInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "manufacturer {}, vendor \"{}\", firmware {}, spec {}, via {}",
            self.manufacturer, self.vendor, self.firmware_version, self.spec_revision, self.tcti
        )
    }
}

/// The secret that authorizes the use of one credential's key inside the backend (a TPM key's
/// authValue). The store derives it from the master key and the RP ID hash, so a TPM blob
/// taken out of a credential ID is useless without the master key, and a blob made for one RP
/// does not sign for another.
// Only the TPM backend reads it: software keys need no authorization beyond holding them.
#[cfg_attr(not(feature = "tpm"), allow(dead_code))]
pub struct KeyAuth(pub(crate) Zeroizing<[u8; 32]>);

impl KeyAuth {
    #[cfg_attr(not(feature = "tpm"), allow(dead_code))]
    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for KeyAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyAuth(<redacted>)")
    }
}

/// Why a stored master secret could not be recovered.
#[derive(Debug)]
pub enum UnsealError {
    /// The file does not hold a master secret of this backend: the reason.
    Corrupt(String),
    /// The backend refused it (the TPM cannot load or unseal it): a message for the person.
    Refused(StorageError),
}

/// Key generation, signing and master-secret sealing: what a backend provides.
///
/// Sealed: only this crate's backends implement it (the file backend, the TPM backend, and a
/// boxed one of them for the daemon, which picks at start).
pub trait KeyBackend: sealed::Sealed {
    /// Which backend this is.
    fn kind(&self) -> BackendKind;

    /// The TPM's description (for the status view); `None` for the file backend.
    fn tpm_info(&self) -> Option<&TpmInfo>;

    /// Whether keys of `algorithm` can be created.
    fn supports(&self, algorithm: Algorithm) -> bool;

    /// The first byte of the credential IDs holding this backend's key material: an ID made by
    /// the other backend is not ours before any decryption is tried.
    fn id_version(&self) -> u8;

    /// The most bytes of key material one credential needs (getInfo maxCredentialIdLength).
    fn max_key_material_len(&self) -> usize;

    /// Creates a key pair; returns what is to be stored to use it again, and the public key.
    fn generate(
        &mut self,
        algorithm: Algorithm,
        auth: &KeyAuth,
        rng: &mut dyn Rng,
    ) -> Result<(KeyMaterial, PublicKey), KeystoreError>;

    /// The public key of stored key material (credential management lists it).
    fn public_key(
        &self,
        algorithm: Algorithm,
        key: &KeyMaterial,
    ) -> Result<PublicKey, KeystoreError>;

    /// Signs `message` (ES256: DER over SHA-256(message); EdDSA: the 64-byte signature).
    fn sign(
        &mut self,
        algorithm: Algorithm,
        key: &KeyMaterial,
        auth: &KeyAuth,
        message: &[u8],
    ) -> Result<Vec<u8>, KeystoreError>;

    /// The file in the state directory that holds the sealed master secret.
    fn master_file(&self) -> &'static str;

    /// The contents of [`KeyBackend::master_file`] for `master`.
    fn seal_master(&mut self, master: &MasterKey) -> Result<Zeroizing<Vec<u8>>, StorageError>;

    /// Recovers the master secret from the contents of [`KeyBackend::master_file`].
    fn unseal_master(&mut self, sealed: &[u8]) -> Result<MasterKey, UnsealError>;
}

/// The master-key file names of every backend: a state directory holding another backend's
/// is refused rather than silently given a second master secret.
pub(crate) const MASTER_FILES: [(&str, BackendKind); 2] = [
    (FILE_MASTER_FILE, BackendKind::File),
    (TPM_MASTER_FILE, BackendKind::Tpm),
];

/// The file backend's master key, in the clear (the file is 0600).
pub(crate) const FILE_MASTER_FILE: &str = "master.key";
/// The TPM backend's master secret, sealed by the TPM.
pub(crate) const TPM_MASTER_FILE: &str = "master.tpm";

impl<B: KeyBackend + ?Sized> KeyBackend for Box<B> {
    fn kind(&self) -> BackendKind {
        (**self).kind()
    }

    fn tpm_info(&self) -> Option<&TpmInfo> {
        (**self).tpm_info()
    }

    fn supports(&self, algorithm: Algorithm) -> bool {
        (**self).supports(algorithm)
    }

    fn id_version(&self) -> u8 {
        (**self).id_version()
    }

    fn max_key_material_len(&self) -> usize {
        (**self).max_key_material_len()
    }

    fn generate(
        &mut self,
        algorithm: Algorithm,
        auth: &KeyAuth,
        rng: &mut dyn Rng,
    ) -> Result<(KeyMaterial, PublicKey), KeystoreError> {
        (**self).generate(algorithm, auth, rng)
    }

    fn public_key(
        &self,
        algorithm: Algorithm,
        key: &KeyMaterial,
    ) -> Result<PublicKey, KeystoreError> {
        (**self).public_key(algorithm, key)
    }

    fn sign(
        &mut self,
        algorithm: Algorithm,
        key: &KeyMaterial,
        auth: &KeyAuth,
        message: &[u8],
    ) -> Result<Vec<u8>, KeystoreError> {
        (**self).sign(algorithm, key, auth, message)
    }

    fn master_file(&self) -> &'static str {
        (**self).master_file()
    }

    fn seal_master(&mut self, master: &MasterKey) -> Result<Zeroizing<Vec<u8>>, StorageError> {
        (**self).seal_master(master)
    }

    fn unseal_master(&mut self, sealed: &[u8]) -> Result<MasterKey, UnsealError> {
        (**self).unseal_master(sealed)
    }
}

pub(crate) mod sealed {
    pub trait Sealed {}

    impl<B: Sealed + ?Sized> Sealed for Box<B> {}
}
