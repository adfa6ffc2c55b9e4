//! One hybrid session once the tunnel is open, we being the phone: the initiator's handshake
//! message, our getInfo in the post-handshake message, then one CTAP request after another
//! until the initiator shuts the session down.
//!
//! Sans-IO: the caller passes each tunnel message to [`ResponderSession::receive`] and each
//! answer of the authenticator to [`ResponderSession::answer`], and carries out the
//! [`Action`]s they return, in order. The randomness (our ephemeral key) comes in with
//! [`ResponderSession::new`]; time limits are the caller's.
//!
//! The order is strict: one request at the authenticator at a time (the initiator waits for
//! each answer), and a session that fails in any way is over: frames carry a counter nonce,
//! so a frame that cannot be read cannot be skipped either.

use std::fmt;

use p256::PublicKey;
use zeroize::Zeroizing;

use super::crypter::{max_ciphertext_len, Crypter};
use super::handshake::{self, EPHEMERAL_SECRET_LEN};
use super::keys::PSK_LEN;
use super::messages::{self, InitiatorFrame};
use super::qr::{QrRequest, RequestType};
use super::HybridError;
use crate::hybrid::policy::{self, HybridRefusal};
use crate::status::StatusCode;
use crate::wire::Command;

/// The largest CTAP request a peer may send: the maxMsgSize getInfo announces.
pub const MAX_REQUEST_LEN: usize = crate::ctaphid::MAX_MESSAGE_LEN;
/// The longest tunnel message that can carry such a request (frame type byte + request, with
/// any padding): anything longer is refused before it is decrypted or decoded.
pub const MAX_FRAME_LEN: usize = max_ciphertext_len(1 + MAX_REQUEST_LEN);

/// What the caller does next, in the order given.
#[derive(PartialEq, Eq)]
pub enum Action {
    /// Send these bytes as one tunnel message.
    Send(Vec<u8>),
    /// Hand this CTAP request (command byte, then CBOR) to the authenticator; its answer
    /// goes to [`ResponderSession::answer`]. Always the last action of its batch.
    Ask(Vec<u8>),
    /// Something to show or log.
    Report(Event),
    /// The initiator shut the session down: close the tunnel, the session is over.
    Close,
}

// Lengths only: a request may carry what its peer would not want logged.
impl fmt::Debug for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Send(bytes) => write!(f, "Send({} bytes)", bytes.len()),
            Action::Ask(request) => write!(
                f,
                "Ask(command {:?}, {} bytes)",
                request.first(),
                request.len()
            ),
            Action::Report(event) => write!(f, "Report({event:?})"),
            Action::Close => f.write_str("Close"),
        }
    }
}

/// What happened, for whoever shows the session's progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The post-handshake message is on its way: the initiator may send requests.
    Connected,
    /// The initiator asks for `command`.
    Request { command: u8 },
    /// The request never reaches the authenticator; its status is in the `Answered` after.
    Refused { command: u8, refusal: Refusal },
    /// The answer to `command` is on its way.
    Answered { command: u8, status: u8 },
    /// A frame of a kind we do not serve (linking update, JSON), ignored.
    Ignored { kind: u8 },
}

/// Why a request was refused without asking the authenticator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Longer than the maxMsgSize our getInfo announces (`len`: command byte included).
    TooLong { len: usize },
    /// Not what a phone serves for this QR code.
    NotServed(HybridRefusal),
}

impl Refusal {
    /// The status the initiator receives.
    pub fn status(self) -> StatusCode {
        match self {
            Refusal::TooLong { .. } => StatusCode::InvalidLength,
            Refusal::NotServed(refusal) => refusal.status(),
        }
    }
}

/// The session, from the initiator's first handshake message to its shutdown.
pub struct ResponderSession {
    serves: RequestType,
    state: State,
}

enum State {
    /// Waiting for handshake message 1. The keys are used once, then dropped.
    AwaitingHandshake {
        identity_key: PublicKey,
        psk: Zeroizing<[u8; PSK_LEN]>,
        ephemeral_secret: Zeroizing<[u8; EPHEMERAL_SECRET_LEN]>,
    },
    /// Handshake done; our getInfo is at the authenticator, for the post-handshake message.
    DescribingUs { crypter: Crypter },
    /// Connected, waiting for the initiator's next frame.
    Idle { crypter: Crypter },
    /// The initiator's request `command` is at the authenticator.
    Serving { crypter: Crypter, command: u8 },
    /// Shut down by the initiator, or failed.
    Ended,
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            State::AwaitingHandshake { .. } => "awaiting the handshake",
            State::DescribingUs { .. } => "asking for our getInfo",
            State::Idle { .. } => "idle",
            State::Serving { .. } => "serving a request",
            State::Ended => "ended",
        }
    }
}

// No key, ever: the phase is all there is to show.
impl fmt::Debug for ResponderSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponderSession")
            .field("serves", &self.serves)
            .field("state", &self.state.name())
            .finish_non_exhaustive()
    }
}

impl ResponderSession {
    /// A session for the QR code `request`, whose advert gave `psk`
    /// ([`super::keys::psk`]). `ephemeral_secret` must be 32 fresh random bytes: the rare
    /// draw that is no P-256 scalar is [`HybridError::BadRandomness`], draw again.
    pub fn new(
        request: &QrRequest,
        psk: &[u8; PSK_LEN],
        ephemeral_secret: Zeroizing<[u8; EPHEMERAL_SECRET_LEN]>,
    ) -> Result<Self, HybridError> {
        // Checked now, so that the handshake cannot fail for our own randomness.
        if p256::SecretKey::from_slice(ephemeral_secret.as_slice()).is_err() {
            return Err(HybridError::BadRandomness(
                "the ephemeral key is not a valid P-256 scalar",
            ));
        }
        Ok(ResponderSession {
            serves: request.request_type,
            state: State::AwaitingHandshake {
                identity_key: request.identity_key,
                psk: Zeroizing::new(*psk),
                ephemeral_secret,
            },
        })
    }

