//! The clientPIN token step, getPinUvAuthTokenUsingPinWithPermissions with PIN/UV auth
//! protocol two: one ECDH, the PIN hash check (with the retry counter written down before and
//! restored after, as durable keystore writes) and the token encryption. Beside it, the bare
//! P-256 ECDH it contains, and the same step over the in-memory keystore to show what the
//! two durable writes cost.
//!
//! Run: `cargo bench -p fido2d-benches --bench client_pin`

use criterion::{criterion_group, criterion_main, Criterion};
use fido2d_benches::{file_authenticator, memory_authenticator, pin_token_request, BENCH_ORIGIN};
use std::hint::black_box;

fn token_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("client_pin");

    let secret = p256::SecretKey::from_slice(&[0x42; 32]).expect("valid scalar");
    let peer = p256::SecretKey::from_slice(&[0x24; 32])
        .expect("valid scalar")
        .public_key();
    group.bench_function("p256_ecdh", |b| {
        b.iter(|| {
            p256::ecdh::diffie_hellman(secret.to_nonzero_scalar(), black_box(peer.as_affine()))
        })
    });

    let dir = tempfile::tempdir().expect("temp dir");
    let mut authenticator = file_authenticator(dir.path());
    let request = pin_token_request(&mut authenticator, "123456", "example.com");
    assert_eq!(
        authenticator.process_cbor(BENCH_ORIGIN, &request)[0],
        0,
        "token step works"
    );
    group.bench_function("file_get_pin_uv_auth_token_protocol2", |b| {
        b.iter(|| authenticator.process_cbor(BENCH_ORIGIN, black_box(&request)))
    });

    let mut authenticator = memory_authenticator();
    let request = pin_token_request(&mut authenticator, "123456", "example.com");
    assert_eq!(
        authenticator.process_cbor(BENCH_ORIGIN, &request)[0],
        0,
        "token step works"
    );
    group.bench_function("memory_get_pin_uv_auth_token_protocol2", |b| {
        b.iter(|| authenticator.process_cbor(BENCH_ORIGIN, black_box(&request)))
    });
    group.finish();
}

criterion_group!(benches, token_step);
criterion_main!(benches);
