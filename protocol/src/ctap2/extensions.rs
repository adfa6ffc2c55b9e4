//! Authenticator extensions (CTAP 2.1 §12, hmac-secret-mc from CTAP 2.2): their inputs as
//! makeCredential and getAssertion receive them, and the hmac-secret computation. Extensions we
//! do not know are ignored; a known one of the wrong type is CTAP2_ERR_CBOR_UNEXPECTED_TYPE.

use ciborium::Value;

use crate::cbor::{self, into_text_map, RequestMap};
use crate::ctap2::authenticator::Authenticator;
use crate::ctap2::hmac_secret::HmacSecretSalts;
use crate::ctap2::pin::protocol::PinProtocol;
use crate::env::{CredProtect, Env};
use crate::status::StatusCode;

pub const CRED_PROTECT: &str = "credProtect";
pub const HMAC_SECRET: &str = "hmac-secret";
pub const HMAC_SECRET_MC: &str = "hmac-secret-mc";
pub const CRED_BLOB: &str = "credBlob";
pub const LARGE_BLOB_KEY: &str = "largeBlobKey";
pub const MIN_PIN_LENGTH: &str = "minPinLength";
pub const THIRD_PARTY_PAYMENT: &str = "thirdPartyPayment";
pub const PIN_COMPLEXITY_POLICY: &str = "pinComplexityPolicy";

/// What getInfo lists, in the order a YubiKey lists its own.
pub const SUPPORTED: [&str; 8] = [
    CRED_PROTECT,
    HMAC_SECRET,
    LARGE_BLOB_KEY,
    CRED_BLOB,
    MIN_PIN_LENGTH,
    HMAC_SECRET_MC,
    THIRD_PARTY_PAYMENT,
    PIN_COMPLEXITY_POLICY,
];

/// getInfo maxCredBlobLength: the spec's minimum, what hardware keys offer.
pub const MAX_CRED_BLOB_LENGTH: usize = 32;

/// The hmac-secret input map (§12.5): the platform's key agreement key, the encrypted salts
/// and their MAC.
#[derive(Debug)]
pub struct HmacSecretInput {
    key_agreement: Value,
    salt_enc: Vec<u8>,
    salt_auth: Vec<u8>,
    protocol: PinProtocol,
}

impl HmacSecretInput {
    fn parse(value: Value) -> Result<Self, StatusCode> {
        let Value::Map(_) = &value else {
            return Err(StatusCode::CborUnexpectedType);
        };
        let mut map = RequestMap::parse(&cbor::encode(&value))?;
        let key_agreement = map.required(1)?;
        let salt_enc = cbor::into_bytes(map.required(2)?)?;
        let salt_auth = cbor::into_bytes(map.required(3)?)?;
        // Protocol one when absent: CTAP 2.0 platforms do not send it.
        let protocol = map
            .take(4)
            .map(cbor::into_int)
            .transpose()?
            .map(PinProtocol::from_param)
            .transpose()?
            .unwrap_or(PinProtocol::One);
        Ok(HmacSecretInput {
            key_agreement,
            salt_enc,
            salt_auth,
            protocol,
        })
    }
}

#[derive(Debug, Default)]
pub struct MakeCredentialExtensions {
    pub cred_protect: Option<CredProtect>,
    pub hmac_secret: bool,
    pub hmac_secret_mc: Option<HmacSecretInput>,
    pub cred_blob: Option<Vec<u8>>,
    pub large_blob_key: bool,
    pub min_pin_length: bool,
    pub third_party_payment: bool,
    pub pin_complexity_policy: bool,
}

