use crate::ctap2::test_support::*;
use crate::env::{Operation, PresenceOutcome};
use crate::status::StatusCode;

#[test]
fn selection_answers_with_the_gesture() {
    for (outcome, expected) in [
        (PresenceOutcome::Approved, Ok(ciborium::Value::Null)),
        (PresenceOutcome::Denied, Err(StatusCode::OperationDenied)),
        (
            PresenceOutcome::TimedOut,
            Err(StatusCode::UserActionTimeout),
        ),
        (PresenceOutcome::Cancelled, Err(StatusCode::KeepaliveCancel)),
    ] {
        let (mut a, _) = authenticator();
        a.presence_mut().default = outcome;
        assert_eq!(send_value(&mut a, &crate::wire::SelectionRequest), expected);
        assert_eq!(a.presence_mut().asked[0].0, Operation::Selection);
    }
}
