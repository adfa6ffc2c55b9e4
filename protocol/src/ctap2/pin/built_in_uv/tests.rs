//! Built-in user verification against CTAP 2.1: getInfo, getUVRetries (§6.5.5.3),
//! getPinUvAuthTokenUsingUvWithPermissions (§6.5.5.7.3), the "uv" option of makeCredential
//! (§6.1.2 step 11.2) and getAssertion (§6.2.2 step 6.2), alwaysUv, makeCredUvNotRqd, and the
//! uvRetries counter across failures, restarts, PIN entry and reset.

use crate::status::StatusCode;

use std::panic::{self, AssertUnwindSafe};

use ciborium::Value;

use crate::cbor;
use crate::ctap2::authenticator::{Authenticator, AuthenticatorConfig};
use crate::ctap2::authenticator_data::{FLAG_AT, FLAG_UP, FLAG_UV};
use crate::ctap2::state::persistent::PersistentState;
use crate::ctap2::test_support::*;
use crate::env::{
    uv_modality, Keystore as _, Operation, Presence, PresenceOutcome, PresenceRequest, StateSlot,
    UvOutcome,
};
use crate::testing::{ManualClock, MemoryKeystore, SeededRng};
use crate::wire::{
    ClientPinRequest, ClientPinSubcommand, GetAssertionRequest, MakeCredentialRequest, Options,
    PublicKeyCredentialDescriptor, Request as _,
};

use crate::wire::Command;
use UvOutcome::{Cancelled, Denied, Failed, TimedOut, Unavailable, Verified};

const CLIENT_PIN: u8 = Command::ClientPin as u8;
const GET_INFO: u8 = Command::GetInfo as u8;
const CONFIG: u8 = Command::Config as u8;
const P2: PinProtocol = PinProtocol::Two;

fn script(a: &mut TestAuthenticator, outcomes: &[UvOutcome]) {
    a.presence_mut().uv_script = outcomes.iter().copied().collect();
}

/// uvRetries as the keystore holds it (what survives a crash), not the cached copy.
fn stored_uv_retries(a: &mut TestAuthenticator) -> u8 {
    let bytes = a
        .keystore_mut()
        .read_state(StateSlot::Authenticator)
        .unwrap()
        .expect("state written");
    PersistentState::decode(&bytes).unwrap().uv_retries
}

fn asked(operation: Operation, rp: Option<&str>, user: Option<&str>) -> crate::testing::AskedFor {
    (operation, rp.map(str::to_owned), user.map(str::to_owned))
}

/// The options rk, up and uv by name.
fn options_of(opts: &[(&str, bool)]) -> Options {
    let mut options = Options::default();
    for &(name, value) in opts {
        let slot = match name {
            "rk" => &mut options.rk,
            "up" => &mut options.up,
            "uv" => &mut options.uv,
            other => panic!("no option {other}"),
        };
        *slot = Some(value);
    }
    options
}

/// makeCredential for x.org and alice with the given options.
fn mc_with(opts: &[(&str, bool)]) -> MakeCredentialRequest {
    let mut request = mc_request("x.org", b"alice", &[-7]);
    request.options = options_of(opts);
    request
}

/// getAssertion for `rp`, by discovery or with one allowed credential.
fn ga_with(rp: &str, allow: Option<&[u8]>, opts: &[(&str, bool)]) -> GetAssertionRequest {
    let mut request = ga_request(rp, allow.as_slice());
    request.options = options_of(opts);
    request
}

/// The flags byte of authenticator data.
fn flags(auth_data: &[u8]) -> u8 {
    auth_data[32]
}

// --- getInfo and getUVRetries ---------------------------------------------------------------

