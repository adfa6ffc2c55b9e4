//! What a PIN check costs, through the keystore (`Keystore::verify_pin` with the right PIN):
//!
//! - file keystore: a retry spent (`pin.state` written and synced), Argon2id of the PIN's
//!   authorization with the default parameters (128 MiB, 8 passes, 1 lane), AES-GCM, the
//!   retries restored (`pin.state` again); and the same with Argon2id at its cheapest, to
//!   show what the two writes cost;
//! - TPM keystore on swtpm: TPM2_GetCapability (lockout state), a retry spent (`pin.state`
//!   synced, then TPM2_NV_Increment), TPM2_Load + TPM2_Unseal + TPM2_FlushContext of the
//!   verifier, the retries restored.
//!
//! Beside them: setting a PIN on the TPM (TPM2_Create of the verifier, an NV read, a write),
//! and one TPM2_NV_Increment + TPM2_NV_Read (what one block of 1024 signature counter values
//! costs).
//!
//! Run: `cargo bench -p fido2d-benches --bench pin` (starts its own swtpm).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use fido2d_tests::swtpm::Swtpm;
use protocol::env::{Keystore as _, PinCheck, MAX_PIN_RETRIES};
use sha2::{Digest as _, Sha256};
use storage::{
    FileKeystore, KeyBackend as _, KeystoreOptions, OsRng, PinHashCost, TpmConfig, TpmKeys,
    TpmKeystore,
};

fn pin_hash(pin: &str) -> [u8; 16] {
    Sha256::digest(pin.as_bytes())[..16].try_into().unwrap()
}

fn pin(c: &mut Criterion) {
    let mut group = c.benchmark_group("pin");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(12));

    let dir = tempfile::tempdir().unwrap();
    let mut store = FileKeystore::open(&dir.path().join("default"), OsRng).unwrap();
    store.set_pin(&pin_hash("123456"), MAX_PIN_RETRIES).unwrap();
    group.bench_function("file_verify_pin_argon2id_default", |b| {
        b.iter(|| {
            assert_eq!(
                store.verify_pin(black_box(&pin_hash("123456"))).unwrap(),
                PinCheck::Match
            )
        })
    });

    let mut fast = FileKeystore::open_with(
        &dir.path().join("fast"),
        OsRng,
        KeystoreOptions {
            pin_hash_cost: PinHashCost::INSECURE_FAST,
            ..KeystoreOptions::default()
        },
    )
    .unwrap();
    fast.set_pin(&pin_hash("123456"), MAX_PIN_RETRIES).unwrap();
    group.sample_size(30);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("file_verify_pin_argon2id_cheapest", |b| {
        b.iter(|| {
            assert_eq!(
                fast.verify_pin(black_box(&pin_hash("123456"))).unwrap(),
                PinCheck::Match
            )
        })
    });

    let tpm = Swtpm::start();
    let config = TpmConfig {
        tcti: tpm.tcti(),
        parent: None,
    };
    let mut store = TpmKeystore::open(
        &dir.path().join("tpm"),
        TpmKeys::open(&config).unwrap(),
        OsRng,
        KeystoreOptions::default(),
    )
    .unwrap();
    store.set_pin(&pin_hash("123456"), MAX_PIN_RETRIES).unwrap();
    group.bench_function("tpm_verify_pin", |b| {
        b.iter(|| {
            assert_eq!(
                store.verify_pin(black_box(&pin_hash("123456"))).unwrap(),
                PinCheck::Match
            )
        })
    });
    group.bench_function("tpm_set_pin", |b| {
        b.iter(|| {
            store
                .set_pin(black_box(&pin_hash("123456")), MAX_PIN_RETRIES)
                .unwrap()
        })
    });
    drop(store);

    let mut keys = TpmKeys::open(&config).unwrap();
    group.bench_function("tpm_nv_increment_and_read", |b| {
        b.iter(|| {
            keys.monotonic_counters()
                .expect("NV counters")
                .increment(black_box(0x0180_f1d0))
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, pin);
criterion_main!(benches);
