//! What the authenticator remembers across restarts besides its credentials: the PIN (as
//! LEFT(SHA-256(PIN), 16)), the pinRetries and uvRetries counters and the authenticatorConfig
//! settings. Kept in the keystore's sealed [`StateSlot::Authenticator`](crate::env::StateSlot),
//! written before the answer that depends on it leaves.
//!
//! The encoding is a CBOR map with integer keys, versioned so a later release can migrate it:
//!
//! ```text
//! { 1: version (2), 2: pinHash (16 bytes, absent = no PIN), 3: PIN length in code points,
//!   4: pinRetries, 5: minPINLength, 6: [minPinLengthRPIDs], 7: forcePINChange, 8: alwaysUv,
//!   9: uvRetries }
//! ```
//!
//! Version 1 (before built-in UV) had no key 9; it is read as "no UV retry spent yet".

use std::fmt;

use ciborium::Value;
use zeroize::Zeroizing;

use crate::authenticator::Authenticator;
use crate::cbor::{self, RequestMap};
use crate::ctap2::StatusCode;
use crate::env::{Clock, Keystore, Presence, Rng, StateSlot};

/// The version written. Version 1 is still read (see [`PersistentState::decode`]).
const VERSION: i128 = 2;
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

/// pinRetries after a reset or a correct PIN (CTAP 2.1 §6.5.2.2: at most 8).
pub const MAX_PIN_RETRIES: u8 = 8;
/// uvRetries after a reset or a successful verification, PIN or built-in (maxUvRetries: CTAP
/// allows 1 to 25; as many as the PIN's, so neither factor is the easier one to guess).
pub const MAX_UV_RETRIES: u8 = 8;
/// The minimum PIN length of a new key, in Unicode code points (CTAP 2.1 §6.5.1: 4).
pub const DEFAULT_MIN_PIN_LENGTH: u8 = 4;

/// The stored PIN: LEFT(SHA-256(PIN), 16) and its length in code points (for
/// setMinPINLength's forcePINChange rule).
#[derive(Clone, PartialEq, Eq)]
pub struct StoredPin {
    pub hash: Zeroizing<[u8; 16]>,
    pub code_points: u8,
}

impl fmt::Debug for StoredPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoredPin(<redacted>)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersistentState {
    pub pin: Option<StoredPin>,
    pub pin_retries: u8,
    pub min_pin_length: u8,
    /// RP IDs allowed to read minPINLength through the minPinLength extension.
    pub min_pin_length_rp_ids: Vec<String>,
    pub force_pin_change: bool,
    pub always_uv: bool,
    /// Built-in user verification attempts left; 0 = UV_BLOCKED until a PIN or a reset.
    pub uv_retries: u8,
}

impl Default for PersistentState {
    fn default() -> Self {
        PersistentState {
            pin: None,
            pin_retries: MAX_PIN_RETRIES,
            min_pin_length: DEFAULT_MIN_PIN_LENGTH,
            min_pin_length_rp_ids: Vec::new(),
            force_pin_change: false,
            always_uv: false,
            uv_retries: MAX_UV_RETRIES,
        }
    }
}

/// The stored bytes are not a state this version understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedState;

impl PersistentState {
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let uint = |n: u8| Value::Integer(n.into());
        let mut entries = vec![(KEY_VERSION as i64, Value::Integer((VERSION as i64).into()))];
        if let Some(pin) = &self.pin {
            entries.push((KEY_PIN_HASH as i64, Value::Bytes(pin.hash.to_vec())));
            entries.push((KEY_PIN_CODE_POINTS as i64, uint(pin.code_points)));
        }
        entries.extend([
            (KEY_PIN_RETRIES as i64, uint(self.pin_retries)),
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
        let mut value = cbor::int_map(entries);
        let bytes = Zeroizing::new(cbor::encode(&value));
        // The PIN hash also sits in the Value tree: wipe it there too.
        if let Value::Map(entries) = &mut value {
            for (_, v) in entries {
                if let Value::Bytes(b) = v {
                    zeroize::Zeroize::zeroize(b);
                }
            }
        }
        bytes
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
        if version != VERSION && version != VERSION_WITHOUT_UV_RETRIES {
            return Err(MalformedState);
        }
        let pin = match map.take(KEY_PIN_HASH) {
            Some(hash) => {
                let hash = Zeroizing::new(cbor::into_bytes(hash).map_err(|_| MalformedState)?);
                let hash: [u8; 16] = hash.as_slice().try_into().map_err(|_| MalformedState)?;
                let code_points = small(map.take(KEY_PIN_CODE_POINTS).ok_or(MalformedState)?)?;
                Some(StoredPin {
                    hash: Zeroizing::new(hash),
                    code_points,
                })
            }
            None => None,
        };
        let pin_retries = small(map.take(KEY_PIN_RETRIES).ok_or(MalformedState)?)?;
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
        if pin_retries > MAX_PIN_RETRIES || uv_retries > MAX_UV_RETRIES {
            return Err(MalformedState);
        }
        Ok(PersistentState {
            pin,
            pin_retries,
            min_pin_length,
            min_pin_length_rp_ids,
            force_pin_change,
            always_uv,
            uv_retries,
        })
    }
}

impl<K: Keystore, P: Presence, C: Clock, R: Rng> Authenticator<K, P, C, R> {
    /// The persistent state, read from the keystore on first use. Unreadable state fails the
    /// request (CTAP1_ERR_OTHER) rather than falling back to "no PIN".
    pub(crate) fn state(&mut self) -> Result<&PersistentState, StatusCode> {
        if self.persistent.is_none() {
            let state = match self.keystore.read_state(StateSlot::Authenticator)? {
                None => PersistentState::default(),
                Some(bytes) => PersistentState::decode(&bytes).map_err(|_| StatusCode::Other)?,
            };
            self.persistent = Some(state);
        }
        Ok(self.persistent.as_ref().expect("loaded above"))
    }

