//! What the authenticator keeps with a credential beyond its key: the state of the extensions
//! it was made with (credProtect, hmac-secret, credBlob, largeBlobKey, thirdPartyPayment).
//!
//! The protocol owns this encoding; a keystore stores the bytes sealed with the credential (in a
//! non-discoverable credential's ID, in a discoverable credential's record) and gives them back
//! unchanged. The bytes hold secrets (the hmac-secret CredRandom values): keep them sealed.
//!
//! ```text
//! empty                                  nothing beyond the defaults (U2F, plain credentials)
//! version (1) | credProtect level (1..=3) | present flags |
//!     [CredRandomWithUV (32) | CredRandomWithoutUV (32)]   flag 0x01, hmac-secret
//!     [u8 len | credBlob (len <= 255)]                     flag 0x02
//!     [largeBlobKey (32)]                                  flag 0x04
//!     (nothing)                                            flag 0x08, thirdPartyPayment
//! ```

use std::fmt;

use zeroize::Zeroizing;

const VERSION: u8 = 1;
const HAS_HMAC_SECRET: u8 = 0x01;
const HAS_CRED_BLOB: u8 = 0x02;
const HAS_LARGE_BLOB_KEY: u8 = 0x04;
const THIRD_PARTY_PAYMENT: u8 = 0x08;
const KNOWN_FLAGS: u8 = HAS_HMAC_SECRET | HAS_CRED_BLOB | HAS_LARGE_BLOB_KEY | THIRD_PARTY_PAYMENT;

/// credProtect (CTAP 2.1 §12.1): when a credential may be used without user verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum CredProtect {
    /// Level 1: usable without UV, also by discovery.
    #[default]
    UserVerificationOptional,
    /// Level 2: without UV only when the platform names its ID in an allowList.
    UserVerificationOptionalWithCredentialIdList,
    /// Level 3: only with UV.
    UserVerificationRequired,
}

impl CredProtect {
    /// The level number used on the wire (1, 2 or 3).
    pub fn level(self) -> u8 {
        match self {
            CredProtect::UserVerificationOptional => 1,
            CredProtect::UserVerificationOptionalWithCredentialIdList => 2,
            CredProtect::UserVerificationRequired => 3,
        }
    }

    pub fn from_level(level: u8) -> Option<Self> {
        match level {
            1 => Some(CredProtect::UserVerificationOptional),
            2 => Some(CredProtect::UserVerificationOptionalWithCredentialIdList),
            3 => Some(CredProtect::UserVerificationRequired),
            _ => None,
        }
    }
}

/// The two hmac-secret CredRandom values of a credential (CTAP 2.1 §12.5): one for requests
/// with user verification, one for those without.
#[derive(Clone, PartialEq, Eq)]
pub struct HmacSecret {
    pub with_uv: Zeroizing<[u8; 32]>,
    pub without_uv: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for HmacSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HmacSecret(<redacted>)")
    }
}

/// The extension state of one credential; the default is a credential made without extensions.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct CredentialExtras {
    pub cred_protect: CredProtect,
    pub hmac_secret: Option<HmacSecret>,
    /// credBlob: at most 255 bytes here (getInfo maxCredBlobLength may promise less).
    pub cred_blob: Option<Vec<u8>>,
    /// largeBlobKey: the key of this credential's entries in the large-blob array.
    pub large_blob_key: Option<Zeroizing<[u8; 32]>>,
    /// thirdPartyPayment (CTAP 2.2 §12.9): the credential may be used for a payment that
    /// another origin than the RP initiates (Secure Payment Confirmation).
    pub third_party_payment: bool,
}

impl fmt::Debug for CredentialExtras {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialExtras")
            .field("cred_protect", &self.cred_protect)
            .field("hmac_secret", &self.hmac_secret.is_some())
            .field("cred_blob_len", &self.cred_blob.as_ref().map(Vec::len))
            .field("large_blob_key", &self.large_blob_key.is_some())
            .field("third_party_payment", &self.third_party_payment)
            .finish()
    }
}

/// The bytes are not extras this version wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedExtras;

