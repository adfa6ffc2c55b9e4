//! What the authenticator remembers across restarts besides its credentials and its PIN: the
//! PIN's length, the uvRetries counter and the authenticatorConfig settings. Kept in the
//! keystore's sealed [`StateSlot::Authenticator`](crate::env::StateSlot), written before the
//! answer that depends on it leaves. The PIN itself (a verifier, not its hash) and pinRetries
//! are the keystore's ([`Keystore::verify_pin`]).
//!
//! The encoding is a CBOR map with integer keys, versioned so a later release can migrate it:
//!
//! ```text
//! { 1: version (4), 3: PIN length in code points (absent: no PIN, or not known),
//!   5: minPINLength, 6: [minPinLengthRPIDs], 7: forcePINChange, 8: alwaysUv, 9: uvRetries,
//!   10: device identifier (16 bytes), 11: persistentPinUvAuthToken (32 bytes),
//!   12: credential store state (16 bytes), 13: pinComplexityPolicy,
//!   14: uvCountSinceLastPinEntry (absent: 0) }
//! ```
//!
//! Keys 10 to 14 came with version 4 (CTAP 2.2/2.3: `encIdentifier`, the `pcmr` persistent
//! token, `encCredStoreState`, `pinComplexityPolicy`, `uvCountSinceLastPinEntry`); each is absent until first needed, and a
//! version 3 state is read as having none of them. Keys 10 and 11 are secrets: the keystore
//! seals this slot like the rest of its state, and `Debug` never shows them.
//!
//! Versions 1 and 2 also kept the PIN as `2: pinHash` (LEFT(SHA-256(PIN), 16)) and `4:
//! pinRetries`; version 1 had no key 9 (read as "no UV retry spent yet"). Such a PIN is read as
//! a [`LegacyPin`], moved into the keystore with its retries at the first read, and the state is
//! written again as version 3, without it.

use std::fmt;

use ciborium::Value;
use zeroize::{Zeroize, Zeroizing};

use crate::cbor::{self, RequestMap};

pub use crate::env::MAX_PIN_RETRIES;

/// The version written. Versions 1 and 2 are still read (see [`PersistentState::decode`]).
const VERSION: i128 = 4;
/// The last version that kept the PIN hash.
const VERSION_WITH_PIN_HASH: i128 = 2;
/// The last version without uvRetries.
const VERSION_WITHOUT_UV_RETRIES: i128 = 1;
const KEY_VERSION: i128 = 1;
const KEY_PIN_HASH: i128 = 2;
const KEY_PIN_CODE_POINTS: i128 = 3;
const KEY_PIN_RETRIES: i128 = 4;
const KEY_MIN_PIN_LENGTH: i128 = 5;
const KEY_MIN_PIN_LENGTH_RP_IDS: i128 = 6;
const KEY_FORCE_PIN_CHANGE: i128 = 7;
const KEY_ALWAYS_UV: i128 = 8;
const KEY_UV_RETRIES: i128 = 9;
const KEY_DEVICE_IDENTIFIER: i128 = 10;
const KEY_PERSISTENT_TOKEN: i128 = 11;
const KEY_CRED_STORE_STATE: i128 = 12;
const KEY_PIN_COMPLEXITY_POLICY: i128 = 13;
const KEY_UV_COUNT_SINCE_PIN: i128 = 14;

/// Length of the device identifier and of the credential store state (CTAP 2.3 §6.4: 128 bits).
pub const IDENTIFIER_LEN: usize = 16;
/// Length of the persistentPinUvAuthToken (as the other pinUvAuthTokens: 32 bytes).
pub const PERSISTENT_TOKEN_LEN: usize = 32;

/// Secret bytes of the state: zeroized on drop, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<const N: usize>(pub Zeroizing<[u8; N]>);

