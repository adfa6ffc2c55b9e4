//! The host side of CTAPHID (CTAP 2.1 §11.2) over a report link: a channel from CTAPHID_INIT,
//! then one request and its response at a time, with KEEPALIVE reports shown to the person
//! while the key waits. The framing is `protocol::ctaphid::host`'s; this adds the I/O and the
//! time limits.

use std::time::{Duration, Instant};

use protocol::ctaphid::host::{self, Answer, AnswerReader, InitAnswer, ReadError};
use protocol::ctaphid::{Command, Report, BROADCAST_CID};

use super::link::ReportLink;
use crate::exit::Failure;

/// How long the key may stay silent. KEEPALIVEs (every 100 ms while it works or waits for a
/// touch) count, so this only fires when the key is gone or stuck.
const SILENCE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a whole request may take, presence wait included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
const KEEPALIVE_UP_NEEDED: u8 = 2;

pub struct CtapHidClient<L: ReportLink> {
    link: L,
    cid: u32,
}

impl<L: ReportLink> CtapHidClient<L> {
    /// Allocates a channel with CTAPHID_INIT on the broadcast channel.
    pub fn open(mut link: L) -> Result<Self, Failure> {
        let mut nonce = [0u8; 8];
        getrandom::fill(&mut nonce)
            .map_err(|err| Failure::failed(format!("no randomness for CTAPHID_INIT: {err}")))?;
        link.send(&host::init_request(&nonce)).map_err(io_failure)?;
        // Another host's INIT is answered on the broadcast channel too: only ours counts.
        let answer = read_answer(&mut link, BROADCAST_CID, Command::Init, |payload| {
            InitAnswer::parse(&nonce, payload)
        })?;
        Ok(CtapHidClient {
            link,
            cid: answer.cid,
        })
    }

    /// A CTAP2 request (command byte + CBOR); the status byte and the CBOR answer.
    pub fn cbor(&mut self, request: &[u8]) -> Result<(u8, Vec<u8>), Failure> {
        let reports = host::request(self.cid, Command::Cbor, request)
            .ok_or_else(|| Failure::failed("the request is longer than CTAPHID allows"))?;
        for report in &reports {
            self.link.send(report).map_err(io_failure)?;
        }
        let reply = read_answer(&mut self.link, self.cid, Command::Cbor, |payload| {
            Some(payload.to_vec())
        })?;
        let (&status, body) = reply
            .split_first()
            .ok_or_else(|| Failure::failed("the key sent an empty CTAP2 answer"))?;
        Ok((status, body.to_vec()))
    }
}

fn io_failure(err: std::io::Error) -> Failure {
    Failure::failed(format!("talking to the security key failed: {err}"))
}

/// Reads the answer to a `command` request on `cid`: the first `command` message that `accept`
/// takes. Reports of other channels, stray packets and other messages are skipped; the person
/// is told once when the key waits for a touch.
fn read_answer<T>(
    link: &mut impl ReportLink,
    cid: u32,
    command: Command,
    accept: impl Fn(&[u8]) -> Option<T>,
) -> Result<T, Failure> {
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    let mut reader = AnswerReader::new(cid);
    let mut told_to_touch = false;
    loop {
        let report = next_report(link, deadline)?;
        match reader.feed(&report) {
            Ok(Some(Answer::Keepalive(KEEPALIVE_UP_NEEDED))) if !told_to_touch => {
                told_to_touch = true;
                eprintln!(
                    "fido2ctl: the key asks for your approval (touch it, or answer its prompt)"
                );
            }
            Ok(Some(Answer::Error(code))) => {
                return Err(Failure::failed(format!(
                    "the key answered CTAPHID error 0x{code:02x}"
                )))
            }
            Ok(Some(Answer::Message(answered, payload))) if answered == command.code() => {
                if let Some(answer) = accept(&payload) {
                    return Ok(answer);
                }
            }
            Ok(_) | Err(ReadError::OtherChannel(_) | ReadError::StrayContinuation) => {}
            Err(ReadError::OutOfSequence { .. } | ReadError::Short(_)) => {
                return Err(Failure::failed("the key's answer arrived out of sequence"))
            }
        }
    }
}

/// The next report from the key, within `deadline` and without a silence longer than
/// [`SILENCE_TIMEOUT`].
fn next_report(link: &mut impl ReportLink, deadline: Instant) -> Result<Report, Failure> {
    let silence_ends = Instant::now() + SILENCE_TIMEOUT;
    loop {
        if Instant::now() >= deadline {
            return Err(Failure::failed("the security key did not finish in time"));
        }
        let wait = SILENCE_TIMEOUT.min(deadline.saturating_duration_since(Instant::now()));
        match link.receive(wait).map_err(io_failure)? {
            Some(report) => return Ok(report),
            None if Instant::now() >= silence_ends => {
                return Err(Failure::failed("the security key stopped answering"))
            }
            None => {}
        }
    }
}
