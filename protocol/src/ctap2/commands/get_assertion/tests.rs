use super::*;
use crate::ctap2::test_support::*;
use crate::env::PresenceOutcome;
use crate::wire::{Command, GetNextAssertionRequest, Options, Response as _};

const GA: u8 = Command::GetAssertion as u8;

fn next(a: &mut TestAuthenticator) -> Result<GetAssertionResponse, StatusCode> {
    send(a, &GetNextAssertionRequest)
}

fn signature_verifies(reg: &Registration, response: &GetAssertionResponse) -> bool {
    let signed = [&response.auth_data[..], &TEST_CLIENT_DATA_HASH].concat();
    verify(&reg.cose_key, &signed, &response.signature)
}

fn counter(response: &GetAssertionResponse) -> u32 {
    let d = &response.auth_data;
    u32::from_be_bytes([d[33], d[34], d[35], d[36]])
}

fn user_id(id: &[u8]) -> Option<PublicKeyCredentialUserEntity> {
    Some(PublicKeyCredentialUserEntity {
        id: id.to_vec(),
        name: None,
        display_name: None,
    })
}

#[test]
fn allow_list_assertion_verifies_and_the_counter_increases() {
    for alg in [-7, -8] {
        let (mut a, _) = authenticator();
        let reg = register(&mut a, "x.org", b"alice", alg, false);
        let first =
            get_assertion(&mut a, &ga_request("x.org", &[b"nope", &reg.credential_id])).unwrap();
        let second = get_assertion(&mut a, &ga_request("x.org", &[&reg.credential_id])).unwrap();

        assert!(signature_verifies(&reg, &first));
        assert!(signature_verifies(&reg, &second));
        let auth_data = &first.auth_data;
        assert_eq!(auth_data.len(), 37);
        assert_eq!(&auth_data[..32], &rp_id_hash("x.org"));
        assert_eq!(auth_data[32], FLAG_UP);
        assert!(counter(&second) > counter(&first));
        assert_eq!(
            first.credential,
            PublicKeyCredentialDescriptor::public_key(reg.credential_id.clone())
        );
        assert!(
            first.user.is_none(),
            "no user for a non-discoverable credential"
        );
        assert!(
            first.number_of_credentials.is_none(),
            "no count with an allowList"
        );
    }
}

#[test]
fn a_credential_of_another_rp_is_not_found() {
    let (mut a, _) = authenticator();
    let reg = register(&mut a, "other.org", b"alice", -7, true);
    assert_eq!(
        get_assertion(&mut a, &ga_request("x.org", &[&reg.credential_id])),
        Err(StatusCode::NoCredentials)
    );
    assert_eq!(
        get_assertion(&mut a, &ga_request("x.org", &[])),
        Err(StatusCode::NoCredentials)
    );
    assert!(
        !a.presence_mut()
            .asked
            .iter()
            .any(|(op, ..)| *op == Operation::Authenticate),
        "no gesture is asked when nothing can sign"
    );
}

#[test]
fn discovery_returns_newest_first_with_count_and_only_the_user_id() {
    let (mut a, _) = authenticator();
    let older = register(&mut a, "x.org", b"alice", -7, true);
    let newer = register(&mut a, "x.org", b"bob", -8, true);
    register(&mut a, "other.org", b"carol", -7, true);

    let first = get_assertion(&mut a, &ga_request("x.org", &[])).unwrap();
    assert_eq!(first.number_of_credentials, Some(2));
    assert_eq!(
        first.credential,
        PublicKeyCredentialDescriptor::public_key(newer.credential_id.clone())
    );
    assert!(signature_verifies(&newer, &first));
    assert_eq!(
        first.user,
        user_id(b"bob"),
        "no name without user verification"
    );

    let second = next(&mut a).unwrap();
    assert_eq!(
        second.credential,
        PublicKeyCredentialDescriptor::public_key(older.credential_id.clone())
    );
    assert!(signature_verifies(&older, &second));
    assert_eq!(second.user, user_id(b"alice"));
    assert!(second.number_of_credentials.is_none());
    assert_eq!(second.auth_data[32], FLAG_UP, "same flags as the first");

    assert_eq!(next(&mut a), Err(StatusCode::NotAllowed), "nothing left");
    let asked = a
        .presence_mut()
        .asked
        .iter()
        .filter(|(op, ..)| *op == Operation::Authenticate);
    assert_eq!(asked.count(), 1, "one gesture for the whole batch");
}

/// An empty allowList, sent as such (the wire type leaves it out), is a discovery.
#[test]
fn an_empty_allow_list_means_discovery() {
    let (mut a, _) = authenticator();
    let reg = register(&mut a, "x.org", b"alice", -7, true);
    let mut p = params_of(&ga_request("x.org", &[]));
    p.push((3, Value::Array(vec![])));
    let r = call(&mut a, GA, p).unwrap();
    let r = GetAssertionResponse::decode(&cbor::encode(&r)).unwrap();
    assert!(signature_verifies(&reg, &r));
    assert!(
        r.number_of_credentials.is_none(),
        "a single credential needs no count"
    );
    assert_eq!(next(&mut a), Err(StatusCode::NotAllowed));
    assert_eq!(
        a.presence_mut().asked.last().unwrap().2.as_deref(),
        Some("alice@example.com")
    );
}

