//! Target `ctaphid`: the CTAPHID engine fed sequences of reports over any number of channels,
//! with time passing and requests answered at arbitrary points.
//!
//! Input: a sequence of steps, each `control | report`.
//! - control bits 0-5: milliseconds passed since the previous step, in units of 16 (0..1008,
//!   so the 500 ms message timeout is crossed both ways);
//! - control bit 6: answer the pending request (if any) before this report, echoing its payload;
//! - control bit 7: the report has the length given by the next byte instead of 64 (malformed).
//!
//! Besides "never panics", the engine must keep these promises:
//! - a request is handed out only when none is pending, on a channel the engine allocated,
//!   with exactly the length its initialization packet announced and that packet's data first;
//! - its answer comes back as reports that reassemble, on the request's channel, to exactly the
//!   answer given (CBOR for CBOR, MSG for MSG); an answer to a request aborted by INIT sends
//!   nothing;
//! - every answer goes to the channel the report named (a message timeout to the channel of
//!   the message that timed out); INIT answers echo the nonce on the channel the INIT came on; errors are one byte long and
//!   a code CTAPHID defines; a KEEPALIVE exists exactly while a CBOR request is pending;
//! - CANCEL only ever cancels the pending CBOR request of its own channel.

use std::collections::{HashMap, HashSet};

use protocol::ctaphid::{
    CtapHid, DeviceVersion, Event, KeepaliveStatus, Report, RequestKind, BROADCAST_CID,
    CONT_DATA_LEN, INIT_DATA_LEN, REPORT_LEN,
};

use crate::input::Input;

const CMD_PING: u8 = 0x01;
const CMD_MSG: u8 = 0x03;
const CMD_INIT: u8 = 0x06;
const CMD_CBOR: u8 = 0x10;
const CMD_CANCEL: u8 = 0x11;
const CMD_ERROR: u8 = 0x3f;
const INIT_FLAG: u8 = 0x80;

/// The error codes of CTAP 2.1 §11.2.9.1.6.
const ERROR_CODES: [u8; 8] = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0b, 0x7f];

struct Pending {
    token: u64,
    cid: u32,
    kind: RequestKind,
    payload: Vec<u8>,
    /// An INIT on its channel aborted it: its answer must produce no reports.
    aborted: bool,
}

struct Model {
    engine: CtapHid,
    allocated: HashSet<u32>,
    /// The last initialization packet of a MSG/CBOR/PING message per channel: (length, data).
    started: HashMap<u32, (usize, [u8; INIT_DATA_LEN])>,
    pending: Option<Pending>,
    last_token: u64,
}

pub fn run(data: &[u8]) {
    let mut model = Model {
        engine: CtapHid::new(DeviceVersion::default()),
        allocated: HashSet::new(),
        started: HashMap::new(),
        pending: None,
        last_token: 0,
    };
    let mut input = Input::new(data);
    let mut now = 0u64;
    while !input.is_empty() {
        let control = input.byte();
        now += u64::from(control & 0x3f) * 16;
        if control & 0x40 != 0 {
            model.answer_pending();
        }
        let len = if control & 0x80 != 0 {
            usize::from(input.byte()).min(2 * REPORT_LEN)
        } else {
            REPORT_LEN
        };
        let report = input.take(len);
        model.receive(report, now);
        model.check_keepalive();
    }
    model.answer_pending();
}

impl Model {
    fn receive(&mut self, report: &[u8], now: u64) {
        let header = parse_header(report);
        if let Some(Header::Init {
            cid,
            cmd,
            len,
            data,
        }) = header
        {
            if matches!(cmd, CMD_MSG | CMD_CBOR | CMD_PING) {
                self.started.insert(cid, (len, data));
            }
        }
        let mut sent = Vec::new();
        for event in self.engine.receive(report, now) {
            match event {
                Event::Send(report) => sent.push(report),
                Event::Request {
                    token,
                    cid,
                    kind,
                    payload,
                } => self.on_request(token, cid, kind, payload),
                Event::Cancel { token } => self.on_cancel(token, header.as_ref()),
                Event::Wink | Event::ChannelReset { .. } => {}
            }
        }
        for message in split_messages(&sent) {
            self.check_sent(message, report, header.as_ref());
        }
        assert_eq!(
            self.engine.is_busy(),
            self.pending.as_ref().is_some_and(|p| !p.aborted),
            "is_busy disagrees with the requests handed out"
        );
    }

