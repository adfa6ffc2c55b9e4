//! The X.509 attestation certificate of a U2F registration.
//!
//! fido2d has no vendor attestation key: each U2F registration carries a self-signed certificate
//! over the credential's own public key (U2F "self attestation"), so registrations cannot be
//! linked to each other or to this machine. The structure is fixed and small, and its signature
//! must come from the keystore (possibly a TPM), so it is built here with a few DER helpers
//! rather than a certificate builder that wants the private key in memory.

/// ecdsa-with-SHA256 (1.2.840.10045.4.3.2).
const OID_ECDSA_WITH_SHA256: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x02];
/// id-ecPublicKey (1.2.840.10045.2.1).
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];
/// prime256v1 (1.2.840.10045.3.1.7).
const OID_P256: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
/// commonName (2.5.4.3).
const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];

const SUBJECT: &str = "fido2d U2F self attestation";

const TAG_INTEGER: u8 = 0x02;
const TAG_BIT_STRING: u8 = 0x03;
const TAG_OID: u8 = 0x06;
const TAG_UTF8_STRING: u8 = 0x0C;
const TAG_UTC_TIME: u8 = 0x17;
const TAG_GENERALIZED_TIME: u8 = 0x18;
const TAG_SEQUENCE: u8 = 0x30;
const TAG_SET: u8 = 0x31;
const TAG_EXPLICIT_0: u8 = 0xA0;

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len <= 0xFF {
        out.extend([0x81, len as u8]);
    } else {
        // Certificates here stay far below 64 KiB.
        out.extend([0x82, (len >> 8) as u8, len as u8]);
    }
    out.extend_from_slice(content);
    out
}

fn sequence(parts: &[&[u8]]) -> Vec<u8> {
    tlv(TAG_SEQUENCE, &parts.concat())
}

fn name() -> Vec<u8> {
    let attribute = sequence(&[
        &tlv(TAG_OID, OID_COMMON_NAME),
        &tlv(TAG_UTF8_STRING, SUBJECT.as_bytes()),
    ]);
    sequence(&[&tlv(TAG_SET, &attribute)])
}

fn ecdsa_with_sha256() -> Vec<u8> {
    sequence(&[&tlv(TAG_OID, OID_ECDSA_WITH_SHA256)])
}

/// The to-be-signed part of the certificate for a P-256 public key (65-byte SEC1 point).
pub fn to_be_signed(public_key: &[u8]) -> Vec<u8> {
    let version_v3 = tlv(TAG_EXPLICIT_0, &tlv(TAG_INTEGER, &[2]));
    let serial = tlv(TAG_INTEGER, &[1]);
    let validity = sequence(&[
        &tlv(TAG_UTC_TIME, b"200101000000Z"),
        // RFC 5280 §4.1.2.5: 99991231235959Z means "no well-defined expiration date".
        &tlv(TAG_GENERALIZED_TIME, b"99991231235959Z"),
    ]);
    let algorithm = sequence(&[&tlv(TAG_OID, OID_EC_PUBLIC_KEY), &tlv(TAG_OID, OID_P256)]);
    let key_bits = [&[0u8][..], public_key].concat();
    let spki = sequence(&[&algorithm, &tlv(TAG_BIT_STRING, &key_bits)]);
    sequence(&[
        &version_v3,
        &serial,
        &ecdsa_with_sha256(),
        &name(),
        &validity,
        &name(),
        &spki,
    ])
}

/// The whole certificate, given the TBS part and its DER ECDSA signature.
pub fn assemble(to_be_signed: &[u8], signature_der: &[u8]) -> Vec<u8> {
    let signature_bits = [&[0u8][..], signature_der].concat();
    sequence(&[
        to_be_signed,
        &ecdsa_with_sha256(),
        &tlv(TAG_BIT_STRING, &signature_bits),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::Algorithm;
    use crate::software_key;
    use ecdsa::signature::Verifier as _;

    #[test]
    fn certificate_is_der_and_its_signature_verifies_with_the_embedded_key() {
        let (secret, public) = software_key::generate(Algorithm::Es256, |b| b.fill(0x42));
        let tbs = to_be_signed(&public.raw);
        let sig = software_key::sign(Algorithm::Es256, secret.as_slice(), &tbs).unwrap();
        let cert = assemble(&tbs, &sig);

        // Outer SEQUENCE with a two-byte length covering the rest exactly.
        assert_eq!(cert[0], TAG_SEQUENCE);
        assert_eq!(cert[1], 0x82);
        assert_eq!(
            usize::from(u16::from_be_bytes([cert[2], cert[3]])),
            cert.len() - 4
        );
        // The TBS is embedded verbatim, and the key appears as the SPKI's bit string.
        assert_eq!(&cert[4..4 + tbs.len()], tbs.as_slice());
        let key_at = tbs
            .windows(65)
            .position(|w| w == public.raw.as_slice())
            .unwrap();
        assert_eq!(&tbs[key_at - 3..key_at], &[TAG_BIT_STRING, 66, 0]);

        let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(&public.raw).unwrap();
        let sig = p256::ecdsa::DerSignature::try_from(sig.as_slice()).unwrap();
        vk.verify(&tbs, &sig).unwrap();
    }
}
