//! Target `ctap2_request`: one request of any CTAP2 command (or one U2F APDU) with arbitrary
//! parameters, against an authenticator that already holds credentials, so decoding reaches
//! every field of every command.
//!
//! Input: `selector | request`. Selector bit 0: CTAPHID_CBOR (command byte + CBOR) or
//! CTAPHID_MSG (an APDU); bit 1: the file keystore or `MemoryKeystore`.
//!
//! Invariants: a CTAP2 answer is a lone error status, or success with nothing or with one
//! canonical CBOR map (CTAP 2.1 §8); parameters that are not exactly one well-formed CBOR item
//! are CTAP2_ERR_INVALID_CBOR for the commands that read parameters; a U2F answer ends in a
//! status word and carries data only with 9000.

use protocol::cbor;
use protocol::env::{Keystore, PresenceOutcome};
use protocol::testing::{ManualClock, MemoryKeystore, ScriptedPresence, SeededRng};
use protocol::wire::{
    Command, MakeCredentialRequest, PublicKeyCredentialParameters, PublicKeyCredentialRpEntity,
    PublicKeyCredentialUserEntity, Request,
};
use protocol::{Authenticator, AuthenticatorConfig};

use crate::verify::{cbor_prefix, is_canonical};

/// The one channel this target's platform talks on.
const ORIGIN: protocol::Origin = protocol::Origin::usb(1);

/// The commands whose parameters are decoded (the others ignore theirs).
const COMMANDS_WITH_PARAMETERS: [Command; 2] = [Command::MakeCredential, Command::GetAssertion];
const INVALID_CBOR: u8 = 0x12;

pub fn run(data: &[u8]) {
    let Some((&selector, request)) = data.split_first() else {
        return;
    };
    if selector & 2 == 0 {
        let keystore = storage::FileKeystore::in_memory(SeededRng::new(3));
        answer(populated(keystore), selector & 1 != 0, request);
    } else {
        answer(
            populated(MemoryKeystore::new(3)),
            selector & 1 != 0,
            request,
        );
    }
}

type Fixture<K> = Authenticator<(K, ScriptedPresence, ManualClock, SeededRng)>;

/// An authenticator with two discoverable credentials and one non-discoverable one for
/// "example.com", so getAssertion and getNextAssertion get past "no credentials".
fn populated<K: Keystore>(keystore: K) -> Fixture<K> {
    let mut authenticator = Authenticator::new(
        AuthenticatorConfig::default(),
        keystore,
        ScriptedPresence::always(PresenceOutcome::Approved),
        ManualClock::default(),
        SeededRng::new(9),
    );
    for (user, alg, rk) in [(1u8, -7, true), (2, -8, true), (3, -7, false)] {
        let request = make_credential("example.com", &[user], alg, rk);
        assert_eq!(
            authenticator.process_cbor(ORIGIN, &request)[0],
            0,
            "fixture credential"
        );
    }
    authenticator
}

/// A well-formed makeCredential: ES256 or EdDSA, discoverable when `rk`.
pub fn make_credential(rp: &str, user: &[u8], alg: i64, rk: bool) -> Vec<u8> {
    let mut request = MakeCredentialRequest::new(
        vec![0xcd; 32],
        PublicKeyCredentialRpEntity::with_id(rp),
        PublicKeyCredentialUserEntity::with_handle(user.to_vec()),
        vec![PublicKeyCredentialParameters::public_key(alg)],
    );
    if rk {
        request.options.rk = Some(true);
    }
    request.encode()
}

fn answer<K: Keystore>(mut authenticator: Fixture<K>, apdu: bool, request: &[u8]) {
    if apdu {
        let response = authenticator.process_apdu(ORIGIN, request);
        assert!(response.len() >= 2, "no status word");
        if response[response.len() - 2..] != [0x90, 0x00] {
            assert_eq!(response.len(), 2, "an error with data");
        }
        return;
    }
    let response = authenticator.process_cbor(ORIGIN, request);
    let (&status, body) = response.split_first().expect("a status byte");
    if status != 0 {
        assert!(body.is_empty(), "status {status:#x} with a body");
    } else if !body.is_empty() {
        assert!(is_canonical(body), "response is not canonical CBOR");
        assert!(cbor::decode(body).expect("CBOR").is_map(), "not a map");
    }
    if let Some((&command, params)) = request.split_first() {
        let well_formed = cbor_prefix(params).is_some_and(|(_, used)| used == params.len());
        let reads_parameters = Command::from_byte(command)
            .is_some_and(|command| COMMANDS_WITH_PARAMETERS.contains(&command));
        if reads_parameters && !params.is_empty() && !well_formed {
            assert_eq!(status, INVALID_CBOR, "malformed CBOR gave {status:#x}");
        }
    }
}
