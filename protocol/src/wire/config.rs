//! authenticatorConfig (CTAP 2.1 §6.11): subCommand, subCommandParams and the pinUvAuthToken's
//! MAC over 32×0xff || 0x0d || subCommand || subCommandParams.
//!
//! subCommandParams is kept as the map that was sent, because the MAC covers its encoding;
//! [`SetMinPinLengthParams`] reads it.

use ciborium::Value;

use super::command::Command;
use super::fields::{byte_enum, int_key_map, integer};
use super::subcommand::{Subcommand, SubcommandRequest};
use crate::cbor::{self, RequestMap};
use crate::status::StatusCode;

const NEW_MIN_PIN_LENGTH: i128 = 0x01;
const MIN_PIN_LENGTH_RP_IDS: i128 = 0x02;
const FORCE_CHANGE_PIN: i128 = 0x03;
const PIN_COMPLEXITY_POLICY: i128 = 0x04;

byte_enum! {
    /// The authenticatorConfig subcommands (CTAP 2.1 §6.11, table "subCommand").
    pub enum ConfigSubcommand {
        EnableEnterpriseAttestation = 0x01,
        ToggleAlwaysUv = 0x02,
        SetMinPinLength = 0x03,
        VendorPrototype = 0xFF,
    }
}

impl Subcommand for ConfigSubcommand {
    const COMMAND: Command = Command::Config;
    /// §6.11 step 2: a subCommand the authenticator does not support is
    /// CTAP1_ERR_INVALID_PARAMETER.
    const UNKNOWN: StatusCode = StatusCode::InvalidParameter;
    /// §6.11 step 4.4: the MAC covers 32×0xff || 0x0d || subCommand || subCommandParams.
    const AUTHENTICATED_PREFIX: &'static [u8] = &AUTHENTICATED_PREFIX;

    fn as_byte(self) -> u8 {
        self.as_byte()
    }

    fn from_number(number: i128) -> Option<Self> {
        Self::from_number(number)
    }
}

/// 32×0xff || authenticatorConfig's command byte.
const AUTHENTICATED_PREFIX: [u8; 33] = {
    let mut prefix = [0xff; 33];
    prefix[32] = Command::Config as u8;
    prefix
};

/// An authenticatorConfig request.
pub type ConfigRequest = SubcommandRequest<ConfigSubcommand>;

impl ConfigRequest {
    /// §6.11.4 setMinPINLength with its parameters.
    pub fn set_min_pin_length(params: &SetMinPinLengthParams) -> Self {
        SubcommandRequest {
            sub_command_params: Some(params.to_cbor()),
            ..Self::new(ConfigSubcommand::SetMinPinLength)
        }
    }
}

/// setMinPINLength's subCommandParams (CTAP 2.1 §6.11.4; 0x04 from CTAP 2.3). The new length
/// is kept as sent: whether it is too small or too large is the authenticator's policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetMinPinLengthParams {
    /// 0x01 newMinPINLength.
    pub new_min_pin_length: Option<i128>,
    /// 0x02 minPinLengthRPIDs.
    pub min_pin_length_rp_ids: Option<Vec<String>>,
    /// 0x03 forceChangePin.
    pub force_change_pin: Option<bool>,
    /// 0x04 pinComplexityPolicy.
    pub pin_complexity_policy: Option<bool>,
}

impl SetMinPinLengthParams {
    /// Reads subCommandParams, absent or a map: a key that is not an integer or a field of
    /// the wrong type is CBOR_UNEXPECTED_TYPE, a repeated key INVALID_CBOR.
    pub fn from_cbor(params: Option<&Value>) -> Result<Self, StatusCode> {
        let Some(params) = params else {
            return Ok(Self::default());
        };
        let mut map = RequestMap::parse(&cbor::encode(params))?;
        Ok(SetMinPinLengthParams {
            new_min_pin_length: map
                .take(NEW_MIN_PIN_LENGTH)
                .map(cbor::into_int)
                .transpose()?,
            min_pin_length_rp_ids: map
                .take(MIN_PIN_LENGTH_RP_IDS)
                .map(|ids| {
                    cbor::into_array(ids)?
                        .into_iter()
                        .map(cbor::into_text)
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()?,
            force_change_pin: map
                .take(FORCE_CHANGE_PIN)
                .map(cbor::into_bool)
                .transpose()?,
            pin_complexity_policy: map
                .take(PIN_COMPLEXITY_POLICY)
                .map(cbor::into_bool)
                .transpose()?,
        })
    }

    pub fn to_cbor(&self) -> Value {
        let mut entries = Vec::new();
        if let Some(length) = self.new_min_pin_length {
            entries.push((NEW_MIN_PIN_LENGTH, integer(length)));
        }
        if let Some(ids) = &self.min_pin_length_rp_ids {
            let ids = ids.iter().map(|id| Value::Text(id.clone())).collect();
            entries.push((MIN_PIN_LENGTH_RP_IDS, Value::Array(ids)));
        }
        if let Some(force) = self.force_change_pin {
            entries.push((FORCE_CHANGE_PIN, Value::Bool(force)));
        }
        if let Some(complexity) = self.pin_complexity_policy {
            entries.push((PIN_COMPLEXITY_POLICY, Value::Bool(complexity)));
        }
        int_key_map(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::message::Request;

    #[test]
    fn requests_round_trip_with_their_mac() {
        let params = SetMinPinLengthParams {
            new_min_pin_length: Some(6),
            min_pin_length_rp_ids: Some(vec!["x.org".into()]),
            force_change_pin: Some(true),
            pin_complexity_policy: None,
        };
        let request =
            ConfigRequest::set_min_pin_length(&params).authorized(2, |message| message.to_vec());
        let mac = request.pin_uv_auth_param.clone().unwrap();
        assert_eq!(&mac[..32], &[0xff; 32]);
        assert_eq!(&mac[32..34], &[0x0d, 0x03]);
        let message = request.encode();
        assert_eq!(message[0], 0x0D);
        let decoded = ConfigRequest::decode(&message[1..]).unwrap();
        assert_eq!(decoded, request);
        assert_eq!(
            SetMinPinLengthParams::from_cbor(decoded.sub_command_params.as_ref()),
            Ok(params)
        );
        let toggle = ConfigRequest::new(ConfigSubcommand::ToggleAlwaysUv);
        assert_eq!(ConfigRequest::decode(&toggle.encode()[1..]), Ok(toggle));
    }

    #[test]
    fn malformed_requests_keep_their_statuses() {
        let int = |i: i64| Value::Integer(i.into());
        let decode = |entries: Vec<(i64, Value)>| {
            ConfigRequest::decode(&cbor::encode(&cbor::int_map(entries)))
        };
        assert_eq!(decode(vec![]), Err(StatusCode::MissingParameter));
        assert_eq!(decode(vec![(1, int(4))]), Err(StatusCode::InvalidParameter));
        assert_eq!(
            decode(vec![(1, int(2)), (2, Value::Array(vec![]))]),
            Err(StatusCode::CborUnexpectedType)
        );
        assert_eq!(
            decode(vec![(1, int(2)), (3, Value::Text("2".into()))]),
            Err(StatusCode::CborUnexpectedType)
        );
        let rp_ids_not_text = cbor::int_map(vec![(2, Value::Array(vec![int(1)]))]);
        assert_eq!(
            SetMinPinLengthParams::from_cbor(Some(&rp_ids_not_text)),
            Err(StatusCode::CborUnexpectedType)
        );
    }
}
