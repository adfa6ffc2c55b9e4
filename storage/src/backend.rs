//! The part of a keystore that differs between the encrypted file and the TPM: where private
//! keys live, how they sign, and how the master secret is kept at rest.
//!
//! [`Store`](crate::Store) does everything else (credential IDs, discoverable records, state
//! slots, the signature counter, atomic writes, damaged files) the same way for every backend.

use std::fmt;

use protocol::env::{Algorithm, KeyMaterial, KeystoreError, PublicKey, Rng};
use zeroize::Zeroizing;

pub use crate::crypto::MasterKey;
pub use crate::pin::{PinAuth, PinHashCost, PinSecret, PinUnseal, VerifierKind};
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

/// The TPM's dictionary-attack protection, as TPM2_GetCapability reports it: what decides how
/// fast anyone, root included, can try PINs against the TPM-held PIN verifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DictionaryAttack {
    /// TPM_PT_LOCKOUT_COUNTER: failed authorizations of DA-protected objects not yet forgiven.
    pub failures: u32,
    /// TPM_PT_MAX_AUTH_FAIL: at this many the TPM is in lockout.
    pub max_failures: u32,
    /// TPM_PT_LOCKOUT_INTERVAL: one failure is forgiven every this many seconds.
    pub recovery_seconds: u32,
    /// TPM_PT_LOCKOUT_RECOVERY: after a failed lockout authorization, how long until the owner
    /// may try again.
    pub lockout_recovery_seconds: u32,
    /// TPMA_PERMANENT inLockout.
    pub in_lockout: bool,
    /// TPMA_PERMANENT lockoutAuthSet: whether resetting the counter needs a password. Without
    /// one, root resets it at will (tpm2_dictionarylockout -c) and the lockout slows nobody.
    pub lockout_auth_set: bool,
}

impl fmt::Display for DictionaryAttack {
    /// E.g. `in lockout: 3 of 3 failed authorizations, one forgiven every 1000 s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.in_lockout {
            f.write_str("in lockout: ")?;
        } else {
            f.write_str("not in lockout: ")?;
        }
        write!(
            f,
            "{} of {} failed authorizations, one forgiven every {} s",
            self.failures, self.max_failures, self.recovery_seconds
        )?;
        if !self.lockout_auth_set {
            f.write_str(
                "; no lockout password is set, so root can reset the count \
                 (tpm2_changeauth -c lockout sets one)",
            )?;
        }
        Ok(())
    }
}

/// Counters that only go up, kept outside the state directory: a TPM's NV counters. A counter
/// is named by its NV index handle.
pub trait MonotonicCounters {
    /// The counter's value; `None` if it does not exist yet or was never incremented.
    fn read(&mut self, handle: u32) -> Result<Option<u64>, StorageError>;

    /// Increments the counter (creating it first if needed) and returns its new value.
    fn increment(&mut self, handle: u32) -> Result<u64, StorageError>;

    /// Deletes the counter if it exists. A counter created later at any handle of this TPM
    /// starts above every value it had.
    fn remove(&mut self, handle: u32) -> Result<(), StorageError>;
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

    /// The kind of PIN verifier this backend makes.
    fn pin_verifier_kind(&self) -> VerifierKind;

    /// A PIN verifier: `secret`, recoverable only with `auth` (`cost`: the file backend's
    /// Argon2id parameters).
    fn seal_pin_secret(
        &mut self,
        auth: &PinAuth,
        secret: &PinSecret,
        cost: PinHashCost,
        rng: &mut dyn Rng,
    ) -> Result<Vec<u8>, StorageError>;

    /// Opens a verifier made by [`KeyBackend::seal_pin_secret`] with a PIN's `auth`.
    fn unseal_pin_secret(
        &mut self,
        verifier: &[u8],
        auth: &PinAuth,
    ) -> Result<PinUnseal, StorageError>;

    /// The TPM's dictionary-attack state, read now; `None` for the file backend.
    fn dictionary_attack(&mut self) -> Result<Option<DictionaryAttack>, StorageError>;

    /// The backend's monotonic counters; `None` when it has none (the file backend, or a TPM
    /// whose owner hierarchy has a password, under which fido2d cannot define NV indices).
    fn monotonic_counters(&mut self) -> Option<&mut dyn MonotonicCounters>;

    /// Why [`KeyBackend::monotonic_counters`] is `None` for a TPM, for the status and the log.
    fn no_counters_reason(&self) -> Option<&str> {
        None
    }
}

/// The master-key file names of every backend: a state directory holding another backend's
/// is refused rather than silently given a second master secret.
pub(crate) const MASTER_FILES: [(&str, BackendKind); 2] = [
    (FILE_MASTER_FILE, BackendKind::File),
    (TPM_MASTER_FILE, BackendKind::Tpm),
];

/// The backends whose master secret `state_dir` holds, each with the file that shows it (for a
/// message): what a daemon follows to open an existing state directory with its own backend.
/// A directory that cannot be read holds none that can be seen.
pub fn backends_in(state_dir: &std::path::Path) -> Vec<(BackendKind, &'static str)> {
    MASTER_FILES
        .into_iter()
        .filter(|(name, _)| state_dir.join(name).exists())
        .map(|(name, kind)| (kind, name))
        .collect()
}

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

    fn pin_verifier_kind(&self) -> VerifierKind {
        (**self).pin_verifier_kind()
    }

    fn seal_pin_secret(
        &mut self,
        auth: &PinAuth,
        secret: &PinSecret,
        cost: PinHashCost,
        rng: &mut dyn Rng,
    ) -> Result<Vec<u8>, StorageError> {
        (**self).seal_pin_secret(auth, secret, cost, rng)
    }

    fn unseal_pin_secret(
        &mut self,
        verifier: &[u8],
        auth: &PinAuth,
    ) -> Result<PinUnseal, StorageError> {
        (**self).unseal_pin_secret(verifier, auth)
    }

    fn dictionary_attack(&mut self) -> Result<Option<DictionaryAttack>, StorageError> {
        (**self).dictionary_attack()
    }

    fn monotonic_counters(&mut self) -> Option<&mut dyn MonotonicCounters> {
        (**self).monotonic_counters()
    }

    fn no_counters_reason(&self) -> Option<&str> {
        (**self).no_counters_reason()
    }
}

pub(crate) mod sealed {
    pub trait Sealed {}

    impl<B: Sealed + ?Sized> Sealed for Box<B> {}
}
