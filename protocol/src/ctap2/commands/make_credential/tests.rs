use super::*;
use crate::ctap2::authenticator_data::FLAG_AT;
use crate::ctap2::test_support::*;
use crate::env::PresenceOutcome;
use crate::wire::{Command, PublicKeyCredentialDescriptor};

const MC: u8 = Command::MakeCredential as u8;

#[test]
fn es256_packed_self_attestation_verifies_like_an_rp_checks_it() {
    let (mut a, _) = authenticator();
    let response = make_credential(&mut a, &mc_request("example.com", b"user", &[-7])).unwrap();

    assert_eq!(response.fmt, "packed");
    let reg = registration(&response);
    assert_eq!(&reg.auth_data[..32], &rp_id_hash("example.com"));
    assert_eq!(
        reg.auth_data[32],
        FLAG_UP | FLAG_AT,
        "UP and AT set, UV clear"
    );
    assert_eq!(&reg.auth_data[37..53], &a.config().aaguid);
    assert_eq!(field(&reg.cose_key, 3), Some(&int(-7)));
    let att_stmt = &response.att_stmt;
    assert_eq!(text_field(att_stmt, "alg"), Some(&int(-7)));
    assert!(
        text_field(att_stmt, "x5c").is_none(),
        "self attestation has no certificate"
    );
    let signed = [&reg.auth_data[..], &TEST_CLIENT_DATA_HASH].concat();
    assert!(verify(
        &reg.cose_key,
        &signed,
        as_bytes(text_field(att_stmt, "sig").unwrap())
    ));
    assert_eq!(a.presence_mut().asked[0].0, Operation::Register);
    assert_eq!(a.presence_mut().asked[0].1.as_deref(), Some("example.com"));
}

#[test]
fn the_first_supported_algorithm_in_the_rp_list_is_used() {
    let (mut a, _) = authenticator();
    let r = make_credential(&mut a, &mc_request("x.org", b"u", &[-257, -8, -7])).unwrap();
    let reg = registration(&r);
    assert_eq!(field(&reg.cose_key, 3), Some(&int(-8)));
    let sig = as_bytes(text_field(&r.att_stmt, "sig").unwrap());
    assert!(verify(
        &reg.cose_key,
        &[&reg.auth_data[..], &TEST_CLIENT_DATA_HASH].concat(),
        sig
    ));

    let r = make_credential(&mut a, &mc_request("x.org", b"u", &[-257, -7, -8])).unwrap();
    assert_eq!(field(&registration(&r).cose_key, 3), Some(&int(-7)));
}

#[test]
fn only_unsupported_algorithms_is_unsupported_algorithm() {
    let (mut a, _) = authenticator();
    assert_eq!(
        make_credential(&mut a, &mc_request("x.org", b"u", &[-257, -35])),
        Err(StatusCode::UnsupportedAlgorithm)
    );
    assert!(
        a.presence_mut().asked.is_empty(),
        "no gesture asked for a request that fails"
    );
}

#[test]
fn each_missing_required_parameter_is_missing_parameter() {
    for key in 1..=4 {
        let (mut a, _) = authenticator();
        let mut p = make_credential_params("x.org", b"u", &[-7]);
        p.retain(|(k, _)| *k != key);
        assert_eq!(
            call(&mut a, MC, p),
            Err(StatusCode::MissingParameter),
            "without key {key}"
        );
    }
    let (mut a, _) = authenticator();
    let mut p = make_credential_params("x.org", b"u", &[-7]);
    p[1].1 = cbor::text_map(vec![("name", text("no id"))]);
    assert_eq!(
        call(&mut a, MC, p),
        Err(StatusCode::MissingParameter),
        "rp without id"
    );
}

#[test]
fn wrong_cbor_types_are_cbor_unexpected_type() {
    let cases: Vec<(i64, Value)> = vec![
        (1, text("not bytes")),
        (2, text("example.com")),
        (3, bytes(b"user")),
        (4, int(-7)),
        (5, int(1)),
        (6, Value::Array(vec![])),
        (7, Value::Array(vec![])),
        (8, text("pin")),
        (9, text("1")),
    ];
    for (key, value) in cases {
        let (mut a, _) = authenticator();
        let mut p = make_credential_params("x.org", b"u", &[-7]);
        p.retain(|(k, _)| *k != key);
        p.push((key, value));
        assert_eq!(
            call(&mut a, MC, p),
            Err(StatusCode::CborUnexpectedType),
            "key {key}"
        );
    }
}