    /// Whether the session is over (shut down, or failed).
    pub fn is_over(&self) -> bool {
        matches!(self.state, State::Ended)
    }

    /// One message from the tunnel. The first is the handshake; after it, frames. A message
    /// while the authenticator works on a request is an error whatever it says (a shutdown
    /// is [`HybridError::EndedMidRequest`]): the caller withdraws the request.
    pub fn receive(&mut self, message: &[u8]) -> Result<Vec<Action>, HybridError> {
        // Taken out, put back only on success: an error ends the session.
        let (state, actions) = match std::mem::replace(&mut self.state, State::Ended) {
            State::AwaitingHandshake {
                identity_key,
                psk,
                ephemeral_secret,
            } => {
                let done = handshake::respond(&identity_key, &psk, message, ephemeral_secret)?;
                (
                    State::DescribingUs {
                        crypter: done.crypter,
                    },
                    vec![
                        Action::Send(done.response),
                        Action::Ask(vec![Command::GetInfo.as_byte()]),
                    ],
                )
            }
            State::Idle { mut crypter } => {
                let frame = decrypt(&mut crypter, message)?;
                self.serve_frame(crypter, &frame)?
            }
            State::DescribingUs { mut crypter } | State::Serving { mut crypter, .. } => {
                let frame = decrypt(&mut crypter, message)?;
                return Err(match InitiatorFrame::parse(&frame) {
                    Ok(InitiatorFrame::Shutdown) => HybridError::EndedMidRequest,
                    _ => HybridError::BadFrame(
                        "a request arrived before the previous one was answered",
                    ),
                });
            }
            State::Ended => {
                return Err(HybridError::OutOfTurn("a message after the session ended"));
            }
        };
        self.state = state;
        Ok(actions)
    }

    /// The authenticator's answer (`status | CBOR`) to the last [`Action::Ask`].
    pub fn answer(&mut self, response: &[u8]) -> Result<Vec<Action>, HybridError> {
        match std::mem::replace(&mut self.state, State::Ended) {
            State::DescribingUs { mut crypter } => {
                let get_info = match response.split_first() {
                    Some((&0, cbor)) => cbor,
                    Some((&status, _)) => return Err(HybridError::GetInfoFailed(status)),
                    None => return Err(HybridError::EmptyAnswer),
                };
                let message = crypter.encrypt(&messages::post_handshake_message(get_info))?;
                self.state = State::Idle { crypter };
                Ok(vec![
                    Action::Send(message),
                    Action::Report(Event::Connected),
                ])
            }
            State::Serving {
                mut crypter,
                command,
            } => {
                let actions = reply(&mut crypter, command, response)?;
                self.state = State::Idle { crypter };
                Ok(actions)
            }
            State::AwaitingHandshake { .. } | State::Idle { .. } | State::Ended => Err(
                HybridError::OutOfTurn("an answer when no request was at the authenticator"),
            ),
        }
    }

    /// A decrypted frame while connected and idle.
    fn serve_frame(
        &self,
        mut crypter: Crypter,
        frame: &[u8],
    ) -> Result<(State, Vec<Action>), HybridError> {
        let (command, parameters) = match InitiatorFrame::parse(frame)? {
            InitiatorFrame::Shutdown => return Ok((State::Ended, vec![Action::Close])),
            InitiatorFrame::Other { kind } => {
                let ignored = vec![Action::Report(Event::Ignored { kind })];
                return Ok((State::Idle { crypter }, ignored));
            }
            InitiatorFrame::Ctap {
                command,
                parameters,
            } => (command, parameters),
        };
        let mut request = Vec::with_capacity(parameters.len() + 1);
        request.push(command);
        request.extend_from_slice(parameters);
        let mut actions = vec![Action::Report(Event::Request { command })];
        // What a phone does not serve never reaches the authenticator (which would refuse it
        // too): the initiator gets the status, the caller can say why.
        let refusal = if request.len() > MAX_REQUEST_LEN {
            Some(Refusal::TooLong { len: request.len() })
        } else {
            policy::admit(self.serves, &request)
                .err()
                .map(Refusal::NotServed)
        };
        let Some(refusal) = refusal else {
            actions.push(Action::Ask(request));
            return Ok((State::Serving { crypter, command }, actions));
        };
        actions.push(Action::Report(Event::Refused { command, refusal }));
        actions.extend(reply(&mut crypter, command, &[refusal.status().as_byte()])?);
        Ok((State::Idle { crypter }, actions))
    }
}

/// Refuses an overlong message unread, then decrypts it.
fn decrypt(crypter: &mut Crypter, message: &[u8]) -> Result<Zeroizing<Vec<u8>>, HybridError> {
    if message.len() > MAX_FRAME_LEN {
        return Err(HybridError::FrameTooLong {
            len: message.len(),
            max: MAX_FRAME_LEN,
        });
    }
    crypter.decrypt(message)
}

/// The answer to `command`, reported and encrypted.
fn reply(crypter: &mut Crypter, command: u8, response: &[u8]) -> Result<Vec<Action>, HybridError> {
    // An answer without a status byte goes out as it is; 0xff only names it in the report.
    let status = response.first().copied().unwrap_or(0xff);
    let frame = crypter.encrypt(&messages::ctap_response_frame(response))?;
    Ok(vec![
        Action::Report(Event::Answered { command, status }),
        Action::Send(frame),
    ])
}

#[cfg(test)]
mod tests;
