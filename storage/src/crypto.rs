//! The master key, the subkeys derived from it and AES-256-GCM sealing.

use std::fmt;

use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes256Gcm, KeyInit};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::backend::KeyAuth;
use crate::pin::PinAuth;

pub(crate) const KEY_LEN: usize = 32;
pub(crate) const NONCE_LEN: usize = 12;
pub(crate) const TAG_LEN: usize = 16;

/// HKDF-SHA256 `info` labels: one subkey per use, so a ciphertext of one kind can never be
/// passed off as another.
const LABEL_CREDENTIAL_WRAP: &[u8] = b"fido2d/v1/credential-wrap";
const LABEL_RECORD: &[u8] = b"fido2d/v1/record";
const LABEL_COUNTER: &[u8] = b"fido2d/v1/counter";
const LABEL_STATE: &[u8] = b"fido2d/v1/state";
const LABEL_KEY_ID: &[u8] = b"fido2d/v1/key-id";
const LABEL_KEY_AUTH: &[u8] = b"fido2d/v1/key-auth";
const LABEL_PIN_AUTH: &[u8] = b"fido2d/v1/pin-auth";
/// Length of a master key's public identifier.
pub(crate) const KEY_ID_LEN: usize = 8;

/// `master.key`: magic | version | key | first 8 bytes of SHA-256(magic | version | key).
const MASTER_MAGIC: &[u8; 8] = b"FIDO2DMK";
const MASTER_VERSION: u8 = 1;
const MASTER_CHECK_LEN: usize = 8;
pub(crate) const MASTER_FILE_LEN: usize = MASTER_MAGIC.len() + 1 + KEY_LEN + MASTER_CHECK_LEN;

/// The 256-bit master secret. Lives only long enough to derive the subkeys (and to be sealed).
pub struct MasterKey(Zeroizing<[u8; KEY_LEN]>);

