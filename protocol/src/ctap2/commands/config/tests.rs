use super::*;
use crate::cbor;
use crate::ctap2::test_support::*;
use crate::wire::{Command, SetMinPinLengthParams};
use ciborium::Value;

const CLIENT_PIN: u8 = Command::ClientPin as u8;
const CONFIG: u8 = Command::Config as u8;
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
    SetMinPinLengthParams {
        new_min_pin_length: Some(len.into()),
        ..Default::default()
    }
    .to_cbor()
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
    let ids = |n: usize| Some((0..n).map(|i| format!("rp{i}.org")).collect());
    let p = SetMinPinLengthParams {
        min_pin_length_rp_ids: ids(9),
        ..Default::default()
    }
    .to_cbor();
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
    let p = SetMinPinLengthParams {
        new_min_pin_length: Some(8),
        min_pin_length_rp_ids: ids(2),
        ..Default::default()
    }
    .to_cbor();
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
        config(&mut a, None, 3, Some(force_change_pin())),
        Err(StatusCode::PinNotSet),
        "no PIN to expire"
    );
    set_pin(&mut a, "1234");
    let token = pin_token(&mut a, P2, "1234", PERM_ACFG, None).unwrap();
    let p = force_change_pin();
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
    let p = SetMinPinLengthParams {
        new_min_pin_length: Some(6),
        min_pin_length_rp_ids: Some(vec!["listed.org".into()]),
        ..Default::default()
    }
    .to_cbor();
    config(&mut a, None, 3, Some(p)).unwrap();
    for (rp, expected) in [("listed.org", Some(int(6))), ("other.org", None)] {
        let mut request = mc_request(rp, b"u", &[-7]);
        request.extensions.min_pin_length = true;
        let reg = registration(&make_credential(&mut a, &request).unwrap());
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
    let listed = SetMinPinLengthParams {
        min_pin_length_rp_ids: Some(vec!["listed.org".into()]),
        ..Default::default()
    }
    .to_cbor();
    config(&mut a, None, 3, Some(listed)).unwrap();
    let ask = |a: &mut TestAuthenticator, rp: &str| {
        let mut request = mc_request(rp, b"u", &[-7]);
        request.extensions.pin_complexity_policy = true;
        let reg = registration(&make_credential(a, &request).unwrap());
        reg.extensions
            .as_ref()
            .and_then(|e| text_field(e, "pinComplexityPolicy").cloned())
    };
    assert_eq!(ask(&mut a, "listed.org"), Some(Value::Bool(false)));
    assert_eq!(ask(&mut a, "other.org"), None);
    let on = SetMinPinLengthParams {
        pin_complexity_policy: Some(true),
        ..Default::default()
    }
    .to_cbor();
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
