//! authenticatorClientPIN against the spec, both PIN/UV auth protocols, every status path.

use crate::status::StatusCode;

use ciborium::Value;

use crate::cbor;
use crate::ctap2::state::persistent::PersistentState;
use crate::ctap2::test_support::*;
use crate::env::{Keystore as _, PinCheck, StateSlot};
use crate::wire::Command;
use crate::wire::{ClientPinRequest, ClientPinResponse, ClientPinSubcommand};

const CLIENT_PIN: u8 = Command::ClientPin as u8;
const PROTOCOLS: [PinProtocol; 2] = [PinProtocol::One, PinProtocol::Two];

fn retries(a: &mut TestAuthenticator) -> (i64, bool) {
    let request = ClientPinRequest::new(ClientPinSubcommand::GetPinRetries);
    let r: ClientPinResponse = send(a, &request).unwrap();
    let n = r.pin_retries.expect("pinRetries");
    let power_cycle = r.power_cycle_state.expect("powerCycleState");
    (n as i64, power_cycle)
}

fn stored(a: &mut TestAuthenticator) -> PersistentState {
    let bytes = a
        .keystore_mut()
        .read_state(StateSlot::Authenticator)
        .unwrap()
        .expect("state written");
    PersistentState::decode(&bytes).unwrap()
}

pub(crate) fn change_pin_params(
    a: &mut TestAuthenticator,
    protocol: PinProtocol,
    current: &str,
    new: &[u8],
) -> Vec<(i64, Value)> {
    let (key, shared) = platform_key_agreement(a, protocol);
    let new_pin_enc = shared.encrypt(&padded(new), iv);
    let pin_hash_enc = shared.encrypt(&pin_hash(current.as_bytes()), iv);
    let auth = shared.authenticate(&[&new_pin_enc[..], &pin_hash_enc[..]].concat());
    let request =
        ClientPinRequest::change_pin(protocol.number(), key, pin_hash_enc, new_pin_enc, auth);
    entries(&request)
}

fn get_pin_token_params(
    a: &mut TestAuthenticator,
    protocol: PinProtocol,
    pin: &str,
) -> Vec<(i64, Value)> {
    let (key, shared) = platform_key_agreement(a, protocol);
    let pin_hash_enc = shared.encrypt(&pin_hash(pin.as_bytes()), iv);
    entries(&ClientPinRequest::get_pin_token(
        protocol.number(),
        key,
        pin_hash_enc,
    ))
}

#[test]
fn a_new_key_has_eight_retries_and_needs_no_power_cycle() {
    let (mut a, _) = authenticator();
    assert_eq!(retries(&mut a), (8, false));
}

#[test]
fn get_key_agreement_returns_a_p256_ecdh_cose_key() {
    for protocol in PROTOCOLS {
        let (mut a, _) = authenticator();
        let r = send_value(
            &mut a,
            &ClientPinRequest::get_key_agreement(protocol.number()),
        )
        .unwrap();
        let key = field(&r, 1).unwrap();
        assert_eq!(field(key, 1), Some(&int(2)), "kty EC2");
        assert_eq!(field(key, 3), Some(&int(-25)), "alg ECDH-ES+HKDF-256");
        assert_eq!(field(key, -1), Some(&int(1)), "crv P-256");
        assert_eq!(as_bytes(field(key, -2).unwrap()).len(), 32);
        assert_eq!(as_bytes(field(key, -3).unwrap()).len(), 32);
    }
}

#[test]
fn get_key_agreement_needs_a_known_protocol() {
    let (mut a, _) = authenticator();
    assert_eq!(
        call(&mut a, CLIENT_PIN, vec![(2, int(2))]),
        Err(StatusCode::MissingParameter)
    );
    assert_eq!(
        call(&mut a, CLIENT_PIN, vec![(1, int(3)), (2, int(2))]),
        Err(StatusCode::InvalidParameter)
    );
    assert_eq!(
        call(&mut a, CLIENT_PIN, vec![(1, int(0)), (2, int(2))]),
        Err(StatusCode::InvalidParameter)
    );
}

