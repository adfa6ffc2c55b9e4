use super::*;
use crate::cbor;
use crate::ctap2::test_support::{field as int_field, *};
use crate::wire::get_info::key;
use crate::wire::{Command, Request as _, Response, SetMinPinLengthParams};
use ciborium::Value;

/// A getInfo member by its key.
fn field(info: &Value, key: i128) -> Option<&Value> {
    int_field(info, key as i64)
}

/// The members about what a hybrid peer is not served.
const NOT_FOR_HYBRID: [i128; 10] = [
    key::MAX_SERIALIZED_LARGE_BLOB_ARRAY,
    key::FORCE_PIN_CHANGE,
    key::MIN_PIN_LENGTH,
    key::MAX_RP_IDS_FOR_SET_MIN_PIN_LENGTH,
    key::ENC_IDENTIFIER,
    key::TRANSPORTS_FOR_RESET,
    key::PIN_COMPLEXITY_POLICY,
    key::MAX_PIN_LENGTH,
    key::ENC_CRED_STORE_STATE,
    key::AUTHENTICATOR_CONFIG_COMMANDS,
];

fn info(a: &mut TestAuthenticator) -> Value {
    call(a, Command::GetInfo as u8, vec![]).unwrap()
}

fn option(info: &Value, name: &str) -> Option<Value> {
    text_field(field(info, key::OPTIONS).unwrap(), name).cloned()
}

fn texts(list: &[&str]) -> Value {
    Value::Array(list.iter().map(|t| text(t)).collect())
}

#[test]
fn versions_aaguid_transports_firmware_and_limits() {
    let (mut a, _) = authenticator();
    let info = info(&mut a);
    assert_eq!(
        field(&info, key::VERSIONS),
        Some(&texts(&[
            "U2F_V2",
            "FIDO_2_0",
            "FIDO_2_1_PRE",
            "FIDO_2_1",
            "FIDO_2_3"
        ]))
    );
    assert_eq!(
        field(&info, key::AAGUID),
        Some(&bytes(&crate::ctap2::authenticator::FIDO2D_AAGUID))
    );
    assert_eq!(field(&info, key::MAX_MSG_SIZE), Some(&int(7609)));
    assert_eq!(
        field(&info, key::MAX_CREDENTIAL_COUNT_IN_LIST),
        Some(&int(64))
    );
    assert_eq!(field(&info, key::MAX_CREDENTIAL_ID_LENGTH), Some(&int(256)));
    assert_eq!(field(&info, key::TRANSPORTS), Some(&texts(&["usb"])));
    assert_eq!(
        field(&info, key::FIRMWARE_VERSION),
        Some(&int(a.config().firmware_version as i64))
    );
    assert_eq!(
        field(&info, key::PIN_UV_AUTH_PROTOCOLS),
        Some(&Value::Array(vec![int(2), int(1)]))
    );
    assert_eq!(
        field(&info, key::MAX_SERIALIZED_LARGE_BLOB_ARRAY),
        Some(&int(4096))
    );
    assert_eq!(field(&info, key::MAX_CRED_BLOB_LENGTH), Some(&int(32)));
    assert_eq!(
        field(&info, key::MAX_RP_IDS_FOR_SET_MIN_PIN_LENGTH),
        Some(&int(8))
    );
    assert_eq!(
        field(&info, key::EXTENSIONS),
        Some(&texts(&[
            "credProtect",
            "hmac-secret",
            "largeBlobKey",
            "credBlob",
            "minPinLength",
            "hmac-secret-mc",
            "thirdPartyPayment",
            "pinComplexityPolicy"
        ]))
    );
    for absent in [0x11, 0x12, 0x13, 0x15, 0x17, 0x18, 0x1C] {
        assert!(
            field(&info, absent).is_none(),
            "no UV attempts/modality/count, certifications, vendor commands, long touch, \
             policy URL ({absent:#x})"
        );
    }
}

