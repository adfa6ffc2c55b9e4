//! CTAP status codes (CTAP 2.1 §8.2 "Status codes").

/// A CTAP status byte. `Success` is never an error value; every other variant is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum StatusCode {
    Success = 0x00,
    InvalidCommand = 0x01,
    InvalidParameter = 0x02,
    InvalidLength = 0x03,
    InvalidSeq = 0x04,
    Timeout = 0x05,
    ChannelBusy = 0x06,
    LockRequired = 0x0A,
    InvalidChannel = 0x0B,
    CborUnexpectedType = 0x11,
    InvalidCbor = 0x12,
    MissingParameter = 0x14,
    LimitExceeded = 0x15,
    FpDatabaseFull = 0x17,
    LargeBlobStorageFull = 0x18,
    CredentialExcluded = 0x19,
    Processing = 0x21,
    InvalidCredential = 0x22,
    UserActionPending = 0x23,
    OperationPending = 0x24,
    NoOperations = 0x25,
    UnsupportedAlgorithm = 0x26,
    OperationDenied = 0x27,
    KeyStoreFull = 0x28,
    UnsupportedOption = 0x2B,
    InvalidOption = 0x2C,
    KeepaliveCancel = 0x2D,
    NoCredentials = 0x2E,
    UserActionTimeout = 0x2F,
    NotAllowed = 0x30,
    PinInvalid = 0x31,
    PinBlocked = 0x32,
    PinAuthInvalid = 0x33,
    PinAuthBlocked = 0x34,
    PinNotSet = 0x35,
    PuatRequired = 0x36,
    PinPolicyViolation = 0x37,
    RequestTooLarge = 0x39,
    ActionTimeout = 0x3A,
    UpRequired = 0x3B,
    UvBlocked = 0x3C,
    IntegrityFailure = 0x3D,
    InvalidSubcommand = 0x3E,
    UvInvalid = 0x3F,
    UnauthorizedPermission = 0x40,
    Other = 0x7F,
}

impl StatusCode {
    pub fn as_byte(self) -> u8 {
        self as u8
    }

    /// The status a byte stands for, if the spec names it.
    pub fn from_byte(byte: u8) -> Option<Self> {
        Some(match byte {
            0x00 => StatusCode::Success,
            0x01 => StatusCode::InvalidCommand,
            0x02 => StatusCode::InvalidParameter,
            0x03 => StatusCode::InvalidLength,
            0x04 => StatusCode::InvalidSeq,
            0x05 => StatusCode::Timeout,
            0x06 => StatusCode::ChannelBusy,
            0x0A => StatusCode::LockRequired,
            0x0B => StatusCode::InvalidChannel,
            0x11 => StatusCode::CborUnexpectedType,
            0x12 => StatusCode::InvalidCbor,
            0x14 => StatusCode::MissingParameter,
            0x15 => StatusCode::LimitExceeded,
            0x17 => StatusCode::FpDatabaseFull,
            0x18 => StatusCode::LargeBlobStorageFull,
            0x19 => StatusCode::CredentialExcluded,
            0x21 => StatusCode::Processing,
            0x22 => StatusCode::InvalidCredential,
            0x23 => StatusCode::UserActionPending,
            0x24 => StatusCode::OperationPending,
            0x25 => StatusCode::NoOperations,
            0x26 => StatusCode::UnsupportedAlgorithm,
            0x27 => StatusCode::OperationDenied,
            0x28 => StatusCode::KeyStoreFull,
            0x2B => StatusCode::UnsupportedOption,
            0x2C => StatusCode::InvalidOption,
            0x2D => StatusCode::KeepaliveCancel,
            0x2E => StatusCode::NoCredentials,
            0x2F => StatusCode::UserActionTimeout,
            0x30 => StatusCode::NotAllowed,
            0x31 => StatusCode::PinInvalid,
            0x32 => StatusCode::PinBlocked,
            0x33 => StatusCode::PinAuthInvalid,
            0x34 => StatusCode::PinAuthBlocked,
            0x35 => StatusCode::PinNotSet,
            0x36 => StatusCode::PuatRequired,
            0x37 => StatusCode::PinPolicyViolation,
            0x39 => StatusCode::RequestTooLarge,
            0x3A => StatusCode::ActionTimeout,
            0x3B => StatusCode::UpRequired,
            0x3C => StatusCode::UvBlocked,
            0x3D => StatusCode::IntegrityFailure,
            0x3E => StatusCode::InvalidSubcommand,
            0x3F => StatusCode::UvInvalid,
            0x40 => StatusCode::UnauthorizedPermission,
            0x7F => StatusCode::Other,
            _ => return None,
        })
    }

