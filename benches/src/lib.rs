//! Shared pieces of the benchmarks: an authenticator over the file or the TPM keystore, and
//! encoded requests, so each bench measures only the operation it names.

#[cfg(feature = "peer")]
pub mod peer;

use protocol::env::PresenceOutcome;
use protocol::testing::{ManualClock, ScriptedPresence, SeededRng};
use protocol::wire::{
    GetAssertionRequest, MakeCredentialRequest, MakeCredentialResponse,
    PublicKeyCredentialDescriptor, PublicKeyCredentialParameters, PublicKeyCredentialRpEntity,
    PublicKeyCredentialUserEntity, Request, Response,
};
use protocol::{Authenticator, AuthenticatorConfig, Origin};
use storage::file::FileKeystore;
use storage::{KeystoreOptions, TpmConfig, TpmKeys, TpmKeystore};

/// The one channel every benchmark request comes from.
pub const BENCH_ORIGIN: Origin = Origin::usb(1);

pub type FileAuthenticator = Authenticator<(
    FileKeystore<SeededRng>,
    ScriptedPresence,
    ManualClock,
    SeededRng,
)>;
pub type TpmAuthenticator = Authenticator<(
    TpmKeystore<SeededRng>,
    ScriptedPresence,
    ManualClock,
    SeededRng,
)>;

/// An authenticator over a file keystore in a new `state` folder under `dir` (the keystore
/// wants a 0700 folder of its own), whose presence is always granted: the bench measures the
/// protocol and the keystore, not a person.
pub fn file_authenticator(dir: &std::path::Path) -> FileAuthenticator {
    let keystore =
        FileKeystore::open(&dir.join("state"), SeededRng::new(11)).expect("open keystore");
    Authenticator::new(
        AuthenticatorConfig::default(),
        keystore,
        ScriptedPresence::always(PresenceOutcome::Approved),
        ManualClock::default(),
        SeededRng::new(5),
    )
}

/// An authenticator over the TPM keystore on the TPM at `tcti`, in a new `state` folder under
/// `dir`, whose presence is always granted.
pub fn tpm_authenticator(dir: &std::path::Path, tcti: &str) -> TpmAuthenticator {
    let tpm = TpmKeys::open(&TpmConfig {
        tcti: tcti.into(),
        parent: None,
    })
    .expect("open the TPM");
    let keystore = TpmKeystore::open(
        &dir.join("state"),
        tpm,
        SeededRng::new(11),
        KeystoreOptions::default(),
    )
    .expect("open keystore");
    let config = AuthenticatorConfig {
        max_credential_id_length: keystore.max_credential_id_len(),
        ..AuthenticatorConfig::default()
    };
    Authenticator::new(
        config,
        keystore,
        ScriptedPresence::always(PresenceOutcome::Approved),
        ManualClock::default(),
        SeededRng::new(5),
    )
}

/// authenticatorMakeCredential for `rp` with one algorithm, non-discoverable unless `rk`.
pub fn make_credential_request(rp: &str, user_id: &[u8], alg: i64, rk: bool) -> Vec<u8> {
    let mut request = MakeCredentialRequest::new(
        vec![0xcd; 32],
        PublicKeyCredentialRpEntity::with_id(rp),
        PublicKeyCredentialUserEntity {
            id: user_id.to_vec(),
            name: Some("bench".into()),
            display_name: Some("Bench User".into()),
        },
        vec![PublicKeyCredentialParameters::public_key(alg)],
    );
    if rk {
        request.options.rk = Some(true);
    }
    request.encode()
}

/// authenticatorGetAssertion for `rp`, with an allowList of `credential_id` if given.
pub fn get_assertion_request(rp: &str, credential_id: Option<&[u8]>) -> Vec<u8> {
    let mut request = GetAssertionRequest::new(rp, vec![0xab; 32]);
    request.allow_list = credential_id
        .map(|id| PublicKeyCredentialDescriptor::public_key(id.to_vec()))
        .into_iter()
        .collect();
    request.encode()
}

/// The credential ID in a makeCredential response (status byte + CBOR).
pub fn credential_id_of(response: &[u8]) -> Vec<u8> {
    assert_eq!(
        response[0], 0,
        "makeCredential failed: status {:#04x}",
        response[0]
    );
    MakeCredentialResponse::decode(&response[1..])
        .expect("a makeCredential response")
        .credential_id()
        .expect("attested credential data")
        .to_vec()
}

