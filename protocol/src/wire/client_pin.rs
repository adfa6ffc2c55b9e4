//! authenticatorClientPIN (CTAP 2.1 §6.5.5): one parameter map for every subcommand, each
//! field optional on the wire; which ones a subcommand needs, and the status when one is
//! missing, is the authenticator's to check (its steps 1-2), in its own order.

use std::fmt;

use ciborium::Value;
use zeroize::Zeroizing;

use super::command::Command;
use super::fields::{byte_enum, int_key_map, integer, into_count};
use super::key_agreement::KeyAgreementPublicKey;
use super::message::{Request, Response};
use crate::cbor::{self, RequestMap};
use crate::status::StatusCode;

const PIN_UV_AUTH_PROTOCOL: i128 = 0x01;
const SUB_COMMAND: i128 = 0x02;
const KEY_AGREEMENT: i128 = 0x03;
const PIN_UV_AUTH_PARAM: i128 = 0x04;
const NEW_PIN_ENC: i128 = 0x05;
const PIN_HASH_ENC: i128 = 0x06;
const PERMISSIONS: i128 = 0x09;
const RP_ID: i128 = 0x0A;

const RESPONSE_KEY_AGREEMENT: i128 = 0x01;
const RESPONSE_PIN_UV_AUTH_TOKEN: i128 = 0x02;
const RESPONSE_PIN_RETRIES: i128 = 0x03;
const RESPONSE_POWER_CYCLE_STATE: i128 = 0x04;
const RESPONSE_UV_RETRIES: i128 = 0x05;

byte_enum! {
    /// The clientPIN subcommands (CTAP 2.1 §6.5.5, table "subCommand").
    pub enum ClientPinSubcommand {
        GetPinRetries = 0x01,
        GetKeyAgreement = 0x02,
        SetPin = 0x03,
        ChangePin = 0x04,
        /// The CTAP 2.0 way: a token with the default mc and ga permissions, for any RP.
        GetPinToken = 0x05,
        GetPinUvAuthTokenUsingUvWithPermissions = 0x06,
        GetUvRetries = 0x07,
        GetPinUvAuthTokenUsingPinWithPermissions = 0x09,
    }
}

/// An authenticatorClientPIN request. Numbers are kept as sent: an unknown protocol is
/// INVALID_PARAMETER and unknown permissions UNAUTHORIZED_PERMISSION, but only after the
/// MISSING_PARAMETER checks of the subcommand's steps 1-2, so the authenticator judges them.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientPinRequest {
    /// 0x01 pinUvAuthProtocol.
    pub pin_uv_auth_protocol: Option<i128>,
    /// 0x02 subCommand.
    pub sub_command: ClientPinSubcommand,
    /// 0x03 keyAgreement: a map, read as a COSE_Key. A map that is not a valid key is
    /// reported where the subcommand uses it (decapsulate, e.g. §6.5.5.5 step 4), not before
    /// its missing parameters or a PIN already set, hence the `Result`.
    pub key_agreement: Option<Result<KeyAgreementPublicKey, StatusCode>>,
    /// 0x04 pinUvAuthParam.
    pub pin_uv_auth_param: Option<Vec<u8>>,
    /// 0x05 newPinEnc: the new PIN, encrypted.
    pub new_pin_enc: Option<Zeroizing<Vec<u8>>>,
    /// 0x06 pinHashEnc: the current PIN's hash, encrypted.
    pub pin_hash_enc: Option<Zeroizing<Vec<u8>>>,
    /// 0x09 permissions (see [`super::permission`]).
    pub permissions: Option<i128>,
    /// 0x0A rpId: the permissions RP ID.
    pub rp_id: Option<String>,
}

/// The encrypted PIN fields are PIN material: never printed.
impl fmt::Debug for ClientPinRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |field: &Option<Zeroizing<Vec<u8>>>| field.as_ref().map(|_| "<redacted>");
        f.debug_struct("ClientPinRequest")
            .field("pin_uv_auth_protocol", &self.pin_uv_auth_protocol)
            .field("sub_command", &self.sub_command)
            .field("key_agreement", &self.key_agreement)
            .field("pin_uv_auth_param", &self.pin_uv_auth_param)
            .field("new_pin_enc", &redacted(&self.new_pin_enc))
            .field("pin_hash_enc", &redacted(&self.pin_hash_enc))
            .field("permissions", &self.permissions)
            .field("rp_id", &self.rp_id)
            .finish()
    }
}

impl ClientPinRequest {
    /// A request with only its subcommand; the constructors below fill in the rest.
    pub fn new(sub_command: ClientPinSubcommand) -> Self {
        ClientPinRequest {
            pin_uv_auth_protocol: None,
            sub_command,
            key_agreement: None,
            pin_uv_auth_param: None,
            new_pin_enc: None,
            pin_hash_enc: None,
            permissions: None,
            rp_id: None,
        }
    }

