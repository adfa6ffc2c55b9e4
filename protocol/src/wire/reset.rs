//! authenticatorReset (CTAP 2.1 §6.6): no parameters, and no answer but the status.

use ciborium::Value;

use super::command::Command;
use super::message::Request;
use crate::status::StatusCode;

/// An authenticatorReset request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResetRequest;

impl Request for ResetRequest {
    const COMMAND: Command = Command::Reset;

    /// The command has no parameters; whatever follows the command byte is not read (as
    /// before the typed requests: a reset is judged by the time and the person's consent).
    fn decode(_params: &[u8]) -> Result<Self, StatusCode> {
        Ok(ResetRequest)
    }

    fn to_cbor(&self) -> Option<Value> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reset_is_the_command_byte_alone() {
        assert_eq!(ResetRequest.encode(), vec![0x07]);
        assert_eq!(ResetRequest::decode(&[]), Ok(ResetRequest));
        assert_eq!(ResetRequest::decode(&[0xff]), Ok(ResetRequest));
    }
}
