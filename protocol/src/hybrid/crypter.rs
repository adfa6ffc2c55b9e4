//! The frames after the handshake: AES-256-GCM, one key a direction, the nonce a message
//! counter (8 zero bytes | BE32), no associated data. Plaintexts are padded to a multiple of
//! 32 bytes so that their length says little: zeros, then a last byte that counts the zeros.
//! (caBLE's 2021 "old construction" with a LE32 counter and AAD 0x02 is not offered: we send
//! the first frame, and initiators that speak both follow the construction they read.)

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use zeroize::Zeroizing;

use super::HybridError;

const PADDING_GRANULE: usize = 32;
/// The most padding a frame can carry: its last byte counts up to 255 zeros, plus itself.
const MAX_PADDING: usize = 256;

/// The longest ciphertext that can carry a plaintext of at most `max_plaintext` bytes,
/// whatever padding the sender chose: a longer one is refused before it is decrypted.
pub const fn max_ciphertext_len(max_plaintext: usize) -> usize {
    max_plaintext + MAX_PADDING + TAG_LEN
}
pub const TAG_LEN: usize = 16;
pub const KEY_LEN: usize = 32;

/// One direction's key and counter.
struct Direction {
    cipher: Aes256Gcm,
    counter: u32,
}

impl Direction {
    fn new(key: &[u8; KEY_LEN]) -> Self {
        Direction {
            cipher: Aes256Gcm::new_from_slice(key).expect("32-byte AES-GCM key"),
            counter: 0,
        }
    }

    /// The next nonce, or an error once the 32-bit counter is spent.
    fn next_nonce(&mut self) -> Result<[u8; 12], HybridError> {
        if self.counter == u32::MAX {
            return Err(HybridError::BadFrame("the message counter is exhausted"));
        }
        let mut nonce = [0u8; 12];
        nonce[8..].copy_from_slice(&self.counter.to_be_bytes());
        Ok(nonce)
    }
}

/// Encrypts what we send and decrypts what we receive.
pub struct Crypter {
    read: Direction,
    write: Direction,
}

impl Crypter {
    /// `read_key` decrypts the initiator's frames, `write_key` encrypts ours.
    pub fn new(read_key: &[u8; KEY_LEN], write_key: &[u8; KEY_LEN]) -> Self {
        Crypter {
            read: Direction::new(read_key),
            write: Direction::new(write_key),
        }
    }

    /// Pads and encrypts one frame.
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, HybridError> {
        let nonce = self.write.next_nonce()?;
        let padded = pad(plaintext);
        let ciphertext = self
            .write
            .cipher
            .encrypt(&Nonce::from(nonce), padded.as_slice())
            .map_err(|_| HybridError::BadFrame("the frame is too long to encrypt"))?;
        self.write.counter += 1;
        Ok(ciphertext)
    }

