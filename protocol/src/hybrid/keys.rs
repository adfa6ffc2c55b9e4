//! The keys both sides derive from the QR secret: HKDF-SHA256 with `info` = the derivation
//! type as a little-endian u32.

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::qr::QR_SECRET_LEN;

/// HKDF `info` values of caBLE v2 (4..=6 belong to linking, which we do not offer).
#[derive(Debug, Clone, Copy)]
#[repr(u32)]
enum Derivation {
    EidKey = 1,
    TunnelId = 2,
    Psk = 3,
}

/// The advert key: the first half encrypts the EID (AES-256), the second signs it (HMAC).
pub const EID_KEY_LEN: usize = 64;
pub const TUNNEL_ID_LEN: usize = 16;
pub const PSK_LEN: usize = 32;

type QrSecret = [u8; QR_SECRET_LEN];

fn derive<const N: usize>(
    qr_secret: &QrSecret,
    salt: &[u8],
    what: Derivation,
) -> Zeroizing<[u8; N]> {
    let mut out = Zeroizing::new([0u8; N]);
    Hkdf::<Sha256>::new(Some(salt), qr_secret)
        .expand(&(what as u32).to_le_bytes(), out.as_mut_slice())
        // Every length here is far below HKDF-SHA256's 255 * 32 bytes.
        .expect("HKDF output length");
    out
}

/// The key that encrypts and authenticates the BLE advert.
pub fn eid_key(qr_secret: &QrSecret) -> Zeroizing<[u8; EID_KEY_LEN]> {
    derive(qr_secret, &[], Derivation::EidKey)
}

/// The tunnel ID: both sides name the same tunnel with it (not secret from the tunnel server).
pub fn tunnel_id(qr_secret: &QrSecret) -> [u8; TUNNEL_ID_LEN] {
    *derive(qr_secret, &[], Derivation::TunnelId)
}

/// The Noise pre-shared key, bound to this session's advert plaintext.
pub fn psk(qr_secret: &QrSecret, eid_plaintext: &[u8; 16]) -> Zeroizing<[u8; PSK_LEN]> {
    derive(qr_secret, eid_plaintext, Derivation::Psk)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex<const N: usize>(text: &str) -> [u8; N] {
        hex::decode(text).unwrap().try_into().unwrap()
    }

    #[test]
    fn tunnel_id_of_the_fact_sheet_vector() {
        let secret = unhex("01fea6f7c4807493dc256f9eacf756c9");
        assert_eq!(
            hex::encode_upper(tunnel_id(&secret)),
            "367CBBF5F5085DF4098476AFE4B9B1D2"
        );
    }

    #[test]
    fn derivations_are_distinct_and_salted() {
        let secret = [9u8; 16];
        let eid = eid_key(&secret);
        let id = tunnel_id(&secret);
        assert_ne!(&eid[..16], &id[..]);
        let a = psk(&secret, &[0; 16]);
        let b = psk(&secret, &[1; 16]);
        assert_ne!(*a, *b);
        assert_ne!(&a[..], &eid[..32]);
    }

    #[test]
    fn derivation_matches_a_direct_hkdf() {
        // RFC 5869 with salt = empty (all-zero key), info = 01 00 00 00.
        let secret = [0x42u8; 16];
        let prk = {
            use hmac::{KeyInit, Mac};
            let mut mac = hmac::Hmac::<Sha256>::new_from_slice(&[0u8; 32]).unwrap();
            mac.update(&secret);
            mac.finalize().into_bytes()
        };
        let t1 = {
            use hmac::{KeyInit, Mac};
            let mut mac = hmac::Hmac::<Sha256>::new_from_slice(&prk).unwrap();
            mac.update(&[1, 0, 0, 0, 1]);
            mac.finalize().into_bytes()
        };
        assert_eq!(&eid_key(&secret)[..32], &t1[..]);
    }
}