#[test]
fn get_info_reports_uv_its_modality_and_attempts_next_to_client_pin() {
    let (mut a, _) = uv_authenticator();
    a.presence_mut().uv_modality = uv_modality::FINGERPRINT_INTERNAL;
    let info = call(&mut a, GET_INFO, vec![]).unwrap();
    let option = |info: &Value, name: &str| text_field(field(info, 4).unwrap(), name).cloned();
    assert_eq!(option(&info, "uv"), Some(Value::Bool(true)));
    assert_eq!(option(&info, "pinUvAuthToken"), Some(Value::Bool(true)));
    assert_eq!(option(&info, "uvAcfg"), Some(Value::Bool(true)));
    assert_eq!(
        option(&info, "clientPin"),
        Some(Value::Bool(false)),
        "no PIN yet, but one can be set"
    );
    assert_eq!(option(&info, "noMcGaPermissionsWithClientPin"), None);
    assert_eq!(
        field(&info, 0x11),
        Some(&int(3)),
        "preferredPlatformUvAttempts"
    );
    assert_eq!(
        field(&info, 0x12),
        Some(&int(2)),
        "uvModality as the environment reports it"
    );

    set_pin(&mut a, "1234");
    let info = call(&mut a, GET_INFO, vec![]).unwrap();
    assert_eq!(option(&info, "clientPin"), Some(Value::Bool(true)));
    assert_eq!(option(&info, "uv"), Some(Value::Bool(true)), "both at once");
}

#[test]
fn get_uv_retries_answers_uv_retries_alone() {
    let (mut a, _) = uv_authenticator();
    // 2. Authenticator responds back with uvRetries.
    let request = ClientPinRequest::new(ClientPinSubcommand::GetUvRetries);
    assert_eq!(
        send_value(&mut a, &request),
        Ok(cbor::int_map(vec![(5, int(8))]))
    );
}

// --- getPinUvAuthTokenUsingUvWithPermissions ------------------------------------------------

#[test]
fn a_uv_token_is_verified_and_present_under_both_protocols() {
    for protocol in [PinProtocol::One, PinProtocol::Two] {
        let (mut a, _) = uv_authenticator();
        let token = uv_token(&mut a, protocol, PERM_MC, Some("x.org")).unwrap();
        assert_eq!(
            a.presence_mut().uv_asked,
            vec![asked(Operation::Register, Some("x.org"), None)]
        );
        // No PIN is set: the token alone authorizes the credential.
        let p = mc_with_token(mc_with(&[("rk", true)]), protocol, &token);
        let reg = registration(&make_credential(&mut a, &p).unwrap());
        assert_eq!(reg.auth_data[32], FLAG_UP | FLAG_UV | FLAG_AT);
        assert!(
            a.presence_mut().asked.is_empty(),
            "13. the verification was the gesture: no presence prompt"
        );
        assert_eq!(
            a.presence_mut().uv_asked.len(),
            1,
            "nor a second verification"
        );
        assert_eq!(uv_retries(&mut a), 8);
    }
}

#[test]
fn the_prompt_names_what_the_permissions_are_for() {
    let (mut a, _) = uv_authenticator();
    uv_token(&mut a, P2, PERM_GA, Some("x.org")).unwrap();
    uv_token(&mut a, P2, PERM_MC | PERM_GA, Some("y.org")).unwrap();
    uv_token(&mut a, P2, PERM_CM | PERM_LBW, None).unwrap();
    assert_eq!(
        a.presence_mut().uv_asked,
        vec![
            asked(Operation::Authenticate, Some("x.org"), None),
            asked(Operation::Register, Some("y.org"), None),
            asked(Operation::ManageKey, None, None),
        ]
    );
}

