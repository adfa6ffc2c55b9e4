//! Authenticator extensions (CTAP 2.1 §12, hmac-secret-mc from CTAP 2.2): the ones getInfo
//! lists, and the hmac-secret computation. Their inputs are decoded by
//! [`crate::wire::extensions`].

use crate::ctap2::authenticator::Authenticator;
use crate::ctap2::hmac_secret::HmacSecretSalts;
use crate::ctap2::pin::protocol::PinProtocol;
use crate::env::Env;
use crate::status::StatusCode;
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

impl<E: Env> Authenticator<E> {
    /// hmac-secret §12.5 steps: agree on a shared secret with the platform's key, check
    /// saltAuth (CTAP2_ERR_PIN_AUTH_INVALID), decrypt one or two 32-byte salts.
    pub(crate) fn hmac_secret_salts(
        &mut self,
        input: HmacSecretInput,
    ) -> Result<HmacSecretSalts, StatusCode> {
        let protocol = PinProtocol::from_param(input.pin_uv_auth_protocol.into())?;
        let key = crate::wire::KeyAgreementPublicKey::from_cbor(input.key_agreement)?;
        let shared = self.shared_secret(protocol, &key)?;
        if !shared.verify(&input.salt_enc, &input.salt_auth) {
            return Err(StatusCode::PinAuthInvalid);
        }
        let salts = shared
            .decrypt(&input.salt_enc)
            .filter(|salts| salts.len() == 32 || salts.len() == 64)
            .ok_or(StatusCode::InvalidParameter)?;
        Ok(HmacSecretSalts::new(shared, salts))
    }
}

#[cfg(test)]
mod ceremonies;