#[test]
fn algorithms_follow_the_keystore() {
    let (mut a, _) = authenticator();
    let Some(Value::Array(algorithms)) = field(&info(&mut a), key::ALGORITHMS).cloned() else {
        panic!()
    };
    assert_eq!(algorithms.len(), 2);
    assert_eq!(text_field(&algorithms[0], "alg"), Some(&int(-7)));
    assert_eq!(
        text_field(&algorithms[0], "type"),
        Some(&text("public-key"))
    );
    assert_eq!(text_field(&algorithms[1], "alg"), Some(&int(-8)));
    a.keystore_mut().algorithms = vec![crate::env::Algorithm::Es256];
    let Some(Value::Array(algorithms)) = field(&info(&mut a), key::ALGORITHMS).cloned() else {
        panic!()
    };
    assert_eq!(algorithms.len(), 1, "a TPM-like keystore without Ed25519");
}

#[test]
fn options_of_a_key_without_and_with_a_pin() {
    let (mut a, _) = authenticator();
    let before = info(&mut a);
    for (name, value) in [
        ("rk", true),
        ("up", true),
        ("plat", false),
        ("clientPin", false),
        ("pinUvAuthToken", true),
        ("credMgmt", true),
        ("credentialMgmtPreview", true),
        ("authnrCfg", true),
        ("largeBlobs", true),
        ("setMinPINLength", true),
        ("makeCredUvNotRqd", true),
        ("alwaysUv", false),
        ("perCredMgmtRO", true),
    ] {
        assert_eq!(option(&before, name), Some(Value::Bool(value)), "{name}");
    }
    assert_eq!(option(&before, "uv"), None, "no built-in user verification");
    assert_eq!(option(&before, "uvAcfg"), None);
    assert_eq!(option(&before, "bioEnroll"), None);
    assert_eq!(option(&before, "ep"), None, "no enterprise attestation");

    set_pin(&mut a, "1234");
    assert_eq!(option(&info(&mut a), "clientPin"), Some(Value::Bool(true)));
}

#[test]
fn pin_policy_fields_follow_the_state() {
    let (mut a, _) = authenticator();
    let info0 = info(&mut a);
    assert_eq!(field(&info0, key::MIN_PIN_LENGTH), Some(&int(4)));
    assert_eq!(
        field(&info0, key::FORCE_PIN_CHANGE),
        Some(&Value::Bool(false))
    );
    a.update_state(|s| {
        s.min_pin_length = 6;
        s.force_pin_change = true;
        s.always_uv = true;
    })
    .unwrap();
    let info1 = info(&mut a);
    assert_eq!(field(&info1, key::MIN_PIN_LENGTH), Some(&int(6)));
    assert_eq!(
        field(&info1, key::FORCE_PIN_CHANGE),
        Some(&Value::Bool(true))
    );
    assert_eq!(option(&info1, "alwaysUv"), Some(Value::Bool(true)));
    assert_eq!(option(&info1, "makeCredUvNotRqd"), Some(Value::Bool(false)));
    assert_eq!(
        field(&info1, key::VERSIONS),
        Some(&texts(&[
            "FIDO_2_0",
            "FIDO_2_1_PRE",
            "FIDO_2_1",
            "FIDO_2_3"
        ])),
        "no U2F under alwaysUv"
    );
}

#[test]
fn remaining_discoverable_credentials_counts_down() {
    let (mut a, _) = authenticator();
    assert_eq!(
        field(&info(&mut a), key::REMAINING_DISCOVERABLE_CREDENTIALS),
        Some(&int(100))
    );
    register(&mut a, "x.org", b"alice", -7, true);
    assert_eq!(
        field(&info(&mut a), key::REMAINING_DISCOVERABLE_CREDENTIALS),
        Some(&int(99))
    );
}

