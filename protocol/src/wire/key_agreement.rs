//! The COSE_Key the PIN/UV auth protocols exchange (CTAP 2.1 §6.5.6 getPublicKey, §6.5.5.2):
//! a P-256 point, sent by the authenticator in getKeyAgreement's answer and by the platform
//! as clientPIN's keyAgreement and hmac-secret's keyAgreement. Whether the point is on the
//! curve is the crypto's to check (`ctap2::pin_protocol::PlatformKey`), not the format's.

use ciborium::Value;

use crate::cbor;
use crate::cose::{ALG, CRV, CRV_P256, KTY, KTY_EC2, X, Y};
use crate::status::StatusCode;

/// ECDH-ES + HKDF-256: the algorithm CTAP names for the key agreement key of both protocols.
const ALG_ECDH_ES_HKDF_256: i64 = -25;

/// A key agreement public key: the x and y coordinates of a P-256 point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyAgreementPublicKey {
    pub x: [u8; 32],
    pub y: [u8; 32],
}

impl KeyAgreementPublicKey {
    /// Reads a COSE_Key: a map with kty 2 (EC2), crv 1 (P-256), 32-byte x and y. The alg label
    /// is not checked (platforms send -25, some older ones other values), only its type. A
    /// field of the wrong type is CTAP2_ERR_CBOR_UNEXPECTED_TYPE; a key that is not an EC2
    /// P-256 key is CTAP1_ERR_INVALID_PARAMETER.
    pub fn from_cbor(value: Value) -> Result<Self, StatusCode> {
        let Value::Map(entries) = value else {
            return Err(StatusCode::CborUnexpectedType);
        };
        let mut kty = None;
        let mut crv = None;
        let mut x = None;
        let mut y = None;
        for (label, value) in entries {
            let Value::Integer(label) = label else {
                return Err(StatusCode::CborUnexpectedType);
            };
            // A label beyond i64 is none of COSE's: ignored, as any unknown label.
            match i64::try_from(label) {
                Ok(KTY) => kty = Some(cbor::into_int(value)?),
                Ok(ALG) => {
                    cbor::into_int(value)?;
                }
                Ok(CRV) => crv = Some(cbor::into_int(value)?),
                Ok(X) => x = Some(cbor::into_bytes(value)?),
                Ok(Y) => y = Some(cbor::into_bytes(value)?),
                _ => {}
            }
        }
        let (Some(x), Some(y)) = (x, y) else {
            return Err(StatusCode::InvalidParameter);
        };
        if kty != Some(KTY_EC2.into()) || crv != Some(CRV_P256.into()) {
            return Err(StatusCode::InvalidParameter);
        }
        Ok(KeyAgreementPublicKey {
            x: x.try_into().map_err(|_| StatusCode::InvalidParameter)?,
            y: y.try_into().map_err(|_| StatusCode::InvalidParameter)?,
        })
    }

    /// The COSE_Key as CTAP 2.1 §6.5.6 getPublicKey writes it: kty, alg -25, crv, x, y.
    pub fn to_cbor(&self) -> Value {
        let int = |i: i64| Value::Integer(i.into());
        Value::Map(vec![
            (int(KTY), int(KTY_EC2)),
            (int(ALG), int(ALG_ECDH_ES_HKDF_256)),
            (int(CRV), int(CRV_P256)),
            (int(X), Value::Bytes(self.x.to_vec())),
            (int(Y), Value::Bytes(self.y.to_vec())),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> KeyAgreementPublicKey {
        KeyAgreementPublicKey {
            x: [1; 32],
            y: [2; 32],
        }
    }

    fn with(label: i64, value: Value) -> Value {
        let Value::Map(mut entries) = key().to_cbor() else {
            unreachable!("to_cbor writes a map")
        };
        entries.retain(|(k, _)| *k != Value::Integer(label.into()));
        entries.push((Value::Integer(label.into()), value));
        Value::Map(entries)
    }

    #[test]
    fn a_key_round_trips_through_its_cose_form() {
        assert_eq!(KeyAgreementPublicKey::from_cbor(key().to_cbor()), Ok(key()));
        // Another alg is accepted: only its type is checked.
        let other_alg = with(3, Value::Integer((-7).into()));
        assert_eq!(KeyAgreementPublicKey::from_cbor(other_alg), Ok(key()));
    }

    #[test]
    fn malformed_keys_keep_their_statuses() {
        let int = |i: i64| Value::Integer(i.into());
        for (value, status) in [
            (with(1, int(1)), StatusCode::InvalidParameter),
            (with(-1, int(2)), StatusCode::InvalidParameter),
            (
                with(-2, Value::Bytes(vec![1; 31])),
                StatusCode::InvalidParameter,
            ),
            (
                with(-2, Value::Text("x".into())),
                StatusCode::CborUnexpectedType,
            ),
            (
                with(3, Value::Text("alg".into())),
                StatusCode::CborUnexpectedType,
            ),
            (Value::Bytes(vec![]), StatusCode::CborUnexpectedType),
            (
                Value::Map(vec![(Value::Text("kty".into()), int(2))]),
                StatusCode::CborUnexpectedType,
            ),
            (Value::Map(vec![]), StatusCode::InvalidParameter),
        ] {
            assert_eq!(KeyAgreementPublicKey::from_cbor(value), Err(status));
        }
    }
}
