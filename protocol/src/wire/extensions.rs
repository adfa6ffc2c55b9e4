//! Authenticator extension inputs as makeCredential and getAssertion carry them (CTAP 2.1
//! §12, hmac-secret-mc and thirdPartyPayment from CTAP 2.2, pinComplexityPolicy from CTAP
//! 2.3). Extensions we do not know are ignored; a known one of the wrong type is
//! CTAP2_ERR_CBOR_UNEXPECTED_TYPE. The outputs travel inside authenticatorData.

use ciborium::Value;

use crate::cbor::{self, into_text_map, RequestMap};
use crate::status::StatusCode;

pub const CRED_PROTECT: &str = "credProtect";
pub const HMAC_SECRET: &str = "hmac-secret";
pub const HMAC_SECRET_MC: &str = "hmac-secret-mc";
pub const CRED_BLOB: &str = "credBlob";
pub const LARGE_BLOB_KEY: &str = "largeBlobKey";
pub const MIN_PIN_LENGTH: &str = "minPinLength";
pub const THIRD_PARTY_PAYMENT: &str = "thirdPartyPayment";
pub const PIN_COMPLEXITY_POLICY: &str = "pinComplexityPolicy";

/// The hmac-secret input map (§12.5), also hmac-secret-mc's: the platform's key agreement key
/// (a COSE_Key, read when the shared secret is computed), the encrypted salts and their MAC,
/// and the PIN/UV auth protocol (one when absent: CTAP 2.0 platforms do not send it).
#[derive(Debug, Clone, PartialEq)]
pub struct HmacSecretInput {
    pub key_agreement: Value,
    pub salt_enc: Vec<u8>,
    pub salt_auth: Vec<u8>,
    /// 1 or 2: any other number is CTAP1_ERR_INVALID_PARAMETER when decoding.
    pub pin_uv_auth_protocol: u8,
}

const KEY_AGREEMENT: i128 = 0x01;
const SALT_ENC: i128 = 0x02;
const SALT_AUTH: i128 = 0x03;
const PIN_UV_AUTH_PROTOCOL: i128 = 0x04;

impl HmacSecretInput {
    pub fn decode(value: Value) -> Result<Self, StatusCode> {
        let mut map = RequestMap::from_value(value)?;
        let key_agreement = map.required(KEY_AGREEMENT)?;
        let salt_enc = cbor::into_bytes(map.required(SALT_ENC)?)?;
        let salt_auth = cbor::into_bytes(map.required(SALT_AUTH)?)?;
        let pin_uv_auth_protocol = match map.take(PIN_UV_AUTH_PROTOCOL).map(cbor::into_int) {
            None => 1,
            Some(Ok(1)) => 1,
            Some(Ok(2)) => 2,
            Some(Ok(_)) => return Err(StatusCode::InvalidParameter),
            Some(Err(status)) => return Err(status),
        };
        Ok(HmacSecretInput {
            key_agreement,
            salt_enc,
            salt_auth,
            pin_uv_auth_protocol,
        })
    }

    pub fn to_cbor(&self) -> Value {
        cbor::int_map(vec![
            (KEY_AGREEMENT as i64, self.key_agreement.clone()),
            (SALT_ENC as i64, Value::Bytes(self.salt_enc.clone())),
            (SALT_AUTH as i64, Value::Bytes(self.salt_auth.clone())),
            (
                PIN_UV_AUTH_PROTOCOL as i64,
                Value::Integer(self.pin_uv_auth_protocol.into()),
            ),
        ])
    }
}

/// makeCredential's extension inputs. A boolean input sent as `false` reads as not sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MakeCredentialExtensionsInput {
    /// credProtect level, 1 to 3 (§12.1); any other is CTAP1_ERR_INVALID_PARAMETER.
    pub cred_protect: Option<u8>,
    pub hmac_secret: bool,
    pub hmac_secret_mc: Option<HmacSecretInput>,
    pub cred_blob: Option<Vec<u8>>,
    pub large_blob_key: bool,
    pub min_pin_length: bool,
    pub third_party_payment: bool,
    pub pin_complexity_policy: bool,
}

