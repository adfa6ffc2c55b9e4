//! The CTAP2 message format (CTAP 2.1 §6): every command's request and response as a typed
//! value, with its CBOR encoding and decoding in one place.
//!
//! Both sides use these types: the authenticator decodes requests and encodes responses; a
//! platform (fido2ctl, the tests, the benches, the fuzz targets) encodes requests and decodes
//! responses. Decoding reads a [`ciborium::Value`] field by field rather than through a serde
//! derive, because CTAP names a status for each way a field can be wrong (absent:
//! MISSING_PARAMETER, of the wrong type: CBOR_UNEXPECTED_TYPE, undecodable:
//! INVALID_CBOR), and a derive reports all of them as one error. Encoding is canonical (CTAP
//! 2.1 §8: definite lengths, map keys in the canonical order) through [`crate::cbor::encode`].

mod client_pin;
mod command;
mod config;
mod credential_management;
pub mod entities;
pub mod extensions;
mod fields;
pub mod get_assertion;
pub mod get_info;
mod key_agreement;
mod large_blobs;
pub mod make_credential;
pub mod permission;
mod reset;
mod selection;

pub use crate::status::StatusCode;
pub use client_pin::{ClientPinRequest, ClientPinResponse, ClientPinSubcommand};
pub use command::Command;
pub use config::{ConfigRequest, ConfigSubcommand, SetMinPinLengthParams};
pub use credential_management::{
    CredentialManagementParams, CredentialManagementRequest, CredentialManagementResponse,
    CredentialManagementSubcommand,
};
pub use entities::{
    Options, PublicKeyCredentialDescriptor, PublicKeyCredentialParameters,
    PublicKeyCredentialRpEntity, PublicKeyCredentialUserEntity,
};
pub use extensions::{GetAssertionExtensionsInput, HmacSecretInput, MakeCredentialExtensionsInput};
pub use get_assertion::{GetAssertionRequest, GetAssertionResponse, GetNextAssertionRequest};
pub use get_info::{GetInfoRequest, GetInfoResponse};
pub use key_agreement::KeyAgreementPublicKey;
pub use large_blobs::{LargeBlobsRequest, LargeBlobsResponse};
pub use make_credential::{MakeCredentialRequest, MakeCredentialResponse};
pub use reset::ResetRequest;
pub use selection::SelectionRequest;

use ciborium::Value;

use crate::cbor;

/// A CTAP2 request: the command byte and its parameter map.
pub trait Request: Sized {
    const COMMAND: Command;

    /// Reads the parameters (the bytes after the command byte). An empty buffer is an empty
    /// map: a command with only optional parameters may be sent with none.
    fn decode(params: &[u8]) -> Result<Self, StatusCode>;

    /// The parameter map as a platform sends it; `None` for a command sent without one.
    fn to_cbor(&self) -> Option<Value>;

    /// The whole message a platform sends: the command byte, then the canonical CBOR map.
    fn encode(&self) -> Vec<u8> {
        let mut message = vec![Self::COMMAND.as_byte()];
        if let Some(params) = self.to_cbor() {
            message.extend(cbor::encode(&params));
        }
        message
    }
}

/// A CTAP2 response body: what follows the status byte of a successful answer.
pub trait Response: Sized {
    /// The response map; `None` for a command whose success carries no body.
    fn to_cbor(&self) -> Option<Value>;

    /// Reads a response body as a platform receives it.
    fn decode(body: &[u8]) -> Result<Self, StatusCode>;

    /// The whole answer: the success status byte, then the canonical CBOR map if any.
    fn encode(&self) -> Vec<u8> {
        let mut answer = vec![StatusCode::Success.as_byte()];
        if let Some(body) = self.to_cbor() {
            answer.extend(cbor::encode(&body));
        }
        answer
    }
}

/// A map with integer keys as the message types name them (every key is small).
fn int_map(entries: Vec<(i128, Value)>) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(key, value)| (entities::integer(key), value))
            .collect(),
    )
}
