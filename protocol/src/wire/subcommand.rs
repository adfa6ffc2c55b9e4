//! The shape authenticatorCredentialManagement (CTAP 2.1 §6.8) and authenticatorConfig
//! (§6.11) share: a subCommand, its parameters, and the pinUvAuthToken's MAC over both.

use ciborium::Value;

use super::command::Command;
use super::fields::{int_key_map, integer};
use super::message::Request;
use crate::cbor::{self, RequestMap};
use crate::status::StatusCode;

const SUB_COMMAND: i128 = 0x01;
const SUB_COMMAND_PARAMS: i128 = 0x02;
const PIN_UV_AUTH_PROTOCOL: i128 = 0x03;
const PIN_UV_AUTH_PARAM: i128 = 0x04;

/// A command's subcommand enum, and what differs between the commands that have one.
pub trait Subcommand: Copy + std::fmt::Debug + PartialEq {
    const COMMAND: Command;
    /// The status for a subCommand number the spec does not define.
    const UNKNOWN: StatusCode;
    /// What the pinUvAuthParam's MAC covers before subCommand || subCommandParams.
    const AUTHENTICATED_PREFIX: &'static [u8];

    fn as_byte(self) -> u8;
    fn from_number(number: i128) -> Option<Self>;
}

/// A request of a command with subcommands.
#[derive(Debug, Clone, PartialEq)]
pub struct SubcommandRequest<S> {
    /// 0x01 subCommand.
    pub sub_command: S,
    /// 0x02 subCommandParams, as sent (a map): the MAC covers its exact encoding.
    pub sub_command_params: Option<Value>,
    /// 0x03 pinUvAuthProtocol, as sent (the authenticator judges it).
    pub pin_uv_auth_protocol: Option<i128>,
    /// 0x04 pinUvAuthParam.
    pub pin_uv_auth_param: Option<Vec<u8>>,
}

impl<S: Subcommand> SubcommandRequest<S> {
    /// A request without parameters nor token.
    pub fn new(sub_command: S) -> Self {
        SubcommandRequest {
            sub_command,
            sub_command_params: None,
            pin_uv_auth_protocol: None,
            pin_uv_auth_param: None,
        }
    }

    /// What the token authenticates: the command's prefix, subCommand, subCommandParams.
    pub fn message_to_authenticate(&self) -> Vec<u8> {
        let mut message = S::AUTHENTICATED_PREFIX.to_vec();
        message.push(self.sub_command.as_byte());
        if let Some(params) = &self.sub_command_params {
            message.extend(cbor::encode(params));
        }
        message
    }

    /// The request with pinUvAuthProtocol and pinUvAuthParam: `authenticate` is the token's
    /// MAC, given [`Self::message_to_authenticate`].
    pub fn authorized(self, protocol: u8, authenticate: impl FnOnce(&[u8]) -> Vec<u8>) -> Self {
        let param = authenticate(&self.message_to_authenticate());
        SubcommandRequest {
            pin_uv_auth_protocol: Some(protocol.into()),
            pin_uv_auth_param: Some(param),
            ..self
        }
    }
}

impl<S: Subcommand> Request for SubcommandRequest<S> {
    const COMMAND: Command = S::COMMAND;

    /// subCommand first (absent: MISSING_PARAMETER, not an integer: CBOR_UNEXPECTED_TYPE),
    /// the other fields' types, then a subCommand the spec does not define (`S::UNKNOWN`).
    fn decode(params: &[u8]) -> Result<Self, StatusCode> {
        let mut map = RequestMap::parse(params)?;
        let sub_command = cbor::into_int(map.required(SUB_COMMAND)?)?;
        let sub_command_params = map.take(SUB_COMMAND_PARAMS);
        if !matches!(sub_command_params, None | Some(Value::Map(_))) {
            return Err(StatusCode::CborUnexpectedType);
        }
        let pin_uv_auth_protocol = map
            .take(PIN_UV_AUTH_PROTOCOL)
            .map(cbor::into_int)
            .transpose()?;
        let pin_uv_auth_param = map
            .take(PIN_UV_AUTH_PARAM)
            .map(cbor::into_bytes)
            .transpose()?;
        Ok(SubcommandRequest {
            sub_command: S::from_number(sub_command).ok_or(S::UNKNOWN)?,
            sub_command_params,
            pin_uv_auth_protocol,
            pin_uv_auth_param,
        })
    }

    fn to_cbor(&self) -> Option<Value> {
        let mut entries = vec![(
            SUB_COMMAND,
            Value::Integer(self.sub_command.as_byte().into()),
        )];
        if let Some(params) = &self.sub_command_params {
            entries.push((SUB_COMMAND_PARAMS, params.clone()));
        }
        if let Some(protocol) = self.pin_uv_auth_protocol {
            entries.push((PIN_UV_AUTH_PROTOCOL, integer(protocol)));
        }
        if let Some(param) = &self.pin_uv_auth_param {
            entries.push((PIN_UV_AUTH_PARAM, Value::Bytes(param.clone())));
        }
        Some(int_key_map(entries))
    }
}