    /// Decrypts one frame and removes its padding. A frame that fails leaves the counter
    /// where it was (the session should end).
    pub fn decrypt(&mut self, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, HybridError> {
        if ciphertext.len() < TAG_LEN {
            return Err(HybridError::BadFrame("the frame is shorter than its tag"));
        }
        let nonce = self.read.next_nonce()?;
        let padded = Zeroizing::new(
            self.read
                .cipher
                .decrypt(
                    &Nonce::from(nonce),
                    Payload {
                        msg: ciphertext,
                        aad: &[],
                    },
                )
                .map_err(|_| HybridError::BadFrame("the frame does not decrypt"))?,
        );
        self.read.counter += 1;
        unpad(padded)
    }

    #[cfg(test)]
    fn set_counters(&mut self, read: u32, write: u32) {
        self.read.counter = read;
        self.write.counter = write;
    }
}

/// Pads to the next multiple of 32 that leaves room for the count byte (always adds 1..=32).
fn pad(plaintext: &[u8]) -> Zeroizing<Vec<u8>> {
    const _: () = assert!(PADDING_GRANULE <= MAX_PADDING);
    let padded_len = (plaintext.len() / PADDING_GRANULE + 1) * PADDING_GRANULE;
    let zeros = padded_len - plaintext.len() - 1;
    let mut padded = Zeroizing::new(Vec::with_capacity(padded_len));
    padded.extend_from_slice(plaintext);
    padded.resize(padded_len - 1, 0);
    padded.push(zeros as u8);
    padded
}

fn unpad(mut padded: Zeroizing<Vec<u8>>) -> Result<Zeroizing<Vec<u8>>, HybridError> {
    let Some(&zeros) = padded.last() else {
        return Err(HybridError::BadFrame("the frame is empty"));
    };
    let padding = usize::from(zeros) + 1;
    if padding > padded.len() {
        return Err(HybridError::BadFrame(
            "the frame's padding is longer than the frame",
        ));
    }
    let len = padded.len() - padding;
    padded.truncate(len);
    Ok(padded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ciphertext_bound_holds_for_every_plaintext_length_and_maximal_padding() {
        for len in [0, 1, 31, 32, 100, 7610] {
            let mut sender = Crypter::new(&[1; KEY_LEN], &[2; KEY_LEN]);
            let frame = sender.encrypt(&vec![7; len]).unwrap();
            assert!(frame.len() <= max_ciphertext_len(len));
            // A sender that pads with the most zeros the format allows.
            assert!(len + MAX_PADDING + TAG_LEN <= max_ciphertext_len(len));
        }
    }

    #[test]
    fn padding_lengths() {
        for (len, padded) in [
            (0, 32),
            (1, 32),
            (30, 32),
            (31, 32),
            (32, 64),
            (33, 64),
            (63, 64),
            (64, 96),
        ] {
            let p = pad(&vec![0xaa; len]);
            assert_eq!(p.len(), padded, "length {len}");
            assert_eq!(usize::from(*p.last().unwrap()), padded - len - 1);
            assert!(p[len..padded - 1].iter().all(|&b| b == 0));
            assert_eq!(&*unpad(p).unwrap(), &vec![0xaa; len][..]);
        }
    }

    #[test]
    fn bad_padding_is_an_error() {
        assert!(unpad(Zeroizing::new(vec![])).is_err());
        assert!(unpad(Zeroizing::new(vec![1])).is_err());
        assert!(unpad(Zeroizing::new(
            vec![0; 31].into_iter().chain([31]).collect()
        ))
        .is_ok());
        assert!(unpad(Zeroizing::new(
            vec![0; 31].into_iter().chain([32]).collect()
        ))
        .is_err());
        assert!(unpad(Zeroizing::new(vec![255])).is_err());
        // Unpadded lengths a peer may send (not multiples of 32) are accepted if consistent.
        assert_eq!(&*unpad(Zeroizing::new(vec![7, 0])).unwrap(), &[7]);
    }

    /// Published with webauthn-authenticator-rs (noise.rs, `encrypt_decrypt_expected`):
    /// writer key 67*32, the "new construction", two successive frames.
    #[test]
    fn matches_a_published_vector() {
        let mut alice = Crypter::new(&[42; 32], &[67; 32]);
        let message = b"The quick brown fox jumps over the lazy dog.";
        let first = "a4221bbd65ac9bd6da472f1c4a93950da19edaccbf61cd8e2febb60df5b2ae334cabad4d74321e567b0d0c470429e0cba79c29a79f6148777cd000e31daa6eb71dfe23c59a96b2fe48c62a21208821ec";
        let second = "15ad06403f68fced802b3709ac2e9ab5ed409171c7fc23c0c0ad537297b70019042e73321bdd4d038fe023741960fc824382da5387d93b4232727b89fc86ac089bc295ba143a867968443be8540673da";
        assert_eq!(hex::encode(alice.encrypt(message).unwrap()), first);
        assert_eq!(hex::encode(alice.encrypt(message).unwrap()), second);
        let mut bob = Crypter::new(&[67; 32], &[42; 32]);
        assert_eq!(
            &*bob.decrypt(&hex::decode(first).unwrap()).unwrap(),
            message
        );
        assert_eq!(
            &*bob.decrypt(&hex::decode(second).unwrap()).unwrap(),
            message
        );
    }

    #[test]
    fn nonce_is_the_big_endian_counter() {
        let mut writer = Direction::new(&[1; 32]);
        writer.counter = 0x01020304;
        assert_eq!(
            writer.next_nonce().unwrap(),
            [0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]
        );
    }

    #[test]
    fn replayed_reordered_and_tampered_frames_fail() {
        let mut alice = Crypter::new(&[1; 32], &[2; 32]);
        let mut bob = Crypter::new(&[2; 32], &[1; 32]);
        let one = alice.encrypt(b"one").unwrap();
        let two = alice.encrypt(b"two").unwrap();
        assert!(bob.decrypt(&two).is_err(), "out of order");
        assert_eq!(&*bob.decrypt(&one).unwrap(), b"one");
        assert!(bob.decrypt(&one).is_err(), "replay");
        let mut bad = two.clone();
        bad[3] ^= 0x80;
        assert!(bob.decrypt(&bad).is_err(), "tampered");
        assert_eq!(&*bob.decrypt(&two).unwrap(), b"two");
        for len in 0..TAG_LEN {
            assert!(bob.decrypt(&vec![0; len]).is_err());
        }
        // Our own direction's key does not open our frames.
        let mut mirror = Crypter::new(&[1; 32], &[2; 32]);
        assert!(mirror.decrypt(&alice.encrypt(b"x").unwrap()).is_err());
    }

    #[test]
    fn a_spent_counter_refuses_to_encrypt() {
        let mut alice = Crypter::new(&[1; 32], &[2; 32]);
        alice.set_counters(u32::MAX, u32::MAX - 1);
        assert!(alice.encrypt(b"last").is_ok());
        assert_eq!(
            alice.encrypt(b"one too many").unwrap_err(),
            HybridError::BadFrame("the message counter is exhausted")
        );
        assert!(alice.decrypt(&[0; 32]).is_err());
    }
}
