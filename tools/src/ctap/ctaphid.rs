//! The host side of CTAPHID (CTAP 2.1 §11.2): a channel from CTAPHID_INIT, then one request and
//! its response at a time, with KEEPALIVE reports shown to the person while the key waits.

use std::time::{Duration, Instant};

use protocol::ctaphid::{
    fragment_message, Command, Report, BROADCAST_CID, CONT_DATA_LEN, INIT_DATA_LEN,
};

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
        let reply = transact(&mut link, BROADCAST_CID, Command::Init, &nonce, |reply| {
            reply.starts_with(&nonce)
        })?;
        // nonce (8) | channel (4) | protocol version | major | minor | build | capabilities
        let cid = reply
            .get(8..12)
            .map(|b| u32::from_be_bytes(b.try_into().expect("4 bytes")))
            .ok_or_else(|| Failure::failed("the key's CTAPHID_INIT answer is too short"))?;
        Ok(CtapHidClient { link, cid })
    }

    /// A CTAP2 request (command byte + CBOR); the status byte and the CBOR answer.
    pub fn cbor(&mut self, request: &[u8]) -> Result<(u8, Vec<u8>), Failure> {
        let reply = transact(&mut self.link, self.cid, Command::Cbor, request, |_| true)?;
        let (&status, body) = reply
            .split_first()
            .ok_or_else(|| Failure::failed("the key sent an empty CTAP2 answer"))?;
        Ok((status, body.to_vec()))
    }
}

fn io_failure(err: std::io::Error) -> Failure {
    Failure::failed(format!("talking to the security key failed: {err}"))
}

/// Sends one message and reads the answer on `cid`, skipping reports of other channels and
/// answers that `is_ours` rejects (another client's INIT reply on the broadcast channel).
fn transact(
    link: &mut impl ReportLink,
    cid: u32,
    command: Command,
    payload: &[u8],
    is_ours: impl Fn(&[u8]) -> bool,
) -> Result<Vec<u8>, Failure> {
    let reports = fragment_message(cid, command, payload)
        .ok_or_else(|| Failure::failed("the request is longer than CTAPHID allows"))?;
    for report in &reports {
        link.send(report).map_err(io_failure)?;
    }
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    let mut told_to_touch = false;
    loop {
        let report = next_report(link, cid, deadline)?;
        let kind = report[4];
        if kind & 0x80 == 0 {
            continue; // a stray continuation packet
        }
        let length = usize::from(u16::from_be_bytes([report[5], report[6]]));
        match Command::from_code(kind & 0x7f) {
            Some(Command::Keepalive) if report[7] == KEEPALIVE_UP_NEEDED && !told_to_touch => {
                told_to_touch = true;
                eprintln!(
                    "fido2ctl: the key asks for your approval (touch it, or answer its prompt)"
                );
            }
            Some(Command::Keepalive) => {}
            Some(Command::Error) => {
                return Err(Failure::failed(format!(
                    "the key answered CTAPHID error 0x{:02x}",
                    report[7]
                )))
            }
            Some(answer) if answer == command => {
                let message = reassemble(link, cid, &report, length, deadline)?;
                if is_ours(&message) {
                    return Ok(message);
                }
            }
            _ => {}
        }
    }
}

fn next_report(link: &mut impl ReportLink, cid: u32, deadline: Instant) -> Result<Report, Failure> {
    loop {
        let silence_ends = Instant::now() + SILENCE_TIMEOUT;
        if Instant::now() >= deadline {
            return Err(Failure::failed("the security key did not finish in time"));
        }
        let wait = SILENCE_TIMEOUT.min(deadline.saturating_duration_since(Instant::now()));
        match link.receive(wait).map_err(io_failure)? {
            Some(report) if report[..4] == cid.to_be_bytes() => return Ok(report),
            Some(_) => {}
            None if Instant::now() >= silence_ends => {
                return Err(Failure::failed("the security key stopped answering"))
            }
            None => {}
        }
    }
}

fn reassemble(
    link: &mut impl ReportLink,
    cid: u32,
    first: &Report,
    length: usize,
    deadline: Instant,
) -> Result<Vec<u8>, Failure> {
    let mut message = first[7..7 + length.min(INIT_DATA_LEN)].to_vec();
    let mut seq = 0u8;
    while message.len() < length {
        let report = next_report(link, cid, deadline)?;
        if report[4] != seq {
            return Err(Failure::failed("the key's answer arrived out of sequence"));
        }
        let take = (length - message.len()).min(CONT_DATA_LEN);
        message.extend_from_slice(&report[5..5 + take]);
        seq += 1;
    }
    Ok(message)
}