#[test]
fn malformed_requests_and_unknown_subcommands() {
    let (mut a, _) = authenticator();
    assert_eq!(
        call(&mut a, CLIENT_PIN, vec![(1, int(2))]),
        Err(StatusCode::MissingParameter),
        "no subCommand"
    );
    assert_eq!(
        call(&mut a, CLIENT_PIN, vec![(2, text("1"))]),
        Err(StatusCode::CborUnexpectedType)
    );
    assert_eq!(
        call(&mut a, CLIENT_PIN, vec![(2, int(1)), (3, bytes(b"key"))]),
        Err(StatusCode::CborUnexpectedType)
    );
    assert_eq!(
        call(&mut a, CLIENT_PIN, vec![(2, int(1)), (9, text("mc"))]),
        Err(StatusCode::CborUnexpectedType)
    );
    assert_eq!(
        call_raw(&mut a, &[CLIENT_PIN, 0xa1, 0x02]),
        Err(StatusCode::InvalidCbor)
    );
    for sub in [0x08, 0x0A, 0xff] {
        assert_eq!(
            call(&mut a, CLIENT_PIN, vec![(1, int(2)), (2, int(sub))]),
            Err(StatusCode::InvalidSubcommand),
            "{sub}"
        );
    }
}

#[test]
fn without_built_in_uv_the_uv_subcommands_are_not_supported() {
    let (mut a, _) = authenticator();
    set_pin(&mut a, "1234");
    let (key, _) = platform_key_agreement(&mut a, PinProtocol::Two);
    let request = ClientPinRequest::get_token_using_uv(2, key, PERM_GA, Some("x.org".into()));
    assert_eq!(
        send_value(&mut a, &request),
        Err(StatusCode::InvalidSubcommand)
    );
    let request = ClientPinRequest::new(ClientPinSubcommand::GetUvRetries);
    assert_eq!(
        send_value(&mut a, &request),
        Err(StatusCode::InvalidSubcommand)
    );
}

#[test]
fn set_pin_gives_the_hash_to_the_keystore_with_full_retries_under_both_protocols() {
    for protocol in PROTOCOLS {
        let (mut a, _) = authenticator();
        let p = set_pin_params(&mut a, protocol, &padded(b"123456"));
        assert_eq!(call(&mut a, CLIENT_PIN, p), Ok(Value::Null));
        let state = stored(&mut a);
        let state_bytes = a
            .keystore_mut()
            .read_state(StateSlot::Authenticator)
            .unwrap()
            .unwrap();
        assert!(
            !state_bytes
                .windows(16)
                .any(|w| w == pin_hash(b"123456").as_slice()),
            "the state slot holds no PIN hash"
        );
        assert_eq!(state.pin_code_points, Some(6));
        assert_eq!(a.keystore_mut().pin_retries().unwrap(), Some(8));
        assert_eq!(
            a.keystore_mut().verify_pin(&pin_hash(b"123456")).unwrap(),
            PinCheck::Match
        );
        assert!(pin_token(&mut a, protocol, "123456", PERM_GA, Some("x.org")).is_ok());
    }
}

#[test]
fn set_pin_when_a_pin_is_set_is_pin_auth_invalid() {
    let (mut a, _) = authenticator();
    set_pin(&mut a, "1234");
    let p = set_pin_params(&mut a, PinProtocol::Two, &padded(b"5678"));
    assert_eq!(call(&mut a, CLIENT_PIN, p), Err(StatusCode::PinAuthInvalid));
    assert!(pin_token(&mut a, PinProtocol::Two, "1234", PERM_GA, Some("x.org")).is_ok());
}

