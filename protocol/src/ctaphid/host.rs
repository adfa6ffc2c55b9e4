//! The host side of CTAPHID (CTAP 2.1 §11.2): what a platform sends (CTAPHID_INIT on the
//! broadcast channel, then requests on its own channel) and the reading of the device's answer
//! from its reports. Sans-IO like the rest: the caller moves the reports and keeps the time.
//! fido2ctl, the tests' clients and the benches all use it.

use super::codes::Command;
use super::packet::{
    channel_of, fragment_message, Report, BROADCAST_CID, CONT_DATA_LEN, INIT_DATA_LEN,
};

/// The init bit of a report's command byte: set on an initialization packet.
const INIT_BIT: u8 = 0x80;

/// The report of a CTAPHID_INIT request with `nonce`, on the broadcast channel.
pub fn init_request(nonce: &[u8; 8]) -> Report {
    fragment_message(BROADCAST_CID, Command::Init, nonce).expect("8 bytes fit one report")[0]
}

/// A device's answer to CTAPHID_INIT (§11.2.9.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitAnswer {
    /// The channel the device allocated for this host.
    pub cid: u32,
    pub protocol_version: u8,
    /// Major, minor and build version of the device.
    pub device_version: [u8; 3],
    pub capabilities: u8,
}

impl InitAnswer {
    /// Reads the payload of a CTAPHID_INIT answer; `None` unless it answers `nonce` (another
    /// host's INIT is answered on the broadcast channel too) with all 17 bytes.
    pub fn parse(nonce: &[u8; 8], payload: &[u8]) -> Option<Self> {
        let [n @ .., c0, c1, c2, c3, version, major, minor, build, capabilities] = payload else {
            return None;
        };
        (n == nonce).then_some(InitAnswer {
            cid: u32::from_be_bytes([*c0, *c1, *c2, *c3]),
            protocol_version: *version,
            device_version: [*major, *minor, *build],
            capabilities: *capabilities,
        })
    }
}

/// The reports of a `command` request carrying `payload` on channel `cid`; `None` when the
/// payload is longer than a CTAPHID message can be.
pub fn request(cid: u32, command: Command, payload: &[u8]) -> Option<Vec<Report>> {
    fragment_message(cid, command, payload)
}

/// What the device said, once a whole message has come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// CTAPHID_KEEPALIVE with its status (1: processing, 2: user presence needed).
    Keepalive(u8),
    /// CTAPHID_ERROR with its code.
    Error(u8),
    /// Any other message: its command (without the init bit) and payload.
    Message(u8, Vec<u8>),
}

/// Why a report does not fit the answer being read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// The report is for another channel (`cid`).
    OtherChannel(u32),
    /// A continuation packet with no message started.
    StrayContinuation,
    /// A continuation packet out of order.
    OutOfSequence { expected: u8, got: u8 },
    /// A report shorter than an initialization packet's header.
    Short(usize),
}

/// Reads the device's answers on one channel, report by report.
#[derive(Debug)]
pub struct AnswerReader {
    cid: u32,
    /// The message being reassembled: its command, length, bytes so far, next sequence.
    partial: Option<(u8, usize, Vec<u8>, u8)>,
}

impl AnswerReader {
    pub fn new(cid: u32) -> Self {
        AnswerReader { cid, partial: None }
    }

    /// Takes one report from the device: `Ok(Some)` when it completes a message, `Ok(None)`
    /// while a message is still incomplete. A report that does not fit is an error and changes
    /// nothing (a host may skip another channel's report and read on).
    pub fn feed(&mut self, report: &[u8]) -> Result<Option<Answer>, ReadError> {
        if report.len() < 7 {
            return Err(ReadError::Short(report.len()));
        }
        let cid = channel_of(report).expect("at least 4 bytes");
        if cid != self.cid {
            return Err(ReadError::OtherChannel(cid));
        }
        let kind = report[4];
        if kind & INIT_BIT == 0 {
            let Some((command, length, mut message, seq)) = self.partial.take() else {
                return Err(ReadError::StrayContinuation);
            };
            if kind != seq {
                self.partial = Some((command, length, message, seq));
                return Err(ReadError::OutOfSequence {
                    expected: seq,
                    got: kind,
                });
            }
            let data = &report[5..];
            let take = (length - message.len()).min(CONT_DATA_LEN).min(data.len());
            message.extend_from_slice(&data[..take]);
            return Ok(self.finish(command, length, message, seq.wrapping_add(1)));
        }
        // A new initialization packet starts a new message (a device may abandon one).
        let command = kind & !INIT_BIT;
        let length = usize::from(u16::from_be_bytes([report[5], report[6]]));
        let data = &report[7..];
        let first = &data[..length.min(INIT_DATA_LEN).min(data.len())];
        if command == Command::Keepalive.code() {
            return Ok(Some(Answer::Keepalive(first.first().copied().unwrap_or(0))));
        }
        if command == Command::Error.code() {
            return Ok(Some(Answer::Error(first.first().copied().unwrap_or(0))));
        }
        Ok(self.finish(command, length, first.to_vec(), 0))
    }

