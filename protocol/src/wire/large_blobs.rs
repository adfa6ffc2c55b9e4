//! authenticatorLargeBlobs (CTAP 2.1 §6.10): read a slice of the serialized large-blob array
//! (get) or write a fragment of a new one (set).

use ciborium::Value;

use super::command::Command;
use super::fields::{int_key_map, integer};
use super::message::{Request, Response};
use crate::cbor::{self, RequestMap};
use crate::status::StatusCode;

const GET: i128 = 0x01;
const SET: i128 = 0x02;
const OFFSET: i128 = 0x03;
const LENGTH: i128 = 0x04;
const PIN_UV_AUTH_PARAM: i128 = 0x05;
const PIN_UV_AUTH_PROTOCOL: i128 = 0x06;

const RESPONSE_CONFIG: i128 = 0x01;

/// An authenticatorLargeBlobs request. Numbers are kept as sent: which combinations are
/// valid, and which status a wrong one gets (§6.10.2 steps 1-3), is the authenticator's to
/// say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LargeBlobsRequest {
    /// 0x01 get: how many bytes to read.
    pub get: Option<i128>,
    /// 0x02 set: a fragment to write.
    pub set: Option<Vec<u8>>,
    /// 0x03 offset.
    pub offset: Option<i128>,
    /// 0x04 length: the whole array's, with the first fragment.
    pub length: Option<i128>,
    /// 0x05 pinUvAuthParam.
    pub pin_uv_auth_param: Option<Vec<u8>>,
    /// 0x06 pinUvAuthProtocol.
    pub pin_uv_auth_protocol: Option<i128>,
}

impl LargeBlobsRequest {
    /// Reads `get` bytes from `offset`.
    pub fn get(get: usize, offset: usize) -> Self {
        LargeBlobsRequest {
            get: Some(get as i128),
            offset: Some(offset as i128),
            ..Self::default()
        }
    }

    /// What the token authenticates for a fragment (§6.10.2 "set" step 6.1): 32×0xff ||
    /// 0x0c 0x00 || uint32LittleEndian(offset) || SHA-256(set), given SHA-256(set).
    pub fn message_to_authenticate(offset: u32, fragment_hash: &[u8; 32]) -> Vec<u8> {
        let mut message = vec![0xff; 32];
        message.extend([Command::LargeBlobs.as_byte(), 0x00]);
        message.extend(offset.to_le_bytes());
        message.extend(fragment_hash);
        message
    }
}

impl Request for LargeBlobsRequest {
    const COMMAND: Command = Command::LargeBlobs;

    /// Every field's type (CBOR_UNEXPECTED_TYPE); nothing is required by the format.
    fn decode(params: &[u8]) -> Result<Self, StatusCode> {
        let mut map = RequestMap::parse(params)?;
        Ok(LargeBlobsRequest {
            get: map.take(GET).map(cbor::into_int).transpose()?,
            set: map.take(SET).map(cbor::into_bytes).transpose()?,
            offset: map.take(OFFSET).map(cbor::into_int).transpose()?,
            length: map.take(LENGTH).map(cbor::into_int).transpose()?,
            pin_uv_auth_param: map
                .take(PIN_UV_AUTH_PARAM)
                .map(cbor::into_bytes)
                .transpose()?,
            pin_uv_auth_protocol: map
                .take(PIN_UV_AUTH_PROTOCOL)
                .map(cbor::into_int)
                .transpose()?,
        })
    }

    fn to_cbor(&self) -> Option<Value> {
        let mut entries = Vec::new();
        if let Some(get) = self.get {
            entries.push((GET, integer(get)));
        }
        if let Some(set) = &self.set {
            entries.push((SET, Value::Bytes(set.clone())));
        }
        if let Some(offset) = self.offset {
            entries.push((OFFSET, integer(offset)));
        }
        if let Some(length) = self.length {
            entries.push((LENGTH, integer(length)));
        }
        if let Some(param) = &self.pin_uv_auth_param {
            entries.push((PIN_UV_AUTH_PARAM, Value::Bytes(param.clone())));
        }
        if let Some(protocol) = self.pin_uv_auth_protocol {
            entries.push((PIN_UV_AUTH_PROTOCOL, integer(protocol)));
        }
        Some(int_key_map(entries))
    }
}

/// An authenticatorLargeBlobs answer: a get's slice of the array (0x01 config); a set
/// answers with none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LargeBlobsResponse {
    /// 0x01 config.
    pub config: Option<Vec<u8>>,
}

impl Response for LargeBlobsResponse {
    fn to_cbor(&self) -> Option<Value> {
        let config = self.config.clone()?;
        Some(int_key_map(vec![(RESPONSE_CONFIG, Value::Bytes(config))]))
    }

    fn decode(body: &[u8]) -> Result<Self, StatusCode> {
        let mut map = RequestMap::parse(body)?;
        Ok(LargeBlobsResponse {
            config: map
                .take(RESPONSE_CONFIG)
                .map(cbor::into_bytes)
                .transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_responses_round_trip() {
        let write = LargeBlobsRequest {
            set: Some(vec![0x80; 17]),
            offset: Some(0),
            length: Some(17),
            pin_uv_auth_param: Some(vec![1; 32]),
            pin_uv_auth_protocol: Some(2),
            ..Default::default()
        };
        for request in [LargeBlobsRequest::get(1000, 0), write] {
            let message = request.encode();
            assert_eq!(message[0], 0x0C);
            assert_eq!(LargeBlobsRequest::decode(&message[1..]), Ok(request));
        }
        let slice = LargeBlobsResponse {
            config: Some(vec![0x80]),
        };
        assert_eq!(LargeBlobsResponse::decode(&slice.encode()[1..]), Ok(slice));
        assert_eq!(LargeBlobsResponse::default().encode(), vec![0x00]);
    }

    #[test]
    fn malformed_requests_keep_their_statuses() {
        let decode = |entries: Vec<(i64, Value)>| {
            LargeBlobsRequest::decode(&cbor::encode(&cbor::int_map(entries)))
        };
        assert_eq!(decode(vec![]), Ok(LargeBlobsRequest::default()));
        for key in 1..=6 {
            assert_eq!(
                decode(vec![(key, Value::Text("x".into()))]),
                Err(StatusCode::CborUnexpectedType),
                "key {key}"
            );
        }
        assert_eq!(
            LargeBlobsRequest::decode(&[0x80]),
            Err(StatusCode::CborUnexpectedType)
        );
    }

    #[test]
    fn the_mac_message_is_the_one_of_section_6_10_2() {
        let message = LargeBlobsRequest::message_to_authenticate(0x0102, &[7; 32]);
        assert_eq!(message.len(), 32 + 2 + 4 + 32);
        assert_eq!(&message[32..38], &[0x0c, 0x00, 0x02, 0x01, 0x00, 0x00]);
    }
}
