//! In-process ceremonies next to the bare primitives they contain, so the protocol's overhead
//! reads as a ratio: getAssertion against one signature, makeCredential against one key
//! generation plus one signature; the same getAssertion through the CTAPHID engine (reports in,
//! reports out); getAssertion in stores of 10, 1,000 and 10,000 discoverable credentials; and
//! opening a store of 10,000 credentials, in process and as the real daemon until its ready
//! line.
//!
//! Run: `cargo bench -p fido2d-benches --bench authenticator` (a group alone: add its name,
//! e.g. `-- discoverable`). The comparison with 1Password's passkey-authenticator is the bench
//! `peer`: `cargo bench -p fido2d-benches --features peer --bench peer`.

use std::hint::black_box;
use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use ed25519_dalek::Signer as _;
use fido2d_benches::{
    authenticator_in, credential_id_of, file_authenticator, get_assertion_request,
    make_credential_request, populated_state_dir, HidHost, BENCH_ORIGIN,
};
use protocol::env::Keystore as _;
use protocol::testing::SeededRng;
use storage::FileKeystore;

/// authenticatorData (37 bytes) + clientDataHash (32 bytes): what an assertion signs.
const SIGNED: [u8; 69] = [0x5a; 69];

fn primitives(c: &mut Criterion) {
    let mut group = c.benchmark_group("primitive");
    // The ES256 signature the file keystore makes (storage::es256, AWS-LC), its key loaded
    // from its 32 bytes as for every assertion: what file_es256/get_assertion contains.
    group.bench_function("es256_sign", |b| {
        b.iter(|| storage::es256::sign(black_box(&[0x42; 32]), black_box(&SIGNED)))
    });
    // RustCrypto's, with the key already loaded: what the file keystore used before.
    let key = p256::ecdsa::SigningKey::from_slice(&[0x42; 32]).expect("valid scalar");
    group.bench_function("p256_sign", |b| {
        b.iter(|| -> p256::ecdsa::Signature { key.sign(black_box(&SIGNED)) })
    });
    let mut seed = 1u8;
    group.bench_function("p256_keygen_and_sign", |b| {
        b.iter(|| {
            // Small equal bytes stay below the P-256 group order.
            seed = seed % 0x7f + 1;
            let key = p256::ecdsa::SigningKey::from_slice(&[seed; 32]).expect("valid scalar");
            let _ = key.verifying_key();
            let sig: p256::ecdsa::Signature = key.sign(black_box(&SIGNED));
            sig
        })
    });
    let key = ed25519_dalek::SigningKey::from_bytes(&[0x42; 32]);
    group.bench_function("ed25519_sign", |b| b.iter(|| key.sign(black_box(&SIGNED))));
    group.bench_function("ed25519_keygen_and_sign", |b| {
        b.iter(|| {
            seed = seed.wrapping_add(1);
            let key = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
            let _ = key.verifying_key();
            key.sign(black_box(&SIGNED))
        })
    });
    group.finish();
}

fn ceremonies(c: &mut Criterion) {
    for (name, alg) in [("es256", -7), ("eddsa", -8)] {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut authenticator = file_authenticator(dir.path());
        let mut group = c.benchmark_group(format!("file_{name}"));

        let make_credential = make_credential_request("example.com", b"user", alg, false);
        group.bench_function("make_credential", |b| {
            b.iter(|| authenticator.process_cbor(BENCH_ORIGIN, black_box(&make_credential)))
        });

        let response = authenticator.process_cbor(BENCH_ORIGIN, &make_credential);
        let credential_id = credential_id_of(&response);
        let get_assertion = get_assertion_request("example.com", Some(&credential_id));
        assert_eq!(
            authenticator.process_cbor(BENCH_ORIGIN, &get_assertion)[0],
            0,
            "getAssertion works"
        );
        group.bench_function("get_assertion", |b| {
            b.iter(|| authenticator.process_cbor(BENCH_ORIGIN, black_box(&get_assertion)))
        });
        group.finish();
    }
}

