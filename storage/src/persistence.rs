//! Where the keystore's files live: a directory, or memory for tests, fuzzers and benches.
//!
//! File names are relative: `master.key`, `counter`, `credentials/<id>.cred`. Every write is
//! durable and atomic before it returns: a reader (or a restart after a crash) sees the old
//! contents or the new ones, never a mix.

use std::collections::BTreeMap;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use zeroize::Zeroizing;

use crate::backend::MASTER_FILES;
use crate::StorageError;

/// Mode of the state directory and its folders.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file.
pub const FILE_MODE: u32 = 0o600;
/// Temporary files are `.<name>.tmp` beside their target; stale ones are removed at open.
const TEMP_PREFIX: &str = ".";
const TEMP_SUFFIX: &str = ".tmp";

/// A small file namespace with durable, atomic writes.
pub trait Persistence: Send {
    /// Where `name` lives, for messages.
    fn location(&self, name: &str) -> PathBuf;

    /// The whole contents of `name`, `None` if it does not exist.
    fn read(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>, StorageError>;

    /// Whether `name` exists.
    fn exists(&self, name: &str) -> Result<bool, StorageError>;

    /// Creates or replaces `name` atomically and durably.
    fn write(&mut self, name: &str, bytes: &[u8]) -> Result<(), StorageError>;

    /// Creates `name` atomically and durably unless it exists; `Ok(false)` if it did (then it is
    /// left untouched).
    fn create_new(&mut self, name: &str, bytes: &[u8]) -> Result<bool, StorageError>;

    /// Renames `from` to `to` (in the same folder), replacing `to`, durably.
    fn rename(&mut self, from: &str, to: &str) -> Result<(), StorageError>;

    /// Removes the files that exist among `names`, durably.
    fn remove(&mut self, names: &[String]) -> Result<(), StorageError>;

    /// The names of the files in `folder` (`""` for the top level), without the folder prefix,
    /// in any order. Temporary files are not listed.
    fn list(&self, folder: &str) -> Result<Vec<String>, StorageError>;

    /// Removes temporary files left in `folder` by an interrupted write.
    fn remove_stale_temporaries(&mut self, folder: &str) -> Result<(), StorageError>;
}

/// Joins a folder and a file name the way [`Persistence`] names files.
pub(crate) fn join(folder: &str, name: &str) -> String {
    if folder.is_empty() {
        name.to_owned()
    } else {
        format!("{folder}/{name}")
    }
}

fn is_temporary(name: &str) -> bool {
    name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX)
}

/// The state directory on disk.
#[derive(Debug)]
pub struct DirPersistence {
    root: PathBuf,
}