#[test]
fn uv_token_parameter_checks_come_before_anyone_is_asked() {
    let (mut a, _) = uv_authenticator();
    let (key, _) = platform_key_agreement(&mut a, P2);
    let well_formed =
        ClientPinRequest::get_token_using_uv(P2.number(), key, PERM_GA, Some("x.org".into()));
    let request = |changes: &[(i64, Option<Value>)]| {
        let mut p = entries(&well_formed);
        for (k, v) in changes {
            p.retain(|(key, _)| key != k);
            if let Some(v) = v {
                p.push((*k, v.clone()));
            }
        }
        p
    };
    // 1. Mandatory parameters.
    for missing in [1, 3, 9] {
        assert_eq!(
            call(&mut a, CLIENT_PIN, request(&[(missing, None)])),
            Err(StatusCode::MissingParameter),
            "without {missing}"
        );
    }
    // 2. A known protocol.
    assert_eq!(
        call(&mut a, CLIENT_PIN, request(&[(1, Some(int(3)))])),
        Err(StatusCode::InvalidParameter)
    );
    // 3. At least one permission.
    assert_eq!(
        call(&mut a, CLIENT_PIN, request(&[(9, Some(int(0)))])),
        Err(StatusCode::InvalidParameter)
    );
    // 4. No bio enrollment, nothing unknown.
    for permissions in [0x08, 0x80, 0x100] {
        assert_eq!(
            call(&mut a, CLIENT_PIN, request(&[(9, Some(int(permissions)))])),
            Err(StatusCode::UnauthorizedPermission),
            "{permissions:#x}"
        );
    }
    // mc and ga are for one RP.
    assert_eq!(
        call(&mut a, CLIENT_PIN, request(&[(0x0A, None)])),
        Err(StatusCode::MissingParameter)
    );
    // The shared secret: a key not on the curve.
    let off_curve = cbor::int_map(vec![
        (1, int(2)),
        (3, int(-25)),
        (-1, int(1)),
        (-2, bytes(&[1; 32])),
        (-3, bytes(&[2; 32])),
    ]);
    assert_eq!(
        call(&mut a, CLIENT_PIN, request(&[(3, Some(off_curve))])),
        Err(StatusCode::InvalidParameter)
    );
    assert!(a.presence_mut().uv_asked.is_empty(), "no one was asked");
    assert_eq!(uv_retries(&mut a), 8, "no attempt spent");
}

#[test]
fn each_wrong_secret_spends_one_retry_and_a_success_restores_them() {
    let (mut a, _) = uv_authenticator();
    script(&mut a, &[Failed, Failed]);
    // 10.3. A failure with retries left: UV_INVALID, the counter written down.
    assert_eq!(
        uv_token(&mut a, P2, PERM_GA, Some("x.org")),
        Err(StatusCode::UvInvalid)
    );
    assert_eq!(stored_uv_retries(&mut a), 7);
    assert_eq!(
        uv_token(&mut a, P2, PERM_GA, Some("x.org")),
        Err(StatusCode::UvInvalid)
    );
    assert_eq!(stored_uv_retries(&mut a), 6);
    assert_eq!(uv_retries(&mut a), 6);
    assert_eq!(
        a.presence_mut().uv_asked.len(),
        2,
        "one attempt a call: preferredPlatformUvAttempts > 1 means internalRetry false"
    );
    assert!(uv_token(&mut a, P2, PERM_GA, Some("x.org")).is_ok());
    assert_eq!(stored_uv_retries(&mut a), 8);
}

#[test]
fn the_last_retry_failing_is_uv_blocked_and_then_no_one_is_asked() {
    let (mut a, _) = uv_authenticator();
    a.update_state(|s| s.uv_retries = 1).unwrap();
    script(&mut a, &[Failed]);
    // 10.2. No retries left after the failure.
    assert_eq!(
        uv_token(&mut a, P2, PERM_GA, Some("x.org")),
        Err(StatusCode::UvBlocked)
    );
    assert_eq!(stored_uv_retries(&mut a), 0);
    // 7. Blocked before trying.
    assert_eq!(
        uv_token(&mut a, P2, PERM_GA, Some("x.org")),
        Err(StatusCode::UvBlocked)
    );
    assert_eq!(a.presence_mut().uv_asked.len(), 1);
    assert_eq!(uv_retries(&mut a), 0);
}

#[test]
fn a_refusal_a_timeout_a_cancel_or_a_broken_verifier_spend_no_retry() {
    for (outcome, status) in [
        (Denied, StatusCode::OperationDenied), // OPERATION_DENIED (8. consent not given)
        (TimedOut, StatusCode::UserActionTimeout), // USER_ACTION_TIMEOUT (10.1)
        (Cancelled, StatusCode::KeepaliveCancel), // KEEPALIVE_CANCEL
        (Unavailable, StatusCode::NotAllowed), // NOT_ALLOWED, as for a method not configured (5)
    ] {
        let (mut a, _) = uv_authenticator();
        script(&mut a, &[outcome]);
        assert_eq!(
            uv_token(&mut a, P2, PERM_GA, Some("x.org")),
            Err(status),
            "{outcome:?}"
        );
        assert_eq!(stored_uv_retries(&mut a), 8, "{outcome:?}");
    }
}

