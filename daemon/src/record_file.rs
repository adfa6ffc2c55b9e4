//! The daemon's own small records in the state directory (`owner`, `boot`), written as the
//! keystore writes its files: a new temporary file (O_CREAT|O_EXCL, O_NOFOLLOW, 0600), synced,
//! renamed over the old one, the folder synced. A crash leaves the old record or the new one.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

/// Replaces `path` with `text`, atomically (see the module documentation).
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        match std::fs::remove_file(&temp) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err),
            _ => {}
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&temp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        std::fs::File::open(dir)?.sync_all()
    };
    write().inspect_err(|_| {
        let _ = std::fs::remove_file(&temp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn a_record_is_replaced_whole_private_and_without_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("owner");
        write_atomically(&path, "uid=1\n").unwrap();
        write_atomically(&path, "uid=2\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "uid=2\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file left");
    }
}
