//! ES256 signatures for the software keys, from AWS-LC (`aws-lc-rs`).
//!
//! Why not RustCrypto's `p256`, which the protocol core uses: its portable field arithmetic
//! makes one signature cost ~100 µs on our CI machine, AWS-LC's assembly P-256 ~40 µs with the
//! key loaded from its bytes each time (the bench `primitive/es256_sign` measures both). AWS-LC
//! wipes a key's memory when it is freed, and the key's DER encoding here lives in a buffer
//! that is zeroized on drop. Its nonces are hedged (random, mixed with the key and message);
//! randomness is fine here, outside the sans-IO core.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use zeroize::Zeroizing;

/// RFC 5915 `ECPrivateKey` around a 32-byte scalar, without the optional public key (AWS-LC
/// derives it): SEQUENCE { version 1, privateKey OCTET STRING (32), [0] prime256v1 }.
const DER_BEFORE_SCALAR: [u8; 7] = [0x30, 0x31, 0x02, 0x01, 0x01, 0x04, 0x20];
const DER_AFTER_SCALAR: [u8; 12] = [
    0xa0, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
];
const DER_LEN: usize = DER_BEFORE_SCALAR.len() + 32 + DER_AFTER_SCALAR.len();

/// The DER signature over SHA-256(`message`) with the P-256 private key `secret` (its 32-byte
/// big-endian scalar), or `None` if `secret` is not a valid private key (wrong length, zero,
/// not below the group order).
pub fn sign(secret: &[u8], message: &[u8]) -> Option<Vec<u8>> {
    let secret: &[u8; 32] = secret.try_into().ok()?;
    let mut der = Zeroizing::new([0u8; DER_LEN]);
    let (before, rest) = der.split_at_mut(DER_BEFORE_SCALAR.len());
    let (scalar, after) = rest.split_at_mut(32);
    before.copy_from_slice(&DER_BEFORE_SCALAR);
    scalar.copy_from_slice(secret);
    after.copy_from_slice(&DER_AFTER_SCALAR);
    let key =
        EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_ASN1_SIGNING, der.as_slice()).ok()?;
    let signature = key.sign(&SystemRandom::new(), message).ok()?;
    Some(signature.as_ref().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Verifier as _;
    use protocol::env::Algorithm;
    use protocol::software_key;

    /// n, the order of the P-256 group (SEC 2, section 2.4.2).
    const ORDER: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63,
        0x25, 0x51,
    ];

    fn verifies(public: &[u8], message: &[u8], der: &[u8]) -> bool {
        let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(public).unwrap();
        let signature = p256::ecdsa::DerSignature::try_from(der).unwrap();
        key.verify(message, &signature).is_ok()
    }

    #[test]
    fn signatures_verify_with_the_public_key_that_rustcrypto_derives() {
        let mut seed = 1u8;
        for _ in 0..8 {
            let (secret, public) = software_key::generate(Algorithm::Es256, |b| {
                for byte in b.iter_mut() {
                    *byte = seed;
                    seed = seed.wrapping_mul(31).wrapping_add(7);
                }
            });
            let message = b"authenticatorData || clientDataHash";
            let der = sign(secret.as_slice(), message).unwrap();
            assert!(verifies(&public.raw, message, &der));
            assert!(!verifies(&public.raw, b"another message", &der));
        }
    }

    #[test]
    fn nonces_are_fresh_for_each_signature() {
        let secret = [0x42u8; 32];
        assert_ne!(sign(&secret, b"m"), sign(&secret, b"m"));
    }

    #[test]
    fn the_smallest_and_largest_scalars_sign() {
        let mut one = [0u8; 32];
        one[31] = 1;
        let mut largest = ORDER;
        largest[31] -= 1;
        for secret in [one, largest] {
            let public = software_key::public_key(Algorithm::Es256, &secret).unwrap();
            let der = sign(&secret, b"m").unwrap();
            assert!(verifies(&public.raw, b"m", &der));
        }
    }

    #[test]
    fn invalid_private_keys_are_refused() {
        let mut above = ORDER;
        above[31] += 1;
        for secret in [
            &[0u8; 32][..],
            &ORDER,
            &above,
            &[0xff; 32],
            &[0x42; 31],
            &[0x42; 33],
            &[],
        ] {
            assert_eq!(sign(secret, b"m"), None, "{} bytes accepted", secret.len());
        }
    }
}
