//! The fido2d authenticator core, free of I/O.
//!
//! Everything here is a plain function or a state machine over bytes: time, randomness, storage
//! and the person's gestures come in through the traits of [`env`]. That keeps the core
//! deterministic, so it can be fuzzed, benchmarked and tested without a kernel or a disk.
//!
//! - [`ctaphid`]: the CTAPHID transport framing (64-byte reports, channels, keepalive, cancel).
//! - [`wire`]: the CTAP2 messages as typed values, their CBOR encoding and decoding, for the
//!   authenticator and for platforms (fido2ctl, tests, benches, fuzz targets).
//! - [`ctap2`]: the CTAP 2.1 commands (`authenticatorMakeCredential`, ...).
//! - [`ctap1`]: the U2F raw messages carried in CTAPHID_MSG.
//! - [`authenticator`]: the [`Authenticator`] that routes a transport message to either.
//! - [`origin`]: where a request came from, the unit that state spanning commands belongs to.
//! - [`hybrid`]: the caBLE v2 / hybrid transport's codecs and crypto (QR code, advert, Noise
//!   handshake, frames), the authenticator's side.

pub mod authenticator;
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

pub use authenticator::{Authenticator, AuthenticatorConfig};
pub use origin::{Origin, Transport};
#[cfg(any(test, feature = "testing"))]
pub mod testing;