impl MakeCredentialExtensionsInput {
    pub fn decode(value: Value) -> Result<Self, StatusCode> {
        let mut out = Self::default();
        for (name, value) in into_text_map(value)? {
            match name.as_str() {
                CRED_PROTECT => {
                    let level = cbor::into_int(value)?;
                    let level = u8::try_from(level)
                        .ok()
                        .filter(|level| (1..=3).contains(level))
                        .ok_or(StatusCode::InvalidParameter)?;
                    out.cred_protect = Some(level);
                }
                HMAC_SECRET => out.hmac_secret = cbor::into_bool(value)?,
                HMAC_SECRET_MC => out.hmac_secret_mc = Some(HmacSecretInput::decode(value)?),
                CRED_BLOB => out.cred_blob = Some(cbor::into_bytes(value)?),
                LARGE_BLOB_KEY => out.large_blob_key = large_blob_key_input(value)?,
                MIN_PIN_LENGTH => out.min_pin_length = cbor::into_bool(value)?,
                THIRD_PARTY_PAYMENT => out.third_party_payment = cbor::into_bool(value)?,
                PIN_COMPLEXITY_POLICY => out.pin_complexity_policy = cbor::into_bool(value)?,
                _ => {}
            }
        }
        Ok(out)
    }

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    pub fn to_cbor(&self) -> Value {
        let mut entries = Vec::new();
        if let Some(level) = self.cred_protect {
            entries.push((CRED_PROTECT, Value::Integer(level.into())));
        }
        push_flag(&mut entries, HMAC_SECRET, self.hmac_secret);
        if let Some(input) = &self.hmac_secret_mc {
            entries.push((HMAC_SECRET_MC, input.to_cbor()));
        }
        if let Some(blob) = &self.cred_blob {
            entries.push((CRED_BLOB, Value::Bytes(blob.clone())));
        }
        push_flag(&mut entries, LARGE_BLOB_KEY, self.large_blob_key);
        push_flag(&mut entries, MIN_PIN_LENGTH, self.min_pin_length);
        push_flag(&mut entries, THIRD_PARTY_PAYMENT, self.third_party_payment);
        push_flag(
            &mut entries,
            PIN_COMPLEXITY_POLICY,
            self.pin_complexity_policy,
        );
        cbor::text_map(entries)
    }
}

/// getAssertion's extension inputs. A boolean input sent as `false` reads as not sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GetAssertionExtensionsInput {
    pub hmac_secret: Option<HmacSecretInput>,
    pub cred_blob: bool,
    pub large_blob_key: bool,
    pub third_party_payment: bool,
}

impl GetAssertionExtensionsInput {
    pub fn decode(value: Value) -> Result<Self, StatusCode> {
        let mut out = Self::default();
        for (name, value) in into_text_map(value)? {
            match name.as_str() {
                HMAC_SECRET => out.hmac_secret = Some(HmacSecretInput::decode(value)?),
                CRED_BLOB => out.cred_blob = cbor::into_bool(value)?,
                LARGE_BLOB_KEY => out.large_blob_key = large_blob_key_input(value)?,
                THIRD_PARTY_PAYMENT => out.third_party_payment = cbor::into_bool(value)?,
                _ => {}
            }
        }
        Ok(out)
    }

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    pub fn to_cbor(&self) -> Value {
        let mut entries = Vec::new();
        if let Some(input) = &self.hmac_secret {
            entries.push((HMAC_SECRET, input.to_cbor()));
        }
        push_flag(&mut entries, CRED_BLOB, self.cred_blob);
        push_flag(&mut entries, LARGE_BLOB_KEY, self.large_blob_key);
        push_flag(&mut entries, THIRD_PARTY_PAYMENT, self.third_party_payment);
        cbor::text_map(entries)
    }
}

