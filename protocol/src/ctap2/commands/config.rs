//! authenticatorConfig (CTAP 2.1 §6.11): toggleAlwaysUv and setMinPINLength. Enterprise
//! attestation is not something this key offers, so enableEnterpriseAttestation is an
//! unsupported subcommand, as on a key without it.

use ciborium::Value;

use crate::ctap2::authenticator::Authenticator;
use crate::ctap2::pin::token::permission;
use crate::env::Env;
use crate::status::StatusCode;
use crate::wire::{ConfigRequest, ConfigSubcommand, Request as _, SetMinPinLengthParams};

/// getInfo maxRPIDsForSetMinPINLength.
pub const MAX_RP_IDS_FOR_SET_MIN_PIN_LENGTH: usize = 8;
/// The longest minimum we accept: a longer one could never be met by a 63-byte PIN.
const MAX_MIN_PIN_LENGTH: i128 = 63;

/// getInfo authenticatorConfigCommands (CTAP 2.3 §6.4 0x1F): the subcommands served.
pub const SUPPORTED_SUBCOMMANDS: [u8; 2] = [
    ConfigSubcommand::ToggleAlwaysUv as u8,
    ConfigSubcommand::SetMinPinLength as u8,
];

impl<E: Env> Authenticator<E> {
    pub(crate) fn authenticator_config(&mut self, params: &[u8]) -> Result<Value, StatusCode> {
        // 1. subCommand is mandatory.
        let mut request = ConfigRequest::decode(params)?;
        // 2. Only the subcommands this key has (enableEnterpriseAttestation and
        //    vendorPrototype are not).
        let sub_command = request.sub_command;
        if !matches!(
            sub_command,
            ConfigSubcommand::ToggleAlwaysUv | ConfigSubcommand::SetMinPinLength
        ) {
            return Err(StatusCode::InvalidParameter);
        }
        // 3-4. On a key protected by UV, or with alwaysUv on, a token with acfg over
        //    32×0xff || 0x0d || subCommand || subCommandParams. The exception: alwaysUv may
        //    be switched off on a key that has nothing to verify the user with.
        let protected = self.is_protected()?;
        let always_uv = self.state()?.always_uv;
        let bypass = sub_command == ConfigSubcommand::ToggleAlwaysUv && !protected && always_uv;
        if !bypass && (protected || always_uv) {
            let message = request.message_to_authenticate();
            self.authorize_management(
                request.pin_uv_auth_param.take(),
                request.pin_uv_auth_protocol,
                &message,
                permission::AUTHENTICATOR_CONFIG,
            )?;
        }
        // 5-6. The subcommand.
        if sub_command == ConfigSubcommand::ToggleAlwaysUv {
            self.update_state(|state| state.always_uv = !state.always_uv)?;
            return Ok(Value::Null);
        }
        let params = SetMinPinLengthParams::from_cbor(request.sub_command_params.as_ref())?;
        self.set_min_pin_length(params)
    }

