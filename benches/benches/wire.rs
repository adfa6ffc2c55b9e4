//! The typed wire layer alone: what decoding a request and encoding a response cost, to set
//! beside a whole getAssertion (`authenticator` bench, `file_es256/get_assertion`). Issue 18
//! asks that the layer cost no more than 5% of it.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use fido2d_benches::{credential_id_of, BENCH_ORIGIN};
use fido2d_benches::{file_authenticator, get_assertion_request, make_credential_request};
use protocol::wire::{
    GetAssertionRequest, GetAssertionResponse, MakeCredentialRequest, MakeCredentialResponse,
    Request, Response,
};

fn wire(c: &mut Criterion) {
    // Real messages: the benches' requests, and the answers fido2d gives them.
    let dir = tempfile::tempdir().expect("temp dir");
    let mut authenticator = file_authenticator(dir.path());
    let make_credential = make_credential_request("example.com", b"user", -7, false);
    let registration = authenticator.process_cbor(BENCH_ORIGIN, &make_credential);
    let get_assertion =
        get_assertion_request("example.com", Some(&credential_id_of(&registration)));
    let assertion = authenticator.process_cbor(BENCH_ORIGIN, &get_assertion);
    assert_eq!(assertion[0], 0, "getAssertion works");
    let assertion = GetAssertionResponse::decode(&assertion[1..]).expect("an assertion");
    let registration = MakeCredentialResponse::decode(&registration[1..]).expect("a credential");

    let mut group = c.benchmark_group("wire");
    group.bench_function("get_assertion_request_decode", |b| {
        b.iter(|| GetAssertionRequest::decode(black_box(&get_assertion[1..])))
    });
    group.bench_function("get_assertion_response_encode", |b| {
        b.iter(|| black_box(&assertion).encode())
    });
    group.bench_function("make_credential_request_decode", |b| {
        b.iter(|| MakeCredentialRequest::decode(black_box(&make_credential[1..])))
    });
    group.bench_function("make_credential_response_encode", |b| {
        b.iter(|| black_box(&registration).encode())
    });
    group.finish();
}

criterion_group!(benches, wire);
criterion_main!(benches);
