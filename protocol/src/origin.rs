//! Where a request came from: the unit of isolation of the authenticator.
//!
//! A hardware key has one USB port, but many programs talk to it at once, each on its own
//! CTAPHID channel. fido2d has more doors still: the uhid key, the UDP test transport (one
//! socket, many peers) and hybrid sessions with other computers. Every request carries its
//! [`Origin`], and everything that spans commands (getNextAssertion, the credential management
//! enumerations, a large-blob write, the pinUvAuthToken in use) belongs to the origin that
//! began it: see [`crate::ctap2::state`] for the rule.
//!
//! Two requests have the same origin only when they come through the same transport, the
//! same link of that transport (the same UDP peer address, the same hybrid session) and the
//! same CTAPHID channel. A program that knows another's channel number still has another
//! link on UDP; on uhid the kernel gives every opener the same node, so there the channel is
//! the unit, as on a hardware key.

use crate::hybrid::qr::RequestType;

/// The way a request reached the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// The virtual USB key (`/dev/uhid`, read by every local program through hidraw).
    Usb,
    /// The loopback UDP test transport.
    Udp,
    /// Another computer through a hybrid (caBLE v2) tunnel, for the operation its QR code
    /// asked for.
    Hybrid(RequestType),
}

/// One CTAPHID channel of one link of one transport (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Origin {
    pub transport: Transport,
    /// Tells apart the peers of one transport: the UDP peer's address, the hybrid session's
    /// number; 0 on uhid, which has one link.
    pub link: u64,
    /// The CTAPHID channel (0 for hybrid, which has none).
    pub channel: u32,
}

impl Origin {
    /// A channel of the uhid key.
    pub const fn usb(channel: u32) -> Self {
        Origin {
            transport: Transport::Usb,
            link: 0,
            channel,
        }
    }

    /// A channel of one UDP peer (`peer` as [`udp_link`] encodes it).
    pub const fn udp(peer: u64, channel: u32) -> Self {
        Origin {
            transport: Transport::Udp,
            link: peer,
            channel,
        }
    }

    /// A hybrid session, numbered by the daemon, serving `request` (from its QR code).
    pub const fn hybrid(session: u64, request: RequestType) -> Self {
        Origin {
            transport: Transport::Hybrid(request),
            link: session,
            channel: 0,
        }
    }

    /// Whether this is another computer, through the hybrid transport.
    pub fn is_hybrid(&self) -> bool {
        matches!(self.transport, Transport::Hybrid(_))
    }
}

/// A UDP peer's IPv4 address and port as a link number, without loss.
pub fn udp_link(ip: [u8; 4], port: u16) -> u64 {
    (u64::from(u32::from_be_bytes(ip)) << 16) | u64::from(port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_differ_by_transport_link_and_channel() {
        let a = Origin::udp(udp_link([127, 0, 0, 1], 4000), 7);
        assert_eq!(a, Origin::udp(udp_link([127, 0, 0, 1], 4000), 7));
        assert_ne!(a, Origin::udp(udp_link([127, 0, 0, 1], 4001), 7));
        assert_ne!(a, Origin::udp(udp_link([127, 0, 0, 2], 4000), 7));
        assert_ne!(a, Origin::udp(udp_link([127, 0, 0, 1], 4000), 8));
        assert_ne!(Origin::usb(7), Origin::udp(0, 7));
        assert_ne!(
            Origin::hybrid(1, RequestType::GetAssertion),
            Origin::hybrid(2, RequestType::GetAssertion)
        );
        assert!(Origin::hybrid(1, RequestType::MakeCredential).is_hybrid());
        assert!(!Origin::usb(1).is_hybrid());
    }
}