#[test]
fn a_uv_token_replaces_every_earlier_token() {
    let (mut a, _) = uv_authenticator();
    set_pin(&mut a, "1234");
    let reg = register(&mut a, "x.org", b"alice", -7, false);
    let pin = pin_token(&mut a, P2, "1234", PERM_GA, Some("x.org")).unwrap();
    let uv = uv_token(&mut a, P2, PERM_GA, Some("x.org")).unwrap();
    let ga = || ga_with("x.org", Some(&reg.credential_id), &[]);
    assert_eq!(
        get_assertion(&mut a, &ga_with_token(ga(), P2, &pin)),
        Err(StatusCode::PinAuthInvalid)
    );
    a.presence_mut().asked.clear();
    let r = get_assertion(&mut a, &ga_with_token(ga(), P2, &uv)).unwrap();
    assert_eq!(flags(&r.auth_data), FLAG_UP | FLAG_UV);
    assert!(
        a.presence_mut().asked.is_empty(),
        "the token carries presence"
    );
}

#[test]
fn a_uv_token_is_bound_to_its_permissions_and_rp() {
    let (mut a, _) = uv_authenticator();
    let token = uv_token(&mut a, P2, PERM_GA, Some("x.org")).unwrap();
    assert_eq!(
        make_credential(&mut a, &mc_with_token(mc_with(&[]), P2, &token)),
        Err(StatusCode::PinAuthInvalid),
        "no mc permission"
    );
    assert_eq!(
        get_assertion(
            &mut a,
            &ga_with_token(ga_with("y.org", None, &[]), P2, &token)
        ),
        Err(StatusCode::PinAuthInvalid),
        "another RP"
    );
}

#[test]
fn a_key_protected_by_uv_alone_is_configured_with_a_uv_acfg_token() {
    let (mut a, _) = uv_authenticator();
    let toggle = |token: Option<&[u8]>| {
        let mut p = vec![(1, int(2))];
        if let Some(token) = token {
            let message = [&[0xff; 32][..], &[0x0d, 0x02]].concat();
            p.push((3, int(2)));
            p.push((4, auth_param(P2, token, &message)));
        }
        p
    };
    assert_eq!(
        call(&mut a, CONFIG, toggle(None)),
        Err(StatusCode::PuatRequired),
        "protected by UV: a token is required"
    );
    let token = uv_token(&mut a, P2, PERM_ACFG, None).unwrap();
    assert_eq!(
        a.presence_mut().uv_asked,
        vec![asked(Operation::ManageKey, None, None)]
    );
    assert_eq!(call(&mut a, CONFIG, toggle(Some(&token))), Ok(Value::Null));
    assert!(a.state().unwrap().always_uv);
}

#[test]
fn the_right_pin_unblocks_built_in_uv() {
    let (mut a, _) = uv_authenticator();
    set_pin(&mut a, "1234");
    a.update_state(|s| s.uv_retries = 0).unwrap();
    assert_eq!(
        uv_token(&mut a, P2, PERM_GA, Some("x.org")),
        Err(StatusCode::UvBlocked)
    );
    // The platform falls back to the PIN.
    assert!(pin_token(&mut a, P2, "1234", PERM_GA, Some("x.org")).is_ok());
    assert_eq!(stored_uv_retries(&mut a), 8);
    assert!(uv_token(&mut a, P2, PERM_GA, Some("x.org")).is_ok());
}