    fn on_request(&mut self, token: u64, cid: u32, kind: RequestKind, payload: Vec<u8>) {
        assert!(
            self.pending.as_ref().is_none_or(|p| p.aborted),
            "a second request while one is pending"
        );
        assert!(token > self.last_token, "request tokens must be fresh");
        self.last_token = token;
        assert!(
            self.allocated.contains(&cid),
            "request on channel {cid:#x}, never allocated"
        );
        let (len, data) = self.started[&cid];
        assert_eq!(payload.len(), len, "request length differs from its BCNT");
        let head = payload.len().min(INIT_DATA_LEN);
        assert_eq!(
            payload[..head],
            data[..head],
            "request does not start as sent"
        );
        self.pending = Some(Pending {
            token,
            cid,
            kind,
            payload,
            aborted: false,
        });
    }

    fn on_cancel(&mut self, token: u64, trigger: Option<&Header>) {
        let pending = self
            .pending
            .as_mut()
            .filter(|p| !p.aborted)
            .expect("a cancel without a pending request");
        assert_eq!(pending.token, token, "cancel of another request");
        match trigger {
            Some(Header::Init {
                cid,
                cmd: CMD_CANCEL,
                ..
            }) => {
                assert_eq!(*cid, pending.cid, "CANCEL from another channel");
                assert_eq!(pending.kind, RequestKind::Cbor, "CANCEL of a MSG request");
            }
            Some(Header::Init {
                cid, cmd: CMD_INIT, ..
            }) => {
                assert_eq!(*cid, pending.cid, "INIT aborted another channel's request");
                pending.aborted = true;
            }
            other => panic!("cancel caused by {other:?}"),
        }
    }

    fn answer_pending(&mut self) {
        let Some(pending) = self.pending.take() else {
            return;
        };
        let reports = self.engine.respond(pending.token, &pending.payload);
        if pending.aborted {
            assert!(reports.is_empty(), "an aborted request was answered");
            return;
        }
        let command = match pending.kind {
            RequestKind::Cbor => CMD_CBOR,
            RequestKind::Msg => CMD_MSG,
        };
        let (cid, cmd, payload) = reassemble(&reports).expect("the answer reassembles");
        assert_eq!(cid, pending.cid, "answer on another channel");
        assert_eq!(cmd, command, "answer with another command");
        assert_eq!(payload, pending.payload, "answer changed in framing");
        assert!(!self.engine.is_busy(), "still busy after the answer");
    }

    fn check_keepalive(&self) {
        let expected = self
            .pending
            .as_ref()
            .is_some_and(|p| !p.aborted && p.kind == RequestKind::Cbor);
        let keepalive = self.engine.keepalive(KeepaliveStatus::Processing);
        assert_eq!(
            keepalive.is_some(),
            expected,
            "keepalive out of a CBOR request"
        );
        if let (Some(report), Some(pending)) = (keepalive, &self.pending) {
            assert_eq!(
                u32::from_be_bytes([report[0], report[1], report[2], report[3]]),
                pending.cid
            );
        }
    }

