//! authenticatorGetInfo (CTAP 2.1 §6.4, with the members CTAP 2.2 and 2.3 added): no
//! parameters; the answer describes the authenticator.

use ciborium::Value;

use super::command::Command;
use super::entities::PublicKeyCredentialParameters;
use super::fields::int_key_map;
use super::message::{Request, Response};
use crate::cbor::{self, RequestMap};
use crate::status::StatusCode;

/// authenticatorGetInfo: no parameters. Whatever follows the command byte is ignored, as
/// fido2d always has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GetInfoRequest;

impl Request for GetInfoRequest {
    const COMMAND: Command = Command::GetInfo;

    fn decode(_params: &[u8]) -> Result<Self, StatusCode> {
        Ok(GetInfoRequest)
    }

    fn to_cbor(&self) -> Option<Value> {
        None
    }
}

/// The response keys (§6.4), for code that reads a getInfo map itself.
pub mod key {
    pub const VERSIONS: i128 = 0x01;
    pub const EXTENSIONS: i128 = 0x02;
    pub const AAGUID: i128 = 0x03;
    pub const OPTIONS: i128 = 0x04;
    pub const MAX_MSG_SIZE: i128 = 0x05;
    pub const PIN_UV_AUTH_PROTOCOLS: i128 = 0x06;
    pub const MAX_CREDENTIAL_COUNT_IN_LIST: i128 = 0x07;
    pub const MAX_CREDENTIAL_ID_LENGTH: i128 = 0x08;
    pub const TRANSPORTS: i128 = 0x09;
    pub const ALGORITHMS: i128 = 0x0A;
    pub const MAX_SERIALIZED_LARGE_BLOB_ARRAY: i128 = 0x0B;
    pub const FORCE_PIN_CHANGE: i128 = 0x0C;
    pub const MIN_PIN_LENGTH: i128 = 0x0D;
    pub const FIRMWARE_VERSION: i128 = 0x0E;
    pub const MAX_CRED_BLOB_LENGTH: i128 = 0x0F;
    pub const MAX_RP_IDS_FOR_SET_MIN_PIN_LENGTH: i128 = 0x10;
    pub const PREFERRED_PLATFORM_UV_ATTEMPTS: i128 = 0x11;
    pub const UV_MODALITY: i128 = 0x12;
    pub const REMAINING_DISCOVERABLE_CREDENTIALS: i128 = 0x14;
    pub const ATTESTATION_FORMATS: i128 = 0x16;
    pub const UV_COUNT_SINCE_LAST_PIN_ENTRY: i128 = 0x17;
    pub const LONG_TOUCH_FOR_RESET: i128 = 0x18;
    pub const ENC_IDENTIFIER: i128 = 0x19;
    pub const TRANSPORTS_FOR_RESET: i128 = 0x1A;
    pub const PIN_COMPLEXITY_POLICY: i128 = 0x1B;
    pub const PIN_COMPLEXITY_POLICY_URL: i128 = 0x1C;
    pub const MAX_PIN_LENGTH: i128 = 0x1D;
    pub const ENC_CRED_STORE_STATE: i128 = 0x1E;
    pub const AUTHENTICATOR_CONFIG_COMMANDS: i128 = 0x1F;
}

/// The authenticatorGetInfo response. Every member but versions and aaguid is optional;
/// `None` leaves it out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GetInfoResponse {
    pub versions: Vec<String>,
    pub extensions: Option<Vec<String>>,
    pub aaguid: [u8; 16],
    /// In the order the authenticator lists them (the encoding sorts them).
    pub options: Option<Vec<(String, bool)>>,
    pub max_msg_size: Option<u64>,
    pub pin_uv_auth_protocols: Option<Vec<u64>>,
    pub max_credential_count_in_list: Option<u64>,
    pub max_credential_id_length: Option<u64>,
    pub transports: Option<Vec<String>>,
    pub algorithms: Option<Vec<PublicKeyCredentialParameters>>,
    pub max_serialized_large_blob_array: Option<u64>,
    pub force_pin_change: Option<bool>,
    pub min_pin_length: Option<u64>,
    pub firmware_version: Option<u64>,
    pub max_cred_blob_length: Option<u64>,
    pub max_rp_ids_for_set_min_pin_length: Option<u64>,
    pub preferred_platform_uv_attempts: Option<u64>,
    pub uv_modality: Option<u64>,
    pub remaining_discoverable_credentials: Option<u64>,
    /// CTAP 2.2 and 2.3 members (0x16 and up).
    pub attestation_formats: Option<Vec<String>>,
    pub uv_count_since_last_pin_entry: Option<u64>,
    pub long_touch_for_reset: Option<bool>,
    /// Encrypted to the persistentPinUvAuthToken (see `ctap2::get_info`).
    pub enc_identifier: Option<Vec<u8>>,
    pub transports_for_reset: Option<Vec<String>>,
    pub pin_complexity_policy: Option<bool>,
    pub pin_complexity_policy_url: Option<Vec<u8>>,
    pub max_pin_length: Option<u64>,
    pub enc_cred_store_state: Option<Vec<u8>>,
    pub authenticator_config_commands: Option<Vec<u64>>,
}

