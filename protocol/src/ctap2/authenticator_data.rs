//! authenticatorData (WebAuthn §6.1): rpIdHash | flags | signCount | [attestedCredentialData].

use ciborium::Value;

use crate::cbor;
use crate::env::PublicKey;

/// User present.
pub const FLAG_UP: u8 = 0x01;
/// User verified.
pub const FLAG_UV: u8 = 0x04;
/// Attested credential data included.
pub const FLAG_AT: u8 = 0x40;
/// Extension data included.
pub const FLAG_ED: u8 = 0x80;

/// The attested credential data of a new credential.
pub struct AttestedCredential<'a> {
    pub aaguid: &'a [u8; 16],
    pub credential_id: &'a [u8],
    pub public_key: &'a PublicKey,
}

/// rpIdHash | flags | signCount | [attested credential data] | [extensions]: AT and ED are set
/// from what is given.
pub fn build(
    rp_id_hash: &[u8; 32],
    flags: u8,
    sign_count: u32,
    attested: Option<&AttestedCredential<'_>>,
    extensions: Option<&Value>,
) -> Vec<u8> {
    let mut data = Vec::with_capacity(37 + attested.map_or(0, |_| 18 + 128 + 77));
    data.extend_from_slice(rp_id_hash);
    let mut flags = flags;
    if attested.is_some() {
        flags |= FLAG_AT;
    }
    if extensions.is_some() {
        flags |= FLAG_ED;
    }
    data.push(flags);
    data.extend_from_slice(&sign_count.to_be_bytes());
    if let Some(attested) = attested {
        data.extend_from_slice(attested.aaguid);
        // Credential IDs are at most 1023 bytes (CTAP 2.1), so the length fits in 16 bits.
        data.extend_from_slice(&(attested.credential_id.len() as u16).to_be_bytes());
        data.extend_from_slice(attested.credential_id);
        data.extend_from_slice(&attested.public_key.to_cose());
    }
    if let Some(extensions) = extensions {
        data.extend(cbor::encode(extensions));
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::Algorithm;

    #[test]
    fn assertion_data_is_37_bytes_with_big_endian_counter() {
        let data = build(&[9; 32], FLAG_UP, 0x0102_0304, None, None);
        assert_eq!(data.len(), 37);
        assert_eq!(&data[..32], &[9; 32]);
        assert_eq!(data[32], FLAG_UP);
        assert_eq!(&data[33..37], &[1, 2, 3, 4]);
    }

    #[test]
    fn attested_data_sets_at_and_carries_aaguid_id_and_key() {
        let key = PublicKey {
            algorithm: Algorithm::EdDsa,
            raw: vec![5; 32],
        };
        let attested = AttestedCredential {
            aaguid: &[7; 16],
            credential_id: &[1, 2, 3],
            public_key: &key,
        };
        let data = build(&[0; 32], FLAG_UP, 1, Some(&attested), None);
        assert_eq!(data[32], FLAG_UP | FLAG_AT);
        assert_eq!(&data[37..53], &[7; 16]);
        assert_eq!(&data[53..55], &[0, 3]);
        assert_eq!(&data[55..58], &[1, 2, 3]);
        assert_eq!(&data[58..], key.to_cose().as_slice());
    }

    #[test]
    fn extensions_set_ed_and_follow_as_canonical_cbor() {
        let ext = cbor::text_map(vec![("credProtect", Value::Integer(2.into()))]);
        let data = build(&[0; 32], FLAG_UP, 1, None, Some(&ext));
        assert_eq!(data[32], FLAG_UP | FLAG_ED);
        assert_eq!(&data[37..], cbor::encode(&ext).as_slice());
    }
}
