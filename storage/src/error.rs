//! Errors of the file keystore. Messages name the file and the reason; they never hold a secret.

use std::io;
use std::path::PathBuf;

use protocol::env::KeystoreError;

use crate::backend::BackendKind;

/// Why the keystore could not open or update its state.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The state directory is missing and could not be created.
    #[error("cannot create state directory {}: {error}", path.display())]
    CreateDirectory { path: PathBuf, error: io::Error },

    /// The state directory path exists but is something else.
    #[error("state directory {} is not a directory", path.display())]
    NotADirectory { path: PathBuf },

    /// The state directory or the master key file is open to group or others.
    #[error(
        "{} has permissions {mode:04o}; it must not be accessible to group or others \
         (chmod {expected:04o})",
        path.display()
    )]
    InsecurePermissions {
        path: PathBuf,
        mode: u32,
        expected: u32,
    },

    /// A file system operation failed (`action` is e.g. "read", "write", "rename").
    #[error("cannot {action} {}: {error}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        error: io::Error,
    },

    /// A file exists but does not hold what it should. Nothing was overwritten.
    #[error("{kind} {} is corrupt ({reason})", path.display())]
    Corrupt {
        /// "master key file", "counter file".
        kind: &'static str,
        path: PathBuf,
        reason: String,
    },

    /// `master.key` is gone but data sealed with it is still there: creating a new key would
    /// silently orphan it.
    #[error(
        "master key file {} is missing but {} holds data sealed with an earlier master key; \
         restore the master key file or remove the state directory to start afresh",
        path.display(),
        found.display()
    )]
    MissingMasterKey { path: PathBuf, found: PathBuf },

    /// The state directory was made by the other backend: opening it with this one would give
    /// it a second master secret and hide the credentials it holds.
    #[error(
        "{} belongs to the {found} keystore, not the {wanted} one: start with \
         --keystore {found}, or use another state directory for the {wanted} keystore",
        path.display()
    )]
    OtherBackend {
        path: PathBuf,
        found: BackendKind,
        wanted: BackendKind,
    },

    /// The TPM is missing, or present but unable to serve as the keystore.
    #[cfg(feature = "tpm")]
    #[error(transparent)]
    Tpm(#[from] crate::tpm::TpmError),

    /// The signature counter reached the end of its 32-bit range.
    #[error("signature counter exhausted")]
    CounterExhausted,
}

impl StorageError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, error: io::Error) -> Self {
        StorageError::Io {
            action,
            path: path.into(),
            error,
        }
    }
}

impl From<StorageError> for KeystoreError {
    fn from(err: StorageError) -> Self {
        KeystoreError::Failure(err.to_string())
    }
}
