//! The engine against CTAP 2.1 §11.2, with a host written out by hand so the framing under test
//! is not used to check itself.

use super::*;
use crate::ctaphid::{MAX_CHANNELS, MESSAGE_TIMEOUT_MS, REPORT_LEN};

const VERSION: DeviceVersion = DeviceVersion {
    major: 1,
    minor: 2,
    build: 3,
};

// CMD bytes as the spec lists them (§11.2.9), not derived from `Command`.
const PING: u8 = 0x81;
const MSG: u8 = 0x83;
const LOCK: u8 = 0x84;
const INIT: u8 = 0x86;
const WINK: u8 = 0x88;
const CBOR: u8 = 0x90;
const CANCEL: u8 = 0x91;
const KEEPALIVE: u8 = 0xbb;
const ERROR: u8 = 0xbf;

const ERR_INVALID_CMD: u8 = 0x01;
const ERR_INVALID_PAR: u8 = 0x02;
const ERR_INVALID_LEN: u8 = 0x03;
const ERR_INVALID_SEQ: u8 = 0x04;
const ERR_MSG_TIMEOUT: u8 = 0x05;
const ERR_CHANNEL_BUSY: u8 = 0x06;
const ERR_INVALID_CHANNEL: u8 = 0x0b;
const ERR_OTHER: u8 = 0x7f;

const NONCE: [u8; 8] = [0xde, 0xad, 0xbe, 0xef, 0x01, 0x23, 0x45, 0x67];

// ---- a hand-written host ----

fn init_packet(cid: u32, cmd: u8, message_len: u16, data: &[u8]) -> Vec<u8> {
    let mut report = vec![0u8; 64];
    report[..4].copy_from_slice(&cid.to_be_bytes());
    report[4] = cmd;
    report[5..7].copy_from_slice(&message_len.to_be_bytes());
    report[7..7 + data.len()].copy_from_slice(data);
    report
}

fn continuation_packet(cid: u32, seq: u8, data: &[u8]) -> Vec<u8> {
    let mut report = vec![0u8; 64];
    report[..4].copy_from_slice(&cid.to_be_bytes());
    report[4] = seq;
    report[5..5 + data.len()].copy_from_slice(data);
    report
}

/// The reports a host sends for a message: 57 bytes in the first, 59 in each following one.
fn host_message(cid: u32, cmd: u8, payload: &[u8]) -> Vec<Vec<u8>> {
    let first_len = payload.len().min(57);
    let mut reports = vec![init_packet(
        cid,
        cmd,
        payload.len() as u16,
        &payload[..first_len],
    )];
    for (seq, chunk) in payload[first_len..].chunks(59).enumerate() {
        reports.push(continuation_packet(cid, seq as u8, chunk));
    }
    reports
}

/// Reads the host's view of a response: its channel, CMD byte and payload, checking on the way
/// that the reports form one well-sequenced, zero-padded message.
fn host_read(reports: &[Report]) -> (u32, u8, Vec<u8>) {
    let first = &reports[0];
    let cid = u32::from_be_bytes(first[..4].try_into().unwrap());
    let cmd = first[4];
    assert!(cmd & 0x80 != 0, "a message starts with an init packet");
    let len = usize::from(u16::from_be_bytes([first[5], first[6]]));
    let mut bytes = first[7..].to_vec();
    for (seq, report) in reports[1..].iter().enumerate() {
        assert_eq!(&report[..4], &cid.to_be_bytes(), "same channel throughout");
        assert_eq!(
            usize::from(report[4]),
            seq,
            "sequence numbers count up from 0"
        );
        bytes.extend_from_slice(&report[5..]);
    }
    assert!(bytes.len() >= len, "enough packets for BCNT");
    assert!(
        bytes.len() - len < 59 || (reports.len() == 1 && len <= 57),
        "no packet more than needed"
    );
    assert!(bytes[len..].iter().all(|&b| b == 0), "zero padding");
    bytes.truncate(len);
    (cid, cmd, bytes)
}

fn sent(events: &[Event]) -> Vec<Report> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::Send(report) => Some(*report),
            _ => None,
        })
        .collect()
}

fn send_all(hid: &mut CtapHid, reports: &[Vec<u8>], now_ms: u64) -> Vec<Event> {
    reports
        .iter()
        .flat_map(|report| hid.receive(report, now_ms))
        .collect()
}

fn assert_only_error(events: &[Event], cid: u32, code: u8) {
    assert_eq!(events.len(), 1, "exactly one event: {events:?}");
    let (error_cid, cmd, payload) = host_read(&sent(events));
    assert_eq!((error_cid, cmd, payload), (cid, ERROR, vec![code]));
}

/// Allocates a channel the way a host does, and returns it.
fn open_channel(hid: &mut CtapHid) -> u32 {
    let events = hid.receive(&init_packet(BROADCAST_CID, INIT, 8, &NONCE), 0);
    let (_, _, answer) = host_read(&sent(&events));
    u32::from_be_bytes(answer[8..12].try_into().unwrap())
}

