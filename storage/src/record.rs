//! Discoverable credential records: one sealed file per credential.
//!
//! ```text
//! file name: <hex of SHA-256(credential id)[..16]>.cred
//! file:      "FIDO2DCR" | format version (2) | nonce (12) |
//!            AES-256-GCM(record key, fields, AAD = magic | version | file name)
//! fields:    u16 len | credential id
//!            u16 len | RP ID (UTF-8)
//!            RP ID hash (32)
//!            u16 len | user id
//!            u8 0/1 [u16 len | user name (UTF-8)]
//!            u8 0/1 [u16 len | user display name (UTF-8)]
//!            algorithm (Algorithm::to_byte)
//!            u64 created
//!            u16 len | key material (a software private key, or a TPM blob)   format 2
//!            u16 len | extension state (CredentialExtras::encode)              format 2
//! ```
//!
//! Integers are big-endian. Format 1 (the first release) had no key material and extension
//! state here: they were in the credential ID, where the store still finds them for such a
//! record.

use aes_gcm::Aes256Gcm;
use protocol::env::{Algorithm, CredentialExtras, KeyMaterial, UserEntity};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::crypto::{self, NONCE_LEN};

const MAGIC: &[u8; 8] = b"FIDO2DCR";
const FORMAT_VERSION: u8 = 2;
/// Records without key material and extension state (they are in the credential ID).
const FORMAT_VERSION_KEY_IN_ID: u8 = 1;
const HEADER_LEN: usize = MAGIC.len() + 1;
pub(crate) const SUFFIX: &str = ".cred";

/// Names a record file: the first 16 bytes of SHA-256(credential id).
pub(crate) type FileId = [u8; 16];

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) credential_id: Vec<u8>,
    pub(crate) rp_id: String,
    pub(crate) rp_id_hash: [u8; 32],
    pub(crate) user: UserEntity,
    pub(crate) algorithm: Algorithm,
    pub(crate) created: u64,
    pub(crate) key: KeyMaterial,
    /// As stored: UV-only secrets bound to the PIN when `pin_bound`.
    pub(crate) extras: CredentialExtras,
    /// Whether its UV-only secrets are bound to the PIN: a flag of its credential ID, not of
    /// the record file (set from the ID when the record is opened).
    pub(crate) pin_bound: bool,
}

/// A record as read from its file.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) record: Record,
    /// A format 1 record: `key` and `extras` are empty and must come from the credential ID.
    pub(crate) key_in_id: bool,
}

pub(crate) fn file_id(credential_id: &[u8]) -> FileId {
    let digest = Sha256::digest(credential_id);
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    id
}

/// `<32 hex digits>.cred`
pub(crate) fn file_name(id: &FileId) -> String {
    format!("{}{SUFFIX}", hex::encode(id))
}

/// The file id a record file name stands for, if it is one.
pub(crate) fn parse_file_name(name: &str) -> Option<FileId> {
    let stem = name.strip_suffix(SUFFIX)?;
    let mut id = [0u8; 16];
    hex::decode_to_slice(stem, &mut id).ok()?;
    (file_name(&id) == name).then_some(id)
}

fn aad(version: u8, file_name: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(HEADER_LEN + file_name.len());
    aad.extend_from_slice(MAGIC);
    aad.push(version);
    aad.extend_from_slice(file_name.as_bytes());
    aad
}

/// The record file `file_name` of format `version` holding `fields` (already encoded).
pub(crate) fn seal_fields(
    cipher: &Aes256Gcm,
    version: u8,
    nonce: &[u8; NONCE_LEN],
    file_name: &str,
    fields: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + NONCE_LEN + fields.len() + 16);
    out.extend_from_slice(MAGIC);
    out.push(version);
    out.extend_from_slice(nonce);
    crypto::seal_into(cipher, nonce, &aad(version, file_name), fields, &mut out);
    out
}

/// The format version and the fields of the record file `file_name`.
fn unseal(
    cipher: &Aes256Gcm,
    file_name: &str,
    bytes: &[u8],
) -> Result<(u8, Zeroizing<Vec<u8>>), &'static str> {
    if bytes.len() < HEADER_LEN + NONCE_LEN {
        return Err("truncated");
    }
    if &bytes[..MAGIC.len()] != MAGIC {
        return Err("bad magic");
    }
    let version = bytes[MAGIC.len()];
    if version != FORMAT_VERSION && version != FORMAT_VERSION_KEY_IN_ID {
        return Err("unsupported format version");
    }
    let nonce: &[u8; NONCE_LEN] = bytes[HEADER_LEN..HEADER_LEN + NONCE_LEN]
        .try_into()
        .map_err(|_| "truncated")?;
    let fields = crypto::open(
        cipher,
        nonce,
        &aad(version, file_name),
        &bytes[HEADER_LEN + NONCE_LEN..],
    )
    .ok_or("authentication failed (tampered, or sealed with another master key)")?;
    Ok((version, fields))
}