#[test]
fn set_pin_missing_parameters_protocol_and_mac() {
    for key in [1, 3, 4, 5] {
        let (mut a, _) = authenticator();
        let mut p = set_pin_params(&mut a, PinProtocol::Two, &padded(b"1234"));
        p.retain(|(k, _)| *k != key);
        assert_eq!(
            call(&mut a, CLIENT_PIN, p),
            Err(StatusCode::MissingParameter),
            "without {key}"
        );
    }
    let (mut a, _) = authenticator();
    let mut p = set_pin_params(&mut a, PinProtocol::Two, &padded(b"1234"));
    p[0].1 = int(3);
    assert_eq!(
        call(&mut a, CLIENT_PIN, p),
        Err(StatusCode::InvalidParameter),
        "unknown protocol"
    );

    let mut p = set_pin_params(&mut a, PinProtocol::Two, &padded(b"1234"));
    p[3].1 = bytes(&[0; 32]);
    assert_eq!(
        call(&mut a, CLIENT_PIN, p),
        Err(StatusCode::PinAuthInvalid),
        "wrong pinUvAuthParam"
    );

    let mut p = set_pin_params(&mut a, PinProtocol::Two, &padded(b"1234"));
    p[2].1 = cbor::int_map(vec![
        (1, int(2)),
        (-1, int(1)),
        (-2, bytes(&[1; 32])),
        (-3, bytes(&[2; 32])),
    ]);
    assert_eq!(
        call(&mut a, CLIENT_PIN, p),
        Err(StatusCode::InvalidParameter),
        "keyAgreement not on the curve"
    );

    assert_eq!(retries(&mut a), (8, false));
    assert!(
        stored_or_none(&mut a).is_none_or(|s| s.pin_code_points.is_none())
            && a.keystore_mut().pin_retries().unwrap().is_none(),
        "no PIN was set"
    );
}

fn stored_or_none(a: &mut TestAuthenticator) -> Option<PersistentState> {
    a.keystore_mut()
        .read_state(StateSlot::Authenticator)
        .unwrap()
        .map(|b| PersistentState::decode(&b).unwrap())
}

#[test]
fn the_pin_policy_is_enforced() {
    let cases: Vec<(Vec<u8>, StatusCode, &str)> = vec![
        (padded(b"123"), StatusCode::PinPolicyViolation, "3 digits"),
        (
            padded("ééé".as_bytes()),
            StatusCode::PinPolicyViolation,
            "3 code points in 6 bytes",
        ),
        (
            vec![b'1'; 64],
            StatusCode::PinPolicyViolation,
            "64 bytes: no room for padding",
        ),
        (
            padded(&[0xff, 0xfe, 0xfd, 0xfc]),
            StatusCode::PinPolicyViolation,
            "not UTF-8",
        ),
        (
            [&b"12"[..], &[0], &b"34"[..]]
                .concat()
                .into_iter()
                .chain([0; 59])
                .collect(),
            StatusCode::PinPolicyViolation,
            "bytes after the padding",
        ),
        (
            vec![b'1'; 48],
            StatusCode::InvalidParameter,
            "padded to 48, not 64 bytes",
        ),
        (
            padded(b"1234").into_iter().chain([0; 16]).collect(),
            StatusCode::InvalidParameter,
            "80 bytes",
        ),
    ];
    for (pin, status, what) in cases {
        for protocol in PROTOCOLS {
            let (mut a, _) = authenticator();
            let p = set_pin_params(&mut a, protocol, &pin);
            assert_eq!(
                call(&mut a, CLIENT_PIN, p),
                Err(status),
                "{what}, {protocol:?}"
            );
        }
    }
    for ok in [&b"1234"[..], "éééé".as_bytes(), &[b'9'; 63][..]] {
        let (mut a, _) = authenticator();
        let p = set_pin_params(&mut a, PinProtocol::One, &padded(ok));
        assert_eq!(call(&mut a, CLIENT_PIN, p), Ok(Value::Null), "{ok:?}");
    }
}

