//! CBOR in and out of the CTAP wire format.
//!
//! Requests are parsed into [`ciborium::Value`] and read field by field, so every malformed input
//! maps to the precise CTAP status: undecodable bytes are CTAP2_ERR_INVALID_CBOR, a field of the
//! wrong type CTAP2_ERR_CBOR_UNEXPECTED_TYPE, an absent required field
//! CTAP2_ERR_MISSING_PARAMETER. Responses are encoded in CTAP2 canonical form: definite lengths
//! and map keys sorted by major type, then length, then bytes.

use ciborium::Value;

use crate::status::StatusCode;

/// Encodes a value in CTAP2 canonical form (maps sorted recursively).
pub fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail, and every value we build is encodable. The typed
    // responses of `wire` build their maps in canonical order already: those are written as
    // they are, without the copy and the key encodings that sorting needs.
    if is_canonical(value) {
        ciborium::into_writer(value, &mut out).expect("CBOR encoding into a Vec");
    } else {
        ciborium::into_writer(&canonicalize(value), &mut out).expect("CBOR encoding into a Vec");
    }
    out
}

/// Where a map key falls in canonical order, for the key types CTAP uses, without encoding
/// it: an integer by its major type (unsigned before negative), then its argument (a larger
/// argument never has a shorter encoding); a text string after every integer, by its length,
/// then its bytes. `None` for any other key: those maps take the sorting path.
fn canonical_rank(key: &Value) -> Option<(u8, u128, &[u8])> {
    match key {
        Value::Integer(integer) => {
            let n = i128::from(*integer);
            Some(if n >= 0 {
                (0, n.unsigned_abs(), &[])
            } else {
                (1, (-1 - n).unsigned_abs(), &[])
            })
        }
        Value::Text(text) => Some((3, text.len() as u128, text.as_bytes())),
        _ => None,
    }
}

/// Whether every map in `value` has its keys in strictly increasing canonical order.
fn is_canonical(value: &Value) -> bool {
    match value {
        Value::Map(entries) => {
            let ranks: Option<Vec<_>> = entries.iter().map(|(k, _)| canonical_rank(k)).collect();
            ranks.is_some_and(|ranks| ranks.windows(2).all(|pair| pair[0] < pair[1]))
                && entries.iter().all(|(_, v)| is_canonical(v))
        }
        Value::Array(items) => items.iter().all(is_canonical),
        Value::Tag(_, inner) => is_canonical(inner),
        _ => true,
    }
}

