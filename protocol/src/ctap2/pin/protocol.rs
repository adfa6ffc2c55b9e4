//! The PIN/UV auth protocols one and two (CTAP 2.1 §6.5.6, §6.5.7): the authenticator's ECDH
//! key agreement key, the shared secret derived from a platform key, and the encrypt /
//! decrypt / authenticate / verify primitives over it.
//!
//! Both protocols agree on P-256 ECDH. One hashes the x-coordinate into a single 32-byte key
//! used for AES-256-CBC with a zero IV and for HMAC-SHA-256 truncated to 16 bytes; two derives
//! separate HMAC and AES keys with HKDF, draws a random IV per message and keeps the full
//! 32-byte HMAC.

use std::fmt;

use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use ciborium::Value;
use hmac::{Hmac, KeyInit, Mac};
use p256::elliptic_curve::sec1::ToSec1Point;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::status::StatusCode;
use crate::wire::KeyAgreementPublicKey;

type Aes256CbcEnc = cbc::Encryptor<aes::Aes256>;
type Aes256CbcDec = cbc::Decryptor<aes::Aes256>;
type HmacSha256 = Hmac<Sha256>;

const BLOCK: usize = 16;
/// Length of a pinUvAuthToken: 32 bytes suits both protocols.
pub const TOKEN_LEN: usize = 32;

/// The PIN/UV auth protocol a request names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PinProtocol {
    One,
    Two,
}

impl PinProtocol {
    /// In getInfo's order of preference.
    pub const SUPPORTED: [PinProtocol; 2] = [PinProtocol::Two, PinProtocol::One];

    pub fn number(self) -> u8 {
        match self {
            PinProtocol::One => 1,
            PinProtocol::Two => 2,
        }
    }

    /// A pinUvAuthProtocol parameter: one we do not know is CTAP1_ERR_INVALID_PARAMETER.
    pub fn from_param(value: i128) -> Result<Self, StatusCode> {
        match value {
            1 => Ok(PinProtocol::One),
            2 => Ok(PinProtocol::Two),
            _ => Err(StatusCode::InvalidParameter),
        }
    }

    /// An index for per-protocol state.
    pub(crate) fn index(self) -> usize {
        match self {
            PinProtocol::One => 0,
            PinProtocol::Two => 1,
        }
    }

    /// authenticate(key, message): the MAC a platform sends as pinUvAuthParam, saltAuth, ...
    /// `key` is a pinUvAuthToken or a shared secret (of which protocol two uses the HMAC half).
    pub fn authenticate(self, key: &[u8], message: &[u8]) -> Vec<u8> {
        let key = match self {
            PinProtocol::Two if key.len() == SharedSecret::TWO_LEN => &key[..32],
            _ => key,
        };
        let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
        mac.update(message);
        let tag = mac.finalize().into_bytes();
        match self {
            PinProtocol::One => tag[..16].to_vec(),
            PinProtocol::Two => tag.to_vec(),
        }
    }

    /// verify(key, message, signature), in constant time. A signature of the wrong length for
    /// the protocol never verifies.
    pub fn verify(self, key: &[u8], message: &[u8], signature: &[u8]) -> bool {
        let expected = self.authenticate(key, message);
        expected.len() == signature.len() && bool::from(expected.ct_eq(signature))
    }
}

/// The shared secret of one key agreement: protocol one's 32-byte key, or protocol two's
/// HMAC key || AES key. Zeroized on drop, never printed.
pub struct SharedSecret {
    protocol: PinProtocol,
    bytes: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SharedSecret({:?}, <redacted>)", self.protocol)
    }
}

impl SharedSecret {
    const TWO_LEN: usize = 64;

    /// Derives the shared secret from the ECDH x-coordinate `z` (§6.5.6 / §6.5.7 kdf).
    fn derive(protocol: PinProtocol, z: &[u8]) -> Self {
        let bytes = match protocol {
            PinProtocol::One => Zeroizing::new(Sha256::digest(z).to_vec()),
            PinProtocol::Two => {
                let hkdf = hkdf::Hkdf::<Sha256>::new(Some(&[0u8; 32]), z);
                let mut out = Zeroizing::new(vec![0u8; Self::TWO_LEN]);
                let (hmac_key, aes_key) = out.split_at_mut(32);
                hkdf.expand(b"CTAP2 HMAC key", hmac_key)
                    .expect("32 bytes is a valid HKDF-SHA-256 length");
                hkdf.expand(b"CTAP2 AES key", aes_key)
                    .expect("32 bytes is a valid HKDF-SHA-256 length");
                out
            }
        };
        SharedSecret { protocol, bytes }
    }