    /// §6.5.5.2 getKeyAgreement for a protocol.
    pub fn get_key_agreement(protocol: u8) -> Self {
        ClientPinRequest {
            pin_uv_auth_protocol: Some(protocol.into()),
            ..Self::new(ClientPinSubcommand::GetKeyAgreement)
        }
    }

    /// §6.5.5.5 setPIN: pinUvAuthParam = authenticate(sharedSecret, newPinEnc).
    pub fn set_pin(
        protocol: u8,
        key_agreement: KeyAgreementPublicKey,
        new_pin_enc: Vec<u8>,
        pin_uv_auth_param: Vec<u8>,
    ) -> Self {
        ClientPinRequest {
            pin_uv_auth_protocol: Some(protocol.into()),
            key_agreement: Some(Ok(key_agreement)),
            new_pin_enc: Some(Zeroizing::new(new_pin_enc)),
            pin_uv_auth_param: Some(pin_uv_auth_param),
            ..Self::new(ClientPinSubcommand::SetPin)
        }
    }

    /// §6.5.5.6 changePIN: pinUvAuthParam = authenticate(sharedSecret, newPinEnc ||
    /// pinHashEnc).
    pub fn change_pin(
        protocol: u8,
        key_agreement: KeyAgreementPublicKey,
        pin_hash_enc: Vec<u8>,
        new_pin_enc: Vec<u8>,
        pin_uv_auth_param: Vec<u8>,
    ) -> Self {
        ClientPinRequest {
            pin_hash_enc: Some(Zeroizing::new(pin_hash_enc)),
            ..Self::set_pin(protocol, key_agreement, new_pin_enc, pin_uv_auth_param)
        }
        .with_sub_command(ClientPinSubcommand::ChangePin)
    }

    /// §6.5.5.7.1 getPinToken (no permissions, no RP ID).
    pub fn get_pin_token(
        protocol: u8,
        key_agreement: KeyAgreementPublicKey,
        pin_hash_enc: Vec<u8>,
    ) -> Self {
        ClientPinRequest {
            pin_uv_auth_protocol: Some(protocol.into()),
            key_agreement: Some(Ok(key_agreement)),
            pin_hash_enc: Some(Zeroizing::new(pin_hash_enc)),
            ..Self::new(ClientPinSubcommand::GetPinToken)
        }
    }

    /// §6.5.5.7.2 getPinUvAuthTokenUsingPinWithPermissions.
    pub fn get_token_using_pin(
        protocol: u8,
        key_agreement: KeyAgreementPublicKey,
        pin_hash_enc: Vec<u8>,
        permissions: u8,
        rp_id: Option<String>,
    ) -> Self {
        ClientPinRequest {
            permissions: Some(permissions.into()),
            rp_id,
            ..Self::get_pin_token(protocol, key_agreement, pin_hash_enc)
        }
        .with_sub_command(ClientPinSubcommand::GetPinUvAuthTokenUsingPinWithPermissions)
    }

    /// §6.5.5.7.3 getPinUvAuthTokenUsingUvWithPermissions.
    pub fn get_token_using_uv(
        protocol: u8,
        key_agreement: KeyAgreementPublicKey,
        permissions: u8,
        rp_id: Option<String>,
    ) -> Self {
        ClientPinRequest {
            pin_uv_auth_protocol: Some(protocol.into()),
            key_agreement: Some(Ok(key_agreement)),
            permissions: Some(permissions.into()),
            rp_id,
            ..Self::new(ClientPinSubcommand::GetPinUvAuthTokenUsingUvWithPermissions)
        }
    }

    fn with_sub_command(self, sub_command: ClientPinSubcommand) -> Self {
        ClientPinRequest {
            sub_command,
            ..self
        }
    }
}

impl Request for ClientPinRequest {
    const COMMAND: Command = Command::ClientPin;

