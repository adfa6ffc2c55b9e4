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

use crate::status::StatusCode;

use crate::ctap2::authenticator::Authenticator;
use crate::env::Env;
use crate::origin::{Origin, Transport};
use crate::wire::{
    ClientPinRequest, Command, ConfigRequest, CredentialManagementRequest, GetAssertionRequest,
    GetInfoRequest, GetNextAssertionRequest, LargeBlobsRequest, MakeCredentialRequest, Request,
    ResetRequest, Response, SelectionRequest,
};

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
    let Some(command) = Command::from_byte(command) else {
        return vec![StatusCode::InvalidCommand.as_byte()];
    };
    // What a command does with the state another command left is in `state`: it was taken
    // out before this command began, and only a continuation gets it back.
    match command {
        Command::MakeCredential => run(params, |request: MakeCredentialRequest| {
            authenticator.make_credential(request)
        }),
        Command::GetAssertion => run(params, |request: GetAssertionRequest| {
            authenticator.get_assertion(request)
        }),
        Command::GetNextAssertion => run(params, |request: GetNextAssertionRequest| {
            authenticator.get_next_assertion(request)
        }),
        Command::GetInfo => run(params, |request: GetInfoRequest| {
            authenticator.get_info(request)
        }),
        Command::ClientPin => run(params, |request: ClientPinRequest| {
            authenticator.client_pin(request)
        }),
        Command::Reset => run(params, |request: ResetRequest| authenticator.reset(request)),
        Command::Selection => run(params, |request: SelectionRequest| {
            authenticator.selection(request)
        }),
        Command::CredentialManagement | Command::CredentialManagementPreview => {
            run(params, |request: CredentialManagementRequest| {
                authenticator.credential_management(request)
            })
        }
        Command::LargeBlobs => run(params, |request: LargeBlobsRequest| {
            authenticator.large_blobs(request)
        }),
        Command::Config => run(params, |request: ConfigRequest| {
            authenticator.authenticator_config(request)
        }),
    }
}

/// A command: its request decoded (a malformed one answered with its precise
/// status), the command run, its response encoded, or the status byte alone.
fn run<Q: Request, S: Response>(
    params: &[u8],
    command: impl FnOnce(Q) -> Result<S, StatusCode>,
) -> Vec<u8> {
    match Q::decode(params).and_then(command) {
        Ok(response) => response.encode(),
        Err(status) => vec![status.as_byte()],
    }
}
