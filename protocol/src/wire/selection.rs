//! authenticatorSelection (CTAP 2.1 §6.9): no parameters, and no answer but the status.

use ciborium::Value;

use super::command::Command;
use super::message::Request;
use crate::status::StatusCode;

/// An authenticatorSelection request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SelectionRequest;

impl Request for SelectionRequest {
    const COMMAND: Command = Command::Selection;

    /// The command has no parameters; whatever follows the command byte is not read (as
    /// before the typed requests: the gesture is the whole answer).
    fn decode(_params: &[u8]) -> Result<Self, StatusCode> {
        Ok(SelectionRequest)
    }

    fn to_cbor(&self) -> Option<Value> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_selection_is_the_command_byte_alone() {
        assert_eq!(SelectionRequest.encode(), vec![0x0B]);
        assert_eq!(SelectionRequest::decode(&[0xa0]), Ok(SelectionRequest));
    }
}
