//! CTAPHID, the USB HID transport of CTAP (CTAP 2.1 §11.2), as a sans-IO state machine.
//!
//! The daemon hands every output report of the host to [`CtapHid::receive`] and acts on the
//! [`Event`]s it returns: it sends the reports, passes complete CTAP1/CTAP2 requests to the
//! authenticator and the authenticator's answers back through [`CtapHid::respond`]. Time only
//! enters as `now_ms` arguments, and [`CtapHid::next_deadline`] tells the daemon when to call
//! [`CtapHid::poll_timeouts`], so an idle daemon sleeps.
//!
//! - `packet`: the two packet layouts and the fragmentation of a message into reports.
//! - `assembly`: the reassembly of one request from its packets.
//! - `channels`: the channel identifiers handed out by CTAPHID_INIT.
//! - `codes`: the command, error and status numbers on the wire.
//! - `engine`: [`CtapHid`], one transaction at a time over all channels.
//! - `host`: the other side, for platforms: INIT, requests, and reading the device's answers.

mod assembly;
mod channels;
mod codes;
mod engine;
pub mod host;
mod packet;

pub use channels::MAX_CHANNELS;
pub use codes::{
    Command, ErrorCode, KeepaliveStatus, CAPABILITY_CBOR, CAPABILITY_NMSG, CAPABILITY_WINK,
    PROTOCOL_VERSION,
};
pub use engine::{CtapHid, DeviceVersion, Event, RequestKind};
pub use packet::{fragment_message, CONT_DATA_LEN, INIT_DATA_LEN};

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
