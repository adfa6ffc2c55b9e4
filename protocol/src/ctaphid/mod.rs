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

pub use assembly::MESSAGE_TIMEOUT_MS;
pub use channels::MAX_CHANNELS;
pub use codes::{
    Command, ErrorCode, KeepaliveStatus, CAPABILITY_CBOR, CAPABILITY_NMSG, CAPABILITY_WINK,
    PROTOCOL_VERSION,
};
pub use engine::{CtapHid, DeviceVersion, Event, RequestKind};
pub use packet::{
    fragment_message, Report, BROADCAST_CID, CONT_DATA_LEN, INIT_DATA_LEN, MAX_MESSAGE_LEN,
    REPORT_LEN,
};
