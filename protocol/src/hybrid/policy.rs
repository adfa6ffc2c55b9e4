//! What a hybrid peer may ask: what a phone serves, and nothing more.
//!
//! The other computer reached the key because its owner scanned a QR code for one operation.
//! A phone serving that code answers getInfo, the operation the code asked for
//! (makeCredential for "mc"; getAssertion and getNextAssertion for "ga") and
//! authenticatorSelection; it has no clientPIN, no credential management, no configuration,
//! no large blobs and no reset to offer over the tunnel, and it never signs silently. So:
//! - a command a phone does not serve is CTAP1_ERR_INVALID_COMMAND (getInfo over hybrid does
//!   not list them either), whatever its parameters: no PIN can be tried, no blob read, no
//!   credential enumerated from the other computer. Of clientPIN, only getKeyAgreement is
//!   served, which hmac-secret needs and which tests nothing; every other subcommand is
//!   refused the same way;
//! - the other operation than the QR code's is CTAP2_ERR_NOT_ALLOWED;
//! - `"up": false` is refused as the command itself would refuse an option it does not
//!   support (getAssertion: CTAP2_ERR_UNSUPPORTED_OPTION; makeCredential: the spec's
//!   CTAP2_ERR_INVALID_OPTION), so nothing leaves without the person's gesture.
//!
//! The daemon checks this before a request reaches the authenticator (so it can log the
//! refusal), and the authenticator checks it again for every hybrid origin.

use ciborium::Value;

use crate::cbor;
use crate::hybrid::qr::RequestType;
use crate::status::StatusCode;
use crate::wire::{ClientPinSubcommand, Command};

/// Why a hybrid peer's request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HybridRefusal {
    /// A command a phone does not serve over hybrid (the command byte).
    NotServed(u8),
    /// The operation the QR code did not ask for (the command byte).
    OtherOperation(u8),
    /// A request without user presence (`"up": false`).
    Silent(u8),
}

impl HybridRefusal {
    /// The status the peer receives.
    pub fn status(self) -> StatusCode {
        match self {
            HybridRefusal::NotServed(_) => StatusCode::InvalidCommand,
            HybridRefusal::OtherOperation(_) => StatusCode::NotAllowed,
            HybridRefusal::Silent(command) if command == Command::MakeCredential.as_byte() => {
                StatusCode::InvalidOption
            }
            HybridRefusal::Silent(_) => StatusCode::UnsupportedOption,
        }
    }
}

impl std::fmt::Display for HybridRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HybridRefusal::NotServed(command) => {
                write!(f, "command 0x{command:02x} is not served over hybrid")
            }
            HybridRefusal::OtherOperation(command) => write!(
                f,
                "command 0x{command:02x} is not the operation the QR code asked for"
            ),
            HybridRefusal::Silent(command) => write!(
                f,
                "command 0x{command:02x} asks to skip user presence (\"up\": false)"
            ),
        }
    }
}

/// Whether a hybrid peer serving `serves` may send `request` (command byte + CBOR).
/// Malformed parameters are left to the command, which answers them precisely.
pub fn admit(serves: RequestType, request: &[u8]) -> Result<(), HybridRefusal> {
    let Some((&command, params)) = request.split_first() else {
        return Ok(());
    };
    let (wanted, options_key) = match Command::from_byte(command) {
        Some(Command::GetInfo | Command::Selection) => return Ok(()),
        Some(Command::ClientPin) if is_get_key_agreement(params) => return Ok(()),
        Some(Command::MakeCredential) => (RequestType::MakeCredential, Some(0x07)),
        Some(Command::GetAssertion) => (RequestType::GetAssertion, Some(0x05)),
        Some(Command::GetNextAssertion) => (RequestType::GetAssertion, None),
        _ => return Err(HybridRefusal::NotServed(command)),
    };
    if wanted != serves {
        return Err(HybridRefusal::OtherOperation(command));
    }
    if options_key.is_some_and(|key| asks_no_presence(params, key)) {
        return Err(HybridRefusal::Silent(command));
    }
    Ok(())
}

/// The value under integer `key` of the parameters map, if they are one.
fn param(params: &[u8], key: i64) -> Option<Value> {
    let Ok(Value::Map(entries)) = cbor::decode(params) else {
        return None;
    };
    entries
        .into_iter()
        .find(|(k, _)| k.as_integer() == Some(key.into()))
        .map(|(_, v)| v)
}