impl GetInfoResponse {
    /// An option's value; `None` when the authenticator does not list it.
    pub fn option(&self, name: &str) -> Option<bool> {
        self.options
            .as_ref()?
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, value)| *value)
    }
}

fn texts(list: &[String]) -> Value {
    Value::Array(list.iter().map(|t| Value::Text(t.clone())).collect())
}

fn uints(list: &[u64]) -> Value {
    Value::Array(list.iter().map(|n| Value::Integer((*n).into())).collect())
}

fn into_uint(value: Value) -> Result<u64, StatusCode> {
    u64::try_from(cbor::into_int(value)?).map_err(|_| StatusCode::CborUnexpectedType)
}

fn into_texts(value: Value) -> Result<Vec<String>, StatusCode> {
    cbor::into_array(value)?
        .into_iter()
        .map(cbor::into_text)
        .collect()
}

fn into_uints(value: Value) -> Result<Vec<u64>, StatusCode> {
    cbor::into_array(value)?
        .into_iter()
        .map(into_uint)
        .collect()
}

impl Response for GetInfoResponse {
    fn to_cbor(&self) -> Option<Value> {
        let mut entries = vec![(key::VERSIONS, texts(&self.versions))];
        let mut put = |key: i128, value: Option<Value>| {
            if let Some(value) = value {
                entries.push((key, value));
            }
        };
        let uint = |n: Option<u64>| n.map(|n| Value::Integer(n.into()));
        let bool = |b: Option<bool>| b.map(Value::Bool);
        let bytes = |b: &Option<Vec<u8>>| b.as_ref().map(|b| Value::Bytes(b.clone()));
        put(key::EXTENSIONS, self.extensions.as_deref().map(texts));
        put(key::AAGUID, Some(Value::Bytes(self.aaguid.to_vec())));
        put(
            key::OPTIONS,
            self.options.as_ref().map(|options| {
                Value::Map(
                    options
                        .iter()
                        .map(|(name, on)| (Value::Text(name.clone()), Value::Bool(*on)))
                        .collect(),
                )
            }),
        );
        put(key::MAX_MSG_SIZE, uint(self.max_msg_size));
        put(
            key::PIN_UV_AUTH_PROTOCOLS,
            self.pin_uv_auth_protocols.as_deref().map(uints),
        );
        put(
            key::MAX_CREDENTIAL_COUNT_IN_LIST,
            uint(self.max_credential_count_in_list),
        );
        put(
            key::MAX_CREDENTIAL_ID_LENGTH,
            uint(self.max_credential_id_length),
        );
        put(key::TRANSPORTS, self.transports.as_deref().map(texts));
        put(
            key::ALGORITHMS,
            self.algorithms
                .as_ref()
                .map(|list| Value::Array(list.iter().map(|a| a.to_cbor()).collect())),
        );
        put(
            key::MAX_SERIALIZED_LARGE_BLOB_ARRAY,
            uint(self.max_serialized_large_blob_array),
        );
        put(key::FORCE_PIN_CHANGE, bool(self.force_pin_change));
        put(key::MIN_PIN_LENGTH, uint(self.min_pin_length));
        put(key::FIRMWARE_VERSION, uint(self.firmware_version));
        put(key::MAX_CRED_BLOB_LENGTH, uint(self.max_cred_blob_length));
        put(
            key::MAX_RP_IDS_FOR_SET_MIN_PIN_LENGTH,
            uint(self.max_rp_ids_for_set_min_pin_length),
        );
        put(
            key::PREFERRED_PLATFORM_UV_ATTEMPTS,
            uint(self.preferred_platform_uv_attempts),
        );
        put(key::UV_MODALITY, uint(self.uv_modality));
        put(
            key::REMAINING_DISCOVERABLE_CREDENTIALS,
            uint(self.remaining_discoverable_credentials),
        );
        put(
            key::ATTESTATION_FORMATS,
            self.attestation_formats.as_deref().map(texts),
        );
        put(
            key::UV_COUNT_SINCE_LAST_PIN_ENTRY,
            uint(self.uv_count_since_last_pin_entry),
        );
        put(key::LONG_TOUCH_FOR_RESET, bool(self.long_touch_for_reset));
        put(key::ENC_IDENTIFIER, bytes(&self.enc_identifier));
        put(
            key::TRANSPORTS_FOR_RESET,
            self.transports_for_reset.as_deref().map(texts),
        );
        put(key::PIN_COMPLEXITY_POLICY, bool(self.pin_complexity_policy));
        put(
            key::PIN_COMPLEXITY_POLICY_URL,
            bytes(&self.pin_complexity_policy_url),
        );
        put(key::MAX_PIN_LENGTH, uint(self.max_pin_length));
        put(key::ENC_CRED_STORE_STATE, bytes(&self.enc_cred_store_state));
        put(
            key::AUTHENTICATOR_CONFIG_COMMANDS,
            self.authenticator_config_commands.as_deref().map(uints),
        );
        Some(int_key_map(entries))
    }

