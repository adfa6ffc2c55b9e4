//! The clearing rule of `state`, through whole commands: each test is one attack from another
//! channel (or transport) and names the clause it holds the key to.

use crate::status::StatusCode;

use ciborium::Value;

use crate::ctap2::test_support::*;
use crate::hybrid::qr::RequestType;
use crate::origin::{udp_link, Origin};
use crate::wire::Command;
use crate::wire::{
    GetAssertionRequest, GetAssertionResponse, GetInfoRequest, GetInfoResponse,
    GetNextAssertionRequest, MakeCredentialResponse,
};

fn get_assertion_from(
    a: &mut TestAuthenticator,
    origin: Origin,
    request: &GetAssertionRequest,
) -> Result<GetAssertionResponse, StatusCode> {
    send_from(a, origin, request)
}

fn get_info_from(a: &mut TestAuthenticator, origin: Origin) -> Result<GetInfoResponse, StatusCode> {
    send_from(a, origin, &GetInfoRequest)
}

const CLIENT_PIN: u8 = Command::ClientPin as u8;
const CM: u8 = Command::CredentialManagement as u8;
const P2: PinProtocol = PinProtocol::Two;

/// The attacker's channel: another program on the same machine.
const OTHER: Origin = Origin::usb(2);

fn discovery(rp: &str) -> GetAssertionRequest {
    ga_request(rp, &[])
}

/// A discovery with a pinUvAuthParam of `token` (protocol two).
fn uv_discovery_request(token: &[u8]) -> GetAssertionRequest {
    let mut request = discovery("x.org");
    request.pin_uv_auth_param = Some(P2.authenticate(token, &TEST_CLIENT_DATA_HASH));
    request.pin_uv_auth_protocol = Some(2);
    request
}

/// A discoverable makeCredential at `rp` with a pinUvAuthParam of `token` (protocol two).
fn make_discoverable(a: &mut TestAuthenticator, rp: &str, user: &[u8], token: &[u8]) {
    let mut request = mc_request(rp, user, &[-7]);
    request.options.rk = Some(true);
    request.pin_uv_auth_param = Some(P2.authenticate(token, &TEST_CLIENT_DATA_HASH));
    request.pin_uv_auth_protocol = Some(2);
    make_credential(a, &request).unwrap();
}

fn next_from(
    a: &mut TestAuthenticator,
    origin: Origin,
) -> Result<GetAssertionResponse, StatusCode> {
    send_from(a, origin, &GetNextAssertionRequest)
}

fn next(a: &mut TestAuthenticator) -> Result<GetAssertionResponse, StatusCode> {
    next_from(a, TEST_ORIGIN)
}

/// A key with PIN "1234" and two discoverable credentials at x.org.
fn key_with_two_accounts() -> TestAuthenticator {
    let (mut a, _) = authenticator();
    set_pin(&mut a, "1234");
    for user in [b"alice".as_slice(), b"bob"] {
        let token = pin_token(&mut a, P2, "1234", PERM_MC, Some("x.org")).unwrap();
        make_discoverable(&mut a, "x.org", user, &token);
    }
    a
}

/// A's getAssertion with a PIN token (so UV): two accounts, one left for getNextAssertion.
fn uv_discovery(a: &mut TestAuthenticator) -> GetAssertionResponse {
    let token = pin_token(a, P2, "1234", PERM_GA, Some("x.org")).unwrap();
    let first = get_assertion(a, &uv_discovery_request(&token)).unwrap();
    assert_eq!(first.number_of_credentials, Some(2));
    first
}

/// §6.3: getNextAssertion continues the getAssertion of its own channel; from another one it
/// is CTAP2_ERR_NOT_ALLOWED, and A's batch is over too.
#[test]
fn get_next_assertion_from_another_channel_is_not_allowed() {
    let mut a = key_with_two_accounts();
    uv_discovery(&mut a);
    assert_eq!(next_from(&mut a, OTHER), Err(StatusCode::NotAllowed));
    assert_eq!(
        next(&mut a),
        Err(StatusCode::NotAllowed),
        "cleared for A too"
    );

    // Without B, A gets its second account, with the UV flag of its batch.
    uv_discovery(&mut a);
    let second = next(&mut a).unwrap();
    assert_eq!(second.auth_data[32] & 0x04, 0x04);
}

/// The same channel number from another UDP peer is another origin (the UDP transport lets
/// any local program write any channel number).
#[test]
fn get_next_assertion_from_the_same_channel_number_of_another_peer_is_not_allowed() {
    let mut a = key_with_two_accounts();
    let mine = Origin::udp(udp_link([127, 0, 0, 1], 40000), 5);
    let theirs = Origin::udp(udp_link([127, 0, 0, 1], 40001), 5);
    get_assertion_from(&mut a, mine, &discovery("x.org")).unwrap();
    assert_eq!(next_from(&mut a, theirs), Err(StatusCode::NotAllowed));
}

