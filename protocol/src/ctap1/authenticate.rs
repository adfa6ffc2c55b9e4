//! U2F_AUTHENTICATE (U2F raw message formats §5).

use crate::ctap1::register::split_params;
use crate::ctap1::{Apdu, SW_CONDITIONS_NOT_SATISFIED, SW_UNKNOWN, SW_WRONG_DATA, SW_WRONG_LENGTH};
use crate::ctap2::authenticator::Authenticator;
use crate::env::{Algorithm, CredProtect, Env, Keystore, Operation};

/// Control byte: is this key handle ours for this application? Never signs.
const CHECK_ONLY: u8 = 0x07;
/// Control byte: sign after a user-presence gesture.
const ENFORCE_USER_PRESENCE_AND_SIGN: u8 = 0x03;
/// Control byte: sign without asking (the "user present" bit is then clear).
const DONT_ENFORCE_USER_PRESENCE_AND_SIGN: u8 = 0x08;

const USER_PRESENT: u8 = 0x01;

impl<E: Env> Authenticator<E> {
    pub(crate) fn u2f_authenticate(&mut self, apdu: &Apdu<'_>) -> Result<Vec<u8>, u16> {
        // Request: challenge (32) | application (32) | L | key handle (L).
        let (params, key_handle) = apdu.data.split_at_checked(64).ok_or(SW_WRONG_LENGTH)?;
        let [challenge, application] = split_params(params).ok_or(SW_WRONG_LENGTH)?;
        let (&len, key_handle) = key_handle.split_first().ok_or(SW_WRONG_LENGTH)?;
        if key_handle.len() != usize::from(len) {
            return Err(SW_WRONG_LENGTH);
        }
        if ![
            CHECK_ONLY,
            ENFORCE_USER_PRESENCE_AND_SIGN,
            DONT_ENFORCE_USER_PRESENCE_AND_SIGN,
        ]
        .contains(&apdu.p1)
        {
            return Err(SW_WRONG_DATA);
        }

        // The key handle must be one of ours, for this application, and an ES256 key (U2F
        // signatures are P-256 ECDSA only). U2F cannot verify the user, so a credential made
        // with credProtect userVerificationRequired is not usable here (CTAP 2.1 §12.1); level 2
        // is, since the platform names the key handle.
        let credential = self
            .keystore
            .find_credential(application, key_handle)
            .map_err(|_| SW_UNKNOWN)?
            .filter(|c| c.algorithm == Algorithm::Es256)
            .filter(|c| c.extras.cred_protect != CredProtect::UserVerificationRequired)
            .ok_or(SW_WRONG_DATA)?;

        let user_presence = match apdu.p1 {
            // "Valid key handle; a real signature would need presence" (§5.1).
            CHECK_ONLY => return Err(SW_CONDITIONS_NOT_SATISFIED),
            ENFORCE_USER_PRESENCE_AND_SIGN => {
                self.collect_presence(Operation::Authenticate, None, None)
                    .map_err(|_| SW_CONDITIONS_NOT_SATISFIED)?;
                USER_PRESENT
            }
            _ => 0,
        };

        let counter = self
            .keystore
            .next_signature_counter()
            .map_err(|_| SW_UNKNOWN)?;
        // Signed: application | user presence | counter | challenge.
        let signed = [
            &application[..],
            &[user_presence],
            &counter.to_be_bytes(),
            &challenge[..],
        ]
        .concat();
        let signature = self
            .keystore
            .sign(&credential, &signed)
            .map_err(|_| SW_UNKNOWN)?;
        Ok([&[user_presence][..], &counter.to_be_bytes(), &signature].concat())
    }
}