    pub fn protocol(&self) -> PinProtocol {
        self.protocol
    }

    fn aes_key(&self) -> &[u8] {
        match self.protocol {
            PinProtocol::One => &self.bytes,
            PinProtocol::Two => &self.bytes[32..],
        }
    }

    /// encrypt(sharedSecret, plaintext); `plaintext` is a whole number of AES blocks (PINs are
    /// padded to 64 bytes, hashes and tokens are 16 or 32). Protocol two draws its IV from
    /// `fill_random`.
    pub fn encrypt(&self, plaintext: &[u8], fill_random: impl FnOnce(&mut [u8])) -> Vec<u8> {
        debug_assert_eq!(plaintext.len() % BLOCK, 0, "whole AES blocks only");
        let mut iv = [0u8; BLOCK];
        if self.protocol == PinProtocol::Two {
            fill_random(&mut iv);
        }
        let mut encryptor =
            Aes256CbcEnc::new_from_slices(self.aes_key(), &iv).expect("32-byte key, 16-byte IV");
        let mut out = Vec::with_capacity(BLOCK + plaintext.len());
        if self.protocol == PinProtocol::Two {
            out.extend_from_slice(&iv);
        }
        for chunk in plaintext.chunks_exact(BLOCK) {
            let mut block = aes::Block::try_from(chunk).expect("a 16-byte chunk");
            encryptor.encrypt_block(&mut block);
            out.extend_from_slice(&block);
        }
        out
    }

    /// decrypt(sharedSecret, ciphertext); `None` when the length is not that of a ciphertext
    /// of this protocol.
    pub fn decrypt(&self, ciphertext: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        let (iv, body) = match self.protocol {
            PinProtocol::One => ([0u8; BLOCK], ciphertext),
            PinProtocol::Two => {
                if ciphertext.len() < BLOCK {
                    return None;
                }
                let (iv, body) = ciphertext.split_at(BLOCK);
                (iv.try_into().ok()?, body)
            }
        };
        if body.len() % BLOCK != 0 {
            return None;
        }
        let mut decryptor =
            Aes256CbcDec::new_from_slices(self.aes_key(), &iv).expect("32-byte key, 16-byte IV");
        let mut out = Zeroizing::new(Vec::with_capacity(body.len()));
        for chunk in body.chunks_exact(BLOCK) {
            let mut block = aes::Block::try_from(chunk).expect("a 16-byte chunk");
            decryptor.decrypt_block(&mut block);
            out.extend_from_slice(&block);
            block.fill(0);
        }
        Some(out)
    }

    /// verify(sharedSecret, message, signature), in constant time.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        self.protocol.verify(&self.bytes, message, signature)
    }

    /// authenticate(sharedSecret, message): what the platform sends as pinUvAuthParam of
    /// setPIN/changePIN, or as saltAuth.
    pub fn authenticate(&self, message: &[u8]) -> Vec<u8> {
        self.protocol.authenticate(&self.bytes, message)
    }
}

/// The authenticator's key agreement key of one protocol: regenerated at power-up, after a
/// wrong PIN and at reset (§6.5.5.2 "initialize" / "regenerate").
pub struct KeyAgreementKey {
    /// A `SecretKey` rather than a bare scalar: it is wiped when dropped.
    secret: p256::SecretKey,
}

impl fmt::Debug for KeyAgreementKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyAgreementKey(<redacted>)")
    }
}

impl KeyAgreementKey {
    /// Draws a new key; a draw outside [1, n-1] (probability ~2^-128) is drawn again.
    pub fn generate(mut fill_random: impl FnMut(&mut [u8])) -> Self {
        loop {
            let mut bytes = Zeroizing::new([0u8; 32]);
            fill_random(bytes.as_mut_slice());
            if let Ok(secret) = p256::SecretKey::from_slice(bytes.as_slice()) {
                return KeyAgreementKey { secret };
            }
        }
    }

