//! makeCredential and getAssertion with a PIN: pinUvAuthParam, alwaysUv, makeCredUvNotRqd,
//! token permissions, RP binding, flags and timers (CTAP 2.1 §6.1.2, §6.2.2, §6.5.2).

use crate::status::StatusCode;

use crate::ctap2::authenticator_data::{FLAG_UP, FLAG_UV};
use crate::ctap2::pin::token::INITIAL_USAGE_TIME_LIMIT_MS;
use crate::ctap2::test_support::*;
use crate::wire::GetAssertionRequest;

const P2: PinProtocol = PinProtocol::Two;

/// A getAssertion naming the credential `id`.
fn ga_for(rp: &str, id: &[u8]) -> GetAssertionRequest {
    ga_request(rp, &[id])
}

/// A getAssertion without presence (`up` false): a pre-flight.
fn silent_ga_for(rp: &str, id: &[u8]) -> GetAssertionRequest {
    let mut request = ga_for(rp, id);
    request.options.up = Some(false);
    request
}

/// The flags byte of authenticator data.
fn flags(auth_data: &[u8]) -> u8 {
    auth_data[32]
}

#[test]
fn make_credential_with_a_token_is_user_verified_under_both_protocols() {
    for protocol in [PinProtocol::One, PinProtocol::Two] {
        let (mut a, _) = authenticator();
        set_pin(&mut a, "1234");
        let token = pin_token(&mut a, protocol, "1234", PERM_MC, Some("x.org")).unwrap();
        let mut request = mc_request("x.org", b"u", &[-7]);
        request.options.rk = Some(true);
        let r = make_credential(&mut a, &mc_with_token(request, protocol, &token)).unwrap();
        let reg = registration(&r);
        assert_eq!(reg.auth_data[32] & (FLAG_UP | FLAG_UV), FLAG_UP | FLAG_UV);
        assert!(verify(
            &reg.cose_key,
            &[&reg.auth_data[..], &TEST_CLIENT_DATA_HASH].concat(),
            as_bytes(text_field(&r.att_stmt, "sig").unwrap())
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
    let request = mc_with_token(mc_request("x.org", b"u", &[-7]), P2, &token);
    make_credential(&mut a, &request).unwrap();
    assert_eq!(
        make_credential(&mut a, &request).map(drop),
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
    let silent = ga_with_token(silent_ga_for("x.org", &reg.credential_id), P2, &token);
    let r = get_assertion(&mut a, &silent).unwrap();
    assert_eq!(flags(&r.auth_data), FLAG_UV, "verified, not present");
    let present = ga_with_token(ga_for("x.org", &reg.credential_id), P2, &token);
    let r = get_assertion(&mut a, &present).unwrap();
    assert_eq!(flags(&r.auth_data), FLAG_UP | FLAG_UV);
    assert_eq!(
        get_assertion(&mut a, &present).map(drop),
        Err(StatusCode::PinAuthInvalid)
    );
}

#[test]
fn the_token_must_be_for_this_rp_with_this_permission_and_right() {
    let (mut a, _) = authenticator();
    set_pin(&mut a, "1234");
    let p = || mc_request("x.org", b"u", &[-7]);
    let other = pin_token(&mut a, P2, "1234", PERM_MC, Some("other.org")).unwrap();
    assert_eq!(
        make_credential(&mut a, &mc_with_token(p(), P2, &other)).map(drop),
        Err(StatusCode::PinAuthInvalid),
        "another RP"
    );
    let ga_only = pin_token(&mut a, P2, "1234", PERM_GA, Some("x.org")).unwrap();
    assert_eq!(
        make_credential(&mut a, &mc_with_token(p(), P2, &ga_only)).map(drop),
        Err(StatusCode::PinAuthInvalid),
        "no mc"
    );
    let token = pin_token(&mut a, P2, "1234", PERM_MC, Some("x.org")).unwrap();
    assert_eq!(
        make_credential(&mut a, &mc_with_token(p(), PinProtocol::One, &token)).map(drop),
        Err(StatusCode::PinAuthInvalid),
        "another protocol's token"
    );
    let mut q = p();
    q.pin_uv_auth_param = Some(vec![0; 32]);
    q.pin_uv_auth_protocol = Some(2);
    assert_eq!(
        make_credential(&mut a, &q).map(drop),
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
        get_assertion(
            &mut a,
            &ga_with_token(ga_for("x.org", &reg.credential_id), P2, &token)
        )
        .map(drop),
        Err(StatusCode::PinAuthInvalid)
    );

    let token = pin_token(&mut a, P2, "1234", PERM_GA, Some("x.org")).unwrap();
    let silent = ga_with_token(silent_ga_for("x.org", &reg.credential_id), P2, &token);
    get_assertion(&mut a, &silent).unwrap();
    clock.advance(9 * 60_000);
    get_assertion(&mut a, &silent).expect("used once: still valid at 9 minutes");
    clock.advance(60_001);
    assert_eq!(
        get_assertion(&mut a, &silent).map(drop),
        Err(StatusCode::PinAuthInvalid),
        "past 10 minutes"
    );
}

#[test]
fn make_cred_uv_not_rqd_discoverable_needs_uv_non_discoverable_does_not() {
    let (mut a, _) = authenticator();
    set_pin(&mut a, "1234");
    let mut discoverable = mc_request("x.org", b"u", &[-7]);
    discoverable.options.rk = Some(true);
    assert_eq!(
        make_credential(&mut a, &discoverable).map(drop),
        Err(StatusCode::PuatRequired)
    );
    let r = make_credential(&mut a, &mc_request("x.org", b"u", &[-7])).unwrap();
    assert_eq!(flags(&r.auth_data) & FLAG_UV, 0);
}

#[test]
fn always_uv_needs_a_token_except_for_silent_assertions() {
    let (mut a, _) = authenticator();
    let reg = register(&mut a, "x.org", b"u", -7, false);
    a.update_state(|s| s.always_uv = true).unwrap();
    assert_eq!(
        make_credential(&mut a, &mc_request("x.org", b"u", &[-7])).map(drop),
        Err(StatusCode::PuatRequired)
    );
    assert_eq!(
        get_assertion(&mut a, &ga_for("x.org", &reg.credential_id)).map(drop),
        Err(StatusCode::PuatRequired)
    );
    assert!(
        get_assertion(&mut a, &silent_ga_for("x.org", &reg.credential_id)).is_ok(),
        "a pre-flight without presence"
    );
}

#[test]
fn an_empty_pin_uv_auth_param_on_a_key_with_a_pin_is_pin_invalid() {
    let (mut a, _) = authenticator();
    set_pin(&mut a, "1234");
    let mut request = mc_request("x.org", b"u", &[-7]);
    request.pin_uv_auth_param = Some(Vec::new());
    request.pin_uv_auth_protocol = Some(2);
    assert_eq!(
        make_credential(&mut a, &request).map(drop),
        Err(StatusCode::PinInvalid)
    );
    a.presence_mut().default = crate::env::PresenceOutcome::TimedOut;
    let mut request = ga_request("x.org", &[]);
    request.pin_uv_auth_param = Some(Vec::new());
    assert_eq!(
        get_assertion(&mut a, &request).map(drop),
        Err(StatusCode::OperationDenied),
        "no touch: OPERATION_DENIED"
    );
}

#[test]
fn a_verified_assertion_returns_the_whole_user_entity() {
    let (mut a, _) = authenticator();
    set_pin(&mut a, "1234");
    let token = pin_token(&mut a, P2, "1234", PERM_MC, Some("x.org")).unwrap();
    let mut request = mc_request("x.org", b"alice", &[-7]);
    request.options.rk = Some(true);
    make_credential(&mut a, &mc_with_token(request, P2, &token)).unwrap();
    let token = pin_token(&mut a, P2, "1234", PERM_GA, Some("x.org")).unwrap();
    let discovery = ga_with_token(ga_request("x.org", &[]), P2, &token);
    let r = get_assertion(&mut a, &discovery).unwrap();
    assert_eq!(r.user, Some(user_entity(b"alice", "alice@example.com")));
    assert_eq!(flags(&r.auth_data), FLAG_UP | FLAG_UV);
}

#[test]
fn uv_option_without_built_in_uv_is_invalid_but_ignored_next_to_a_token() {
    let (mut a, _) = authenticator();
    set_pin(&mut a, "1234");
    let token = pin_token(&mut a, P2, "1234", PERM_MC, Some("x.org")).unwrap();
    let mut request = mc_request("x.org", b"u", &[-7]);
    request.options.uv = Some(true);
    assert_eq!(
        make_credential(&mut a, &request).map(drop),
        Err(StatusCode::InvalidOption)
    );
    assert!(make_credential(&mut a, &mc_with_token(request, P2, &token)).is_ok());
}
