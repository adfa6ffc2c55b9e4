//! The persistentPinUvAuthToken and its permission pcmr (persistentCredentialManagementReadOnly,
//! 0x40; CTAP 2.2 §6.5.5.7 and §6.8): granted alone, the same token across restarts, good for
//! reading credential management and for nothing else, ended by a PIN change, forcePINChange
//! or a reset.

use crate::status::StatusCode;

use ciborium::Value;

use crate::cbor;
use crate::ctap2::pin::client_pin::tests::change_pin_params;
use crate::ctap2::test_support::*;
use crate::env::Keystore as _;
use crate::testing::ManualClock;
use crate::wire::Command;

const CLIENT_PIN: u8 = Command::ClientPin as u8;
const CM: u8 = Command::CredentialManagement as u8;
const P2: PinProtocol = PinProtocol::Two;
/// CTAP2_ERR_PIN_AUTH_INVALID.
const PIN_AUTH_INVALID: StatusCode = StatusCode::PinAuthInvalid;

/// A key with PIN "1234" and one discoverable credential at a.org.
fn key_with_a_credential() -> (TestAuthenticator, ManualClock) {
    let (mut a, clock) = authenticator();
    set_pin(&mut a, "1234");
    let token = pin_token(&mut a, P2, "1234", PERM_MC, Some("a.org")).unwrap();
    let mut request = mc_request("a.org", b"alice", &[-7]);
    request.options.rk = Some(true);
    request.pin_uv_auth_param = Some(P2.authenticate(&token, &TEST_CLIENT_DATA_HASH));
    request.pin_uv_auth_protocol = Some(2);
    make_credential(&mut a, &request).expect("makeCredential");
    (a, clock)
}

fn cm(
    a: &mut TestAuthenticator,
    token: &[u8],
    sub: u8,
    params: Option<Value>,
) -> Result<Value, StatusCode> {
    call(a, CM, cm_params(token, sub, params))
}

#[test]
fn pcmr_is_granted_only_alone_and_its_rp_id_is_ignored() {
    let (mut a, _) = key_with_a_credential();
    for with in [PERM_CM, PERM_MC, PERM_GA, PERM_LBW, PERM_ACFG] {
        assert_eq!(
            pin_token(&mut a, P2, "1234", PERM_PCMR | with, Some("a.org")),
            Err(StatusCode::UnauthorizedPermission),
            "pcmr with {with:#x}: CTAP2_ERR_UNAUTHORIZED_PERMISSION"
        );
    }
    let plain = pin_token(&mut a, P2, "1234", PERM_PCMR, None).unwrap();
    let with_rp = pin_token(&mut a, P2, "1234", PERM_PCMR, Some("b.org")).unwrap();
    assert_eq!(plain.len(), 32);
    assert_eq!(
        plain, with_rp,
        "the same persistent token, whatever RP ID is sent"
    );
    let one = pin_token(&mut a, PinProtocol::One, "1234", PERM_PCMR, None).unwrap();
    assert_eq!(one, plain, "one token for both protocols");
}

#[test]
fn pcmr_needs_the_pin_like_any_token() {
    let (mut a, _) = authenticator();
    assert_eq!(
        pin_token(&mut a, P2, "1234", PERM_PCMR, None),
        Err(StatusCode::PinNotSet),
        "CTAP2_ERR_PIN_NOT_SET"
    );
    set_pin(&mut a, "1234");
    assert_eq!(
        pin_token(&mut a, P2, "4321", PERM_PCMR, None),
        Err(StatusCode::PinInvalid),
        "CTAP2_ERR_PIN_INVALID"
    );
}

#[test]
fn the_persistent_token_reads_credential_management() {
    let (mut a, _) = key_with_a_credential();
    let token = pin_token(&mut a, P2, "1234", PERM_PCMR, None).unwrap();
    let metadata = cm(&mut a, &token, 0x01, None).unwrap();
    assert_eq!(
        field(&metadata, 1),
        Some(&int(1)),
        "existingResidentCredentialsCount"
    );
    let rps = cm(&mut a, &token, 0x02, None).unwrap();
    assert_eq!(
        text_field(field(&rps, 3).unwrap(), "id"),
        Some(&text("a.org"))
    );
    let credentials = cm(&mut a, &token, 0x04, Some(rp_hash_params("a.org"))).unwrap();
    assert_eq!(
        text_field(field(&credentials, 6).unwrap(), "id"),
        Some(&bytes(b"alice"))
    );
    // Protocol one's MAC (16 bytes) with the same token is as good.
    let mut p = cm_params(&token, 0x01, None);
    p[1] = (3, int(1));
    p[2] = (4, auth_param(PinProtocol::One, &token, &[0x01]));
    assert!(call(&mut a, CM, p).is_ok());
}