    /// getPublicKey(): the key that getKeyAgreement returns.
    pub fn public_key(&self) -> KeyAgreementPublicKey {
        let point = self.secret.public_key().to_sec1_point(false);
        let bytes = point.as_bytes();
        let mut key = KeyAgreementPublicKey {
            x: [0; 32],
            y: [0; 32],
        };
        key.x.copy_from_slice(&bytes[1..33]);
        key.y.copy_from_slice(&bytes[33..65]);
        key
    }

    /// getPublicKey() as its COSE_Key.
    pub fn public_cose_key(&self) -> Value {
        self.public_key().to_cbor()
    }

    /// decapsulate(peerCoseKey): the shared secret with a platform's key agreement key (checked
    /// when it was parsed).
    pub fn decapsulate(&self, protocol: PinProtocol, platform_key: &PlatformKey) -> SharedSecret {
        let shared =
            p256::ecdh::diffie_hellman(self.secret.to_nonzero_scalar(), platform_key.0.as_affine());
        SharedSecret::derive(protocol, shared.raw_secret_bytes().as_slice())
    }
}

/// A platform's key agreement key, parsed and checked to be a point on P-256.
#[derive(Debug, Clone)]
pub struct PlatformKey(p256::PublicKey);

impl PlatformKey {
    /// Checks that a key agreement key is a point on P-256: one that is not is
    /// CTAP1_ERR_INVALID_PARAMETER (§6.5.6 decapsulate).
    pub fn from_wire(key: &KeyAgreementPublicKey) -> Result<Self, StatusCode> {
        let point = [&[0x04][..], &key.x, &key.y].concat();
        p256::PublicKey::from_sec1_bytes(&point)
            .map(PlatformKey)
            .map_err(|_| StatusCode::InvalidParameter)
    }

    /// Reads a COSE_Key ([`KeyAgreementPublicKey::from_cbor`]) and checks the point.
    pub fn parse(value: Value) -> Result<Self, StatusCode> {
        Self::from_wire(&KeyAgreementPublicKey::from_cbor(value)?)
    }
}

/// The platform side of a key agreement, for tests: what python-fido2 or libfido2 do.
#[cfg(test)]
pub(crate) mod platform {
    use super::*;