fn request_of(events: &[Event]) -> (u64, u32, RequestKind, Vec<u8>) {
    let requests: Vec<_> = events
        .iter()
        .filter_map(|event| match event {
            Event::Request {
                token,
                cid,
                kind,
                payload,
            } => Some((*token, *cid, *kind, payload.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(requests.len(), 1, "one request: {events:?}");
    requests[0].clone()
}

/// A channel with a CBOR request pending, and the request's token.
fn pending_cbor(hid: &mut CtapHid) -> (u32, u64) {
    let cid = open_channel(hid);
    let events = send_all(hid, &host_message(cid, CBOR, &[0x04]), 0);
    let (token, ..) = request_of(&events);
    (cid, token)
}

fn payload_of_len(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 256) as u8).collect()
}

// ---- CTAPHID_INIT (§11.2.9.1.3) ----

#[test]
fn init_on_broadcast_answers_with_a_new_channel_byte_by_byte() {
    let mut hid = CtapHid::new(VERSION);
    let events = hid.receive(&init_packet(BROADCAST_CID, INIT, 8, &NONCE), 0);
    assert_eq!(events.len(), 1);
    let Event::Send(report) = events[0] else {
        panic!("INIT is answered with a report");
    };
    assert_eq!(
        &report[0..4],
        &[0xff, 0xff, 0xff, 0xff],
        "on the broadcast CID"
    );
    assert_eq!(report[4], 0x86, "CTAPHID_INIT");
    assert_eq!(&report[5..7], &[0x00, 17], "BCNT 17");
    assert_eq!(&report[7..15], &NONCE, "the nonce echoed");
    let cid = u32::from_be_bytes(report[15..19].try_into().unwrap());
    assert!(cid != 0 && cid != BROADCAST_CID);
    assert_eq!(report[19], 2, "CTAPHID protocol version 2");
    assert_eq!(
        &report[20..23],
        &[1, 2, 3],
        "device version major, minor, build"
    );
    assert_eq!(
        report[23],
        0x01 | 0x04,
        "WINK and CBOR; NMSG clear as MSG is served"
    );
    assert!(report[24..].iter().all(|&b| b == 0));
}

#[test]
fn every_broadcast_init_allocates_a_distinct_usable_channel() {
    let mut hid = CtapHid::new(VERSION);
    let cids: Vec<u32> = (0..50).map(|_| open_channel(&mut hid)).collect();
    let mut unique = cids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), cids.len());
    for &cid in &cids {
        assert!(cid != 0 && cid != BROADCAST_CID);
        let events = send_all(&mut hid, &host_message(cid, PING, b"hi"), 0);
        assert_eq!(host_read(&sent(&events)), (cid, PING, b"hi".to_vec()));
    }
}

#[test]
fn init_with_a_payload_other_than_eight_bytes_is_invalid_length() {
    let mut hid = CtapHid::new(VERSION);
    for len in [0u16, 7, 9, 57, 200] {
        let events = hid.receive(&init_packet(BROADCAST_CID, INIT, len, &NONCE), 0);
        assert_only_error(&events, BROADCAST_CID, ERR_INVALID_LEN);
    }
    let cid = open_channel(&mut hid);
    let events = hid.receive(&init_packet(cid, INIT, 4, &NONCE), 0);
    assert_only_error(&events, cid, ERR_INVALID_LEN);
}

#[test]
fn init_on_an_allocated_channel_resynchronises_it_and_keeps_its_id() {
    let mut hid = CtapHid::new(VERSION);
    let cid = open_channel(&mut hid);
    let events = hid.receive(&init_packet(cid, INIT, 8, &NONCE), 0);
    assert!(
        events.contains(&Event::ChannelReset { cid }),
        "the authenticator is told to forget what the channel began"
    );
    let (answer_cid, cmd, answer) = host_read(&sent(&events));
    assert_eq!((answer_cid, cmd), (cid, INIT), "answered on that channel");
    assert_eq!(&answer[..8], &NONCE);
    assert_eq!(&answer[8..12], &cid.to_be_bytes(), "the same channel");
}

#[test]
fn init_aborts_a_half_received_message_on_its_channel() {
    let mut hid = CtapHid::new(VERSION);
    let cid = open_channel(&mut hid);
    let message = host_message(cid, CBOR, &payload_of_len(100));
    assert!(hid.receive(&message[0], 0).is_empty());
    let events = hid.receive(&init_packet(cid, INIT, 8, &NONCE), 1);
    assert_eq!(host_read(&sent(&events)).1, INIT);
    assert_eq!(
        hid.next_deadline(),
        None,
        "nothing is being received any more"
    );
    assert!(
        hid.receive(&message[1], 2).is_empty(),
        "the rest is spurious"
    );
    assert!(!hid.is_busy());
}

#[test]
fn init_aborts_a_pending_request_whose_answer_is_then_dropped() {
    let mut hid = CtapHid::new(VERSION);
    let (cid, token) = pending_cbor(&mut hid);
    let events = hid.receive(&init_packet(cid, INIT, 8, &NONCE), 0);
    assert_eq!(events[0], Event::Cancel { token });
    assert_eq!(host_read(&sent(&events)).1, INIT);
    assert!(!hid.is_busy());
    assert_eq!(hid.keepalive(KeepaliveStatus::Processing), None);
    assert!(hid.respond(token, &[0x2d]).is_empty(), "the token is stale");
    // The channel serves a new request.
    let events = send_all(&mut hid, &host_message(cid, CBOR, &[0x04]), 0);
    let (new_token, ..) = request_of(&events);
    assert_ne!(new_token, token);
}