#[test]
fn invalid_cbor_is_invalid_cbor() {
    let (mut a, _) = authenticator();
    assert_eq!(
        call_raw(&mut a, &[MC, 0xa1, 0x01]),
        Err(StatusCode::InvalidCbor)
    );
    assert_eq!(call_raw(&mut a, &[MC, 0xff]), Err(StatusCode::InvalidCbor));
    assert_eq!(
        call_raw(&mut a, &[MC, 0x80]),
        Err(StatusCode::CborUnexpectedType),
        "an array is not a parameter map"
    );
}

#[test]
fn up_false_and_uv_true_without_built_in_uv_are_invalid_options_unknown_ones_are_ignored() {
    let (mut a, _) = authenticator();
    let mut r = mc_request("x.org", b"u", &[-7]);
    r.options.up = Some(false);
    assert_eq!(make_credential(&mut a, &r), Err(StatusCode::InvalidOption));

    let mut r = mc_request("x.org", b"u", &[-7]);
    r.options.uv = Some(true);
    assert_eq!(make_credential(&mut a, &r), Err(StatusCode::InvalidOption));

    // An option CTAP does not define: built by hand, the wire type has no room for it.

    let mut p = make_credential_params("x.org", b"u", &[-7]);
    p.push((
        7,
        options(&[("uv", false), ("up", true), ("someday", true)]),
    ));
    assert!(call(&mut a, MC, p).is_ok());
}

#[test]
fn unknown_extensions_are_ignored() {
    let (mut a, _) = authenticator();
    let mut p = make_credential_params("x.org", b"u", &[-7]);
    p.push((6, cbor::text_map(vec![("future-ext", Value::Bool(true))])));
    let reg = parse_registration(&call(&mut a, MC, p).unwrap());
    assert_eq!(
        reg.auth_data[32] & authenticator_data::FLAG_ED,
        0,
        "no extension output"
    );
    assert!(reg.extensions.is_none());
}

#[test]
fn enterprise_attestation_is_invalid_parameter() {
    let (mut a, _) = authenticator();
    let mut r = mc_request("x.org", b"u", &[-7]);
    r.enterprise_attestation = Some(1);
    assert_eq!(
        make_credential(&mut a, &r),
        Err(StatusCode::InvalidParameter)
    );
}

#[test]
fn attestation_formats_preference_picks_the_first_supported() {
    let (mut a, _) = authenticator();
    let mut with = |list: &[&str]| {
        let mut r = mc_request("x.org", b"u", &[-7]);
        r.attestation_formats_preference = Some(list.iter().map(|f| f.to_string()).collect());
        make_credential(&mut a, &r).unwrap()
    };
    let r = with(&["none", "packed"]);
    assert_eq!(r.fmt, "none");
    assert_eq!(r.att_stmt, Value::Map(vec![]));
    assert_eq!(with(&["tpm", "packed", "none"]).fmt, "packed");
    assert_eq!(with(&["android-key"]).fmt, "packed", "default");
}

#[test]
fn presence_refused_times_out_or_cancelled_creates_nothing() {
    for (outcome, status) in [
        (PresenceOutcome::Denied, StatusCode::OperationDenied),
        (PresenceOutcome::TimedOut, StatusCode::UserActionTimeout),
        (PresenceOutcome::Cancelled, StatusCode::KeepaliveCancel),
    ] {
        let (mut a, _) = authenticator();
        a.presence_mut().default = outcome;
        let mut r = mc_request("x.org", b"u", &[-7]);
        r.options.rk = Some(true);
        assert_eq!(make_credential(&mut a, &r), Err(status));
        assert_eq!(a.keystore().discoverable_count(), 0);
    }
}

#[test]
fn rk_stores_a_discoverable_credential_replacing_the_same_user() {
    let (mut a, _) = authenticator();
    let first = register(&mut a, "x.org", b"alice", -7, true);
    register(&mut a, "x.org", b"bob", -7, true);
    let replacement = register(&mut a, "x.org", b"alice", -7, true);

    let stored = a
        .keystore_mut()
        .discoverable_credentials(&rp_id_hash("x.org"))
        .unwrap();
    assert_eq!(stored.len(), 2);
    assert!(stored.iter().any(|c| c.id == replacement.credential_id));
    assert!(!stored.iter().any(|c| c.id == first.credential_id));
    let alice = stored
        .iter()
        .find(|c| c.id == replacement.credential_id)
        .unwrap();
    assert_eq!(
        alice.user.as_ref().unwrap().name.as_deref(),
        Some("alice@example.com")
    );
    assert_eq!(alice.rp_id.as_deref(), Some("x.org"));
}

#[test]
fn without_rk_nothing_is_stored_as_discoverable() {
    let (mut a, _) = authenticator();
    register(&mut a, "x.org", b"alice", -7, false);
    assert_eq!(a.keystore().discoverable_count(), 0);
}