fn push_flag(entries: &mut Vec<(&'static str, Value)>, name: &'static str, on: bool) {
    if on {
        entries.push((name, Value::Bool(true)));
    }
}

/// largeBlobKey takes only `true` (§12.3: false is CTAP2_ERR_INVALID_OPTION).
fn large_blob_key_input(value: Value) -> Result<bool, StatusCode> {
    if cbor::into_bool(value)? {
        Ok(true)
    } else {
        Err(StatusCode::InvalidOption)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Value {
        Value::Text(s.into())
    }

    fn hmac_input() -> HmacSecretInput {
        HmacSecretInput {
            key_agreement: cbor::int_map(vec![(1, Value::Integer(2.into()))]),
            salt_enc: vec![1; 32],
            salt_auth: vec![2; 16],
            pin_uv_auth_protocol: 2,
        }
    }

    #[test]
    fn inputs_round_trip() {
        let mc = MakeCredentialExtensionsInput {
            cred_protect: Some(2),
            hmac_secret: true,
            hmac_secret_mc: Some(hmac_input()),
            cred_blob: Some(vec![7; 8]),
            large_blob_key: true,
            min_pin_length: true,
            third_party_payment: true,
            pin_complexity_policy: true,
        };
        assert_eq!(MakeCredentialExtensionsInput::decode(mc.to_cbor()), Ok(mc));
        let ga = GetAssertionExtensionsInput {
            hmac_secret: Some(hmac_input()),
            cred_blob: true,
            large_blob_key: true,
            third_party_payment: false,
        };
        assert_eq!(GetAssertionExtensionsInput::decode(ga.to_cbor()), Ok(ga));
    }

    #[test]
    fn unknown_extensions_are_ignored_known_ones_type_checked() {
        let ext = cbor::text_map(vec![
            ("future", Value::Null),
            (CRED_PROTECT, Value::Integer(3.into())),
            (CRED_BLOB, Value::Bytes(vec![1, 2])),
        ]);
        let decoded = MakeCredentialExtensionsInput::decode(ext).unwrap();
        assert_eq!(decoded.cred_protect, Some(3));
        assert_eq!(decoded.cred_blob, Some(vec![1, 2]));

        for (name, bad) in [
            (CRED_PROTECT, text("3")),
            (HMAC_SECRET, Value::Integer(1.into())),
            (CRED_BLOB, text("blob")),
            (LARGE_BLOB_KEY, Value::Integer(1.into())),
            (MIN_PIN_LENGTH, text("yes")),
            (HMAC_SECRET_MC, Value::Bool(true)),
            (THIRD_PARTY_PAYMENT, Value::Integer(1.into())),
            (PIN_COMPLEXITY_POLICY, text("on")),
        ] {
            assert_eq!(
                MakeCredentialExtensionsInput::decode(cbor::text_map(vec![(name, bad)])).err(),
                Some(StatusCode::CborUnexpectedType),
                "{name}"
            );
        }
        assert_eq!(
            GetAssertionExtensionsInput::decode(cbor::text_map(vec![(
                HMAC_SECRET,
                Value::Bool(true)
            )]))
            .err(),
            Some(StatusCode::CborUnexpectedType),
            "getAssertion's hmac-secret is a map"
        );
    }

    #[test]
    fn cred_protect_levels_outside_one_to_three_are_invalid() {
        for level in [0, 4, -1, 256] {
            let ext = cbor::text_map(vec![(CRED_PROTECT, Value::Integer(level.into()))]);
            assert_eq!(
                MakeCredentialExtensionsInput::decode(ext).err(),
                Some(StatusCode::InvalidParameter)
            );
        }
    }

    #[test]
    fn large_blob_key_false_is_an_invalid_option() {
        let ext = || cbor::text_map(vec![(LARGE_BLOB_KEY, Value::Bool(false))]);
        assert_eq!(
            MakeCredentialExtensionsInput::decode(ext()).err(),
            Some(StatusCode::InvalidOption)
        );
        assert_eq!(
            GetAssertionExtensionsInput::decode(ext()).err(),
            Some(StatusCode::InvalidOption)
        );
    }

    #[test]
    fn hmac_secret_input_needs_its_three_fields_and_a_known_protocol() {
        let full = |drop: i64, protocol: i64| {
            let mut entries = vec![
                (1, cbor::int_map(vec![])),
                (2, Value::Bytes(vec![0; 32])),
                (3, Value::Bytes(vec![0; 16])),
                (4, Value::Integer(protocol.into())),
            ];
            entries.retain(|(k, _)| *k != drop);
            cbor::text_map(vec![(HMAC_SECRET, cbor::int_map(entries))])
        };
        for key in 1..=3 {
            assert_eq!(
                GetAssertionExtensionsInput::decode(full(key, 1)).err(),
                Some(StatusCode::MissingParameter)
            );
        }
        assert_eq!(
            GetAssertionExtensionsInput::decode(full(0, 3)).err(),
            Some(StatusCode::InvalidParameter)
        );
        let decoded = GetAssertionExtensionsInput::decode(full(4, 0)).unwrap();
        assert_eq!(decoded.hmac_secret.unwrap().pin_uv_auth_protocol, 1);
    }
}