#[test]
fn init_on_broadcast_is_served_while_another_channel_is_busy() {
    let mut hid = CtapHid::new(VERSION);
    let (busy_cid, token) = pending_cbor(&mut hid);
    let new_cid = open_channel(&mut hid);
    assert_ne!(new_cid, busy_cid);
    assert!(hid.is_busy(), "the transaction is undisturbed");
    let reports = hid.respond(token, &[0x00]);
    assert_eq!(host_read(&reports), (busy_cid, CBOR, vec![0x00]));

    // And while another channel is half-way through a message.
    let message = host_message(busy_cid, PING, &payload_of_len(80));
    assert!(hid.receive(&message[0], 0).is_empty());
    let events = hid.receive(&init_packet(BROADCAST_CID, INIT, 8, &NONCE), 0);
    assert_eq!(host_read(&sent(&events)).1, INIT);
    let events = hid.receive(&message[1], 0);
    assert_eq!(
        host_read(&sent(&events)),
        (busy_cid, PING, payload_of_len(80))
    );
}

#[test]
fn init_resync_of_an_idle_channel_leaves_another_channels_transaction_alone() {
    let mut hid = CtapHid::new(VERSION);
    let (busy_cid, token) = pending_cbor(&mut hid);
    let other = open_channel(&mut hid);
    let events = hid.receive(&init_packet(other, INIT, 8, &NONCE), 0);
    assert!(
        !events.iter().any(|e| matches!(e, Event::Cancel { .. })),
        "no cancel for someone else's request"
    );
    assert!(events.contains(&Event::ChannelReset { cid: other }));
    assert!(hid.is_busy());
    assert_eq!(host_read(&hid.respond(token, &[0])).0, busy_cid);
}

#[test]
fn allocated_channels_are_bounded_and_the_oldest_forgotten() {
    let mut hid = CtapHid::new(VERSION);
    let cids: Vec<u32> = (0..MAX_CHANNELS + 20)
        .map(|_| open_channel(&mut hid))
        .collect();
    for &cid in &cids[..20] {
        let events = hid.receive(&init_packet(cid, PING, 0, &[]), 0);
        assert_only_error(&events, cid, ERR_INVALID_CHANNEL);
    }
    for &cid in &cids[20..] {
        let events = hid.receive(&init_packet(cid, PING, 0, &[]), 0);
        assert_eq!(host_read(&sent(&events)), (cid, PING, vec![]));
    }
}

// ---- channels (§11.2.4, §11.2.9.1.3) ----

#[test]
fn reserved_and_unallocated_channels_are_invalid() {
    let mut hid = CtapHid::new(VERSION);
    let cid = open_channel(&mut hid);
    for bad in [0, cid + 1, 0x1234_5678] {
        for cmd in [PING, MSG, CBOR, WINK, LOCK, INIT, KEEPALIVE, 0xc0] {
            let events = hid.receive(&init_packet(bad, cmd, 1, &[1]), 0);
            assert_only_error(&events, bad, ERR_INVALID_CHANNEL);
        }
    }
}

#[test]
fn the_broadcast_channel_takes_nothing_but_init() {
    let mut hid = CtapHid::new(VERSION);
    for cmd in [PING, MSG, CBOR, WINK, LOCK, KEEPALIVE, ERROR, 0xc1] {
        let events = hid.receive(&init_packet(BROADCAST_CID, cmd, 1, &[1]), 0);
        assert_only_error(&events, BROADCAST_CID, ERR_INVALID_CHANNEL);
    }
}

// ---- message framing (§11.2.4) ----

#[test]
fn ping_echoes_messages_of_every_boundary_length() {
    let mut hid = CtapHid::new(VERSION);
    let cid = open_channel(&mut hid);
    for len in [0, 1, 57, 58, 116, 117, 118, 1000, MAX_MESSAGE_LEN] {
        let payload = payload_of_len(len);
        let request = host_message(cid, PING, &payload);
        assert_eq!(request.len(), 1 + len.saturating_sub(57).div_ceil(59));
        let events = send_all(&mut hid, &request, 0);
        let reports = sent(&events);
        assert_eq!(
            reports.len(),
            request.len(),
            "len {len}: as many reports back"
        );
        assert_eq!(host_read(&reports), (cid, PING, payload), "len {len}");
        assert!(!hid.is_busy());
    }
}

#[test]
fn the_longest_message_uses_sequence_numbers_up_to_0x7f() {
    let mut hid = CtapHid::new(VERSION);
    let cid = open_channel(&mut hid);
    let request = host_message(cid, CBOR, &payload_of_len(MAX_MESSAGE_LEN));
    assert_eq!(request.len(), 129);
    assert_eq!(request[128][4], 0x7f);
    let events = send_all(&mut hid, &request, 0);
    let (token, _, kind, payload) = request_of(&events);
    assert_eq!(
        (kind, payload),
        (RequestKind::Cbor, payload_of_len(MAX_MESSAGE_LEN))
    );
    let reports = hid.respond(token, &payload_of_len(MAX_MESSAGE_LEN));
    assert_eq!(reports.len(), 129);
    assert_eq!(
        host_read(&reports),
        (cid, CBOR, payload_of_len(MAX_MESSAGE_LEN))
    );
}