impl<const N: usize> Secret<N> {
    /// `N` bytes from `fill_random`.
    pub fn random(fill_random: impl FnOnce(&mut [u8])) -> Self {
        let mut bytes = Zeroizing::new([0u8; N]);
        fill_random(bytes.as_mut_slice());
        Secret(bytes)
    }

    pub fn bytes(&self) -> &[u8; N] {
        &self.0
    }
}

impl<const N: usize> fmt::Debug for Secret<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<{N} bytes redacted>)")
    }
}

/// uvRetries after a reset or a successful verification, PIN or built-in (maxUvRetries: CTAP
/// allows 1 to 25; as many as the PIN's, so neither factor is the easier one to guess).
pub const MAX_UV_RETRIES: u8 = 8;
/// The minimum PIN length of a new key, in Unicode code points (CTAP 2.1 §6.5.1: 4).
pub const DEFAULT_MIN_PIN_LENGTH: u8 = 4;

/// A PIN as state versions 1 and 2 kept it: LEFT(SHA-256(PIN), 16) and the retries left.
#[derive(Clone, PartialEq, Eq)]
pub struct LegacyPin {
    pub hash: Zeroizing<[u8; 16]>,
    pub retries: u8,
}

impl fmt::Debug for LegacyPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LegacyPin(<redacted>, {} retries)", self.retries)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersistentState {
    /// The length in code points of the PIN the keystore holds, for setMinPINLength's
    /// forcePINChange rule; `None` without a PIN (or if a crash came between setting the PIN
    /// and writing this). Whether a PIN is set is the keystore's to say.
    pub pin_code_points: Option<u8>,
    pub min_pin_length: u8,
    /// RP IDs allowed to read minPINLength through the minPinLength extension.
    pub min_pin_length_rp_ids: Vec<String>,
    pub force_pin_change: bool,
    pub always_uv: bool,
    /// Built-in user verification attempts left; 0 = UV_BLOCKED until a PIN or a reset.
    pub uv_retries: u8,
    /// A PIN read from a version 1 or 2 state, to be moved into the keystore; never encoded.
    pub legacy_pin: Option<LegacyPin>,
    /// The identifier that getInfo's encIdentifier carries (CTAP 2.3 §6.4): drawn with the
    /// first persistent token, kept until authenticatorReset (a PIN change keeps it).
    pub device_identifier: Option<Secret<IDENTIFIER_LEN>>,
    /// The persistentPinUvAuthToken (CTAP 2.2 §6.5.2, permission pcmr): survives restarts,
    /// ends with a PIN change, forcePINChange or a reset.
    pub persistent_token: Option<Secret<PERSISTENT_TOKEN_LEN>>,
    /// What getInfo's encCredStoreState carries: a random value drawn anew before every
    /// change of a discoverable credential or its metadata.
    pub cred_store_state: Option<Secret<IDENTIFIER_LEN>>,
    /// pinComplexityPolicy (CTAP 2.3 §6.11.4): on, new PINs must pass
    /// [`crate::ctap2::pin::client_pin`]'s complexity rules; only a reset turns it off.
    pub pin_complexity_policy: bool,
    /// Built-in verifications since the PIN was last entered (getInfo 0x17, CTAP 2.2 §6.4).
    pub uv_count_since_pin: u32,
}

impl Default for PersistentState {
    fn default() -> Self {
        PersistentState {
            pin_code_points: None,
            min_pin_length: DEFAULT_MIN_PIN_LENGTH,
            min_pin_length_rp_ids: Vec::new(),
            force_pin_change: false,
            always_uv: false,
            uv_retries: MAX_UV_RETRIES,
            legacy_pin: None,
            device_identifier: None,
            persistent_token: None,
            cred_store_state: None,
            pin_complexity_policy: false,
            uv_count_since_pin: 0,
        }
    }
}

/// The stored bytes are not a state this version understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedState;

/// Wipes the byte strings of an encoded-and-done-with state map.
fn zeroize_value(value: Value) {
    if let Value::Map(entries) = value {
        for (_, mut value) in entries {
            if let Value::Bytes(bytes) = &mut value {
                bytes.zeroize();
            }
        }
    }
}

