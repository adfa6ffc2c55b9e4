//! What the frames carry.
//!
//! The first frame from us has no type byte: a CBOR map {1: our getInfo response (the CBOR
//! bytes), 2: linking information (we offer none), 3: the message kinds we accept (absent =
//! just CTAP)}. After it every frame is `type | payload`: 0 = shutdown, 1 = CTAP (request
//! `cmd | CBOR`, response `status | CBOR`), 2 = update (linking), 3 = JSON (digital
//! credentials, not served).

use ciborium::Value;

use super::HybridError;

const SHUTDOWN: u8 = 0;
const CTAP: u8 = 1;
const UPDATE: u8 = 2;

/// The post-handshake message: our getInfo, and no linking (we cannot be woken later).
pub fn post_handshake_message(get_info_cbor: &[u8]) -> Vec<u8> {
    crate::cbor::encode(&Value::Map(vec![(
        Value::from(1),
        Value::Bytes(get_info_cbor.to_vec()),
    )]))
}

/// A frame from the initiator.
#[derive(Debug, PartialEq, Eq)]
pub enum InitiatorFrame<'a> {
    /// The initiator is done: end the session.
    Shutdown,
    /// A CTAP request: command byte, then its CBOR parameters.
    Ctap { command: u8, parameters: &'a [u8] },
    /// Linking information or a kind we do not serve: ignored.
    Other { kind: u8 },
}

impl<'a> InitiatorFrame<'a> {
    pub fn parse(frame: &'a [u8]) -> Result<Self, HybridError> {
        let Some((&kind, payload)) = frame.split_first() else {
            return Err(HybridError::BadFrame("an empty frame"));
        };
        match kind {
            SHUTDOWN => Ok(InitiatorFrame::Shutdown),
            CTAP => {
                let Some((&command, parameters)) = payload.split_first() else {
                    return Err(HybridError::BadFrame("a CTAP frame without a command"));
                };
                Ok(InitiatorFrame::Ctap {
                    command,
                    parameters,
                })
            }
            UPDATE => Ok(InitiatorFrame::Other { kind }),
            other => Ok(InitiatorFrame::Other { kind: other }),
        }
    }
}

/// Our answer to a CTAP request (`status | CBOR`, as the authenticator produced it).
pub fn ctap_response_frame(response: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(response.len() + 1);
    frame.push(CTAP);
    frame.extend_from_slice(response);
    frame
}

/// A shutdown frame (Chrome treats one from the authenticator as an error: we just close).
pub fn shutdown_frame() -> Vec<u8> {
    vec![SHUTDOWN]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn post_handshake_message_wraps_get_info() {
        let get_info = [0xa1, 0x01, 0x81, 0x66, b'F', b'I', b'D', b'O', b'_', b'2'];
        let message = post_handshake_message(&get_info);
        let value = crate::cbor::decode(&message).unwrap();
        let Value::Map(entries) = value else {
            panic!("not a map")
        };
        assert_eq!(entries.len(), 1, "no linking map");
        assert_eq!(entries[0].0, Value::from(1));
        assert_eq!(entries[0].1, Value::Bytes(get_info.to_vec()));
    }

    #[test]
    fn parses_frames() {
        assert_eq!(
            InitiatorFrame::parse(&[0]).unwrap(),
            InitiatorFrame::Shutdown
        );
        assert_eq!(
            InitiatorFrame::parse(&[1, 4]).unwrap(),
            InitiatorFrame::Ctap {
                command: 4,
                parameters: &[]
            }
        );
        assert_eq!(
            InitiatorFrame::parse(&[1, 1, 0xa0]).unwrap(),
            InitiatorFrame::Ctap {
                command: 1,
                parameters: &[0xa0]
            }
        );
        assert_eq!(
            InitiatorFrame::parse(&[2, 0xa0]).unwrap(),
            InitiatorFrame::Other { kind: 2 }
        );
        assert_eq!(
            InitiatorFrame::parse(&[3, b'{', b'}']).unwrap(),
            InitiatorFrame::Other { kind: 3 }
        );
        assert_eq!(
            InitiatorFrame::parse(&[0xff]).unwrap(),
            InitiatorFrame::Other { kind: 0xff }
        );
    }

    #[test]
    fn malformed_frames_are_errors() {
        assert!(matches!(
            InitiatorFrame::parse(&[]),
            Err(HybridError::BadFrame(_))
        ));
        assert!(matches!(
            InitiatorFrame::parse(&[1]),
            Err(HybridError::BadFrame(_))
        ));
    }

    #[test]
    fn response_and_shutdown_frames() {
        assert_eq!(ctap_response_frame(&[0x00, 0xa0]), vec![1, 0, 0xa0]);
        assert_eq!(ctap_response_frame(&[0x2e]), vec![1, 0x2e]);
        assert_eq!(shutdown_frame(), vec![0]);
    }
}