#[test]
fn a_declared_length_over_7609_is_invalid_length() {
    let mut hid = CtapHid::new(VERSION);
    let cid = open_channel(&mut hid);
    for cmd in [PING, MSG, CBOR] {
        for len in [MAX_MESSAGE_LEN as u16 + 1, u16::MAX] {
            let events = hid.receive(&init_packet(cid, cmd, len, &[0x01; 57]), 0);
            assert_only_error(&events, cid, ERR_INVALID_LEN);
            assert_eq!(hid.next_deadline(), None, "nothing is assembled");
            assert!(hid
                .receive(&continuation_packet(cid, 0, &[0; 59]), 0)
                .is_empty());
        }
    }
}

#[test]
fn cbor_and_msg_requests_are_reassembled_and_answered_with_their_own_command() {
    let mut hid = CtapHid::new(VERSION);
    let cid = open_channel(&mut hid);
    for (cmd, kind) in [(CBOR, RequestKind::Cbor), (MSG, RequestKind::Msg)] {
        for len in [1, 57, 58, 116, 117, 500] {
            let payload = payload_of_len(len);
            let events = send_all(&mut hid, &host_message(cid, cmd, &payload), 0);
            assert_eq!(events.len(), 1);
            let (token, request_cid, request_kind, request) = request_of(&events);
            assert_eq!((request_cid, request_kind, &request), (cid, kind, &payload));
            assert!(hid.is_busy());

            let answer = payload_of_len(len + 3);
            let reports = hid.respond(token, &answer);
            assert_eq!(host_read(&reports), (cid, cmd, answer));
            assert!(!hid.is_busy());
        }
    }
}

#[test]
fn an_empty_answer_is_one_report_with_bcnt_zero() {
    let mut hid = CtapHid::new(VERSION);
    let (cid, token) = pending_cbor(&mut hid);
    let reports = hid.respond(token, &[]);
    assert_eq!(reports.len(), 1);
    assert_eq!(host_read(&reports), (cid, CBOR, vec![]));
}

#[test]
fn an_empty_msg_request_is_passed_to_the_u2f_layer() {
    // CTAP1 answers a malformed APDU with a status word, not CTAPHID.
    let mut hid = CtapHid::new(VERSION);
    let cid = open_channel(&mut hid);
    let events = hid.receive(&init_packet(cid, MSG, 0, &[]), 0);
    let (_, _, kind, payload) = request_of(&events);
    assert_eq!((kind, payload), (RequestKind::Msg, vec![]));
}

#[test]
fn an_empty_cbor_request_is_invalid_length() {
    let mut hid = CtapHid::new(VERSION);
    let cid = open_channel(&mut hid);
    let events = hid.receive(&init_packet(cid, CBOR, 0, &[]), 0);
    assert_only_error(&events, cid, ERR_INVALID_LEN);
    assert!(!hid.is_busy());
}

#[test]
fn an_answer_too_long_to_frame_becomes_err_other() {
    let mut hid = CtapHid::new(VERSION);
    let (cid, token) = pending_cbor(&mut hid);
    let reports = hid.respond(token, &vec![0; MAX_MESSAGE_LEN + 1]);
    assert_eq!(host_read(&reports), (cid, ERROR, vec![ERR_OTHER]));
    assert!(!hid.is_busy());
}

// ---- sequencing (§11.2.5.4) ----

#[test]
fn a_wrong_sequence_number_is_invalid_seq_and_drops_the_message() {
    for bad_seq in [1u8, 2, 0x7f] {
        let mut hid = CtapHid::new(VERSION);
        let cid = open_channel(&mut hid);
        let message = host_message(cid, CBOR, &payload_of_len(200));
        assert!(hid.receive(&message[0], 0).is_empty());
        let events = hid.receive(&continuation_packet(cid, bad_seq, &[0; 59]), 0);
        assert_only_error(&events, cid, ERR_INVALID_SEQ);
        assert_eq!(hid.next_deadline(), None);
        // The rest of the message is now spurious.
        assert!(send_all(&mut hid, &message[1..], 0).is_empty());
        assert!(!hid.is_busy());
    }
}

#[test]
fn a_repeated_continuation_packet_is_invalid_seq() {
    let mut hid = CtapHid::new(VERSION);
    let cid = open_channel(&mut hid);
    let message = host_message(cid, CBOR, &payload_of_len(200));
    assert!(send_all(&mut hid, &message[..2], 0).is_empty());
    let events = hid.receive(&message[1], 0);
    assert_only_error(&events, cid, ERR_INVALID_SEQ);
}

#[test]
fn a_new_message_where_a_continuation_was_due_is_invalid_seq() {
    // OpenSK and usbd-ctaphid treat it as a broken sequence and drop the message.
    let mut hid = CtapHid::new(VERSION);
    let cid = open_channel(&mut hid);
    let message = host_message(cid, CBOR, &payload_of_len(200));
    assert!(hid.receive(&message[0], 0).is_empty());
    let events = hid.receive(&init_packet(cid, PING, 1, &[9]), 0);
    assert_only_error(&events, cid, ERR_INVALID_SEQ);
    assert!(send_all(&mut hid, &message[1..], 0).is_empty());
    // The next message starts afresh.
    let events = send_all(&mut hid, &host_message(cid, PING, &[9]), 0);
    assert_eq!(host_read(&sent(&events)), (cid, PING, vec![9]));
}

