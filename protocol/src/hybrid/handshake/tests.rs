//! The responder against two initiators it shares no code with: one written here from the
//! caBLE step list (HKDF, SHA-256, ECDH and AES-GCM by hand), and snow's own initiator.

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use hkdf::Hkdf;
use p256::elliptic_curve::sec1::ToSec1Point;
use p256::{PublicKey, SecretKey};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::*;

fn secret(byte: u8) -> SecretKey {
    SecretKey::from_slice(&[byte; 32]).unwrap()
}

fn uncompressed(key: &PublicKey) -> Vec<u8> {
    key.to_sec1_point(false).as_bytes().to_vec()
}

const PSK: [u8; 32] = [0x5a; 32];
const IDENTITY: u8 = 0x11;
const INITIATOR_EPHEMERAL: u8 = 0x22;
const RESPONDER_EPHEMERAL: u8 = 0x33;

fn fixed(byte: u8) -> Zeroizing<[u8; 32]> {
    Zeroizing::new([byte; 32])
}

/// The caBLE initiator, step by step as the fact sheet lists them.
pub(in crate::hybrid) struct ReferenceInitiator {
    ck: [u8; 32],
    h: [u8; 32],
    k: Option<[u8; 32]>,
    identity: SecretKey,
    ephemeral: SecretKey,
}

impl ReferenceInitiator {
    pub(in crate::hybrid) fn new(
        identity: SecretKey,
        psk: &[u8; 32],
        ephemeral: SecretKey,
    ) -> Self {
        let mut name = [0u8; 32];
        name[..31].copy_from_slice(PROTOCOL_NAME.as_bytes());
        let mut me = ReferenceInitiator {
            ck: name,
            h: name,
            k: None,
            identity,
            ephemeral,
        };
        me.mix_hash(&[1]);
        let s = uncompressed(&me.identity.public_key());
        me.mix_hash(&s);
        me.mix_key_and_hash(psk);
        me
    }

    fn hkdf<const N: usize>(&self, ikm: &[u8]) -> [u8; N] {
        let mut out = [0u8; N];
        Hkdf::<Sha256>::new(Some(&self.ck), ikm)
            .expand(&[], &mut out)
            .unwrap();
        out
    }

    fn mix_hash(&mut self, data: &[u8]) {
        self.h = Sha256::new()
            .chain_update(self.h)
            .chain_update(data)
            .finalize()
            .into();
    }

    fn mix_key(&mut self, ikm: &[u8]) {
        let out: [u8; 64] = self.hkdf(ikm);
        self.ck.copy_from_slice(&out[..32]);
        self.k = Some(out[32..].try_into().unwrap());
    }

    fn mix_key_and_hash(&mut self, ikm: &[u8]) {
        let out: [u8; 96] = self.hkdf(ikm);
        self.ck.copy_from_slice(&out[..32]);
        let temp_h = out[32..64].to_vec();
        self.mix_hash(&temp_h);
        self.k = Some(out[64..].try_into().unwrap());
    }

    fn aead(&self) -> Aes256Gcm {
        Aes256Gcm::new_from_slice(&self.k.unwrap()).unwrap()
    }

    /// e_I | EncryptAndHash(empty). Each key is used once in the handshake: nonce 0.
    pub(in crate::hybrid) fn first_message(&mut self) -> Vec<u8> {
        let e = uncompressed(&self.ephemeral.public_key());
        self.mix_hash(&e);
        self.mix_key(&e);
        let tag = self
            .aead()
            .encrypt(
                &Nonce::from([0; 12]),
                Payload {
                    msg: &[],
                    aad: &self.h,
                },
            )
            .unwrap();
        self.mix_hash(&tag);
        [e, tag].concat()
    }

    fn dh(secret: &SecretKey, public: &PublicKey) -> Vec<u8> {
        p256::ecdh::diffie_hellman(secret.to_nonzero_scalar(), public.as_affine())
            .raw_secret_bytes()
            .to_vec()
    }

