//! U2F (CTAP1) raw messages carried in CTAPHID_MSG (FIDO U2F Raw Message Formats v1.2):
//! ISO 7816-4 command APDUs in, response data + status word out.

mod apdu;
mod authenticate;
mod certificate;
mod register;

pub use apdu::{Apdu, ApduError};

use crate::ctap2::authenticator::Authenticator;
use crate::env::Env;
use crate::origin::Origin;

pub const INS_REGISTER: u8 = 0x01;
pub const INS_AUTHENTICATE: u8 = 0x02;
pub const INS_VERSION: u8 = 0x03;

/// Status words (U2F raw message formats §3.3).
pub const SW_NO_ERROR: u16 = 0x9000;
pub const SW_CONDITIONS_NOT_SATISFIED: u16 = 0x6985;
/// ISO 7816-4 "command not allowed": U2F is off while alwaysUv is on.
pub const SW_COMMAND_NOT_ALLOWED: u16 = 0x6986;
pub const SW_WRONG_DATA: u16 = 0x6A80;
pub const SW_WRONG_LENGTH: u16 = 0x6700;
pub const SW_CLA_NOT_SUPPORTED: u16 = 0x6E00;
pub const SW_INS_NOT_SUPPORTED: u16 = 0x6D00;
/// ISO 7816-4 "no precise diagnosis": a storage failure.
pub const SW_UNKNOWN: u16 = 0x6F00;

const VERSION: &[u8] = b"U2F_V2";

impl<E: Env> Authenticator<E> {
    /// Answers a CTAPHID_MSG message from `origin`: an ISO 7816-4 command APDU in, a response
    /// APDU out.
    pub fn process_apdu(&mut self, origin: Origin, apdu: &[u8]) -> Vec<u8> {
        self.begin_command(origin);
        process(self, apdu)
    }
}