    /// Makes a platform key pair from `seed`, agrees with `authenticator_key` (a COSE_Key from
    /// getKeyAgreement) and returns (platform COSE_Key, shared secret).
    pub fn agree(
        protocol: PinProtocol,
        authenticator_key: &Value,
        seed: u8,
    ) -> (Value, SharedSecret) {
        let platform = KeyAgreementKey::generate(|b| b.fill(seed));
        let peer = PlatformKey::parse(authenticator_key.clone()).expect("a valid COSE key");
        let secret = platform.decapsulate(protocol, &peer);
        (platform.public_cose_key(), secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> (KeyAgreementKey, KeyAgreementKey) {
        (
            KeyAgreementKey::generate(|b| b.fill(1)),
            KeyAgreementKey::generate(|b| b.fill(2)),
        )
    }

    fn agree(protocol: PinProtocol) -> (SharedSecret, SharedSecret) {
        let (a, b) = keys();
        let a_pub = PlatformKey::parse(a.public_cose_key()).unwrap();
        let b_pub = PlatformKey::parse(b.public_cose_key()).unwrap();
        (
            a.decapsulate(protocol, &b_pub),
            b.decapsulate(protocol, &a_pub),
        )
    }

    #[test]
    fn both_sides_derive_the_same_secret_and_the_protocols_differ() {
        for protocol in PinProtocol::SUPPORTED {
            let (a, b) = agree(protocol);
            assert_eq!(*a.bytes, *b.bytes);
        }
        let (one, _) = agree(PinProtocol::One);
        let (two, _) = agree(PinProtocol::Two);
        assert_eq!(one.bytes.len(), 32);
        assert_eq!(two.bytes.len(), 64);
        assert_ne!(&one.bytes[..], &two.bytes[..32]);
    }

    #[test]
    fn protocol_one_kdf_is_sha256_of_the_x_coordinate() {
        let (a, b) = keys();
        let b_pub = PlatformKey::parse(b.public_cose_key()).unwrap();
        let z = p256::ecdh::diffie_hellman(a.secret.to_nonzero_scalar(), b_pub.0.as_affine());
        let secret = a.decapsulate(PinProtocol::One, &b_pub);
        assert_eq!(&secret.bytes[..], &Sha256::digest(z.raw_secret_bytes())[..]);
    }

    #[test]
    fn protocol_one_is_zero_iv_cbc_and_a_16_byte_mac() {
        let (a, b) = agree(PinProtocol::One);
        let plaintext = [7u8; 64];
        let ct = a.encrypt(&plaintext, |_| panic!("protocol one draws no IV"));
        assert_eq!(ct.len(), 64);
        assert_eq!(b.decrypt(&ct).unwrap().as_slice(), &plaintext);
        assert_eq!(
            a.encrypt(&plaintext, |_| {}),
            ct,
            "deterministic: IV is zero"
        );
        assert_eq!(b.decrypt(&ct[..15]), None);

        let mac = a.authenticate(b"message");
        assert_eq!(mac.len(), 16);
        assert!(b.verify(b"message", &mac));
        assert!(!b.verify(b"messagf", &mac));
        let mut full = mac.clone();
        full.extend([0; 16]);
        assert!(
            !b.verify(b"message", &full),
            "a 32-byte MAC is not protocol one's"
        );
    }

    #[test]
    fn protocol_two_prefixes_a_random_iv_and_keeps_the_full_mac() {
        let (a, b) = agree(PinProtocol::Two);
        let plaintext = [9u8; 32];
        let ct = a.encrypt(&plaintext, |iv| iv.fill(0x42));
        assert_eq!(ct.len(), 48);
        assert_eq!(&ct[..16], &[0x42; 16]);
        assert_eq!(b.decrypt(&ct).unwrap().as_slice(), &plaintext);
        assert_ne!(a.encrypt(&plaintext, |iv| iv.fill(0x43))[16..], ct[16..]);
        assert_eq!(b.decrypt(&ct[..8]), None);
        assert_eq!(b.decrypt(&ct[..40]), None);

        let mac = a.authenticate(b"message");
        assert_eq!(mac.len(), 32);
        assert!(b.verify(b"message", &mac));
        assert!(
            !b.verify(b"message", &mac[..16]),
            "truncated MACs do not verify"
        );
        // The MAC key is the HMAC half only (HKDF info "CTAP2 HMAC key").
        assert_eq!(
            mac,
            PinProtocol::Two.authenticate(&a.bytes[..32], b"message")
        );
    }

    #[test]
    fn token_macs_follow_the_protocol() {
        let token = [5u8; TOKEN_LEN];
        let one = PinProtocol::One.authenticate(&token, b"cdh");
        let two = PinProtocol::Two.authenticate(&token, b"cdh");
        assert_eq!(one.len(), 16);
        assert_eq!(&two[..16], &one[..], "protocol one truncates the same HMAC");
        assert!(PinProtocol::Two.verify(&token, b"cdh", &two));
        assert!(!PinProtocol::One.verify(&token, b"cdh", &two));
    }

    #[test]
    fn platform_keys_are_checked() {
        let good = KeyAgreementKey::generate(|b| b.fill(3)).public_cose_key();
        assert!(PlatformKey::parse(good.clone()).is_ok());
        let with = |label: i64, value: Value| {
            let Value::Map(mut entries) = good.clone() else {
                unreachable!()
            };
            entries.retain(|(k, _)| *k != Value::Integer(label.into()));
            entries.push((Value::Integer(label.into()), value));
            Value::Map(entries)
        };
        let int = |i: i64| Value::Integer(i.into());
        assert_eq!(
            PlatformKey::parse(with(1, int(1))).err(),
            Some(StatusCode::InvalidParameter)
        );
        assert_eq!(
            PlatformKey::parse(with(-1, int(2))).err(),
            Some(StatusCode::InvalidParameter)
        );
        assert_eq!(
            PlatformKey::parse(with(-3, Value::Bytes(vec![1; 32]))).err(),
            Some(StatusCode::InvalidParameter),
            "not on the curve"
        );
        assert_eq!(
            PlatformKey::parse(with(-2, Value::Bytes(vec![1; 31]))).err(),
            Some(StatusCode::InvalidParameter)
        );
        assert_eq!(
            PlatformKey::parse(with(-2, Value::Text("x".into()))).err(),
            Some(StatusCode::CborUnexpectedType)
        );
        assert_eq!(
            PlatformKey::parse(Value::Bytes(vec![])).err(),
            Some(StatusCode::CborUnexpectedType)
        );
    }
}
