//! The keystore: where credentials are created, found and used.
//!
//! Backends (the encrypted file, the TPM) decide how private keys are kept; the protocol only ever
//! holds them as opaque [`KeyMaterial`] and asks the keystore to sign.

use std::fmt;

use zeroize::Zeroizing;

pub use crate::cose::{Algorithm, PublicKey};
use crate::env::credential_extras::CredentialExtras;

/// PublicKeyCredentialRpEntity, as far as the authenticator keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RelyingParty {
    pub id: String,
    pub name: Option<String>,
}

/// PublicKeyCredentialUserEntity.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserEntity {
    /// The user handle: at most 64 bytes, opaque.
    pub id: Vec<u8>,
    pub name: Option<String>,
    pub display_name: Option<String>,
}

/// Backend-specific private key material (a raw scalar, a TPM blob, ...). Opaque to the protocol,
/// zeroized on drop, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyMaterial(pub Zeroizing<Vec<u8>>);

impl KeyMaterial {
    pub fn new(bytes: Vec<u8>) -> Self {
        KeyMaterial(Zeroizing::new(bytes))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyMaterial(<{} bytes redacted>)", self.0.len())
    }
}

/// What makeCredential (or U2F register) asks the keystore to create.
#[derive(Debug, Clone, Copy)]
pub struct NewCredential<'a> {
    pub rp: &'a RelyingParty,
    pub rp_id_hash: &'a [u8; 32],
    pub user: &'a UserEntity,
    pub algorithm: Algorithm,
    /// A discoverable (resident) credential is stored with its user entity and can be found with
    /// an empty allowList; a non-discoverable one lives only inside its credential ID.
    pub discoverable: bool,
    /// Extension state to keep with the credential and give back with it.
    pub extras: &'a CredentialExtras,
}

/// A credential the keystore found or created, ready to be used for signing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// The credential ID handed to the platform (at most 1023 bytes, U2F key handles at most 255).
    pub id: Vec<u8>,
    pub rp_id_hash: [u8; 32],
    /// Known for discoverable credentials (credential management shows it).
    pub rp_id: Option<String>,
    pub algorithm: Algorithm,
    pub discoverable: bool,
    /// The stored user entity of a discoverable credential; `None` for non-discoverable ones.
    pub user: Option<UserEntity>,
    /// Creation order, larger is newer: getAssertion returns the most recent first.
    pub created: u64,
    pub key: KeyMaterial,
    /// The extension state it was made with.
    pub extras: CredentialExtras,
    /// The keystore bound what this credential gives only with user verification (its
    /// hmac-secret CredRandomWithUV; with credProtect level 3, the whole credential) to the
    /// PIN, and the PIN was not verified since the keystore opened: those secrets are not in
    /// `extras` and the credential may not sign with UV until a PIN is verified.
    pub uv_secrets_locked: bool,
}

/// Why the keystore could not do what was asked. The message is for logs: it never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeystoreError {
    /// No room for another discoverable credential (CTAP2_ERR_KEY_STORE_FULL).
    Full,
    /// Storage or TPM failure; the request fails with CTAP1_ERR_OTHER.
    Failure(String),
}

impl fmt::Display for KeystoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeystoreError::Full => f.write_str("keystore full"),
            KeystoreError::Failure(msg) => write!(f, "keystore failure: {msg}"),
        }
    }
}

impl std::error::Error for KeystoreError {}

/// The authenticator's own persistent state, kept by the keystore as opaque sealed blobs (the
/// protocol owns their encoding). Each slot is written atomically on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StateSlot {
    /// clientPIN and authenticatorConfig state: PIN hash, retries, minimum PIN length, alwaysUv.
    Authenticator,
    /// The large-blob array (authenticatorLargeBlobs).
    LargeBlobs,
}

impl StateSlot {
    pub const ALL: [StateSlot; 2] = [StateSlot::Authenticator, StateSlot::LargeBlobs];

    /// A stable name, for file names and associated data.
    pub fn name(self) -> &'static str {
        match self {
            StateSlot::Authenticator => "authenticator",
            StateSlot::LargeBlobs => "large-blobs",
        }
    }
}

/// pinRetries after a reset or a correct PIN (CTAP 2.1 §6.5.2.2: at most 8).
pub const MAX_PIN_RETRIES: u8 = 8;

/// What checking a PIN found (see [`Keystore::verify_pin`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinCheck {
    /// The PIN is right: the retries are back to [`MAX_PIN_RETRIES`].
    Match,
    /// The PIN is wrong: `retries` are left (0: the PIN is blocked from now on).
    Mismatch { retries: u8 },
    /// No retry was left: nothing was compared.
    Blocked,
    /// The keystore checks no PIN for now, whatever it is (a TPM in dictionary-attack
    /// lockout, which ends by itself after the TPM's recovery time). No retry was spent.
    LockedOut,
}