fn canonicalize(value: &Value) -> Value {
    match value {
        Value::Map(entries) => {
            let mut sorted: Vec<(Vec<u8>, Value, Value)> = entries
                .iter()
                .map(|(k, v)| {
                    let k = canonicalize(k);
                    let mut key_bytes = Vec::new();
                    ciborium::into_writer(&k, &mut key_bytes).expect("CBOR encoding into a Vec");
                    (key_bytes, k, canonicalize(v))
                })
                .collect();
            sorted.sort_by(|a, b| {
                let major = |bytes: &[u8]| bytes[0] >> 5;
                (major(&a.0), a.0.len(), &a.0).cmp(&(major(&b.0), b.0.len(), &b.0))
            });
            Value::Map(sorted.into_iter().map(|(_, k, v)| (k, v)).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(canonicalize).collect()),
        Value::Tag(tag, inner) => Value::Tag(*tag, Box::new(canonicalize(inner))),
        other => other.clone(),
    }
}

/// Decodes exactly one CBOR data item; trailing bytes are invalid CBOR.
pub fn decode(bytes: &[u8]) -> Result<Value, StatusCode> {
    let mut reader = bytes;
    let value: Value = ciborium::from_reader(&mut reader).map_err(|_| StatusCode::InvalidCbor)?;
    if !reader.is_empty() {
        return Err(StatusCode::InvalidCbor);
    }
    Ok(value)
}

/// A request's top-level map with integer keys, read field by field.
pub struct RequestMap {
    entries: Vec<(i128, Value)>,
}

impl RequestMap {
    /// Parses a CTAP2 command parameter map. An empty parameter buffer is an empty map
    /// (commands without parameters, or with only optional ones, may send none).
    pub fn parse(bytes: &[u8]) -> Result<Self, StatusCode> {
        if bytes.is_empty() {
            return Ok(RequestMap {
                entries: Vec::new(),
            });
        }
        Self::from_value(decode(bytes)?)
    }

    /// A map already decoded (one nested in a request, such as hmac-secret's input).
    pub fn from_value(value: Value) -> Result<Self, StatusCode> {
        let Value::Map(raw) = value else {
            return Err(StatusCode::CborUnexpectedType);
        };
        let mut entries: Vec<(i128, Value)> = Vec::with_capacity(raw.len());
        for (key, value) in raw {
            let Value::Integer(key) = key else {
                return Err(StatusCode::CborUnexpectedType);
            };
            let key = i128::from(key);
            if entries.iter().any(|(k, _)| *k == key) {
                // A duplicate key makes the map ambiguous: not valid CTAP CBOR.
                return Err(StatusCode::InvalidCbor);
            }
            entries.push((key, value));
        }
        Ok(RequestMap { entries })
    }

    /// Removes and returns the value under `key`; unknown keys are simply never taken.
    pub fn take(&mut self, key: i128) -> Option<Value> {
        let pos = self.entries.iter().position(|(k, _)| *k == key)?;
        Some(self.entries.swap_remove(pos).1)
    }

    pub fn required(&mut self, key: i128) -> Result<Value, StatusCode> {
        self.take(key).ok_or(StatusCode::MissingParameter)
    }
}

/// Typed readers for a single value: the wrong type is CTAP2_ERR_CBOR_UNEXPECTED_TYPE.
pub fn into_bytes(value: Value) -> Result<Vec<u8>, StatusCode> {
    match value {
        Value::Bytes(b) => Ok(b),
        _ => Err(StatusCode::CborUnexpectedType),
    }
}

pub fn into_text(value: Value) -> Result<String, StatusCode> {
    match value {
        Value::Text(t) => Ok(t),
        _ => Err(StatusCode::CborUnexpectedType),
    }
}

pub fn into_bool(value: Value) -> Result<bool, StatusCode> {
    match value {
        Value::Bool(b) => Ok(b),
        _ => Err(StatusCode::CborUnexpectedType),
    }
}

pub fn into_int(value: Value) -> Result<i128, StatusCode> {
    match value {
        Value::Integer(i) => Ok(i128::from(i)),
        _ => Err(StatusCode::CborUnexpectedType),
    }
}

pub fn into_array(value: Value) -> Result<Vec<Value>, StatusCode> {
    match value {
        Value::Array(a) => Ok(a),
        _ => Err(StatusCode::CborUnexpectedType),
    }
}

/// A map with text keys (rp, user, options, credential descriptors, extensions).
pub fn into_text_map(value: Value) -> Result<Vec<(String, Value)>, StatusCode> {
    let Value::Map(raw) = value else {
        return Err(StatusCode::CborUnexpectedType);
    };
    let mut entries: Vec<(String, Value)> = Vec::with_capacity(raw.len());
    for (key, value) in raw {
        let Value::Text(key) = key else {
            return Err(StatusCode::CborUnexpectedType);
        };
        if entries.iter().any(|(k, _)| *k == key) {
            return Err(StatusCode::InvalidCbor);
        }
        entries.push((key, value));
    }
    Ok(entries)
}

/// Removes the entry `key` from a text-keyed map.
pub fn take_field(map: &mut Vec<(String, Value)>, key: &str) -> Option<Value> {
    let pos = map.iter().position(|(k, _)| k == key)?;
    Some(map.swap_remove(pos).1)
}

/// Builds a response map with integer keys; [`encode`] puts the keys in canonical order.
pub fn int_map(entries: Vec<(i64, Value)>) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(k, v)| (Value::Integer(k.into()), v))
            .collect(),
    )
}

