//! fido2d next to 1Password's passkey-authenticator (crates.io, 0.6) on the same ceremony, in
//! one run: ES256, a non-discoverable credential registered first, then getAssertion with it
//! in the allowList and user presence granted, from the CTAP2 CBOR request bytes to the CBOR
//! response bytes (passkey-authenticator's own serde types decode and encode them). Its store
//! is its in-memory `MemoryStore`; fido2d runs over its file keystore (the daemon's) and over
//! the in-memory `MemoryKeystore`.
//!
//! Run: `cargo bench -p fido2d-benches --features peer --bench peer`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use fido2d_benches::{
    credential_id_of, file_authenticator, get_assertion_request, make_credential_request,
    memory_authenticator, BENCH_ORIGIN,
};
use passkey_authenticator::{Authenticator, MemoryStore, UiHint, UserCheck, UserValidationMethod};
use passkey_types::ctap2::{get_assertion, make_credential, Aaguid, Ctap2Error};
use passkey_types::Passkey;

/// A person who always says yes, as fido2d's benches assume.
struct AlwaysPresent;

#[async_trait::async_trait]
impl UserValidationMethod for AlwaysPresent {
    type PasskeyItem = Passkey;

    async fn check_user<'a>(
        &self,
        _hint: UiHint<'a, Passkey>,
        presence: bool,
        _verification: bool,
    ) -> Result<UserCheck, Ctap2Error> {
        Ok(UserCheck {
            presence,
            verification: false,
        })
    }

    fn is_presence_enabled(&self) -> bool {
        true
    }

    fn is_verification_enabled(&self) -> Option<bool> {
        None
    }
}

fn versus_peer(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime");

    // passkey-authenticator: register through CBOR, sign in through CBOR.
    let mut peer = Authenticator::new(
        Aaguid::new_empty(),
        MemoryStore::new(),
        AlwaysPresent,
        passkey_crypto::AvailableBackend,
    );
    let register = make_credential_request("example.com", b"user", -7, false);
    let request: make_credential::Request =
        ciborium::from_reader(&register[1..]).expect("passkey-types reads our request");
    let response = runtime
        .block_on(peer.make_credential(request))
        .expect("peer makeCredential");
    let mut encoded = vec![0u8];
    ciborium::into_writer(&response, &mut encoded).expect("encode");
    let peer_request = get_assertion_request("example.com", Some(&credential_id_of(&encoded)));
    let mut peer_assertion = |request: &[u8]| -> Vec<u8> {
        let parsed: get_assertion::Request = ciborium::from_reader(&request[1..]).expect("decode");
        let response = runtime
            .block_on(peer.get_assertion(parsed))
            .expect("peer getAssertion");
        let mut out = vec![0u8];
        ciborium::into_writer(&response, &mut out).expect("encode");
        out
    };
    assert_eq!(peer_assertion(&peer_request)[0], 0);

    // fido2d over its file keystore and over the in-memory one.
    let dir = tempfile::tempdir().expect("temp dir");
    let mut file = file_authenticator(dir.path());
    let file_request = get_assertion_request(
        "example.com",
        Some(&credential_id_of(
            &file.process_cbor(BENCH_ORIGIN, &register),
        )),
    );
    let mut memory = memory_authenticator();
    let memory_request = get_assertion_request(
        "example.com",
        Some(&credential_id_of(
            &memory.process_cbor(BENCH_ORIGIN, &register),
        )),
    );
    for (authenticator_ok, name) in [
        (
            file.process_cbor(BENCH_ORIGIN, &file_request)[0] == 0,
            "file",
        ),
        (
            memory.process_cbor(BENCH_ORIGIN, &memory_request)[0] == 0,
            "memory",
        ),
    ] {
        assert!(authenticator_ok, "fido2d getAssertion ({name}) works");
    }

    let mut group = c.benchmark_group("versus_peer");
    group.bench_function("get_assertion_es256/fido2d_file", |b| {
        b.iter(|| file.process_cbor(BENCH_ORIGIN, black_box(&file_request)))
    });
    group.bench_function("get_assertion_es256/fido2d_memory", |b| {
        b.iter(|| memory.process_cbor(BENCH_ORIGIN, black_box(&memory_request)))
    });
    group.bench_function("get_assertion_es256/passkey_authenticator", |b| {
        b.iter(|| peer_assertion(black_box(&peer_request)))
    });
    group.finish();
}

criterion_group!(benches, versus_peer);
criterion_main!(benches);