pub fn parse_make_credential(value: Value) -> Result<MakeCredentialExtensions, StatusCode> {
    let mut out = MakeCredentialExtensions::default();
    for (name, value) in into_text_map(value)? {
        match name.as_str() {
            CRED_PROTECT => {
                let level = cbor::into_int(value)?;
                let level = u8::try_from(level)
                    .ok()
                    .and_then(CredProtect::from_level)
                    .ok_or(StatusCode::InvalidParameter)?;
                out.cred_protect = Some(level);
            }
            HMAC_SECRET => out.hmac_secret = cbor::into_bool(value)?,
            HMAC_SECRET_MC => out.hmac_secret_mc = Some(HmacSecretInput::parse(value)?),
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

#[derive(Debug, Default)]
pub struct GetAssertionExtensions {
    pub hmac_secret: Option<HmacSecretInput>,
    pub cred_blob: bool,
    pub large_blob_key: bool,
    pub third_party_payment: bool,
}

pub fn parse_get_assertion(value: Value) -> Result<GetAssertionExtensions, StatusCode> {
    let mut out = GetAssertionExtensions::default();
    for (name, value) in into_text_map(value)? {
        match name.as_str() {
            HMAC_SECRET => out.hmac_secret = Some(HmacSecretInput::parse(value)?),
            CRED_BLOB => out.cred_blob = cbor::into_bool(value)?,
            LARGE_BLOB_KEY => out.large_blob_key = large_blob_key_input(value)?,
            THIRD_PARTY_PAYMENT => out.third_party_payment = cbor::into_bool(value)?,
            _ => {}
        }
    }
    Ok(out)
}

/// largeBlobKey takes only `true` (§12.3: false is CTAP2_ERR_INVALID_OPTION).
fn large_blob_key_input(value: Value) -> Result<bool, StatusCode> {
    if cbor::into_bool(value)? {
        Ok(true)
    } else {
        Err(StatusCode::InvalidOption)
    }
}

impl<E: Env> Authenticator<E> {
    /// hmac-secret §12.5 steps: agree on a shared secret with the platform's key, check
    /// saltAuth (CTAP2_ERR_PIN_AUTH_INVALID), decrypt one or two 32-byte salts.
    pub(crate) fn hmac_secret_salts(
        &mut self,
        input: HmacSecretInput,
    ) -> Result<HmacSecretSalts, StatusCode> {
        let key = crate::wire::KeyAgreementPublicKey::from_cbor(input.key_agreement)?;
        let shared = self.shared_secret(input.protocol, &key)?;
        if !shared.verify(&input.salt_enc, &input.salt_auth) {
            return Err(StatusCode::PinAuthInvalid);
        }
        let salts = shared
            .decrypt(&input.salt_enc)
            .filter(|salts| salts.len() == 32 || salts.len() == 64)
            .ok_or(StatusCode::InvalidParameter)?;
        Ok(HmacSecretSalts::new(shared, salts))
    }
}

#[cfg(test)]
mod ceremonies;

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Value {
        Value::Text(s.into())
    }

    #[test]
    fn unknown_extensions_are_ignored_known_ones_type_checked() {
        let ext = cbor::text_map(vec![
            ("future", Value::Null),
            (CRED_PROTECT, Value::Integer(3.into())),
            (CRED_BLOB, Value::Bytes(vec![1, 2])),
        ]);
        let parsed = parse_make_credential(ext).unwrap();
        assert_eq!(
            parsed.cred_protect,
            Some(CredProtect::UserVerificationRequired)
        );
        assert_eq!(parsed.cred_blob, Some(vec![1, 2]));

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
                parse_make_credential(cbor::text_map(vec![(name, bad)])).err(),
                Some(StatusCode::CborUnexpectedType),
                "{name}"
            );
        }
        assert_eq!(
            parse_get_assertion(cbor::text_map(vec![(HMAC_SECRET, Value::Bool(true))])).err(),
            Some(StatusCode::CborUnexpectedType),
            "getAssertion's hmac-secret is a map"
        );
    }

    #[test]
    fn cred_protect_levels_outside_one_to_three_are_invalid() {
        for level in [0, 4, -1, 256] {
            let ext = cbor::text_map(vec![(CRED_PROTECT, Value::Integer(level.into()))]);
            assert_eq!(
                parse_make_credential(ext).err(),
                Some(StatusCode::InvalidParameter)
            );
        }
    }

    #[test]
    fn large_blob_key_false_is_an_invalid_option() {
        let ext = || cbor::text_map(vec![(LARGE_BLOB_KEY, Value::Bool(false))]);
        assert_eq!(
            parse_make_credential(ext()).err(),
            Some(StatusCode::InvalidOption)
        );
        assert_eq!(
            parse_get_assertion(ext()).err(),
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
                parse_get_assertion(full(key, 1)).err(),
                Some(StatusCode::MissingParameter)
            );
        }
        assert_eq!(
            parse_get_assertion(full(0, 3)).err(),
            Some(StatusCode::InvalidParameter)
        );
        let parsed = parse_get_assertion(full(4, 0)).unwrap();
        assert_eq!(parsed.hmac_secret.unwrap().protocol, PinProtocol::One);
    }
}