    /// Writes `state` durably, then makes it the current one: an answer built after this
    /// call never claims more than what survives a crash.
    pub(crate) fn save_state(&mut self, state: PersistentState) -> Result<(), StatusCode> {
        // Drop the cache first: if the write fails, the next request reads what is on disk.
        self.persistent = None;
        self.keystore
            .write_state(StateSlot::Authenticator, &state.encode())?;
        self.persistent = Some(state);
        Ok(())
    }

    /// Changes the persistent state with `change` and saves it.
    pub(crate) fn update_state(
        &mut self,
        change: impl FnOnce(&mut PersistentState),
    ) -> Result<(), StatusCode> {
        let mut state = self.state()?.clone();
        change(&mut state);
        self.save_state(state)
    }

    /// "Protected by some form of user verification": a PIN is set, or built-in UV exists.
    pub(crate) fn is_protected(&mut self) -> Result<bool, StatusCode> {
        let uv = self.presence.built_in_uv();
        Ok(uv || self.state()?.pin.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> PersistentState {
        PersistentState {
            pin: Some(StoredPin {
                hash: Zeroizing::new([0xab; 16]),
                code_points: 6,
            }),
            pin_retries: 5,
            min_pin_length: 6,
            min_pin_length_rp_ids: vec!["example.com".into(), "x.org".into()],
            force_pin_change: true,
            always_uv: true,
            uv_retries: 3,
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
        let mut value = cbor::decode(&encoded).unwrap();
        if let Value::Map(entries) = &mut value {
            entries[0].1 = Value::Integer(3.into());
        }
        assert_eq!(
            PersistentState::decode(&cbor::encode(&value)),
            Err(MalformedState),
            "a future version"
        );
        let mut retries = full();
        retries.pin_retries = 9;
        assert_eq!(
            PersistentState::decode(&retries.encode()),
            Err(MalformedState)
        );
        let mut retries = full();
        retries.uv_retries = MAX_UV_RETRIES + 1;
        assert_eq!(
            PersistentState::decode(&retries.encode()),
            Err(MalformedState)
        );
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

    #[test]
    fn version_1_state_is_migrated_with_full_uv_retries() {
        // What a release before built-in UV wrote: version 1, no key 9.
        let v1 = edited(&full(), |entries| {
            entries.retain(|(k, _)| *k != Value::Integer(KEY_UV_RETRIES.try_into().unwrap()));
            entries[0].1 = Value::Integer(1.into());
        });
        let migrated = PersistentState::decode(&v1).unwrap();
        assert_eq!(migrated.uv_retries, MAX_UV_RETRIES);
        assert_eq!(
            PersistentState {
                uv_retries: full().uv_retries,
                ..migrated.clone()
            },
            full(),
            "everything else is kept"
        );
        let Value::Map(entries) = cbor::decode(&migrated.encode()).unwrap() else {
            panic!("a map")
        };
        assert_eq!(
            entries[0].1,
            Value::Integer(2.into()),
            "written back as version 2"
        );
    }

    #[test]
    fn version_2_state_needs_its_uv_retries() {
        let without = edited(&full(), |entries| {
            entries.retain(|(k, _)| *k != Value::Integer(KEY_UV_RETRIES.try_into().unwrap()));
        });
        assert_eq!(PersistentState::decode(&without), Err(MalformedState));
    }

    #[test]
    fn debug_output_hides_the_pin_hash() {
        let debug = format!("{:?}", full());
        assert!(debug.contains("redacted"));
        assert!(!debug.contains("171"), "0xab bytes must not show: {debug}");
    }
}