/// The format version and fields of a record file, for the fuzz targets' seeds.
#[cfg(feature = "fuzzing")]
pub(crate) fn open_fields(
    cipher: &Aes256Gcm,
    file_name: &str,
    bytes: &[u8],
) -> Option<(u8, Vec<u8>)> {
    unseal(cipher, file_name, bytes)
        .ok()
        .map(|(version, fields)| (version, fields.to_vec()))
}

/// A field does not fit its u16 length prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooLarge(pub(crate) &'static str);

impl Record {
    /// The sealed file contents, for the file named `file_name`.
    pub(crate) fn seal(
        &self,
        cipher: &Aes256Gcm,
        nonce: &[u8; NONCE_LEN],
        file_name: &str,
    ) -> Result<Vec<u8>, TooLarge> {
        let fields = self.encode()?;
        Ok(seal_fields(
            cipher,
            FORMAT_VERSION,
            nonce,
            file_name,
            &fields,
        ))
    }

    /// Opens the file named `file_name`; the error is why it is unusable.
    pub(crate) fn open(
        cipher: &Aes256Gcm,
        file_name: &str,
        bytes: &[u8],
    ) -> Result<Opened, &'static str> {
        let (version, fields) = unseal(cipher, file_name, bytes)?;
        let key_in_id = version == FORMAT_VERSION_KEY_IN_ID;
        let record = Record::decode(&fields, key_in_id).ok_or("malformed fields")?;
        Ok(Opened { record, key_in_id })
    }

    fn encode(&self) -> Result<Zeroizing<Vec<u8>>, TooLarge> {
        let extras = self.extras.encode();
        let mut out = Zeroizing::new(Vec::with_capacity(
            128 + self.credential_id.len() + self.key.as_bytes().len() + extras.len(),
        ));
        put_bytes(&mut out, &self.credential_id, "credential id")?;
        put_bytes(&mut out, self.rp_id.as_bytes(), "RP ID")?;
        out.extend_from_slice(&self.rp_id_hash);
        put_bytes(&mut out, &self.user.id, "user id")?;
        put_optional(&mut out, self.user.name.as_deref(), "user name")?;
        put_optional(
            &mut out,
            self.user.display_name.as_deref(),
            "user display name",
        )?;
        out.push(self.algorithm.to_byte());
        out.extend_from_slice(&self.created.to_be_bytes());
        put_bytes(&mut out, self.key.as_bytes(), "key material")?;
        put_bytes(&mut out, &extras, "extension state")?;
        Ok(out)
    }

    fn decode(bytes: &[u8], key_in_id: bool) -> Option<Record> {
        let mut r = Reader(bytes);
        let credential_id = r.bytes()?.to_vec();
        let rp_id = r.string()?;
        let rp_id_hash = r.array::<32>()?;
        let id = r.bytes()?.to_vec();
        let name = r.optional_string()?;
        let display_name = r.optional_string()?;
        let algorithm = Algorithm::from_byte(r.array::<1>()?[0])?;
        let created = u64::from_be_bytes(r.array::<8>()?);
        let (key, extras) = if key_in_id {
            (KeyMaterial::new(Vec::new()), CredentialExtras::default())
        } else {
            let key = KeyMaterial::new(r.bytes()?.to_vec());
            let extras = CredentialExtras::decode(r.bytes()?).ok()?;
            (key, extras)
        };
        if !r.0.is_empty() {
            return None;
        }
        Some(Record {
            credential_id,
            rp_id,
            rp_id_hash,
            user: UserEntity {
                id,
                name,
                display_name,
            },
            algorithm,
            created,
            key,
            extras,
            pin_bound: false,
        })
    }
}

/// A record file as format 1 wrote it (no key material, no extension state), for tests of
/// the upgrade.
#[cfg(test)]
pub(crate) fn format_1_file(cipher: &Aes256Gcm, record: &Record, name: &str) -> Vec<u8> {
    let mut fields = record.encode().unwrap().to_vec();
    let extras_len = record.extras.encode().len();
    fields.truncate(fields.len() - (2 + record.key.as_bytes().len() + 2 + extras_len));
    let mut out = MAGIC.to_vec();
    out.push(FORMAT_VERSION_KEY_IN_ID);
    out.extend_from_slice(&[4; NONCE_LEN]);
    crypto::seal_into(
        cipher,
        &[4; NONCE_LEN],
        &aad(FORMAT_VERSION_KEY_IN_ID, name),
        &fields,
        &mut out,
    );
    out
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8], what: &'static str) -> Result<(), TooLarge> {
    let len = u16::try_from(bytes.len()).map_err(|_| TooLarge(what))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