/// The platform side of clientPIN, for benches: sets `pin` on `authenticator` (protocol two)
/// and returns an encoded getPinUvAuthTokenUsingPinWithPermissions request (permissions ga
/// for `rp`). The authenticator keeps its key agreement key while PINs are right, so the same
/// request can be sent again and again.
pub fn pin_token_request<E: protocol::env::Env>(
    authenticator: &mut Authenticator<E>,
    pin: &str,
    rp: &str,
) -> Vec<u8> {
    use protocol::ctap2::pin::protocol::{KeyAgreementKey, PinProtocol, PlatformKey};
    use protocol::wire::{permission, ClientPinRequest, ClientPinResponse, Request, Response};
    use sha2::{Digest, Sha256};

    let protocol = PinProtocol::Two;
    let get_key = ClientPinRequest::get_key_agreement(protocol.number());
    let response = authenticator.process_cbor(BENCH_ORIGIN, &get_key.encode());
    assert_eq!(response[0], 0, "getKeyAgreement failed");
    let answer = ClientPinResponse::decode(&response[1..]).expect("a clientPIN answer");
    let authenticator_key = answer.key_agreement.expect("keyAgreement");
    let platform = KeyAgreementKey::generate(|b| b.fill(0x21));
    let shared = platform.decapsulate(
        protocol,
        &PlatformKey::from_wire(&authenticator_key).expect("a P-256 point"),
    );
    let iv = |b: &mut [u8]| b.fill(0x42);

    let mut padded = pin.as_bytes().to_vec();
    padded.resize(64, 0);
    let new_pin_enc = shared.encrypt(&padded, iv);
    let mac = shared.authenticate(&new_pin_enc);
    let set_pin =
        ClientPinRequest::set_pin(protocol.number(), platform.public_key(), new_pin_enc, mac);
    assert_eq!(
        authenticator.process_cbor(BENCH_ORIGIN, &set_pin.encode()),
        vec![0],
        "setPIN failed"
    );

    let pin_hash = &Sha256::digest(pin.as_bytes())[..16];
    ClientPinRequest::get_token_using_pin(
        protocol.number(),
        platform.public_key(),
        shared.encrypt(pin_hash, iv),
        permission::GET_ASSERTION,
        Some(rp.to_owned()),
    )
    .encode()
}

/// An authenticator over the in-memory keystore: the protocol's own cost, without the disk.
/// fido2d over the sans-IO core's in-memory keystore.
pub type MemoryAuthenticator = Authenticator<(
    protocol::testing::MemoryKeystore,
    ScriptedPresence,
    ManualClock,
    SeededRng,
)>;

pub fn memory_authenticator() -> MemoryAuthenticator {
    Authenticator::new(
        AuthenticatorConfig::default(),
        protocol::testing::MemoryKeystore::new(11),
        ScriptedPresence::always(PresenceOutcome::Approved),
        ManualClock::default(),
        SeededRng::new(5),
    )
}