#[test]
fn a_wrong_pin_does_not_touch_uv_retries_nor_a_wrong_secret_the_pin_retries() {
    let (mut a, _) = uv_authenticator();
    set_pin(&mut a, "1234");
    assert_eq!(
        pin_token(&mut a, P2, "9999", PERM_GA, Some("x.org")),
        Err(StatusCode::PinInvalid)
    );
    assert_eq!(uv_retries(&mut a), 8);
    script(&mut a, &[Failed]);
    assert_eq!(
        uv_token(&mut a, P2, PERM_GA, Some("x.org")),
        Err(StatusCode::UvInvalid)
    );
    assert_eq!(a.keystore_mut().pin_retries().unwrap(), Some(7));
}

#[test]
fn uv_retries_survive_a_restart() {
    let (mut a, clock) = uv_authenticator();
    script(&mut a, &[Failed, Failed]);
    uv_token(&mut a, P2, PERM_GA, Some("x.org")).unwrap_err();
    uv_token(&mut a, P2, PERM_GA, Some("x.org")).unwrap_err();
    let mut a = restart_with_uv(a, &clock);
    assert_eq!(uv_retries(&mut a), 6);

    script(&mut a, &[Failed; 6]);
    for _ in 0..5 {
        assert_eq!(
            uv_token(&mut a, P2, PERM_GA, Some("x.org")),
            Err(StatusCode::UvInvalid)
        );
    }
    assert_eq!(
        uv_token(&mut a, P2, PERM_GA, Some("x.org")),
        Err(StatusCode::UvBlocked)
    );
    let mut a = restart_with_uv(a, &clock);
    assert_eq!(uv_retries(&mut a), 0, "no power cycle unblocks UV");
    assert_eq!(
        uv_token(&mut a, P2, PERM_GA, Some("x.org")),
        Err(StatusCode::UvBlocked)
    );
    assert!(a.presence_mut().uv_asked.is_empty());
}

/// A verifier that never answers: the daemon dies while the person types.
struct DyingVerifier;

impl Presence for DyingVerifier {
    fn request_presence(&mut self, _: &PresenceRequest<'_>) -> PresenceOutcome {
        PresenceOutcome::Approved
    }
    fn built_in_uv(&self) -> bool {
        true
    }
    fn verify_user(&mut self, _: &PresenceRequest<'_>) -> UvOutcome {
        panic!("power lost mid-verification")
    }
}

#[test]
fn power_lost_mid_verification_has_already_spent_the_attempt() {
    let mut a = Authenticator::new(
        AuthenticatorConfig::default(),
        MemoryKeystore::new(7),
        DyingVerifier,
        ManualClock::default(),
        SeededRng::new(3),
    );
    let request = mc_with(&[("uv", true)]).encode();
    let crashed = panic::catch_unwind(AssertUnwindSafe(|| a.process_cbor(TEST_ORIGIN, &request)));
    assert!(crashed.is_err());
    let mut keystore = a.into_keystore();
    let bytes = keystore
        .read_state(StateSlot::Authenticator)
        .unwrap()
        .unwrap();
    assert_eq!(PersistentState::decode(&bytes).unwrap().uv_retries, 7);
}

#[test]
fn reset_restores_uv_retries() {
    let (mut a, _) = uv_authenticator();
    a.update_state(|s| s.uv_retries = 0).unwrap();
    assert_eq!(
        send_value(&mut a, &crate::wire::ResetRequest),
        Ok(Value::Null)
    );
    assert_eq!(uv_retries(&mut a), 8);
    assert!(uv_token(&mut a, P2, PERM_GA, Some("x.org")).is_ok());
}

// --- makeCredential / getAssertion with "uv": true ------------------------------------------

#[test]
fn make_credential_with_uv_verifies_once_for_the_site_and_account() {
    let (mut a, _) = uv_authenticator();
    let r = make_credential(&mut a, &mc_with(&[("rk", true), ("uv", true)])).unwrap();
    let reg = registration(&r);
    // 11.2.4.1 "uv", 13. "up" from the same interaction.
    assert_eq!(reg.auth_data[32], FLAG_UP | FLAG_UV | FLAG_AT);
    assert!(verify(
        &reg.cose_key,
        &[&reg.auth_data[..], &TEST_CLIENT_DATA_HASH].concat(),
        as_bytes(text_field(&r.att_stmt, "sig").unwrap())
    ));
    assert_eq!(
        a.presence_mut().uv_asked,
        vec![asked(
            Operation::Register,
            Some("x.org"),
            Some("alice@example.com")
        )]
    );
    assert!(a.presence_mut().asked.is_empty(), "no second prompt");
    assert_eq!(a.keystore().discoverable_count(), 1);
}