#[test]
fn spurious_continuation_packets_are_ignored() {
    let mut hid = CtapHid::new(VERSION);
    let cid = open_channel(&mut hid);
    for report_cid in [cid, cid + 1, 0, BROADCAST_CID] {
        for seq in [0u8, 5, 0x7f] {
            let events = hid.receive(&continuation_packet(report_cid, seq, &[1; 59]), 0);
            assert!(events.is_empty());
        }
    }
    // Also those of another channel while a message is being received.
    let other = open_channel(&mut hid);
    let message = host_message(cid, PING, &payload_of_len(100));
    assert!(hid.receive(&message[0], 0).is_empty());
    assert!(hid
        .receive(&continuation_packet(other, 0, &[1; 59]), 0)
        .is_empty());
    let events = hid.receive(&message[1], 0);
    assert_eq!(host_read(&sent(&events)), (cid, PING, payload_of_len(100)));
}

// ---- busy (§11.2.5.1) ----

#[test]
fn another_channel_is_busy_while_a_request_is_pending() {
    let mut hid = CtapHid::new(VERSION);
    let (cid, token) = pending_cbor(&mut hid);
    let other = open_channel(&mut hid);
    for cmd in [PING, MSG, CBOR, WINK, LOCK] {
        let events = hid.receive(&init_packet(other, cmd, 1, &[1]), 0);
        assert_only_error(&events, other, ERR_CHANNEL_BUSY);
    }
    assert!(hid.is_busy());
    assert_eq!(host_read(&hid.respond(token, &[0])), (cid, CBOR, vec![0]));
    // The device is idle again.
    let events = send_all(&mut hid, &host_message(other, PING, &[5]), 0);
    assert_eq!(host_read(&sent(&events)), (other, PING, vec![5]));
}

#[test]
fn the_requesting_channel_itself_is_busy_until_answered() {
    let mut hid = CtapHid::new(VERSION);
    let (cid, token) = pending_cbor(&mut hid);
    let events = hid.receive(&init_packet(cid, PING, 1, &[1]), 0);
    assert_only_error(&events, cid, ERR_CHANNEL_BUSY);
    assert!(hid.is_busy());
    assert_eq!(hid.respond(token, &[0]).len(), 1);
}

#[test]
fn another_channel_is_busy_while_a_message_is_half_received() {
    let mut hid = CtapHid::new(VERSION);
    let cid = open_channel(&mut hid);
    let other = open_channel(&mut hid);
    let payload = payload_of_len(150);
    let message = host_message(cid, CBOR, &payload);
    assert!(send_all(&mut hid, &message[..2], 0).is_empty());
    let events = send_all(&mut hid, &host_message(other, CBOR, &[0x04]), 0);
    assert_only_error(&events, other, ERR_CHANNEL_BUSY);
    let events = hid.receive(&message[2], 0);
    let (_, request_cid, _, request) = request_of(&events);
    assert_eq!((request_cid, request), (cid, payload));
}

// ---- timeouts (§11.2.5.2) ----

#[test]
fn a_message_not_continued_in_time_is_dropped_with_msg_timeout() {
    let mut hid = CtapHid::new(VERSION);
    let cid = open_channel(&mut hid);
    assert_eq!(hid.next_deadline(), None, "idle: nothing to wake up for");
    let message = host_message(cid, CBOR, &payload_of_len(150));
    assert!(hid.receive(&message[0], 1_000).is_empty());
    assert_eq!(hid.next_deadline(), Some(1_000 + MESSAGE_TIMEOUT_MS));
    assert!(hid.receive(&message[1], 1_400).is_empty());
    let deadline = 1_400 + MESSAGE_TIMEOUT_MS;
    assert_eq!(
        hid.next_deadline(),
        Some(deadline),
        "each packet restarts the wait"
    );

    assert!(hid.poll_timeouts(deadline - 1).is_empty());
    let events = hid.poll_timeouts(deadline);
    assert_only_error(&events, cid, ERR_MSG_TIMEOUT);
    assert_eq!(hid.next_deadline(), None);
    assert!(hid.poll_timeouts(deadline + 1).is_empty(), "reported once");
    assert!(
        hid.receive(&message[2], deadline + 1).is_empty(),
        "too late: spurious"
    );
    assert!(!hid.is_busy());
}

#[test]
fn a_late_packet_learns_of_the_timeout_even_without_polling() {
    let mut hid = CtapHid::new(VERSION);
    let cid = open_channel(&mut hid);
    let message = host_message(cid, CBOR, &payload_of_len(100));
    assert!(hid.receive(&message[0], 0).is_empty());
    let events = hid.receive(&message[1], MESSAGE_TIMEOUT_MS);
    assert_only_error(&events, cid, ERR_MSG_TIMEOUT);
}