    /// §6.11.4 setMinPINLength: raise (never lower) the minimum PIN length, name the RPs that
    /// may read it, make the PIN expire, and/or (CTAP 2.3) turn the PIN complexity policy on.
    fn set_min_pin_length(&mut self, params: SetMinPinLengthParams) -> Result<Value, StatusCode> {
        let new_min = params.new_min_pin_length;
        let rp_ids = params.min_pin_length_rp_ids;
        let force_change = params.force_change_pin.unwrap_or(false);
        let complexity = params.pin_complexity_policy.unwrap_or(false);

        let state = self.state()?.clone();
        // 1-2. Absent means "keep"; smaller than now is a policy violation.
        let new_min = new_min.unwrap_or(state.min_pin_length.into());
        if new_min < i128::from(state.min_pin_length) {
            return Err(StatusCode::PinPolicyViolation);
        }
        if new_min > MAX_MIN_PIN_LENGTH {
            return Err(StatusCode::PinPolicyViolation);
        }
        // 3. No more RP IDs than getInfo promises.
        if rp_ids
            .as_ref()
            .is_some_and(|ids| ids.len() > MAX_RP_IDS_FOR_SET_MIN_PIN_LENGTH)
        {
            return Err(StatusCode::InvalidParameter);
        }
        // 4. Expiring a PIN that does not exist makes no sense.
        let pin_set = self.pin_is_set()?;
        if force_change && !pin_set {
            return Err(StatusCode::PinNotSet);
        }
        // 5-7. A PIN shorter than the new minimum must be changed before it is used again (a
        //    PIN of unknown length too: a crash came between setting it and noting its length).
        let too_short = pin_set
            && state
                .pin_code_points
                .is_none_or(|code_points| i128::from(code_points) < new_min);
        self.update_state(|s| {
            s.min_pin_length = new_min as u8;
            if let Some(ids) = rp_ids {
                s.min_pin_length_rp_ids = ids;
            }
            if force_change || too_short {
                s.force_pin_change = true;
                // The PIN must change: the persistent token granted with it ends now, as
                // every token does (no token is handed out until the change).
                s.persistent_token = None;
            }
            // Like the minimum length, the policy only ever gets stricter (a reset clears it).
            // It applies to the next PIN set or changed; the current one is unknown here.
            if complexity {
                s.pin_complexity_policy = true;
            }
        })?;
        Ok(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cbor;
    use crate::ctap2::test_support::*;

    const CONFIG: u8 = 0x0D;
    const P2: PinProtocol = PinProtocol::Two;

    /// authenticatorConfig as a platform sends it; a subcommand CTAP does not define has no
    /// [`crate::wire::ConfigRequest`], so it is sent by hand.
    fn config(
        a: &mut TestAuthenticator,
        token: Option<&[u8]>,
        sub: i64,
        params: Option<Value>,
    ) -> Result<Value, StatusCode> {
        if ConfigSubcommand::from_number(sub.into()).is_some() {
            return authenticator_config(a, token, sub as u8, params);
        }
        assert!(
            token.is_none() && params.is_none(),
            "an undefined subcommand alone"
        );
        call(a, CONFIG, vec![(1, int(sub))])
    }

    fn min_length(len: i64) -> Value {
        cbor::int_map(vec![(1, int(len))])
    }

    #[test]
    fn without_a_pin_config_needs_no_token() {
        let (mut a, _) = authenticator();
        assert_eq!(
            config(&mut a, None, 3, Some(min_length(6))),
            Ok(Value::Null)
        );
        assert_eq!(a.state().unwrap().min_pin_length, 6);
        let p = set_pin_params(&mut a, P2, &padded(b"12345"));
        assert_eq!(
            call(&mut a, CLIENT_PIN, p),
            Err(StatusCode::PinPolicyViolation),
            "5 < 6 code points"
        );
        assert_eq!(config(&mut a, None, 2, None), Ok(Value::Null));
        assert!(a.state().unwrap().always_uv);
    }

    #[test]
    fn with_a_pin_config_needs_an_acfg_token() {
        let (mut a, _) = authenticator();
        set_pin(&mut a, "123456");
        assert_eq!(
            config(&mut a, None, 2, None),
            Err(StatusCode::PuatRequired),
            "no pinUvAuthParam"
        );
        let cm = pin_token(&mut a, P2, "123456", PERM_CM, None).unwrap();
        assert_eq!(
            config(&mut a, Some(&cm), 2, None),
            Err(StatusCode::PinAuthInvalid),
            "no acfg permission"
        );
        let token = pin_token(&mut a, P2, "123456", PERM_ACFG, None).unwrap();
        assert_eq!(
            config(&mut a, Some(&[0; 32]), 2, None),
            Err(StatusCode::PinAuthInvalid),
            "another token"
        );
        let p = vec![(1, int(2)), (4, auth_param(P2, &token, &[0]))];
        assert_eq!(
            call(&mut a, CONFIG, p),
            Err(StatusCode::MissingParameter),
            "no protocol"
        );
        assert_eq!(config(&mut a, Some(&token), 2, None), Ok(Value::Null));
        assert!(a.state().unwrap().always_uv);
        assert_eq!(config(&mut a, Some(&token), 2, None), Ok(Value::Null));
        assert!(!a.state().unwrap().always_uv, "a toggle");
    }

    #[test]
    fn always_uv_without_a_pin_can_be_switched_off_without_a_token() {
        let (mut a, _) = authenticator();
        config(&mut a, None, 2, None).unwrap();
        assert_eq!(
            config(&mut a, None, 3, Some(min_length(6))),
            Err(StatusCode::PuatRequired),
            "alwaysUv on: token needed"
        );
        assert_eq!(config(&mut a, None, 2, None), Ok(Value::Null));
        assert!(!a.state().unwrap().always_uv);
    }

    #[test]
    fn set_min_pin_length_rules() {
        let (mut a, _) = authenticator();
        set_pin(&mut a, "123456");
        let token = pin_token(&mut a, P2, "123456", PERM_ACFG, None).unwrap();
        assert_eq!(
            config(&mut a, Some(&token), 3, Some(min_length(3))),
            Err(StatusCode::PinPolicyViolation),
            "never lower"
        );
        assert_eq!(
            config(&mut a, Some(&token), 3, Some(min_length(64))),
            Err(StatusCode::PinPolicyViolation)
        );
        let ids = |n: usize| Value::Array((0..n).map(|i| text(&format!("rp{i}.org"))).collect());
        let p = cbor::int_map(vec![(2, ids(9))]);
        assert_eq!(
            config(&mut a, Some(&token), 3, Some(p)),
            Err(StatusCode::InvalidParameter),
            "more than 8 RP IDs"
        );
        assert_eq!(
            config(
                &mut a,
                Some(&token),
                3,
                Some(cbor::int_map(vec![(1, text("6"))]))
            ),
            Err(StatusCode::CborUnexpectedType)
        );

        assert_eq!(
            config(&mut a, Some(&token), 3, Some(min_length(6))),
            Ok(Value::Null)
        );
        assert!(
            !a.state().unwrap().force_pin_change,
            "the 6-digit PIN still fits"
        );
        let p = cbor::int_map(vec![(1, int(8)), (2, ids(2))]);
        assert_eq!(config(&mut a, Some(&token), 3, Some(p)), Ok(Value::Null));
        let state = a.state().unwrap().clone();
        assert_eq!(state.min_pin_length, 8);
        assert_eq!(state.min_pin_length_rp_ids, vec!["rp0.org", "rp1.org"]);
        assert!(state.force_pin_change, "the PIN is now too short");
    }

    #[test]
    fn force_change_pin_blocks_tokens_until_the_pin_is_changed() {
        let (mut a, _) = authenticator();
        assert_eq!(
            config(
                &mut a,
                None,
                3,
                Some(cbor::int_map(vec![(3, Value::Bool(true))]))
            ),
            Err(StatusCode::PinNotSet),
            "no PIN to expire"
        );
        set_pin(&mut a, "1234");
        let token = pin_token(&mut a, P2, "1234", PERM_ACFG, None).unwrap();
        let p = cbor::int_map(vec![(3, Value::Bool(true))]);
        assert_eq!(config(&mut a, Some(&token), 3, Some(p)), Ok(Value::Null));
        assert!(a.state().unwrap().force_pin_change);
        assert_eq!(
            pin_token(&mut a, P2, "1234", PERM_GA, Some("x")),
            Err(StatusCode::PinPolicyViolation),
            "with permissions"
        );
        let (key, shared) = key_agreement(&mut a, P2);
        let p = vec![
            (1, int(2)),
            (2, int(5)),
            (3, key),
            (6, bytes(&shared.encrypt(&pin_hash(b"1234"), iv))),
        ];
        assert_eq!(
            call(&mut a, CLIENT_PIN, p),
            Err(StatusCode::PinInvalid),
            "getPinToken"
        );
        assert_eq!(
            a.keystore_mut().pin_retries().unwrap(),
            Some(8),
            "the PIN was right"
        );

        // changePIN to the same PIN is refused, to another one clears the flag.
        let change = |a: &mut TestAuthenticator, new: &[u8]| {
            let (key, shared) = key_agreement(a, P2);
            let new_pin_enc = shared.encrypt(&padded(new), iv);
            let pin_hash_enc = shared.encrypt(&pin_hash(b"1234"), iv);
            let mac = shared.authenticate(&[&new_pin_enc[..], &pin_hash_enc[..]].concat());
            let p = vec![
                (1, int(2)),
                (2, int(4)),
                (3, key),
                (4, bytes(&mac)),
                (5, bytes(&new_pin_enc)),
                (6, bytes(&pin_hash_enc)),
            ];
            call(a, CLIENT_PIN, p)
        };
        assert_eq!(change(&mut a, b"1234"), Err(StatusCode::PinPolicyViolation));
        assert_eq!(change(&mut a, b"4321"), Ok(Value::Null));
        assert!(!a.state().unwrap().force_pin_change);
    }

    #[test]
    fn unsupported_and_malformed_subcommands() {
        let (mut a, _) = authenticator();
        for sub in [0x01, 0xff, 0x04, 0] {
            assert_eq!(
                config(&mut a, None, sub, None),
                Err(StatusCode::InvalidParameter),
                "subcommand {sub:#x}"
            );
        }
        assert_eq!(
            call(&mut a, CONFIG, vec![]),
            Err(StatusCode::MissingParameter)
        );
        assert_eq!(
            call(&mut a, CONFIG, vec![(1, text("2"))]),
            Err(StatusCode::CborUnexpectedType)
        );
        assert_eq!(
            call(&mut a, CONFIG, vec![(1, int(3)), (2, int(4))]),
            Err(StatusCode::CborUnexpectedType)
        );
    }

    #[test]
    fn the_min_pin_length_extension_tells_only_listed_rps() {
        let (mut a, _) = authenticator();
        let p = cbor::int_map(vec![
            (1, int(6)),
            (2, Value::Array(vec![text("listed.org")])),
        ]);
        config(&mut a, None, 3, Some(p)).unwrap();
        for (rp, expected) in [("listed.org", Some(int(6))), ("other.org", None)] {
            let mut p = make_credential_params(rp, b"u", &[-7]);
            p.push((6, cbor::text_map(vec![("minPinLength", Value::Bool(true))])));
            let reg = parse_registration(&call(&mut a, 0x01, p).unwrap());
            let output = reg
                .extensions
                .as_ref()
                .and_then(|e| text_field(e, "minPinLength").cloned());
            assert_eq!(output, expected, "{rp}");
        }
    }

    /// CTAP 2.3 pinComplexityPolicy extension: like minPinLength, only RPs listed with
    /// setMinPINLength learn whether the policy is on (false, then true once turned on).
    #[test]
    fn the_pin_complexity_policy_extension_tells_only_listed_rps() {
        let (mut a, _) = authenticator();
        let listed = cbor::int_map(vec![(2, Value::Array(vec![text("listed.org")]))]);
        config(&mut a, None, 3, Some(listed)).unwrap();
        let ask = |a: &mut TestAuthenticator, rp: &str| {
            let mut p = make_credential_params(rp, b"u", &[-7]);
            p.push((
                6,
                cbor::text_map(vec![("pinComplexityPolicy", Value::Bool(true))]),
            ));
            let reg = parse_registration(&call(a, 0x01, p).unwrap());
            reg.extensions
                .as_ref()
                .and_then(|e| text_field(e, "pinComplexityPolicy").cloned())
        };
        assert_eq!(ask(&mut a, "listed.org"), Some(Value::Bool(false)));
        assert_eq!(ask(&mut a, "other.org"), None);
        let on = cbor::int_map(vec![(4, Value::Bool(true))]);
        config(&mut a, None, 3, Some(on)).unwrap();
        assert_eq!(ask(&mut a, "listed.org"), Some(Value::Bool(true)));
        assert_eq!(ask(&mut a, "other.org"), None);
        let not_a_bool = cbor::int_map(vec![(4, int(1))]);
        assert_eq!(
            config(&mut a, None, 3, Some(not_a_bool)),
            Err(StatusCode::CborUnexpectedType),
            "pinComplexityPolicy must be a boolean: CTAP2_ERR_CBOR_UNEXPECTED_TYPE"
        );
    }
}