#[test]
fn change_pin_replaces_the_pin_and_invalidates_tokens() {
    for protocol in PROTOCOLS {
        let (mut a, _) = authenticator();
        set_pin(&mut a, "1234");
        let token = pin_token(&mut a, protocol, "1234", PERM_CM, None).unwrap();
        let p = change_pin_params(&mut a, protocol, "1234", b"98765");
        assert_eq!(call(&mut a, CLIENT_PIN, p), Ok(Value::Null));
        assert_eq!(
            pin_token(&mut a, protocol, "1234", PERM_GA, Some("x")),
            Err(StatusCode::PinInvalid)
        );
        assert!(pin_token(&mut a, protocol, "98765", PERM_GA, Some("x")).is_ok());
        assert_eq!(stored(&mut a).pin_code_points, Some(5));
        // The token from before the change no longer authorizes anything.
        let sub = [0x01];
        let p = vec![
            (1, int(1)),
            (3, int(protocol.number().into())),
            (4, auth_param(protocol, &token, &sub)),
        ];
        assert_eq!(
            call(&mut a, Command::CredentialManagement.as_byte(), p),
            Err(StatusCode::PinAuthInvalid)
        );
    }
}

#[test]
fn change_pin_error_paths() {
    let (mut a, _) = authenticator();
    let p = change_pin_params(&mut a, PinProtocol::Two, "1234", b"5678");
    assert_eq!(
        call(&mut a, CLIENT_PIN, p),
        Err(StatusCode::PinNotSet),
        "no PIN set"
    );

    set_pin(&mut a, "1234");
    for key in [1, 3, 4, 5, 6] {
        let mut p = change_pin_params(&mut a, PinProtocol::Two, "1234", b"5678");
        p.retain(|(k, _)| *k != key);
        assert_eq!(
            call(&mut a, CLIENT_PIN, p),
            Err(StatusCode::MissingParameter),
            "without {key}"
        );
    }
    let mut p = change_pin_params(&mut a, PinProtocol::Two, "1234", b"5678");
    p[3].1 = bytes(&[0; 32]);
    assert_eq!(
        call(&mut a, CLIENT_PIN, p),
        Err(StatusCode::PinAuthInvalid),
        "wrong MAC"
    );
    assert_eq!(retries(&mut a), (8, false), "a wrong MAC costs no retry");

    let p = change_pin_params(&mut a, PinProtocol::Two, "0000", b"5678");
    assert_eq!(
        call(&mut a, CLIENT_PIN, p),
        Err(StatusCode::PinInvalid),
        "wrong current PIN"
    );
    assert_eq!(retries(&mut a), (7, false));

    let p = change_pin_params(&mut a, PinProtocol::Two, "1234", b"567");
    assert_eq!(
        call(&mut a, CLIENT_PIN, p),
        Err(StatusCode::PinPolicyViolation),
        "new PIN too short"
    );
    assert_eq!(
        retries(&mut a),
        (8, false),
        "the right current PIN restored the retries"
    );
    assert!(pin_token(&mut a, PinProtocol::Two, "1234", PERM_GA, Some("x")).is_ok());
}

#[test]
fn get_pin_token_gives_an_mc_ga_token_for_any_rp() {
    for protocol in PROTOCOLS {
        let (mut a, _) = authenticator();
        set_pin(&mut a, "1234");
        let (key, shared) = platform_key_agreement(&mut a, protocol);
        let pin_hash_enc = shared.encrypt(&pin_hash(b"1234"), iv);
        let request = ClientPinRequest::get_pin_token(protocol.number(), key, pin_hash_enc);
        let r: ClientPinResponse = send(&mut a, &request).unwrap();
        let encrypted = r.pin_uv_auth_token.unwrap();
        assert_eq!(
            encrypted.len(),
            if protocol == PinProtocol::One { 32 } else { 48 }
        );
        let token = shared.decrypt(&encrypted).unwrap();
        assert_eq!(a.pin.token.require(PERM_MC | PERM_GA), Ok(()));
        assert_eq!(
            a.pin.token.require(PERM_CM),
            Err(crate::status::StatusCode::PinAuthInvalid)
        );
        assert_eq!(a.pin.token.rp_id(), None);
        assert!(!a.pin.token.user_present(), "a PIN is not a gesture");
        assert!(a.pin.token.user_verified());
        assert_eq!(token.as_slice(), a.pin.token_bytes(protocol).unwrap());
    }
}

