//! The CTAP2 command bytes (CTAP 2.1 §6: "Authenticator API").

use super::fields::byte_enum;

byte_enum! {
    /// A CTAP2 command, as the first byte of a CTAPHID_CBOR message.
    pub enum Command {
        MakeCredential = 0x01,
        GetAssertion = 0x02,
        GetInfo = 0x04,
        ClientPin = 0x06,
        Reset = 0x07,
        GetNextAssertion = 0x08,
        CredentialManagement = 0x0A,
        Selection = 0x0B,
        LargeBlobs = 0x0C,
        Config = 0x0D,
        /// authenticatorCredentialManagement under its FIDO_2_1_PRE number.
        CredentialManagementPreview = 0x41,
    }
}

impl Command {
    /// The command a byte stands for; `None` for a byte CTAP does not define (answered
    /// CTAP1_ERR_INVALID_COMMAND).
    pub fn from_byte(byte: u8) -> Option<Self> {
        Self::from_number(byte.into())
    }

    /// The command's name in the spec, for logs and prompts.
    pub fn spec_name(self) -> &'static str {
        match self {
            Command::MakeCredential => "authenticatorMakeCredential",
            Command::GetAssertion => "authenticatorGetAssertion",
            Command::GetInfo => "authenticatorGetInfo",
            Command::ClientPin => "authenticatorClientPIN",
            Command::Reset => "authenticatorReset",
            Command::GetNextAssertion => "authenticatorGetNextAssertion",
            Command::CredentialManagement | Command::CredentialManagementPreview => {
                "authenticatorCredentialManagement"
            }
            Command::Selection => "authenticatorSelection",
            Command::LargeBlobs => "authenticatorLargeBlobs",
            Command::Config => "authenticatorConfig",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_byte_of_ctap_2_1_section_6_round_trips() {
        let bytes = [
            0x01, 0x02, 0x04, 0x06, 0x07, 0x08, 0x0A, 0x0B, 0x0C, 0x0D, 0x41,
        ];
        for byte in bytes {
            let command = Command::from_byte(byte).expect("a CTAP 2.1 command");
            assert_eq!(command.as_byte(), byte);
        }
        // 0x03 and 0x05 are unassigned, 0x40 is the vendor range's first byte.
        for byte in [0x00, 0x03, 0x05, 0x09, 0x0E, 0x40, 0x42, 0xFF] {
            assert_eq!(Command::from_byte(byte), None, "{byte:#04x}");
        }
    }
}
