//! hmac-secret's outputs (CTAP 2.1 §12.5): the salts a platform sent, decrypted, applied to
//! each credential's CredRandom. Kept apart from the extension parsing so that getAssertion's
//! continuation can carry them without the state depending on the commands.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::ctap2::pin::protocol::SharedSecret;

/// The decrypted salts of a request, ready to be applied to each credential's CredRandom.
pub struct HmacSecretSalts {
    shared: SharedSecret,
    salts: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for HmacSecretSalts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacSecretSalts(<redacted>)")
    }
}

impl HmacSecretSalts {
    pub fn new(shared: SharedSecret, salts: Zeroizing<Vec<u8>>) -> Self {
        HmacSecretSalts { shared, salts }
    }

    /// output1 (|| output2) = HMAC-SHA-256(CredRandom, salt1) (|| .., salt2), encrypted to the
    /// platform.
    pub fn output(&self, cred_random: &[u8; 32], fill_random: impl FnOnce(&mut [u8])) -> Vec<u8> {
        let mut outputs = Zeroizing::new(Vec::with_capacity(self.salts.len()));
        for salt in self.salts.chunks(32) {
            let mut mac = Hmac::<Sha256>::new_from_slice(cred_random).expect("any key length");
            mac.update(salt);
            outputs.extend_from_slice(&mac.finalize().into_bytes());
        }
        self.shared.encrypt(&outputs, fill_random)
    }
}