    /// Every field's type first (CBOR_UNEXPECTED_TYPE), then subCommand: absent is
    /// MISSING_PARAMETER, unknown INVALID_SUBCOMMAND.
    fn decode(params: &[u8]) -> Result<Self, StatusCode> {
        let mut map = RequestMap::parse(params)?;
        let pin_uv_auth_protocol = map
            .take(PIN_UV_AUTH_PROTOCOL)
            .map(cbor::into_int)
            .transpose()?;
        let sub_command = map.take(SUB_COMMAND).map(cbor::into_int).transpose()?;
        let key_agreement = match map.take(KEY_AGREEMENT) {
            None => None,
            Some(key @ Value::Map(_)) => Some(KeyAgreementPublicKey::from_cbor(key)),
            Some(_) => return Err(StatusCode::CborUnexpectedType),
        };
        let pin_uv_auth_param = map
            .take(PIN_UV_AUTH_PARAM)
            .map(cbor::into_bytes)
            .transpose()?;
        let new_pin_enc = map.take(NEW_PIN_ENC).map(cbor::into_bytes).transpose()?;
        let pin_hash_enc = map.take(PIN_HASH_ENC).map(cbor::into_bytes).transpose()?;
        let permissions = map.take(PERMISSIONS).map(cbor::into_int).transpose()?;
        let rp_id = map.take(RP_ID).map(cbor::into_text).transpose()?;
        let sub_command = sub_command.ok_or(StatusCode::MissingParameter)?;
        Ok(ClientPinRequest {
            pin_uv_auth_protocol,
            sub_command: ClientPinSubcommand::from_number(sub_command)
                .ok_or(StatusCode::InvalidSubcommand)?,
            key_agreement,
            pin_uv_auth_param,
            new_pin_enc: new_pin_enc.map(Zeroizing::new),
            pin_hash_enc: pin_hash_enc.map(Zeroizing::new),
            permissions,
            rp_id,
        })
    }

    /// A keyAgreement that did not decode is left out: a platform only sends keys it has.
    fn to_cbor(&self) -> Option<Value> {
        let mut entries = Vec::new();
        if let Some(protocol) = self.pin_uv_auth_protocol {
            entries.push((PIN_UV_AUTH_PROTOCOL, integer(protocol)));
        }
        entries.push((SUB_COMMAND, integer(self.sub_command.as_byte().into())));
        if let Some(Ok(key)) = &self.key_agreement {
            entries.push((KEY_AGREEMENT, key.to_cbor()));
        }
        if let Some(param) = &self.pin_uv_auth_param {
            entries.push((PIN_UV_AUTH_PARAM, Value::Bytes(param.clone())));
        }
        if let Some(new_pin_enc) = &self.new_pin_enc {
            entries.push((NEW_PIN_ENC, Value::Bytes(new_pin_enc.to_vec())));
        }
        if let Some(pin_hash_enc) = &self.pin_hash_enc {
            entries.push((PIN_HASH_ENC, Value::Bytes(pin_hash_enc.to_vec())));
        }
        if let Some(permissions) = self.permissions {
            entries.push((PERMISSIONS, integer(permissions)));
        }
        if let Some(rp_id) = &self.rp_id {
            entries.push((RP_ID, Value::Text(rp_id.clone())));
        }
        Some(int_key_map(entries))
    }
}

/// An authenticatorClientPIN answer (CTAP 2.1 §6.5.5, response table); setPIN and changePIN
/// answer with none of the fields.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ClientPinResponse {
    /// 0x01 keyAgreement: the authenticator's key agreement key.
    pub key_agreement: Option<KeyAgreementPublicKey>,
    /// 0x02 pinUvAuthToken, encrypted to the platform.
    pub pin_uv_auth_token: Option<Zeroizing<Vec<u8>>>,
    /// 0x03 pinRetries.
    pub pin_retries: Option<u64>,
    /// 0x04 powerCycleState: a power cycle is needed before the PIN may be tried again.
    pub power_cycle_state: Option<bool>,
    /// 0x05 uvRetries.
    pub uv_retries: Option<u64>,
}

/// Even encrypted, a token is not for logs.
impl fmt::Debug for ClientPinResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientPinResponse")
            .field("key_agreement", &self.key_agreement)
            .field(
                "pin_uv_auth_token",
                &self.pin_uv_auth_token.as_ref().map(|_| "<redacted>"),
            )
            .field("pin_retries", &self.pin_retries)
            .field("power_cycle_state", &self.power_cycle_state)
            .field("uv_retries", &self.uv_retries)
            .finish()
    }
}

impl Response for ClientPinResponse {
    fn to_cbor(&self) -> Option<Value> {
        let mut entries = Vec::new();
        if let Some(key) = &self.key_agreement {
            entries.push((RESPONSE_KEY_AGREEMENT, key.to_cbor()));
        }
        if let Some(token) = &self.pin_uv_auth_token {
            entries.push((RESPONSE_PIN_UV_AUTH_TOKEN, Value::Bytes(token.to_vec())));
        }
        if let Some(retries) = self.pin_retries {
            entries.push((RESPONSE_PIN_RETRIES, Value::Integer(retries.into())));
        }
        if let Some(power_cycle) = self.power_cycle_state {
            entries.push((RESPONSE_POWER_CYCLE_STATE, Value::Bool(power_cycle)));
        }
        if let Some(retries) = self.uv_retries {
            entries.push((RESPONSE_UV_RETRIES, Value::Integer(retries.into())));
        }
        (!entries.is_empty()).then(|| int_key_map(entries))
    }

