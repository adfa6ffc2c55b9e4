//! What can go wrong in a hybrid session, in words a person can act on.

/// A hybrid failure. The messages name the problem, never a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HybridError {
    /// The text does not start with `FIDO:/` (any case): not a passkey QR code.
    #[error("this is not a FIDO QR code (it does not start with FIDO:/)")]
    NotFidoCode,
    /// `FIDO:/` followed by something that is not the digits of a caBLE request.
    #[error("the FIDO QR code is unreadable: {0}")]
    QrUnreadable(&'static str),
    /// The QR code was made longer ago than the session accepts.
    #[error(
        "the QR code has expired (made {age_secs} s ago): ask the other computer for a new one"
    )]
    QrExpired { age_secs: u64 },
    /// The QR code asks for something other than making a credential or signing in.
    #[error("the QR code asks for an unsupported request type {0:?}")]
    WrongRequestType(String),
    /// The initiator chose a tunnel server domain that does not exist.
    #[error("the QR code or advert names an unknown tunnel server (domain id {0})")]
    UnknownTunnelDomain(u16),
    /// An advert that is not ours, or not well formed.
    #[error("bad BLE advert: {0}")]
    BadAdvert(&'static str),
    /// The Noise handshake with the initiator did not complete.
    #[error("the handshake with the other computer failed: {0}")]
    HandshakeFailed(&'static str),
    /// A frame after the handshake could not be decrypted or parsed.
    #[error("bad message from the other computer: {0}")]
    BadFrame(&'static str),
    /// A message longer than the longest request frame: refused before it is decrypted.
    #[error("bad message from the other computer: a message longer than maxMsgSize allows")]
    FrameTooLong { len: usize, max: usize },
    /// The initiator shut the session down while the authenticator was answering it.
    #[error("the other computer ended the session before its request was answered")]
    EndedMidRequest,
    /// Our own getInfo failed, so there is no post-handshake message to send.
    #[error("the authenticator could not describe itself (getInfo status 0x{0:02x})")]
    GetInfoFailed(u8),
    /// The authenticator's answer to our getInfo has not even a status byte.
    #[error("the authenticator gave an empty answer")]
    EmptyAnswer,
    /// The session was driven against its order (an answer nobody asked for, a message after
    /// the end): a bug of the caller, not of the peer.
    #[error("the hybrid session was used out of turn: {0}")]
    OutOfTurn(&'static str),
    /// The randomness handed in cannot be used (e.g. an ephemeral key out of range).
    #[error("unusable random input: {0}")]
    BadRandomness(&'static str),
}
