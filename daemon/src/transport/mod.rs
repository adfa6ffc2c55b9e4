//! Transports that carry CTAPHID reports between a platform and the daemon.

pub mod ctaphid_session;
pub mod udp;
pub mod uhid;
mod uhid_abi;

use protocol::ctaphid::Report;
use protocol::Origin;

/// A source and sink of 64-byte CTAPHID reports.
#[allow(async_fn_in_trait)] // used with concrete types on one thread only
pub trait ReportTransport {
    /// The next report from the platform (possibly malformed: the engine judges it).
    async fn recv(&mut self) -> std::io::Result<Vec<u8>>;
    /// Sends one report to the platform.
    async fn send(&mut self, report: &Report) -> std::io::Result<()>;
    /// Where the last report on channel `cid` came from: the unit the authenticator binds
    /// multi-command state to (see `protocol::origin`).
    fn origin(&self, cid: u32) -> Origin;
}