impl MasterKey {
    /// The secret itself, for a backend to seal.
    #[cfg_attr(not(feature = "tpm"), allow(dead_code))]
    pub(crate) fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// A master secret a backend unsealed; `None` unless it is exactly 32 bytes.
    #[cfg_attr(not(feature = "tpm"), allow(dead_code))]
    pub(crate) fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        key.copy_from_slice(bytes.get(..KEY_LEN).filter(|_| bytes.len() == KEY_LEN)?);
        Some(MasterKey(key))
    }

    pub(crate) fn generate(fill_random: impl FnOnce(&mut [u8])) -> Self {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        fill_random(key.as_mut_slice());
        MasterKey(key)
    }

    /// The bytes of `master.key`.
    pub(crate) fn to_file(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(MASTER_FILE_LEN));
        out.extend_from_slice(MASTER_MAGIC);
        out.push(MASTER_VERSION);
        out.extend_from_slice(self.0.as_slice());
        let check = Sha256::digest(out.as_slice());
        out.extend_from_slice(&check[..MASTER_CHECK_LEN]);
        out
    }

    /// Parses `master.key`; the error is the reason it is unusable.
    pub(crate) fn from_file(bytes: &[u8]) -> Result<Self, String> {
        let magic_len = MASTER_MAGIC.len();
        if bytes.len() < magic_len + 1 {
            if MASTER_MAGIC.starts_with(bytes) {
                return Err(format!(
                    "truncated: {} bytes, expected {MASTER_FILE_LEN}",
                    bytes.len()
                ));
            }
            return Err("bad magic".into());
        }
        if &bytes[..magic_len] != MASTER_MAGIC {
            return Err("bad magic".into());
        }
        if bytes[magic_len] != MASTER_VERSION {
            return Err(format!("unsupported version {}", bytes[magic_len]));
        }
        if bytes.len() != MASTER_FILE_LEN {
            let what = if bytes.len() < MASTER_FILE_LEN {
                "truncated"
            } else {
                "too long"
            };
            return Err(format!(
                "{what}: {} bytes, expected {MASTER_FILE_LEN}",
                bytes.len()
            ));
        }
        let (body, check) = bytes.split_at(MASTER_FILE_LEN - MASTER_CHECK_LEN);
        if Sha256::digest(body)[..MASTER_CHECK_LEN] != *check {
            return Err("checksum mismatch".into());
        }
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        key.copy_from_slice(&body[magic_len + 1..]);
        Ok(MasterKey(key))
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

/// The subkeys, as ready-to-use ciphers (zeroized on drop by aes-gcm).
pub(crate) struct Keys {
    /// Wraps private keys into credential IDs.
    pub(crate) wrap: Aes256Gcm,
    /// Seals discoverable credential records.
    pub(crate) record: Aes256Gcm,
    /// Seals the signature counter file.
    pub(crate) counter: Aes256Gcm,
    /// Seals the authenticator's state slots (PIN state, large blobs).
    pub(crate) state: Aes256Gcm,
    /// Names the master key without revealing it: a file sealed under another master key
    /// (restored from elsewhere) is told apart from a damaged one in error messages, and the
    /// TPM's NV counters of this key are found by it.
    pub(crate) key_id: [u8; KEY_ID_LEN],
    /// Derives each credential key's authorization (a TPM key's authValue) from its RP ID hash.
    key_auth: Zeroizing<[u8; KEY_LEN]>,
    /// Derives the PIN verifier's authorization from the PIN hash.
    pin_auth: Zeroizing<[u8; KEY_LEN]>,
}

impl Keys {
    pub(crate) fn derive(master: &MasterKey) -> Self {
        let hkdf = Hkdf::<Sha256>::new(None, master.0.as_slice());
        let subkey = |label: &[u8]| {
            let mut okm = Zeroizing::new([0u8; KEY_LEN]);
            hkdf.expand(label, okm.as_mut_slice())
                .expect("32 bytes is a valid HKDF-SHA256 output length");
            Aes256Gcm::new_from_slice(okm.as_slice()).expect("AES-256 takes a 32-byte key")
        };
        let mut key_id = [0u8; KEY_ID_LEN];
        hkdf.expand(LABEL_KEY_ID, &mut key_id)
            .expect("8 bytes is a valid HKDF-SHA256 output length");
        let mut key_auth = Zeroizing::new([0u8; KEY_LEN]);
        hkdf.expand(LABEL_KEY_AUTH, key_auth.as_mut_slice())
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        let mut pin_auth = Zeroizing::new([0u8; KEY_LEN]);
        hkdf.expand(LABEL_PIN_AUTH, pin_auth.as_mut_slice())
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Keys {
            wrap: subkey(LABEL_CREDENTIAL_WRAP),
            record: subkey(LABEL_RECORD),
            counter: subkey(LABEL_COUNTER),
            state: subkey(LABEL_STATE),
            key_id,
            key_auth,
            pin_auth,
        }
    }

    /// HMAC-SHA256(key-auth subkey, RP ID hash): the authorization of the keys of one RP.
    pub(crate) fn key_auth(&self, rp_id_hash: &[u8; 32]) -> KeyAuth {
        let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(self.key_auth.as_slice())
            .expect("HMAC takes a key of any length");
        mac.update(rp_id_hash);
        let mut auth = Zeroizing::new([0u8; KEY_LEN]);
        auth.copy_from_slice(&mac.finalize().into_bytes());
        KeyAuth(auth)
    }

    /// HMAC-SHA256(pin-auth subkey, PIN hash): what the PIN verifier is opened with. The PIN
    /// hash itself never reaches a backend, a file or the TPM.
    pub(crate) fn pin_auth(&self, pin_hash: &[u8]) -> PinAuth {
        let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(self.pin_auth.as_slice())
            .expect("HMAC takes a key of any length");
        mac.update(pin_hash);
        let mut auth = Zeroizing::new([0u8; KEY_LEN]);
        auth.copy_from_slice(&mac.finalize().into_bytes());
        PinAuth(auth)
    }
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keys(<redacted>)")
    }
}

/// Appends AES-256-GCM(`plaintext`) and its tag to `out`. Room is reserved first, so the
/// plaintext is never left behind in a reallocated buffer.
pub(crate) fn seal_into(
    cipher: &Aes256Gcm,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    plaintext: &[u8],
    out: &mut Vec<u8>,
) {
    out.reserve(plaintext.len() + TAG_LEN);
    let start = out.len();
    out.extend_from_slice(plaintext);
    let tag = cipher
        .encrypt_inout_detached(nonce.into(), aad, (&mut out[start..]).into())
        .expect("AES-GCM accepts messages of this size");
    out.extend_from_slice(tag.as_slice());
}