/// CTAP 2.3 §6.4 attestationFormats (0x16): the formats makeCredential's
/// attestationFormatsPreference can choose, without "none" (which MUST NOT be listed: every
/// authenticator can return it); each is produced when preferred, "none" too (§6.1.2).
#[test]
fn attestation_formats_are_those_make_credential_produces() {
    let (mut a, _) = authenticator();
    let info = info(&mut a);
    assert_eq!(
        field(&info, key::ATTESTATION_FORMATS),
        Some(&texts(&["packed"]))
    );
    for format in ["packed", "none"] {
        let mut request = mc_request("x.org", b"u", &[-7]);
        request.attestation_formats_preference = Some(vec![format.into()]);
        assert_eq!(make_credential(&mut a, &request).unwrap().fmt, format);
    }
}

/// CTAP 2.2 §6.4 uvCountSinceLastPinEntry (0x17): with built-in UV only; counts the
/// built-in verifications and starts over when the PIN is entered.
#[test]
fn uv_count_since_last_pin_entry_counts_built_in_verifications() {
    let (mut a, _) = uv_authenticator();
    let count =
        |a: &mut TestAuthenticator| field(&info(a), key::UV_COUNT_SINCE_LAST_PIN_ENTRY).cloned();
    assert_eq!(count(&mut a), Some(int(0)));
    uv_token(&mut a, PinProtocol::Two, PERM_CM, None).unwrap();
    uv_token(&mut a, PinProtocol::Two, PERM_CM, None).unwrap();
    assert_eq!(count(&mut a), Some(int(2)));
    set_pin(&mut a, "1234");
    assert_eq!(count(&mut a), Some(int(2)), "setting a PIN is no PIN entry");
    pin_token(&mut a, PinProtocol::Two, "1234", PERM_CM, None).unwrap();
    assert_eq!(count(&mut a), Some(int(0)), "the PIN was entered");
}

/// CTAP 2.3 §6.4 transportsForReset (0x1A): reset is served over USB (and the UDP
/// stand-in, reported as usb), never over hybrid.
#[test]
fn transports_for_reset_leave_out_hybrid() {
    let (mut a, _) = authenticator();
    assert_eq!(
        field(&info(&mut a), key::TRANSPORTS_FOR_RESET),
        Some(&texts(&["usb"]))
    );
    a.config.transports = vec!["usb".into(), "hybrid".into()];
    assert_eq!(
        field(&info(&mut a), key::TRANSPORTS_FOR_RESET),
        Some(&texts(&["usb"]))
    );
}

/// CTAP 2.3 §6.4 pinComplexityPolicy (0x1B, present: supported; value: on) and
/// maxPINLength (0x1D), and §6.11.4 setMinPINLength's pinComplexityPolicy parameter.
#[test]
fn pin_complexity_policy_and_max_pin_length() {
    let (mut a, _) = authenticator();
    let info0 = info(&mut a);
    assert_eq!(
        field(&info0, key::PIN_COMPLEXITY_POLICY),
        Some(&Value::Bool(false))
    );
    assert_eq!(field(&info0, key::MAX_PIN_LENGTH), Some(&int(63)));
    set_pin(&mut a, "1111");
    let acfg = pin_token(&mut a, PinProtocol::Two, "1111", PERM_ACFG, None).unwrap();
    let on = complexity_policy(true);
    assert_eq!(
        authenticator_config(&mut a, Some(&acfg), 0x03, Some(on)),
        Ok(Value::Null)
    );
    assert_eq!(
        field(&info(&mut a), key::PIN_COMPLEXITY_POLICY),
        Some(&Value::Bool(true))
    );
    let off = complexity_policy(false);
    let acfg = pin_token(&mut a, PinProtocol::Two, "1111", PERM_ACFG, None).unwrap();
    authenticator_config(&mut a, Some(&acfg), 0x03, Some(off)).unwrap();
    assert_eq!(
        field(&info(&mut a), key::PIN_COMPLEXITY_POLICY),
        Some(&Value::Bool(true)),
        "only a reset turns it off"
    );
    assert!(
        !a.state().unwrap().force_pin_change,
        "the current PIN is not known, so not judged"
    );
}

