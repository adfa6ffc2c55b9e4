//! `fido2ctl info`: the key's authenticatorGetInfo, with the fields named.

use ciborium::Value;
use protocol::wire::{GetInfoRequest, Request as _};
use serde_json::json;

use crate::ctap::Key;
use crate::exit::Failure;

/// authenticatorGetInfo response keys (CTAP 2.1 §6.4, with CTAP 2.2/2.3's) and their names.
const FIELDS: [(u64, &str); 31] = [
    (0x01, "versions"),
    (0x02, "extensions"),
    (0x03, "aaguid"),
    (0x04, "options"),
    (0x05, "maxMsgSize"),
    (0x06, "pinUvAuthProtocols"),
    (0x07, "maxCredentialCountInList"),
    (0x08, "maxCredentialIdLength"),
    (0x09, "transports"),
    (0x0A, "algorithms"),
    (0x0B, "maxSerializedLargeBlobArray"),
    (0x0C, "forcePINChange"),
    (0x0D, "minPINLength"),
    (0x0E, "firmwareVersion"),
    (0x0F, "maxCredBlobLength"),
    (0x10, "maxRPIDsForSetMinPINLength"),
    (0x11, "preferredPlatformUvAttempts"),
    (0x12, "uvModality"),
    (0x13, "certifications"),
    (0x14, "remainingDiscoverableCredentials"),
    (0x15, "vendorPrototypeConfigCommands"),
    (0x16, "attestationFormats"),
    (0x17, "uvCountSinceLastPinEntry"),
    (0x18, "longTouchForReset"),
    (0x19, "encIdentifier"),
    (0x1A, "transportsForReset"),
    (0x1B, "pinComplexityPolicy"),
    (0x1C, "pinComplexityPolicyURL"),
    (0x1D, "maxPINLength"),
    (0x1E, "encCredStoreState"),
    (0x1F, "authenticatorConfigCommands"),
];

/// The key's getInfo as JSON with named fields (byte strings as hex).
pub fn fetch(key: &mut Key) -> Result<serde_json::Value, Failure> {
    // Read member by member, not as a `wire::GetInfoResponse`: this shows every member a key
    // sends, also those fido2d does not know (certifications, vendor ones).
    let (status, body) = key.cbor(&GetInfoRequest.encode())?;
    if status != 0 {
        return Err(Failure::failed(format!(
            "the key refused authenticatorGetInfo: {}",
            crate::ctap_status::describe(status)
        )));
    }
    let value: Value = ciborium::from_reader(body.as_slice())
        .map_err(|err| Failure::failed(format!("the key's getInfo is not CBOR: {err}")))?;
    let Value::Map(entries) = value else {
        return Err(Failure::failed("the key's getInfo is not a CBOR map"));
    };
    let mut out = serde_json::Map::new();
    for (key, value) in entries {
        let name = key
            .as_integer()
            .and_then(|i| u64::try_from(i).ok())
            .and_then(|i| FIELDS.iter().find(|(k, _)| *k == i))
            .map(|(_, name)| (*name).to_owned())
            .unwrap_or_else(|| format!("{key:?}"));
        out.insert(name, to_json(value));
    }
    Ok(serde_json::Value::Object(out))
}

/// CBOR as JSON: byte strings become hex, map keys become strings.
pub fn to_json(value: Value) -> serde_json::Value {
    match value {
        Value::Integer(i) => json!(i128::from(i)),
        Value::Bytes(b) => json!(hex::encode(b)),
        Value::Float(f) => json!(f),
        Value::Text(t) => json!(t),
        Value::Bool(b) => json!(b),
        Value::Null => serde_json::Value::Null,
        Value::Tag(_, inner) => to_json(*inner),
        Value::Array(items) => serde_json::Value::Array(items.into_iter().map(to_json).collect()),
        Value::Map(entries) => serde_json::Value::Object(
            entries
                .into_iter()
                .map(|(k, v)| {
                    let key = match k {
                        Value::Text(t) => t,
                        Value::Integer(i) => i128::from(i).to_string(),
                        other => format!("{other:?}"),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        _ => serde_json::Value::Null,
    }
}

pub fn print(info: &serde_json::Value) {
    let Some(fields) = info.as_object() else {
        return;
    };
    for (name, value) in fields {
        let text = match value {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        println!("{name:>34}: {text}");
    }
}
