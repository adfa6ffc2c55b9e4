//! The hybrid transport (caBLE v2), authenticator side: what a phone does when it scans a
//! `FIDO:/` QR code shown by another computer.
//!
//! The steps, each in its own module, in the order a session uses them:
//! 1. [`digits`] and [`qr`]: the QR code's text back to bytes, then to the initiator's request
//!    (its identity key, the shared QR secret, the request type, the time it was made).
//! 2. [`keys`]: the keys both sides derive from the QR secret (advert key, tunnel ID, PSK).
//! 3. [`tunnel_domain`]: which tunnel server a domain number names, and the URL paths.
//! 4. [`advert`]: the 20-byte BLE advert that tells the initiator where the tunnel is.
//! 5. [`handshake`]: the Noise `KNpsk0` P-256 handshake, we being the responder.
//! 6. [`crypter`]: the AES-256-GCM frames after the handshake (padding, counter nonce).
//! 7. [`messages`]: what travels in those frames (the post-handshake getInfo, CTAP, shutdown).
//! 8. [`session`]: steps 5 to 7 put in order for one tunnel: what to send and what to ask
//!    the authenticator for each message that arrives.
//! 9. [`policy`]: which CTAP requests a hybrid peer may send (what a phone serves).
//!
//! Everything is sans-IO: randomness and the current time are parameters.

pub mod advert;
pub mod crypter;
pub mod digits;
mod error;
pub mod handshake;
pub mod keys;
pub mod messages;
pub mod policy;
pub mod qr;
pub mod session;
pub mod tunnel_domain;

pub use error::HybridError;
