//! CTAP 2.1 (§6): the authenticator and the commands it answers, dispatched on the command byte.
//!
//! - [`authenticator`]: the state machine's data and what every command shares (presence,
//!   continuations); [`state`]: what spans commands and what persists;
//! - [`pin`]: clientPIN, the PIN/UV auth protocols, pinUvAuthTokens and built-in UV;
//! - `commands`: one file per command; `extensions`, [`authenticator_data`]: what
//!   makeCredential and getAssertion share;
//! - what a hybrid peer may ask is [`crate::hybrid::policy`]'s to say.

pub mod authenticator;
pub mod authenticator_data;
pub(crate) mod commands;
mod extensions;
mod hmac_secret;
pub mod pin;
pub mod state;
#[cfg(test)]
pub(crate) mod test_support;
pub mod types;

use ciborium::Value;

pub use crate::status::StatusCode;
pub use pin::client_pin::MAX_PIN_BYTES;
pub use pin::token::{permission, PinSession};
pub use state::persistent::{
    PersistentState, DEFAULT_MIN_PIN_LENGTH, MAX_PIN_RETRIES, MAX_UV_RETRIES,
};

use crate::cbor;
use crate::ctap2::authenticator::Authenticator;
use crate::env::Env;
use crate::origin::{Origin, Transport};

pub const MAKE_CREDENTIAL: u8 = 0x01;
pub const GET_ASSERTION: u8 = 0x02;
pub const GET_INFO: u8 = 0x04;
pub const CLIENT_PIN: u8 = 0x06;
pub const RESET: u8 = 0x07;
pub const GET_NEXT_ASSERTION: u8 = 0x08;
pub const SELECTION: u8 = 0x0B;
pub const CREDENTIAL_MANAGEMENT: u8 = 0x0A;
pub const LARGE_BLOBS: u8 = 0x0C;
pub const AUTHENTICATOR_CONFIG: u8 = 0x0D;
/// authenticatorCredentialManagement under its FIDO_2_1_PRE number.
pub const CREDENTIAL_MANAGEMENT_PREVIEW: u8 = 0x41;

impl<E: Env> Authenticator<E> {
    /// Answers a CTAPHID_CBOR message from `origin`: command byte + CBOR parameters in,
    /// status byte + CBOR response out.
    pub fn process_cbor(&mut self, origin: Origin, request: &[u8]) -> Vec<u8> {
        self.begin_command(origin);
        process(self, request)
    }
}

/// Runs one CTAP2 request (command byte + CBOR parameters) and encodes the response: status
/// byte, then the CBOR response map if the command has one.
pub fn process<E: Env>(authenticator: &mut Authenticator<E>, request: &[u8]) -> Vec<u8> {
    let Some((&command, params)) = request.split_first() else {
        return vec![StatusCode::InvalidLength.as_byte()];
    };
    // A hybrid peer gets what a phone serves, nothing more.
    if let Transport::Hybrid(serves) = authenticator.command.origin.transport {
        if let Err(refusal) = crate::hybrid::policy::admit(serves, request) {
            return vec![refusal.status().as_byte()];
        }
    }
    // What a command does with the state another command left is in `state`: it was taken
    // out before this command began, and only a continuation gets it back.
    let result = match command {
        MAKE_CREDENTIAL => authenticator.make_credential(params),
        GET_ASSERTION => authenticator.get_assertion(params),
        GET_INFO => authenticator.get_info(params),
        CLIENT_PIN => authenticator.client_pin(params),
        RESET => authenticator.reset(params),
        GET_NEXT_ASSERTION => authenticator.get_next_assertion(params),
        SELECTION => authenticator.selection(params),
        CREDENTIAL_MANAGEMENT | CREDENTIAL_MANAGEMENT_PREVIEW => {
            authenticator.credential_management(params)
        }
        LARGE_BLOBS => authenticator.large_blobs(params),
        AUTHENTICATOR_CONFIG => authenticator.authenticator_config(params),
        _ => Err(StatusCode::InvalidCommand),
    };
    match result {
        Ok(Value::Null) => vec![StatusCode::Success.as_byte()],
        Ok(response) => {
            let mut out = vec![StatusCode::Success.as_byte()];
            out.extend(cbor::encode(&response));
            out
        }
        Err(status) => vec![status.as_byte()],
    }
}
