use crate::ctap2::test_support::*;
use crate::env::{Keystore as _, Operation, PresenceOutcome};
use crate::status::StatusCode;

#[test]
fn reset_within_ten_seconds_with_presence_erases_everything() {
    let (mut a, clock) = authenticator();
    let reg = register(&mut a, "x.org", b"alice", -7, true);
    clock.advance(9_000);
    assert_eq!(
        send_value(&mut a, &crate::wire::ResetRequest),
        Ok(ciborium::Value::Null)
    );
    assert_eq!(a.presence_mut().asked.last().unwrap().0, Operation::Reset);
    assert_eq!(a.keystore().discoverable_count(), 0);
    assert!(a
        .keystore_mut()
        .find_credential(&rp_id_hash("x.org"), &reg.credential_id)
        .unwrap()
        .is_none());
}

#[test]
fn reset_after_ten_seconds_is_not_allowed_and_asks_nothing() {
    let (mut a, clock) = authenticator();
    register(&mut a, "x.org", b"alice", -7, true);
    a.presence_mut().asked.clear();
    clock.advance(10_001);
    assert_eq!(
        send_value(&mut a, &crate::wire::ResetRequest),
        Err(StatusCode::NotAllowed)
    );
    assert!(a.presence_mut().asked.is_empty());
    assert_eq!(a.keystore().discoverable_count(), 1);
}

/// A restart of the daemon within one boot is not a power-up: the window stays closed
/// until the key is replugged (`power_cycle`), which opens it for 10 s.
#[test]
fn without_a_power_up_reset_waits_for_a_replug() {
    let (a, clock) = authenticator();
    let keystore = a.into_keystore();
    let config = crate::AuthenticatorConfig {
        start_is_power_up: false,
        ..crate::AuthenticatorConfig::default()
    };
    let mut a = crate::Authenticator::new(
        config,
        keystore,
        crate::testing::ScriptedPresence::always(PresenceOutcome::Approved),
        clock.clone(),
        crate::testing::SeededRng::new(5),
    );
    register(&mut a, "x.org", b"alice", -7, true);
    assert_eq!(
        send_value(&mut a, &crate::wire::ResetRequest),
        Err(StatusCode::NotAllowed),
        "at once after the start"
    );
    clock.advance(60_000);
    a.power_cycle();
    clock.advance(9_000);
    assert_eq!(
        send_value(&mut a, &crate::wire::ResetRequest),
        Ok(ciborium::Value::Null)
    );
    assert_eq!(a.keystore().discoverable_count(), 0);
}

#[test]
fn reset_without_consent_keeps_everything() {
    for (outcome, status) in [
        (PresenceOutcome::Denied, StatusCode::OperationDenied),
        (PresenceOutcome::TimedOut, StatusCode::UserActionTimeout),
        (PresenceOutcome::Cancelled, StatusCode::KeepaliveCancel),
    ] {
        let (mut a, _) = authenticator();
        register(&mut a, "x.org", b"alice", -7, true);
        a.presence_mut().default = outcome;
        assert_eq!(send_value(&mut a, &crate::wire::ResetRequest), Err(status));
        assert_eq!(a.keystore().discoverable_count(), 1);
    }
}
