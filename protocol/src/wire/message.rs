//! What every CTAP2 message type offers: a request's command byte and both directions of its
//! CBOR, a response's body both ways.

use ciborium::Value;

use super::command::Command;
use crate::cbor;
use crate::status::StatusCode;

/// A CTAP2 request: the command byte and its parameter map.
pub trait Request: Sized {
    const COMMAND: Command;

    /// Reads the parameters (the bytes after the command byte). An empty buffer is an empty
    /// map: a command with only optional parameters may be sent with none.
    fn decode(params: &[u8]) -> Result<Self, StatusCode>;

    /// The parameter map as a platform sends it; `None` for a command sent without one.
    fn to_cbor(&self) -> Option<Value>;

    /// The whole message a platform sends: the command byte, then the canonical CBOR map.
    fn encode(&self) -> Vec<u8> {
        let mut message = vec![Self::COMMAND.as_byte()];
        if let Some(params) = self.to_cbor() {
            message.extend(cbor::encode(&params));
        }
        message
    }
}

/// A CTAP2 response body: what follows the status byte of a successful answer.
pub trait Response: Sized {
    /// The response map; `None` for a command whose success carries no body.
    fn to_cbor(&self) -> Option<Value>;

    /// Reads a response body as a platform receives it.
    fn decode(body: &[u8]) -> Result<Self, StatusCode>;

    /// The whole answer: the success status byte, then the canonical CBOR map if any.
    fn encode(&self) -> Vec<u8> {
        let mut answer = vec![StatusCode::Success.as_byte()];
        if let Some(body) = self.to_cbor() {
            answer.extend(cbor::encode(&body));
        }
        answer
    }
}

/// The answer of a command whose success carries no body (authenticatorReset §6.6,
/// authenticatorSelection §6.9, authenticatorConfig §6.11): the status byte 0x00 alone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoBody;

impl Response for NoBody {
    fn to_cbor(&self) -> Option<Value> {
        None
    }

    /// Only an empty body: anything after the status byte is not this answer.
    fn decode(body: &[u8]) -> Result<Self, StatusCode> {
        if body.is_empty() {
            Ok(NoBody)
        } else {
            Err(StatusCode::InvalidCbor)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_body_is_the_success_status_alone() {
        assert_eq!(NoBody.encode(), vec![0x00]);
        assert_eq!(NoBody::decode(&[]), Ok(NoBody));
        assert_eq!(NoBody::decode(&[0xa0]), Err(StatusCode::InvalidCbor));
    }
}
