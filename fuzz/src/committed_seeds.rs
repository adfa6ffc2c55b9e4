//! The typed seed programs of a target are committed under `seeds/<target>/`; a test checks
//! that the files still match the programs the code builds, and `FUZZ_WRITE_SEEDS=1` rewrites
//! them.

use std::path::Path;

/// Panics, naming the file, if a committed seed differs from its program (or is missing).
pub fn assert_committed(target: &str, programs: impl IntoIterator<Item = (&'static str, Vec<u8>)>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("seeds")
        .join(target);
    for (name, program) in programs {
        let path = dir.join(name);
        if std::env::var_os("FUZZ_WRITE_SEEDS").is_some() {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &program).unwrap();
        }
        assert_eq!(
            std::fs::read(&path).unwrap_or_default(),
            program,
            "{} is stale (FUZZ_WRITE_SEEDS=1 rewrites it)",
            path.display()
        );
    }
}
