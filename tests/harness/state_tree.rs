//! A fido2d state directory of the tests' own, and a byte-for-byte picture of one, to show that
//! nothing was changed, added or removed.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

/// A fresh `state/` directory (0700, as fido2d wants it) inside a temporary directory that is
/// removed when the returned guard drops.
pub fn private_state_dir() -> (TempDir, PathBuf) {
    let temp = tempfile::tempdir().expect("temp dir");
    let dir = temp.path().join("state");
    fs::create_dir(&dir).expect("create state dir");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).expect("chmod state dir");
    (temp, dir)
}

/// Every entry under `dir` by relative path: a file with its bytes, a directory as `name/`.
pub fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut entries = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).expect("read state dir").flatten() {
            let path = entry.path();
            let rel = path
                .strip_prefix(dir)
                .expect("under dir")
                .to_string_lossy()
                .into_owned();
            if path.is_dir() {
                entries.insert(format!("{rel}/"), Vec::new());
                stack.push(path);
            } else {
                entries.insert(rel, fs::read(&path).expect("read state file"));
            }
        }
    }
    entries
}