    fn check_sent(&mut self, message: &[Report], report: &[u8], trigger: Option<&Header>) {
        let (cid, cmd, payload) =
            reassemble(message).expect("the device sent reports that are no message");
        let Some(Header::Init { len, data, .. }) = parse_header(&message[0]) else {
            unreachable!("reassemble starts with an initialization packet");
        };
        // Answers go to the channel the report named; only a message timeout concerns the
        // channel of an earlier message.
        let timeout = cmd == CMD_ERROR && data[0] == 0x05;
        if !timeout {
            let named = report.get(..4);
            assert_eq!(
                named,
                Some(&cid.to_be_bytes()[..]),
                "answer on another channel"
            );
        }
        match cmd {
            CMD_INIT => {
                let Some(Header::Init {
                    cid: asked_on,
                    cmd: CMD_INIT,
                    data: nonce,
                    ..
                }) = trigger
                else {
                    panic!("an INIT answer to something else");
                };
                assert_eq!(cid, *asked_on, "INIT answered on another channel");
                assert_eq!(len, 17, "INIT answers are 17 bytes");
                assert_eq!(data[..8], nonce[..8], "INIT answer with another nonce");
                let assigned = u32::from_be_bytes([data[8], data[9], data[10], data[11]]);
                assert!(assigned != 0 && assigned != BROADCAST_CID);
                if cid != BROADCAST_CID {
                    assert_eq!(assigned, cid, "INIT on a channel keeps that channel");
                }
                self.allocated.insert(assigned);
            }
            CMD_ERROR => {
                assert_eq!(len, 1, "errors carry one byte");
                assert!(ERROR_CODES.contains(&data[0]), "error {:#x}", data[0]);
            }
            CMD_PING => {
                // An echo: the whole message the channel sent, so its start is the last
                // PING initialization packet of that channel.
                let (sent_len, sent_data) = self.started[&cid];
                assert_eq!(payload.len(), sent_len, "PING echo of another length");
                let head = sent_len.min(INIT_DATA_LEN);
                assert_eq!(payload[..head], sent_data[..head], "PING echo differs");
            }
            CMD_MSG | CMD_CBOR => panic!("an answer without a request"),
            _ => {}
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Header {
    Init {
        cid: u32,
        cmd: u8,
        len: usize,
        data: [u8; INIT_DATA_LEN],
    },
    Continuation {
        cid: u32,
        seq: u8,
    },
}

/// The packet layout of CTAP 2.1 §11.2.4, written again independently of the engine.
fn parse_header(report: &[u8]) -> Option<Header> {
    if report.len() != REPORT_LEN {
        return None;
    }
    let cid = u32::from_be_bytes([report[0], report[1], report[2], report[3]]);
    if report[4] & INIT_FLAG == 0 {
        return Some(Header::Continuation {
            cid,
            seq: report[4],
        });
    }
    let mut data = [0u8; INIT_DATA_LEN];
    data.copy_from_slice(&report[7..]);
    Some(Header::Init {
        cid,
        cmd: report[4] & !INIT_FLAG,
        len: usize::from(u16::from_be_bytes([report[5], report[6]])),
        data,
    })
}

/// The messages in a run of sent reports: each initialization packet with the continuation
/// packets after it.
fn split_messages(reports: &[Report]) -> Vec<&[Report]> {
    let mut messages = Vec::new();
    let mut start = 0;
    for i in 1..=reports.len() {
        let next_is_init = reports.get(i).is_none_or(|r| r[4] & INIT_FLAG != 0);
        if next_is_init {
            messages.push(&reports[start..i]);
            start = i;
        }
    }
    if reports.is_empty() {
        messages.clear();
    }
    messages
}

/// A whole message from its reports: (channel, command, payload); `None` if they do not form
/// exactly one message.
pub fn reassemble(reports: &[Report]) -> Option<(u32, u8, Vec<u8>)> {
    let (first, rest) = reports.split_first()?;
    let Some(Header::Init { cid, cmd, len, .. }) = parse_header(first) else {
        return None;
    };
    let mut payload = first[7..].to_vec();
    for (i, report) in rest.iter().enumerate() {
        match parse_header(report)? {
            Header::Continuation { cid: c, seq } if c == cid && usize::from(seq) == i => {
                payload.extend_from_slice(&report[5..]);
            }
            _ => return None,
        }
    }
    let needed = if len <= INIT_DATA_LEN {
        0
    } else {
        (len - INIT_DATA_LEN).div_ceil(CONT_DATA_LEN)
    };
    if rest.len() != needed {
        return None;
    }
    payload.truncate(len);
    Some((cid, cmd, payload))
}