#[test]
fn a_timed_out_message_frees_the_device_for_other_channels() {
    let mut hid = CtapHid::new(VERSION);
    let cid = open_channel(&mut hid);
    let other = open_channel(&mut hid);
    let message = host_message(cid, CBOR, &payload_of_len(100));
    assert!(hid.receive(&message[0], 0).is_empty());
    let events = send_all(
        &mut hid,
        &host_message(other, PING, &[1]),
        MESSAGE_TIMEOUT_MS,
    );
    let reports = sent(&events);
    assert_eq!(
        host_read(&reports[..1]),
        (cid, ERROR, vec![ERR_MSG_TIMEOUT])
    );
    assert_eq!(host_read(&reports[1..]), (other, PING, vec![1]));
}

#[test]
fn a_pending_request_never_times_out_in_the_transport() {
    // User presence can take long; the authenticator owns that timeout.
    let mut hid = CtapHid::new(VERSION);
    let (_, token) = pending_cbor(&mut hid);
    assert_eq!(hid.next_deadline(), None);
    assert!(hid.poll_timeouts(u64::MAX).is_empty());
    assert!(hid.is_busy());
    assert_eq!(hid.respond(token, &[0]).len(), 1);
}

// ---- CTAPHID_CANCEL (§11.2.9.1.5) ----

#[test]
fn cancel_on_the_pending_cbor_channel_signals_the_authenticator_and_is_not_answered() {
    let mut hid = CtapHid::new(VERSION);
    let (cid, token) = pending_cbor(&mut hid);
    let events = hid.receive(&init_packet(cid, CANCEL, 0, &[]), 0);
    assert_eq!(events, vec![Event::Cancel { token }]);
    assert!(hid.is_busy(), "the request still ends with its own answer");
    let reports = hid.respond(token, &[0x2d]);
    assert_eq!(host_read(&reports), (cid, CBOR, vec![0x2d]));
}

#[test]
fn cancel_anywhere_else_is_ignored_silently() {
    let mut hid = CtapHid::new(VERSION);
    let idle_cid = open_channel(&mut hid);
    for cid in [idle_cid, 0, BROADCAST_CID, 0x4242_4242] {
        assert!(hid.receive(&init_packet(cid, CANCEL, 0, &[]), 0).is_empty());
    }
    let (_, token) = pending_cbor(&mut hid);
    assert!(hid
        .receive(&init_packet(idle_cid, CANCEL, 0, &[]), 0)
        .is_empty());
    assert!(hid.is_busy());
    assert_eq!(hid.respond(token, &[0]).len(), 1);
}

#[test]
fn cancel_of_a_msg_request_is_ignored() {
    // Only CTAPHID_CBOR requests can be cancelled.
    let mut hid = CtapHid::new(VERSION);
    let cid = open_channel(&mut hid);
    let events = send_all(&mut hid, &host_message(cid, MSG, &[0, 3, 0, 0]), 0);
    let (token, ..) = request_of(&events);
    assert!(hid.receive(&init_packet(cid, CANCEL, 0, &[]), 0).is_empty());
    assert_eq!(host_read(&hid.respond(token, &[0x90, 0x00])).1, MSG);
}

#[test]
fn cancel_does_not_disturb_a_half_received_message() {
    let mut hid = CtapHid::new(VERSION);
    let cid = open_channel(&mut hid);
    let message = host_message(cid, PING, &payload_of_len(70));
    assert!(hid.receive(&message[0], 0).is_empty());
    assert!(hid.receive(&init_packet(cid, CANCEL, 0, &[]), 0).is_empty());
    let events = hid.receive(&message[1], 0);
    assert_eq!(host_read(&sent(&events)), (cid, PING, payload_of_len(70)));
}

// ---- CTAPHID_WINK (§11.2.9.2.1) ----

#[test]
fn wink_is_answered_empty_and_reported() {
    let mut hid = CtapHid::new(VERSION);
    let cid = open_channel(&mut hid);
    let events = hid.receive(&init_packet(cid, WINK, 0, &[]), 0);
    assert!(events.contains(&Event::Wink));
    assert_eq!(host_read(&sent(&events)), (cid, WINK, vec![]));
    assert_eq!(events.len(), 2);
}

#[test]
fn wink_with_data_is_invalid_length() {
    let mut hid = CtapHid::new(VERSION);
    let cid = open_channel(&mut hid);
    let events = hid.receive(&init_packet(cid, WINK, 1, &[1]), 0);
    assert_only_error(&events, cid, ERR_INVALID_LEN);
}

// ---- CTAPHID_LOCK (§11.2.9.2.2) ----

