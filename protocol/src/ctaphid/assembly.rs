//! The reassembly of one request message from its initialization packet and continuation
//! packets (§11.2.4, §11.2.5.4).

use super::codes::Command;
use super::packet::MAX_MESSAGE_LEN;

/// How long the engine waits for the next packet of a half-received message before it drops the
/// message and answers ERR_MSG_TIMEOUT.
///
/// The spec asks for a timeout without a number (§11.2.5.2). 500 ms is the per-packet value of
/// the U2F HID header (`U2FHID_FRAME_TIMEOUT`), and what ChromeOS u2fd (`kU2fHidTimeoutMs`) and
/// RIOT (`CTAP_HID_TRANSACTION_TIMEOUT_MS`) use; trussed usbd-ctaphid uses 550 ms. OpenSK's
/// 100 ms is meant for firmware, where nothing delays a host's back-to-back writes; a daemon
/// behind uhid shares the CPU with the host, so the longer value is the safer one. A crashed
/// client still only blocks the other channels for half a second.
pub const MESSAGE_TIMEOUT_MS: u64 = 500;

/// A message whose initialization packet has arrived, collecting its continuation packets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Assembly {
    pub cid: u32,
    pub command: Command,
    message_len: usize,
    payload: Vec<u8>,
    next_seq: u8,
    /// When the message is dropped unless its next packet has arrived (§11.2.5.2).
    pub deadline_ms: u64,
}

/// A continuation packet whose sequence number is not the next one (§11.2.5.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OutOfSequence;

impl Assembly {
    /// Starts from the initialization packet's data, of which only the first `message_len` bytes
    /// belong to the message. `message_len` is clamped to [`MAX_MESSAGE_LEN`]: the engine has
    /// already refused longer messages, and the clamp keeps the buffer bounded regardless.
    pub fn start(cid: u32, command: Command, message_len: usize, data: &[u8], now_ms: u64) -> Self {
        let message_len = message_len.min(MAX_MESSAGE_LEN);
        let mut assembly = Self {
            cid,
            command,
            message_len,
            payload: Vec::with_capacity(message_len),
            next_seq: 0,
            deadline_ms: 0,
        };
        assembly.append(data, now_ms);
        assembly
    }

    /// Adds a continuation packet's data, which must carry the next sequence number.
    pub fn continue_with(
        &mut self,
        seq: u8,
        data: &[u8],
        now_ms: u64,
    ) -> Result<(), OutOfSequence> {
        if seq != self.next_seq {
            return Err(OutOfSequence);
        }
        // Wrapping is harmless: a message of at most MAX_MESSAGE_LEN is complete by seq 0x7f.
        self.next_seq = self.next_seq.wrapping_add(1);
        self.append(data, now_ms);
        Ok(())
    }

    pub fn is_complete(&self) -> bool {
        self.payload.len() >= self.message_len
    }

    pub fn into_payload(self) -> Vec<u8> {
        self.payload
    }

    fn append(&mut self, data: &[u8], now_ms: u64) {
        let missing = self.message_len.saturating_sub(self.payload.len());
        self.payload.extend(data.iter().take(missing).copied());
        self.deadline_ms = now_ms.saturating_add(MESSAGE_TIMEOUT_MS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_message_is_complete_from_its_first_packet_and_drops_the_padding() {
        let assembly = Assembly::start(7, Command::Ping, 3, &[1, 2, 3, 0, 0, 0], 0);
        assert!(assembly.is_complete());
        assert_eq!(assembly.into_payload(), vec![1, 2, 3]);
    }

    #[test]
    fn an_empty_message_is_complete_at_once() {
        let assembly = Assembly::start(7, Command::Ping, 0, &[9; 57], 0);
        assert!(assembly.is_complete());
        assert_eq!(assembly.into_payload(), Vec::<u8>::new());
    }

    #[test]
    fn continuation_packets_must_come_in_order_from_zero() {
        let mut assembly = Assembly::start(7, Command::Cbor, 57 + 59 + 1, &[1; 57], 0);
        assert_eq!(assembly.continue_with(1, &[2; 59], 0), Err(OutOfSequence));
        assert_eq!(assembly.continue_with(0, &[2; 59], 0), Ok(()));
        assert!(!assembly.is_complete());
        assert_eq!(assembly.continue_with(0, &[3; 59], 0), Err(OutOfSequence));
        assert_eq!(assembly.continue_with(1, &[3; 59], 0), Ok(()));
        assert!(assembly.is_complete());
        let payload = assembly.into_payload();
        assert_eq!(payload.len(), 117);
        assert_eq!((payload[56], payload[57], payload[116]), (1, 2, 3));
    }

    #[test]
    fn every_packet_pushes_the_deadline_back() {
        let mut assembly = Assembly::start(7, Command::Cbor, 200, &[0; 57], 1_000);
        assert_eq!(assembly.deadline_ms, 1_000 + MESSAGE_TIMEOUT_MS);
        assembly.continue_with(0, &[0; 59], 1_300).unwrap();
        assert_eq!(assembly.deadline_ms, 1_300 + MESSAGE_TIMEOUT_MS);
        let late = Assembly::start(7, Command::Cbor, 200, &[0; 57], u64::MAX);
        assert_eq!(late.deadline_ms, u64::MAX);
    }

    #[test]
    fn the_declared_length_is_bounded() {
        let assembly = Assembly::start(7, Command::Cbor, usize::MAX, &[0; 57], 0);
        assert_eq!(assembly.message_len, MAX_MESSAGE_LEN);
    }
}
