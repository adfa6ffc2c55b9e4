//! fido2d-storage: the keystore, with its private keys in a TPM 2.0 or in an encrypted file.
//!
//! [`Store`] implements the protocol's [`protocol::env::Keystore`] over a [`KeyBackend`]:
//! [`FileKeystore`] keeps software keys wrapped with a master key from `master.key`;
//! `TpmKeystore` (feature `tpm`, on by default) has the TPM create and use every key, and seals
//! the master secret with the TPM. Both keep the same state directory (or, for tests, fuzzers
//! and benches, memory):
//!
//! ```text
//! <state dir>/                      0700
//!     master.key                    0600  file: "FIDO2DMK" | version | 256-bit master key | check
//!     master.tpm                    0600  TPM:  "FIDO2DMT" | version | the TPM-sealed master secret
//!     counter                       0600  "FIDO2DCT" | version | nonce | AES-GCM(counter limit
//!                                         [| the TPM NV counter value of its block])
//!     counter.next                  0600  only during a reset (see `Keystore::reset`)
//!     credentials/                  0700
//!         <hex of SHA-256(credential id)[..16]>.cred
//!                                   0600  "FIDO2DCR" | version | nonce | AES-GCM(record)
//!         <...>.cred.damaged              a record that failed to decrypt, set aside at open
//!     authenticator.state           0600  "FIDO2DST" | version | key id | nonce | AES-GCM(PIN state)
//!     large-blobs.state             0600  the same, the large-blob array
//!     pin.state                     0600  the same, the PIN verifier and its retry accounting
//! ```
//!
//! The PIN is kept as a verifier that only the right PIN opens (a TPM sealed object the TPM's
//! dictionary-attack logic guards, or Argon2id), its tries and the signature counter's blocks
//! are counted by TPM NV counters where there is a TPM: `PIN_AND_COUNTERS.md` in this crate.
//!
//! Subkeys are derived from the master secret with HKDF-SHA256 (one label per use); every file
//! is written to a temporary file, synced, renamed into place and the folder synced, so a crash
//! leaves the old or the new file, never a torn one.

#![forbid(unsafe_code)]

pub mod backend;
mod credential_id;
mod crypto;
mod error;
pub mod es256;
pub mod file;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod persistence;
mod pin;
mod record;
mod rng;
mod state_file;
mod status;
mod store;
#[cfg(feature = "tpm")]
pub mod tpm;

pub use backend::{
    backends_in, BackendKind, DictionaryAttack, KeyBackend, MonotonicCounters, TpmInfo,
};
pub use error::StorageError;
pub use file::{FileKeystore, SoftwareKeys};
pub use persistence::{DirPersistence, MemoryPersistence, Persistence};
pub use pin::PinHashCost;
pub use rng::OsRng;
pub use status::KeystoreStatus;
pub use store::{DynKeystore, KeystoreOptions, Store, COUNTER_BLOCK};
#[cfg(feature = "tpm")]
pub use tpm::{TpmConfig, TpmConnection, TpmError, TpmKeys, TpmKeystore};