#[test]
fn lock_keeps_other_channels_out_until_it_expires() {
    let mut hid = CtapHid::new(VERSION);
    let cid = open_channel(&mut hid);
    let other = open_channel(&mut hid);
    let events = hid.receive(&init_packet(cid, LOCK, 1, &[2]), 1_000);
    assert_eq!(host_read(&sent(&events)), (cid, LOCK, vec![]));
    assert_eq!(hid.next_deadline(), Some(3_000));

    for cmd in [PING, CBOR, MSG, WINK, LOCK] {
        let events = hid.receive(&init_packet(other, cmd, 1, &[1]), 2_000);
        assert_only_error(&events, other, ERR_CHANNEL_BUSY);
    }
    let events = hid.receive(&init_packet(BROADCAST_CID, INIT, 8, &NONCE), 2_000);
    assert_only_error(&events, BROADCAST_CID, ERR_CHANNEL_BUSY);
    // The lock holder is served.
    let events = send_all(&mut hid, &host_message(cid, PING, &[7]), 2_000);
    assert_eq!(host_read(&sent(&events)), (cid, PING, vec![7]));

    assert!(hid.poll_timeouts(2_999).is_empty());
    let events = send_all(&mut hid, &host_message(other, PING, &[1]), 2_999);
    assert_only_error(&events, other, ERR_CHANNEL_BUSY);
    assert!(hid.poll_timeouts(3_000).is_empty(), "expiry is silent");
    assert_eq!(hid.next_deadline(), None);
    let events = send_all(&mut hid, &host_message(other, PING, &[1]), 3_000);
    assert_eq!(host_read(&sent(&events)), (other, PING, vec![1]));
}

#[test]
fn lock_of_zero_seconds_releases_the_lock() {
    let mut hid = CtapHid::new(VERSION);
    let cid = open_channel(&mut hid);
    let other = open_channel(&mut hid);
    hid.receive(&init_packet(cid, LOCK, 1, &[10]), 0);
    assert_eq!(hid.next_deadline(), Some(10_000));
    let events = hid.receive(&init_packet(cid, LOCK, 1, &[0]), 1);
    assert_eq!(host_read(&sent(&events)), (cid, LOCK, vec![]));
    assert_eq!(hid.next_deadline(), None);
    let events = send_all(&mut hid, &host_message(other, PING, &[1]), 2);
    assert_eq!(host_read(&sent(&events)), (other, PING, vec![1]));
}

#[test]
fn lock_rejects_bad_lengths_and_durations() {
    let mut hid = CtapHid::new(VERSION);
    let cid = open_channel(&mut hid);
    for len in [0u16, 2, 100] {
        let events = hid.receive(&init_packet(cid, LOCK, len, &[1, 1]), 0);
        assert_only_error(&events, cid, ERR_INVALID_LEN);
    }
    for seconds in [11u8, 0x80, 0xff] {
        let events = hid.receive(&init_packet(cid, LOCK, 1, &[seconds]), 0);
        assert_only_error(&events, cid, ERR_INVALID_PAR);
    }
    assert_eq!(hid.next_deadline(), None, "no lock was taken");
}

// ---- other commands ----

#[test]
fn keepalive_error_and_unknown_commands_are_invalid_commands() {
    let mut hid = CtapHid::new(VERSION);
    let cid = open_channel(&mut hid);
    let known = [PING, MSG, LOCK, INIT, WINK, CBOR, CANCEL];
    for cmd in (0x80..=0xffu8).filter(|cmd| !known.contains(cmd)) {
        let events = hid.receive(&init_packet(cid, cmd, 0, &[]), 0);
        assert_only_error(&events, cid, ERR_INVALID_CMD);
    }
}

// ---- CTAPHID_KEEPALIVE (§11.2.9.1.7) ----

#[test]
fn keepalive_reports_the_status_on_the_pending_cbor_channel() {
    let mut hid = CtapHid::new(VERSION);
    assert_eq!(hid.keepalive(KeepaliveStatus::Processing), None);
    let (cid, token) = pending_cbor(&mut hid);
    for (status, byte) in [
        (KeepaliveStatus::Processing, 1),
        (KeepaliveStatus::UserPresenceNeeded, 2),
    ] {
        let report = hid.keepalive(status).unwrap();
        let mut expected = [0u8; REPORT_LEN];
        expected[..4].copy_from_slice(&cid.to_be_bytes());
        expected[4..8].copy_from_slice(&[KEEPALIVE, 0, 1, byte]);
        assert_eq!(report, expected);
    }
    hid.respond(token, &[0]);
    assert_eq!(hid.keepalive(KeepaliveStatus::Processing), None);
}

#[test]
fn keepalive_is_not_sent_for_u2f_requests() {
    let mut hid = CtapHid::new(VERSION);
    let cid = open_channel(&mut hid);
    send_all(&mut hid, &host_message(cid, MSG, &[0, 1, 0, 0]), 0);
    assert!(hid.is_busy());
    assert_eq!(hid.keepalive(KeepaliveStatus::UserPresenceNeeded), None);
}

// ---- respond ----

#[test]
fn respond_with_an_unknown_or_used_token_sends_nothing() {
    let mut hid = CtapHid::new(VERSION);
    assert!(hid.respond(1, &[0]).is_empty(), "nothing pending");
    let (_, token) = pending_cbor(&mut hid);
    assert!(hid.respond(token + 1, &[0]).is_empty());
    assert!(hid.respond(0, &[0]).is_empty());
    assert!(hid.is_busy(), "a wrong token does not end the transaction");
    assert_eq!(hid.respond(token, &[0]).len(), 1);
    assert!(hid.respond(token, &[0]).is_empty(), "answered once");
}

#[test]
fn is_busy_follows_the_request_lifecycle() {
    let mut hid = CtapHid::new(VERSION);
    let cid = open_channel(&mut hid);
    assert!(!hid.is_busy());
    let message = host_message(cid, CBOR, &payload_of_len(60));
    hid.receive(&message[0], 0);
    assert!(!hid.is_busy(), "receiving is not processing");
    let events = hid.receive(&message[1], 0);
    assert!(hid.is_busy());
    let (token, ..) = request_of(&events);
    hid.respond(token, &[0]);
    assert!(!hid.is_busy());
}