    fn finish(&mut self, command: u8, length: usize, message: Vec<u8>, seq: u8) -> Option<Answer> {
        if message.len() >= length {
            return Some(Answer::Message(command, message));
        }
        self.partial = Some((command, length, message, seq));
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctaphid::{CtapHid, DeviceVersion, Event, KeepaliveStatus};

    /// The device side: the real engine, so the host is checked against what it talks to.
    fn device_with_channel() -> (CtapHid, u32) {
        let mut engine = CtapHid::new(DeviceVersion::default());
        let nonce = [3; 8];
        let events = engine.receive(&init_request(&nonce), 0);
        let Some(Event::Send(report)) = events.first() else {
            panic!("no INIT answer: {events:?}");
        };
        let mut reader = AnswerReader::new(BROADCAST_CID);
        let Ok(Some(Answer::Message(command, payload))) = reader.feed(report) else {
            panic!("INIT answer not read");
        };
        assert_eq!(command, Command::Init.code());
        let answer = InitAnswer::parse(&nonce, &payload).expect("answers our nonce");
        assert_eq!(answer.protocol_version, 2);
        assert_eq!(
            InitAnswer::parse(&[4; 8], &payload),
            None,
            "another host's nonce"
        );
        (engine, answer.cid)
    }

    #[test]
    fn a_long_answer_is_reassembled_from_the_engines_reports() {
        let (mut engine, cid) = device_with_channel();
        let payload: Vec<u8> = (0..1000u16).map(|i| i as u8).collect();
        let mut token = None;
        for report in request(cid, Command::Cbor, &[0x04]).unwrap() {
            for event in engine.receive(&report, 0) {
                if let Event::Request { token: t, .. } = event {
                    token = Some(t);
                }
            }
        }
        let mut reader = AnswerReader::new(cid);
        let keepalive = engine.keepalive(KeepaliveStatus::UserPresenceNeeded);
        assert_eq!(
            reader.feed(&keepalive.unwrap()),
            Ok(Some(Answer::Keepalive(2)))
        );
        let reports = engine.respond(token.unwrap(), &payload);
        let (last, first) = reports.split_last().unwrap();
        for report in first {
            assert_eq!(reader.feed(report), Ok(None));
        }
        assert_eq!(
            reader.feed(last),
            Ok(Some(Answer::Message(Command::Cbor.code(), payload)))
        );
    }

    #[test]
    fn reports_that_do_not_fit_are_refused_and_change_nothing() {
        let cid = 0x0102_0304;
        let mut reader = AnswerReader::new(cid);
        let message = vec![9u8; 100];
        let reports = fragment_message(cid, Command::Cbor, &message).unwrap();
        assert_eq!(reader.feed(&reports[1]), Err(ReadError::StrayContinuation));
        let other = fragment_message(7, Command::Cbor, &message).unwrap();
        assert_eq!(reader.feed(&other[0]), Err(ReadError::OtherChannel(7)));
        assert_eq!(reader.feed(&reports[0][..5]), Err(ReadError::Short(5)));
        assert_eq!(reader.feed(&reports[0]), Ok(None));
        let mut skipped = reports[1];
        skipped[4] = 1;
        assert_eq!(
            reader.feed(&skipped),
            Err(ReadError::OutOfSequence {
                expected: 0,
                got: 1
            })
        );
        assert_eq!(
            reader.feed(&reports[1]),
            Ok(Some(Answer::Message(Command::Cbor.code(), message)))
        );
    }

    #[test]
    fn an_error_answer_is_its_code() {
        let mut reader = AnswerReader::new(5);
        let report = fragment_message(5, Command::Error, &[0x06]).unwrap();
        assert_eq!(reader.feed(&report[0]), Ok(Some(Answer::Error(0x06))));
    }
}
