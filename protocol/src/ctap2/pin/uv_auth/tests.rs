//! makeCredential and getAssertion with a PIN: pinUvAuthParam, alwaysUv, makeCredUvNotRqd,
//! token permissions, RP binding, flags and timers (CTAP 2.1 §6.1.2, §6.2.2, §6.5.2).

use crate::status::StatusCode;

use ciborium::Value;

use crate::ctap2::authenticator_data::{FLAG_UP, FLAG_UV};
use crate::ctap2::pin::token::INITIAL_USAGE_TIME_LIMIT_MS;
use crate::ctap2::test_support::*;
use crate::wire::Command;

const MC: u8 = Command::MakeCredential as u8;
const GA: u8 = Command::GetAssertion as u8;
const P2: PinProtocol = PinProtocol::Two;

fn with_token(
    mut p: Vec<(i64, Value)>,
    key: i64,
    protocol: PinProtocol,
    token: &[u8],
) -> Vec<(i64, Value)> {
    p.push((key, auth_param(protocol, token, &TEST_CLIENT_DATA_HASH)));
    p.push((key + 1, int(protocol.number().into())));
    p
}

fn ga_params(rp: &str, allow: Option<&[u8]>) -> Vec<(i64, Value)> {
    let mut p = vec![(1, text(rp)), (2, bytes(&TEST_CLIENT_DATA_HASH))];
    if let Some(id) = allow {
        p.push((3, Value::Array(vec![descriptor(id)])));
    }
    p
}

fn flags(response: &Value) -> u8 {
    as_bytes(field(response, 2).unwrap())[32]
}

#[test]
fn make_credential_with_a_token_is_user_verified_under_both_protocols() {
    for protocol in [PinProtocol::One, PinProtocol::Two] {
        let (mut a, _) = authenticator();
        set_pin(&mut a, "1234");
        let token = pin_token(&mut a, protocol, "1234", PERM_MC, Some("x.org")).unwrap();
        let mut p = make_credential_params("x.org", b"u", &[-7]);
        p.push((7, options(&[("rk", true)])));
        let r = call(&mut a, MC, with_token(p, 8, protocol, &token)).unwrap();
        let reg = parse_registration(&r);
        assert_eq!(reg.auth_data[32] & (FLAG_UP | FLAG_UV), FLAG_UP | FLAG_UV);
        assert!(verify(
            &reg.cose_key,
            &[&reg.auth_data[..], &TEST_CLIENT_DATA_HASH].concat(),
            as_bytes(text_field(field(&r, 3).unwrap(), "sig").unwrap())
        ));
        assert_eq!(
            a.presence_mut().asked.last().unwrap().0,
            crate::env::Operation::Register,
            "a PIN is not a touch: presence is still asked"
        );
    }
}

#[test]
fn a_token_authorizes_one_ceremony() {
    let (mut a, _) = authenticator();
    set_pin(&mut a, "1234");
    let token = pin_token(&mut a, P2, "1234", PERM_MC | PERM_GA, Some("x.org")).unwrap();
    let p = make_credential_params("x.org", b"u", &[-7]);
    call(&mut a, MC, with_token(p.clone(), 8, P2, &token)).unwrap();
    assert_eq!(
        call(&mut a, MC, with_token(p, 8, P2, &token)),
        Err(StatusCode::PinAuthInvalid),
        "permissions spent"
    );
}

#[test]
fn a_silent_assertion_keeps_the_token() {
    let (mut a, _) = authenticator();
    set_pin(&mut a, "1234");
    let reg = register(&mut a, "x.org", b"u", -7, false);
    let token = pin_token(&mut a, P2, "1234", PERM_GA, Some("x.org")).unwrap();
    let mut p = ga_params("x.org", Some(&reg.credential_id));
    p.push((5, options(&[("up", false)])));
    let r = call(&mut a, GA, with_token(p, 6, P2, &token)).unwrap();
    assert_eq!(flags(&r), FLAG_UV, "verified, not present");
    let r = call(
        &mut a,
        GA,
        with_token(ga_params("x.org", Some(&reg.credential_id)), 6, P2, &token),
    )
    .unwrap();
    assert_eq!(flags(&r), FLAG_UP | FLAG_UV);
    assert_eq!(
        call(
            &mut a,
            GA,
            with_token(ga_params("x.org", Some(&reg.credential_id)), 6, P2, &token)
        ),
        Err(StatusCode::PinAuthInvalid)
    );
}

#[test]
fn the_token_must_be_for_this_rp_with_this_permission_and_right() {
    let (mut a, _) = authenticator();
    set_pin(&mut a, "1234");
    let p = || make_credential_params("x.org", b"u", &[-7]);
    let other = pin_token(&mut a, P2, "1234", PERM_MC, Some("other.org")).unwrap();
    assert_eq!(
        call(&mut a, MC, with_token(p(), 8, P2, &other)),
        Err(StatusCode::PinAuthInvalid),
        "another RP"
    );
    let ga_only = pin_token(&mut a, P2, "1234", PERM_GA, Some("x.org")).unwrap();
    assert_eq!(
        call(&mut a, MC, with_token(p(), 8, P2, &ga_only)),
        Err(StatusCode::PinAuthInvalid),
        "no mc"
    );
    let token = pin_token(&mut a, P2, "1234", PERM_MC, Some("x.org")).unwrap();
    assert_eq!(
        call(&mut a, MC, with_token(p(), 8, PinProtocol::One, &token)),
        Err(StatusCode::PinAuthInvalid),
        "another protocol's token"
    );
    let mut q = p();
    q.push((8, bytes(&[0; 32])));
    q.push((9, int(2)));
    assert_eq!(
        call(&mut a, MC, q),
        Err(StatusCode::PinAuthInvalid),
        "a wrong MAC"
    );
    let cm = pin_token(&mut a, P2, "1234", PERM_CM | PERM_MC, None).unwrap_err();
    assert_eq!(cm, StatusCode::MissingParameter, "mc needs an rpId");
    assert!(
        a.presence_mut()
            .asked
            .iter()
            .all(|(op, ..)| *op != crate::env::Operation::Register),
        "no gesture for any of these"
    );
}