    /// Checks message 2 and returns (initiator -> responder, responder -> initiator) keys.
    pub(in crate::hybrid) fn read_response(
        &mut self,
        response: &[u8],
    ) -> Result<([u8; 32], [u8; 32]), ()> {
        if response.len() != 81 {
            return Err(());
        }
        let (e_r, tag) = response.split_at(65);
        let e_r_key = PublicKey::from_sec1_bytes(e_r).map_err(|_| ())?;
        self.mix_hash(e_r);
        self.mix_key(e_r);
        let ee = Self::dh(&self.ephemeral, &e_r_key);
        self.mix_key(&ee);
        let se = Self::dh(&self.identity, &e_r_key);
        self.mix_key(&se);
        let plain = self
            .aead()
            .decrypt(
                &Nonce::from([0; 12]),
                Payload {
                    msg: tag,
                    aad: &self.h,
                },
            )
            .map_err(|_| ())?;
        if !plain.is_empty() {
            return Err(());
        }
        let keys: [u8; 64] = self.hkdf(&[]);
        Ok((
            keys[..32].try_into().unwrap(),
            keys[32..].try_into().unwrap(),
        ))
    }
}

fn reference() -> ReferenceInitiator {
    ReferenceInitiator::new(secret(IDENTITY), &PSK, secret(INITIATOR_EPHEMERAL))
}

#[test]
fn protocol_constants() {
    assert_eq!(PROTOCOL_NAME.len(), 31);
    assert_eq!(QR_PROLOGUE, [1]);
    assert_eq!(INITIATOR_MESSAGE_LEN, 81);
    assert_eq!(RESPONSE_LEN, 81);
}

#[test]
fn completes_with_the_reference_initiator() {
    let mut initiator = reference();
    let message = initiator.first_message();
    let identity = secret(IDENTITY).public_key();
    let mut done = respond(&identity, &PSK, &message, fixed(RESPONDER_EPHEMERAL)).unwrap();
    assert_eq!(done.response.len(), RESPONSE_LEN);
    // The response starts with our ephemeral public key, uncompressed.
    assert_eq!(
        done.response[..65],
        uncompressed(&secret(RESPONDER_EPHEMERAL).public_key())[..]
    );
    let (to_us, to_them) = initiator.read_response(&done.response).unwrap();

    // Frames: the initiator writes with the first split key, we with the second.
    let mut their_side = crate::hybrid::crypter::Crypter::new(&to_them, &to_us);
    let frame = their_side.encrypt(b"\x01\x04").unwrap();
    assert_eq!(&*done.crypter.decrypt(&frame).unwrap(), b"\x01\x04");
    let reply = done.crypter.encrypt(b"\x01\x00\xa0").unwrap();
    assert_eq!(&*their_side.decrypt(&reply).unwrap(), b"\x01\x00\xa0");
}

#[test]
fn transcript_is_deterministic_for_fixed_keys() {
    let identity = secret(IDENTITY).public_key();
    let one = respond(
        &identity,
        &PSK,
        &reference().first_message(),
        fixed(RESPONDER_EPHEMERAL),
    )
    .unwrap();
    let two = respond(
        &identity,
        &PSK,
        &reference().first_message(),
        fixed(RESPONDER_EPHEMERAL),
    )
    .unwrap();
    assert_eq!(one.response, two.response);
    let other = respond(&identity, &PSK, &reference().first_message(), fixed(0x44)).unwrap();
    assert_ne!(one.response, other.response);
}