/// Whether a clientPIN request is getKeyAgreement (subCommand, key 0x02).
fn is_get_key_agreement(params: &[u8]) -> bool {
    param(params, 0x02).and_then(|v| v.as_integer())
        == Some(ClientPinSubcommand::GetKeyAgreement.as_byte().into())
}

/// Whether the options map under `key` says `"up": false`.
fn asks_no_presence(params: &[u8], key: i64) -> bool {
    let Some(Value::Map(options)) = param(params, key) else {
        return false;
    };
    options
        .iter()
        .any(|(k, v)| k.as_text() == Some("up") && *v == Value::Bool(false))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(command: u8, params: Vec<(i64, Value)>) -> Vec<u8> {
        let mut out = vec![command];
        if !params.is_empty() {
            out.extend(cbor::encode(&cbor::int_map(params)));
        }
        out
    }

    fn up(value: bool) -> Value {
        cbor::text_map(vec![("up", Value::Bool(value))])
    }

    #[test]
    fn a_ga_session_serves_get_info_selection_and_assertions() {
        let ga = RequestType::GetAssertion;
        for command in [
            Command::GetInfo.as_byte(),
            Command::Selection.as_byte(),
            Command::GetAssertion.as_byte(),
            Command::GetNextAssertion.as_byte(),
        ] {
            assert_eq!(admit(ga, &[command]), Ok(()), "{command:#x}");
        }
        assert_eq!(
            admit(ga, &[Command::MakeCredential.as_byte()]),
            Err(HybridRefusal::OtherOperation(
                Command::MakeCredential.as_byte()
            ))
        );
    }

    #[test]
    fn an_mc_session_serves_only_make_credential_of_the_two() {
        let mc = RequestType::MakeCredential;
        assert_eq!(admit(mc, &[Command::MakeCredential.as_byte()]), Ok(()));
        for command in [
            Command::GetAssertion.as_byte(),
            Command::GetNextAssertion.as_byte(),
        ] {
            assert_eq!(
                admit(mc, &[command]),
                Err(HybridRefusal::OtherOperation(command))
            );
        }
    }

    #[test]
    fn pin_management_blobs_config_and_reset_are_not_served() {
        // clientPIN, reset, credential management (and its preview number), large blobs,
        // authenticatorConfig, and anything unknown.
        for command in [0x06, 0x07, 0x0A, 0x41, 0x0C, 0x0D, 0x40, 0xff] {
            let refusal = admit(RequestType::GetAssertion, &[command, 0xa0]).unwrap_err();
            assert_eq!(refusal, HybridRefusal::NotServed(command));
            assert_eq!(refusal.status(), StatusCode::InvalidCommand);
        }
    }

    #[test]
    fn of_client_pin_only_get_key_agreement_is_served() {
        let ga = RequestType::GetAssertion;
        let subcommand = |n: i64| {
            request(
                0x06,
                vec![(1, Value::Integer(2.into())), (2, Value::Integer(n.into()))],
            )
        };
        assert_eq!(admit(ga, &subcommand(2)), Ok(()));
        // getPINRetries, setPIN, changePIN, getPinToken, getPinUvAuthTokenUsingUv...,
        // getUVRetries, getPinUvAuthTokenUsingPin...: refused, whatever the PIN.
        for n in [1, 3, 4, 5, 6, 7, 9] {
            assert_eq!(
                admit(ga, &subcommand(n)),
                Err(HybridRefusal::NotServed(0x06)),
                "subcommand {n}"
            );
        }
        assert_eq!(admit(ga, &[0x06]), Err(HybridRefusal::NotServed(0x06)));
    }

    #[test]
    fn up_false_is_refused_with_the_commands_own_status() {
        let ga = request(
            Command::GetAssertion.as_byte(),
            vec![(1, Value::Text("x".into())), (5, up(false))],
        );
        let refusal = admit(RequestType::GetAssertion, &ga).unwrap_err();
        assert_eq!(refusal.status(), StatusCode::UnsupportedOption);
        let mc = request(Command::MakeCredential.as_byte(), vec![(7, up(false))]);
        let refusal = admit(RequestType::MakeCredential, &mc).unwrap_err();
        assert_eq!(refusal.status(), StatusCode::InvalidOption);
        let ga = request(Command::GetAssertion.as_byte(), vec![(5, up(true))]);
        assert_eq!(admit(RequestType::GetAssertion, &ga), Ok(()));
        // "up" under another key is not the options map.
        let ga = request(Command::GetAssertion.as_byte(), vec![(4, up(false))]);
        assert_eq!(admit(RequestType::GetAssertion, &ga), Ok(()));
    }
}