/// CTAP 2.3 §6.4 authenticatorConfigCommands (0x1F): toggleAlwaysUv and setMinPINLength,
/// each of which authenticatorConfig serves; enableEnterpriseAttestation (0x01) and the
/// vendor prototype (0xFF) are not listed and answer CTAP1_ERR_INVALID_PARAMETER.
#[test]
fn authenticator_config_commands_are_those_served() {
    let (mut a, _) = authenticator();
    assert_eq!(
        field(&info(&mut a), key::AUTHENTICATOR_CONFIG_COMMANDS),
        Some(&Value::Array(vec![int(2), int(3)]))
    );
    assert_eq!(
        authenticator_config(
            &mut a,
            None,
            0x03,
            Some(
                SetMinPinLengthParams {
                    new_min_pin_length: Some(5),
                    ..Default::default()
                }
                .to_cbor()
            )
        ),
        Ok(Value::Null)
    );
    assert_eq!(
        authenticator_config(&mut a, None, 0x02, None),
        Ok(Value::Null)
    );
    for unlisted in [0x01, 0xff] {
        assert_eq!(
            authenticator_config(&mut a, None, unlisted, None),
            Err(StatusCode::InvalidParameter)
        );
    }
}

/// Decrypts an encIdentifier / encCredStoreState as a platform does (CTAP 2.3 §6.4),
/// written here from the spec's description rather than with the code under test.
fn decrypt_member(token: &[u8], info_label: &str, member: &Value) -> [u8; 16] {
    use aes::cipher::BlockModeDecrypt;
    let member = as_bytes(member);
    assert_eq!(member.len(), 32, "IV || one AES block");
    let mut key = [0u8; 16];
    hkdf::Hkdf::<Sha256>::new(Some(&[0u8; 32]), token)
        .expand(info_label.as_bytes(), &mut key)
        .unwrap();
    let mut block = aes::Block::try_from(&member[16..]).unwrap();
    cbc::Decryptor::<aes::Aes128>::new_from_slices(&key, &member[..16])
        .unwrap()
        .decrypt_block(&mut block);
    block.into()
}

/// CTAP 2.3 §6.4 encIdentifier (0x19): always there (32 bytes), readable by the holder of
/// the persistent token (pcmr); the same identifier under a fresh IV each time, across
/// restarts and PIN changes (the token changes, the identifier does not); a reset draws
/// another.
#[test]
fn enc_identifier_is_stable_and_readable_with_the_persistent_token() {
    let (mut a, clock) = authenticator();
    let before_pin = info(&mut a);
    assert_eq!(
        as_bytes(field(&before_pin, key::ENC_IDENTIFIER).unwrap()).len(),
        32
    );
    assert_eq!(
        as_bytes(field(&before_pin, key::ENC_CRED_STORE_STATE).unwrap()).len(),
        32
    );
    set_pin(&mut a, "1234");
    let token = pin_token(&mut a, PinProtocol::Two, "1234", PERM_PCMR, None).unwrap();
    let first = info(&mut a);
    let second = info(&mut a);
    let id = decrypt_member(
        &token,
        "encIdentifier",
        field(&first, key::ENC_IDENTIFIER).unwrap(),
    );
    assert_ne!(
        decrypt_member(
            &token,
            "encIdentifier",
            field(&before_pin, key::ENC_IDENTIFIER).unwrap()
        ),
        id,
        "setting the PIN drew another persistent token"
    );
    assert_ne!(
        field(&first, key::ENC_IDENTIFIER),
        field(&second, key::ENC_IDENTIFIER),
        "a fresh IV each time"
    );
    for seen in [&first, &second] {
        assert_eq!(
            decrypt_member(
                &token,
                "encIdentifier",
                field(seen, key::ENC_IDENTIFIER).unwrap()
            ),
            id
        );
    }
    let mut a = restart(a, &clock);
    let after_restart = info(&mut a);
    assert_eq!(
        decrypt_member(
            &token,
            "encIdentifier",
            field(&after_restart, key::ENC_IDENTIFIER).unwrap()
        ),
        id,
        "persistent across a restart"
    );
    assert_ne!(
        decrypt_member(
            &token,
            "encCredStoreState",
            field(&after_restart, key::ENC_IDENTIFIER).unwrap()
        ),
        id,
        "the label is part of the key"
    );
    let p = crate::ctap2::pin::client_pin::tests::change_pin_params(
        &mut a,
        PinProtocol::Two,
        "1234",
        b"5678",
    );
    call(&mut a, Command::ClientPin.as_byte(), p).unwrap();
    let after_change = info(&mut a);
    assert_ne!(
        decrypt_member(
            &token,
            "encIdentifier",
            field(&after_change, key::ENC_IDENTIFIER).unwrap()
        ),
        id,
        "the old persistent token reads nothing after a PIN change"
    );
    let token = pin_token(&mut a, PinProtocol::Two, "5678", PERM_PCMR, None).unwrap();
    assert_eq!(
        decrypt_member(
            &token,
            "encIdentifier",
            field(&after_change, key::ENC_IDENTIFIER).unwrap()
        ),
        id,
        "the identifier outlives the PIN; the new token reads it"
    );
    assert_eq!(
        call(&mut a, Command::Reset.as_byte(), vec![]),
        Ok(Value::Null)
    );
    let after_reset = info(&mut a);
    assert!(
        field(&after_reset, key::ENC_IDENTIFIER).is_some(),
        "still there after a reset"
    );
    set_pin(&mut a, "1234");
    let token = pin_token(&mut a, PinProtocol::Two, "1234", PERM_PCMR, None).unwrap();
    assert_ne!(
        decrypt_member(
            &token,
            "encIdentifier",
            field(&info(&mut a), key::ENC_IDENTIFIER).unwrap()
        ),
        id,
        "a reset makes another key of it"
    );
}

