//! authenticatorGetAssertion (CTAP 2.1 §6.2) and authenticatorGetNextAssertion (§6.3): the
//! request parameters (§6.2.1) and the assertion both commands answer with (§6.2.2).

use ciborium::Value;
use zeroize::Zeroizing;

use super::command::Command;
use super::entities::{Options, PublicKeyCredentialDescriptor, PublicKeyCredentialUserEntity};
use super::extensions::GetAssertionExtensionsInput;
use super::fields::{int_key_map, integer};
use super::message::{Request, Response};
use crate::cbor::{self, RequestMap};
use crate::status::StatusCode;

const RP_ID: i128 = 0x01;
const CLIENT_DATA_HASH: i128 = 0x02;
const ALLOW_LIST: i128 = 0x03;
const EXTENSIONS: i128 = 0x04;
const OPTIONS: i128 = 0x05;
const PIN_UV_AUTH_PARAM: i128 = 0x06;
const PIN_UV_AUTH_PROTOCOL: i128 = 0x07;

/// The getAssertion parameters. An absent allowList decodes as an empty one: both ask for a
/// discovery (§6.2.2 step 7), and an empty one is not sent.
#[derive(Debug, Clone, PartialEq)]
pub struct GetAssertionRequest {
    pub rp_id: String,
    pub client_data_hash: Vec<u8>,
    /// As sent, descriptors of every type: a non-empty list is never a discovery, even when
    /// none of its entries is a "public-key" one.
    pub allow_list: Vec<PublicKeyCredentialDescriptor>,
    pub extensions: GetAssertionExtensionsInput,
    pub options: Options,
    pub pin_uv_auth_param: Option<Vec<u8>>,
    /// As sent: the command answers an unknown number with its status.
    pub pin_uv_auth_protocol: Option<i128>,
}

impl GetAssertionRequest {
    /// A request with the two required parameters: a discovery, with presence.
    pub fn new(rp_id: impl Into<String>, client_data_hash: Vec<u8>) -> Self {
        GetAssertionRequest {
            rp_id: rp_id.into(),
            client_data_hash,
            allow_list: Vec::new(),
            extensions: GetAssertionExtensionsInput::default(),
            options: Options::default(),
            pin_uv_auth_param: None,
            pin_uv_auth_protocol: None,
        }
    }
}

impl Request for GetAssertionRequest {
    const COMMAND: Command = Command::GetAssertion;

    fn decode(params: &[u8]) -> Result<Self, StatusCode> {
        let mut map = RequestMap::parse(params)?;
        let rp_id = cbor::into_text(map.required(RP_ID)?)?;
        let client_data_hash = cbor::into_bytes(map.required(CLIENT_DATA_HASH)?)?;
        let allow_list = map
            .take(ALLOW_LIST)
            .map(PublicKeyCredentialDescriptor::decode_list)
            .transpose()?
            .unwrap_or_default();
        let extensions = map
            .take(EXTENSIONS)
            .map(GetAssertionExtensionsInput::decode)
            .transpose()?
            .unwrap_or_default();
        let options = map
            .take(OPTIONS)
            .map(Options::decode)
            .transpose()?
            .unwrap_or_default();
        let pin_uv_auth_param = map
            .take(PIN_UV_AUTH_PARAM)
            .map(cbor::into_bytes)
            .transpose()?;
        let pin_uv_auth_protocol = map
            .take(PIN_UV_AUTH_PROTOCOL)
            .map(cbor::into_int)
            .transpose()?;
        Ok(GetAssertionRequest {
            rp_id,
            client_data_hash,
            allow_list,
            extensions,
            options,
            pin_uv_auth_param,
            pin_uv_auth_protocol,
        })
    }

