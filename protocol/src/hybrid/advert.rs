//! The BLE advert: 20 bytes of service data that tell the initiator where our tunnel is.
//!
//! Plaintext ("EID", 16 bytes): 0x00 | nonce (10 random bytes) | routing ID (3 bytes, from the
//! tunnel server) | tunnel domain id (LE16). On air: AES-256 of that single block under the
//! first half of the EID key, then the first 4 bytes of HMAC-SHA256 over the ciphertext under
//! the second half. Only the holder of the QR secret can read or forge it.

use aes::cipher::{BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use aes::Aes256;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::keys::EID_KEY_LEN;
use super::tunnel_domain;
use super::HybridError;

/// The 16-bit service UUID the advert is sent under (Chrome also listens on 0xFDE2).
pub const SERVICE_UUID16: u16 = 0xFFF9;
/// Service data length: one AES block and a 4-byte tag. Chrome ignores anything else.
pub const ADVERT_LEN: usize = 20;
pub const NONCE_LEN: usize = 10;
pub const ROUTING_ID_LEN: usize = 3;
const TAG_LEN: usize = 4;

/// The advert plaintext.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Eid {
    pub nonce: [u8; NONCE_LEN],
    pub routing_id: [u8; ROUTING_ID_LEN],
    pub tunnel_domain: u16,
}

impl Eid {
    /// The 16-byte plaintext block (also the salt of the PSK).
    pub fn to_bytes(&self) -> [u8; 16] {
        let mut block = [0u8; 16];
        block[1..11].copy_from_slice(&self.nonce);
        block[11..14].copy_from_slice(&self.routing_id);
        block[14..16].copy_from_slice(&self.tunnel_domain.to_le_bytes());
        block
    }

    fn from_bytes(block: &[u8; 16]) -> Result<Self, HybridError> {
        if block[0] != 0 {
            return Err(HybridError::BadAdvert("its reserved byte is not zero"));
        }
        let eid = Eid {
            nonce: block[1..11].try_into().expect("10 bytes"),
            routing_id: block[11..14].try_into().expect("3 bytes"),
            tunnel_domain: u16::from_le_bytes([block[14], block[15]]),
        };
        tunnel_domain::domain_name(eid.tunnel_domain)
            .map_err(|_| HybridError::BadAdvert("it names an unknown tunnel server"))?;
        Ok(eid)
    }

    /// The 20 bytes to advertise.
    pub fn encrypt(&self, eid_key: &[u8; EID_KEY_LEN]) -> [u8; ADVERT_LEN] {
        let (encryption_key, signing_key) = eid_key.split_at(32);
        let cipher = Aes256::new_from_slice(encryption_key).expect("32-byte AES key");
        let mut block = self.to_bytes().into();
        cipher.encrypt_block(&mut block);
        let mut advert = [0u8; ADVERT_LEN];
        advert[..16].copy_from_slice(&block);
        let tag = tag(signing_key, &advert[..16]);
        advert[16..].copy_from_slice(&tag);
        advert
    }

    /// Reads an advert made with `eid_key` (what an initiator does; tests and tools use it).
    pub fn decrypt(advert: &[u8], eid_key: &[u8; EID_KEY_LEN]) -> Result<Self, HybridError> {
        let advert: &[u8; ADVERT_LEN] = advert
            .try_into()
            .map_err(|_| HybridError::BadAdvert("it is not 20 bytes long"))?;
        let (encryption_key, signing_key) = eid_key.split_at(32);
        let expected = tag(signing_key, &advert[..16]);
        if !bool::from(expected.ct_eq(&advert[16..])) {
            return Err(HybridError::BadAdvert(
                "its tag does not match (another session's advert)",
            ));
        }
        let cipher = Aes256::new_from_slice(encryption_key).expect("32-byte AES key");
        let mut block: [u8; 16] = advert[..16].try_into().expect("16 bytes");
        let mut array = block.into();
        cipher.decrypt_block(&mut array);
        block = array.into();
        Eid::from_bytes(&block)
    }
}