/// The first getInfo draws the persistent token and writes it: a state that cannot be
/// written (a full disk) costs encIdentifier and encCredStoreState, never the getInfo a
/// platform needs to use the key at all.
#[test]
fn get_info_answers_without_the_encrypted_members_when_the_state_cannot_be_written() {
    let (mut a, _) = authenticator();
    a.keystore_mut().state_writes_fail = true;
    let answer = info(&mut a);
    assert!(field(&answer, key::ENC_IDENTIFIER).is_none());
    assert!(field(&answer, key::ENC_CRED_STORE_STATE).is_none());
    assert!(field(&answer, key::VERSIONS).is_some());
    a.keystore_mut().state_writes_fail = false;
    assert!(
        field(&info(&mut a), key::ENC_IDENTIFIER).is_some(),
        "once space returns"
    );
}

/// A hybrid peer is told none of the members about the PIN, configuration, reset and the
/// persistent token (it is served none of them).
#[test]
fn a_hybrid_peer_is_not_told_the_ctap_2_3_management_members() {
    let (mut a, _) = authenticator();
    let hybrid = call_from(
        &mut a,
        crate::origin::Origin::hybrid(1, crate::hybrid::qr::RequestType::GetAssertion),
        0x04,
        vec![],
    )
    .unwrap();
    for key in NOT_FOR_HYBRID {
        assert!(field(&hybrid, key).is_none(), "{key:#x}");
    }
    assert!(field(&hybrid, key::ATTESTATION_FORMATS).is_some());
    assert_eq!(option(&hybrid, "perCredMgmtRO"), None);
}

