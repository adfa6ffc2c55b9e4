//! U2F_REGISTER (U2F raw message formats §4).

use crate::ctap1::certificate;
use crate::ctap1::{Apdu, SW_CONDITIONS_NOT_SATISFIED, SW_UNKNOWN, SW_WRONG_LENGTH};
use crate::ctap2::authenticator::Authenticator;
use crate::env::{
    Algorithm, CredentialExtras, Env, Keystore, NewCredential, Operation, RelyingParty, UserEntity,
};

/// Reserved byte that starts a registration response, for legacy reasons.
const REGISTER_ID: u8 = 0x05;

impl<E: Env> Authenticator<E> {
    pub(crate) fn u2f_register(&mut self, apdu: &Apdu<'_>) -> Result<Vec<u8>, u16> {
        // Request: challenge parameter (32) | application parameter (32).
        let [challenge, application] = split_params(apdu.data).ok_or(SW_WRONG_LENGTH)?;

        // Registration always needs the person's gesture.
        self.collect_presence(Operation::Register, None, None)
            .map_err(|_| SW_CONDITIONS_NOT_SATISFIED)?;

        // A U2F credential is an ES256, non-discoverable CTAP2 credential whose RP ID hash is
        // the application parameter, so CTAP2 getAssertion can use it too.
        let rp = RelyingParty::default();
        let user = UserEntity::default();
        let (credential, public_key) = self
            .keystore
            .create_credential(&NewCredential {
                rp: &rp,
                rp_id_hash: application,
                user: &user,
                algorithm: Algorithm::Es256,
                discoverable: false,
                extras: &CredentialExtras::default(),
            })
            .map_err(|_| SW_UNKNOWN)?;
        // Key handles carry a one-byte length.
        let key_handle_len = u8::try_from(credential.id.len()).map_err(|_| SW_UNKNOWN)?;

        let tbs = certificate::to_be_signed(&public_key.raw);
        let cert_sig = self
            .keystore
            .sign(&credential, &tbs)
            .map_err(|_| SW_UNKNOWN)?;
        let certificate = certificate::assemble(&tbs, &cert_sig);

        // Signed: 0x00 | application | challenge | key handle | public key.
        let signed = [
            &[0u8][..],
            application,
            challenge,
            &credential.id,
            &public_key.raw,
        ]
        .concat();
        let signature = self
            .keystore
            .sign(&credential, &signed)
            .map_err(|_| SW_UNKNOWN)?;

        // Response: 0x05 | public key (65) | L | key handle | certificate | signature.
        Ok([
            &[REGISTER_ID][..],
            &public_key.raw,
            &[key_handle_len],
            &credential.id,
            &certificate,
            &signature,
        ]
        .concat())
    }
}

/// Splits the 64 bytes of challenge and application parameters.
pub(crate) fn split_params(data: &[u8]) -> Option<[&[u8; 32]; 2]> {
    let (challenge, application) = data.split_at_checked(32)?;
    Some([challenge.try_into().ok()?, application.try_into().ok()?])
}