/// CTAPHID_INIT on the channel (§11.2.9.1.3: it resynchronises the channel) ends what it
/// began; a hybrid session that ends does the same.
#[test]
fn forgetting_the_channel_ends_its_get_next_assertion() {
    let mut a = key_with_two_accounts();
    uv_discovery(&mut a);
    a.forget_origin(TEST_ORIGIN);
    assert_eq!(next(&mut a), Err(StatusCode::NotAllowed));
}

/// Any other command of the same channel also ends the batch (§6.3).
#[test]
fn a_u2f_message_in_between_ends_get_next_assertion() {
    let mut a = key_with_two_accounts();
    uv_discovery(&mut a);
    a.process_apdu(TEST_ORIGIN, &[0, 3, 0, 0]);
    assert_eq!(next(&mut a), Err(StatusCode::NotAllowed));
}

/// §6.8.3 enumerateCredentialsGetNextCredential and §6.8.2 enumerateRPsGetNextRP continue
/// only the Begin of their own channel: the attacker's GetNext (which needs no token) gets
/// CTAP2_ERR_NOT_ALLOWED and no user, key or largeBlobKey.
#[test]
fn credential_and_rp_enumeration_from_another_channel_is_not_allowed() {
    let mut a = key_with_two_accounts();
    let token = pin_token(&mut a, P2, "1234", PERM_CM, None).unwrap();
    let rp = rp_hash_params("x.org");
    let first = call(&mut a, CM, cm_params(&token, 0x04, Some(rp.clone()))).unwrap();
    assert_eq!(field(&first, 9), Some(&int(2)));
    let next = vec![(1, int(0x05))];
    assert_eq!(
        call_from(&mut a, OTHER, CM, next.clone()),
        Err(StatusCode::NotAllowed)
    );
    assert_eq!(
        call(&mut a, CM, next.clone()),
        Err(StatusCode::NotAllowed),
        "cleared for A too"
    );

    // The token went with B's command (see `state`): A gets a new one and goes on alone.
    let token = pin_token(&mut a, P2, "1234", PERM_CM, None).unwrap();
    call(&mut a, CM, cm_params(&token, 0x04, Some(rp))).unwrap();
    assert!(call(&mut a, CM, next).is_ok());

    // enumerateRPs: one RP only, so make a second one first.
    let mc_token = pin_token(&mut a, P2, "1234", PERM_MC, Some("y.org")).unwrap();
    make_discoverable(&mut a, "y.org", b"carol", &mc_token);
    let token = pin_token(&mut a, P2, "1234", PERM_CM, None).unwrap();
    let rps = call(&mut a, CM, cm_params(&token, 0x02, None)).unwrap();
    assert_eq!(field(&rps, 5), Some(&int(2)));
    assert_eq!(
        call_from(&mut a, OTHER, CM, vec![(1, int(0x03))]),
        Err(StatusCode::NotAllowed)
    );
}

/// The enumerations keep §6.3's 30-second window between steps.
#[test]
fn an_enumeration_expires_after_30_seconds_without_a_step() {
    let (mut a, clock) = authenticator();
    for user in [b"alice".as_slice(), b"bob"] {
        register(&mut a, "x.org", user, -7, true);
    }
    set_pin(&mut a, "1234");
    let token = pin_token(&mut a, P2, "1234", PERM_CM, None).unwrap();
    let rp = rp_hash_params("x.org");
    call(&mut a, CM, cm_params(&token, 0x04, Some(rp))).unwrap();
    clock.advance(crate::ctap2::state::CONTINUATION_WINDOW_MS + 1);
    assert_eq!(
        call(&mut a, CM, vec![(1, int(0x05))]),
        Err(StatusCode::NotAllowed)
    );
}

/// The pinUvAuthToken in use belongs to the channel it was handed to (§6.5.2.1 keeps one
/// token in use; `state` binds it): a command from elsewhere ends its use, so even a program
/// that learned the token could not spend it.
#[test]
fn a_command_from_another_channel_ends_the_token_in_use() {
    let mut a = key_with_two_accounts();
    let token = pin_token(&mut a, P2, "1234", PERM_GA, Some("x.org")).unwrap();
    get_info_from(&mut a, OTHER).unwrap();
    assert_eq!(
        get_assertion(&mut a, &uv_discovery_request(&token)),
        Err(StatusCode::PinAuthInvalid),
        "PIN_AUTH_INVALID"
    );

    // Used from another channel directly: refused the same way.
    let token = pin_token(&mut a, P2, "1234", PERM_GA, Some("x.org")).unwrap();
    assert_eq!(
        get_assertion_from(&mut a, OTHER, &uv_discovery_request(&token)),
        Err(StatusCode::PinAuthInvalid)
    );

    // INIT on the holder's channel ends it as well.
    let token = pin_token(&mut a, P2, "1234", PERM_GA, Some("x.org")).unwrap();
    a.forget_origin(TEST_ORIGIN);
    assert_eq!(
        get_assertion(&mut a, &uv_discovery_request(&token)),
        Err(StatusCode::PinAuthInvalid)
    );
}

