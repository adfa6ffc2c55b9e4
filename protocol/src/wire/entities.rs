//! The WebAuthn structures CTAP2 requests and responses carry (CTAP 2.1 §6.1.1 and §6.2.1,
//! WebAuthn §5.4): relying party and user entities, credential parameters and descriptors,
//! and the options map.
//!
//! Decoding checks types only and keeps what was sent; what the authenticator makes of it
//! (truncating stored names, choosing an algorithm, skipping descriptors of unknown types) is
//! the command's business.

use ciborium::Value;

use crate::cbor::{self, into_bytes, into_text, into_text_map, take_field};
use crate::status::StatusCode;

/// WebAuthn limits user handles to 64 bytes.
pub const MAX_USER_ID_LEN: usize = 64;

/// The credential type every CTAP 2.1 credential has.
pub const PUBLIC_KEY_TYPE: &str = "public-key";

/// PublicKeyCredentialRpEntity: `id` is required, `name` optional, anything else ignored.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PublicKeyCredentialRpEntity {
    pub id: String,
    pub name: Option<String>,
}

impl PublicKeyCredentialRpEntity {
    /// An RP named by its ID alone.
    pub fn with_id(id: &str) -> Self {
        PublicKeyCredentialRpEntity {
            id: id.into(),
            name: None,
        }
    }

    pub fn decode(value: Value) -> Result<Self, StatusCode> {
        let mut map = into_text_map(value)?;
        let id = into_text(take_field(&mut map, "id").ok_or(StatusCode::MissingParameter)?)?;
        let name = take_field(&mut map, "name").map(into_text).transpose()?;
        Ok(PublicKeyCredentialRpEntity { id, name })
    }

    pub fn to_cbor(&self) -> Value {
        let mut entries = vec![("id", Value::Text(self.id.clone()))];
        if let Some(name) = &self.name {
            entries.push(("name", Value::Text(name.clone())));
        }
        cbor::text_map(entries)
    }
}

/// PublicKeyCredentialUserEntity: `id` (the user handle, bytes) is required; `name` and
/// `displayName` optional. Requests and getAssertion responses carry it alike.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PublicKeyCredentialUserEntity {
    pub id: Vec<u8>,
    pub name: Option<String>,
    pub display_name: Option<String>,
}

impl PublicKeyCredentialUserEntity {
    /// A user named by the handle alone.
    pub fn with_handle(id: Vec<u8>) -> Self {
        PublicKeyCredentialUserEntity {
            id,
            ..Default::default()
        }
    }

    pub fn decode(value: Value) -> Result<Self, StatusCode> {
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
        Ok(PublicKeyCredentialUserEntity {
            id,
            name,
            display_name,
        })
    }

    pub fn to_cbor(&self) -> Value {
        let mut entries = vec![("id", Value::Bytes(self.id.clone()))];
        if let Some(name) = &self.name {
            entries.push(("name", Value::Text(name.clone())));
        }
        if let Some(display_name) = &self.display_name {
            entries.push(("displayName", Value::Text(display_name.clone())));
        }
        cbor::text_map(entries)
    }
}

/// One entry of pubKeyCredParams (and of getInfo's algorithms): a credential type and a COSE
/// algorithm identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKeyCredentialParameters {
    pub kind: String,
    pub alg: i64,
}

impl PublicKeyCredentialParameters {
    /// A "public-key" credential of COSE algorithm `alg`.
    pub fn public_key(alg: i64) -> Self {
        PublicKeyCredentialParameters {
            kind: PUBLIC_KEY_TYPE.into(),
            alg,
        }
    }

    /// Every entry must be well-formed, whatever its type (entries of other types may come
    /// from a future WebAuthn and are kept, for the command to skip). An algorithm number
    /// beyond 64 bits names no COSE algorithm: its entry is dropped.
    pub fn decode_list(value: Value) -> Result<Vec<Self>, StatusCode> {
        let entries = cbor::into_array(value)?;
        let mut list = Vec::with_capacity(entries.len());
        for entry in entries {
            let mut map = into_text_map(entry)?;
            let alg =
                cbor::into_int(take_field(&mut map, "alg").ok_or(StatusCode::MissingParameter)?)?;
            let kind =
                into_text(take_field(&mut map, "type").ok_or(StatusCode::MissingParameter)?)?;
            if let Ok(alg) = i64::try_from(alg) {
                list.push(PublicKeyCredentialParameters { kind, alg });
            }
        }
        Ok(list)
    }

    pub fn to_cbor(&self) -> Value {
        cbor::text_map(vec![
            ("alg", Value::Integer(self.alg.into())),
            ("type", Value::Text(self.kind.clone())),
        ])
    }
}

/// PublicKeyCredentialDescriptor: an allowList or excludeList entry, and the credential of a
/// getAssertion response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKeyCredentialDescriptor {
    pub kind: String,
    pub id: Vec<u8>,
}

impl PublicKeyCredentialDescriptor {
    /// The descriptor of the "public-key" credential `id`.
    pub fn public_key(id: Vec<u8>) -> Self {
        PublicKeyCredentialDescriptor {
            kind: PUBLIC_KEY_TYPE.into(),
            id,
        }
    }

    pub fn is_public_key(&self) -> bool {
        self.kind == PUBLIC_KEY_TYPE
    }

    pub fn decode(value: Value) -> Result<Self, StatusCode> {
        let mut map = into_text_map(value)?;
        let kind = into_text(take_field(&mut map, "type").ok_or(StatusCode::MissingParameter)?)?;
        let id = into_bytes(take_field(&mut map, "id").ok_or(StatusCode::MissingParameter)?)?;
        // `transports` is a hint for the platform; when present it must be an array.
        take_field(&mut map, "transports")
            .map(cbor::into_array)
            .transpose()?;
        Ok(PublicKeyCredentialDescriptor { kind, id })
    }

