//! The bytes we keep of a TPM object: its private area (encrypted by the TPM under our
//! storage key, useless anywhere else) and its public area.
//!
//! ```text
//! blob:        u16 len | TPM2B_PRIVATE contents | u16 len | TPMT_PUBLIC (marshalled)
//! master.tpm:  "FIDO2DMT" | version (1) | blob of the sealed object | check (8)
//!              check = first 8 bytes of SHA-256(everything before it)
//! ```
//!
//! Integers are big-endian. A credential's blob sits inside its AEAD-wrapped credential ID or
//! its sealed record, so it arrives here authenticated; the TPM checks it again when loading
//! (the private area's integrity value covers the public area's name).

use sha2::{Digest as _, Sha256};
use tss_esapi::structures::{Private, Public};
use tss_esapi::traits::{Marshall as _, UnMarshall as _};

const MASTER_MAGIC: &[u8; 8] = b"FIDO2DMT";
const MASTER_VERSION: u8 = 1;
const MASTER_CHECK_LEN: usize = 8;

/// A TPM object as loaded with TPM2_Load.
#[derive(Debug, Clone)]
pub(crate) struct Blob {
    pub(crate) private: Private,
    pub(crate) public: Public,
}

impl Blob {
    pub(crate) fn encode(&self) -> Result<Vec<u8>, String> {
        let private = self.private.value();
        let public = self
            .public
            .marshall()
            .map_err(|err| format!("cannot marshal a public area: {err}"))?;
        let mut out = Vec::with_capacity(4 + private.len() + public.len());
        for part in [private, public.as_slice()] {
            let len = u16::try_from(part.len()).map_err(|_| "TPM object part too large")?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(part);
        }
        Ok(out)
    }

    /// `None` unless `bytes` are exactly one encoded blob.
    pub(crate) fn decode(bytes: &[u8]) -> Option<Blob> {
        let (private, rest) = split_part(bytes)?;
        let (public, rest) = split_part(rest)?;
        if !rest.is_empty() || private.is_empty() || public.is_empty() {
            return None;
        }
        Some(Blob {
            private: Private::try_from(private.to_vec()).ok()?,
            public: Public::unmarshall(public).ok()?,
        })
    }

    /// The contents of `master.tpm`.
    pub(crate) fn to_master_file(&self) -> Result<Vec<u8>, String> {
        let mut out = MASTER_MAGIC.to_vec();
        out.push(MASTER_VERSION);
        out.extend_from_slice(&self.encode()?);
        let check = Sha256::digest(&out);
        out.extend_from_slice(&check[..MASTER_CHECK_LEN]);
        Ok(out)
    }

    /// Parses `master.tpm`; the error is why it is unusable.
    pub(crate) fn from_master_file(bytes: &[u8]) -> Result<Blob, String> {
        let header = MASTER_MAGIC.len() + 1;
        if bytes.len() < header {
            return Err(format!("truncated: {} bytes", bytes.len()));
        }
        if &bytes[..MASTER_MAGIC.len()] != MASTER_MAGIC {
            return Err("bad magic".into());
        }
        if bytes[MASTER_MAGIC.len()] != MASTER_VERSION {
            return Err(format!("unsupported version {}", bytes[MASTER_MAGIC.len()]));
        }
        let body_len = bytes
            .len()
            .checked_sub(MASTER_CHECK_LEN)
            .filter(|&len| len > header)
            .ok_or_else(|| format!("truncated: {} bytes", bytes.len()))?;
        let (body, check) = bytes.split_at(body_len);
        if Sha256::digest(body)[..MASTER_CHECK_LEN] != *check {
            return Err("checksum mismatch".into());
        }
        Blob::decode(&body[header..]).ok_or_else(|| "malformed TPM object".into())
    }
}

fn split_part(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = usize::from(u16::from_be_bytes(bytes.get(..2)?.try_into().ok()?));
    let rest = &bytes[2..];
    (rest.len() >= len).then(|| rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tpm::templates;

    fn blob() -> Blob {
        Blob {
            private: Private::try_from(vec![0x5a; 126]).unwrap(),
            public: templates::credential_key().unwrap(),
        }
    }

    #[test]
    fn a_blob_round_trips_and_frames_both_parts() {
        let bytes = blob().encode().unwrap();

        let decoded = Blob::decode(&bytes).unwrap();

        assert_eq!(&bytes[..2], &[0, 126]);
        assert_eq!(decoded.private, blob().private);
        assert_eq!(decoded.public, blob().public);
        assert_eq!(decoded.encode().unwrap(), bytes);
    }

    #[test]
    fn anything_but_exactly_one_blob_is_refused() {
        let bytes = blob().encode().unwrap();
        let mut trailing = bytes.clone();
        trailing.push(0);
        let mut long_private = bytes.clone();
        long_private[1] = 200;

        for len in 0..bytes.len() {
            assert!(Blob::decode(&bytes[..len]).is_none(), "length {len}");
        }
        assert!(Blob::decode(&trailing).is_none());
        assert!(Blob::decode(&long_private).is_none());
        assert!(Blob::decode(&[0, 0, 0, 0]).is_none(), "empty parts");
    }

    #[test]
    fn the_master_file_round_trips_and_says_why_it_is_unusable() {
        let file = blob().to_master_file().unwrap();
        let mut flipped = file.clone();
        flipped[20] ^= 1;
        let mut version = file.clone();
        version[8] = 7;
        let reason = |bytes: &[u8]| Blob::from_master_file(bytes).unwrap_err();

        let parsed = Blob::from_master_file(&file).unwrap();

        assert_eq!(&file[..9], b"FIDO2DMT\x01");
        assert_eq!(parsed.private, blob().private);
        assert_eq!(reason(b""), "truncated: 0 bytes");
        assert_eq!(reason(&file[..12]), "truncated: 12 bytes");
        assert_eq!(reason(b"FIDO2DMK\x01abcdefgh"), "bad magic");
        assert_eq!(reason(&version), "unsupported version 7");
        assert_eq!(reason(&flipped), "checksum mismatch");
        assert_eq!(reason(&file[..file.len() - 1]), "checksum mismatch");
    }
}