/// §6.2.2 step 7: a present, non-empty allowList is never a discovery, even when none of
/// its descriptors has a type we know.
#[test]
fn an_allow_list_of_unknown_types_finds_nothing_and_is_no_discovery() {
    let (mut a, _) = authenticator();
    register(&mut a, "x.org", b"alice", -7, true);
    a.presence_mut().asked.clear();
    let mut request = ga_request("x.org", &[]);
    request.allow_list = vec![PublicKeyCredentialDescriptor {
        kind: "future-key".into(),
        id: b"x".to_vec(),
    }];
    assert_eq!(
        get_assertion(&mut a, &request),
        Err(StatusCode::NoCredentials)
    );
    assert!(a.presence_mut().asked.is_empty());
}

/// A silent discovery (OpenSSH's check for an existing resident key) is served: user
/// handles, no names, no UP, no gesture asked.
#[test]
fn a_silent_discovery_gives_user_handles_without_a_gesture() {
    let (mut a, _) = authenticator();
    register(&mut a, "x.org", b"alice", -7, true);
    a.presence_mut().asked.clear();
    let mut request = ga_request("x.org", &[]);
    request.options.up = Some(false);
    let r = get_assertion(&mut a, &request).unwrap();
    assert_eq!(r.auth_data[32], 0, "no UP flag");
    assert_eq!(r.user, user_id(b"alice"));
    assert!(a.presence_mut().asked.is_empty());
}

#[test]
fn get_next_assertion_expires_after_30_seconds() {
    let (mut a, clock) = authenticator();
    register(&mut a, "x.org", b"alice", -7, true);
    register(&mut a, "x.org", b"bob", -7, true);
    get_assertion(&mut a, &ga_request("x.org", &[])).unwrap();
    clock.advance(crate::ctap2::state::CONTINUATION_WINDOW_MS + 1);
    assert_eq!(next(&mut a), Err(StatusCode::NotAllowed));
}

#[test]
fn get_next_assertion_only_follows_get_assertion_directly() {
    let (mut a, _) = authenticator();
    assert_eq!(
        next(&mut a),
        Err(StatusCode::NotAllowed),
        "no getAssertion before"
    );
    register(&mut a, "x.org", b"alice", -7, true);
    register(&mut a, "x.org", b"bob", -7, true);
    get_assertion(&mut a, &ga_request("x.org", &[])).unwrap();
    send::<_, crate::wire::GetInfoResponse>(&mut a, &crate::wire::GetInfoRequest).unwrap();
    assert_eq!(
        next(&mut a),
        Err(StatusCode::NotAllowed),
        "getInfo came in between"
    );
}

#[test]
fn up_false_is_a_silent_assertion_without_the_up_flag() {
    let (mut a, _) = authenticator();
    let reg = register(&mut a, "x.org", b"alice", -7, false);
    a.presence_mut().asked.clear();
    let mut request = ga_request("x.org", &[&reg.credential_id]);
    request.options.up = Some(false);
    let r = get_assertion(&mut a, &request).unwrap();
    assert_eq!(r.auth_data[32], 0);
    assert!(signature_verifies(&reg, &r));
    assert!(a.presence_mut().asked.is_empty());
}

#[test]
fn rk_option_is_unsupported_and_uv_is_invalid() {
    let (mut a, _) = authenticator();
    let reg = register(&mut a, "x.org", b"alice", -7, false);
    for (options, status) in [
        (
            Options {
                rk: Some(false),
                ..Options::default()
            },
            StatusCode::UnsupportedOption,
        ),
        (
            Options {
                rk: Some(true),
                ..Options::default()
            },
            StatusCode::UnsupportedOption,
        ),
        (
            Options {
                uv: Some(true),
                ..Options::default()
            },
            StatusCode::InvalidOption,
        ),
    ] {
        let mut request = ga_request("x.org", &[&reg.credential_id]);
        request.options = options;
        assert_eq!(get_assertion(&mut a, &request), Err(status), "{options:?}");
    }
}

#[test]
fn refused_presence_gives_no_signature() {
    for (outcome, status) in [
        (PresenceOutcome::Denied, StatusCode::OperationDenied),
        (PresenceOutcome::TimedOut, StatusCode::UserActionTimeout),
        (PresenceOutcome::Cancelled, StatusCode::KeepaliveCancel),
    ] {
        let (mut a, _) = authenticator();
        let reg = register(&mut a, "x.org", b"alice", -7, false);
        a.presence_mut().default = outcome;
        assert_eq!(
            get_assertion(&mut a, &ga_request("x.org", &[&reg.credential_id])),
            Err(status)
        );
    }
}

#[test]
fn malformed_requests_get_precise_statuses() {
    let (mut a, _) = authenticator();
    assert_eq!(
        call(&mut a, GA, vec![(2, bytes(&TEST_CLIENT_DATA_HASH))]),
        Err(StatusCode::MissingParameter)
    );
    assert_eq!(
        call(&mut a, GA, vec![(1, text("x.org"))]),
        Err(StatusCode::MissingParameter)
    );
    assert_eq!(
        call(&mut a, GA, vec![(1, bytes(b"x")), (2, bytes(&[0; 32]))]),
        Err(StatusCode::CborUnexpectedType)
    );
    let mut p = params_of(&ga_request("x.org", &[]));
    p.push((3, descriptor(b"not in an array")));
    assert_eq!(call(&mut a, GA, p), Err(StatusCode::CborUnexpectedType));
    assert_eq!(call_raw(&mut a, &[GA, 0xa1]), Err(StatusCode::InvalidCbor));
}

#[test]
fn empty_pin_uv_auth_param_probe_is_pin_not_set() {
    let (mut a, _) = authenticator();
    let mut request = ga_request("x.org", &[]);
    request.pin_uv_auth_param = Some(Vec::new());
    request.pin_uv_auth_protocol = Some(2);
    assert_eq!(get_assertion(&mut a, &request), Err(StatusCode::PinNotSet));
}