/// One whole getAssertion transaction through the CTAPHID engine: the request's reports in,
/// the authenticator's answer framed into reports out.
fn ctaphid(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut authenticator = file_authenticator(dir.path());
    let response = authenticator.process_cbor(
        BENCH_ORIGIN,
        &make_credential_request("example.com", b"u", -7, false),
    );
    let request = get_assertion_request("example.com", Some(&credential_id_of(&response)));
    let mut host = HidHost::new();
    let reports = host.cbor_reports(&request);
    let answer = host.transact(&reports, |r| authenticator.process_cbor(BENCH_ORIGIN, r));
    assert_eq!(answer[0][7], 0, "getAssertion through CTAPHID works");

    let mut group = c.benchmark_group("ctaphid");
    group.bench_function("get_assertion_es256", |b| {
        b.iter(|| {
            host.transact(black_box(&reports), |r| {
                authenticator.process_cbor(BENCH_ORIGIN, r)
            })
        })
    });
    group.finish();
}

/// getAssertion for an RP with one credential in stores of 10, 1,000 and 10,000 discoverable
/// credentials (the others spread over 100 other RPs): by discovery (no allowList), and with
/// the credential in the allowList.
fn discoverable(c: &mut Criterion) {
    let mut group = c.benchmark_group("discoverable");
    for count in [10, 1_000, 10_000] {
        let dir = tempfile::tempdir().expect("temp dir");
        let state = dir.path().join("state");
        let id = populated_state_dir(&state, count, "example.com");
        let mut authenticator = authenticator_in(&state);
        assert_eq!(
            authenticator.keystore().discoverable_count(),
            count,
            "the store holds them all"
        );
        let discovery = get_assertion_request("example.com", None);
        let allow_list = get_assertion_request("example.com", Some(&id));
        for request in [&discovery, &allow_list] {
            assert_eq!(
                authenticator.process_cbor(BENCH_ORIGIN, request)[0],
                0,
                "getAssertion works"
            );
        }
        group.bench_function(format!("get_assertion_discovery/{count}"), |b| {
            b.iter(|| authenticator.process_cbor(BENCH_ORIGIN, black_box(&discovery)))
        });
        group.bench_function(format!("get_assertion_allow_list/{count}"), |b| {
            b.iter(|| authenticator.process_cbor(BENCH_ORIGIN, black_box(&allow_list)))
        });
    }
    group.finish();
}

/// Start-up with 10,000 discoverable credentials (and with 10, for scale): the keystore open
/// in process, and the real `fido2d` from exec to its ready line.
fn startup(c: &mut Criterion) {
    let mut group = c.benchmark_group("startup");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    let fido2d = fido2d_tests::fido2d_bin();
    for count in [10, 10_000] {
        let dir = tempfile::tempdir().expect("temp dir");
        let state = dir.path().join("state");
        populated_state_dir(&state, count, "example.com");
        group.bench_function(format!("keystore_open/{count}"), |b| {
            b.iter(|| FileKeystore::open(black_box(&state), SeededRng::new(1)).expect("open"))
        });
        group.bench_function(format!("daemon_ready/{count}"), |b| {
            b.iter_batched(
                || (),
                |()| daemon_until_ready(&fido2d, &state),
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

/// Starts fido2d on `state`, waits for its ready line, stops it.
fn daemon_until_ready(fido2d: &std::path::Path, state: &std::path::Path) {
    let mut child = Command::new(fido2d)
        .args([
            "--config",
            "/dev/null",
            "--transport",
            "udp",
            "--udp-port",
            "0",
        ])
        .arg("--state-dir")
        .arg(state)
        .args(["--presence", "deny"])
        .env("FIDO2D_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start fido2d");
    let stderr = child.stderr.take().expect("stderr");
    let ready = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.contains("CTAPHID over UDP on"));
    let _ = child.kill();
    let _ = child.wait();
    assert!(ready, "fido2d printed no ready line");
}

criterion_group!(
    benches,
    primitives,
    ceremonies,
    ctaphid,
    discoverable,
    startup
);
criterion_main!(benches);
