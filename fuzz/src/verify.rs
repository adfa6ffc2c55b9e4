//! Checking responses the way a relying party does: public keys from COSE or U2F bytes,
//! signatures verified with them. Written against the specs, not against protocol's code.

use ciborium::Value;
use p256::ecdsa::signature::Verifier as _;

/// A credential's public key, as a relying party stores it.
#[derive(Clone, Debug)]
pub enum PublicKey {
    P256(p256::ecdsa::VerifyingKey),
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl PublicKey {
    /// A COSE_Key (RFC 9053): EC2/P-256/ES256 or OKP/Ed25519/EdDSA.
    pub fn from_cose(value: &Value) -> Option<Self> {
        let Value::Map(entries) = value else {
            return None;
        };
        let get = |key: i64| {
            entries
                .iter()
                .find(|(k, _)| *k == Value::Integer(key.into()))
                .map(|(_, v)| v)
        };
        let int = |key: i64| get(key).and_then(|v| v.as_integer()).map(i128::from);
        let bytes = |key: i64| get(key).and_then(|v| v.as_bytes());
        match (int(1)?, int(3)?, int(-1)?) {
            // kty EC2, alg ES256, crv P-256
            (2, -7, 1) => {
                let (x, y) = (bytes(-2)?, bytes(-3)?);
                if x.len() != 32 || y.len() != 32 {
                    return None;
                }
                let point = [&[0x04], x.as_slice(), y.as_slice()].concat();
                Self::from_sec1(&point)
            }
            // kty OKP, alg EdDSA, crv Ed25519
            (1, -8, 6) => {
                let x: [u8; 32] = bytes(-2)?.as_slice().try_into().ok()?;
                ed25519_dalek::VerifyingKey::from_bytes(&x)
                    .ok()
                    .map(PublicKey::Ed25519)
            }
            _ => None,
        }
    }

    /// An uncompressed P-256 point, as U2F registration returns it.
    pub fn from_sec1(point: &[u8]) -> Option<Self> {
        p256::ecdsa::VerifyingKey::from_sec1_bytes(point)
            .ok()
            .map(PublicKey::P256)
    }

    /// ES256: an ASN.1 DER signature over SHA-256(message); EdDSA: 64 bytes over message.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            PublicKey::P256(key) => p256::ecdsa::DerSignature::try_from(signature)
                .is_ok_and(|sig| key.verify(message, &sig).is_ok()),
            PublicKey::Ed25519(key) => ed25519_dalek::Signature::from_slice(signature)
                .is_ok_and(|sig| key.verify_strict(message, &sig).is_ok()),
        }
    }

    pub fn cose_alg(&self) -> i64 {
        match self {
            PublicKey::P256(_) => -7,
            PublicKey::Ed25519(_) => -8,
        }
    }
}

/// Decodes exactly one CBOR item from the start of `bytes`: (item, bytes consumed).
pub fn cbor_prefix(bytes: &[u8]) -> Option<(Value, usize)> {
    let mut reader = bytes;
    let value: Value = ciborium::from_reader(&mut reader).ok()?;
    Some((value, bytes.len() - reader.len()))
}

/// The value under integer key `key` of a CBOR map.
pub fn int_field(map: &Value, key: i64) -> Option<&Value> {
    map.as_map()?
        .iter()
        .find(|(k, _)| *k == Value::Integer(key.into()))
        .map(|(_, v)| v)
}

/// The value under text key `key` of a CBOR map.
pub fn text_field<'a>(map: &'a Value, key: &str) -> Option<&'a Value> {
    map.as_map()?
        .iter()
        .find(|(k, _)| k.as_text() == Some(key))
        .map(|(_, v)| v)
}

/// CTAP2 canonical CBOR (CTAP 2.1 §8): definite lengths, shortest integer forms, map keys
/// sorted by major type, then length, then bytes. `bytes` must be exactly one item.
pub fn is_canonical(bytes: &[u8]) -> bool {
    let mut reader = Canonical(bytes);
    reader.item(0).is_some() && reader.0.is_empty()
}

struct Canonical<'a>(&'a [u8]);

impl Canonical<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }

    /// Reads one head: (major type, argument); rejects indefinite and over-long encodings.
    fn head(&mut self) -> Option<(u8, u64)> {
        let first = *self.take(1)?.first()?;
        let (major, info) = (first >> 5, first & 0x1f);
        let (arg, minimum) = match info {
            0..=23 => return Some((major, u64::from(info))),
            24 => (u64::from(self.take(1)?[0]), 24),
            25 => (
                u64::from(u16::from_be_bytes(self.take(2)?.try_into().ok()?)),
                0x100,
            ),
            26 => (
                u64::from(u32::from_be_bytes(self.take(4)?.try_into().ok()?)),
                0x1_0000,
            ),
            27 => (
                u64::from_be_bytes(self.take(8)?.try_into().ok()?),
                0x1_0000_0000,
            ),
            _ => return None,
        };
        // Floats (major 7 with 25..27) have no shortest-form rule here; CTAP never sends them.
        if major == 7 && info != 24 {
            return None;
        }
        (arg >= minimum).then_some((major, arg))
    }

    fn item(&mut self, depth: usize) -> Option<()> {
        if depth > 16 {
            return None;
        }
        let (major, arg) = self.head()?;
        let len = usize::try_from(arg).ok()?;
        match major {
            0 | 1 | 7 => Some(()),
            2 | 3 => self.take(len).map(|_| ()),
            4 => (0..len).try_for_each(|_| self.item(depth + 1)),
            5 => {
                let mut previous: Option<Vec<u8>> = None;
                for _ in 0..len {
                    let start = self.0;
                    self.item(depth + 1)?;
                    let key = start[..start.len() - self.0.len()].to_vec();
                    if let Some(prev) = &previous {
                        let order = |k: &[u8]| (k[0] >> 5, k.len(), k.to_vec());
                        if order(prev) >= order(&key) {
                            return None;
                        }
                    }
                    previous = Some(key);
                    self.item(depth + 1)?;
                }
                Some(())
            }
            6 => self.item(depth + 1),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_cbor_is_told_from_the_rest() {
        assert!(is_canonical(&[0xa2, 0x01, 0x02, 0x03, 0x04])); // {1: 2, 3: 4}
        assert!(!is_canonical(&[0xa2, 0x03, 0x04, 0x01, 0x02])); // unsorted
        assert!(!is_canonical(&[0x18, 0x05])); // 5 in two bytes
        assert!(!is_canonical(&[0x9f, 0xff])); // indefinite array
        assert!(!is_canonical(&[0x01, 0x01])); // trailing byte
                                               // {1: 0, "a": 0}: integers sort before text (major type first).
        assert!(is_canonical(&[0xa2, 0x01, 0x00, 0x61, b'a', 0x00]));
        // {"b": 0, "aa": 0}: shorter keys first.
        assert!(is_canonical(&[
            0xa2, 0x61, b'b', 0x00, 0x62, b'a', b'a', 0x00
        ]));
    }
}
