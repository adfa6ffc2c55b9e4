//! The WebAuthn structures carried in CTAP2 requests, parsed with precise status codes.

use ciborium::Value;

use crate::cbor::{self, into_bytes, into_text, into_text_map, take_field};
use crate::env::{Algorithm, RelyingParty, UserEntity};
use crate::status::StatusCode;

/// WebAuthn limits user handles to 64 bytes.
pub const MAX_USER_ID_LEN: usize = 64;
/// Stored user and RP names are truncated to 64 bytes (CTAP 2.1 §6.1 "maximum size" note),
/// at a UTF-8 character boundary.
pub const MAX_STORED_NAME_LEN: usize = 64;

const PUBLIC_KEY_TYPE: &str = "public-key";

/// PublicKeyCredentialRpEntity: `id` is required, `name` optional, anything else ignored.
pub fn parse_rp(value: Value) -> Result<RelyingParty, StatusCode> {
    let mut map = into_text_map(value)?;
    let id = into_text(take_field(&mut map, "id").ok_or(StatusCode::MissingParameter)?)?;
    let name = take_field(&mut map, "name").map(into_text).transpose()?;
    Ok(RelyingParty {
        id,
        name: name.map(truncate_name),
    })
}

/// PublicKeyCredentialUserEntity: `id` (bytes) is required; `name` and `displayName` optional.
pub fn parse_user(value: Value) -> Result<UserEntity, StatusCode> {
    let mut map = into_text_map(value)?;
    let id = into_bytes(take_field(&mut map, "id").ok_or(StatusCode::MissingParameter)?)?;
    // WebAuthn caps user handles at 64 bytes; CTAP names no status for a longer one, and
    // INVALID_LENGTH says exactly what is wrong.
    if id.len() > MAX_USER_ID_LEN {
        return Err(StatusCode::InvalidLength);
    }
    let name = take_field(&mut map, "name").map(into_text).transpose()?;
    let display_name = take_field(&mut map, "displayName")
        .map(into_text)
        .transpose()?;
    // `icon` (removed in WebAuthn L2) and anything else is ignored: CTAP 2.2 says an
    // authenticator must not fail on it.
    Ok(UserEntity {
        id,
        name: name.map(truncate_name),
        display_name: display_name.map(truncate_name),
    })
}

fn truncate_name(mut name: String) -> String {
    if name.len() > MAX_STORED_NAME_LEN {
        let mut end = MAX_STORED_NAME_LEN;
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        name.truncate(end);
    }
    name
}

/// pubKeyCredParams: the first entry of type "public-key" whose algorithm we know and the
/// keystore `supports`. Entries of other types are skipped (they may come from a future
/// WebAuthn), but every entry must be well-formed.
pub fn choose_algorithm(
    value: Value,
    supports: impl Fn(Algorithm) -> bool,
) -> Result<Algorithm, StatusCode> {
    let mut chosen = None;
    for entry in cbor::into_array(value)? {
        let mut map = into_text_map(entry)?;
        let alg = cbor::into_int(take_field(&mut map, "alg").ok_or(StatusCode::MissingParameter)?)?;
        let kind = into_text(take_field(&mut map, "type").ok_or(StatusCode::MissingParameter)?)?;
        if chosen.is_none() && kind == PUBLIC_KEY_TYPE {
            chosen = i64::try_from(alg)
                .ok()
                .and_then(Algorithm::from_cose_id)
                .filter(|alg| supports(*alg));
        }
    }
    chosen.ok_or(StatusCode::UnsupportedAlgorithm)
}

/// A PublicKeyCredentialDescriptor of type "public-key" (others are skipped by callers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialDescriptor {
    pub id: Vec<u8>,
}

/// An allowList or excludeList: descriptors of an unknown type are dropped, malformed ones are
/// an error.
pub fn parse_credential_list(value: Value) -> Result<Vec<CredentialDescriptor>, StatusCode> {
    let mut list = Vec::new();
    for entry in cbor::into_array(value)? {
        let mut map = into_text_map(entry)?;
        let kind = into_text(take_field(&mut map, "type").ok_or(StatusCode::MissingParameter)?)?;
        let id = into_bytes(take_field(&mut map, "id").ok_or(StatusCode::MissingParameter)?)?;
        // `transports` is a hint for the platform; when present it must be an array.
        take_field(&mut map, "transports")
            .map(cbor::into_array)
            .transpose()?;
        if kind == PUBLIC_KEY_TYPE {
            list.push(CredentialDescriptor { id });
        }
    }
    Ok(list)
}

/// The descriptor of a credential in a response.
pub fn credential_descriptor(id: &[u8]) -> Value {
    cbor::text_map(vec![
        ("id", Value::Bytes(id.to_vec())),
        ("type", Value::Text(PUBLIC_KEY_TYPE.into())),
    ])
}

/// The options map: `rk`, `up`, `uv` as given (absent = None). Options we do not know are
/// ignored whatever their value (CTAP 2.1 §6.1.1 and §6.2.1: "Platforms MAY send options
/// that are not defined ... authenticators MUST ignore" them); the ones we know must be
/// booleans.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    pub rk: Option<bool>,
    pub up: Option<bool>,
    pub uv: Option<bool>,
}