#[test]
fn get_pin_token_error_paths() {
    let (mut a, _) = authenticator();
    let p = get_pin_token_params(&mut a, PinProtocol::One, "1234");
    assert_eq!(
        call(&mut a, CLIENT_PIN, p),
        Err(StatusCode::PinNotSet),
        "no PIN set"
    );
    set_pin(&mut a, "1234");
    for key in [1, 3, 6] {
        let mut p = get_pin_token_params(&mut a, PinProtocol::One, "1234");
        p.retain(|(k, _)| *k != key);
        assert_eq!(
            call(&mut a, CLIENT_PIN, p),
            Err(StatusCode::MissingParameter),
            "without {key}"
        );
    }
    let mut p = get_pin_token_params(&mut a, PinProtocol::One, "1234");
    p.push((9, int(1)));
    assert_eq!(
        call(&mut a, CLIENT_PIN, p),
        Err(StatusCode::InvalidParameter),
        "permissions"
    );
    let mut p = get_pin_token_params(&mut a, PinProtocol::One, "1234");
    p.push((0x0A, text("x.org")));
    assert_eq!(
        call(&mut a, CLIENT_PIN, p),
        Err(StatusCode::InvalidParameter),
        "rpId"
    );
    let mut p = get_pin_token_params(&mut a, PinProtocol::One, "1234");
    p[0].1 = int(7);
    assert_eq!(
        call(&mut a, CLIENT_PIN, p),
        Err(StatusCode::InvalidParameter),
        "unknown protocol"
    );
    assert_eq!(retries(&mut a), (8, false));
}

#[test]
fn token_with_permissions_carries_them_and_the_rp_id() {
    for protocol in PROTOCOLS {
        let (mut a, _) = authenticator();
        set_pin(&mut a, "1234");
        pin_token(&mut a, protocol, "1234", PERM_GA | PERM_LBW, Some("x.org")).unwrap();
        assert_eq!(a.pin.token.require(PERM_GA | PERM_LBW), Ok(()));
        assert!(a.pin.token.require(PERM_MC).is_err());
        assert_eq!(a.pin.token.rp_id(), Some("x.org"));
        pin_token(&mut a, protocol, "1234", PERM_CM | PERM_ACFG, None).unwrap();
        assert_eq!(a.pin.token.require(PERM_CM | PERM_ACFG), Ok(()));
        assert!(
            a.pin.token.require(PERM_GA).is_err(),
            "the new token replaced the old"
        );
        assert_eq!(a.pin.token.rp_id(), None);
    }
}

#[test]
fn token_with_permissions_error_paths() {
    let (mut a, _) = authenticator();
    set_pin(&mut a, "1234");
    assert_eq!(
        pin_token(&mut a, PinProtocol::Two, "1234", 0, None),
        Err(StatusCode::InvalidParameter),
        "no permission"
    );
    assert_eq!(
        pin_token(&mut a, PinProtocol::Two, "1234", 0x08, None),
        Err(StatusCode::UnauthorizedPermission),
        "be"
    );
    assert_eq!(
        pin_token(&mut a, PinProtocol::Two, "1234", 0x80, None),
        Err(StatusCode::UnauthorizedPermission),
        "unknown bit"
    );
    assert_eq!(
        pin_token(&mut a, PinProtocol::Two, "1234", PERM_MC, None),
        Err(StatusCode::MissingParameter),
        "mc needs rpId"
    );
    assert_eq!(
        pin_token(&mut a, PinProtocol::Two, "1234", PERM_GA, None),
        Err(StatusCode::MissingParameter),
        "ga needs rpId"
    );
    let (key, shared) = key_agreement(&mut a, PinProtocol::Two);
    let p = vec![
        (1, int(2)),
        (2, int(9)),
        (3, key),
        (6, bytes(&shared.encrypt(&pin_hash(b"1234"), iv))),
    ];
    assert_eq!(
        call(&mut a, CLIENT_PIN, p),
        Err(StatusCode::MissingParameter),
        "no permissions"
    );
    let (key, shared) = key_agreement(&mut a, PinProtocol::Two);
    let p = vec![
        (1, int(2)),
        (2, int(9)),
        (3, key),
        (6, bytes(&shared.encrypt(&pin_hash(b"1234"), iv))),
        (9, int(256)),
    ];
    assert_eq!(
        call(&mut a, CLIENT_PIN, p),
        Err(StatusCode::UnauthorizedPermission),
        "a permission beyond a byte"
    );
    assert_eq!(retries(&mut a), (8, false), "none of these spent a retry");
}