    /// An allowList or excludeList: every entry must be well-formed, whatever its type.
    pub fn decode_list(value: Value) -> Result<Vec<Self>, StatusCode> {
        cbor::into_array(value)?
            .into_iter()
            .map(Self::decode)
            .collect()
    }

    pub fn to_cbor(&self) -> Value {
        cbor::text_map(vec![
            ("id", Value::Bytes(self.id.clone())),
            ("type", Value::Text(self.kind.clone())),
        ])
    }
}

/// The options map of makeCredential and getAssertion: `rk`, `up`, `uv` as given (absent =
/// None). Options we do not know are ignored whatever their value (CTAP 2.1 §6.1.1 and
/// §6.2.1: "Platforms MAY send options that are not defined ... authenticators MUST ignore"
/// them); the ones we know must be booleans.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    pub rk: Option<bool>,
    pub up: Option<bool>,
    pub uv: Option<bool>,
}

impl Options {
    pub fn decode(value: Value) -> Result<Self, StatusCode> {
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

    pub fn is_empty(&self) -> bool {
        *self == Options::default()
    }

    pub fn to_cbor(&self) -> Value {
        let entries = [("rk", self.rk), ("up", self.up), ("uv", self.uv)]
            .into_iter()
            .filter_map(|(name, value)| value.map(|v| (name, Value::Bool(v))))
            .collect();
        cbor::text_map(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Value {
        Value::Text(s.into())
    }

    #[test]
    fn entities_round_trip() {
        let rp = PublicKeyCredentialRpEntity {
            id: "example.com".into(),
            name: Some("Example".into()),
        };
        assert_eq!(PublicKeyCredentialRpEntity::decode(rp.to_cbor()), Ok(rp));
        let user = PublicKeyCredentialUserEntity {
            id: vec![1, 2],
            name: Some("alice".into()),
            display_name: None,
        };
        assert_eq!(
            PublicKeyCredentialUserEntity::decode(user.to_cbor()),
            Ok(user)
        );
        let descriptor = PublicKeyCredentialDescriptor::public_key(vec![9; 16]);
        assert_eq!(
            PublicKeyCredentialDescriptor::decode(descriptor.to_cbor()),
            Ok(descriptor)
        );
        let options = Options {
            rk: Some(true),
            up: None,
            uv: Some(false),
        };
        assert_eq!(Options::decode(options.to_cbor()), Ok(options));
    }

    #[test]
    fn user_id_longer_than_64_bytes_is_invalid_length() {
        let user = cbor::text_map(vec![("id", Value::Bytes(vec![1; 65]))]);
        assert_eq!(
            PublicKeyCredentialUserEntity::decode(user),
            Err(StatusCode::InvalidLength)
        );
        let user = cbor::text_map(vec![("id", Value::Bytes(vec![1; 64]))]);
        assert_eq!(
            PublicKeyCredentialUserEntity::decode(user)
                .unwrap()
                .id
                .len(),
            64
        );
    }

    #[test]
    fn malformed_algorithm_entries_are_rejected() {
        let missing_alg = cbor::text_map(vec![("type", text("public-key"))]);
        assert_eq!(
            PublicKeyCredentialParameters::decode_list(Value::Array(vec![missing_alg])),
            Err(StatusCode::MissingParameter)
        );
        let text_alg = cbor::text_map(vec![("alg", text("ES256")), ("type", text("public-key"))]);
        assert_eq!(
            PublicKeyCredentialParameters::decode_list(Value::Array(vec![text_alg])),
            Err(StatusCode::CborUnexpectedType)
        );
        assert_eq!(
            PublicKeyCredentialParameters::decode_list(text("x")),
            Err(StatusCode::CborUnexpectedType)
        );
    }

    #[test]
    fn options_must_be_booleans_and_unknown_ones_of_any_type_are_ignored() {
        for value in [
            Value::Integer(1.into()),
            text("yes"),
            Value::Null,
            Value::Array(vec![]),
            cbor::text_map(vec![]),
        ] {
            let options = cbor::text_map(vec![("future", value), ("uv", Value::Bool(false))]);
            assert_eq!(
                Options::decode(options),
                Ok(Options {
                    rk: None,
                    up: None,
                    uv: Some(false)
                })
            );
        }
        let bad = cbor::text_map(vec![("up", Value::Integer(1.into()))]);
        assert_eq!(Options::decode(bad), Err(StatusCode::CborUnexpectedType));
    }

    #[test]
    fn descriptors_of_unknown_types_are_kept_malformed_ones_rejected() {
        let other = cbor::text_map(vec![
            ("id", Value::Bytes(vec![2])),
            ("type", text("future")),
        ]);
        let list = PublicKeyCredentialDescriptor::decode_list(Value::Array(vec![other])).unwrap();
        assert!(!list[0].is_public_key());
        let no_id = cbor::text_map(vec![("type", text("public-key"))]);
        assert_eq!(
            PublicKeyCredentialDescriptor::decode_list(Value::Array(vec![no_id])),
            Err(StatusCode::MissingParameter)
        );
        let text_id = cbor::text_map(vec![("id", text("x")), ("type", text("public-key"))]);
        assert_eq!(
            PublicKeyCredentialDescriptor::decode_list(Value::Array(vec![text_id])),
            Err(StatusCode::CborUnexpectedType)
        );
        let bad_transports = cbor::text_map(vec![
            ("id", Value::Bytes(vec![1])),
            ("transports", text("usb")),
            ("type", text("public-key")),
        ]);
        assert_eq!(
            PublicKeyCredentialDescriptor::decode(bad_transports),
            Err(StatusCode::CborUnexpectedType)
        );
    }
}
