//! The session against the reference initiator of the handshake's tests (written from the
//! caBLE step list), its frames read and written with the initiator's keys. The statuses are
//! the CTAP 2.2 numbers, written out.

use ciborium::Value;
use p256::elliptic_curve::sec1::ToSec1Point;
use p256::SecretKey;
use zeroize::Zeroizing;

use super::*;
use crate::hybrid::handshake::tests::ReferenceInitiator;

const PSK: [u8; 32] = [0x5a; 32];
const GET_INFO_CBOR: &[u8] = &[
    0xa1, 0x01, 0x81, 0x68, b'F', b'I', b'D', b'O', b'_', b'2', b'_', b'0',
];
const CTAP1_ERR_INVALID_COMMAND: u8 = 0x01;
const CTAP1_ERR_INVALID_LENGTH: u8 = 0x03;
const CTAP2_ERR_NOT_ALLOWED: u8 = 0x30;
const MAKE_CREDENTIAL: u8 = 0x01;
const GET_ASSERTION: u8 = 0x02;
const RESET: u8 = 0x07;

fn secret(byte: u8) -> SecretKey {
    SecretKey::from_slice(&[byte; 32]).unwrap()
}

/// A QR code for `request_type` ("mc" or "ga") made by the initiator with identity key 0x11.
fn qr_request(request_type: &str) -> QrRequest {
    let identity = secret(0x11).public_key();
    let map = Value::Map(vec![
        (
            Value::from(0),
            Value::Bytes(identity.to_sec1_point(true).as_bytes().to_vec()),
        ),
        (Value::from(1), Value::Bytes(vec![0x42; 16])),
        (Value::from(2), Value::from(2)),
        (Value::from(5), Value::Text(request_type.into())),
    ]);
    QrRequest::from_cbor(&crate::cbor::encode(&map)).unwrap()
}

fn responder(request_type: &str) -> ResponderSession {
    ResponderSession::new(&qr_request(request_type), &PSK, Zeroizing::new([0x33; 32])).unwrap()
}

/// The initiator's end of the tunnel once the handshake is done.
struct Initiator {
    frames: Crypter,
}

impl Initiator {
    fn send(&mut self, plaintext: &[u8]) -> Vec<u8> {
        self.frames.encrypt(plaintext).unwrap()
    }

    fn read(&mut self, message: &[u8]) -> Vec<u8> {
        self.frames.decrypt(message).unwrap().to_vec()
    }
}

fn sent(actions: &[Action]) -> Vec<&[u8]> {
    actions
        .iter()
        .filter_map(|action| match action {
            Action::Send(bytes) => Some(bytes.as_slice()),
            _ => None,
        })
        .collect()
}

/// Handshake and post-handshake message, as a caBLE initiator sees them; returns both ends.
fn connected(request_type: &str) -> (ResponderSession, Initiator) {
    let mut session = responder(request_type);
    let mut reference = ReferenceInitiator::new(secret(0x11), &PSK, secret(0x22));
    let actions = session.receive(&reference.first_message()).unwrap();
    // Message 2 goes out first, then our getInfo is asked for (the initiator needs it in the
    // first frame).
    let [Action::Send(response), Action::Ask(get_info)] = actions.as_slice() else {
        panic!("{actions:?}");
    };
    assert_eq!(get_info, &[0x04], "authenticatorGetInfo, no parameters");
    let (to_responder, to_initiator) = reference.read_response(response).unwrap();
    let mut initiator = Initiator {
        frames: Crypter::new(&to_initiator, &to_responder),
    };

    let actions = session
        .answer(&[[0x00].as_slice(), GET_INFO_CBOR].concat())
        .unwrap();
    assert_eq!(actions.len(), 2, "{actions:?}");
    assert_eq!(actions[1], Action::Report(Event::Connected));
    // The post-handshake message: no type byte, a CBOR map whose key 1 is getInfo's CBOR.
    let first = initiator.read(sent(&actions)[0]);
    let Value::Map(entries) = crate::cbor::decode(&first).unwrap() else {
        panic!("the post-handshake message is no map");
    };
    assert_eq!(
        entries
            .iter()
            .find(|(k, _)| *k == Value::from(1))
            .map(|(_, v)| v),
        Some(&Value::Bytes(GET_INFO_CBOR.to_vec()))
    );
    (session, initiator)
}