#[test]
fn a_wrong_pin_is_written_down_before_the_answer() {
    let (mut a, _) = authenticator();
    set_pin(&mut a, "1234");
    assert_eq!(
        pin_token(&mut a, PinProtocol::Two, "9999", PERM_CM, None),
        Err(StatusCode::PinInvalid)
    );
    assert_eq!(
        a.keystore_mut().pin_retries().unwrap(),
        Some(7),
        "in the keystore"
    );
}

#[test]
fn a_wrong_pin_regenerates_the_key_agreement_key() {
    let (mut a, _) = authenticator();
    set_pin(&mut a, "1234");
    let (key, shared) = platform_key_agreement(&mut a, PinProtocol::Two);
    let attempt = |pin: &[u8]| {
        let pin_hash_enc = shared.encrypt(&pin_hash(pin), iv);
        ClientPinRequest::get_token_using_pin(2, key.clone(), pin_hash_enc, PERM_CM, None)
    };
    assert_eq!(
        send_value(&mut a, &attempt(b"0000")),
        Err(StatusCode::PinInvalid)
    );
    assert_eq!(
        send_value(&mut a, &attempt(b"1234")),
        Err(StatusCode::PinInvalid),
        "the old shared secret no longer decrypts to the right hash"
    );
    assert!(pin_token(&mut a, PinProtocol::Two, "1234", PERM_CM, None).is_ok());
}

#[test]
fn three_wrong_pins_block_until_a_power_cycle_and_the_count_survives_it() {
    let (mut a, clock) = authenticator();
    set_pin(&mut a, "1234");
    for expected in [
        StatusCode::PinInvalid,
        StatusCode::PinInvalid,
        StatusCode::PinAuthBlocked,
    ] {
        assert_eq!(
            pin_token(&mut a, PinProtocol::Two, "0000", PERM_CM, None),
            Err(expected)
        );
    }
    assert_eq!(
        pin_token(&mut a, PinProtocol::One, "1234", PERM_CM, None),
        Err(StatusCode::PinAuthBlocked),
        "even the right PIN, on either protocol"
    );
    let p = change_pin_params(&mut a, PinProtocol::Two, "1234", b"5678");
    assert_eq!(call(&mut a, CLIENT_PIN, p), Err(StatusCode::PinAuthBlocked));
    assert_eq!(retries(&mut a), (5, true));

    let mut a = restart(a, &clock);
    assert_eq!(
        retries(&mut a),
        (5, false),
        "the block is gone, the count is not"
    );
    assert!(pin_token(&mut a, PinProtocol::Two, "1234", PERM_CM, None).is_ok());
    assert_eq!(retries(&mut a), (8, false));
}

