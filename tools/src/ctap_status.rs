//! CTAP status codes (CTAP 2.1 §8.2) in words, for messages.

/// "PIN_INVALID (0x31): the PIN is wrong" and so on.
pub fn describe(status: u8) -> String {
    let (name, meaning) = match status {
        0x01 => ("INVALID_COMMAND", "the key does not know this command"),
        0x02 => ("INVALID_PARAMETER", "a parameter is invalid"),
        0x03 => ("INVALID_LENGTH", "a length is invalid"),
        0x11 => ("CBOR_UNEXPECTED_TYPE", "the request is malformed"),
        0x12 => ("INVALID_CBOR", "the request is not valid CBOR"),
        0x14 => ("MISSING_PARAMETER", "a parameter is missing"),
        0x2B => ("UNSUPPORTED_OPTION", "the key does not support this option"),
        0x2C => ("INVALID_OPTION", "an option is invalid"),
        0x2D => ("KEEPALIVE_CANCEL", "the request was cancelled"),
        0x2E => ("NO_CREDENTIALS", "no credentials"),
        0x2F => ("USER_ACTION_TIMEOUT", "nobody answered in time"),
        0x27 => ("OPERATION_DENIED", "refused"),
        0x30 => ("NOT_ALLOWED", "not allowed now"),
        0x31 => ("PIN_INVALID", "the PIN is wrong"),
        0x32 => (
            "PIN_BLOCKED",
            "the PIN is blocked: only a reset of the key helps",
        ),
        0x33 => ("PIN_AUTH_INVALID", "the PIN authentication failed"),
        0x34 => (
            "PIN_AUTH_BLOCKED",
            "too many wrong PINs in a row: restart the key (or fido2d) to try again",
        ),
        0x35 => ("PIN_NOT_SET", "no PIN is set"),
        0x36 => ("PUAT_REQUIRED", "a PIN is required"),
        0x37 => (
            "PIN_POLICY_VIOLATION",
            "the PIN does not meet the key's policy",
        ),
        0x39 => ("REQUEST_TOO_LARGE", "the request is too large"),
        0x3A => ("ACTION_TIMEOUT", "the request took too long"),
        0x3B => ("UP_REQUIRED", "a touch is required"),
        0x3C => ("UV_BLOCKED", "user verification is blocked"),
        0x3E => (
            "INVALID_SUBCOMMAND",
            "the key does not know this subcommand",
        ),
        0x3F => ("UV_INVALID", "user verification failed"),
        0x40 => ("UNAUTHORIZED_PERMISSION", "the token lacks the permission"),
        _ => ("ERROR", "the key refused"),
    };
    format!("{name} (0x{status:02x}): {meaning}")
}