#[test]
fn get_assertion_with_uv_names_the_account_and_returns_the_whole_user() {
    let (mut a, _) = uv_authenticator();
    make_credential(&mut a, &mc_with(&[("rk", true), ("uv", true)])).unwrap();
    a.presence_mut().uv_asked.clear();
    let r = get_assertion(&mut a, &ga_with("x.org", None, &[("uv", true)])).unwrap();
    assert_eq!(flags(&r.auth_data), FLAG_UP | FLAG_UV);
    let user = r.user.expect("the user entity");
    assert_eq!(user.name.as_deref(), Some("alice@example.com"));
    assert_eq!(
        a.presence_mut().uv_asked,
        vec![asked(
            Operation::Authenticate,
            Some("x.org"),
            Some("alice@example.com")
        )]
    );
    assert!(a.presence_mut().asked.is_empty(), "no second prompt");
}

#[test]
fn a_silent_assertion_with_uv_is_verified_but_not_present() {
    let (mut a, _) = uv_authenticator();
    let reg = register(&mut a, "x.org", b"alice", -7, false);
    let p = ga_with(
        "x.org",
        Some(&reg.credential_id),
        &[("up", false), ("uv", true)],
    );
    assert_eq!(
        flags(&get_assertion(&mut a, &p).unwrap().auth_data),
        FLAG_UV
    );
}

#[test]
fn the_uv_option_retries_internally_up_to_three_times() {
    let (mut a, _) = uv_authenticator();
    script(&mut a, &[Failed, Failed, Verified]);
    let r = make_credential(&mut a, &mc_with(&[("uv", true)])).unwrap();
    assert_eq!(flags(&r.auth_data) & FLAG_UV, FLAG_UV);
    assert_eq!(a.presence_mut().uv_asked.len(), 3);
    assert_eq!(stored_uv_retries(&mut a), 8);

    // 11.2.3.4. Three wrong, no PIN to fall back to: OPERATION_DENIED.
    script(&mut a, &[Failed, Failed, Failed, Verified]);
    assert_eq!(
        make_credential(&mut a, &mc_with(&[("rk", true), ("uv", true)])),
        Err(StatusCode::OperationDenied)
    );
    assert_eq!(a.presence_mut().uv_asked.len(), 6, "stops after three");
    assert_eq!(stored_uv_retries(&mut a), 5);
    assert_eq!(a.keystore().discoverable_count(), 0);
}

#[test]
fn with_a_pin_a_failed_uv_option_is_puat_required_so_the_platform_uses_the_pin() {
    let (mut a, _) = uv_authenticator();
    set_pin(&mut a, "1234");
    let reg = register(&mut a, "x.org", b"alice", -7, false);
    // 11.2.3.2 / 6.2.3.2. clientPin is true (and mc/ga tokens come from it).
    script(&mut a, &[Failed, Failed, Failed]);
    assert_eq!(
        make_credential(&mut a, &mc_with(&[("uv", true)])),
        Err(StatusCode::PuatRequired)
    );
    assert_eq!(stored_uv_retries(&mut a), 5);
    script(&mut a, &[Unavailable]);
    let ga = ga_with("x.org", Some(&reg.credential_id), &[("uv", true)]);
    assert_eq!(get_assertion(&mut a, &ga), Err(StatusCode::PuatRequired));
    assert_eq!(
        stored_uv_retries(&mut a),
        5,
        "a broken verifier spends nothing"
    );
    a.update_state(|s| s.uv_retries = 0).unwrap();
    assert_eq!(
        get_assertion(&mut a, &ga),
        Err(StatusCode::PuatRequired),
        "blocked: the PIN too"
    );
}