/// Answers one U2F request APDU.
pub fn process<E: Env>(authenticator: &mut Authenticator<E>, bytes: &[u8]) -> Vec<u8> {
    // U2F cannot verify the user, so with alwaysUv on it is disabled (CTAP 2.1 §9.2), as
    // OpenSK and YubiKeys do.
    let always_uv = authenticator.state().map(|state| state.always_uv);
    // A hybrid tunnel carries CTAP2 only (see ctap2's `hybrid_policy`).
    let hybrid = authenticator.command.origin.is_hybrid();
    let result = match Apdu::parse(bytes) {
        _ if hybrid => Err(SW_INS_NOT_SUPPORTED),
        _ if always_uv == Ok(true) => Err(SW_COMMAND_NOT_ALLOWED),
        _ if always_uv.is_err() => Err(SW_UNKNOWN),
        Err(ApduError::ClassNotSupported) => Err(SW_CLA_NOT_SUPPORTED),
        Err(ApduError::WrongLength) => Err(SW_WRONG_LENGTH),
        Ok(apdu) => match apdu.ins {
            INS_REGISTER => authenticator.u2f_register(&apdu),
            INS_AUTHENTICATE => authenticator.u2f_authenticate(&apdu),
            INS_VERSION if apdu.data.is_empty() => Ok(VERSION.to_vec()),
            INS_VERSION => Err(SW_WRONG_LENGTH),
            _ => Err(SW_INS_NOT_SUPPORTED),
        },
    };
    let (mut data, status) = match result {
        Ok(data) => (data, SW_NO_ERROR),
        Err(status) => (Vec::new(), status),
    };
    data.extend_from_slice(&status.to_be_bytes());
    data
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctap2::test_support::*;
    use crate::env::{Operation, PresenceOutcome};
    use ecdsa::signature::Verifier as _;

    const CHALLENGE: [u8; 32] = [0xc1; 32];

    fn apdu(ins: u8, p1: u8, data: &[u8]) -> Vec<u8> {
        // Extended length encoding, as libfido2 and python-fido2 send it.
        let mut out = vec![0, ins, p1, 0];
        if !data.is_empty() {
            out.push(0);
            out.extend((data.len() as u16).to_be_bytes());
            out.extend_from_slice(data);
        }
        out.extend([0, 0]);
        out
    }

    fn split_status(response: &[u8]) -> (&[u8], u16) {
        let (data, sw) = response.split_at(response.len() - 2);
        (data, u16::from_be_bytes([sw[0], sw[1]]))
    }

    struct U2fRegistration {
        public_key: Vec<u8>,
        key_handle: Vec<u8>,
    }

    fn verify_p256(public_key: &[u8], message: &[u8], der: &[u8]) -> bool {
        let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(public_key).unwrap();
        let sig = p256::ecdsa::DerSignature::try_from(der).unwrap();
        key.verify(message, &sig).is_ok()
    }

    /// Reads a DER element's total length (tag + length + content).
    fn der_len(bytes: &[u8]) -> usize {
        match bytes[1] {
            n if n < 0x80 => 2 + usize::from(n),
            0x81 => 3 + usize::from(bytes[2]),
            _ => 4 + usize::from(u16::from_be_bytes([bytes[2], bytes[3]])),
        }
    }

    fn u2f_register(a: &mut TestAuthenticator, application: &[u8; 32]) -> U2fRegistration {
        let response = a.process_apdu(
            TEST_ORIGIN,
            &apdu(INS_REGISTER, 0x03, &[CHALLENGE, *application].concat()),
        );
        let (data, sw) = split_status(&response);
        assert_eq!(sw, SW_NO_ERROR);
        assert_eq!(data[0], 0x05);
        let public_key = data[1..66].to_vec();
        let kh_len = usize::from(data[66]);
        let key_handle = data[67..67 + kh_len].to_vec();
        let rest = &data[67 + kh_len..];
        let cert_len = der_len(rest);
        let (certificate, signature) = rest.split_at(cert_len);
        // The certificate carries the credential's own key (self attestation)...
        assert!(certificate.windows(65).any(|w| w == public_key.as_slice()));
        // ...and the registration signature verifies with it, over the U2F layout.
        let signed = [
            &[0u8][..],
            application,
            &CHALLENGE,
            &key_handle,
            &public_key,
        ]
        .concat();
        assert!(verify_p256(&public_key, &signed, signature));
        U2fRegistration {
            public_key,
            key_handle,
        }
    }

    fn authenticate_apdu(p1: u8, application: &[u8; 32], key_handle: &[u8]) -> Vec<u8> {
        let data = [
            &CHALLENGE[..],
            application,
            &[key_handle.len() as u8],
            key_handle,
        ]
        .concat();
        apdu(INS_AUTHENTICATE, p1, &data)
    }

    #[test]
    fn version_is_u2f_v2() {
        let (mut a, _) = authenticator();
        assert_eq!(
            a.process_apdu(TEST_ORIGIN, &[0, 3, 0, 0]),
            b"U2F_V2\x90\x00".to_vec()
        );
        assert_eq!(
            a.process_apdu(TEST_ORIGIN, &apdu(INS_VERSION, 0, &[])),
            b"U2F_V2\x90\x00".to_vec()
        );
        assert_eq!(
            a.process_apdu(TEST_ORIGIN, &apdu(INS_VERSION, 0, &[1])),
            vec![0x67, 0x00]
        );
    }

    #[test]
    fn always_uv_turns_u2f_off() {
        let (mut a, _) = authenticator();
        let app = rp_id_hash("https://x.org");
        let reg = u2f_register(&mut a, &app);
        a.update_state(|s| s.always_uv = true).unwrap();
        a.presence_mut().asked.clear();
        let register = [&CHALLENGE[..], &app[..]].concat();
        assert_eq!(
            a.process_apdu(TEST_ORIGIN, &apdu(INS_REGISTER, 0, &register)),
            vec![0x69, 0x86]
        );
        assert_eq!(
            a.process_apdu(TEST_ORIGIN, &authenticate_apdu(0x03, &app, &reg.key_handle)),
            vec![0x69, 0x86]
        );
        assert_eq!(
            a.process_apdu(TEST_ORIGIN, &apdu(INS_VERSION, 0, &[])),
            vec![0x69, 0x86]
        );
        assert!(a.presence_mut().asked.is_empty());
    }

    #[test]
    fn register_then_authenticate_with_presence() {
        let (mut a, _) = authenticator();
        let app = rp_id_hash("https://x.org");
        let reg = u2f_register(&mut a, &app);

        let response = a.process_apdu(TEST_ORIGIN, &authenticate_apdu(0x03, &app, &reg.key_handle));
        let (data, sw) = split_status(&response);
        assert_eq!(sw, SW_NO_ERROR);
        assert_eq!(data[0], 0x01, "user present");
        let counter = &data[1..5];
        let signed = [&app[..], &[0x01], counter, &CHALLENGE].concat();
        assert!(verify_p256(&reg.public_key, &signed, &data[5..]));
        let ops: Vec<_> = a.presence_mut().asked.iter().map(|(op, ..)| *op).collect();
        assert_eq!(ops, vec![Operation::Register, Operation::Authenticate]);
    }

    #[test]
    fn check_only_says_conditions_not_satisfied_for_our_handle_wrong_data_otherwise() {
        let (mut a, _) = authenticator();
        let app = rp_id_hash("https://x.org");
        let reg = u2f_register(&mut a, &app);
        a.presence_mut().asked.clear();
        assert_eq!(
            a.process_apdu(TEST_ORIGIN, &authenticate_apdu(0x07, &app, &reg.key_handle)),
            vec![0x69, 0x85]
        );
        let other_app = rp_id_hash("https://evil.org");
        assert_eq!(
            a.process_apdu(
                TEST_ORIGIN,
                &authenticate_apdu(0x07, &other_app, &reg.key_handle)
            ),
            vec![0x6A, 0x80]
        );
        let mut tampered = reg.key_handle.clone();
        tampered[0] ^= 1;
        assert_eq!(
            a.process_apdu(TEST_ORIGIN, &authenticate_apdu(0x03, &app, &tampered)),
            vec![0x6A, 0x80]
        );
        assert!(
            a.presence_mut().asked.is_empty(),
            "check-only never asks the person"
        );
    }

    #[test]
    fn dont_enforce_signs_without_the_presence_bit() {
        let (mut a, _) = authenticator();
        let app = rp_id_hash("https://x.org");
        let reg = u2f_register(&mut a, &app);
        a.presence_mut().asked.clear();
        let response = a.process_apdu(TEST_ORIGIN, &authenticate_apdu(0x08, &app, &reg.key_handle));
        let (data, sw) = split_status(&response);
        assert_eq!(sw, SW_NO_ERROR);
        assert_eq!(data[0], 0);
        let signed = [&app[..], &[0], &data[1..5], &CHALLENGE].concat();
        assert!(verify_p256(&reg.public_key, &signed, &data[5..]));
        assert!(a.presence_mut().asked.is_empty());
    }

    #[test]
    fn refused_presence_is_conditions_not_satisfied() {
        let (mut a, _) = authenticator();
        let app = rp_id_hash("https://x.org");
        let reg = u2f_register(&mut a, &app);
        a.presence_mut().default = PresenceOutcome::Denied;
        assert_eq!(
            a.process_apdu(TEST_ORIGIN, &authenticate_apdu(0x03, &app, &reg.key_handle)),
            vec![0x69, 0x85]
        );
        assert_eq!(
            a.process_apdu(TEST_ORIGIN, &apdu(INS_REGISTER, 0, &[0; 64])),
            vec![0x69, 0x85]
        );
    }

    #[test]
    fn malformed_apdus_get_the_u2f_status_words() {
        let (mut a, _) = authenticator();
        assert_eq!(
            a.process_apdu(TEST_ORIGIN, &apdu(INS_REGISTER, 0, &[0; 63])),
            vec![0x67, 0x00]
        );
        assert_eq!(
            a.process_apdu(TEST_ORIGIN, &apdu(INS_AUTHENTICATE, 3, &[0; 64])),
            vec![0x67, 0x00],
            "no L byte"
        );
        assert_eq!(
            a.process_apdu(TEST_ORIGIN, &apdu(INS_AUTHENTICATE, 3, &[0; 65])),
            vec![0x6A, 0x80],
            "empty handle"
        );
        let mut bad_len = authenticate_apdu(0x03, &[0; 32], &[1, 2, 3]);
        bad_len[7 + 64] = 4; // L says 4, 3 bytes follow
        assert_eq!(a.process_apdu(TEST_ORIGIN, &bad_len), vec![0x67, 0x00]);
        assert_eq!(
            a.process_apdu(TEST_ORIGIN, &[0x80, 3, 0, 0]),
            vec![0x6E, 0x00]
        );
        assert_eq!(
            a.process_apdu(TEST_ORIGIN, &[0, 0x40, 0, 0]),
            vec![0x6D, 0x00]
        );
        assert_eq!(a.process_apdu(TEST_ORIGIN, &[0, 1]), vec![0x67, 0x00]);
        assert_eq!(
            a.process_apdu(TEST_ORIGIN, &authenticate_apdu(0x05, &[0; 32], &[1])),
            vec![0x6A, 0x80]
        );
    }

    #[test]
    fn u2f_credentials_and_ctap2_credentials_are_the_same_credentials() {
        let (mut a, _) = authenticator();
        // U2F register, CTAP2 getAssertion with rpIdHash = application parameter.
        let app = rp_id_hash("x.org");
        let reg = u2f_register(&mut a, &app);
        let r = get_assertion(&mut a, &ga_request("x.org", &[&reg.key_handle])).unwrap();
        let signed = [&r.auth_data[..], &TEST_CLIENT_DATA_HASH].concat();
        assert!(verify_p256(&reg.public_key, &signed, &r.signature));

        // CTAP2 ES256 makeCredential, U2F authenticate with application = SHA-256(rp id).
        let ctap2 = register(&mut a, "y.org", b"bob", -7, false);
        let app = rp_id_hash("y.org");
        let response = a.process_apdu(
            TEST_ORIGIN,
            &authenticate_apdu(0x03, &app, &ctap2.credential_id),
        );
        let (data, sw) = split_status(&response);
        assert_eq!(sw, SW_NO_ERROR);
        let signed = [&app[..], &data[..5], &CHALLENGE].concat();
        assert!(verify(&ctap2.cose_key, &signed, &data[5..]));

        // An EdDSA credential cannot answer U2F, which is P-256 only.
        let eddsa = register(&mut a, "y.org", b"carol", -8, false);
        assert_eq!(
            a.process_apdu(
                TEST_ORIGIN,
                &authenticate_apdu(0x03, &app, &eddsa.credential_id)
            ),
            vec![0x6A, 0x80]
        );
    }

    #[test]
    fn cred_protect_required_credentials_cannot_sign_through_u2f() {
        let (mut a, _) = authenticator();
        let app = rp_id_hash("y.org");
        for (level, usable) in [(1, true), (2, true), (3, false)] {
            let mut request = mc_request("y.org", &[level], &[-7]);
            request.extensions.cred_protect = Some(level);
            let reg = registration(&make_credential(&mut a, &request).unwrap());

            let response = a.process_apdu(
                TEST_ORIGIN,
                &authenticate_apdu(0x03, &app, &reg.credential_id),
            );
            let (_, sw) = split_status(&response);

            if usable {
                assert_eq!(sw, SW_NO_ERROR, "level {level}");
            } else {
                assert_eq!(
                    sw, 0x6A80,
                    "level {level}: SW_WRONG_DATA, as for a foreign handle"
                );
            }
        }
    }
}