#[test]
fn eight_wrong_pins_block_the_pin_until_reset() {
    let (mut a, clock) = authenticator();
    set_pin(&mut a, "1234");
    let mut seen = Vec::new();
    for _ in 0..3 {
        for _ in 0..3 {
            if retries(&mut a).0 == 0 {
                break;
            }
            seen.push(pin_token(&mut a, PinProtocol::Two, "0000", PERM_CM, None).unwrap_err());
        }
        a = restart(a, &clock);
    }
    assert_eq!(
        seen,
        vec![
            StatusCode::PinInvalid,
            StatusCode::PinInvalid,
            StatusCode::PinAuthBlocked,
            StatusCode::PinInvalid,
            StatusCode::PinInvalid,
            StatusCode::PinAuthBlocked,
            StatusCode::PinInvalid,
            StatusCode::PinBlocked
        ]
    );
    assert_eq!(retries(&mut a), (0, false));
    assert_eq!(
        pin_token(&mut a, PinProtocol::Two, "1234", PERM_CM, None),
        Err(StatusCode::PinBlocked)
    );
    let p = change_pin_params(&mut a, PinProtocol::Two, "1234", b"5678");
    assert_eq!(call(&mut a, CLIENT_PIN, p), Err(StatusCode::PinBlocked));
    let p = set_pin_params(&mut a, PinProtocol::Two, &padded(b"5678"));
    assert_eq!(
        call(&mut a, CLIENT_PIN, p),
        Err(StatusCode::PinAuthInvalid),
        "a blocked PIN is still set"
    );

    let mut a = restart(a, &clock);
    assert_eq!(
        pin_token(&mut a, PinProtocol::Two, "1234", PERM_CM, None),
        Err(StatusCode::PinBlocked),
        "survives a restart"
    );
    assert_eq!(
        send_value(&mut a, &crate::wire::ResetRequest),
        Ok(Value::Null),
        "reset"
    );
    assert_eq!(retries(&mut a), (8, false));
    assert_eq!(
        pin_token(&mut a, PinProtocol::Two, "1234", PERM_CM, None),
        Err(StatusCode::PinNotSet)
    );
    set_pin(&mut a, "4321");
    assert!(pin_token(&mut a, PinProtocol::Two, "4321", PERM_CM, None).is_ok());
}

#[test]
fn a_damaged_state_slot_fails_closed() {
    let (mut a, _) = authenticator();
    a.keystore_mut()
        .write_state(StateSlot::Authenticator, b"garbage")
        .unwrap();
    let request = ClientPinRequest::new(ClientPinSubcommand::GetPinRetries);
    assert_eq!(send_value(&mut a, &request), Err(StatusCode::Other));
    assert_eq!(
        pin_token(&mut a, PinProtocol::Two, "1234", PERM_CM, None),
        Err(StatusCode::Other)
    );
}

#[test]
fn debug_output_of_the_pin_session_shows_no_secret() {
    let (mut a, _) = authenticator();
    set_pin(&mut a, "1234");
    let token = pin_token(&mut a, PinProtocol::Two, "1234", PERM_CM, None).unwrap();
    let debug = format!("{:?} {:?}", a.pin, a.persistent);
    assert!(
        !debug.contains(format!("{:?}", &token[..4]).trim_matches(['[', ']'])),
        "{debug}"
    );
    assert!(debug.contains("pin_code_points: Some(4)"), "{debug}");
}

#[test]
fn a_keystore_that_checks_no_pin_for_now_is_pin_auth_blocked_and_spends_nothing() {
    let (mut a, _) = authenticator();
    set_pin(&mut a, "1234");
    a.keystore_mut().pin_locked_out = true;

    for _ in 0..4 {
        assert_eq!(
            pin_token(&mut a, PinProtocol::Two, "1234", PERM_CM, None),
            Err(StatusCode::PinAuthBlocked),
            "CTAP2_ERR_PIN_AUTH_BLOCKED, even for the right PIN"
        );
    }
    assert_eq!(
        retries(&mut a),
        (8, false),
        "no retry spent, no power cycle"
    );
    a.keystore_mut().pin_locked_out = false;

    assert!(pin_token(&mut a, PinProtocol::Two, "1234", PERM_CM, None).is_ok());
}