#[test]
fn without_a_pin_running_out_of_uv_retries_is_pin_blocked() {
    let (mut a, _) = uv_authenticator();
    a.update_state(|s| s.uv_retries = 2).unwrap();
    script(&mut a, &[Failed, Failed, Verified]);
    // 11.2.3.3. The uvRetries counter is 0.
    assert_eq!(
        make_credential(&mut a, &mc_with(&[("uv", true)])),
        Err(StatusCode::PinBlocked)
    );
    assert_eq!(
        a.presence_mut().uv_asked.len(),
        2,
        "no attempt past the last"
    );
    assert_eq!(stored_uv_retries(&mut a), 0);
    assert_eq!(
        make_credential(&mut a, &mc_with(&[("uv", true)])),
        Err(StatusCode::PinBlocked)
    );
    assert_eq!(
        a.presence_mut().uv_asked.len(),
        2,
        "blocked: no one is asked"
    );
}

#[test]
fn a_refusal_timeout_or_cancel_in_a_ceremony_spends_nothing_and_creates_nothing() {
    for with_pin in [false, true] {
        for (outcome, status) in [
            (Denied, StatusCode::OperationDenied),
            (TimedOut, StatusCode::UserActionTimeout),
            (Cancelled, StatusCode::KeepaliveCancel),
        ] {
            let (mut a, _) = uv_authenticator();
            if with_pin {
                set_pin(&mut a, "1234");
            }
            let reg = register(&mut a, "x.org", b"bob", -7, false);
            script(&mut a, &[outcome]);
            assert_eq!(
                make_credential(&mut a, &mc_with(&[("rk", true), ("uv", true)])),
                Err(status),
                "{outcome:?}, PIN {with_pin}"
            );
            assert_eq!(a.keystore().discoverable_count(), 0);
            script(&mut a, &[outcome]);
            let ga = ga_with("x.org", Some(&reg.credential_id), &[("uv", true)]);
            assert_eq!(get_assertion(&mut a, &ga), Err(status), "{outcome:?}");
            assert_eq!(stored_uv_retries(&mut a), 8);
        }
    }
}

#[test]
fn a_pin_uv_auth_param_takes_precedence_over_the_uv_option() {
    let (mut a, _) = uv_authenticator();
    set_pin(&mut a, "1234");
    let token = pin_token(&mut a, P2, "1234", PERM_MC, Some("x.org")).unwrap();
    let p = mc_with_token(mc_with(&[("uv", true)]), P2, &token);
    let r = make_credential(&mut a, &p).unwrap();
    assert_eq!(flags(&r.auth_data) & (FLAG_UP | FLAG_UV), FLAG_UP | FLAG_UV);
    assert!(a.presence_mut().uv_asked.is_empty(), "no built-in UV");
    assert_eq!(
        a.presence_mut().asked.last().unwrap().0,
        Operation::Register,
        "a PIN is no gesture"
    );
}

#[test]
fn always_uv_with_built_in_uv_verifies_platforms_that_do_not_ask_for_it() {
    let (mut a, _) = uv_authenticator();
    let reg = register(&mut a, "x.org", b"alice", -7, false);
    a.update_state(|s| s.always_uv = true).unwrap();
    a.presence_mut().asked.clear();
    // 6.3. No pinUvAuthParam, built-in UV configured: "uv" counts as true.
    let r = make_credential(&mut a, &mc_with(&[])).unwrap();
    assert_eq!(flags(&r.auth_data), FLAG_UP | FLAG_UV | FLAG_AT);
    // 5. The same for an assertion with presence...
    let ga = |opts: &[(&str, bool)]| ga_with("x.org", Some(&reg.credential_id), opts);
    assert_eq!(
        flags(&get_assertion(&mut a, &ga(&[])).unwrap().auth_data),
        FLAG_UP | FLAG_UV
    );
    assert_eq!(a.presence_mut().uv_asked.len(), 2);
    // ...but not for a silent one.
    assert_eq!(
        flags(
            &get_assertion(&mut a, &ga(&[("up", false)]))
                .unwrap()
                .auth_data
        ),
        0
    );
    assert_eq!(a.presence_mut().uv_asked.len(), 2);
    assert!(a.presence_mut().asked.is_empty());
}