/// Makes `dir` a state directory holding `count` discoverable credentials: one ES256
/// credential for `rp` (its ID is returned) and `count - 1` EdDSA ones spread over 100 other
/// RPs, the way a key used for years fills up.
///
/// The store is built in memory (one fsync per record would take minutes for 10,000) and
/// then written out file by file in the layout `FileKeystore` keeps, so opening `dir`
/// afterwards reads exactly what a real store holds.
pub fn populated_state_dir(dir: &std::path::Path, count: usize, rp: &str) -> Vec<u8> {
    use protocol::env::{Algorithm, CredentialExtras, Keystore as _, NewCredential};
    use protocol::env::{RelyingParty, UserEntity};
    use sha2::{Digest, Sha256};
    use std::os::unix::fs::PermissionsExt as _;
    use storage::{KeystoreOptions, MemoryPersistence, Persistence as _};

    let files = MemoryPersistence::new();
    let options = KeystoreOptions {
        max_discoverable: count.max(KeystoreOptions::DEFAULT_MAX_DISCOVERABLE),
        ..KeystoreOptions::default()
    };
    let mut store = storage::Store::with_persistence(
        Box::new(files.clone()),
        storage::SoftwareKeys,
        SeededRng::new(17),
        options,
    )
    .expect("an in-memory store");
    let mut create = |rp_id: &str, user: usize, algorithm| {
        let rp = RelyingParty {
            id: rp_id.to_owned(),
            name: None,
        };
        let user = UserEntity {
            id: (user as u64).to_be_bytes().to_vec(),
            name: Some(format!("user{user}@{rp_id}")),
            display_name: Some(format!("User {user}")),
        };
        let rp_id_hash: [u8; 32] = Sha256::digest(rp_id.as_bytes()).into();
        let new = NewCredential {
            rp: &rp,
            rp_id_hash: &rp_id_hash,
            user: &user,
            algorithm,
            discoverable: true,
            extras: &CredentialExtras::default(),
        };
        store.create_credential(&new).expect("create").0.id
    };
    for i in 1..count {
        create(&format!("rp{}.example", i % 100), i, Algorithm::EdDsa);
    }
    let target = create(rp, 0, Algorithm::Es256);
    drop(store);

    let private = |path: &std::path::Path, mode| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod")
    };
    std::fs::create_dir_all(dir.join("credentials")).expect("state dir");
    private(dir, 0o700);
    private(&dir.join("credentials"), 0o700);
    for folder in ["", "credentials"] {
        for name in files.list(folder).expect("list") {
            let relative = if folder.is_empty() {
                name
            } else {
                format!("{folder}/{name}")
            };
            let bytes = files.read(&relative).expect("read").expect("listed");
            let path = dir.join(&relative);
            std::fs::write(&path, bytes.as_slice()).expect("write");
            private(&path, 0o600);
        }
    }
    target
}

/// An authenticator over the file keystore already in `state_dir`.
pub fn authenticator_in(state_dir: &std::path::Path) -> FileAuthenticator {
    let keystore = FileKeystore::open(state_dir, SeededRng::new(11)).expect("open keystore");
    Authenticator::new(
        AuthenticatorConfig::default(),
        keystore,
        ScriptedPresence::always(PresenceOutcome::Approved),
        ManualClock::default(),
        SeededRng::new(5),
    )
}

/// A host of the CTAPHID engine, in process: a channel allocated by INIT, then whole
/// requests as reports in and answers as reports out.
pub struct HidHost {
    pub engine: protocol::ctaphid::CtapHid,
    pub cid: u32,
}

impl HidHost {
    pub fn new() -> Self {
        use protocol::ctaphid::host::{self, Answer, AnswerReader, InitAnswer};
        use protocol::ctaphid::{CtapHid, DeviceVersion, Event, BROADCAST_CID};
        let mut engine = CtapHid::new(DeviceVersion::default());
        let nonce = [7; 8];
        let events = engine.receive(&host::init_request(&nonce), 0);
        let Some(Event::Send(report)) = events.first() else {
            panic!("no INIT answer: {events:?}")
        };
        let Ok(Some(Answer::Message(_, payload))) = AnswerReader::new(BROADCAST_CID).feed(report)
        else {
            panic!("an INIT answer that does not read");
        };
        let cid = InitAnswer::parse(&nonce, &payload).expect("our INIT").cid;
        HidHost { engine, cid }
    }

    /// The reports of a CTAPHID_CBOR request.
    pub fn cbor_reports(&self, request: &[u8]) -> Vec<protocol::ctaphid::Report> {
        use protocol::ctaphid::{host, Command};
        host::request(self.cid, Command::Cbor, request).expect("fits a message")
    }

    /// Feeds `reports` to the engine, hands the request to `answer` and returns the reports
    /// of the answer: one whole CTAPHID transaction.
    pub fn transact(
        &mut self,
        reports: &[protocol::ctaphid::Report],
        mut answer: impl FnMut(&[u8]) -> Vec<u8>,
    ) -> Vec<protocol::ctaphid::Report> {
        use protocol::ctaphid::Event;
        for report in reports {
            for event in self.engine.receive(report, 0) {
                if let Event::Request { token, payload, .. } = event {
                    let response = answer(&payload);
                    return self.engine.respond(token, &response);
                }
            }
        }
        panic!("the reports made no request")
    }
}

impl Default for HidHost {
    fn default() -> Self {
        Self::new()
    }
}
