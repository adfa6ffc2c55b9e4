//! 1Password's passkey-authenticator (crates.io, 0.6) as the peer of the comparison benches, fed
//! the same CTAP2 CBOR requests as fido2d: its own serde types decode them and encode its
//! answers, its store is its in-memory `MemoryStore`, its person always present.

use passkey_authenticator::{Authenticator, MemoryStore, UiHint, UserCheck, UserValidationMethod};
use passkey_types::ctap2::{get_assertion, make_credential, Aaguid, Ctap2Error};
use passkey_types::Passkey;

/// A person who always says yes, as fido2d's benches assume.
struct AlwaysPresent;

#[async_trait::async_trait]
impl UserValidationMethod for AlwaysPresent {
    type PasskeyItem = Passkey;

    async fn check_user<'a>(
        &self,
        _hint: UiHint<'a, Passkey>,
        presence: bool,
        _verification: bool,
    ) -> Result<UserCheck, Ctap2Error> {
        Ok(UserCheck {
            presence,
            verification: false,
        })
    }

    fn is_presence_enabled(&self) -> bool {
        true
    }

    fn is_verification_enabled(&self) -> Option<bool> {
        None
    }
}

/// passkey-authenticator behind a CBOR-in, CBOR-out call, like fido2d's `process_cbor`.
pub struct Peer {
    runtime: tokio::runtime::Runtime,
    authenticator: Authenticator<MemoryStore, AlwaysPresent, passkey_crypto::AvailableBackend>,
}

impl Default for Peer {
    fn default() -> Self {
        Self::new()
    }
}

impl Peer {
    pub fn new() -> Peer {
        Peer {
            runtime: tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("a current-thread runtime"),
            authenticator: Authenticator::new(
                Aaguid::new_empty(),
                MemoryStore::new(),
                AlwaysPresent,
                passkey_crypto::AvailableBackend,
            ),
        }
    }

    /// makeCredential: the request is `0x01 | CBOR`; the answer `0x00 | CBOR`.
    pub fn make_credential(&mut self, request: &[u8]) -> Vec<u8> {
        let parsed: make_credential::Request =
            ciborium::from_reader(&request[1..]).expect("passkey-types reads the request");
        let response = self
            .runtime
            .block_on(self.authenticator.make_credential(parsed))
            .expect("peer makeCredential");
        let mut out = vec![0u8];
        ciborium::into_writer(&response, &mut out).expect("encode");
        out
    }

    /// getAssertion: the request is `0x02 | CBOR`; the answer `0x00 | CBOR`.
    pub fn get_assertion(&mut self, request: &[u8]) -> Vec<u8> {
        let parsed: get_assertion::Request =
            ciborium::from_reader(&request[1..]).expect("passkey-types reads the request");
        let response = self
            .runtime
            .block_on(self.authenticator.get_assertion(parsed))
            .expect("peer getAssertion");
        let mut out = vec![0u8];
        ciborium::into_writer(&response, &mut out).expect("encode");
        out
    }
}

/// The three getAssertion contenders of the peer comparisons, each with a credential of its
/// own and the request that signs with it: the peer, fido2d over its file keystore (the
/// daemon's), fido2d over the in-memory keystore (RustCrypto, as the peer signs). Each is
/// checked to answer with success before anything is timed.
pub struct Contenders {
    pub peer: Peer,
    pub peer_request: Vec<u8>,
    pub file: crate::FileAuthenticator,
    pub file_request: Vec<u8>,
    pub memory: crate::MemoryAuthenticator,
    pub memory_request: Vec<u8>,
    /// The file keystore's state directory, removed when dropped: keep it while `file` is used.
    pub state_dir: tempfile::TempDir,
}

impl Contenders {
    pub fn new() -> Self {
        use crate::{
            credential_id_of, file_authenticator, get_assertion_request, make_credential_request,
            memory_authenticator, BENCH_ORIGIN,
        };
        let register = make_credential_request("example.com", b"user", -7, false);
        let request_for =
            |id: &[u8]| get_assertion_request("example.com", Some(&credential_id_of(id)));
        let mut peer = Peer::new();
        let peer_request = request_for(&peer.make_credential(&register));
        let dir = tempfile::tempdir().expect("temp dir");
        let mut file = file_authenticator(dir.path());
        let file_request = request_for(&file.process_cbor(BENCH_ORIGIN, &register));
        let mut memory = memory_authenticator();
        let memory_request = request_for(&memory.process_cbor(BENCH_ORIGIN, &register));
        assert_eq!(peer.get_assertion(&peer_request)[0], 0, "peer getAssertion");
        assert_eq!(file.process_cbor(BENCH_ORIGIN, &file_request)[0], 0, "file");
        assert_eq!(
            memory.process_cbor(BENCH_ORIGIN, &memory_request)[0],
            0,
            "memory"
        );
        Contenders {
            peer,
            peer_request,
            file,
            file_request,
            memory,
            memory_request,
            state_dir: dir,
        }
    }
}

impl Default for Contenders {
    fn default() -> Self {
        Self::new()
    }
}
