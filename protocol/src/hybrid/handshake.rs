//! The Noise handshake, we being the responder: `Noise_KNpsk0_P256_AESGCM_SHA256` with the
//! prologue 0x01 (the QR flow). "K": we know the initiator's static key from the QR code;
//! "N": we have none ourselves; "psk0": both mix in the PSK derived from the QR secret and our
//! advert, which proves to the initiator that whoever answers scanned the code and was near
//! enough to hear the advert.
//!
//! Message 1 (initiator -> us): e_I (65 bytes, uncompressed) | tag (16).
//! Message 2 (us -> initiator): e_R (65) | tag (16).
//! Then Split: the first key encrypts the initiator's frames, the second ours.
//!
//! The `snow` crate does the Noise work. Our resolver hands it the ephemeral key's bytes that
//! the caller drew, so this module stays free of randomness (and tests can fix the key).

use std::cell::RefCell;

use p256::elliptic_curve::sec1::ToSec1Point;
use p256::PublicKey;
use snow::params::{CipherChoice, DHChoice, HashChoice, NoiseParams};
use snow::resolvers::{CryptoResolver, DefaultResolver};
use snow::types::{Cipher, Dh, Hash, Random};
use zeroize::Zeroizing;

use super::crypter::Crypter;
use super::keys::PSK_LEN;
use super::HybridError;

pub const PROTOCOL_NAME: &str = "Noise_KNpsk0_P256_AESGCM_SHA256";
/// The prologue of the QR-initiated handshake (0x00 is the linked, NKpsk0 flow).
pub const QR_PROLOGUE: [u8; 1] = [0x01];
pub const POINT_LEN: usize = 65;
pub const INITIATOR_MESSAGE_LEN: usize = POINT_LEN + 16;
pub const RESPONSE_LEN: usize = POINT_LEN + 16;
pub const EPHEMERAL_SECRET_LEN: usize = 32;

/// The result of a completed handshake.
pub struct Handshake {
    /// Message 2, to send to the initiator.
    pub response: Vec<u8>,
    /// The frame keys of the session.
    pub crypter: Crypter,
}

/// Answers the initiator's first handshake message.
///
/// `identity_key` comes from the QR code, `psk` from [`super::keys::psk`]; `ephemeral_secret`
/// must be 32 fresh random bytes (a P-256 scalar: the rare out-of-range draw is an error
/// [`HybridError::BadRandomness`], draw again).
pub fn respond(
    identity_key: &PublicKey,
    psk: &[u8; PSK_LEN],
    initiator_message: &[u8],
    ephemeral_secret: Zeroizing<[u8; EPHEMERAL_SECRET_LEN]>,
) -> Result<Handshake, HybridError> {
    if initiator_message.len() != INITIATOR_MESSAGE_LEN {
        return Err(HybridError::HandshakeFailed(
            "the first handshake message has the wrong length",
        ));
    }
    // snow unwraps the scalar conversion: check it here so that no input can make it panic.
    if p256::SecretKey::from_slice(ephemeral_secret.as_slice()).is_err() {
        return Err(HybridError::BadRandomness(
            "the ephemeral key is not a valid P-256 scalar",
        ));
    }
    let params: NoiseParams = PROTOCOL_NAME.parse().expect("a valid Noise protocol name");
    let resolver = SuppliedEphemeral::new(ephemeral_secret);
    let initiator_static = identity_key.to_sec1_point(false);
    let internal = |_| HybridError::HandshakeFailed("internal Noise state error");
    let mut noise = snow::Builder::with_resolver(params, Box::new(resolver))
        .prologue(&QR_PROLOGUE)
        .map_err(internal)?
        .remote_public_key(initiator_static.as_bytes())
        .map_err(internal)?
        .psk(0, psk)
        .map_err(internal)?
        .build_responder()
        .map_err(internal)?;

    let mut payload = Zeroizing::new([0u8; INITIATOR_MESSAGE_LEN]);
    let payload_len = noise
        .read_message(initiator_message, payload.as_mut_slice())
        .map_err(|_| {
            HybridError::HandshakeFailed(
                "the other computer's handshake does not match this QR code",
            )
        })?;
    if payload_len != 0 {
        return Err(HybridError::HandshakeFailed(
            "the first handshake message carries an unexpected payload",
        ));
    }
    let mut response = vec![0u8; RESPONSE_LEN];
    let written = noise.write_message(&[], &mut response).map_err(internal)?;
    response.truncate(written);
    if !noise.is_handshake_finished() {
        return Err(HybridError::HandshakeFailed("the handshake did not finish"));
    }
    let (initiator_to_us, us_to_initiator) = noise.dangerously_get_raw_split();
    let (read_key, write_key) = (
        Zeroizing::new(initiator_to_us),
        Zeroizing::new(us_to_initiator),
    );
    Ok(Handshake {
        response,
        crypter: Crypter::new(&read_key, &write_key),
    })
}

/// snow's default primitives, with our ephemeral key bytes as its only randomness.
struct SuppliedEphemeral {
    bytes: RefCell<Option<Zeroizing<[u8; EPHEMERAL_SECRET_LEN]>>>,
}

impl SuppliedEphemeral {
    fn new(bytes: Zeroizing<[u8; EPHEMERAL_SECRET_LEN]>) -> Self {
        SuppliedEphemeral {
            bytes: RefCell::new(Some(bytes)),
        }
    }
}

impl CryptoResolver for SuppliedEphemeral {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        Some(Box::new(OneDraw(self.bytes.borrow_mut().take())))
    }
    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        DefaultResolver.resolve_dh(choice)
    }
    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
        DefaultResolver.resolve_hash(choice)
    }
    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        DefaultResolver.resolve_cipher(choice)
    }
}

/// Gives out the supplied bytes once, for the one ephemeral key; any other draw fails.
struct OneDraw(Option<Zeroizing<[u8; EPHEMERAL_SECRET_LEN]>>);

impl Random for OneDraw {
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
        match self.0.take() {
            Some(bytes) if dest.len() == bytes.len() => {
                dest.copy_from_slice(bytes.as_slice());
                Ok(())
            }
            _ => Err(snow::Error::Rng),
        }
    }
}

/// The reference initiator lives there; the session's tests drive it too.
#[cfg(test)]
pub(super) mod tests;
