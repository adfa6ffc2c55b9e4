//! One daemon per state directory, and only a directory that is really the daemon's.
//!
//! Two daemons on one state directory would each cache the PIN state, the signature counter
//! and the credential index, and overwrite each other's writes. So the daemon holds an
//! exclusive lock (`flock` on the directory itself, so no file is made for it) for as long as
//! it runs; a second one is refused. Before that, the directory itself is checked: a symbolic link
//! (which another user could point elsewhere) or a directory owned by someone else is refused.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

/// Held while the daemon runs; released when dropped (or when the process ends).
pub struct StateLock {
    _lock: Flock<File>,
    path: PathBuf,
}

impl std::fmt::Debug for StateLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateLock")
            .field("path", &self.path)
            .finish()
    }
}

/// Why the lock could not be had.
#[derive(Debug)]
pub enum LockError {
    /// Another process holds it.
    Held { dir: PathBuf },
    /// The directory is not one the daemon may use, or the file system refused.
    Refused(String),
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockError::Held { dir } => write!(
                f,
                "another fido2d uses the state directory {}",
                dir.display()
            ),
            LockError::Refused(reason) => f.write_str(reason),
        }
    }
}

impl std::error::Error for LockError {}

/// Checks `dir` (creating it 0700 if missing) and takes its lock.
pub fn acquire(dir: &Path) -> Result<StateLock, LockError> {
    check_directory(dir)?;
    let path = dir.to_owned();
    // The directory itself (O_DIRECTORY, and O_NOFOLLOW: not a link put there meanwhile), so
    // that a start, or a refused one, adds nothing to it.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_DIRECTORY | nix::libc::O_NOFOLLOW)
        .open(&path)
        .map_err(|err| LockError::Refused(format!("cannot open {}: {err}", path.display())))?;
    let lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => lock,
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
            return Err(LockError::Held {
                dir: dir.to_owned(),
            });
        }
        Err((_, errno)) => {
            return Err(LockError::Refused(format!(
                "cannot lock {}: {errno}",
                path.display()
            )))
        }
    };
    Ok(StateLock { _lock: lock, path })
}

/// A real directory of this process's user: not a symbolic link, not another user's.
fn check_directory(dir: &Path) -> Result<(), LockError> {
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(meta) => meta,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|err| {
                    LockError::Refused(format!(
                        "cannot create the state directory {}: {err}",
                        dir.display()
                    ))
                })?;
            std::fs::symlink_metadata(dir).map_err(|err| {
                LockError::Refused(format!("cannot read {}: {err}", dir.display()))
            })?
        }
        Err(err) => {
            return Err(LockError::Refused(format!(
                "cannot read the state directory {}: {err}",
                dir.display()
            )))
        }
    };
    if meta.file_type().is_symlink() {
        return Err(LockError::Refused(format!(
            "the state directory {} is a symbolic link: give the real directory",
            dir.display()
        )));
    }
    if !meta.is_dir() {
        return Err(LockError::Refused(format!(
            "the state directory {} is not a directory",
            dir.display()
        )));
    }
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        return Err(LockError::Refused(format!(
            "the state directory {} belongs to uid {}, not to fido2d's uid {me}",
            dir.display(),
            meta.uid()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_lock_per_directory() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let first = acquire(&state).unwrap();
        match acquire(&state) {
            Err(LockError::Held { dir }) => assert_eq!(dir, state),
            other => panic!("{other:?}"),
        }
        drop(first);
        assert!(acquire(&state).is_ok(), "released with the daemon");
    }

    #[test]
    fn a_symbolic_link_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let err = acquire(&link).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
    }

    #[test]
    fn another_users_directory_is_refused() {
        if nix::unistd::geteuid().as_raw() != 0 {
            return; // Only root can make a directory another user's.
        }
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir(&state).unwrap();
        std::os::unix::fs::chown(&state, Some(65534), Some(65534)).unwrap();
        let err = acquire(&state).unwrap_err().to_string();
        assert!(err.contains("belongs to uid 65534"), "{err}");
    }
}
