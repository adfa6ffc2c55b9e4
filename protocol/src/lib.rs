//! The fido2d authenticator core, free of I/O.
//!
//! Everything here is a plain function or a state machine over bytes: time, randomness, storage
//! and the person's gestures come in through the traits of [`env`]. That keeps the core
//! deterministic, so it can be fuzzed, benchmarked and tested without a kernel or a disk.
//!
//! The layers, lowest first; a module imports only from the ones above it in this list (the
//! `layers` test checks it):
//! - [`status`], [`cbor`], [`cose`], [`wire`]: the CTAP message format: status codes, canonical
//!   CBOR, COSE keys, and every command's request and response as a typed value.
//! - [`env`]: the traits through which the world comes in (keystore, presence, clock, rng).
//! - [`ctap2`]: the [`Authenticator`] and the CTAP 2.1 commands it answers.
//! - [`ctap1`]: the U2F raw messages carried in CTAPHID_MSG, answered by the same
//!   authenticator with the same credentials.
//! - [`ctaphid`]: the CTAPHID transport framing (64-byte reports, channels, keepalive, cancel).
//! - [`origin`]: where a request came from, the unit that state spanning commands belongs to.
//! - [`hybrid`]: the caBLE v2 / hybrid transport's codecs and crypto (QR code, advert, Noise
//!   handshake, frames), the authenticator's side.

pub mod cbor;
pub mod control;
pub mod cose;
pub mod ctap1;
pub mod ctap2;
pub mod ctaphid;
pub mod display;
pub mod env;
pub mod hybrid;
pub mod origin;
pub mod software_key;
pub mod status;
pub mod wire;

pub use ctap2::authenticator::{Authenticator, AuthenticatorConfig};
pub use origin::{Origin, Transport};
#[cfg(any(test, feature = "testing"))]
pub mod testing;
