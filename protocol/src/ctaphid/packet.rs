//! The two packet layouts of CTAPHID (CTAP 2.1 §11.2.4), and the fragmentation of a message
//! into them.
//!
//! Initialization packet: CID(4, big-endian) | CMD (bit 7 set) | BCNTH | BCNTL | DATA(57).
//! Continuation packet:   CID(4, big-endian) | SEQ (0..=0x7f)  | DATA(59).

use super::codes::{Command, ErrorCode, INIT_FLAG};

/// The size of every CTAPHID report: the full-speed USB interrupt packet size (§11.2.4).
pub const REPORT_LEN: usize = 64;

/// One HID report, without the report-ID byte.
pub type Report = [u8; REPORT_LEN];

/// The channel a host uses before it has one of its own: only CTAPHID_INIT may use it.
pub const BROADCAST_CID: u32 = 0xffff_ffff;

/// 57 + 128 * 59: one initialization packet and the 128 continuation packets that sequence
/// numbers 0..=127 allow (§11.2.4).
pub const MAX_MESSAGE_LEN: usize = 7609;

const _: () = assert!(MAX_MESSAGE_LEN == INIT_DATA_LEN + 128 * CONT_DATA_LEN);

const INIT_HEADER_LEN: usize = 7;
const CONT_HEADER_LEN: usize = 5;

/// Payload bytes carried by an initialization packet.
pub const INIT_DATA_LEN: usize = REPORT_LEN - INIT_HEADER_LEN;
/// Payload bytes carried by a continuation packet.
pub const CONT_DATA_LEN: usize = REPORT_LEN - CONT_HEADER_LEN;

/// A report, read as one of the two packet layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Packet<'a> {
    Init {
        cid: u32,
        /// The 7-bit command code (not necessarily one CTAPHID defines).
        command_code: u8,
        /// BCNT: the length of the whole message, not of this packet.
        message_len: usize,
        data: &'a [u8; INIT_DATA_LEN],
    },
    Continuation {
        cid: u32,
        seq: u8,
        data: &'a [u8; CONT_DATA_LEN],
    },
}

/// Every 64-byte report is one packet or the other: bit 7 of byte 4 decides.
pub(crate) fn parse(report: &Report) -> Packet<'_> {
    let [c0, c1, c2, c3, kind, rest @ ..] = report;
    let cid = u32::from_be_bytes([*c0, *c1, *c2, *c3]);
    if kind & INIT_FLAG == 0 {
        return Packet::Continuation {
            cid,
            seq: *kind,
            data: rest,
        };
    }
    let [len_high, len_low, data @ ..] = rest;
    Packet::Init {
        cid,
        command_code: kind & !INIT_FLAG,
        message_len: usize::from(u16::from_be_bytes([*len_high, *len_low])),
        data,
    }
}

/// The channel a report of any length names, if it is long enough to name one.
pub(crate) fn channel_of(report: &[u8]) -> Option<u32> {
    let [c0, c1, c2, c3, ..] = report else {
        return None;
    };
    Some(u32::from_be_bytes([*c0, *c1, *c2, *c3]))
}

/// The reports carrying `payload` as a `command` message on channel `cid`, zero-padded; `None`
/// when the payload is longer than [`MAX_MESSAGE_LEN`]. The framing is the same in both
/// directions, so hosts (tests, tools) can use it to build requests too.
pub fn fragment_message(cid: u32, command: Command, payload: &[u8]) -> Option<Vec<Report>> {
    if payload.len() > MAX_MESSAGE_LEN {
        return None;
    }
    let message_len = u16::try_from(payload.len()).ok()?;
    let (first, rest) = payload.split_at(payload.len().min(INIT_DATA_LEN));
    let mut reports = Vec::with_capacity(rest.len().div_ceil(CONT_DATA_LEN).saturating_add(1));
    reports.push(init_report(cid, command, message_len, first));
    // At most 128 chunks remain, so every chunk gets a sequence number below 0x80.
    for (seq, chunk) in (0..INIT_FLAG).zip(rest.chunks(CONT_DATA_LEN)) {
        reports.push(continuation_report(cid, seq, chunk));
    }
    Some(reports)
}

/// A single-packet CTAPHID_ERROR response.
pub(crate) fn error_report(cid: u32, error: ErrorCode) -> Report {
    init_report(cid, Command::Error, 1, &[error.code()])
}

/// A message that fits in one initialization packet (`payload` of at most 57 bytes).
pub(crate) fn single_report(cid: u32, command: Command, payload: &[u8]) -> Report {
    // Over-long payloads are a caller bug; saturating keeps the header honest about the bytes
    // that do not fit rather than panicking.
    let message_len = u16::try_from(payload.len()).unwrap_or(u16::MAX);
    init_report(cid, command, message_len, payload)
}

