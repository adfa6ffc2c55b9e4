//! fido2d next to 1Password's passkey-authenticator (crates.io, 0.6) on the same ceremony, in
//! one run: ES256, a non-discoverable credential registered first, then getAssertion with it
//! in the allowList and user presence granted, from the CTAP2 CBOR request bytes to the CBOR
//! response bytes (passkey-authenticator's own serde types decode and encode them). Its store
//! is its in-memory `MemoryStore`; fido2d runs over its file keystore (the daemon's) and over
//! the in-memory `MemoryKeystore`.
//!
//! Run: `cargo bench -p fido2d-benches --features peer --bench peer`. Criterion times one
//! function after the other, minutes apart on a busy machine: the figures to compare come from
//! `--bench peer_interleaved`, which alternates them round by round.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use fido2d_benches::peer::Contenders;
use fido2d_benches::BENCH_ORIGIN;

fn versus_peer(c: &mut Criterion) {
    let Contenders {
        mut peer,
        peer_request,
        mut file,
        file_request,
        mut memory,
        memory_request,
        state_dir: _state_dir,
    } = Contenders::new();

    let mut group = c.benchmark_group("versus_peer");
    group.bench_function("get_assertion_es256/fido2d_file", |b| {
        b.iter(|| file.process_cbor(BENCH_ORIGIN, black_box(&file_request)))
    });
    group.bench_function("get_assertion_es256/fido2d_memory", |b| {
        b.iter(|| memory.process_cbor(BENCH_ORIGIN, black_box(&memory_request)))
    });
    group.bench_function("get_assertion_es256/passkey_authenticator", |b| {
        b.iter(|| peer.get_assertion(black_box(&peer_request)))
    });
    group.finish();
}

criterion_group!(benches, versus_peer);
criterion_main!(benches);
