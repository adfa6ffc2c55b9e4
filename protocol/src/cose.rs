//! COSE algorithm identifiers and COSE_Key encoding (RFC 9052/9053) for our public keys.

use ciborium::Value;

use crate::cbor;

/// ECDSA w/ SHA-256.
pub const ALG_ES256: i64 = -7;
/// EdDSA (Ed25519 here).
pub const ALG_EDDSA: i64 = -8;

/// The signature algorithms we create credentials for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// ECDSA over P-256 with SHA-256 (COSE -7).
    Es256,
    /// Ed25519 (COSE -8).
    EdDsa,
}

impl Algorithm {
    pub fn cose_id(self) -> i64 {
        match self {
            Algorithm::Es256 => ALG_ES256,
            Algorithm::EdDsa => ALG_EDDSA,
        }
    }

    pub fn from_cose_id(id: i64) -> Option<Self> {
        match id {
            ALG_ES256 => Some(Algorithm::Es256),
            ALG_EDDSA => Some(Algorithm::EdDsa),
            _ => None,
        }
    }

    /// One byte for storage formats; stable across versions.
    pub fn to_byte(self) -> u8 {
        match self {
            Algorithm::Es256 => 1,
            Algorithm::EdDsa => 2,
        }
    }

    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(Algorithm::Es256),
            2 => Some(Algorithm::EdDsa),
            _ => None,
        }
    }
}

/// A public key, as the COSE_Key bytes that go into attested credential data, plus the raw form
/// U2F needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub algorithm: Algorithm,
    /// ES256: the 65-byte SEC1 uncompressed point. EdDSA: the 32-byte key.
    pub raw: Vec<u8>,
}

impl PublicKey {
    /// The canonical CBOR COSE_Key encoding.
    pub fn to_cose(&self) -> Vec<u8> {
        encode_public_key(self)
    }
}

/// COSE_Key labels (RFC 9052 §7.1, RFC 9053 §7.1.1) and the values fido2d uses, shared with
/// the PIN protocols' key agreement key (`wire::key_agreement`).
pub(crate) const KTY: i64 = 1;
pub(crate) const ALG: i64 = 3;
pub(crate) const CRV: i64 = -1;
pub(crate) const X: i64 = -2;
pub(crate) const Y: i64 = -3;
const KTY_OKP: i64 = 1;
pub(crate) const KTY_EC2: i64 = 2;
pub(crate) const CRV_P256: i64 = 1;
const CRV_ED25519: i64 = 6;

/// Encodes a public key as a canonical COSE_Key map.
pub fn encode_public_key(key: &PublicKey) -> Vec<u8> {
    let int = |i: i64| Value::Integer(i.into());
    let entries = match key.algorithm {
        Algorithm::Es256 => {
            // SEC1 uncompressed: 0x04 | x (32) | y (32).
            let (x, y) = key.raw[1..].split_at(32);
            vec![
                (int(KTY), int(KTY_EC2)),
                (int(ALG), int(ALG_ES256)),
                (int(CRV), int(CRV_P256)),
                (int(X), Value::Bytes(x.to_vec())),
                (int(Y), Value::Bytes(y.to_vec())),
            ]
        }
        Algorithm::EdDsa => vec![
            (int(KTY), int(KTY_OKP)),
            (int(ALG), int(ALG_EDDSA)),
            (int(CRV), int(CRV_ED25519)),
            (int(X), Value::Bytes(key.raw.clone())),
        ],
    };
    cbor::encode(&Value::Map(entries))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn es256_key_has_rfc9053_labels_in_canonical_order() {
        let mut raw = vec![4u8];
        raw.extend([0x11; 32]);
        raw.extend([0x22; 32]);
        let bytes = encode_public_key(&PublicKey {
            algorithm: Algorithm::Es256,
            raw,
        });
        // a5 = map(5); 01 02 (kty EC2); 03 26 (alg -7); 20 01 (crv P-256); 21 58 20 x; 22 58 20 y
        assert_eq!(&bytes[..7], &[0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01]);
        assert_eq!(&bytes[7..10], &[0x21, 0x58, 0x20]);
        assert_eq!(&bytes[10..42], &[0x11; 32]);
        assert_eq!(&bytes[42..45], &[0x22, 0x58, 0x20]);
        assert_eq!(bytes.len(), 77);
    }

    #[test]
    fn ed25519_key_is_okp_with_curve_6() {
        let bytes = encode_public_key(&PublicKey {
            algorithm: Algorithm::EdDsa,
            raw: vec![7; 32],
        });
        // a4; 01 01 (kty OKP); 03 27 (alg -8); 20 06 (crv Ed25519); 21 58 20 x
        assert_eq!(
            &bytes[..10],
            &[0xa4, 0x01, 0x01, 0x03, 0x27, 0x20, 0x06, 0x21, 0x58, 0x20]
        );
        assert_eq!(bytes.len(), 42);
    }
}
