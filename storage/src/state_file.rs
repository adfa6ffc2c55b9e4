//! The authenticator's state slots (PIN state, large blobs): one sealed file per slot.
//!
//! ```text
//! file name: <slot name>.state
//! file:      "FIDO2DST" | format version (1) | master key id (8) | nonce (12) |
//!            AES-256-GCM(state key, contents, AAD = magic | version | key id | slot name)
//! ```
//!
//! The key id (public, derived from the master key) tells a file sealed under another master
//! key from a damaged one, for the error message. Both are errors, never an empty slot:
//! silently forgetting a PIN would weaken the key. (A reset removes the old key's files before
//! it ends, and open finishes an interrupted one, so none is left behind.)

use protocol::env::StateSlot;
use zeroize::Zeroizing;

use crate::crypto::{self, Keys, KEY_ID_LEN, NONCE_LEN};

const MAGIC: &[u8; 8] = b"FIDO2DST";
const FORMAT_VERSION: u8 = 1;
const HEADER_LEN: usize = MAGIC.len() + 1 + KEY_ID_LEN;
pub(crate) const SUFFIX: &str = ".state";

pub(crate) fn file_name(slot: StateSlot) -> String {
    format!("{}{SUFFIX}", slot.name())
}

/// The keystore's own state file beside the slots: the PIN verifier (see `crate::pin`).
pub(crate) const PIN_FILE: &str = "pin.state";
/// Its name in the associated data (a slot's file can never stand in for it).
pub(crate) const PIN_NAME: &str = "pin";

fn aad(key_id: &[u8; KEY_ID_LEN], name: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(HEADER_LEN + 16);
    aad.extend_from_slice(MAGIC);
    aad.push(FORMAT_VERSION);
    aad.extend_from_slice(key_id);
    aad.extend_from_slice(name.as_bytes());
    aad
}

pub(crate) fn seal(
    keys: &Keys,
    nonce: &[u8; NONCE_LEN],
    slot: StateSlot,
    contents: &[u8],
) -> Vec<u8> {
    seal_named(keys, nonce, slot.name(), contents)
}

/// [`seal`] for a file that is not a protocol slot, named `name` in the associated data.
pub(crate) fn seal_named(
    keys: &Keys,
    nonce: &[u8; NONCE_LEN],
    name: &str,
    contents: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + NONCE_LEN + contents.len() + 16);
    out.extend_from_slice(MAGIC);
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&keys.key_id);
    out.extend_from_slice(nonce);
    crypto::seal_into(
        &keys.state,
        nonce,
        &aad(&keys.key_id, name),
        contents,
        &mut out,
    );
    out
}

/// Why a state file could not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OpenError {
    /// Sealed under another master key: stale, not damaged.
    OtherMasterKey,
    /// Damaged: the reason.
    Corrupt(&'static str),
}

impl OpenError {
    /// Why the file does not open, for an error message.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            OpenError::OtherMasterKey => {
                "sealed under another master key: restored from another key, or its header \
                 damaged; move it away to start that part of the state afresh"
            }
            OpenError::Corrupt(reason) => reason,
        }
    }
}

pub(crate) fn open(
    keys: &Keys,
    slot: StateSlot,
    bytes: &[u8],
) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    open_named(keys, slot.name(), bytes)
}

/// [`open`] for a file sealed by [`seal_named`].
pub(crate) fn open_named(
    keys: &Keys,
    name: &str,
    bytes: &[u8],
) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    if bytes.len() < HEADER_LEN + NONCE_LEN {
        return Err(OpenError::Corrupt("truncated"));
    }
    if &bytes[..MAGIC.len()] != MAGIC {
        return Err(OpenError::Corrupt("bad magic"));
    }
    if bytes[MAGIC.len()] != FORMAT_VERSION {
        return Err(OpenError::Corrupt("unsupported format version"));
    }
    if bytes[MAGIC.len() + 1..HEADER_LEN] != keys.key_id {
        return Err(OpenError::OtherMasterKey);
    }
    let nonce: &[u8; NONCE_LEN] = bytes[HEADER_LEN..HEADER_LEN + NONCE_LEN]
        .try_into()
        .map_err(|_| OpenError::Corrupt("truncated"))?;
    crypto::open(
        &keys.state,
        nonce,
        &aad(&keys.key_id, name),
        &bytes[HEADER_LEN + NONCE_LEN..],
    )
    .ok_or(OpenError::Corrupt("authentication failed (tampered)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MasterKey;

    fn keys_from(byte: u8) -> Keys {
        Keys::derive(&MasterKey::generate(|b| b.fill(byte)))
    }

    #[test]
    fn state_round_trips_per_slot() {
        let keys = keys_from(1);
        let sealed = seal(&keys, &[5; 12], StateSlot::Authenticator, b"pin state");

        assert_eq!(
            open(&keys, StateSlot::Authenticator, &sealed)
                .unwrap()
                .as_slice(),
            b"pin state"
        );
        assert!(!sealed.windows(9).any(|w| w == b"pin state"));
        assert_eq!(
            open(&keys, StateSlot::LargeBlobs, &sealed),
            Err(OpenError::Corrupt("authentication failed (tampered)")),
            "a slot's file cannot stand in for another's"
        );
        assert_eq!(file_name(StateSlot::LargeBlobs), "large-blobs.state");
    }

    #[test]
    fn another_master_key_is_told_apart_from_damage() {
        let keys = keys_from(1);
        let sealed = seal(&keys, &[5; 12], StateSlot::Authenticator, b"x");
        let open_as = |bytes: &[u8]| open(&keys, StateSlot::Authenticator, bytes);

        assert_eq!(
            open(&keys_from(2), StateSlot::Authenticator, &sealed),
            Err(OpenError::OtherMasterKey)
        );
        for i in 0..sealed.len() {
            if (MAGIC.len() + 1..HEADER_LEN).contains(&i) {
                continue;
            }
            let mut flipped = sealed.clone();
            flipped[i] ^= 0x40;
            assert!(
                matches!(open_as(&flipped), Err(OpenError::Corrupt(_))),
                "byte {i}"
            );
        }
        for len in 0..sealed.len() {
            assert!(open_as(&sealed[..len]).is_err(), "length {len}");
        }
    }
}
