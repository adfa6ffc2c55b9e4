//! User verification by PIN or built-in method (CTAP 2.1 §6.5): authenticatorClientPIN, the
//! PIN/UV auth protocols, the pinUvAuthToken and its permissions, and how a command checks a
//! pinUvAuthParam.

pub mod built_in_uv;
pub mod client_pin;
#[cfg(test)]
mod persistent_token_tests;
pub mod protocol;
pub mod token;
pub mod uv_auth;