    fn decode(body: &[u8]) -> Result<Self, StatusCode> {
        let mut map = RequestMap::parse(body)?;
        Ok(ClientPinResponse {
            key_agreement: map
                .take(RESPONSE_KEY_AGREEMENT)
                .map(KeyAgreementPublicKey::from_cbor)
                .transpose()?,
            pin_uv_auth_token: map
                .take(RESPONSE_PIN_UV_AUTH_TOKEN)
                .map(cbor::into_bytes)
                .transpose()?
                .map(Zeroizing::new),
            pin_retries: map.take(RESPONSE_PIN_RETRIES).map(into_count).transpose()?,
            power_cycle_state: map
                .take(RESPONSE_POWER_CYCLE_STATE)
                .map(cbor::into_bool)
                .transpose()?,
            uv_retries: map.take(RESPONSE_UV_RETRIES).map(into_count).transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> KeyAgreementPublicKey {
        KeyAgreementPublicKey {
            x: [3; 32],
            y: [4; 32],
        }
    }

    #[test]
    fn every_subcommand_round_trips() {
        let requests = [
            ClientPinRequest::new(ClientPinSubcommand::GetPinRetries),
            ClientPinRequest::get_key_agreement(2),
            ClientPinRequest::set_pin(2, key(), vec![5; 80], vec![6; 32]),
            ClientPinRequest::change_pin(1, key(), vec![7; 16], vec![5; 64], vec![6; 16]),
            ClientPinRequest::get_pin_token(2, key(), vec![7; 32]),
            ClientPinRequest::get_token_using_pin(
                2,
                key(),
                vec![7; 32],
                0x05,
                Some("x.org".into()),
            ),
            ClientPinRequest::get_token_using_uv(2, key(), 0x04, None),
            ClientPinRequest::new(ClientPinSubcommand::GetUvRetries),
        ];
        for request in requests {
            let message = request.encode();
            assert_eq!(message[0], 0x06);
            assert_eq!(ClientPinRequest::decode(&message[1..]), Ok(request));
        }
    }

    #[test]
    fn malformed_requests_keep_their_statuses() {
        let int = |i: i64| Value::Integer(i.into());
        let decode = |entries: Vec<(i64, Value)>| {
            ClientPinRequest::decode(&cbor::encode(&cbor::int_map(entries)))
        };
        assert_eq!(decode(vec![]), Err(StatusCode::MissingParameter));
        assert_eq!(
            decode(vec![(2, int(0x08))]),
            Err(StatusCode::InvalidSubcommand)
        );
        assert_eq!(
            decode(vec![(2, Value::Text("1".into()))]),
            Err(StatusCode::CborUnexpectedType)
        );
        // A type error anywhere comes before a missing subCommand.
        assert_eq!(
            decode(vec![(10, int(1))]),
            Err(StatusCode::CborUnexpectedType)
        );
        assert_eq!(
            decode(vec![(2, int(2)), (3, Value::Bytes(vec![]))]),
            Err(StatusCode::CborUnexpectedType)
        );
        // A map that is no COSE key waits for the subcommand to use it.
        let request = decode(vec![(2, int(3)), (3, cbor::int_map(vec![(1, int(1))]))]).unwrap();
        assert_eq!(
            request.key_agreement,
            Some(Err(StatusCode::InvalidParameter))
        );
        assert_eq!(
            ClientPinRequest::decode(&[0xa1]),
            Err(StatusCode::InvalidCbor)
        );
    }

    #[test]
    fn responses_round_trip_and_an_empty_one_has_no_body() {
        let responses = [
            ClientPinResponse {
                key_agreement: Some(key()),
                ..Default::default()
            },
            ClientPinResponse {
                pin_uv_auth_token: Some(Zeroizing::new(vec![9; 48])),
                ..Default::default()
            },
            ClientPinResponse {
                pin_retries: Some(8),
                power_cycle_state: Some(false),
                ..Default::default()
            },
            ClientPinResponse {
                uv_retries: Some(3),
                ..Default::default()
            },
        ];
        for response in responses {
            let answer = response.encode();
            assert_eq!(answer[0], 0x00);
            assert_eq!(ClientPinResponse::decode(&answer[1..]), Ok(response));
        }
        assert_eq!(ClientPinResponse::default().encode(), vec![0x00]);
        assert_eq!(
            ClientPinResponse::decode(&[]),
            Ok(ClientPinResponse::default())
        );
    }

    #[test]
    fn pin_material_stays_out_of_debug_output() {
        let request =
            ClientPinRequest::change_pin(2, key(), vec![0xAB; 32], vec![0xCD; 64], vec![]);
        let printed = format!("{request:?}");
        assert!(
            !printed.contains("171") && !printed.contains("205"),
            "{printed}"
        );
        let response = ClientPinResponse {
            pin_uv_auth_token: Some(Zeroizing::new(vec![0xEE; 32])),
            ..Default::default()
        };
        assert!(!format!("{response:?}").contains("238"));
    }
}