#[test]
fn an_unused_token_expires_and_none_lives_past_ten_minutes() {
    let (mut a, clock) = authenticator();
    set_pin(&mut a, "1234");
    let reg = register(&mut a, "x.org", b"u", -7, false);
    let token = pin_token(&mut a, P2, "1234", PERM_GA, Some("x.org")).unwrap();
    clock.advance(INITIAL_USAGE_TIME_LIMIT_MS + 1);
    assert_eq!(
        call(
            &mut a,
            GA,
            with_token(ga_params("x.org", Some(&reg.credential_id)), 6, P2, &token)
        ),
        Err(StatusCode::PinAuthInvalid)
    );

    let token = pin_token(&mut a, P2, "1234", PERM_GA, Some("x.org")).unwrap();
    let silent = || {
        let mut p = ga_params("x.org", Some(&reg.credential_id));
        p.push((5, options(&[("up", false)])));
        p
    };
    call(&mut a, GA, with_token(silent(), 6, P2, &token)).unwrap();
    clock.advance(9 * 60_000);
    call(&mut a, GA, with_token(silent(), 6, P2, &token))
        .expect("used once: still valid at 9 minutes");
    clock.advance(60_001);
    assert_eq!(
        call(&mut a, GA, with_token(silent(), 6, P2, &token)),
        Err(StatusCode::PinAuthInvalid),
        "past 10 minutes"
    );
}

#[test]
fn make_cred_uv_not_rqd_discoverable_needs_uv_non_discoverable_does_not() {
    let (mut a, _) = authenticator();
    set_pin(&mut a, "1234");
    let mut p = make_credential_params("x.org", b"u", &[-7]);
    p.push((7, options(&[("rk", true)])));
    assert_eq!(call(&mut a, MC, p), Err(StatusCode::PuatRequired));
    let r = call(&mut a, MC, make_credential_params("x.org", b"u", &[-7])).unwrap();
    assert_eq!(flags(&r) & FLAG_UV, 0);
}

#[test]
fn always_uv_needs_a_token_except_for_silent_assertions() {
    let (mut a, _) = authenticator();
    let reg = register(&mut a, "x.org", b"u", -7, false);
    a.update_state(|s| s.always_uv = true).unwrap();
    assert_eq!(
        call(&mut a, MC, make_credential_params("x.org", b"u", &[-7])),
        Err(StatusCode::PuatRequired)
    );
    assert_eq!(
        call(&mut a, GA, ga_params("x.org", Some(&reg.credential_id))),
        Err(StatusCode::PuatRequired)
    );
    let mut p = ga_params("x.org", Some(&reg.credential_id));
    p.push((5, options(&[("up", false)])));
    assert!(call(&mut a, GA, p).is_ok(), "a pre-flight without presence");
}

#[test]
fn an_empty_pin_uv_auth_param_on_a_key_with_a_pin_is_pin_invalid() {
    let (mut a, _) = authenticator();
    set_pin(&mut a, "1234");
    let mut p = make_credential_params("x.org", b"u", &[-7]);
    p.push((8, bytes(&[])));
    p.push((9, int(2)));
    assert_eq!(call(&mut a, MC, p), Err(StatusCode::PinInvalid));
    a.presence_mut().default = crate::env::PresenceOutcome::TimedOut;
    let mut p = ga_params("x.org", None);
    p.push((6, bytes(&[])));
    assert_eq!(
        call(&mut a, GA, p),
        Err(StatusCode::OperationDenied),
        "no touch: OPERATION_DENIED"
    );
}

#[test]
fn a_verified_assertion_returns_the_whole_user_entity() {
    let (mut a, _) = authenticator();
    set_pin(&mut a, "1234");
    let token = pin_token(&mut a, P2, "1234", PERM_MC, Some("x.org")).unwrap();
    let mut p = make_credential_params("x.org", b"alice", &[-7]);
    p.push((7, options(&[("rk", true)])));
    call(&mut a, MC, with_token(p, 8, P2, &token)).unwrap();
    let token = pin_token(&mut a, P2, "1234", PERM_GA, Some("x.org")).unwrap();
    let r = call(
        &mut a,
        GA,
        with_token(ga_params("x.org", None), 6, P2, &token),
    )
    .unwrap();
    let user = field(&r, 4).unwrap();
    assert_eq!(text_field(user, "id"), Some(&bytes(b"alice")));
    assert_eq!(text_field(user, "name"), Some(&text("alice@example.com")));
    assert_eq!(text_field(user, "displayName"), Some(&text("Display")));
    assert_eq!(flags(&r), FLAG_UP | FLAG_UV);
}

#[test]
fn uv_option_without_built_in_uv_is_invalid_but_ignored_next_to_a_token() {
    let (mut a, _) = authenticator();
    set_pin(&mut a, "1234");
    let token = pin_token(&mut a, P2, "1234", PERM_MC, Some("x.org")).unwrap();
    let mut p = make_credential_params("x.org", b"u", &[-7]);
    p.push((7, options(&[("uv", true)])));
    assert_eq!(call(&mut a, MC, p.clone()), Err(StatusCode::InvalidOption));
    assert!(call(&mut a, MC, with_token(p, 8, P2, &token)).is_ok());
}
