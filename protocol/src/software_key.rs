//! Private keys held in memory: key generation, public key derivation and signing for the
//! backends that keep raw keys (the encrypted file keystore, tests).
//!
//! Signing works from the scalar alone: building a `SigningKey` would compute the public key
//! (a full scalar multiplication) on every assertion, doubling its cost.

use ecdsa::hazmat::sign_prehashed_rfc6979;
use ed25519_dalek::Signer as _;
use p256::elliptic_curve::sec1::ToSec1Point;
use p256::{NistP256, NonZeroScalar};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::env::{Algorithm, PublicKey};

/// Length of a private key of either algorithm.
pub const SECRET_LEN: usize = 32;

/// Draws a private key from `fill_random` and returns it with its public key.
///
/// P-256 scalars are drawn again in the (astronomically rare) case they fall outside [1, n-1].
pub fn generate(
    algorithm: Algorithm,
    mut fill_random: impl FnMut(&mut [u8]),
) -> (Zeroizing<[u8; SECRET_LEN]>, PublicKey) {
    loop {
        let mut secret = Zeroizing::new([0u8; SECRET_LEN]);
        fill_random(secret.as_mut_slice());
        if let Some(public) = public_key(algorithm, secret.as_slice()) {
            return (secret, public);
        }
    }
}

/// The public key of a private key, or `None` if the bytes are not a valid private key.
pub fn public_key(algorithm: Algorithm, secret: &[u8]) -> Option<PublicKey> {
    let raw = match algorithm {
        Algorithm::Es256 => {
            let scalar = p256_scalar(secret)?;
            let point = p256::PublicKey::from_secret_scalar(&scalar);
            point.to_sec1_point(false).as_bytes().to_vec()
        }
        Algorithm::EdDsa => {
            let secret: &[u8; SECRET_LEN] = secret.try_into().ok()?;
            ed25519_dalek::SigningKey::from_bytes(secret)
                .verifying_key()
                .to_bytes()
                .to_vec()
        }
    };
    Some(PublicKey { algorithm, raw })
}

/// Signs `message`: ES256 gives a DER signature over SHA-256(message) (deterministic nonce,
/// RFC 6979), EdDSA the 64-byte Ed25519 signature. `None` if the key bytes are invalid.
pub fn sign(algorithm: Algorithm, secret: &[u8], message: &[u8]) -> Option<Vec<u8>> {
    match algorithm {
        Algorithm::Es256 => {
            let scalar = p256_scalar(secret)?;
            let digest = Sha256::digest(message);
            let (signature, _) = sign_prehashed_rfc6979::<NistP256, Sha256>(&scalar, &digest, &[]);
            Some(signature.to_der().as_bytes().to_vec())
        }
        Algorithm::EdDsa => {
            let secret: &[u8; SECRET_LEN] = secret.try_into().ok()?;
            let key = ed25519_dalek::SigningKey::from_bytes(secret);
            Some(key.sign(message).to_bytes().to_vec())
        }
    }
}

fn p256_scalar(secret: &[u8]) -> Option<NonZeroScalar> {
    NonZeroScalar::try_from(secret).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ecdsa::signature::Verifier as _;

    fn counter_rng() -> impl FnMut(&mut [u8]) {
        let mut n = 1u8;
        move |buf: &mut [u8]| {
            for b in buf.iter_mut() {
                *b = n;
                n = n.wrapping_add(37);
            }
        }
    }

    #[test]
    fn es256_signature_verifies_with_the_public_key() {
        let (secret, public) = generate(Algorithm::Es256, counter_rng());
        assert_eq!(public.raw.len(), 65);
        assert_eq!(public.raw[0], 0x04);
        let sig = sign(Algorithm::Es256, secret.as_slice(), b"hello").unwrap();
        let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(&public.raw).unwrap();
        let sig = p256::ecdsa::DerSignature::try_from(sig.as_slice()).unwrap();
        vk.verify(b"hello", &sig).unwrap();
        assert!(vk.verify(b"hellO", &sig).is_err());
    }

    #[test]
    fn eddsa_signature_verifies_with_the_public_key() {
        let (secret, public) = generate(Algorithm::EdDsa, counter_rng());
        let sig = sign(Algorithm::EdDsa, secret.as_slice(), b"hello").unwrap();
        let vk = ed25519_dalek::VerifyingKey::from_bytes(&public.raw.try_into().unwrap()).unwrap();
        let sig = ed25519_dalek::Signature::from_slice(&sig).unwrap();
        vk.verify(b"hello", &sig).unwrap();
        assert!(vk.verify(b"hellO", &sig).is_err());
    }

    #[test]
    fn invalid_p256_scalars_are_refused() {
        assert!(public_key(Algorithm::Es256, &[0u8; 32]).is_none());
        assert!(public_key(Algorithm::Es256, &[0xff; 32]).is_none());
        assert!(sign(Algorithm::Es256, &[0u8; 31], b"x").is_none());
        assert!(sign(Algorithm::EdDsa, &[0u8; 33], b"x").is_none());
    }
}