#[test]
fn the_persistent_token_never_deletes_updates_or_serves_anything_else() {
    let (mut a, _) = key_with_a_credential();
    let token = pin_token(&mut a, P2, "1234", PERM_PCMR, None).unwrap();
    let r = cm(&mut a, &token, 0x04, Some(rp_hash_params("a.org"))).unwrap();
    let descriptor = field(&r, 7).unwrap().clone();
    assert_eq!(
        cm(
            &mut a,
            &token,
            0x06,
            Some(cbor::int_map(vec![(2, descriptor.clone())]))
        ),
        Err(PIN_AUTH_INVALID),
        "deleteCredential"
    );
    let update = cbor::int_map(vec![(2, descriptor), (3, user(b"alice", "mallory"))]);
    assert_eq!(
        cm(&mut a, &token, 0x07, Some(update)),
        Err(PIN_AUTH_INVALID),
        "updateUserInformation"
    );
    assert_eq!(a.keystore().discoverable_count(), 1, "nothing deleted");
    // makeCredential, getAssertion and authenticatorConfig do not take it either.
    let mut request = mc_request("a.org", b"bob", &[-7]);
    request.pin_uv_auth_param = Some(P2.authenticate(&token, &TEST_CLIENT_DATA_HASH));
    request.pin_uv_auth_protocol = Some(2);
    assert_eq!(
        make_credential(&mut a, &request),
        Err(PIN_AUTH_INVALID),
        "makeCredential"
    );
    let mut request = ga_request("a.org", &[]);
    request.pin_uv_auth_param = Some(P2.authenticate(&token, &TEST_CLIENT_DATA_HASH));
    request.pin_uv_auth_protocol = Some(2);
    assert_eq!(
        get_assertion(&mut a, &request),
        Err(PIN_AUTH_INVALID),
        "getAssertion"
    );
    assert_eq!(
        authenticator_config(&mut a, Some(&token), 0x02, None),
        Err(PIN_AUTH_INVALID),
        "toggleAlwaysUv"
    );
}

#[test]
fn the_persistent_token_survives_a_restart_and_leaves_the_ephemeral_token_alone() {
    let (mut a, clock) = key_with_a_credential();
    let cm_token = pin_token(&mut a, P2, "1234", PERM_CM, None).unwrap();
    let persistent = pin_token(&mut a, P2, "1234", PERM_PCMR, None).unwrap();
    assert!(
        cm(&mut a, &cm_token, 0x01, None).is_ok(),
        "the cm token in use still works"
    );
    clock.advance(3_600_000);
    let mut a = restart(a, &clock);
    assert!(
        cm(&mut a, &persistent, 0x01, None).is_ok(),
        "after a restart and an hour"
    );
    assert_eq!(
        cm(&mut a, &cm_token, 0x01, None),
        Err(PIN_AUTH_INVALID),
        "the ephemeral token did not survive"
    );
    assert_eq!(
        pin_token(&mut a, P2, "1234", PERM_PCMR, None),
        Ok(persistent)
    );
}

#[test]
fn a_pin_change_ends_the_persistent_token() {
    let (mut a, _) = key_with_a_credential();
    let old = pin_token(&mut a, P2, "1234", PERM_PCMR, None).unwrap();
    let p = change_pin_params(&mut a, P2, "1234", b"56789");
    assert_eq!(call(&mut a, CLIENT_PIN, p), Ok(Value::Null));
    assert_eq!(cm(&mut a, &old, 0x01, None), Err(PIN_AUTH_INVALID));
    let new = pin_token(&mut a, P2, "56789", PERM_PCMR, None).unwrap();
    assert_ne!(new, old);
    assert!(cm(&mut a, &new, 0x01, None).is_ok());
}

#[test]
fn force_pin_change_ends_it_and_refuses_a_new_one_until_the_change() {
    let (mut a, _) = key_with_a_credential();
    let old = pin_token(&mut a, P2, "1234", PERM_PCMR, None).unwrap();
    let acfg = pin_token(&mut a, P2, "1234", PERM_ACFG, None).unwrap();
    let force = force_change_pin();
    assert_eq!(
        authenticator_config(&mut a, Some(&acfg), 0x03, Some(force)),
        Ok(Value::Null)
    );
    assert_eq!(cm(&mut a, &old, 0x01, None), Err(PIN_AUTH_INVALID));
    assert_eq!(
        pin_token(&mut a, P2, "1234", PERM_PCMR, None),
        Err(StatusCode::PinPolicyViolation),
        "CTAP2_ERR_PIN_POLICY_VIOLATION under forcePINChange (§6.5.5.7.2 step 11)"
    );
}

#[test]
fn a_reset_ends_the_persistent_token() {
    let (mut a, clock) = key_with_a_credential();
    let old = pin_token(&mut a, P2, "1234", PERM_PCMR, None).unwrap();
    let mut a = restart(a, &clock);
    assert_eq!(
        send_value(&mut a, &crate::wire::ResetRequest),
        Ok(Value::Null)
    );
    set_pin(&mut a, "1234");
    assert_eq!(cm(&mut a, &old, 0x01, None), Err(PIN_AUTH_INVALID));
    assert_ne!(pin_token(&mut a, P2, "1234", PERM_PCMR, None).unwrap(), old);
}

#[test]
fn built_in_uv_grants_pcmr_too() {
    let (mut a, _) = uv_authenticator();
    let token = uv_token(&mut a, P2, PERM_PCMR, None).unwrap();
    assert!(cm(&mut a, &token, 0x01, None).is_ok());
    assert_eq!(
        uv_token(&mut a, P2, PERM_PCMR | PERM_CM, None),
        Err(StatusCode::UnauthorizedPermission)
    );
}
