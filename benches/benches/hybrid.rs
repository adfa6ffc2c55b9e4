//! The hybrid transport's own work, per session: reading the QR code, making the advert, our
//! side of the Noise handshake (two P-256 ECDH plus key generation), and the frame crypto.
//!
//! Run: `cargo bench -p fido2d-benches --bench hybrid`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use p256::elliptic_curve::sec1::ToSec1Point;
use protocol::hybrid::advert::Eid;
use protocol::hybrid::crypter::Crypter;
use protocol::hybrid::qr::QrRequest;
use protocol::hybrid::{digits, handshake, keys};
use snow::params::{CipherChoice, DHChoice, HashChoice};
use snow::resolvers::{CryptoResolver, DefaultResolver};
use snow::types::{Cipher, Dh, Hash, Random};
use zeroize::Zeroizing;

/// snow's primitives with fixed "randomness", for the initiator that makes message 1.
struct FixedRandom;

impl Random for FixedRandom {
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
        dest.fill(0x22);
        Ok(())
    }
}

impl CryptoResolver for FixedRandom {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        Some(Box::new(FixedRandom))
    }
    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        DefaultResolver.resolve_dh(choice)
    }
    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
        DefaultResolver.resolve_hash(choice)
    }
    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        DefaultResolver.resolve_cipher(choice)
    }
}

fn hybrid(c: &mut Criterion) {
    let mut group = c.benchmark_group("hybrid");
    let identity = p256::SecretKey::from_slice(&[0x11; 32]).unwrap();
    let qr_secret = [0x42u8; 16];

    let qr_cbor = protocol::cbor::encode(&ciborium::Value::Map(vec![
        (
            0.into(),
            ciborium::Value::Bytes(
                identity
                    .public_key()
                    .to_sec1_point(true)
                    .as_bytes()
                    .to_vec(),
            ),
        ),
        (1.into(), ciborium::Value::Bytes(qr_secret.to_vec())),
        (2.into(), 2.into()),
        (3.into(), 1_700_000_000u64.into()),
        (5.into(), ciborium::Value::Text("mc".into())),
    ]));
    let qr_text = format!("FIDO:/{}", digits::encode(&qr_cbor));
    group.bench_function("qr_parse", |b| {
        b.iter(|| QrRequest::parse(black_box(&qr_text), 1_700_000_000, 600).unwrap())
    });

    let eid = Eid {
        nonce: [7; 10],
        routing_id: [1, 2, 3],
        tunnel_domain: 0,
    };
    group.bench_function("keys_and_advert", |b| {
        b.iter(|| {
            let eid_key = keys::eid_key(black_box(&qr_secret));
            let psk = keys::psk(&qr_secret, &eid.to_bytes());
            (eid.encrypt(&eid_key), psk)
        })
    });

    let psk = keys::psk(&qr_secret, &eid.to_bytes());
    let identity_bytes = identity.to_bytes();
    let mut initiator = snow::Builder::with_resolver(
        handshake::PROTOCOL_NAME.parse().unwrap(),
        Box::new(FixedRandom),
    )
    .prologue(&handshake::QR_PROLOGUE)
    .unwrap()
    .local_private_key(&identity_bytes)
    .unwrap()
    .psk(0, &psk)
    .unwrap()
    .build_initiator()
    .unwrap();
    let mut message = [0u8; 96];
    let len = initiator.write_message(&[], &mut message).unwrap();
    let message = message[..len].to_vec();
    let public = identity.public_key();
    group.bench_function("handshake_respond", |b| {
        b.iter(|| {
            handshake::respond(
                &public,
                &psk,
                black_box(&message),
                Zeroizing::new([0x33; 32]),
            )
            .unwrap()
        })
    });

    let frame = vec![0x5a; 1024];
    let mut ours = Crypter::new(&[1; 32], &[2; 32]);
    let mut theirs = Crypter::new(&[2; 32], &[1; 32]);
    group.bench_function("frame_1k_encrypt_decrypt", |b| {
        b.iter(|| {
            let sealed = ours.encrypt(black_box(&frame)).unwrap();
            theirs.decrypt(&sealed).unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, hybrid);
criterion_main!(benches);