impl DirPersistence {
    /// Opens the state directory, creating it (mode 0700) if missing.
    ///
    /// Refuses a directory or master-secret file (`master.key`, `master.tpm`) that group or
    /// others can access, and a directory that cannot be read.
    pub fn open(root: &Path) -> Result<Self, StorageError> {
        match fs::metadata(root) {
            Ok(meta) => {
                if !meta.is_dir() {
                    return Err(StorageError::NotADirectory { path: root.into() });
                }
                check_private(root, meta.permissions().mode(), DIR_MODE)?;
            }
            // NotADirectory: a parent is a file; trying to create says so clearly.
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                create_private_dir(root).map_err(|error| StorageError::CreateDirectory {
                    path: root.into(),
                    error,
                })?
            }
            Err(error) => return Err(StorageError::io("access state directory", root, error)),
        }
        fs::read_dir(root).map_err(|e| StorageError::io("read state directory", root, e))?;
        // Either master file opens every other file (the TPM one with the TPM's help).
        for (name, _) in MASTER_FILES {
            let master = root.join(name);
            match fs::metadata(&master) {
                Ok(meta) => check_private(&master, meta.permissions().mode(), FILE_MODE)?,
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(error) => return Err(StorageError::io("access", master, error)),
            }
        }
        Ok(DirPersistence { root: root.into() })
    }

    /// The state directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// The folder holding `path` exists (created 0700 if needed).
    fn ensure_parent(&self, path: &Path) -> Result<PathBuf, StorageError> {
        let parent = path.parent().unwrap_or(&self.root).to_path_buf();
        if parent != self.root && !parent.is_dir() {
            match create_private_dir(&parent) {
                Ok(()) => sync_dir(&self.root)?,
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
                Err(error) => return Err(StorageError::io("create folder", parent, error)),
            }
        }
        Ok(parent)
    }

    /// Writes `bytes` to the temporary file of `path` and syncs it; returns the temporary path.
    fn write_temporary(&self, path: &Path, bytes: &[u8]) -> Result<PathBuf, StorageError> {
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp = path.with_file_name(format!("{TEMP_PREFIX}{file_name}{TEMP_SUFFIX}"));
        let result = (|| {
            // A new file, never one already there: a crash's leftover is removed first (a
            // symbolic link planted under the temporary name goes, not what it points to), and
            // O_CREAT|O_EXCL fails on anything, a link included, that appears meanwhile.
            match fs::remove_file(&temp) {
                Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(err),
                _ => {}
            }
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(FILE_MODE)
                .open(&temp)?;
            file.write_all(bytes)?;
            file.sync_all()
        })();
        if let Err(error) = result {
            let _ = fs::remove_file(&temp);
            return Err(StorageError::io("write", path, error));
        }
        Ok(temp)
    }
}

fn create_private_dir(path: &Path) -> io::Result<()> {
    if let Some(parent) = path.parent() {
        if !parent.as_os_str().is_empty() {
            fs::create_dir_all(parent)?;
        }
    }
    DirBuilder::new().mode(DIR_MODE).create(path)?;
    // The umask may have taken bits away; make sure it is exactly 0700.
    fs::set_permissions(path, fs::Permissions::from_mode(DIR_MODE))
}

fn check_private(path: &Path, mode: u32, expected: u32) -> Result<(), StorageError> {
    if mode & 0o077 != 0 {
        return Err(StorageError::InsecurePermissions {
            path: path.into(),
            mode: mode & 0o7777,
            expected,
        });
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StorageError::io("sync folder", dir, e))
}

impl Persistence for DirPersistence {
    fn location(&self, name: &str) -> PathBuf {
        self.path(name)
    }

    fn read(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>, StorageError> {
        let path = self.path(name);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(Zeroizing::new(bytes))),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(StorageError::io("read", path, error)),
        }
    }

    fn exists(&self, name: &str) -> Result<bool, StorageError> {
        let path = self.path(name);
        match fs::symlink_metadata(&path) {
            Ok(_) => Ok(true),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(error) => Err(StorageError::io("access", path, error)),
        }
    }

    fn write(&mut self, name: &str, bytes: &[u8]) -> Result<(), StorageError> {
        let path = self.path(name);
        let parent = self.ensure_parent(&path)?;
        let temp = self.write_temporary(&path, bytes)?;
        if let Err(error) = fs::rename(&temp, &path) {
            let _ = fs::remove_file(&temp);
            return Err(StorageError::io("write", path, error));
        }
        sync_dir(&parent)
    }

    fn create_new(&mut self, name: &str, bytes: &[u8]) -> Result<bool, StorageError> {
        let path = self.path(name);
        let parent = self.ensure_parent(&path)?;
        let temp = self.write_temporary(&path, bytes)?;
        // link(2) never replaces its target: the complete file appears under its name, or the
        // existing one stays.
        let linked = fs::hard_link(&temp, &path);
        let _ = fs::remove_file(&temp);
        match linked {
            Ok(()) => {
                sync_dir(&parent)?;
                Ok(true)
            }
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(error) => Err(StorageError::io("create", path, error)),
        }
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), StorageError> {
        let (from, to) = (self.path(from), self.path(to));
        fs::rename(&from, &to).map_err(|e| StorageError::io("rename", &from, e))?;
        sync_dir(to.parent().unwrap_or(&self.root))
    }

    fn remove(&mut self, names: &[String]) -> Result<(), StorageError> {
        let mut folders: Vec<PathBuf> = Vec::new();
        for name in names {
            let path = self.path(name);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(error) => return Err(StorageError::io("remove", path, error)),
            }
            let parent = path.parent().unwrap_or(&self.root).to_path_buf();
            if !folders.contains(&parent) {
                folders.push(parent);
            }
        }
        folders.iter().try_for_each(|folder| sync_dir(folder))
    }

    fn list(&self, folder: &str) -> Result<Vec<String>, StorageError> {
        let dir = self.path(folder);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(StorageError::io("list", dir, error)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| StorageError::io("list", &dir, e))?;
            let is_file = entry
                .file_type()
                .map_err(|e| StorageError::io("list", &dir, e))?
                .is_file();
            if let Ok(name) = entry.file_name().into_string() {
                if is_file && !is_temporary(&name) {
                    names.push(name);
                }
            }
        }
        Ok(names)
    }

    fn remove_stale_temporaries(&mut self, folder: &str) -> Result<(), StorageError> {
        let dir = self.path(folder);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(StorageError::io("list", dir, error)),
        };
        let mut stale = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| StorageError::io("list", &dir, e))?;
            if let Ok(name) = entry.file_name().into_string() {
                if is_temporary(&name) {
                    stale.push(join(folder, &name));
                }
            }
        }
        self.remove(&stale)
    }
}