fn put_optional(out: &mut Vec<u8>, s: Option<&str>, what: &'static str) -> Result<(), TooLarge> {
    match s {
        None => out.push(0),
        Some(s) => {
            out.push(1);
            put_bytes(out, s.as_bytes(), what)?;
        }
    }
    Ok(())
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = u16::from_be_bytes(self.array::<2>()?);
        self.take(usize::from(len))
    }

    fn string(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?.to_vec()).ok()
    }

    fn optional_string(&mut self) -> Option<Option<String>> {
        match self.array::<1>()?[0] {
            0 => Some(None),
            1 => Some(Some(self.string()?)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{Keys, MasterKey};
    use protocol::env::CredProtect;

    fn keys_from(byte: u8) -> Keys {
        Keys::derive(&MasterKey::generate(|b| b.fill(byte)))
    }

    fn record() -> Record {
        Record {
            credential_id: vec![1; 63],
            rp_id: "example.com".into(),
            rp_id_hash: [2; 32],
            user: UserEntity {
                id: vec![3; 64],
                name: Some("alice@example.com".into()),
                display_name: None,
            },
            algorithm: Algorithm::EdDsa,
            created: 0x0102_0304_0506_0708,
            key: KeyMaterial::new(vec![0x5A; 220]),
            extras: CredentialExtras {
                cred_protect: CredProtect::UserVerificationRequired,
                cred_blob: Some(b"blob".to_vec()),
                ..CredentialExtras::default()
            },
            pin_bound: false,
        }
    }

    #[test]
    fn record_round_trips() {
        let keys = keys_from(1);
        let name = file_name(&file_id(&record().credential_id));

        let sealed = record().seal(&keys.record, &[4; 12], &name).unwrap();
        let opened = Record::open(&keys.record, &name, &sealed).unwrap();

        assert_eq!(opened.record, record());
        assert!(!opened.key_in_id);
        assert_eq!(&sealed[..9], b"FIDO2DCR\x02");
    }

    #[test]
    fn a_format_1_record_opens_without_key_material() {
        let keys = keys_from(1);
        let name = file_name(&file_id(&record().credential_id));
        let file = format_1_file(&keys.record, &record(), &name);

        let opened = Record::open(&keys.record, &name, &file).unwrap();

        assert!(opened.key_in_id);
        assert!(opened.record.key.as_bytes().is_empty());
        assert_eq!(opened.record.extras, CredentialExtras::default());
        assert_eq!(opened.record.user, record().user);
        assert_eq!(opened.record.created, record().created);
    }

    #[test]
    fn record_contents_are_encrypted() {
        let keys = keys_from(1);

        let sealed = record().seal(&keys.record, &[4; 12], "x.cred").unwrap();

        assert!(!sealed.windows(11).any(|w| w == b"example.com"));
        assert!(!sealed.windows(5).any(|w| w == b"alice"));
        assert!(!sealed.windows(8).any(|w| w == [0x5A; 8]), "key material");
        assert!(!sealed.windows(4).any(|w| w == b"blob"), "extension state");
    }

    #[test]
    fn damaged_records_are_refused_with_a_reason() {
        let keys = keys_from(1);
        let sealed = record().seal(&keys.record, &[4; 12], "a.cred").unwrap();
        let mut bad_magic = sealed.clone();
        bad_magic[0] ^= 1;
        let mut bad_version = sealed.clone();
        bad_version[8] = 3;
        let mut flipped = sealed.clone();
        flipped[40] ^= 1;

        let open = |bytes: &[u8], name: &str| Record::open(&keys.record, name, bytes).unwrap_err();

        assert_eq!(open(&sealed[..10], "a.cred"), "truncated");
        assert_eq!(open(&bad_magic, "a.cred"), "bad magic");
        assert_eq!(open(&bad_version, "a.cred"), "unsupported format version");
        assert!(open(&flipped, "a.cred").starts_with("authentication failed"));
        assert!(open(&sealed[..sealed.len() - 1], "a.cred").starts_with("authentication"));
        assert!(open(&sealed, "b.cred").starts_with("authentication failed"));
        assert!(Record::open(&keys_from(2).record, "a.cred", &sealed).is_err());
    }

    #[test]
    fn malformed_fields_are_refused() {
        let fields = record().encode().unwrap();

        for len in 0..fields.len() {
            assert!(
                Record::decode(&fields[..len], false).is_none(),
                "length {len}"
            );
        }
        let mut trailing = fields.to_vec();
        trailing.push(0);
        assert!(Record::decode(&trailing, false).is_none());
    }

    #[test]
    fn oversized_fields_are_refused() {
        let mut big = record();
        big.user.display_name = Some("x".repeat(70_000));

        assert_eq!(big.encode().unwrap_err(), TooLarge("user display name"));
    }

    #[test]
    fn file_names_are_hex_of_the_id_hash() {
        let id = file_id(b"credential");
        let name = file_name(&id);

        assert_eq!(name.len(), 32 + 5);
        assert_eq!(parse_file_name(&name), Some(id));
        assert_eq!(parse_file_name(&name.to_uppercase()), None);
        assert_eq!(parse_file_name("abc.cred"), None);
        assert_eq!(parse_file_name(&format!("{name}.damaged")), None);
    }
}
