//! Credential IDs: the key material (and the credential's extension state) wrapped with
//! AES-256-GCM and bound to the RP ID hash.
//!
//! ```text
//! version | nonce (12) | AES-256-GCM(wrap key,
//!     plaintext = flags (bit 0: discoverable, bit 1: UV-only secrets bound to the PIN) |
//!                 algorithm | u16 key length | key | extras,
//!     AAD = version | RP ID hash)
//! ```
//!
//! The version names the format and the kind of key material: 0x01 a software key (32 bytes),
//! 0x02 a TPM blob (its private and public areas, about 220 bytes). A non-discoverable
//! credential's ID carries its key material and extension state; a discoverable one's carries
//! neither (they are in its record) and only names the record and proves it is ours.
//!
//! A plain software credential's ID is 65 bytes, a discoverable one 33 (both fit a U2F key
//! handle); extension state (`CredentialExtras`, empty by default) makes a non-discoverable ID
//! longer. Unwrapping checks only public facts (length, version) before AES-GCM: an ID that is
//! truncated, tampered with, bound to another RP or made by another keystore (or backend) is
//! simply not ours.

use aes_gcm::Aes256Gcm;
use protocol::env::{Algorithm, CredentialExtras, KeyMaterial};
use zeroize::Zeroizing;

use crate::crypto::{self, NONCE_LEN, TAG_LEN};

/// IDs holding a software private key (the file backend).
pub(crate) const VERSION_SOFTWARE: u8 = 0x01;
/// IDs holding a TPM blob (the TPM backend).
#[cfg_attr(not(feature = "tpm"), allow(dead_code))]
pub(crate) const VERSION_TPM: u8 = 0x02;
/// The longest encoded `CredentialExtras`: version | credProtect | flags | hmac-secret (64) |
/// credBlob (1 + 255) | largeBlobKey (32).
pub(crate) const MAX_EXTRAS_LEN: usize = 3 + 64 + 1 + 255 + 32;
const FLAG_DISCOVERABLE: u8 = 0x01;
/// The credential's UV-only secrets are bound to the PIN (see `crate::pin::UvKeys`).
const FLAG_PIN_BOUND: u8 = 0x02;
/// flags | algorithm | u16 key length.
const PLAINTEXT_HEADER_LEN: usize = 4;
/// The shortest ID we issue (an empty key, no extras); shorter ones are not ours.
const MIN_ID_LEN: usize = 1 + NONCE_LEN + PLAINTEXT_HEADER_LEN + TAG_LEN;

/// What a credential ID holds.
#[derive(Debug)]
pub(crate) struct Unwrapped {
    pub(crate) discoverable: bool,
    pub(crate) pin_bound: bool,
    pub(crate) algorithm: Algorithm,
    pub(crate) key: KeyMaterial,
    pub(crate) extras: CredentialExtras,
}

fn aad(version: u8, rp_id_hash: &[u8; 32]) -> [u8; 33] {
    let mut aad = [0u8; 33];
    aad[0] = version;
    aad[1..].copy_from_slice(rp_id_hash);
    aad
}

/// The nonce of an ID (unique per credential); `None` for an ID too short to be ours.
pub(crate) fn nonce(id: &[u8]) -> Option<&[u8]> {
    id.get(1..1 + NONCE_LEN)
}

/// The length of the ID that [`wrap`] makes for a key and extras of these lengths.
pub(crate) fn id_len(key_len: usize, extras_len: usize) -> usize {
    MIN_ID_LEN + key_len + extras_len
}

/// Wraps `key` (at most 65535 bytes: a raw scalar or a TPM blob) and the encoded `extras`.
#[cfg(test)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn wrap(
    cipher: &Aes256Gcm,
    version: u8,
    nonce: &[u8; NONCE_LEN],
    rp_id_hash: &[u8; 32],
    discoverable: bool,
    algorithm: Algorithm,
    key: &[u8],
    extras: &CredentialExtras,
) -> Vec<u8> {
    wrap_bound(
        cipher,
        version,
        nonce,
        rp_id_hash,
        (discoverable, false),
        algorithm,
        key,
        extras,
    )
}