#[test]
fn a_whole_session_from_handshake_to_shutdown() {
    let (mut session, mut initiator) = connected("ga");
    let parameters = crate::cbor::encode(&Value::Map(vec![(
        Value::from(1),
        Value::Text("example.com".into()),
    )]));
    let frame = [&[1, GET_ASSERTION][..], &parameters].concat();
    let actions = session.receive(&initiator.send(&frame)).unwrap();
    assert_eq!(
        actions,
        vec![
            Action::Report(Event::Request {
                command: GET_ASSERTION
            }),
            Action::Ask([&[GET_ASSERTION][..], &parameters].concat()),
        ]
    );

    let actions = session.answer(&[0x00, 0xa0]).unwrap();
    assert_eq!(
        actions[0],
        Action::Report(Event::Answered {
            command: GET_ASSERTION,
            status: 0
        })
    );
    // A CTAP frame back: type 1, then the authenticator's status and CBOR.
    assert_eq!(initiator.read(sent(&actions)[0]), [1, 0x00, 0xa0]);

    // A second request in the same session, then the shutdown frame.
    let actions = session.receive(&initiator.send(&[1, 0x0b])).unwrap();
    assert_eq!(actions[1], Action::Ask(vec![0x0b]));
    let actions = session.answer(&[0x00]).unwrap();
    assert_eq!(initiator.read(sent(&actions)[0]), [1, 0x00]);
    assert_eq!(
        session.receive(&initiator.send(&[0])).unwrap(),
        [Action::Close]
    );
    assert!(session.is_over());
    assert!(matches!(
        session.receive(&initiator.send(&[1, 0x04])),
        Err(HybridError::OutOfTurn(_))
    ));
}

#[test]
fn frames_we_do_not_serve_are_ignored() {
    let (mut session, mut initiator) = connected("ga");
    // Linking information (2) and a JSON message (3) get no answer; the session goes on.
    for kind in [2, 3] {
        assert_eq!(
            session.receive(&initiator.send(&[kind, 0xa0])).unwrap(),
            [Action::Report(Event::Ignored { kind })]
        );
    }
    let actions = session.receive(&initiator.send(&[1, 0x04])).unwrap();
    assert_eq!(actions[1], Action::Ask(vec![0x04]));
}

#[test]
fn a_request_longer_than_max_msg_size_is_answered_invalid_length() {
    let (mut session, mut initiator) = connected("ga");
    let mut frame = vec![1, GET_ASSERTION];
    frame.resize(1 + MAX_REQUEST_LEN + 1, 0);
    let actions = session.receive(&initiator.send(&frame)).unwrap();
    assert!(
        !actions.iter().any(|a| matches!(a, Action::Ask(_))),
        "{actions:?}"
    );
    assert!(actions.contains(&Action::Report(Event::Refused {
        command: GET_ASSERTION,
        refusal: Refusal::TooLong {
            len: MAX_REQUEST_LEN + 1
        },
    })));
    assert_eq!(
        initiator.read(sent(&actions)[0]),
        [1, CTAP1_ERR_INVALID_LENGTH]
    );

    // The longest request maxMsgSize allows reaches the authenticator.
    frame.truncate(1 + MAX_REQUEST_LEN);
    let actions = session.receive(&initiator.send(&frame)).unwrap();
    assert!(matches!(&actions[1], Action::Ask(r) if r.len() == MAX_REQUEST_LEN));
}

#[test]
fn a_message_longer_than_any_request_frame_is_refused_unread_and_ends_the_session() {
    let (mut session, mut initiator) = connected("ga");
    let too_long = vec![0u8; MAX_FRAME_LEN + 1];
    assert_eq!(
        session.receive(&too_long).unwrap_err(),
        HybridError::FrameTooLong {
            len: MAX_FRAME_LEN + 1,
            max: MAX_FRAME_LEN
        }
    );
    assert!(session.is_over());
    assert!(session.receive(&initiator.send(&[1, 0x04])).is_err());
}

#[test]
fn what_a_phone_does_not_serve_never_reaches_the_authenticator() {
    let (mut session, mut initiator) = connected("ga");
    for (command, status) in [
        (MAKE_CREDENTIAL, CTAP2_ERR_NOT_ALLOWED),
        (RESET, CTAP1_ERR_INVALID_COMMAND),
    ] {
        let actions = session.receive(&initiator.send(&[1, command])).unwrap();
        assert!(
            !actions.iter().any(|a| matches!(a, Action::Ask(_))),
            "{actions:?}"
        );
        assert!(actions.contains(&Action::Report(Event::Answered { command, status })));
        assert_eq!(initiator.read(sent(&actions)[0]), [1, status]);
    }
}