impl PersistentState {
    /// Version 4; a [`LegacyPin`] is left out.
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let uint = |n: u8| Value::Integer(n.into());
        let mut entries = vec![(KEY_VERSION as i64, Value::Integer((VERSION as i64).into()))];
        if let Some(code_points) = self.pin_code_points {
            entries.push((KEY_PIN_CODE_POINTS as i64, uint(code_points)));
        }
        entries.extend([
            (KEY_MIN_PIN_LENGTH as i64, uint(self.min_pin_length)),
            (
                KEY_MIN_PIN_LENGTH_RP_IDS as i64,
                Value::Array(
                    self.min_pin_length_rp_ids
                        .iter()
                        .map(|id| Value::Text(id.clone()))
                        .collect(),
                ),
            ),
            (
                KEY_FORCE_PIN_CHANGE as i64,
                Value::Bool(self.force_pin_change),
            ),
            (KEY_ALWAYS_UV as i64, Value::Bool(self.always_uv)),
            (KEY_UV_RETRIES as i64, uint(self.uv_retries)),
        ]);
        let secrets = [
            (
                KEY_DEVICE_IDENTIFIER,
                self.device_identifier.as_ref().map(|s| &s.bytes()[..]),
            ),
            (
                KEY_PERSISTENT_TOKEN,
                self.persistent_token.as_ref().map(|s| &s.bytes()[..]),
            ),
            (
                KEY_CRED_STORE_STATE,
                self.cred_store_state.as_ref().map(|s| &s.bytes()[..]),
            ),
        ];
        for (key, value) in secrets {
            if let Some(value) = value {
                entries.push((key as i64, Value::Bytes(value.to_vec())));
            }
        }
        if self.pin_complexity_policy {
            entries.push((KEY_PIN_COMPLEXITY_POLICY as i64, Value::Bool(true)));
        }
        if self.uv_count_since_pin != 0 {
            entries.push((
                KEY_UV_COUNT_SINCE_PIN as i64,
                Value::Integer(self.uv_count_since_pin.into()),
            ));
        }
        // The CBOR values are dropped with their copies of the secrets: the encoding is what
        // stays, in a Zeroizing buffer.
        let value = cbor::int_map(entries);
        let encoded = Zeroizing::new(cbor::encode(&value));
        zeroize_value(value);
        encoded
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, MalformedState> {
        let mut map = RequestMap::parse(bytes).map_err(|_| MalformedState)?;
        let small = |v: Value| -> Result<u8, MalformedState> {
            u8::try_from(cbor::into_int(v).map_err(|_| MalformedState)?).map_err(|_| MalformedState)
        };
        let flag = |v: Option<Value>| match v {
            Some(Value::Bool(b)) => Ok(b),
            _ => Err(MalformedState),
        };
        let version = map.take(KEY_VERSION).ok_or(MalformedState)?;
        let version = cbor::into_int(version).map_err(|_| MalformedState)?;
        if !(VERSION_WITHOUT_UV_RETRIES..=VERSION).contains(&version) {
            return Err(MalformedState);
        }
        let hash = match map.take(KEY_PIN_HASH) {
            Some(_) if version > VERSION_WITH_PIN_HASH => return Err(MalformedState),
            Some(hash) => {
                let hash = Zeroizing::new(cbor::into_bytes(hash).map_err(|_| MalformedState)?);
                let hash: [u8; 16] = hash.as_slice().try_into().map_err(|_| MalformedState)?;
                Some(Zeroizing::new(hash))
            }
            None => None,
        };
        let pin_code_points = match (version, &hash, map.take(KEY_PIN_CODE_POINTS)) {
            // Versions 1 and 2 kept the length exactly when they kept a PIN.
            (..=VERSION_WITH_PIN_HASH, Some(_), Some(n)) => Some(small(n)?),
            (..=VERSION_WITH_PIN_HASH, None, None) => None,
            (..=VERSION_WITH_PIN_HASH, _, _) => return Err(MalformedState),
            (_, _, n) => n.map(small).transpose()?,
        };
        let pin_retries = match map.take(KEY_PIN_RETRIES) {
            Some(_) if version > VERSION_WITH_PIN_HASH => return Err(MalformedState),
            Some(n) => Some(small(n)?),
            None if version > VERSION_WITH_PIN_HASH => None,
            None => return Err(MalformedState),
        };
        let min_pin_length = small(map.take(KEY_MIN_PIN_LENGTH).ok_or(MalformedState)?)?;
        let rp_ids = map.take(KEY_MIN_PIN_LENGTH_RP_IDS).ok_or(MalformedState)?;
        let min_pin_length_rp_ids = cbor::into_array(rp_ids)
            .map_err(|_| MalformedState)?
            .into_iter()
            .map(|id| cbor::into_text(id).map_err(|_| MalformedState))
            .collect::<Result<_, _>>()?;
        let force_pin_change = flag(map.take(KEY_FORCE_PIN_CHANGE))?;
        let always_uv = flag(map.take(KEY_ALWAYS_UV))?;
        // Migration from version 1: no built-in UV existed, so no attempt was spent.
        let uv_retries = match version {
            VERSION_WITHOUT_UV_RETRIES => MAX_UV_RETRIES,
            _ => small(map.take(KEY_UV_RETRIES).ok_or(MalformedState)?)?,
        };
        if pin_retries.is_some_and(|n| n > MAX_PIN_RETRIES) || uv_retries > MAX_UV_RETRIES {
            return Err(MalformedState);
        }
        fn secret<const N: usize>(
            value: Option<Value>,
        ) -> Result<Option<Secret<N>>, MalformedState> {
            let Some(value) = value else {
                return Ok(None);
            };
            let bytes = Zeroizing::new(cbor::into_bytes(value).map_err(|_| MalformedState)?);
            let array: [u8; N] = bytes.as_slice().try_into().map_err(|_| MalformedState)?;
            Ok(Some(Secret(Zeroizing::new(array))))
        }
        let device_identifier = secret(map.take(KEY_DEVICE_IDENTIFIER))?;
        let persistent_token = secret(map.take(KEY_PERSISTENT_TOKEN))?;
        let cred_store_state = secret(map.take(KEY_CRED_STORE_STATE))?;
        let pin_complexity_policy = match map.take(KEY_PIN_COMPLEXITY_POLICY) {
            None => false,
            value => flag(value)?,
        };
        let uv_count_since_pin = match map.take(KEY_UV_COUNT_SINCE_PIN) {
            None => 0,
            Some(n) => u32::try_from(cbor::into_int(n).map_err(|_| MalformedState)?)
                .map_err(|_| MalformedState)?,
        };
        Ok(PersistentState {
            pin_code_points,
            min_pin_length,
            min_pin_length_rp_ids,
            force_pin_change,
            always_uv,
            uv_retries,
            legacy_pin: hash.map(|hash| LegacyPin {
                hash,
                retries: pin_retries.unwrap_or(MAX_PIN_RETRIES),
            }),
            device_identifier,
            persistent_token,
            cred_store_state,
            pin_complexity_policy,
            uv_count_since_pin,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> PersistentState {
        PersistentState {
            pin_code_points: Some(6),
            min_pin_length: 6,
            min_pin_length_rp_ids: vec!["example.com".into(), "x.org".into()],
            force_pin_change: true,
            always_uv: true,
            uv_retries: 3,
            legacy_pin: None,
            device_identifier: Some(Secret(Zeroizing::new([0x1d; 16]))),
            persistent_token: Some(Secret(Zeroizing::new([0xab; 32]))),
            cred_store_state: Some(Secret(Zeroizing::new([0x5e; 16]))),
            pin_complexity_policy: true,
            uv_count_since_pin: 7,
        }
    }

    #[test]
    fn states_round_trip() {
        for state in [PersistentState::default(), full()] {
            assert_eq!(PersistentState::decode(&state.encode()), Ok(state));
        }
    }

    #[test]
    fn damaged_or_foreign_bytes_are_malformed() {
        let encoded = full().encode();
        for len in 0..encoded.len() {
            assert_eq!(
                PersistentState::decode(&encoded[..len]),
                Err(MalformedState),
                "length {len}"
            );
        }
        let future = edited(&full(), |entries| entries[0].1 = Value::Integer(5.into()));
        assert_eq!(
            PersistentState::decode(&future),
            Err(MalformedState),
            "a future version"
        );
        let mut retries = full();
        retries.uv_retries = MAX_UV_RETRIES + 1;
        assert_eq!(
            PersistentState::decode(&retries.encode()),
            Err(MalformedState)
        );
        let with_hash = edited(&full(), |entries| {
            entries.push((key(KEY_PIN_HASH), Value::Bytes(vec![0xab; 16])));
        });
        assert_eq!(
            PersistentState::decode(&with_hash),
            Err(MalformedState),
            "version 3 never holds a PIN hash"
        );
    }

    fn key(k: i128) -> Value {
        Value::Integer(k.try_into().unwrap())
    }

    /// Rewrites an encoded state: `change` edits its map entries.
    fn edited(state: &PersistentState, change: impl FnOnce(&mut Vec<(Value, Value)>)) -> Vec<u8> {
        let mut value = cbor::decode(&state.encode()).unwrap();
        let Value::Map(entries) = &mut value else {
            panic!("a map")
        };
        change(entries);
        cbor::encode(&value)
    }

    /// What a release before this one wrote: version 2 (or 1, without key 9), with the PIN
    /// hash and the retries.
    fn older(version: i64, pin: Option<([u8; 16], u8)>) -> Vec<u8> {
        edited(&full(), |entries| {
            entries[0].1 = Value::Integer(version.into());
            entries.retain(|(k, _)| *k != key(KEY_PIN_CODE_POINTS));
            entries.retain(|(k, _)| !(10..=14).contains(&i128::from(k.as_integer().unwrap())));
            if version == 1 {
                entries.retain(|(k, _)| *k != key(KEY_UV_RETRIES));
            }
            let retries = pin.map_or(MAX_PIN_RETRIES, |(_, retries)| retries);
            entries.push((key(KEY_PIN_RETRIES), Value::Integer(retries.into())));
            if let Some((hash, _)) = pin {
                entries.push((key(KEY_PIN_HASH), Value::Bytes(hash.to_vec())));
                entries.push((key(KEY_PIN_CODE_POINTS), Value::Integer(6.into())));
            }
        })
    }

    #[test]
    fn version_2_and_1_states_give_their_pin_as_a_legacy_pin() {
        let v2 = PersistentState::decode(&older(2, Some(([0xab; 16], 5)))).unwrap();
        let v1 = PersistentState::decode(&older(1, Some(([0xcd; 16], 8)))).unwrap();
        let v2_without_pin = PersistentState::decode(&older(2, None)).unwrap();

        assert_eq!(
            v2.legacy_pin,
            Some(LegacyPin {
                hash: Zeroizing::new([0xab; 16]),
                retries: 5
            })
        );
        assert_eq!(
            PersistentState {
                legacy_pin: None,
                ..v2.clone()
            },
            PersistentState {
                device_identifier: None,
                persistent_token: None,
                cred_store_state: None,
                pin_complexity_policy: false,
                uv_count_since_pin: 0,
                ..full()
            },
            "everything else is kept"
        );
        assert_eq!(v1.legacy_pin.as_ref().unwrap().hash.as_slice(), &[0xcd; 16]);
        assert_eq!(v1.uv_retries, MAX_UV_RETRIES, "version 1 had no uvRetries");
        assert_eq!(v2_without_pin.legacy_pin, None);
        assert_eq!(v2_without_pin.pin_code_points, None);
        let rewritten = cbor::decode(&v2.encode()).unwrap();
        let Value::Map(entries) = &rewritten else {
            panic!("a map")
        };
        assert_eq!(
            entries[0].1,
            Value::Integer(4.into()),
            "written as version 4"
        );
        assert!(!entries.iter().any(|(k, _)| *k == key(KEY_PIN_HASH)));
        assert!(!entries.iter().any(|(k, _)| *k == key(KEY_PIN_RETRIES)));
    }

    #[test]
    fn version_2_state_needs_its_uv_retries_and_its_pin_retries() {
        let without_uv = edited(&PersistentState::decode(&older(2, None)).unwrap(), |_| {});
        assert!(PersistentState::decode(&without_uv).is_ok());
        let no_uv_retries = {
            let mut value = cbor::decode(&older(2, None)).unwrap();
            if let Value::Map(entries) = &mut value {
                entries.retain(|(k, _)| *k != key(KEY_UV_RETRIES));
            }
            cbor::encode(&value)
        };
        let no_pin_retries = {
            let mut value = cbor::decode(&older(2, None)).unwrap();
            if let Value::Map(entries) = &mut value {
                entries.retain(|(k, _)| *k != key(KEY_PIN_RETRIES));
            }
            cbor::encode(&value)
        };
        assert_eq!(PersistentState::decode(&no_uv_retries), Err(MalformedState));
        assert_eq!(
            PersistentState::decode(&no_pin_retries),
            Err(MalformedState)
        );
    }

    /// A version 3 state (the release before CTAP 2.2's persistent token) has no identifier,
    /// no persistent token, no credential store state and no complexity policy.
    #[test]
    fn version_3_state_reads_without_the_ctap_2_2_keys() {
        let v3 = edited(&full(), |entries| {
            entries[0].1 = Value::Integer(3.into());
            entries.retain(|(k, _)| !(10..=14).contains(&i128::from(k.as_integer().unwrap())));
        });
        let state = PersistentState::decode(&v3).unwrap();
        assert_eq!(state.device_identifier, None);
        assert_eq!(state.persistent_token, None);
        assert_eq!(state.cred_store_state, None);
        assert!(!state.pin_complexity_policy);
        assert_eq!(state.uv_count_since_pin, 0);
        assert_eq!(state.min_pin_length, 6, "the rest is read as before");
    }

    #[test]
    fn ctap_2_2_keys_of_the_wrong_size_or_type_are_malformed() {
        for (k, bad) in [
            (KEY_DEVICE_IDENTIFIER, Value::Bytes(vec![1; 15])),
            (KEY_PERSISTENT_TOKEN, Value::Bytes(vec![1; 16])),
            (KEY_CRED_STORE_STATE, Value::Text("x".into())),
            (KEY_PIN_COMPLEXITY_POLICY, Value::Integer(1.into())),
        ] {
            let damaged = edited(&full(), |entries| {
                for entry in entries.iter_mut() {
                    if entry.0 == key(k) {
                        entry.1 = bad.clone();
                    }
                }
            });
            assert_eq!(
                PersistentState::decode(&damaged),
                Err(MalformedState),
                "key {k}"
            );
        }
    }

    #[test]
    fn debug_output_hides_the_persistent_token_and_the_identifier() {
        let debug = format!("{:?}", full());
        assert!(debug.contains("redacted"));
        for secret in ["171", "29", "94"] {
            assert!(!debug.contains(secret), "{secret} must not show: {debug}");
        }
    }

    #[test]
    fn debug_output_hides_the_pin_hash() {
        let state = PersistentState::decode(&older(2, Some(([0xab; 16], 5)))).unwrap();
        let debug = format!("{state:?}");
        assert!(debug.contains("redacted"));
        assert!(!debug.contains("171"), "0xab bytes must not show: {debug}");
    }
}