// ---- malformed reports ----

#[test]
fn a_report_of_the_wrong_size_on_an_allocated_channel_is_invalid_length() {
    let mut hid = CtapHid::new(VERSION);
    let cid = open_channel(&mut hid);
    for len in [4usize, 5, 63, 65, 128] {
        let mut report = init_packet(cid, PING, 0, &[]);
        report.resize(len, 0);
        let events = hid.receive(&report, 0);
        assert_only_error(&events, cid, ERR_INVALID_LEN);
    }
}

#[test]
fn a_report_of_the_wrong_size_elsewhere_is_ignored() {
    let mut hid = CtapHid::new(VERSION);
    open_channel(&mut hid);
    assert!(hid.receive(&[], 0).is_empty());
    assert!(hid.receive(&[0xff, 0xff, 0xff], 0).is_empty());
    for cid in [0u32, 0x9999_9999, BROADCAST_CID] {
        let mut report = init_packet(cid, INIT, 8, &NONCE);
        report.push(0);
        assert!(hid.receive(&report, 0).is_empty());
        assert!(hid.receive(&report[..63], 0).is_empty());
    }
}

#[test]
fn a_report_of_the_wrong_size_drops_the_message_it_interrupts() {
    let mut hid = CtapHid::new(VERSION);
    let cid = open_channel(&mut hid);
    let message = host_message(cid, PING, &payload_of_len(100));
    hid.receive(&message[0], 0);
    let events = hid.receive(&message[1][..60], 0);
    assert_only_error(&events, cid, ERR_INVALID_LEN);
    assert!(hid.receive(&message[1], 0).is_empty());
}

// ---- robustness ----

/// xorshift64: deterministic, so a failure replays.
struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

#[test]
fn pseudo_random_traffic_never_panics_and_only_sends_whole_reports() {
    let mut rng = Xorshift(0x9e37_79b9_7f4a_7c15);
    let mut hid = CtapHid::new(VERSION);
    let mut known_cids = vec![BROADCAST_CID, 0, 1];
    let mut tokens = vec![0u64];
    let mut now_ms = 0u64;
    let commands = [
        PING, MSG, LOCK, INIT, WINK, CBOR, CANCEL, KEEPALIVE, ERROR, 0xc0,
    ];

    for _ in 0..20_000 {
        now_ms += rng.below(200);
        let len = match rng.below(20) {
            0 => rng.below(130) as usize,
            _ => REPORT_LEN,
        };
        let mut report: Vec<u8> = (0..len).map(|_| rng.byte()).collect();
        // Steer most reports at channels and commands the engine knows, so that deep states
        // (assembly, pending requests, locks) are reached, not only the error paths.
        if len >= 7 && rng.below(4) != 0 {
            let cid = known_cids[rng.below(known_cids.len() as u64) as usize];
            report[..4].copy_from_slice(&cid.to_be_bytes());
            if rng.below(2) == 0 {
                report[4] = commands[rng.below(commands.len() as u64) as usize];
                let message_len = match rng.below(4) {
                    0 => 8,
                    1 => rng.below(3) as u16,
                    2 => rng.below(400) as u16,
                    _ => rng.next() as u16,
                };
                report[5..7].copy_from_slice(&message_len.to_be_bytes());
            } else {
                report[4] = rng.below(6) as u8;
            }
        }

        let mut events = hid.receive(&report, now_ms);
        match rng.below(8) {
            0 => events.extend(hid.poll_timeouts(now_ms)),
            1 => {
                let token = tokens[rng.below(tokens.len() as u64) as usize];
                let answer: Vec<u8> = (0..rng.below(300)).map(|_| rng.byte()).collect();
                let reports = hid.respond(token, &answer);
                assert!(reports.iter().all(|r| r.len() == REPORT_LEN));
            }
            2 => {
                if let Some(report) = hid.keepalive(KeepaliveStatus::Processing) {
                    assert_eq!(report.len(), REPORT_LEN);
                    assert!(hid.is_busy());
                }
            }
            _ => {}
        }
        if let Some(deadline) = hid.next_deadline() {
            assert!(
                deadline >= now_ms,
                "deadlines that passed have been handled"
            );
        }

        for event in &events {
            match event {
                Event::Send(report) => {
                    assert_eq!(report.len(), REPORT_LEN);
                    // Remember channels the device hands out.
                    if report[..4] == BROADCAST_CID.to_be_bytes() && report[4] == INIT {
                        known_cids.push(u32::from_be_bytes(report[15..19].try_into().unwrap()));
                    }
                }
                Event::Request { token, payload, .. } => {
                    assert!(payload.len() <= MAX_MESSAGE_LEN);
                    tokens.push(*token);
                }
                Event::Cancel { .. } | Event::Wink | Event::ChannelReset { .. } => {}
            }
        }
    }
    assert!(known_cids.len() > 10, "the traffic did allocate channels");
    assert!(tokens.len() > 10, "the traffic did reach requests");
}
