//! CTAP status codes (CTAP 2.1 §8.2) in words, for messages: the spec's names come from
//! `protocol`'s [`StatusCode`]; what each means to a person is said here.

use protocol::status::StatusCode;

/// "PIN_INVALID (0x31): the PIN is wrong" and so on.
pub fn describe(status: u8) -> String {
    let (name, meaning) = match StatusCode::from_byte(status) {
        Some(code) => (code.spec_name(), meaning(code)),
        None => ("ERROR", "the key refused"),
    };
    format!("{name} (0x{status:02x}): {meaning}")
}

/// What a status means to the person using fido2ctl.
fn meaning(code: StatusCode) -> &'static str {
    match code {
        StatusCode::InvalidCommand => "the key does not know this command",
        StatusCode::InvalidParameter => "a parameter is invalid",
        StatusCode::InvalidLength => "a length is invalid",
        StatusCode::CborUnexpectedType => "the request is malformed",
        StatusCode::InvalidCbor => "the request is not valid CBOR",
        StatusCode::MissingParameter => "a parameter is missing",
        StatusCode::UnsupportedOption => "the key does not support this option",
        StatusCode::InvalidOption => "an option is invalid",
        StatusCode::KeepaliveCancel => "the request was cancelled",
        StatusCode::NoCredentials => "no credentials",
        StatusCode::UserActionTimeout => "nobody answered in time",
        StatusCode::OperationDenied => "refused",
        StatusCode::NotAllowed => "not allowed now",
        StatusCode::PinInvalid => "the PIN is wrong",
        StatusCode::PinBlocked => "the PIN is blocked: only a reset of the key helps",
        StatusCode::PinAuthInvalid => "the PIN authentication failed",
        StatusCode::PinAuthBlocked => {
            "too many wrong PINs in a row: restart the key (or fido2d) to try again"
        }
        StatusCode::PinNotSet => "no PIN is set",
        StatusCode::PuatRequired => "a PIN is required",
        StatusCode::PinPolicyViolation => "the PIN does not meet the key's policy",
        StatusCode::RequestTooLarge => "the request is too large",
        StatusCode::ActionTimeout => "the request took too long",
        StatusCode::UpRequired => "a touch is required",
        StatusCode::UvBlocked => "user verification is blocked",
        StatusCode::InvalidSubcommand => "the key does not know this subcommand",
        StatusCode::UvInvalid => "user verification failed",
        StatusCode::UnauthorizedPermission => "the token lacks the permission",
        _ => "the key refused",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_spec_and_unknown_bytes_still_read() {
        assert_eq!(describe(0x31), "PIN_INVALID (0x31): the PIN is wrong");
        assert_eq!(describe(0x38), "ERROR (0x38): the key refused");
    }
}
