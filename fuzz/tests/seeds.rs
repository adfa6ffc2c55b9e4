//! Replays every committed seed (`seeds/<target>/`) and regression input
//! (`seeds/<target>/regressions/`) through its target on a normal build, so a fixed crash
//! stays fixed without libFuzzer: `cargo test --manifest-path fuzz/Cargo.toml`.

use std::fs;
use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("seeds")
        .join(target);
    let mut count = 0;
    for sub in [dir.clone(), dir.join("regressions")] {
        let Ok(entries) = fs::read_dir(&sub) else {
            continue;
        };
        let mut paths: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
        paths.sort();
        for path in paths.into_iter().filter(|p| p.is_file()) {
            let data = fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| run(&data));
            assert!(outcome.is_ok(), "{} fails", path.display());
            count += 1;
        }
    }
    assert!(count > 0, "no seeds for {target} in {}", dir.display());
}

#[test]
fn ctaphid_seeds() {
    replay("ctaphid", fido2d_fuzz::ctaphid::run);
}

#[test]
fn ctap2_request_seeds() {
    replay("ctap2_request", fido2d_fuzz::ctap2_request::run);
}

#[test]
fn authenticator_seeds() {
    replay("authenticator", fido2d_fuzz::authenticator::run);
}

#[test]
fn client_pin_seeds() {
    replay("client_pin", fido2d_fuzz::client_pin::run);
}

#[test]
fn hybrid_qr_seeds() {
    replay("hybrid_qr", fido2d_fuzz::hybrid::qr);
}

#[test]
fn hybrid_tunnel_seeds() {
    replay("hybrid_tunnel", fido2d_fuzz::hybrid::tunnel);
}

#[test]
fn credential_id_seeds() {
    replay("credential_id", fido2d_fuzz::credential_id::run);
}

#[test]
fn storage_file_seeds() {
    replay("storage_file", fido2d_fuzz::storage_file::run);
}
