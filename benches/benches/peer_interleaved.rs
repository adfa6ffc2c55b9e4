//! fido2d's getAssertion against 1Password's passkey-authenticator 0.6's, and the bare P-256
//! signatures each one contains, timed interleaved in one process: 15 rounds, each round a batch
//! of every operation in turn (the order reversed every other round), the medians of the rounds'
//! means and of the rounds' ratios printed with the machine's load. Criterion runs taken one
//! after the other on a busy 2-core machine do not compare: load that comes and goes between two
//! of them shows up as a difference between the authenticators. Here every round sees the same
//! load on both sides.
//!
//! The ceremony is the `peer` bench's: ES256, a non-discoverable credential registered first,
//! getAssertion with it in the allowList and presence granted, CBOR request bytes to CBOR answer
//! bytes. fido2d runs over its file keystore (the daemon's, AWS-LC signatures) and over the
//! sans-IO core's in-memory one (RustCrypto, as the peer signs).
//!
//! Run: `cargo bench -p fido2d-benches --features peer --bench peer_interleaved`

use std::hint::black_box;
use std::time::Instant;

use fido2d_benches::peer::Contenders;
use fido2d_benches::BENCH_ORIGIN;
use p256::ecdsa::signature::Signer as _;

const ROUNDS: usize = 15;
/// Calls of each operation per round: about 25-100 ms of each on this machine.
const BATCH: usize = 1000;
/// authenticatorData (37 bytes) + clientDataHash (32 bytes): what an assertion signs.
const SIGNED: [u8; 69] = [0x5a; 69];

struct Operation<'a> {
    name: &'static str,
    run: Box<dyn FnMut() + 'a>,
    /// The mean of each round's batch, in µs.
    means: Vec<f64>,
}

fn main() {
    // `cargo test --benches` runs a bench once without --bench: one call each, as a smoke test.
    let (rounds, batch) = if std::env::args().any(|a| a == "--bench") {
        (ROUNDS, BATCH)
    } else {
        (1, 1)
    };
    let Contenders {
        mut peer,
        peer_request,
        mut file,
        file_request,
        mut memory,
        memory_request,
        state_dir: _state_dir,
    } = Contenders::new();
    let p256_key = p256::ecdsa::SigningKey::from_slice(&[0x42; 32]).expect("valid scalar");

    let mut operations = [
        Operation {
            name: "fido2d getAssertion, file keystore",
            run: Box::new(|| {
                black_box(file.process_cbor(BENCH_ORIGIN, black_box(&file_request)));
            }),
            means: Vec::new(),
        },
        Operation {
            name: "passkey-authenticator getAssertion",
            run: Box::new(|| {
                black_box(peer.get_assertion(black_box(&peer_request)));
            }),
            means: Vec::new(),
        },
        Operation {
            name: "ES256 sign, AWS-LC, key from its 32 bytes (fido2d file)",
            run: Box::new(|| {
                black_box(storage::es256::sign(
                    black_box(&[0x42; 32]),
                    black_box(&SIGNED),
                ));
            }),
            means: Vec::new(),
        },
        Operation {
            name: "p256 sign, RustCrypto, key loaded (the peer's)",
            run: Box::new(|| {
                let signature: p256::ecdsa::Signature = p256_key.sign(black_box(&SIGNED));
                black_box(signature);
            }),
            means: Vec::new(),
        },
        Operation {
            name: "fido2d getAssertion, in-memory keystore (RustCrypto)",
            run: Box::new(|| {
                black_box(memory.process_cbor(BENCH_ORIGIN, black_box(&memory_request)));
            }),
            means: Vec::new(),
        },
    ];

    let load_before = loadavg();
    // One unmeasured batch each: caches, lazily built tables, the CPU's clock.
    for operation in &mut operations {
        for _ in 0..batch {
            (operation.run)();
        }
    }
    for round in 0..rounds {
        let count = operations.len();
        for k in 0..count {
            let i = if round % 2 == 0 { k } else { count - 1 - k };
            let operation = &mut operations[i];
            let start = Instant::now();
            for _ in 0..batch {
                (operation.run)();
            }
            let mean = start.elapsed().as_secs_f64() * 1e6 / batch as f64;
            operation.means.push(mean);
        }
        let m: Vec<String> = operations
            .iter()
            .map(|o| format!("{:.1}", o.means[round]))
            .collect();
        println!(
            "round {:2}: {} µs; peer/fido2d {:.2}x",
            round + 1,
            m.join(" / "),
            operations[1].means[round] / operations[0].means[round]
        );
    }
    let load_after = loadavg();

    println!(
        "\n{rounds} rounds of {batch} calls each, medians of the rounds' means (µs per call):"
    );
    for operation in &operations {
        println!("  {:>8.1}  {}", median(&operation.means), operation.name);
    }
    let ratio = |a: usize, b: usize| -> f64 {
        let per_round: Vec<f64> = operations[a]
            .means
            .iter()
            .zip(&operations[b].means)
            .map(|(x, y)| x / y)
            .collect();
        median(&per_round)
    };
    println!("medians of the per-round ratios:");
    println!(
        "  {:.2}x  passkey-authenticator / fido2d (file keystore), getAssertion",
        ratio(1, 0)
    );
    println!(
        "  {:.2}x  passkey-authenticator / fido2d (in-memory keystore), getAssertion",
        ratio(1, 4)
    );
    println!(
        "  {:.2}x  fido2d getAssertion (file) / its AWS-LC signature",
        ratio(0, 2)
    );
    println!(
        "  {:.2}x  passkey-authenticator getAssertion / a RustCrypto signature",
        ratio(1, 3)
    );
    println!(
        "  {:.2}x  fido2d getAssertion (in-memory) / a RustCrypto signature",
        ratio(4, 3)
    );
    println!(
        "load average (1, 5, 15 min) before: {load_before}; after: {load_after}; {} CPUs",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// The first three fields of /proc/loadavg.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|e| format!("unknown ({e})"))
}