    fn to_cbor(&self) -> Option<Value> {
        let mut entries = vec![
            (RP_ID, Value::Text(self.rp_id.clone())),
            (
                CLIENT_DATA_HASH,
                Value::Bytes(self.client_data_hash.clone()),
            ),
        ];
        if !self.allow_list.is_empty() {
            let list = self.allow_list.iter().map(|d| d.to_cbor()).collect();
            entries.push((ALLOW_LIST, Value::Array(list)));
        }
        if !self.extensions.is_empty() {
            entries.push((EXTENSIONS, self.extensions.to_cbor()));
        }
        if !self.options.is_empty() {
            entries.push((OPTIONS, self.options.to_cbor()));
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

/// authenticatorGetNextAssertion: no parameters. Whatever follows the command byte is
/// ignored, as fido2d always has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GetNextAssertionRequest;

impl Request for GetNextAssertionRequest {
    const COMMAND: Command = Command::GetNextAssertion;

    fn decode(_params: &[u8]) -> Result<Self, StatusCode> {
        Ok(GetNextAssertionRequest)
    }

    fn to_cbor(&self) -> Option<Value> {
        None
    }
}

const CREDENTIAL: i128 = 0x01;
const AUTH_DATA: i128 = 0x02;
const SIGNATURE: i128 = 0x03;
const USER: i128 = 0x04;
const NUMBER_OF_CREDENTIALS: i128 = 0x05;
const USER_SELECTED: i128 = 0x06;
const LARGE_BLOB_KEY: i128 = 0x07;

/// One assertion (§6.2.2), the answer of getAssertion and of getNextAssertion.
#[derive(Clone, PartialEq)]
pub struct GetAssertionResponse {
    pub credential: PublicKeyCredentialDescriptor,
    pub auth_data: Vec<u8>,
    pub signature: Vec<u8>,
    /// A discoverable credential's user; names only with user verification.
    pub user: Option<PublicKeyCredentialUserEntity>,
    /// In the first answer of a discovery that found more than one credential.
    pub number_of_credentials: Option<u64>,
    pub user_selected: Option<bool>,
    /// A secret: it decrypts the credential's large blob.
    pub large_blob_key: Option<Zeroizing<Vec<u8>>>,
}

impl std::fmt::Debug for GetAssertionResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GetAssertionResponse")
            .field("credential", &self.credential)
            .field("auth_data", &self.auth_data)
            .field("signature", &self.signature)
            .field("user", &self.user)
            .field("number_of_credentials", &self.number_of_credentials)
            .field("user_selected", &self.user_selected)
            .field(
                "large_blob_key",
                &self.large_blob_key.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Response for GetAssertionResponse {
    fn to_cbor(&self) -> Option<Value> {
        let mut entries = vec![
            (CREDENTIAL, self.credential.to_cbor()),
            (AUTH_DATA, Value::Bytes(self.auth_data.clone())),
            (SIGNATURE, Value::Bytes(self.signature.clone())),
        ];
        if let Some(user) = &self.user {
            entries.push((USER, user.to_cbor()));
        }
        if let Some(count) = self.number_of_credentials {
            entries.push((NUMBER_OF_CREDENTIALS, Value::Integer(count.into())));
        }
        if let Some(selected) = self.user_selected {
            entries.push((USER_SELECTED, Value::Bool(selected)));
        }
        if let Some(key) = &self.large_blob_key {
            entries.push((LARGE_BLOB_KEY, Value::Bytes(key.to_vec())));
        }
        Some(int_key_map(entries))
    }

    fn decode(body: &[u8]) -> Result<Self, StatusCode> {
        let mut map = RequestMap::parse(body)?;
        let credential = PublicKeyCredentialDescriptor::decode(map.required(CREDENTIAL)?)?;
        let auth_data = cbor::into_bytes(map.required(AUTH_DATA)?)?;
        let signature = cbor::into_bytes(map.required(SIGNATURE)?)?;
        let user = map
            .take(USER)
            .map(PublicKeyCredentialUserEntity::decode)
            .transpose()?;
        let number_of_credentials = map
            .take(NUMBER_OF_CREDENTIALS)
            .map(|n| u64::try_from(cbor::into_int(n)?).map_err(|_| StatusCode::InvalidCbor))
            .transpose()?;
        let user_selected = map.take(USER_SELECTED).map(cbor::into_bool).transpose()?;
        let large_blob_key = map
            .take(LARGE_BLOB_KEY)
            .map(cbor::into_bytes)
            .transpose()?
            .map(Zeroizing::new);
        Ok(GetAssertionResponse {
            credential,
            auth_data,
            signature,
            user,
            number_of_credentials,
            user_selected,
            large_blob_key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_round_trips_with_every_parameter() {
        let mut full = GetAssertionRequest::new("example.com", vec![0xcd; 32]);
        full.allow_list = vec![PublicKeyCredentialDescriptor::public_key(vec![3; 32])];
        full.extensions.cred_blob = true;
        full.options.up = Some(false);
        full.pin_uv_auth_param = Some(vec![1; 32]);
        full.pin_uv_auth_protocol = Some(2);
        for request in [
            GetAssertionRequest::new("example.com", vec![0xcd; 32]),
            full,
        ] {
            let encoded = request.encode();
            assert_eq!(encoded[0], 0x02);
            assert_eq!(GetAssertionRequest::decode(&encoded[1..]), Ok(request));
        }
    }

    /// A discovery as CTAP 2.1 §6.2.1 and §8 lay it out: the command byte, then
    /// a2 01 6b "example.com" 02 58 20 <clientDataHash>.
    #[test]
    fn a_discovery_is_rp_id_and_client_data_hash_in_canonical_cbor() {
        let encoded = GetAssertionRequest::new("example.com", vec![0xcd; 32]).encode();
        let mut expected = vec![0x02, 0xa2, 0x01, 0x6b];
        expected.extend(b"example.com");
        expected.extend([0x02, 0x58, 0x20]);
        expected.extend([0xcd; 32]);
        assert_eq!(encoded, expected);
    }

    #[test]
    fn malformed_fields_keep_their_status() {
        let base = || {
            let Some(Value::Map(entries)) =
                GetAssertionRequest::new("example.com", vec![0xcd; 32]).to_cbor()
            else {
                unreachable!()
            };
            entries
        };
        for drop in [RP_ID, CLIENT_DATA_HASH] {
            let mut entries = base();
            entries.retain(|(k, _)| *k != integer(drop));
            assert_eq!(
                GetAssertionRequest::decode(&cbor::encode(&Value::Map(entries))),
                Err(StatusCode::MissingParameter)
            );
        }
        let text = |s: &str| Value::Text(s.into());
        for (key, bad) in [
            (RP_ID, Value::Bytes(vec![1])),
            (CLIENT_DATA_HASH, text("hash")),
            (ALLOW_LIST, text("list")),
            (EXTENSIONS, Value::Array(vec![])),
            (OPTIONS, Value::Array(vec![])),
            (PIN_UV_AUTH_PARAM, text("param")),
            (PIN_UV_AUTH_PROTOCOL, text("2")),
        ] {
            let mut entries = base();
            entries.retain(|(k, _)| *k != integer(key));
            entries.push((integer(key), bad));
            assert_eq!(
                GetAssertionRequest::decode(&cbor::encode(&Value::Map(entries))),
                Err(StatusCode::CborUnexpectedType),
                "{key}"
            );
        }
    }

    #[test]
    fn get_next_assertion_is_the_command_byte_alone() {
        assert_eq!(GetNextAssertionRequest.encode(), vec![0x08]);
        assert_eq!(
            GetNextAssertionRequest::decode(&[]),
            Ok(GetNextAssertionRequest)
        );
    }

    #[test]
    fn a_response_round_trips() {
        let response = GetAssertionResponse {
            credential: PublicKeyCredentialDescriptor::public_key(vec![1; 16]),
            auth_data: vec![2; 37],
            signature: vec![3; 70],
            user: Some(PublicKeyCredentialUserEntity {
                id: vec![4; 8],
                name: None,
                display_name: None,
            }),
            number_of_credentials: Some(2),
            user_selected: None,
            large_blob_key: Some(Zeroizing::new(vec![5; 32])),
        };
        let encoded = response.encode();
        assert_eq!(GetAssertionResponse::decode(&encoded[1..]), Ok(response));
        assert_eq!(
            GetAssertionResponse::decode(&[0xa0]).err(),
            Some(StatusCode::MissingParameter)
        );
    }

    #[test]
    fn the_large_blob_key_stays_out_of_debug_output() {
        let response = GetAssertionResponse {
            credential: PublicKeyCredentialDescriptor::public_key(vec![1; 16]),
            auth_data: vec![2; 37],
            signature: vec![3; 70],
            user: None,
            number_of_credentials: None,
            user_selected: None,
            large_blob_key: Some(Zeroizing::new(vec![0xE7; 32])),
        };
        let printed = format!("{response:?}");
        assert!(!printed.contains("231"), "{printed}");
        assert!(printed.contains("<redacted>"), "{printed}");
    }
}