impl CredentialExtras {
    /// The stored form; empty for the default, so plain credential IDs stay short.
    ///
    /// A credBlob longer than 255 bytes cannot be encoded: callers refuse it before (the
    /// credBlob extension checks getInfo's maxCredBlobLength).
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::new());
        if *self == CredentialExtras::default() {
            return out;
        }
        let mut flags = 0;
        if self.hmac_secret.is_some() {
            flags |= HAS_HMAC_SECRET;
        }
        if self.cred_blob.is_some() {
            flags |= HAS_CRED_BLOB;
        }
        if self.large_blob_key.is_some() {
            flags |= HAS_LARGE_BLOB_KEY;
        }
        if self.third_party_payment {
            flags |= THIRD_PARTY_PAYMENT;
        }
        out.extend_from_slice(&[VERSION, self.cred_protect.level(), flags]);
        if let Some(secret) = &self.hmac_secret {
            out.extend_from_slice(secret.with_uv.as_slice());
            out.extend_from_slice(secret.without_uv.as_slice());
        }
        if let Some(blob) = &self.cred_blob {
            let len = u8::try_from(blob.len()).expect("credBlob length checked by the caller");
            out.push(len);
            out.extend_from_slice(blob);
        }
        if let Some(key) = &self.large_blob_key {
            out.extend_from_slice(key.as_slice());
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, MalformedExtras> {
        if bytes.is_empty() {
            return Ok(CredentialExtras::default());
        }
        let mut reader = Reader(bytes);
        let [version, level, flags] = reader.array()?;
        if version != VERSION || flags & !KNOWN_FLAGS != 0 {
            return Err(MalformedExtras);
        }
        let cred_protect = CredProtect::from_level(level).ok_or(MalformedExtras)?;
        let hmac_secret = if flags & HAS_HMAC_SECRET != 0 {
            Some(HmacSecret {
                with_uv: Zeroizing::new(reader.array()?),
                without_uv: Zeroizing::new(reader.array()?),
            })
        } else {
            None
        };
        let cred_blob = if flags & HAS_CRED_BLOB != 0 {
            let [len] = reader.array()?;
            Some(reader.take(usize::from(len))?.to_vec())
        } else {
            None
        };
        let large_blob_key = if flags & HAS_LARGE_BLOB_KEY != 0 {
            Some(Zeroizing::new(reader.array()?))
        } else {
            None
        };
        if !reader.0.is_empty() {
            return Err(MalformedExtras);
        }
        Ok(CredentialExtras {
            cred_protect,
            hmac_secret,
            cred_blob,
            large_blob_key,
            third_party_payment: flags & THIRD_PARTY_PAYMENT != 0,
        })
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], MalformedExtras> {
        if self.0.len() < n {
            return Err(MalformedExtras);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], MalformedExtras> {
        self.take(N)?.try_into().map_err(|_| MalformedExtras)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> CredentialExtras {
        CredentialExtras {
            cred_protect: CredProtect::UserVerificationRequired,
            hmac_secret: Some(HmacSecret {
                with_uv: Zeroizing::new([1; 32]),
                without_uv: Zeroizing::new([2; 32]),
            }),
            cred_blob: Some(vec![3; 32]),
            large_blob_key: Some(Zeroizing::new([4; 32])),
            third_party_payment: true,
        }
    }

    #[test]
    fn defaults_encode_to_nothing_and_back() {
        let encoded = CredentialExtras::default().encode();

        assert!(encoded.is_empty());
        assert_eq!(
            CredentialExtras::decode(&encoded),
            Ok(CredentialExtras::default())
        );
    }

    #[test]
    fn every_combination_round_trips() {
        for mask in 0..16u8 {
            let mut extras = full();
            extras.cred_protect = CredProtect::UserVerificationOptionalWithCredentialIdList;
            if mask & 1 == 0 {
                extras.hmac_secret = None;
            }
            if mask & 2 == 0 {
                extras.cred_blob = None;
            }
            if mask & 4 == 0 {
                extras.large_blob_key = None;
            }
            if mask & 8 == 0 {
                extras.third_party_payment = false;
            }

            assert_eq!(
                CredentialExtras::decode(&extras.encode()),
                Ok(extras),
                "mask {mask}"
            );
        }
        let empty_blob = CredentialExtras {
            cred_blob: Some(Vec::new()),
            ..CredentialExtras::default()
        };
        assert_eq!(
            CredentialExtras::decode(&empty_blob.encode()),
            Ok(empty_blob)
        );
    }

    #[test]
    fn truncated_extended_and_unknown_encodings_are_malformed() {
        let encoded = full().encode();
        for len in 1..encoded.len() {
            assert_eq!(
                CredentialExtras::decode(&encoded[..len]),
                Err(MalformedExtras),
                "length {len}"
            );
        }
        let mut extended = encoded.to_vec();
        extended.push(0);
        assert_eq!(CredentialExtras::decode(&extended), Err(MalformedExtras));
        let mut version = encoded.to_vec();
        version[0] = 2;
        assert_eq!(CredentialExtras::decode(&version), Err(MalformedExtras));
        let mut level = encoded.to_vec();
        level[1] = 4;
        assert_eq!(CredentialExtras::decode(&level), Err(MalformedExtras));
        let mut flags = encoded.to_vec();
        flags[2] |= 0x10;
        assert_eq!(CredentialExtras::decode(&flags), Err(MalformedExtras));
    }

    #[test]
    fn debug_output_hides_the_secrets() {
        let debug = format!("{:?}", full());

        assert!(debug.contains("hmac_secret: true"));
        assert!(!debug.contains("[1, 1"));
        assert!(!debug.contains("[4, 4"));
    }
}