/// [`wrap`] of a credential whose `extras` may be bound to the PIN: `(discoverable,
/// pin_bound)`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn wrap_bound(
    cipher: &Aes256Gcm,
    version: u8,
    nonce: &[u8; NONCE_LEN],
    rp_id_hash: &[u8; 32],
    (discoverable, pin_bound): (bool, bool),
    algorithm: Algorithm,
    key: &[u8],
    extras: &CredentialExtras,
) -> Vec<u8> {
    let extras = extras.encode();
    let key_len = u16::try_from(key.len()).expect("key material is far below 64 KiB");
    let mut plaintext = Zeroizing::new(Vec::with_capacity(
        PLAINTEXT_HEADER_LEN + key.len() + extras.len(),
    ));
    let flags = if discoverable { FLAG_DISCOVERABLE } else { 0 }
        | if pin_bound { FLAG_PIN_BOUND } else { 0 };
    plaintext.push(flags);
    plaintext.push(algorithm.to_byte());
    plaintext.extend_from_slice(&key_len.to_be_bytes());
    plaintext.extend_from_slice(key);
    plaintext.extend_from_slice(&extras);

    let id = seal_plaintext(cipher, version, nonce, rp_id_hash, &plaintext);
    debug_assert_eq!(id.len(), id_len(key.len(), extras.len()));
    id
}

/// version | nonce | AES-256-GCM(`plaintext`), bound to `rp_id_hash`.
pub(crate) fn seal_plaintext(
    cipher: &Aes256Gcm,
    version: u8,
    nonce: &[u8; NONCE_LEN],
    rp_id_hash: &[u8; 32],
    plaintext: &[u8],
) -> Vec<u8> {
    let mut id = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + TAG_LEN);
    id.push(version);
    id.extend_from_slice(nonce);
    crypto::seal_into(cipher, nonce, &aad(version, rp_id_hash), plaintext, &mut id);
    id
}