/// snow's initiator and ours agree on message 1 byte for byte, and snow accepts our answer;
/// its transport keys then read and write our frames (its nonce, 4 zero bytes | BE64, equals
/// caBLE's 8 zero bytes | BE32 while the counter fits 32 bits).
#[test]
fn completes_with_snow_as_the_initiator() {
    let identity = secret(IDENTITY);
    let params: NoiseParams = PROTOCOL_NAME.parse().unwrap();
    let identity_bytes = Zeroizing::new(identity.to_bytes().to_vec());
    let mut snow_initiator = snow::Builder::with_resolver(
        params,
        Box::new(SuppliedEphemeral::new(fixed(INITIATOR_EPHEMERAL))),
    )
    .prologue(&QR_PROLOGUE)
    .unwrap()
    .local_private_key(&identity_bytes)
    .unwrap()
    .psk(0, &PSK)
    .unwrap()
    .build_initiator()
    .unwrap();
    let mut message = [0u8; 128];
    let len = snow_initiator.write_message(&[], &mut message).unwrap();
    assert_eq!(&message[..len], &reference().first_message()[..]);

    let mut done = respond(
        &identity.public_key(),
        &PSK,
        &message[..len],
        fixed(RESPONDER_EPHEMERAL),
    )
    .unwrap();
    let mut payload = [0u8; 128];
    assert_eq!(
        snow_initiator
            .read_message(&done.response, &mut payload)
            .unwrap(),
        0
    );
    let mut transport = snow_initiator.into_transport_mode().unwrap();

    // A padded CTAP frame from snow's side: 2 bytes + 29 zeros + count byte 29.
    let mut padded = vec![0x01, 0x04];
    padded.resize(31, 0);
    padded.push(29);
    let mut frame = [0u8; 128];
    let len = transport.write_message(&padded, &mut frame).unwrap();
    assert_eq!(
        &*done.crypter.decrypt(&frame[..len]).unwrap(),
        &[0x01, 0x04]
    );

    let ours = done.crypter.encrypt(b"hello").unwrap();
    let mut plain = [0u8; 128];
    let len = transport.read_message(&ours, &mut plain).unwrap();
    assert_eq!(len, 32);
    assert_eq!(&plain[..5], b"hello");
    assert_eq!(plain[31], 26);
}

#[test]
fn a_wrong_psk_or_identity_fails() {
    let message = reference().first_message();
    let identity = secret(IDENTITY).public_key();
    assert!(matches!(
        respond(&identity, &[0; 32], &message, fixed(RESPONDER_EPHEMERAL)),
        Err(HybridError::HandshakeFailed(_))
    ));
    let stranger = secret(0x12).public_key();
    assert!(matches!(
        respond(&stranger, &PSK, &message, fixed(RESPONDER_EPHEMERAL)),
        Err(HybridError::HandshakeFailed(_))
    ));
}

#[test]
fn malformed_first_messages_fail_cleanly() {
    let identity = secret(IDENTITY).public_key();
    let good = reference().first_message();
    let mut cases: Vec<Vec<u8>> = vec![
        vec![],
        good[..65].to_vec(),
        good[..80].to_vec(),
        [good.clone(), vec![0]].concat(),
        vec![0; 81],
        vec![0xff; 81],
    ];
    // Not a point on the curve.
    let mut off_curve = good.clone();
    off_curve[64] ^= 1;
    cases.push(off_curve);
    // A compressed point where an uncompressed one belongs.
    let mut compressed = good.clone();
    compressed[0] = 2;
    cases.push(compressed);
    for i in [0, 1, 40, 66, 80] {
        let mut flipped = good.clone();
        flipped[i] ^= 0x40;
        cases.push(flipped);
    }
    for (i, message) in cases.iter().enumerate() {
        assert!(
            matches!(
                respond(&identity, &PSK, message, fixed(RESPONDER_EPHEMERAL)),
                Err(HybridError::HandshakeFailed(_))
            ),
            "case {i}"
        );
    }
}

#[test]
fn out_of_range_ephemeral_bytes_are_refused() {
    let identity = secret(IDENTITY).public_key();
    let message = reference().first_message();
    for bad in [[0u8; 32], [0xff; 32]] {
        assert!(matches!(
            respond(&identity, &PSK, &message, Zeroizing::new(bad)),
            Err(HybridError::BadRandomness(_))
        ));
    }
}