pub fn parse_options(value: Value) -> Result<Options, StatusCode> {
    let mut options = Options::default();
    for (key, value) in into_text_map(value)? {
        let slot = match key.as_str() {
            "rk" => &mut options.rk,
            "up" => &mut options.up,
            "uv" => &mut options.uv,
            _ => continue,
        };
        *slot = Some(cbor::into_bool(value)?);
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Value {
        Value::Text(s.into())
    }

    fn param(alg: i64, kind: &str) -> Value {
        cbor::text_map(vec![
            ("alg", Value::Integer(alg.into())),
            ("type", text(kind)),
        ])
    }

    #[test]
    fn first_supported_algorithm_in_rp_order_wins() {
        let list = Value::Array(vec![
            param(-257, "public-key"),
            param(-8, "public-key"),
            param(-7, "public-key"),
        ]);
        assert_eq!(
            choose_algorithm(list.clone(), |_| true),
            Ok(Algorithm::EdDsa)
        );
        assert_eq!(
            choose_algorithm(list, |alg| alg == Algorithm::Es256),
            Ok(Algorithm::Es256),
            "an algorithm the keystore cannot make is skipped"
        );
    }

    #[test]
    fn unsupported_algorithms_only_is_unsupported_algorithm() {
        let list = Value::Array(vec![param(-257, "public-key"), param(-7, "future-type")]);
        assert_eq!(
            choose_algorithm(list, |_| true),
            Err(StatusCode::UnsupportedAlgorithm)
        );
        assert_eq!(
            choose_algorithm(Value::Array(vec![]), |_| true),
            Err(StatusCode::UnsupportedAlgorithm)
        );
    }

    #[test]
    fn malformed_algorithm_entries_are_rejected() {
        let missing_alg = cbor::text_map(vec![("type", text("public-key"))]);
        assert_eq!(
            choose_algorithm(Value::Array(vec![missing_alg]), |_| true),
            Err(StatusCode::MissingParameter)
        );
        let text_alg = cbor::text_map(vec![("alg", text("ES256")), ("type", text("public-key"))]);
        assert_eq!(
            choose_algorithm(Value::Array(vec![text_alg]), |_| true),
            Err(StatusCode::CborUnexpectedType)
        );
        assert_eq!(
            choose_algorithm(text("x"), |_| true),
            Err(StatusCode::CborUnexpectedType)
        );
    }

    #[test]
    fn user_id_longer_than_64_bytes_is_rejected() {
        let user = cbor::text_map(vec![("id", Value::Bytes(vec![1; 65]))]);
        assert_eq!(parse_user(user), Err(StatusCode::InvalidLength));
        let user = cbor::text_map(vec![("id", Value::Bytes(vec![1; 64]))]);
        assert_eq!(parse_user(user).unwrap().id.len(), 64);
    }

    #[test]
    fn long_names_are_truncated_at_a_character_boundary() {
        let long = "é".repeat(40); // 80 bytes
        let user = cbor::text_map(vec![("id", Value::Bytes(vec![1])), ("name", text(&long))]);
        let name = parse_user(user).unwrap().name.unwrap();
        assert_eq!(name.len(), 64);
        assert!(long.starts_with(&name));
    }

    #[test]
    fn options_must_be_booleans_and_unknown_ones_are_ignored() {
        let options = cbor::text_map(vec![
            ("rk", Value::Bool(true)),
            ("future", Value::Bool(true)),
        ]);
        assert_eq!(
            parse_options(options),
            Ok(Options {
                rk: Some(true),
                up: None,
                uv: None
            })
        );
        let bad = cbor::text_map(vec![("up", Value::Integer(1.into()))]);
        assert_eq!(parse_options(bad), Err(StatusCode::CborUnexpectedType));
    }

    /// CTAP 2.1 §6.1.1 / §6.2.1: unknown options are ignored, whatever the type of their value.
    #[test]
    fn unknown_options_of_any_type_are_ignored() {
        for value in [
            Value::Integer(1.into()),
            text("yes"),
            Value::Null,
            Value::Array(vec![]),
            cbor::text_map(vec![]),
        ] {
            let options = cbor::text_map(vec![("future", value), ("uv", Value::Bool(false))]);
            assert_eq!(
                parse_options(options),
                Ok(Options {
                    rk: None,
                    up: None,
                    uv: Some(false)
                })
            );
        }
    }

    #[test]
    fn credential_lists_skip_unknown_types_but_reject_malformed_entries() {
        let ok = cbor::text_map(vec![
            ("id", Value::Bytes(vec![1])),
            ("type", text("public-key")),
        ]);
        let other = cbor::text_map(vec![
            ("id", Value::Bytes(vec![2])),
            ("type", text("future")),
        ]);
        assert_eq!(
            parse_credential_list(Value::Array(vec![ok, other])),
            Ok(vec![CredentialDescriptor { id: vec![1] }])
        );
        let no_id = cbor::text_map(vec![("type", text("public-key"))]);
        assert_eq!(
            parse_credential_list(Value::Array(vec![no_id])),
            Err(StatusCode::MissingParameter)
        );
        let text_id = cbor::text_map(vec![("id", text("x")), ("type", text("public-key"))]);
        assert_eq!(
            parse_credential_list(Value::Array(vec![text_id])),
            Err(StatusCode::CborUnexpectedType)
        );
    }
}