/// Files in memory. Clones share the same files, so a test can "restart" a keystore on them.
#[derive(Clone, Default)]
pub struct MemoryPersistence {
    files: Arc<Mutex<BTreeMap<String, Zeroizing<Vec<u8>>>>>,
}

impl MemoryPersistence {
    pub fn new() -> Self {
        Self::default()
    }

    fn files(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Zeroizing<Vec<u8>>>> {
        self.files.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for MemoryPersistence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MemoryPersistence({} files)", self.files().len())
    }
}

impl Persistence for MemoryPersistence {
    fn location(&self, name: &str) -> PathBuf {
        Path::new("<memory>").join(name)
    }

    fn read(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>, StorageError> {
        Ok(self.files().get(name).cloned())
    }

    fn exists(&self, name: &str) -> Result<bool, StorageError> {
        Ok(self.files().contains_key(name))
    }

    fn write(&mut self, name: &str, bytes: &[u8]) -> Result<(), StorageError> {
        self.files()
            .insert(name.to_owned(), Zeroizing::new(bytes.to_vec()));
        Ok(())
    }

    fn create_new(&mut self, name: &str, bytes: &[u8]) -> Result<bool, StorageError> {
        let mut files = self.files();
        if files.contains_key(name) {
            return Ok(false);
        }
        files.insert(name.to_owned(), Zeroizing::new(bytes.to_vec()));
        Ok(true)
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), StorageError> {
        let mut files = self.files();
        let bytes = files.remove(from).ok_or_else(|| {
            StorageError::io(
                "rename",
                self.location(from),
                io::ErrorKind::NotFound.into(),
            )
        })?;
        files.insert(to.to_owned(), bytes);
        Ok(())
    }

    fn remove(&mut self, names: &[String]) -> Result<(), StorageError> {
        let mut files = self.files();
        for name in names {
            files.remove(name);
        }
        Ok(())
    }

    fn list(&self, folder: &str) -> Result<Vec<String>, StorageError> {
        let prefix = if folder.is_empty() {
            String::new()
        } else {
            format!("{folder}/")
        };
        Ok(self
            .files()
            .keys()
            .filter_map(|name| name.strip_prefix(&prefix))
            .filter(|name| !name.contains('/'))
            .map(str::to_owned)
            .collect())
    }

    fn remove_stale_temporaries(&mut self, _folder: &str) -> Result<(), StorageError> {
        Ok(())
    }
}