#[test]
fn make_cred_uv_not_rqd_with_built_in_uv() {
    let (mut a, _) = uv_authenticator();
    // 7. Protected (by built-in UV), "rk" without "uv": no PIN to ask for, OPERATION_DENIED.
    assert_eq!(
        make_credential(&mut a, &mc_with(&[("rk", true)])),
        Err(StatusCode::OperationDenied)
    );
    assert!(a.presence_mut().uv_asked.is_empty());
    assert!(a.presence_mut().asked.is_empty());
    // A non-discoverable credential needs no UV.
    let r = make_credential(&mut a, &mc_with(&[])).unwrap();
    assert_eq!(flags(&r.auth_data), FLAG_UP | FLAG_AT);
    assert_eq!(a.presence_mut().asked[0].0, Operation::Register);
    assert!(a.presence_mut().uv_asked.is_empty());
    // With a PIN set, the platform is told to get a token.
    set_pin(&mut a, "1234");
    assert_eq!(
        make_credential(&mut a, &mc_with(&[("rk", true)])),
        Err(StatusCode::PuatRequired)
    );
}

#[test]
fn an_excluded_credential_after_uv_is_excluded_without_a_second_prompt() {
    let (mut a, _) = uv_authenticator();
    let existing = register(&mut a, "x.org", b"alice", -7, false);
    a.presence_mut().asked.clear();
    let mut p = mc_with(&[("uv", true)]);
    p.exclude_list = vec![PublicKeyCredentialDescriptor::public_key(
        existing.credential_id.clone(),
    )];
    // 12. userPresentFlagValue is true: evidence of user interaction in step 11.
    assert_eq!(
        make_credential(&mut a, &p),
        Err(StatusCode::CredentialExcluded)
    );
    assert!(a.presence_mut().asked.is_empty());
    assert_eq!(a.presence_mut().uv_asked.len(), 1);
}

#[test]
fn credentials_whose_uv_secrets_are_bound_to_a_pin_not_yet_verified_send_the_platform_to_the_pin() {
    let (mut a, _) = uv_authenticator();
    let mut p = mc_with(&[("rk", true), ("uv", true)]);
    p.extensions.cred_protect = Some(3);
    make_credential(&mut a, &p).unwrap();
    a.keystore_mut().uv_secrets_locked = true;

    let locked = get_assertion(&mut a, &ga_with("x.org", None, &[("uv", true)]));
    a.keystore_mut().uv_secrets_locked = false;
    let opened = get_assertion(&mut a, &ga_with("x.org", None, &[("uv", true)]));

    assert_eq!(
        locked,
        Err(StatusCode::PuatRequired),
        "CTAP2_ERR_PUAT_REQUIRED"
    );
    assert_eq!(flags(&opened.unwrap().auth_data), FLAG_UP | FLAG_UV);
}

#[test]
fn cred_protect_3_credentials_need_the_built_in_uv_and_their_absence_asks_the_same() {
    let (mut a, _) = uv_authenticator();
    let mut p = mc_with(&[("rk", true), ("uv", true)]);
    p.extensions.cred_protect = Some(3);
    make_credential(&mut a, &p).unwrap();
    assert_eq!(
        get_assertion(&mut a, &ga_with("x.org", None, &[])),
        Err(StatusCode::NoCredentials)
    );
    let r = get_assertion(&mut a, &ga_with("x.org", None, &[("uv", true)])).unwrap();
    assert_eq!(flags(&r.auth_data), FLAG_UP | FLAG_UV);
    // An RP without credentials: the person is asked all the same, then NO_CREDENTIALS.
    a.presence_mut().uv_asked.clear();
    assert_eq!(
        get_assertion(&mut a, &ga_with("y.org", None, &[("uv", true)])),
        Err(StatusCode::NoCredentials)
    );
    assert_eq!(
        a.presence_mut().uv_asked,
        vec![asked(Operation::Authenticate, Some("y.org"), None)]
    );
}
