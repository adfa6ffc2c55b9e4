//! The numbers CTAPHID puts on the wire: commands, error codes, keepalive statuses and the
//! INIT capability flags (CTAP 2.1 §11.2.9).

/// Bit 7 of byte 4 tells an initialization packet (set) from a continuation packet (clear):
/// an initialization packet carries the command code with this bit set.
pub(crate) const INIT_FLAG: u8 = 0x80;

/// CTAPHID protocol version reported by CTAPHID_INIT (§11.2.9.1.3).
pub const PROTOCOL_VERSION: u8 = 2;

/// INIT capability: the device implements CTAPHID_WINK.
pub const CAPABILITY_WINK: u8 = 0x01;
/// INIT capability: the device implements CTAPHID_CBOR.
pub const CAPABILITY_CBOR: u8 = 0x04;
/// INIT capability: the device does *not* implement CTAPHID_MSG.
pub const CAPABILITY_NMSG: u8 = 0x08;

/// A CTAPHID command, without the bit 7 that marks an initialization packet on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Command {
    Ping = 0x01,
    Msg = 0x03,
    Lock = 0x04,
    Init = 0x06,
    Wink = 0x08,
    Cbor = 0x10,
    Cancel = 0x11,
    Keepalive = 0x3b,
    Error = 0x3f,
}

impl Command {
    /// The command from its 7-bit code; `None` for codes CTAPHID does not define (including the
    /// vendor range 0x40..=0x7f, which this device does not use).
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            0x01 => Some(Self::Ping),
            0x03 => Some(Self::Msg),
            0x04 => Some(Self::Lock),
            0x06 => Some(Self::Init),
            0x08 => Some(Self::Wink),
            0x10 => Some(Self::Cbor),
            0x11 => Some(Self::Cancel),
            0x3b => Some(Self::Keepalive),
            0x3f => Some(Self::Error),
            _ => None,
        }
    }

    /// The 7-bit code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The CMD byte of an initialization packet: the code with bit 7 set.
    pub fn wire_byte(self) -> u8 {
        self.code() | INIT_FLAG
    }
}

/// The one-byte payload of a CTAPHID_ERROR response (§11.2.9.1.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ErrorCode {
    InvalidCommand = 0x01,
    InvalidParameter = 0x02,
    InvalidLength = 0x03,
    InvalidSequence = 0x04,
    MessageTimeout = 0x05,
    ChannelBusy = 0x06,
    LockRequired = 0x0a,
    InvalidChannel = 0x0b,
    Other = 0x7f,
}

impl ErrorCode {
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// Why the device has not answered yet, sent in CTAPHID_KEEPALIVE (§11.2.9.1.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum KeepaliveStatus {
    Processing = 1,
    UserPresenceNeeded = 2,
}

impl KeepaliveStatus {
    pub fn code(self) -> u8 {
        self as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_COMMANDS: [Command; 9] = [
        Command::Ping,
        Command::Msg,
        Command::Lock,
        Command::Init,
        Command::Wink,
        Command::Cbor,
        Command::Cancel,
        Command::Keepalive,
        Command::Error,
    ];

    #[test]
    fn command_codes_are_those_of_the_spec() {
        // §11.2.9: the CMD byte is the code with TYPE_INIT (0x80) set.
        let wire: Vec<u8> = ALL_COMMANDS.iter().map(|c| c.wire_byte()).collect();
        assert_eq!(wire, [0x81, 0x83, 0x84, 0x86, 0x88, 0x90, 0x91, 0xbb, 0xbf]);
    }

    #[test]
    fn every_code_maps_back_to_its_command_and_nothing_else_does() {
        for code in 0..=u8::MAX {
            match Command::from_code(code) {
                Some(command) => assert_eq!(command.code(), code),
                None => assert!(ALL_COMMANDS.iter().all(|c| c.code() != code)),
            }
        }
    }

    #[test]
    fn error_and_status_codes_are_those_of_the_spec() {
        assert_eq!(ErrorCode::InvalidCommand.code(), 0x01);
        assert_eq!(ErrorCode::InvalidParameter.code(), 0x02);
        assert_eq!(ErrorCode::InvalidLength.code(), 0x03);
        assert_eq!(ErrorCode::InvalidSequence.code(), 0x04);
        assert_eq!(ErrorCode::MessageTimeout.code(), 0x05);
        assert_eq!(ErrorCode::ChannelBusy.code(), 0x06);
        assert_eq!(ErrorCode::LockRequired.code(), 0x0a);
        assert_eq!(ErrorCode::InvalidChannel.code(), 0x0b);
        assert_eq!(ErrorCode::Other.code(), 0x7f);
        assert_eq!(KeepaliveStatus::Processing.code(), 1);
        assert_eq!(KeepaliveStatus::UserPresenceNeeded.code(), 2);
    }
}
