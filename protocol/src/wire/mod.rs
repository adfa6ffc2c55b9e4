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
mod message;
pub mod permission;
mod reset;
mod selection;
mod subcommand;

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
pub use message::{NoBody, Request, Response};
pub use reset::ResetRequest;
pub use selection::SelectionRequest;
pub use subcommand::{Subcommand, SubcommandRequest};