#[test]
fn a_pin_kept_by_an_older_state_moves_into_the_keystore_with_its_retries() {
    let (mut a, _) = authenticator();
    // Version 2, as every release before the keystore kept the PIN wrote it: the hash of
    // "1234", 5 retries, 4 code points.
    let older = cbor::encode(&cbor::int_map(vec![
        (1, int(2)),
        (2, bytes(&pin_hash(b"1234"))),
        (3, int(4)),
        (4, int(5)),
        (5, int(4)),
        (6, Value::Array(vec![])),
        (7, Value::Bool(false)),
        (8, Value::Bool(false)),
        (9, int(8)),
    ]));
    a.keystore_mut()
        .write_state(StateSlot::Authenticator, &older)
        .unwrap();

    let (left, _) = retries(&mut a);
    let rewritten = a
        .keystore_mut()
        .read_state(StateSlot::Authenticator)
        .unwrap()
        .unwrap();

    assert_eq!(left, 5);
    assert!(
        !rewritten
            .windows(16)
            .any(|w| w == pin_hash(b"1234").as_slice()),
        "the hash left the state slot"
    );
    assert_eq!(stored(&mut a).pin_code_points, Some(4));
    assert_eq!(
        pin_token(&mut a, PinProtocol::Two, "9999", PERM_CM, None),
        Err(StatusCode::PinInvalid)
    );
    assert!(pin_token(&mut a, PinProtocol::Two, "1234", PERM_CM, None).is_ok());
    assert_eq!(retries(&mut a), (8, false));
}

/// fido2d's PIN complexity policy (CTAP 2.3 §6.4 pinComplexityPolicy is the authenticator's
/// to define): no single repeated character, no run of consecutive characters either way.
#[test]
fn the_complexity_policy_refuses_repeated_and_consecutive_pins() {
    use crate::ctap2::pin::client_pin::meets_complexity_policy;
    for weak in [
        "1111", "aaaaaa", "1234", "456789", "9876", "abcdef", "FEDCBA",
    ] {
        assert!(!meets_complexity_policy(weak), "{weak}");
    }
    for fine in ["1357", "1123", "2580", "correct horse", "12345670", "ü1ü1"] {
        assert!(meets_complexity_policy(fine), "{fine}");
    }
}

/// CTAP 2.3 §6.11.4: once setMinPINLength turned pinComplexityPolicy on, setPIN and changePIN
/// refuse a PIN that fails it with CTAP2_ERR_PIN_POLICY_VIOLATION; the minimum length still
/// applies; off (the default), such PINs are accepted.
#[test]
fn set_pin_and_change_pin_enforce_the_complexity_policy_once_on() {
    let (mut a, _) = authenticator();
    let p = set_pin_params(&mut a, PinProtocol::Two, &padded(b"1234"));
    assert_eq!(call(&mut a, CLIENT_PIN, p), Ok(Value::Null), "policy off");
    let acfg = pin_token(&mut a, PinProtocol::Two, "1234", PERM_ACFG, None).unwrap();
    let on = complexity_policy(true);
    authenticator_config(&mut a, Some(&acfg), 0x03, Some(on)).unwrap();
    for weak in ["0000", "4321", "56789"] {
        let p = change_pin_params(&mut a, PinProtocol::Two, "1234", weak.as_bytes());
        assert_eq!(
            call(&mut a, CLIENT_PIN, p),
            Err(StatusCode::PinPolicyViolation),
            "{weak}"
        );
    }
    let p = change_pin_params(&mut a, PinProtocol::Two, "1234", b"2580");
    assert_eq!(call(&mut a, CLIENT_PIN, p), Ok(Value::Null));
    // After a reset the policy is off again (the state is erased) and setPIN takes anything.
    let (mut b, _) = authenticator();
    let p = set_pin_params(&mut b, PinProtocol::Two, &padded(b"1111"));
    assert_eq!(call(&mut b, CLIENT_PIN, p), Ok(Value::Null));
}

/// The policy is in force for setPIN too (a key configured before its PIN exists: only
/// possible without a PIN, when authenticatorConfig needs no token).
#[test]
fn set_pin_enforces_the_complexity_policy() {
    let (mut a, _) = authenticator();
    let on = complexity_policy(true);
    authenticator_config(&mut a, None, 0x03, Some(on)).unwrap();
    let p = set_pin_params(&mut a, PinProtocol::Two, &padded(b"9999"));
    assert_eq!(
        call(&mut a, CLIENT_PIN, p),
        Err(StatusCode::PinPolicyViolation)
    );
    let p = set_pin_params(&mut a, PinProtocol::Two, &padded(b"9192"));
    assert_eq!(call(&mut a, CLIENT_PIN, p), Ok(Value::Null));
}