/// Wrong PINs count for the key, not for a channel: changing channels gives no new tries
/// (§6.5.5.7: three consecutive mismatches need a power cycle).
#[test]
fn wrong_pins_from_many_channels_count_together() {
    let (mut a, _) = authenticator();
    set_pin(&mut a, "1234");
    for channel in 2..4 {
        assert_eq!(
            pin_token_from(&mut a, Origin::usb(channel), "9999"),
            Err(StatusCode::PinInvalid)
        );
    }
    assert_eq!(
        pin_token_from(&mut a, Origin::usb(4), "9999"),
        Err(StatusCode::PinAuthBlocked)
    );
    assert_eq!(
        pin_token_from(&mut a, Origin::usb(9), "1234"),
        Err(StatusCode::PinAuthBlocked)
    );
}

fn pin_token_from(
    a: &mut TestAuthenticator,
    origin: Origin,
    pin: &str,
) -> Result<Value, StatusCode> {
    let (key, shared) = key_agreement(a, P2);
    let pin_hash_enc = shared.encrypt(&pin_hash(pin.as_bytes()), iv);
    call_from(
        a,
        origin,
        CLIENT_PIN,
        vec![
            (1, int(2)),
            (2, int(9)),
            (3, key),
            (6, bytes(&pin_hash_enc)),
            (9, int(PERM_GA.into())),
            (10, text("x.org")),
        ],
    )
}

/// A hybrid peer is served what a phone serves (see `hybrid_policy`): a PIN guess, the
/// large-blob array and credential management are INVALID_COMMAND and change nothing, and
/// getInfo does not offer them.
#[test]
fn a_hybrid_peer_cannot_try_pins_read_blobs_or_manage_credentials() {
    let mut a = key_with_two_accounts();
    let peer = Origin::hybrid(1, RequestType::GetAssertion);
    assert_eq!(
        pin_token_from(&mut a, peer, "9999"),
        Err(StatusCode::InvalidCommand)
    );
    let retries = call(&mut a, CLIENT_PIN, vec![(1, int(2)), (2, int(1))]).unwrap();
    assert_eq!(field(&retries, 3), Some(&int(8)), "no PIN try was spent");
    assert_eq!(
        call_from(
            &mut a,
            peer,
            Command::LargeBlobs.as_byte(),
            vec![(1, int(100)), (3, int(0))]
        ),
        Err(StatusCode::InvalidCommand)
    );
    assert_eq!(
        call_from(&mut a, peer, CM, vec![(1, int(0x05))]),
        Err(StatusCode::InvalidCommand)
    );
    assert_eq!(
        call_from(&mut a, peer, Command::Reset.as_byte(), vec![]),
        Err(StatusCode::InvalidCommand),
        "no reset"
    );
    assert_eq!(
        send_from::<_, MakeCredentialResponse>(&mut a, peer, &mc_request("x.org", b"u", &[-7])),
        Err(StatusCode::NotAllowed),
        "a \"ga\" QR code does not register"
    );

    let info = get_info_from(&mut a, peer).unwrap();
    for name in [
        "clientPin",
        "credMgmt",
        "largeBlobs",
        "authnrCfg",
        "pinUvAuthToken",
    ] {
        assert_eq!(info.option(name), None, "{name} offered");
    }
    assert!(
        info.max_serialized_large_blob_array.is_none(),
        "no large-blob size"
    );
    let local = get_info_from(&mut a, TEST_ORIGIN).unwrap();
    assert!(local.option("clientPin").is_some());
}

/// A hybrid peer's getAssertion is served, with the person's gesture, and its getNext too.
#[test]
fn a_hybrid_peer_signs_in_with_presence_and_continues_its_own_batch() {
    let mut a = key_with_two_accounts();
    let peer = Origin::hybrid(1, RequestType::GetAssertion);
    let first = get_assertion_from(&mut a, peer, &discovery("x.org")).unwrap();
    assert_eq!(first.auth_data[32] & 0x01, 0x01);
    assert!(next_from(&mut a, peer).is_ok());

    let mut silent = discovery("x.org");
    silent.options.up = Some(false);
    assert_eq!(
        get_assertion_from(&mut a, peer, &silent),
        Err(StatusCode::UnsupportedOption)
    );
}