/// Decrypts ciphertext | tag; `None` if the tag does not verify (wrong key, nonce, AAD or data).
pub(crate) fn open(
    cipher: &Aes256Gcm,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    sealed: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    let body_len = sealed.len().checked_sub(TAG_LEN)?;
    let (body, tag) = sealed.split_at(body_len);
    let tag = aes_gcm::Tag::try_from(tag).ok()?;
    let mut buffer = Zeroizing::new(body.to_vec());
    cipher
        .decrypt_inout_detached(nonce.into(), aad, buffer.as_mut_slice().into(), &tag)
        .ok()?;
    Some(buffer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master(byte: u8) -> MasterKey {
        MasterKey::generate(|b| b.fill(byte))
    }

    #[test]
    fn master_key_file_round_trips() {
        let file = master(7).to_file();

        let parsed = MasterKey::from_file(&file).unwrap();

        assert_eq!(file.len(), MASTER_FILE_LEN);
        assert_eq!(parsed.0.as_slice(), &[7u8; KEY_LEN]);
    }

    #[test]
    fn corrupt_master_key_files_are_refused_with_a_reason() {
        let good = master(7).to_file();
        let mut bad_magic = good.to_vec();
        bad_magic[0] ^= 1;
        let mut bad_version = good.to_vec();
        bad_version[8] = 9;
        let mut flipped = good.to_vec();
        flipped[20] ^= 1;
        let mut long = good.to_vec();
        long.push(0);

        let reason = |bytes: &[u8]| MasterKey::from_file(bytes).unwrap_err();

        assert_eq!(reason(&bad_magic), "bad magic");
        assert_eq!(reason(b""), "truncated: 0 bytes, expected 49");
        assert_eq!(reason(&good[..4]), "truncated: 4 bytes, expected 49");
        assert_eq!(reason(&good[..30]), "truncated: 30 bytes, expected 49");
        assert_eq!(reason(&bad_version), "unsupported version 9");
        assert_eq!(reason(&flipped), "checksum mismatch");
        assert_eq!(reason(&long), "too long: 50 bytes, expected 49");
    }

    #[test]
    fn subkeys_differ_from_each_other() {
        let keys = Keys::derive(&master(1));
        let nonce = [0u8; NONCE_LEN];
        let mut sealed = Vec::new();
        seal_into(&keys.wrap, &nonce, b"", b"message", &mut sealed);

        assert!(open(&keys.wrap, &nonce, b"", &sealed).is_some());
        assert!(open(&keys.record, &nonce, b"", &sealed).is_none());
        assert!(open(&keys.counter, &nonce, b"", &sealed).is_none());
        assert!(open(&keys.state, &nonce, b"", &sealed).is_none());
    }

    #[test]
    fn the_key_id_names_the_master_key_without_being_part_of_it() {
        let keys = Keys::derive(&master(1));

        assert_eq!(keys.key_id, Keys::derive(&master(1)).key_id);
        assert_ne!(keys.key_id, Keys::derive(&master(2)).key_id);
        assert!(!master(1)
            .to_file()
            .windows(KEY_ID_LEN)
            .any(|w| w == keys.key_id));
    }

    #[test]
    fn open_refuses_other_aad_nonce_key_and_short_input() {
        let keys = Keys::derive(&master(1));
        let other = Keys::derive(&master(2));
        let nonce = [3u8; NONCE_LEN];
        let mut sealed = vec![0xAA];
        seal_into(&keys.record, &nonce, b"aad", b"message", &mut sealed);
        let sealed = &sealed[1..];

        assert_eq!(
            open(&keys.record, &nonce, b"aad", sealed)
                .unwrap()
                .as_slice(),
            b"message"
        );
        assert!(open(&keys.record, &nonce, b"aaD", sealed).is_none());
        assert!(open(&keys.record, &[4u8; NONCE_LEN], b"aad", sealed).is_none());
        assert!(open(&other.record, &nonce, b"aad", sealed).is_none());
        assert!(open(&keys.record, &nonce, b"aad", &sealed[..TAG_LEN - 1]).is_none());
    }

    #[test]
    fn key_auth_differs_per_rp_and_per_master_key() {
        let keys = Keys::derive(&master(1));
        let auth = |keys: &Keys, rp: u8| *keys.key_auth(&[rp; 32]).as_bytes();

        assert_eq!(auth(&keys, 1), auth(&Keys::derive(&master(1)), 1));
        assert_ne!(auth(&keys, 1), auth(&keys, 2));
        assert_ne!(auth(&keys, 1), auth(&Keys::derive(&master(2)), 1));
        assert_ne!(auth(&keys, 1), [0u8; 32]);
        assert_eq!(
            format!("{:?}", keys.key_auth(&[1; 32])),
            "KeyAuth(<redacted>)"
        );
    }

    #[test]
    fn debug_output_hides_keys() {
        let debug = format!("{:?} {:?}", master(0x41), Keys::derive(&master(0x41)));

        assert_eq!(debug, "MasterKey(<redacted>) Keys(<redacted>)");
    }
}