fn tag(signing_key: &[u8], ciphertext: &[u8]) -> [u8; TAG_LEN] {
    let mut mac = Hmac::<Sha256>::new_from_slice(signing_key).expect("HMAC takes any key length");
    mac.update(ciphertext);
    let full = mac.finalize().into_bytes();
    full[..TAG_LEN].try_into().expect("4 bytes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hybrid::keys;

    fn vector_key() -> zeroize::Zeroizing<[u8; EID_KEY_LEN]> {
        let secret: [u8; 16] = hex::decode("01fea6f7c4807493dc256f9eacf756c9")
            .unwrap()
            .try_into()
            .unwrap();
        keys::eid_key(&secret)
    }

    const VECTOR_ADVERT: &str = "027d84ed6076b55e247c830f82955e4d126e7f43";
    const VECTOR_PLAINTEXT: &str = "008bb5c5c9a44d913a5eb20265550000";

    #[test]
    fn fact_sheet_vector_decrypts() {
        let advert = hex::decode(VECTOR_ADVERT).unwrap();
        let eid = Eid::decrypt(&advert, &vector_key()).unwrap();
        assert_eq!(hex::encode(eid.to_bytes()), VECTOR_PLAINTEXT);
        assert_eq!(eid.routing_id, [0x02, 0x65, 0x55]);
        assert_eq!(eid.tunnel_domain, 0);
    }

    #[test]
    fn fact_sheet_vector_encrypts() {
        let plaintext = hex::decode(VECTOR_PLAINTEXT).unwrap();
        let eid = Eid {
            nonce: plaintext[1..11].try_into().unwrap(),
            routing_id: plaintext[11..14].try_into().unwrap(),
            tunnel_domain: 0,
        };
        assert_eq!(hex::encode(eid.encrypt(&vector_key())), VECTOR_ADVERT);
    }

    #[test]
    fn plaintext_layout() {
        let eid = Eid {
            nonce: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
            routing_id: [0xaa, 0xbb, 0xcc],
            tunnel_domain: 0x1234,
        };
        assert_eq!(
            eid.to_bytes(),
            [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0xaa, 0xbb, 0xcc, 0x34, 0x12]
        );
    }

    #[test]
    fn malformed_adverts_are_errors() {
        let key = vector_key();
        let good = hex::decode(VECTOR_ADVERT).unwrap();
        for len in [0, 1, 16, 19, 21, 31] {
            let advert = vec![0u8; len];
            assert!(matches!(
                Eid::decrypt(&advert, &key),
                Err(HybridError::BadAdvert(_))
            ));
        }
        for i in 0..ADVERT_LEN {
            let mut advert = good.clone();
            advert[i] ^= 0x01;
            assert!(
                matches!(Eid::decrypt(&advert, &key), Err(HybridError::BadAdvert(_))),
                "flipped byte {i}"
            );
        }
        let other_key = keys::eid_key(&[0; 16]);
        assert!(Eid::decrypt(&good, &other_key).is_err());
    }

    #[test]
    fn reserved_byte_and_domain_are_checked_after_the_tag() {
        let key = vector_key();
        // A correctly tagged block whose plaintext has a non-zero reserved byte.
        let mut block = [0u8; 16];
        block[0] = 1;
        let cipher = Aes256::new_from_slice(&key[..32]).unwrap();
        let mut array = block.into();
        cipher.encrypt_block(&mut array);
        let mut advert = [0u8; ADVERT_LEN];
        advert[..16].copy_from_slice(&array);
        let t = tag(&key[32..], &advert[..16]);
        advert[16..].copy_from_slice(&t);
        assert_eq!(
            Eid::decrypt(&advert, &key).unwrap_err(),
            HybridError::BadAdvert("its reserved byte is not zero")
        );
        // Domain id 2 is unassigned.
        let eid = Eid {
            nonce: [0; 10],
            routing_id: [0; 3],
            tunnel_domain: 2,
        };
        assert_eq!(
            Eid::decrypt(&eid.encrypt(&key), &key).unwrap_err(),
            HybridError::BadAdvert("it names an unknown tunnel server")
        );
    }
}