    fn decode(body: &[u8]) -> Result<Self, StatusCode> {
        let mut map = RequestMap::parse(body)?;
        let uint = |map: &mut RequestMap, key| map.take(key).map(into_uint).transpose();
        let bool = |map: &mut RequestMap, key| map.take(key).map(cbor::into_bool).transpose();
        let bytes = |map: &mut RequestMap, key| map.take(key).map(cbor::into_bytes).transpose();
        let texts = |map: &mut RequestMap, key| map.take(key).map(into_texts).transpose();
        let versions = into_texts(map.required(key::VERSIONS)?)?;
        let aaguid = cbor::into_bytes(map.required(key::AAGUID)?)?
            .try_into()
            .map_err(|_| StatusCode::InvalidLength)?;
        let options = map
            .take(key::OPTIONS)
            .map(|options| {
                cbor::into_text_map(options)?
                    .into_iter()
                    .map(|(name, on)| Ok((name, cbor::into_bool(on)?)))
                    .collect::<Result<Vec<_>, StatusCode>>()
            })
            .transpose()?;
        let algorithms = map
            .take(key::ALGORITHMS)
            .map(PublicKeyCredentialParameters::decode_list)
            .transpose()?;
        Ok(GetInfoResponse {
            versions,
            extensions: texts(&mut map, key::EXTENSIONS)?,
            aaguid,
            options,
            max_msg_size: uint(&mut map, key::MAX_MSG_SIZE)?,
            pin_uv_auth_protocols: map
                .take(key::PIN_UV_AUTH_PROTOCOLS)
                .map(into_uints)
                .transpose()?,
            max_credential_count_in_list: uint(&mut map, key::MAX_CREDENTIAL_COUNT_IN_LIST)?,
            max_credential_id_length: uint(&mut map, key::MAX_CREDENTIAL_ID_LENGTH)?,
            transports: texts(&mut map, key::TRANSPORTS)?,
            algorithms,
            max_serialized_large_blob_array: uint(&mut map, key::MAX_SERIALIZED_LARGE_BLOB_ARRAY)?,
            force_pin_change: bool(&mut map, key::FORCE_PIN_CHANGE)?,
            min_pin_length: uint(&mut map, key::MIN_PIN_LENGTH)?,
            firmware_version: uint(&mut map, key::FIRMWARE_VERSION)?,
            max_cred_blob_length: uint(&mut map, key::MAX_CRED_BLOB_LENGTH)?,
            max_rp_ids_for_set_min_pin_length: uint(
                &mut map,
                key::MAX_RP_IDS_FOR_SET_MIN_PIN_LENGTH,
            )?,
            preferred_platform_uv_attempts: uint(&mut map, key::PREFERRED_PLATFORM_UV_ATTEMPTS)?,
            uv_modality: uint(&mut map, key::UV_MODALITY)?,
            remaining_discoverable_credentials: uint(
                &mut map,
                key::REMAINING_DISCOVERABLE_CREDENTIALS,
            )?,
            attestation_formats: texts(&mut map, key::ATTESTATION_FORMATS)?,
            uv_count_since_last_pin_entry: uint(&mut map, key::UV_COUNT_SINCE_LAST_PIN_ENTRY)?,
            long_touch_for_reset: bool(&mut map, key::LONG_TOUCH_FOR_RESET)?,
            enc_identifier: bytes(&mut map, key::ENC_IDENTIFIER)?,
            transports_for_reset: texts(&mut map, key::TRANSPORTS_FOR_RESET)?,
            pin_complexity_policy: bool(&mut map, key::PIN_COMPLEXITY_POLICY)?,
            pin_complexity_policy_url: bytes(&mut map, key::PIN_COMPLEXITY_POLICY_URL)?,
            max_pin_length: uint(&mut map, key::MAX_PIN_LENGTH)?,
            enc_cred_store_state: bytes(&mut map, key::ENC_CRED_STORE_STATE)?,
            authenticator_config_commands: map
                .take(key::AUTHENTICATOR_CONFIG_COMMANDS)
                .map(into_uints)
                .transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_info_request_is_the_command_byte_alone() {
        assert_eq!(GetInfoRequest.encode(), vec![0x04]);
    }

    /// Every member CTAP 2.1 §6.4 (and 2.2/2.3's 0x16..0x1F) defines that fido2d reads.
    #[test]
    fn a_response_round_trips_with_every_member() {
        let info = GetInfoResponse {
            versions: vec!["U2F_V2".into(), "FIDO_2_0".into()],
            extensions: Some(vec!["credProtect".into(), "hmac-secret".into()]),
            aaguid: [0xf8; 16],
            options: Some(vec![("rk".into(), true), ("clientPin".into(), false)]),
            max_msg_size: Some(1200),
            pin_uv_auth_protocols: Some(vec![2, 1]),
            max_credential_count_in_list: Some(8),
            max_credential_id_length: Some(128),
            transports: Some(vec!["usb".into()]),
            algorithms: Some(vec![PublicKeyCredentialParameters::public_key(-7)]),
            max_serialized_large_blob_array: Some(1024),
            force_pin_change: Some(false),
            min_pin_length: Some(4),
            firmware_version: Some(5),
            max_cred_blob_length: Some(32),
            max_rp_ids_for_set_min_pin_length: Some(1),
            preferred_platform_uv_attempts: Some(3),
            uv_modality: Some(2),
            remaining_discoverable_credentials: Some(25),
            attestation_formats: Some(vec!["packed".into()]),
            uv_count_since_last_pin_entry: Some(0),
            long_touch_for_reset: Some(false),
            enc_identifier: Some(vec![1; 32]),
            transports_for_reset: Some(vec!["usb".into()]),
            pin_complexity_policy: Some(true),
            pin_complexity_policy_url: Some(b"https://example.com".to_vec()),
            max_pin_length: Some(63),
            enc_cred_store_state: Some(vec![2; 32]),
            authenticator_config_commands: Some(vec![2, 3]),
        };
        let encoded = info.encode();
        // b8 1d: 29 members; 01 82 66 "U2F_V2" ...
        assert_eq!(&encoded[..5], &[0x00, 0xb8, 29, 0x01, 0x82]);
        // The options were listed in canonical order, so they come back as they were.
        let decoded = GetInfoResponse::decode(&encoded[1..]).unwrap();
        assert_eq!(decoded, info);
        assert_eq!(decoded.option("rk"), Some(true));
        assert_eq!(decoded.option("uv"), None);
    }

    #[test]
    fn a_response_needs_versions_and_a_16_byte_aaguid() {
        let minimal = GetInfoResponse {
            versions: vec!["FIDO_2_0".into()],
            ..Default::default()
        };
        let encoded = minimal.encode();
        assert_eq!(GetInfoResponse::decode(&encoded[1..]), Ok(minimal));
        assert_eq!(
            GetInfoResponse::decode(&cbor::encode(&cbor::int_map(vec![(
                3,
                Value::Bytes(vec![0; 16])
            )]))),
            Err(StatusCode::MissingParameter)
        );
        let short = cbor::int_map(vec![
            (1, Value::Array(vec![])),
            (3, Value::Bytes(vec![0; 15])),
        ]);
        assert_eq!(
            GetInfoResponse::decode(&cbor::encode(&short)),
            Err(StatusCode::InvalidLength)
        );
    }
}