#[test]
fn a_full_keystore_is_key_store_full() {
    let (mut a, _) = authenticator();
    a.keystore_mut().capacity = 1;
    register(&mut a, "x.org", b"alice", -7, true);
    let mut r = mc_request("x.org", b"bob", &[-7]);
    r.options.rk = Some(true);
    assert_eq!(make_credential(&mut a, &r), Err(StatusCode::KeyStoreFull));
    register(&mut a, "x.org", b"carol", -7, false);
}

/// §6.1.2 step 17: a discoverable credential of the same RP and user handle replaces the
/// stored one, so a full store takes it; KEY_STORE_FULL is for one that needs a new slot.
#[test]
fn a_full_keystore_still_takes_a_replacement() {
    let (mut a, _) = authenticator();
    a.keystore_mut().capacity = 1;
    let old = register(&mut a, "x.org", b"alice", -7, true);
    let new = register(&mut a, "x.org", b"alice", -7, true);
    let stored = a.keystore_mut().all_discoverable_credentials().unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].id, new.credential_id);
    assert_ne!(stored[0].id, old.credential_id);
    let mut r = mc_request("y.org", b"alice", &[-7]);
    r.options.rk = Some(true);
    assert_eq!(
        make_credential(&mut a, &r),
        Err(StatusCode::KeyStoreFull),
        "same user, other RP"
    );
}

#[test]
fn exclude_list_hit_asks_presence_then_is_credential_excluded_whatever_the_answer() {
    for (outcome, status) in [
        (PresenceOutcome::Approved, StatusCode::CredentialExcluded),
        (PresenceOutcome::Denied, StatusCode::CredentialExcluded),
        (PresenceOutcome::TimedOut, StatusCode::CredentialExcluded),
        (PresenceOutcome::Cancelled, StatusCode::KeepaliveCancel),
    ] {
        let (mut a, _) = authenticator();
        let existing = register(&mut a, "x.org", b"alice", -7, false);
        a.presence_mut().asked.clear();
        a.presence_mut().default = outcome;
        let mut r = mc_request("x.org", b"alice", &[-7]);
        r.exclude_list = vec![
            PublicKeyCredentialDescriptor::public_key(b"unknown".to_vec()),
            PublicKeyCredentialDescriptor::public_key(existing.credential_id),
        ];
        assert_eq!(make_credential(&mut a, &r), Err(status));
        assert_eq!(a.presence_mut().asked.len(), 1);
        assert_eq!(a.presence_mut().asked[0].0, Operation::ConfirmExcluded);
    }
}

#[test]
fn exclude_list_of_another_rp_does_not_exclude() {
    let (mut a, _) = authenticator();
    let other = register(&mut a, "other.org", b"alice", -7, false);
    let mut r = mc_request("x.org", b"alice", &[-7]);
    r.exclude_list = vec![PublicKeyCredentialDescriptor::public_key(
        other.credential_id,
    )];
    assert!(make_credential(&mut a, &r).is_ok());
}

#[test]
fn empty_pin_uv_auth_param_asks_for_a_touch_then_pin_not_set() {
    let (mut a, _) = authenticator();
    let mut r = mc_request("x.org", b"u", &[-7]);
    r.pin_uv_auth_param = Some(Vec::new());
    r.pin_uv_auth_protocol = Some(1);
    assert_eq!(make_credential(&mut a, &r), Err(StatusCode::PinNotSet));
    assert_eq!(a.presence_mut().asked[0].0, Operation::Selection);

    a.presence_mut().default = PresenceOutcome::Denied;
    r.pin_uv_auth_protocol = None;
    assert_eq!(
        make_credential(&mut a, &r),
        Err(StatusCode::OperationDenied)
    );
}

#[test]
fn pin_uv_auth_param_needs_a_known_protocol_and_is_pin_not_set_without_a_pin() {
    let (mut a, _) = authenticator();
    let with = |protocol: Option<i128>| {
        let mut r = mc_request("x.org", b"u", &[-7]);
        r.pin_uv_auth_param = Some(vec![1; 16]);
        r.pin_uv_auth_protocol = protocol;
        r
    };
    assert_eq!(
        make_credential(&mut a, &with(None)),
        Err(StatusCode::MissingParameter)
    );
    assert_eq!(
        make_credential(&mut a, &with(Some(3))),
        Err(StatusCode::InvalidParameter)
    );
    assert_eq!(
        make_credential(&mut a, &with(Some(2))),
        Err(StatusCode::PinNotSet)
    );
    assert!(a.presence_mut().asked.is_empty());
}

#[test]
fn user_id_over_64_bytes_is_rejected_before_any_gesture() {
    let (mut a, _) = authenticator();
    assert_eq!(
        make_credential(&mut a, &mc_request("x.org", &[1; 65], &[-7])),
        Err(StatusCode::InvalidLength)
    );
    assert!(a.presence_mut().asked.is_empty());
}