/// Credential storage and use. Writes must be durable before a method returns: the authenticator
/// answers the platform right after.
///
/// The keystore also keeps the PIN: not the PIN hash itself but a verifier that only the right
/// PIN opens (a TPM object whose authorization is derived from it, or a memory-hard hash), and
/// the retries, so that what can be kept out of the state directory's reach is.
pub trait Keystore {
    /// Whether this keystore can create credentials of `algorithm` (a TPM may lack Ed25519).
    fn supports(&self, algorithm: Algorithm) -> bool;

    /// Creates a new key pair and its credential. A discoverable credential replaces any stored
    /// one with the same RP ID hash and user ID (CTAP 2.1 makeCredential step 17).
    fn create_credential(
        &mut self,
        new: &NewCredential<'_>,
    ) -> Result<(Credential, PublicKey), KeystoreError>;

    /// Finds the credential with this ID for this RP. An ID that is not ours, tampered with,
    /// bound to another RP or deleted is `Ok(None)`, never an error.
    fn find_credential(
        &mut self,
        rp_id_hash: &[u8; 32],
        credential_id: &[u8],
    ) -> Result<Option<Credential>, KeystoreError>;

    /// All discoverable credentials of an RP, in any order.
    fn discoverable_credentials(
        &mut self,
        rp_id_hash: &[u8; 32],
    ) -> Result<Vec<Credential>, KeystoreError>;

    /// Every discoverable credential, of every RP, in any order (credential management).
    fn all_discoverable_credentials(&mut self) -> Result<Vec<Credential>, KeystoreError>;

    /// How many discoverable credentials are stored.
    fn discoverable_count(&self) -> usize;

    /// Deletes the discoverable credential with this ID; `Ok(false)` if there is none. Its ID
    /// stops working at once.
    fn delete_credential(&mut self, credential_id: &[u8]) -> Result<bool, KeystoreError>;

    /// Replaces the stored user entity of the discoverable credential with this ID (the caller
    /// has checked that the user ID is the same); `Ok(false)` if there is none.
    fn update_user(
        &mut self,
        credential_id: &[u8],
        user: &UserEntity,
    ) -> Result<bool, KeystoreError>;

    /// The public key of a credential (credential management lists it).
    fn public_key(&mut self, credential: &Credential) -> Result<PublicKey, KeystoreError>;

    /// Signs `message` with the credential's private key. ES256: an ASN.1 DER ECDSA signature
    /// over SHA-256(message); EdDSA: the 64-byte Ed25519 signature over message.
    fn sign(&mut self, credential: &Credential, message: &[u8]) -> Result<Vec<u8>, KeystoreError>;

    /// The next value of the signature counter: strictly greater than every value returned
    /// before, across restarts and crashes.
    fn next_signature_counter(&mut self) -> Result<u32, KeystoreError>;

    /// How many more discoverable credentials fit.
    fn remaining_discoverable_credentials(&self) -> usize;

    /// The last bytes written to `slot`, `None` if never written (or erased by a reset).
    fn read_state(&mut self, slot: StateSlot) -> Result<Option<Zeroizing<Vec<u8>>>, KeystoreError>;

    /// Replaces the contents of `slot`, durably and atomically, before returning.
    fn write_state(&mut self, slot: StateSlot, bytes: &[u8]) -> Result<(), KeystoreError>;

    /// Erases every credential, every state slot and the PIN, and makes every credential ID
    /// issued so far unusable.
    fn reset(&mut self) -> Result<(), KeystoreError>;

    /// The PIN retries left; `None` when no PIN is set.
    fn pin_retries(&mut self) -> Result<Option<u8>, KeystoreError>;

    /// Sets the PIN whose CTAP hash is `pin_hash` (LEFT(SHA-256(PIN), 16)), replacing any PIN,
    /// with `retries` left (the maximum, except when moving a PIN from an older state format).
    /// Durable before it returns.
    fn set_pin(&mut self, pin_hash: &[u8; 16], retries: u8) -> Result<(), KeystoreError>;

    /// Checks a PIN hash against the PIN. A retry is spent durably before the comparison, so
    /// that stopping the process meanwhile gives no free try; a match restores the retries. A
    /// `pin_hash` that is not 16 bytes long is a mismatch. Without a PIN: an error.
    fn verify_pin(&mut self, pin_hash: &[u8]) -> Result<PinCheck, KeystoreError>;
}

impl From<KeystoreError> for crate::status::StatusCode {
    fn from(err: KeystoreError) -> Self {
        match err {
            KeystoreError::Full => crate::status::StatusCode::KeyStoreFull,
            KeystoreError::Failure(_) => crate::status::StatusCode::Other,
        }
    }
}