/// Builds a map with text keys.
pub fn text_map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(k, v)| (Value::Text(k.to_owned()), v))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_are_sorted_canonically_by_type_then_length_then_bytes() {
        let value = Value::Map(vec![
            (Value::Text("up".into()), Value::Bool(true)),
            (Value::Integer((-1).into()), Value::Null),
            (Value::Text("a".into()), Value::Bool(true)),
            (Value::Integer(24.into()), Value::Null),
            (Value::Integer(3.into()), Value::Null),
            (Value::Text("b".into()), Value::Bool(true)),
        ]);
        let bytes = encode(&value);
        // a6; 03 f6; 18 18 f6; 20 f6; 61 'a' f5; 61 'b' f5; 62 'u' 'p' f5
        assert_eq!(
            bytes,
            hex::decode("a603f61818f620f66161f56162f5627570f5").unwrap()
        );
    }

    #[test]
    fn the_order_read_without_encoding_is_the_order_of_the_encoded_keys() {
        // Keys at every boundary of the encoded length, both signs, texts of 23 and 24 bytes.
        let int = |n: i128| Value::Integer(ciborium::value::Integer::try_from(n).unwrap());
        let text = |s: &str| Value::Text(s.into());
        let keys = vec![
            int(0),
            int(23),
            int(24),
            int(255),
            int(256),
            int(65_536),
            int(u64::MAX.into()),
            int(-1),
            int(-24),
            int(-25),
            int(-256),
            int(-257),
            int(-(1 << 64)),
            text(""),
            text("a"),
            text("b"),
            text("aa"),
            text("z"),
            text(&"x".repeat(23)),
            text(&"a".repeat(24)),
        ];
        let map = Value::Map(
            keys.iter()
                .rev()
                .map(|k| (k.clone(), Value::Null))
                .collect(),
        );
        assert!(!is_canonical(&map));
        let sorted = canonicalize(&map);
        assert!(
            is_canonical(&sorted),
            "the sorting path's order: {sorted:?}"
        );
        let Value::Map(entries) = &sorted else {
            unreachable!()
        };
        let mut by_rank = keys.clone();
        by_rank.sort_by(|a, b| canonical_rank(a).cmp(&canonical_rank(b)));
        let sorted_keys: Vec<Value> = entries.iter().map(|(k, _)| k.clone()).collect();
        assert_eq!(sorted_keys, by_rank);
        assert_eq!(encode(&sorted), encode(&map));
        // A repeated key is not canonical: the sorting path writes what it was given.
        let twice = Value::Map(vec![(int(1), Value::Null), (int(1), Value::Null)]);
        assert!(!is_canonical(&twice));
    }

    #[test]
    fn trailing_bytes_and_garbage_are_invalid_cbor() {
        assert_eq!(decode(&[0xa0, 0x00]).unwrap_err(), StatusCode::InvalidCbor);
        assert_eq!(decode(&[0xff]).unwrap_err(), StatusCode::InvalidCbor);
        assert_eq!(
            decode(&[0x5a, 0xff, 0xff, 0xff, 0xff]).unwrap_err(),
            StatusCode::InvalidCbor
        );
        assert_eq!(decode(&[]).unwrap_err(), StatusCode::InvalidCbor);
    }

    #[test]
    fn request_maps_need_integer_keys_and_no_duplicates() {
        assert_eq!(
            RequestMap::parse(&[0x80]).err(),
            Some(StatusCode::CborUnexpectedType)
        );
        assert_eq!(
            RequestMap::parse(&hex::decode("a1616101").unwrap()).err(),
            Some(StatusCode::CborUnexpectedType)
        );
        assert_eq!(
            RequestMap::parse(&hex::decode("a201010102").unwrap()).err(),
            Some(StatusCode::InvalidCbor)
        );
        let mut map = RequestMap::parse(&hex::decode("a2010218ff03").unwrap()).unwrap();
        assert_eq!(map.take(1), Some(Value::Integer(2.into())));
        assert_eq!(map.required(1).err(), Some(StatusCode::MissingParameter));
        assert!(RequestMap::parse(&[]).unwrap().take(1).is_none());
    }
}