    /// The spec's name without its `CTAP1_ERR_`/`CTAP2_ERR_` prefix (`PIN_INVALID`); `OK`
    /// for success.
    pub fn spec_name(self) -> &'static str {
        match self {
            StatusCode::Success => "OK",
            StatusCode::InvalidCommand => "INVALID_COMMAND",
            StatusCode::InvalidParameter => "INVALID_PARAMETER",
            StatusCode::InvalidLength => "INVALID_LENGTH",
            StatusCode::InvalidSeq => "INVALID_SEQ",
            StatusCode::Timeout => "TIMEOUT",
            StatusCode::ChannelBusy => "CHANNEL_BUSY",
            StatusCode::LockRequired => "LOCK_REQUIRED",
            StatusCode::InvalidChannel => "INVALID_CHANNEL",
            StatusCode::CborUnexpectedType => "CBOR_UNEXPECTED_TYPE",
            StatusCode::InvalidCbor => "INVALID_CBOR",
            StatusCode::MissingParameter => "MISSING_PARAMETER",
            StatusCode::LimitExceeded => "LIMIT_EXCEEDED",
            StatusCode::FpDatabaseFull => "FP_DATABASE_FULL",
            StatusCode::LargeBlobStorageFull => "LARGE_BLOB_STORAGE_FULL",
            StatusCode::CredentialExcluded => "CREDENTIAL_EXCLUDED",
            StatusCode::Processing => "PROCESSING",
            StatusCode::InvalidCredential => "INVALID_CREDENTIAL",
            StatusCode::UserActionPending => "USER_ACTION_PENDING",
            StatusCode::OperationPending => "OPERATION_PENDING",
            StatusCode::NoOperations => "NO_OPERATIONS",
            StatusCode::UnsupportedAlgorithm => "UNSUPPORTED_ALGORITHM",
            StatusCode::OperationDenied => "OPERATION_DENIED",
            StatusCode::KeyStoreFull => "KEY_STORE_FULL",
            StatusCode::UnsupportedOption => "UNSUPPORTED_OPTION",
            StatusCode::InvalidOption => "INVALID_OPTION",
            StatusCode::KeepaliveCancel => "KEEPALIVE_CANCEL",
            StatusCode::NoCredentials => "NO_CREDENTIALS",
            StatusCode::UserActionTimeout => "USER_ACTION_TIMEOUT",
            StatusCode::NotAllowed => "NOT_ALLOWED",
            StatusCode::PinInvalid => "PIN_INVALID",
            StatusCode::PinBlocked => "PIN_BLOCKED",
            StatusCode::PinAuthInvalid => "PIN_AUTH_INVALID",
            StatusCode::PinAuthBlocked => "PIN_AUTH_BLOCKED",
            StatusCode::PinNotSet => "PIN_NOT_SET",
            StatusCode::PuatRequired => "PUAT_REQUIRED",
            StatusCode::PinPolicyViolation => "PIN_POLICY_VIOLATION",
            StatusCode::RequestTooLarge => "REQUEST_TOO_LARGE",
            StatusCode::ActionTimeout => "ACTION_TIMEOUT",
            StatusCode::UpRequired => "UP_REQUIRED",
            StatusCode::UvBlocked => "UV_BLOCKED",
            StatusCode::IntegrityFailure => "INTEGRITY_FAILURE",
            StatusCode::InvalidSubcommand => "INVALID_SUBCOMMAND",
            StatusCode::UvInvalid => "UV_INVALID",
            StatusCode::UnauthorizedPermission => "UNAUTHORIZED_PERMISSION",
            StatusCode::Other => "OTHER",
        }
    }
}

impl std::fmt::Display for StatusCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?} (0x{:02x})", self.as_byte())
    }
}

#[cfg(test)]
mod byte_tests {
    use super::*;

    #[test]
    fn every_status_reads_back_from_its_byte_and_has_the_specs_name() {
        for byte in 0..=u8::MAX {
            if let Some(code) = StatusCode::from_byte(byte) {
                assert_eq!(code.as_byte(), byte);
                assert!(code
                    .spec_name()
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit()));
            }
        }
        assert_eq!(StatusCode::from_byte(0x31), Some(StatusCode::PinInvalid));
        assert_eq!(StatusCode::PinInvalid.spec_name(), "PIN_INVALID");
        assert_eq!(
            StatusCode::CborUnexpectedType.spec_name(),
            "CBOR_UNEXPECTED_TYPE"
        );
        assert_eq!(StatusCode::from_byte(0x38), None, "0x38 is not assigned");
    }
}