fn init_report(cid: u32, command: Command, message_len: u16, data: &[u8]) -> Report {
    let [c0, c1, c2, c3] = cid.to_be_bytes();
    let [len_high, len_low] = message_len.to_be_bytes();
    let mut report = [0; REPORT_LEN];
    let (header, body) = report.split_at_mut(INIT_HEADER_LEN);
    copy_prefix(
        header,
        &[c0, c1, c2, c3, command.wire_byte(), len_high, len_low],
    );
    copy_prefix(body, data);
    report
}

fn continuation_report(cid: u32, seq: u8, data: &[u8]) -> Report {
    let [c0, c1, c2, c3] = cid.to_be_bytes();
    let mut report = [0; REPORT_LEN];
    let (header, body) = report.split_at_mut(CONT_HEADER_LEN);
    copy_prefix(header, &[c0, c1, c2, c3, seq]);
    copy_prefix(body, data);
    report
}

/// Copies as much of `source` as fits, without the length check of `copy_from_slice` that could
/// panic.
fn copy_prefix(destination: &mut [u8], source: &[u8]) {
    for (to, from) in destination.iter_mut().zip(source) {
        *to = *from;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_an_initialization_packet() {
        let mut report = [0u8; REPORT_LEN];
        report[..7].copy_from_slice(&[0x12, 0x34, 0x56, 0x78, 0x90, 0x1d, 0xb9]);
        report[7] = 0xaa;
        report[63] = 0xbb;
        let Packet::Init {
            cid,
            command_code,
            message_len,
            data,
        } = parse(&report)
        else {
            panic!("bit 7 set means an initialization packet");
        };
        assert_eq!(cid, 0x1234_5678);
        assert_eq!(command_code, 0x10);
        assert_eq!(message_len, 7609);
        assert_eq!(data.len(), 57);
        assert_eq!((data[0], data[56]), (0xaa, 0xbb));
    }

    #[test]
    fn parses_a_continuation_packet() {
        let mut report = [0u8; REPORT_LEN];
        report[..5].copy_from_slice(&[0xff, 0x00, 0x00, 0x01, 0x7f]);
        report[5] = 0xaa;
        report[63] = 0xbb;
        let Packet::Continuation { cid, seq, data } = parse(&report) else {
            panic!("bit 7 clear means a continuation packet");
        };
        assert_eq!(cid, 0xff00_0001);
        assert_eq!(seq, 0x7f);
        assert_eq!(data.len(), 59);
        assert_eq!((data[0], data[58]), (0xaa, 0xbb));
    }

    #[test]
    fn channel_of_needs_four_bytes() {
        assert_eq!(channel_of(&[]), None);
        assert_eq!(channel_of(&[1, 2, 3]), None);
        assert_eq!(channel_of(&[1, 2, 3, 4]), Some(0x0102_0304));
        assert_eq!(channel_of(&[0xff; 65]), Some(0xffff_ffff));
    }

    fn expected_report_count(len: usize) -> usize {
        1 + len.saturating_sub(INIT_DATA_LEN).div_ceil(CONT_DATA_LEN)
    }

    #[test]
    fn fragments_into_zero_padded_packets_with_ascending_sequence_numbers() {
        for len in [0, 1, 57, 58, 116, 117, 118, 7609] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8 + 1).collect();
            let reports = fragment_message(0x0102_0304, Command::Cbor, &payload).unwrap();
            assert_eq!(reports.len(), expected_report_count(len), "len {len}");

            let first = &reports[0];
            assert_eq!(&first[..5], &[1, 2, 3, 4, 0x90]);
            assert_eq!(usize::from(u16::from_be_bytes([first[5], first[6]])), len);
            let mut rebuilt = first[7..].to_vec();
            for (i, report) in reports[1..].iter().enumerate() {
                assert_eq!(&report[..4], &[1, 2, 3, 4]);
                assert_eq!(usize::from(report[4]), i, "sequence numbers count from 0");
                rebuilt.extend_from_slice(&report[5..]);
            }
            assert_eq!(&rebuilt[..len], &payload[..]);
            assert!(rebuilt[len..].iter().all(|&b| b == 0), "padding is zero");
        }
    }

    #[test]
    fn refuses_messages_longer_than_the_maximum() {
        assert_eq!(
            fragment_message(1, Command::Ping, &[0; MAX_MESSAGE_LEN + 1]),
            None
        );
        let longest = fragment_message(1, Command::Ping, &[0; MAX_MESSAGE_LEN]).unwrap();
        assert_eq!(longest.len(), 129);
        assert_eq!(longest[128][4], 0x7f);
    }

    #[test]
    fn error_report_is_one_byte_of_ctaphid_error() {
        let report = error_report(0xcafe_f00d, ErrorCode::InvalidSequence);
        let mut expected = [0u8; REPORT_LEN];
        expected[..8].copy_from_slice(&[0xca, 0xfe, 0xf0, 0x0d, 0xbf, 0x00, 0x01, 0x04]);
        assert_eq!(report, expected);
    }
}
