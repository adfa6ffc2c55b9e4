//! Tunnel server names. The advert carries a 16-bit domain id instead of a host name:
//! ids below 256 are assigned by hand, higher ids name a host derived from a hash, so anyone
//! can run a tunnel server without a registry.

use sha2::{Digest, Sha256};

use super::keys::TUNNEL_ID_LEN;
use super::HybridError;

/// The hand-assigned tunnel servers, by id: Google's, then Apple's.
pub const ASSIGNED_DOMAINS: [&str; 2] = ["cable.ua5v.com", "cable.auth.com"];
/// Ids from here on are hashed names.
const FIRST_HASHED_ID: u16 = 256;
const HASH_LABEL: &[u8] = b"caBLEv2 tunnel server domain";
const TLDS: [&str; 4] = ["com", "org", "net", "info"];
const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// The host name of tunnel server `id`.
pub fn domain_name(id: u16) -> Result<String, HybridError> {
    if id < FIRST_HASHED_ID {
        return ASSIGNED_DOMAINS
            .get(usize::from(id))
            .map(|name| (*name).to_owned())
            .ok_or(HybridError::UnknownTunnelDomain(id));
    }
    let mut hasher = Sha256::new();
    hasher.update(HASH_LABEL);
    hasher.update(id.to_le_bytes());
    hasher.update([0u8]);
    let digest = hasher.finalize();
    let mut v = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
    let tld = TLDS[(v & 3) as usize];
    v >>= 2;
    let mut name = String::from("cable.");
    while v != 0 {
        name.push(char::from(BASE32[(v & 31) as usize]));
        v >>= 5;
    }
    name.push('.');
    name.push_str(tld);
    Ok(name)
}

/// Whether an initiator that knows `known_domains` assigned domains (QR key 2) can find
/// tunnel server `id`. Hashed names need no list.
pub fn initiator_knows(id: u16, known_domains: u64) -> bool {
    id >= FIRST_HASHED_ID || u64::from(id) < known_domains.min(ASSIGNED_DOMAINS.len() as u64)
}

/// The path on which the authenticator opens a new tunnel.
pub fn new_tunnel_path(tunnel_id: &[u8; TUNNEL_ID_LEN]) -> String {
    format!("/cable/new/{}", hex_upper(tunnel_id))
}

/// The path on which the initiator joins the tunnel (for tests and tools).
pub fn connect_path(routing_id: &[u8; 3], tunnel_id: &[u8; TUNNEL_ID_LEN]) -> String {
    format!(
        "/cable/connect/{}/{}",
        hex_upper(routing_id),
        hex_upper(tunnel_id)
    )
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assigned_domains() {
        assert_eq!(domain_name(0).unwrap(), "cable.ua5v.com");
        assert_eq!(domain_name(1).unwrap(), "cable.auth.com");
        for id in [2, 3, 100, 255] {
            assert_eq!(
                domain_name(id).unwrap_err(),
                HybridError::UnknownTunnelDomain(id)
            );
        }
    }

    #[test]
    fn hashed_domains_of_the_fact_sheet() {
        assert_eq!(domain_name(266).unwrap(), "cable.wufkweyy3uaxb.com");
        assert_eq!(domain_name(0xF980).unwrap(), "cable.my4kstlhndi4c.net");
    }

    #[test]
    fn every_hashed_id_gives_a_plausible_host_name() {
        for id in (256..=u16::MAX).step_by(251) {
            let name = domain_name(id).unwrap();
            assert!(name.starts_with("cable."), "{name}");
            let label = name.split('.').nth(1).unwrap();
            assert!(!label.is_empty() && label.len() <= 13, "{name}");
            assert!(label.bytes().all(|b| BASE32.contains(&b)), "{name}");
        }
    }

    #[test]
    fn apple_only_for_initiators_that_know_it() {
        assert!(initiator_knows(0, 1));
        assert!(!initiator_knows(1, 1));
        assert!(initiator_knows(1, 2));
        assert!(!initiator_knows(0, 0));
        assert!(!initiator_knows(2, 100));
        assert!(initiator_knows(300, 0));
    }

    #[test]
    fn tunnel_paths() {
        let id: [u8; 16] = hex::decode("367CBBF5F5085DF4098476AFE4B9B1D2")
            .unwrap()
            .try_into()
            .unwrap();
        assert_eq!(
            new_tunnel_path(&id),
            "/cable/new/367CBBF5F5085DF4098476AFE4B9B1D2"
        );
        assert_eq!(
            connect_path(&[0x02, 0x65, 0x55], &id),
            "/cable/connect/026555/367CBBF5F5085DF4098476AFE4B9B1D2"
        );
    }
}
