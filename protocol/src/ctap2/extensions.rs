//! Authenticator extensions (CTAP 2.1 §12, hmac-secret-mc from CTAP 2.2): the ones getInfo
//! lists, and the hmac-secret computation. Their inputs are decoded by
//! [`crate::wire::extensions`].

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::authenticator::Authenticator;
use crate::ctap2::pin_protocol::{PinProtocol, SharedSecret};
use crate::ctap2::StatusCode;
use crate::env::{Clock, Keystore, Presence, Rng};
use crate::wire::HmacSecretInput;

pub use crate::wire::extensions::{
    CRED_BLOB, CRED_PROTECT, HMAC_SECRET, HMAC_SECRET_MC, LARGE_BLOB_KEY, MIN_PIN_LENGTH,
    PIN_COMPLEXITY_POLICY, THIRD_PARTY_PAYMENT,
};

/// What getInfo lists, in the order a YubiKey lists its own.
pub const SUPPORTED: [&str; 8] = [
    CRED_PROTECT,
    HMAC_SECRET,
    LARGE_BLOB_KEY,
    CRED_BLOB,
    MIN_PIN_LENGTH,
    HMAC_SECRET_MC,
    THIRD_PARTY_PAYMENT,
    PIN_COMPLEXITY_POLICY,
];

/// getInfo maxCredBlobLength: the spec's minimum, what hardware keys offer.
pub const MAX_CRED_BLOB_LENGTH: usize = 32;

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

impl<K: Keystore, P: Presence, C: Clock, R: Rng> Authenticator<K, P, C, R> {
    /// hmac-secret §12.5 steps: agree on a shared secret with the platform's key, check
    /// saltAuth (CTAP2_ERR_PIN_AUTH_INVALID), decrypt one or two 32-byte salts.
    pub(crate) fn hmac_secret_salts(
        &mut self,
        input: HmacSecretInput,
    ) -> Result<HmacSecretSalts, StatusCode> {
        let protocol = PinProtocol::from_param(input.pin_uv_auth_protocol.into())?;
        let shared = self.shared_secret(protocol, input.key_agreement)?;
        if !shared.verify(&input.salt_enc, &input.salt_auth) {
            return Err(StatusCode::PinAuthInvalid);
        }
        let salts = shared
            .decrypt(&input.salt_enc)
            .filter(|salts| salts.len() == 32 || salts.len() == 64)
            .ok_or(StatusCode::InvalidParameter)?;
        Ok(HmacSecretSalts { shared, salts })
    }
}

#[cfg(test)]
mod ceremonies;
