//! CTAPHID over UDP on the loopback interface, one 64-byte report per datagram: the convention
//! of the SoloKeys simulator, so existing development tools can drive fido2d.
//!
//! Answers go to the source address of the datagrams that used the report's channel, so several
//! clients can talk at once, each on its own channel.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};

use protocol::ctaphid::{Report, BROADCAST_CID, MAX_CHANNELS};
use tokio::net::UdpSocket;

use super::ReportTransport;
use protocol::origin::udp_link;
use protocol::Origin;

pub struct UdpTransport {
    socket: UdpSocket,
    /// Who last spoke on each channel. Bounded like the engine's channel table.
    peers: HashMap<u32, SocketAddr>,
    /// Who sent the last datagram: CTAPHID_INIT replies on the broadcast channel go there.
    last_peer: Option<SocketAddr>,
}

impl UdpTransport {
    /// Binds 127.0.0.1:`port` (0 for any free port). Never another interface: this transport
    /// has no access control beyond "a local program".
    pub async fn bind(port: u16) -> anyhow::Result<Self> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let socket = UdpSocket::bind(addr)
            .await
            .map_err(|err| anyhow::anyhow!("cannot listen on UDP {addr}: {err}"))?;
        Ok(UdpTransport {
            socket,
            peers: HashMap::new(),
            last_peer: None,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.socket
            .local_addr()
            .expect("a bound socket has an address")
    }
}

fn channel_of(report: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(report.get(..4)?.try_into().ok()?))
}

/// Whether 127.0.0.1:`port` is free: what a start checks before it touches the state
/// directory (the socket is closed again; `bind` takes the port for good).
pub fn check_port(port: u16) -> anyhow::Result<()> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    std::net::UdpSocket::bind(addr)
        .map(drop)
        .map_err(|err| anyhow::anyhow!("cannot listen on UDP {addr}: {err}"))
}

impl ReportTransport for UdpTransport {
    async fn recv(&mut self) -> io::Result<Vec<u8>> {
        // One byte more than a report, so an oversized datagram is seen as such, not cut.
        let mut buf = [0u8; 65];
        let (len, peer) = self.socket.recv_from(&mut buf).await?;
        if let Some(cid) = channel_of(&buf[..len]) {
            if self.peers.len() >= MAX_CHANNELS && !self.peers.contains_key(&cid) {
                self.peers.clear();
            }
            self.peers.insert(cid, peer);
        }
        self.last_peer = Some(peer);
        Ok(buf[..len].to_vec())
    }

    async fn send(&mut self, report: &Report) -> io::Result<()> {
        let peer = match channel_of(report) {
            Some(BROADCAST_CID) | None => self.last_peer,
            Some(cid) => self.peers.get(&cid).copied().or(self.last_peer),
        };
        if let Some(peer) = peer {
            self.socket.send_to(report, peer).await?;
        }
        Ok(())
    }

    /// Any local program can write any channel number: the peer's address is part of the
    /// origin, so a request on another peer's channel is never that peer's continuation.
    fn origin(&self, cid: u32) -> Origin {
        let peer = self.peers.get(&cid).copied().or(self.last_peer);
        let link = match peer {
            Some(SocketAddr::V4(addr)) => udp_link(addr.ip().octets(), addr.port()),
            // Bound to 127.0.0.1: no IPv6 peer can reach the socket.
            Some(SocketAddr::V6(_)) | None => 0,
        };
        Origin::udp(link, cid)
    }
}
