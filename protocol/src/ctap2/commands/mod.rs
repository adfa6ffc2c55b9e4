//! One file per CTAP 2.1 command (§6), each an `impl` on the authenticator taking its
//! request's parameters and returning its response. authenticatorClientPIN is with the rest of
//! PIN/UV in [`super::pin`].

pub(crate) mod config;
mod credential_management;
pub(crate) mod get_assertion;
mod get_info;
mod get_next_assertion;
pub(crate) mod large_blobs;
mod make_credential;
mod reset;
mod selection;