/// CTAP 2.3 §6.4 encCredStoreState (0x1E): changes whenever a discoverable credential or
/// its metadata changes (created, replaced, deleted, user updated), and only then.
#[test]
fn enc_cred_store_state_changes_with_the_discoverable_credentials() {
    let (mut a, _) = authenticator();
    set_pin(&mut a, "1234");
    let token = pin_token(&mut a, PinProtocol::Two, "1234", PERM_PCMR, None).unwrap();
    let state = |a: &mut TestAuthenticator| {
        decrypt_member(
            &token,
            "encCredStoreState",
            field(&info(a), key::ENC_CRED_STORE_STATE).unwrap(),
        )
    };
    let s0 = state(&mut a);
    assert_eq!(state(&mut a), s0, "getInfo itself changes nothing");
    let rk = |a: &mut TestAuthenticator, user: &[u8], rk: bool| {
        let mc = pin_token(a, PinProtocol::Two, "1234", PERM_MC, Some("x.org")).unwrap();
        let mut request = mc_request("x.org", user, &[-7]);
        request.options.rk = Some(rk);
        request.pin_uv_auth_param =
            Some(PinProtocol::Two.authenticate(&mc, &TEST_CLIENT_DATA_HASH));
        request.pin_uv_auth_protocol = Some(2);
        registration(&make_credential(a, &request).unwrap())
    };
    rk(&mut a, b"nd", false);
    assert_eq!(
        state(&mut a),
        s0,
        "a non-discoverable credential is not stored"
    );
    let alice = rk(&mut a, b"alice", true);
    let s1 = state(&mut a);
    assert_ne!(s1, s0, "a new discoverable credential");
    rk(&mut a, b"alice", true);
    let s2 = state(&mut a);
    assert_ne!(s2, s1, "replaced");
    let cm = pin_token(&mut a, PinProtocol::Two, "1234", PERM_CM, None).unwrap();
    call(
        &mut a,
        Command::CredentialManagement.as_byte(),
        cm_params(&cm, 0x01, None),
    )
    .unwrap();
    assert_eq!(state(&mut a), s2, "reading changes nothing");
    let current = {
        let r = call(
            &mut a,
            Command::CredentialManagement.as_byte(),
            cm_params(&cm, 0x04, Some(rp_hash_params("x.org"))),
        )
        .unwrap();
        field(&r, 7).unwrap().clone()
    };
    assert_ne!(current, descriptor(&alice.credential_id), "the replacement");
    let update = cbor::int_map(vec![(2, current.clone()), (3, user(b"alice", "alice2"))]);
    call(
        &mut a,
        Command::CredentialManagement.as_byte(),
        cm_params(&cm, 0x07, Some(update)),
    )
    .unwrap();
    let s3 = state(&mut a);
    assert_ne!(s3, s2, "user entity updated");
    call(
        &mut a,
        Command::CredentialManagement.as_byte(),
        cm_params(&cm, 0x06, Some(cbor::int_map(vec![(2, current)]))),
    )
    .unwrap();
    assert_ne!(state(&mut a), s3, "deleted");
}

/// The wire type reads every member fido2d sends, with or without built-in UV and over
/// hybrid, and encodes it back to the same bytes.
#[test]
fn get_info_response_reads_every_member_fido2d_sends() {
    let hybrid = crate::origin::Origin::hybrid(1, crate::hybrid::qr::RequestType::GetAssertion);
    for (mut a, origin) in [
        (authenticator().0, TEST_ORIGIN),
        (uv_authenticator().0, TEST_ORIGIN),
        (authenticator().0, hybrid),
    ] {
        let raw = a.process_cbor(origin, &GetInfoRequest.encode());
        let info = <GetInfoResponse as Response>::decode(&raw[1..]).expect("a getInfo");
        assert_eq!(Response::encode(&info), raw);
    }
}

#[test]
fn get_info_is_canonical_cbor() {
    let (mut a, _) = authenticator();
    let raw = a.process_cbor(TEST_ORIGIN, &GetInfoRequest.encode());
    assert_eq!(raw[0], 0);
    assert_eq!(
        crate::cbor::encode(&crate::cbor::decode(&raw[1..]).unwrap()),
        raw[1..].to_vec()
    );
    // Map of 24 entries whose first key is 0x01 (versions).
    assert_eq!(&raw[1..4], &[0xb8, 24, 0x01]);
}

#[test]
fn unknown_commands_and_empty_messages_are_rejected() {
    let (mut a, _) = authenticator();
    assert_eq!(a.process_cbor(TEST_ORIGIN, &[0x42]), vec![0x01]);
    assert_eq!(
        a.process_cbor(TEST_ORIGIN, &[0x06]),
        vec![0x14],
        "clientPIN without a subCommand"
    );
    assert_eq!(a.process_cbor(TEST_ORIGIN, &[]), vec![0x03]);
}