/// Opens an ID of `version` (the backend's) bound to `rp_id_hash`; `None` if it is not ours.
pub(crate) fn unwrap(
    cipher: &Aes256Gcm,
    version: u8,
    rp_id_hash: &[u8; 32],
    id: &[u8],
) -> Option<Unwrapped> {
    if id.len() < MIN_ID_LEN || id[0] != version {
        return None;
    }
    let nonce: &[u8; NONCE_LEN] = id[1..1 + NONCE_LEN].try_into().ok()?;
    let plaintext = crypto::open(
        cipher,
        nonce,
        &aad(version, rp_id_hash),
        &id[1 + NONCE_LEN..],
    )?;
    // Only we can seal, so a malformed plaintext means a bug or another version: not ours.
    let flags = plaintext[0];
    if flags & !(FLAG_DISCOVERABLE | FLAG_PIN_BOUND) != 0 {
        return None;
    }
    let algorithm = Algorithm::from_byte(plaintext[1])?;
    let key_len = usize::from(u16::from_be_bytes([plaintext[2], plaintext[3]]));
    let key = plaintext.get(PLAINTEXT_HEADER_LEN..PLAINTEXT_HEADER_LEN + key_len)?;
    let extras = CredentialExtras::decode(&plaintext[PLAINTEXT_HEADER_LEN + key_len..]).ok()?;
    Some(Unwrapped {
        discoverable: flags & FLAG_DISCOVERABLE != 0,
        pin_bound: flags & FLAG_PIN_BOUND != 0,
        algorithm,
        key: KeyMaterial::new(key.to_vec()),
        extras,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{Keys, MasterKey};
    use protocol::env::CredProtect;

    const RP: [u8; 32] = [0x11; 32];
    const SECRET: [u8; 32] = [0x5A; 32];

    fn keys_from(byte: u8) -> Keys {
        Keys::derive(&MasterKey::generate(|b| b.fill(byte)))
    }

    #[test]
    fn wraps_and_unwraps_both_kinds_and_algorithms() {
        let keys = keys_from(1);
        for (discoverable, algorithm) in [
            (false, Algorithm::Es256),
            (true, Algorithm::Es256),
            (false, Algorithm::EdDsa),
            (true, Algorithm::EdDsa),
        ] {
            let id = wrap(
                &keys.wrap,
                VERSION_SOFTWARE,
                &[9; 12],
                &RP,
                discoverable,
                algorithm,
                &SECRET,
                &CredentialExtras::default(),
            );

            let unwrapped = unwrap(&keys.wrap, VERSION_SOFTWARE, &RP, &id).unwrap();

            assert_eq!(id.len(), 65, "a plain ID fits a U2F key handle");
            assert_eq!(id[0], VERSION_SOFTWARE);
            assert_eq!(unwrapped.discoverable, discoverable);
            assert_eq!(unwrapped.algorithm, algorithm);
            assert_eq!(unwrapped.key.as_bytes(), &SECRET);
            assert_eq!(unwrapped.extras, CredentialExtras::default());
        }
    }

    #[test]
    fn extras_and_long_keys_travel_inside_the_id() {
        let keys = keys_from(1);
        let extras = CredentialExtras {
            cred_protect: CredProtect::UserVerificationRequired,
            cred_blob: Some(b"blob".to_vec()),
            ..CredentialExtras::default()
        };
        let tpm_like_blob = [0x77; 220];

        let id = wrap(
            &keys.wrap,
            VERSION_SOFTWARE,
            &[9; 12],
            &RP,
            false,
            Algorithm::Es256,
            &tpm_like_blob,
            &extras,
        );
        let unwrapped = unwrap(&keys.wrap, VERSION_SOFTWARE, &RP, &id).unwrap();

        assert_eq!(id.len(), id_len(220, extras.encode().len()));
        assert_eq!(unwrapped.key.as_bytes(), &tpm_like_blob);
        assert_eq!(unwrapped.extras, extras);
        assert!(!id.windows(4).any(|w| w == b"blob"));
    }

    #[test]
    fn the_id_does_not_contain_the_private_key() {
        let keys = keys_from(1);

        let id = wrap(
            &keys.wrap,
            VERSION_SOFTWARE,
            &[9; 12],
            &RP,
            false,
            Algorithm::EdDsa,
            &SECRET,
            &CredentialExtras::default(),
        );

        assert!(!id.windows(8).any(|w| w == &SECRET[..8]));
    }

    #[test]
    fn every_flipped_bit_makes_the_id_foreign() {
        let keys = keys_from(1);
        let id = wrap(
            &keys.wrap,
            VERSION_SOFTWARE,
            &[9; 12],
            &RP,
            true,
            Algorithm::Es256,
            &SECRET,
            &CredentialExtras::default(),
        );

        for i in 0..id.len() {
            for bit in 0..8 {
                let mut tampered = id.clone();
                tampered[i] ^= 1 << bit;

                assert!(
                    unwrap(&keys.wrap, VERSION_SOFTWARE, &RP, &tampered).is_none(),
                    "byte {i} bit {bit}"
                );
            }
        }
    }

    #[test]
    fn truncated_extended_other_rp_and_other_key_are_foreign() {
        let keys = keys_from(1);
        let id = wrap(
            &keys.wrap,
            VERSION_SOFTWARE,
            &[9; 12],
            &RP,
            false,
            Algorithm::Es256,
            &SECRET,
            &CredentialExtras::default(),
        );
        let mut extended = id.clone();
        extended.push(0);

        for len in 0..id.len() {
            assert!(
                unwrap(&keys.wrap, VERSION_SOFTWARE, &RP, &id[..len]).is_none(),
                "length {len}"
            );
        }
        assert!(unwrap(&keys.wrap, VERSION_SOFTWARE, &RP, &extended).is_none());
        assert!(unwrap(&keys.wrap, VERSION_SOFTWARE, &[0x12; 32], &id).is_none());
        assert!(unwrap(&keys_from(2).wrap, VERSION_SOFTWARE, &RP, &id).is_none());
        assert!(unwrap(&keys.record, VERSION_SOFTWARE, &RP, &id).is_none());
    }

    #[test]
    fn an_id_of_the_other_backend_is_foreign_even_under_the_same_key() {
        let keys = keys_from(1);
        let software = wrap(
            &keys.wrap,
            VERSION_SOFTWARE,
            &[9; 12],
            &RP,
            false,
            Algorithm::Es256,
            &SECRET,
            &CredentialExtras::default(),
        );
        let mut relabelled = software.clone();
        relabelled[0] = VERSION_TPM;

        assert!(unwrap(&keys.wrap, VERSION_TPM, &RP, &software).is_none());
        assert!(unwrap(&keys.wrap, VERSION_TPM, &RP, &relabelled).is_none());
        assert!(unwrap(&keys.wrap, VERSION_SOFTWARE, &RP, &software).is_some());
    }

    #[test]
    fn max_extras_len_is_the_encoding_of_every_extension_at_its_largest() {
        let largest = CredentialExtras {
            cred_protect: CredProtect::UserVerificationRequired,
            hmac_secret: Some(protocol::env::HmacSecret {
                with_uv: Zeroizing::new([1; 32]),
                without_uv: Zeroizing::new([2; 32]),
            }),
            cred_blob: Some(vec![3; 255]),
            large_blob_key: Some(Zeroizing::new([4; 32])),
            third_party_payment: true,
        };

        assert_eq!(largest.encode().len(), MAX_EXTRAS_LEN);
    }
}