#[test]
fn a_data_frame_instead_of_the_handshake_fails_it() {
    let mut session = responder("mc");
    let mut stranger = Crypter::new(&[1; 32], &[2; 32]);
    let frame = stranger.encrypt(&[1, 0x04]).unwrap();
    assert!(matches!(
        session.receive(&frame),
        Err(HybridError::HandshakeFailed(_))
    ));
    assert!(session.is_over());
    // A handshake message of the right length but for another QR code fails the same way.
    let mut session = responder("mc");
    let mut other = ReferenceInitiator::new(secret(0x11), &[0; 32], secret(0x22));
    assert!(matches!(
        session.receive(&other.first_message()),
        Err(HybridError::HandshakeFailed(_))
    ));
}

#[test]
fn a_frame_that_does_not_decrypt_ends_the_session() {
    let (mut session, mut initiator) = connected("ga");
    let mut tampered = initiator.send(&[1, 0x04]);
    tampered[0] ^= 1;
    assert!(matches!(
        session.receive(&tampered),
        Err(HybridError::BadFrame(_))
    ));
    assert!(session.is_over());
    // Nor does a good frame after it revive the session.
    assert!(session.receive(&initiator.send(&[1, 0x04])).is_err());

    // An empty frame (nothing but padding) is no frame either.
    let (mut session, mut initiator) = connected("ga");
    assert!(matches!(
        session.receive(&initiator.send(&[])),
        Err(HybridError::BadFrame(_))
    ));
}

#[test]
fn one_request_at_a_time() {
    let (mut session, mut initiator) = connected("ga");
    session.receive(&initiator.send(&[1, 0x04])).unwrap();
    assert!(matches!(
        session.receive(&initiator.send(&[1, 0x04])),
        Err(HybridError::BadFrame(_))
    ));
    assert!(session.is_over());

    // A shutdown while the authenticator works: the request is to be withdrawn.
    let (mut session, mut initiator) = connected("ga");
    session.receive(&initiator.send(&[1, 0x04])).unwrap();
    assert_eq!(
        session.receive(&initiator.send(&[0])).unwrap_err(),
        HybridError::EndedMidRequest
    );
}

#[test]
fn the_initiator_may_not_speak_before_our_get_info() {
    let mut session = responder("ga");
    let mut reference = ReferenceInitiator::new(secret(0x11), &PSK, secret(0x22));
    let actions = session.receive(&reference.first_message()).unwrap();
    let (to_responder, to_initiator) = reference.read_response(sent(&actions)[0]).unwrap();
    let mut initiator = Crypter::new(&to_initiator, &to_responder);
    assert_eq!(
        session
            .receive(&initiator.encrypt(&[0]).unwrap())
            .unwrap_err(),
        HybridError::EndedMidRequest
    );
}

#[test]
fn a_failed_get_info_ends_the_session() {
    let mut session = responder("ga");
    let mut reference = ReferenceInitiator::new(secret(0x11), &PSK, secret(0x22));
    session.receive(&reference.first_message()).unwrap();
    assert_eq!(
        session.answer(&[0x7f]).unwrap_err(),
        HybridError::GetInfoFailed(0x7f)
    );
    assert!(session.is_over());
}

#[test]
fn answers_nobody_asked_for_are_refused() {
    let mut session = responder("ga");
    assert!(matches!(
        session.answer(&[0]),
        Err(HybridError::OutOfTurn(_))
    ));
    let (mut session, _initiator) = connected("ga");
    assert!(matches!(
        session.answer(&[0]),
        Err(HybridError::OutOfTurn(_))
    ));
}

#[test]
fn unusable_randomness_is_refused_before_the_handshake() {
    for bad in [[0u8; 32], [0xff; 32]] {
        assert!(matches!(
            ResponderSession::new(&qr_request("ga"), &PSK, Zeroizing::new(bad)),
            Err(HybridError::BadRandomness(_))
        ));
    }
}

#[test]
fn debug_shows_no_key() {
    let session = responder("ga");
    let shown = format!("{session:?}");
    assert!(!shown.contains("90"), "{shown}"); // 0x5a, the PSK's bytes
    assert!(!shown.contains("5a"), "{shown}");
    assert!(shown.contains("awaiting the handshake"), "{shown}");
    let request = Action::Ask(vec![0x02, 0x42, 0x42]);
    assert_eq!(format!("{request:?}"), "Ask(command Some(2), 3 bytes)");
}
