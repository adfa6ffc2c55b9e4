//! Target `authenticator`: the whole authenticator (CTAP2 and U2F) driven by random request
//! sequences, a person who answers each request at random, and a clock that moves; every
//! response is checked the way a relying party and the person would check it.
//!
//! Input: `config | op*`. `config` bit 0 picks the keystore: the file keystore in memory
//! (`storage::FileKeystore`, the real sealing code) or protocol's `MemoryKeystore`. Each op is a
//! byte and its arguments, see [`Harness::step`]: the byte mod [`OPS`] is the operation, the
//! byte / [`OPS`] picks who sends it from [`ORIGINS`] (two USB channels, one channel number
//! written by two UDP peers, a hybrid peer). Typed ops build well-formed requests around the
//! credentials made so far; raw ops pass the fuzzer's bytes unchanged.
//!
//! Invariants (beyond "never panics"):
//! - presence: no credential is made, no reset or selection succeeds, and no assertion or U2F
//!   signature claims the user-present flag, unless the person approved this very request; an
//!   assertion without that flag exists only when the platform asked for one (`up: false`, U2F
//!   "don't enforce");
//! - RP binding: every credential an assertion uses was made by this authenticator for the
//!   RP ID hash the assertion is for, is still alive (not replaced by a newer discoverable
//!   credential of the same user, not erased by reset), and is the one named in a non-empty
//!   allowList or else a discoverable one;
//! - signatures verify with the public key handed out at registration (self attestation
//!   included), signature counters only ever grow, excluded credentials are never registered
//!   over, and check-only U2F authentication never signs;
//! - responses are a lone status byte or success followed by one canonical CBOR map;
//! - channels: no multi-command state continues on another origin. A getNextAssertion or a
//!   large-blob fragment succeeds only for the origin whose command began it, with no command
//!   from anywhere else and no CTAPHID_INIT of that channel in between;
//! - no extension output without UP: an assertion whose flags lack UP has no extension data
//!   and no largeBlobKey, and hmac-secret with `"up": false` is UNSUPPORTED_OPTION;
//! - a hybrid peer gets what a phone serves: anything but getInfo, selection, getAssertion,
//!   getNextAssertion and clientPIN fails, and nothing succeeds with `"up": false`.

use std::collections::HashSet;

use ciborium::Value;
use protocol::cbor;
use protocol::ctap1::Apdu;
use protocol::env::{Keystore, Operation, PresenceOutcome};
use protocol::hybrid::qr::RequestType;
use protocol::testing::{ManualClock, MemoryKeystore, ScriptedPresence, SeededRng};
use protocol::wire::{
    Command, GetAssertionRequest, GetAssertionResponse, GetInfoRequest, GetNextAssertionRequest,
    HmacSecretInput, LargeBlobsRequest, MakeCredentialRequest, MakeCredentialResponse, Options,
    PublicKeyCredentialDescriptor, PublicKeyCredentialParameters, PublicKeyCredentialRpEntity,
    PublicKeyCredentialUserEntity, Request, ResetRequest, Response, SelectionRequest,
};
use protocol::{Authenticator, AuthenticatorConfig, Origin};
use sha2::{Digest, Sha256};

use crate::input::Input;
use crate::verify::{cbor_prefix, int_field, is_canonical, text_field, PublicKey};

pub const RP_IDS: [&str; 4] = ["example.com", "login.example.com", "example.org", "x"];

/// Who sends each op: the first is the default (op bytes below [`OPS`]).
pub const ORIGINS: [Origin; 5] = [
    Origin::usb(1),
    Origin::usb(2),
    Origin::udp(0x7f00_0001_9c40, 7),
    Origin::udp(0x7f00_0001_9c41, 7),
    Origin::hybrid(1, RequestType::GetAssertion),
];

/// The large-blob array the large-blob op writes in two fragments.
fn blob_array() -> Vec<u8> {
    let mut array = cbor::encode(&Value::Array(vec![Value::Bytes(vec![0xb1; 30])]));
    let hash = Sha256::digest(&array);
    array.extend_from_slice(&hash[..16]);
    array
}
const BLOB_SPLIT: usize = 20;

const STATUS_SUCCESS: u8 = 0x00;
const STATUS_CREDENTIAL_EXCLUDED: u8 = 0x19;

const FLAG_UP: u8 = 0x01;
const FLAG_AT: u8 = 0x40;
const FLAG_ED: u8 = 0x80;

const SW_NO_ERROR: [u8; 2] = [0x90, 0x00];

/// How many op codes there are; bytes are taken modulo this.
pub const OPS: u8 = 13;
pub mod op {
    pub const MAKE_CREDENTIAL: u8 = 0;
    pub const GET_ASSERTION: u8 = 1;
    pub const GET_NEXT_ASSERTION: u8 = 2;
    pub const GET_INFO: u8 = 3;
    pub const RESET: u8 = 4;
    pub const SELECTION: u8 = 5;
    pub const U2F_REGISTER: u8 = 6;
    pub const U2F_AUTHENTICATE: u8 = 7;
    pub const RAW_CBOR: u8 = 8;
    pub const RAW_APDU: u8 = 9;
    pub const ADVANCE_CLOCK: u8 = 10;
    /// CTAPHID_INIT on the op's channel (or the end of its hybrid session).
    pub const FORGET_ORIGIN: u8 = 11;
    /// One of the two fragments of [`super::blob_array`] (no PIN: no token needed).
    pub const LARGE_BLOB_FRAGMENT: u8 = 12;
}

const OUTCOMES: [PresenceOutcome; 4] = [
    PresenceOutcome::Approved,
    PresenceOutcome::Denied,
    PresenceOutcome::TimedOut,
    PresenceOutcome::Cancelled,
];

/// A credential as the relying party (and this harness) knows it.
struct Known {
    id: Vec<u8>,
    rp_id_hash: [u8; 32],
    key: PublicKey,
    discoverable: bool,
    user_id: Vec<u8>,
    /// Replaced by a newer discoverable credential of the same user, or erased by reset.
    revoked: bool,
}

/// What getAssertion left for getNextAssertion, as the platform sees it.
struct Continuation {
    /// Who began it: the only origin that may continue it.
    origin: Origin,
    rp_id_hash: [u8; 32],
    client_data_hash: Vec<u8>,
    flags: u8,
    returned: HashSet<Vec<u8>>,
    left: usize,
    last_ms: u64,
}

/// The facts of a CTAP2 request that the checks need, read from its CBOR independently of the
/// authenticator. Missing or ill-typed fields are left empty: such a request cannot succeed.
#[derive(Default)]
struct Facts {
    rp_id: Option<String>,
    client_data_hash: Option<Vec<u8>>,
    user_id: Option<Vec<u8>>,
    rk: bool,
    up: Option<bool>,
    /// The credential IDs of the allowList (getAssertion) or excludeList (makeCredential).
    list: Option<Vec<Vec<u8>>>,
    /// getAssertion asks for hmac-secret.
    hmac_secret: bool,
    /// largeBlobs: the offset of a "set".
    blob_offset: Option<usize>,
}

fn facts(command: Option<Command>, params: &[u8]) -> Facts {
    let Some((map, used)) = cbor_prefix(params) else {
        return Facts::default();
    };
    if used != params.len() {
        return Facts::default();
    }
    let bytes = |v: Option<&Value>| v.and_then(Value::as_bytes).cloned();
    let option = |key: i64, name: &str| {
        int_field(&map, key)
            .and_then(|o| text_field(o, name))
            .and_then(Value::as_bool)
    };
    let ids = |v: Option<&Value>| {
        v.and_then(Value::as_array).map(|list| {
            list.iter()
                .filter_map(|d| bytes(text_field(d, "id")))
                .collect::<Vec<_>>()
        })
    };
    match command {
        Some(Command::MakeCredential) => Facts {
            rp_id: int_field(&map, 2)
                .and_then(|rp| text_field(rp, "id"))
                .and_then(Value::as_text)
                .map(str::to_owned),
            client_data_hash: bytes(int_field(&map, 1)),
            user_id: int_field(&map, 3).and_then(|u| bytes(text_field(u, "id"))),
            rk: option(7, "rk") == Some(true),
            up: option(7, "up"),
            list: ids(int_field(&map, 5)),
            ..Facts::default()
        },
        Some(Command::GetAssertion) => Facts {
            rp_id: int_field(&map, 1)
                .and_then(Value::as_text)
                .map(str::to_owned),
            client_data_hash: bytes(int_field(&map, 2)),
            up: option(5, "up"),
            list: ids(int_field(&map, 3)),
            hmac_secret: int_field(&map, 4)
                .and_then(|e| text_field(e, "hmac-secret"))
                .is_some(),
            ..Facts::default()
        },
        Some(Command::LargeBlobs) => Facts {
            blob_offset: int_field(&map, 2)
                .and(int_field(&map, 3))
                .and_then(Value::as_integer)
                .and_then(|n| usize::try_from(i128::from(n)).ok()),
            ..Facts::default()
        },
        _ => Facts::default(),
    }
}

pub fn run(data: &[u8]) {
    run_with_stats(data);
}

/// What a run verified, so tests can tell that the checks were reached.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Registrations (CTAP2 and U2F) whose attestation signature verified.
    pub registrations: usize,
    /// Assertions (CTAP2 and U2F) whose signature verified.
    pub assertions: usize,
    /// Requests refused after the person did not approve.
    pub refused: usize,
}

pub fn run_with_stats(data: &[u8]) -> Stats {
    let mut input = Input::new(data);
    if input.byte() & 1 == 0 {
        let keystore = storage::FileKeystore::in_memory(SeededRng::new(0x5eed));
        let mut harness = Harness::new(keystore);
        harness.run(&mut input);
        harness.stats
    } else {
        let mut harness = Harness::new(MemoryKeystore::new(0x5eed));
        harness.run(&mut input);
        harness.stats
    }
}

struct Harness<K: Keystore> {
    authenticator: Authenticator<(K, ScriptedPresence, ManualClock, SeededRng)>,
    clock: ManualClock,
    known: Vec<Known>,
    continuation: Option<Continuation>,
    /// Who sent the first large-blob fragment, with nothing else since, and when.
    blob_write: Option<(Origin, u64)>,
    /// Who sends the current op.
    origin: Origin,
    /// The current request was built by the harness (well-formed), not taken from the input.
    typed: bool,
    last_counter: Option<u32>,
    /// Presence asked in the current op, and the person's answer to it.
    asked_before: usize,
    outcome: PresenceOutcome,
    stats: Stats,
}

impl<K: Keystore> Harness<K> {
    fn new(keystore: K) -> Self {
        let clock = ManualClock::default();
        let authenticator = Authenticator::new(
            AuthenticatorConfig::default(),
            keystore,
            ScriptedPresence::always(PresenceOutcome::Approved),
            clock.clone(),
            SeededRng::new(7),
        );
        Harness {
            authenticator,
            clock,
            known: Vec::new(),
            continuation: None,
            blob_write: None,
            origin: ORIGINS[0],
            typed: false,
            last_counter: None,
            asked_before: 0,
            outcome: PresenceOutcome::Approved,
            stats: Stats::default(),
        }
    }

    fn run(&mut self, input: &mut Input<'_>) {
        // Bounded, so one input cannot run for seconds.
        for _ in 0..64 {
            if input.is_empty() {
                break;
            }
            self.step(input);
        }
    }

    fn step(&mut self, input: &mut Input<'_>) {
        let op = input.byte();
        self.origin = ORIGINS[usize::from(op / OPS) % ORIGINS.len()];
        match op % OPS {
            op::MAKE_CREDENTIAL => {
                let request = self.make_credential_request(input);
                self.cbor(request, input.byte());
            }
            op::GET_ASSERTION => {
                let request = self.get_assertion_request(input);
                self.typed = true;
                self.cbor(request, input.byte());
                self.typed = false;
            }
            op::GET_NEXT_ASSERTION => self.cbor(GetNextAssertionRequest.encode(), 0),
            op::GET_INFO => self.cbor(GetInfoRequest.encode(), 0),
            op::RESET => self.cbor(ResetRequest.encode(), input.byte()),
            op::SELECTION => self.cbor(SelectionRequest.encode(), input.byte()),
            op::U2F_REGISTER => {
                let rp = RP_IDS[usize::from(input.byte()) % RP_IDS.len()];
                let data = [[input.byte(); 32], rp_id_hash(rp)].concat();
                self.apdu(extended_apdu(0x01, 0x03, &data), input.byte());
            }
            op::U2F_AUTHENTICATE => {
                let rp = RP_IDS[usize::from(input.byte()) % RP_IDS.len()];
                let handle = self.pick_known(input.byte()).unwrap_or_default();
                let p1 = [0x03, 0x07, 0x08, 0x00][usize::from(input.byte() % 4)];
                let mut data = [[input.byte(); 32], rp_id_hash(rp)].concat();
                data.push(handle.len() as u8);
                data.extend_from_slice(&handle);
                self.apdu(extended_apdu(0x02, p1, &data), input.byte());
            }
            op::RAW_CBOR => {
                let request = input.bytes().to_vec();
                self.cbor(request, input.byte());
            }
            op::RAW_APDU => {
                let request = input.bytes().to_vec();
                self.apdu(request, input.byte());
            }
            op::FORGET_ORIGIN => {
                self.authenticator.forget_origin(self.origin);
                if self
                    .continuation
                    .as_ref()
                    .is_some_and(|c| c.origin == self.origin)
                {
                    self.continuation = None;
                }
                if self.blob_write.is_some_and(|(o, _)| o == self.origin) {
                    self.blob_write = None;
                }
            }
            op::LARGE_BLOB_FRAGMENT => {
                let array = blob_array();
                let fragment = match input.byte() % 2 {
                    0 => LargeBlobsRequest {
                        set: Some(array[..BLOB_SPLIT].to_vec()),
                        offset: Some(0),
                        length: Some(array.len() as i128),
                        ..LargeBlobsRequest::default()
                    },
                    _ => LargeBlobsRequest {
                        set: Some(array[BLOB_SPLIT..].to_vec()),
                        offset: Some(BLOB_SPLIT as i128),
                        ..LargeBlobsRequest::default()
                    },
                };
                self.cbor(fragment.encode(), 0);
            }
            _ => self.clock.advance(u64::from(input.u16()) * 8),
        }
    }

    /// The ID of a known credential (index mod count), `None` for 0 or none known.
    fn pick_known(&self, choice: u8) -> Option<Vec<u8>> {
        if choice == 0 || self.known.is_empty() {
            return None;
        }
        Some(
            self.known[usize::from(choice - 1) % self.known.len()]
                .id
                .clone(),
        )
    }

    fn make_credential_request(&self, input: &mut Input<'_>) -> Vec<u8> {
        let rp = RP_IDS[usize::from(input.byte()) % RP_IDS.len()];
        let user = input.byte() % 4;
        let algs: &[i64] = match input.byte() % 5 {
            0 => &[-7],
            1 => &[-8],
            2 => &[-8, -7],
            3 => &[-257],
            _ => &[],
        };
        let flags = input.byte();
        let exclude = self.pick_known(input.byte());
        let cdh = [input.byte(); 32];
        let option = |bit: u8| (flags & (1 << bit) != 0).then_some(flags & (2 << bit) != 0);
        let mut request = MakeCredentialRequest::new(
            cdh.to_vec(),
            PublicKeyCredentialRpEntity::with_id(rp),
            PublicKeyCredentialUserEntity {
                id: vec![user; 8],
                name: Some(format!("user{user}")),
                display_name: None,
            },
            algs.iter()
                .map(|alg| PublicKeyCredentialParameters::public_key(*alg))
                .collect(),
        );
        request.exclude_list = exclude
            .map(PublicKeyCredentialDescriptor::public_key)
            .into_iter()
            .collect();
        request.options = Options {
            rk: option(0),
            up: option(2),
            uv: option(4),
        };
        if flags & 0x40 != 0 {
            request.attestation_formats_preference = Some(vec!["none".into()]);
        }
        if flags & 0x80 != 0 {
            request.extensions.cred_blob = Some(vec![0xcb; 16]);
            request.extensions.large_blob_key = true;
            request.extensions.hmac_secret = true;
        }
        request.encode()
    }

    fn get_assertion_request(&self, input: &mut Input<'_>) -> Vec<u8> {
        let rp = RP_IDS[usize::from(input.byte()) % RP_IDS.len()];
        let allow = input.byte();
        let second = self.pick_known(input.byte());
        let flags = input.byte();
        let cdh = [input.byte(); 32];
        let mut request = GetAssertionRequest::new(rp, cdh.to_vec());
        // 1: an empty allowList (the same as none); otherwise a foreign ID, then known ones.
        if allow > 1 {
            let known = self.pick_known(allow - 1).into_iter().chain(second);
            request.allow_list = std::iter::once(vec![allow; 65])
                .chain(known)
                .map(PublicKeyCredentialDescriptor::public_key)
                .collect();
        }
        let option = |bit: u8| (flags & (1 << bit) != 0).then_some(flags & (2 << bit) != 0);
        request.options = Options {
            up: option(0),
            uv: option(2),
            rk: option(4),
        };
        if flags & 0x40 != 0 {
            request.extensions.cred_blob = true;
            request.extensions.large_blob_key = true;
        }
        if flags & 0x80 != 0 {
            // Well-formed, with a key agreement no key agreement key matches: with presence it
            // fails in the key agreement, without it it must fail before.
            request.extensions.hmac_secret = Some(HmacSecretInput {
                key_agreement: cbor::int_map(vec![(1, Value::Integer(2.into()))]),
                salt_enc: vec![0; 32],
                salt_auth: vec![0; 32],
                pin_uv_auth_protocol: 2,
            });
        }
        let Some(Value::Map(mut params)) = request.to_cbor() else {
            unreachable!("a getAssertion request has parameters")
        };
        if allow == 1 {
            // The wire type sends no empty list; the authenticator must take one as none.
            params.push((Value::Integer(3.into()), Value::Array(Vec::new())));
        }
        [
            vec![Command::GetAssertion.as_byte()],
            cbor::encode(&Value::Map(params)),
        ]
        .concat()
    }

    fn begin(&mut self, presence: u8) {
        self.outcome = OUTCOMES[usize::from(presence % 4)];
        let person = self.authenticator.presence_mut();
        person.script.clear();
        person.default = self.outcome;
        self.asked_before = person.asked.len();
    }

    /// Whether the person approved `operation` during the current op.
    fn approved(&mut self, operation: Operation) -> bool {
        self.outcome == PresenceOutcome::Approved
            && self.authenticator.presence_mut().asked[self.asked_before..]
                .iter()
                .any(|(asked, _, _)| *asked == operation)
    }

    fn count_refusal(&mut self, failed: bool) {
        let asked = self.authenticator.presence_mut().asked.len() > self.asked_before;
        if failed && asked && self.outcome != PresenceOutcome::Approved {
            self.stats.refused += 1;
        }
    }

    fn check_counter(&mut self, counter: u32) {
        if let Some(last) = self.last_counter {
            assert!(
                counter > last,
                "signature counter went from {last} to {counter}"
            );
        }
        self.last_counter = Some(counter);
    }

    /// What the model forgets when any command arrives: the continuations of other origins.
    fn command_from(&mut self, origin: Origin) {
        if self
            .continuation
            .as_ref()
            .is_some_and(|c| c.origin != origin)
        {
            self.continuation = None;
        }
    }

    fn cbor(&mut self, request: Vec<u8>, presence: u8) {
        self.begin(presence);
        let origin = self.origin;
        let response = self.authenticator.process_cbor(origin, &request);
        let (&status, body) = response.split_first().expect("a status byte");
        self.count_refusal(status != STATUS_SUCCESS);
        if status != STATUS_SUCCESS {
            assert!(body.is_empty(), "status {status:#x} with a body");
        }
        if !body.is_empty() {
            assert!(is_canonical(body), "response is not canonical CBOR");
            let value = cbor::decode(body).expect("response is CBOR");
            assert!(value.is_map(), "response is not a map");
        }
        self.command_from(origin);
        let blob_write = self.blob_write.take();
        let Some((&byte, params)) = request.split_first() else {
            return;
        };
        let command = Command::from_byte(byte);
        let facts = facts(command, params);
        if command != Some(Command::GetNextAssertion) {
            self.continuation = None;
        }
        if origin.is_hybrid() {
            let served = [
                Command::GetInfo,
                Command::Selection,
                Command::GetAssertion,
                Command::GetNextAssertion,
                Command::ClientPin,
            ];
            if !command.is_some_and(|command| served.contains(&command)) {
                assert_ne!(status, STATUS_SUCCESS, "a hybrid peer was served {byte:#x}");
            }
            if facts.up == Some(false) {
                assert_ne!(
                    status, STATUS_SUCCESS,
                    "a hybrid peer was served without presence"
                );
            }
        }
        if command == Some(Command::GetAssertion) && facts.up == Some(false) && facts.hmac_secret {
            assert_ne!(status, STATUS_SUCCESS, "hmac-secret without presence");
            // A well-formed request can only fail on its options (§6.2.2 step 4: rk is
            // UNSUPPORTED_OPTION, uv without built-in UV INVALID_OPTION) or on up=false itself,
            // never in the hmac-secret input, which must not be looked at.
            if self.typed {
                assert!(
                    matches!(status, 0x2b | 0x2c),
                    "hmac-secret without presence: status {status:#x}"
                );
            }
        }
        if command == Some(Command::LargeBlobs) && status == STATUS_SUCCESS {
            self.after_large_blob(&facts, blob_write);
        }
        match command {
            Some(Command::MakeCredential) => self.after_make_credential(&facts, status, body),
            Some(Command::GetAssertion) => self.after_get_assertion(&facts, status, body),
            Some(Command::GetNextAssertion) => self.after_get_next_assertion(status, body),
            Some(Command::Reset) if status == STATUS_SUCCESS => {
                assert!(self.approved(Operation::Reset), "reset without presence");
                for known in &mut self.known {
                    known.revoked = true;
                }
            }
            Some(Command::Selection) if status == STATUS_SUCCESS => {
                assert!(
                    self.approved(Operation::Selection),
                    "selection without presence"
                );
            }
            _ => {}
        }
    }

    /// A successful "set": a first fragment begins a write for its origin; a later one must
    /// continue the write its own origin began, with nothing in between.
    fn after_large_blob(&mut self, facts: &Facts, began: Option<(Origin, u64)>) {
        match facts.blob_offset {
            Some(0) => self.blob_write = Some((self.origin, self.now())),
            Some(_) => {
                let Some((origin, at)) = began else {
                    panic!("a large-blob fragment continued a write nobody began just before");
                };
                assert_eq!(
                    origin, self.origin,
                    "a large-blob write continued by another origin"
                );
                assert!(
                    self.now() - at <= 30_000,
                    "a large-blob write continued after 30 s"
                );
            }
            None => {}
        }
    }

    fn after_make_credential(&mut self, facts: &Facts, status: u8, body: &[u8]) {
        let rp_id_hash = facts.rp_id.as_deref().map(rp_id_hash);
        let excluded = facts.list.iter().flatten().any(|id| {
            self.known
                .iter()
                .any(|k| !k.revoked && k.id == *id && Some(k.rp_id_hash) == rp_id_hash)
        });
        if excluded {
            // A live credential of this RP is excluded (CTAP 2.1 §6.1.2 step 4): the request
            // may fail earlier for other reasons, but never succeed.
            assert_ne!(
                status, STATUS_SUCCESS,
                "registered over an excluded credential"
            );
        }
        if status == STATUS_CREDENTIAL_EXCLUDED {
            assert!(
                excluded,
                "CREDENTIAL_EXCLUDED without a live excluded credential"
            );
        }
        if status != STATUS_SUCCESS {
            return;
        }
        assert!(
            self.approved(Operation::Register),
            "credential made without presence"
        );
        let response = MakeCredentialResponse::decode(body).expect("a makeCredential response");
        let auth_data = &response.auth_data;
        let rp_id_hash = rp_id_hash.expect("made for an RP");
        assert_eq!(auth_data[..32], rp_id_hash, "authData for another RP");
        let flags = auth_data[32];
        assert!(
            flags & FLAG_UP != 0 && flags & FLAG_AT != 0,
            "flags {flags:#x}"
        );
        self.check_counter(u32::from_be_bytes(auth_data[33..37].try_into().unwrap()));
        let id_len = usize::from(u16::from_be_bytes([auth_data[53], auth_data[54]]));
        let id = auth_data[55..55 + id_len].to_vec();
        let (cose, used) = cbor_prefix(&auth_data[55 + id_len..]).expect("a COSE key");
        if flags & FLAG_ED == 0 {
            assert_eq!(55 + id_len + used, auth_data.len(), "bytes after the key");
        }
        let key = PublicKey::from_cose(&cose).expect("an ES256 or EdDSA COSE key");
        let cdh = facts.client_data_hash.as_deref().expect("a clientDataHash");
        let statement = &response.att_stmt;
        match response.fmt.as_str() {
            "packed" => {
                let alg = text_field(statement, "alg").and_then(Value::as_integer);
                assert_eq!(alg.map(i128::from), Some(i128::from(key.cose_alg())));
                let sig = text_field(statement, "sig")
                    .and_then(Value::as_bytes)
                    .expect("sig");
                let signed = [auth_data.as_slice(), cdh].concat();
                assert!(
                    key.verifies(&signed, sig),
                    "self attestation does not verify"
                );
                self.stats.registrations += 1;
            }
            "none" => assert_eq!(statement, &Value::Map(vec![])),
            other => panic!("attestation format {other:?}"),
        }
        assert!(
            self.known.iter().all(|k| k.id != id),
            "a credential ID was issued twice"
        );
        let user_id = facts.user_id.clone().expect("a user id");
        if facts.rk {
            for known in &mut self.known {
                if known.discoverable && known.rp_id_hash == rp_id_hash && known.user_id == user_id
                {
                    known.revoked = true;
                }
            }
        }
        self.known.push(Known {
            id,
            rp_id_hash,
            key,
            discoverable: facts.rk,
            user_id,
            revoked: false,
        });
    }

    fn after_get_assertion(&mut self, facts: &Facts, status: u8, body: &[u8]) {
        if status != STATUS_SUCCESS {
            return;
        }
        let response = &GetAssertionResponse::decode(body).expect("a getAssertion response");
        let rp_id_hash = rp_id_hash(facts.rp_id.as_deref().expect("an RP ID"));
        let cdh = facts.client_data_hash.clone().expect("a clientDataHash");
        let allow = facts.list.as_ref().filter(|list| !list.is_empty());
        let up_granted = self.approved(Operation::Authenticate);
        let silent = facts.up == Some(false);
        let (id, flags) =
            self.check_assertion(response, &rp_id_hash, &cdh, allow, up_granted, silent);
        let count = response
            .number_of_credentials
            .map(|n| usize::try_from(n).expect("a small count"));
        if let Some(count) = count {
            assert!(allow.is_none(), "numberOfCredentials with an allowList");
            assert!(count > 1, "numberOfCredentials {count}");
            let alive = self
                .known
                .iter()
                .filter(|k| !k.revoked && k.discoverable && k.rp_id_hash == rp_id_hash)
                .count();
            assert_eq!(
                count, alive,
                "numberOfCredentials differs from the live credentials"
            );
            self.continuation = Some(Continuation {
                origin: self.origin,
                rp_id_hash,
                client_data_hash: cdh,
                flags,
                returned: HashSet::from([id]),
                left: count - 1,
                last_ms: self.now(),
            });
        }
    }

    fn after_get_next_assertion(&mut self, status: u8, body: &[u8]) {
        let Some(mut continuation) = self.continuation.take() else {
            assert_ne!(
                status, STATUS_SUCCESS,
                "getNextAssertion without a getAssertion"
            );
            return;
        };
        let expired = self.now() - continuation.last_ms > 30_000;
        if status != STATUS_SUCCESS {
            return;
        }
        assert!(!expired, "getNextAssertion after its 30 s");
        assert_eq!(
            continuation.origin, self.origin,
            "getNextAssertion continued another origin's getAssertion"
        );
        assert!(
            continuation.left > 0,
            "more assertions than numberOfCredentials"
        );
        let response = &GetAssertionResponse::decode(body).expect("a getAssertion response");
        let up_granted = continuation.flags & FLAG_UP != 0;
        let (id, flags) = self.check_assertion(
            response,
            &continuation.rp_id_hash,
            &continuation.client_data_hash.clone(),
            None,
            up_granted,
            !up_granted,
        );
        assert_eq!(
            flags, continuation.flags,
            "getNextAssertion with other flags"
        );
        assert!(
            response.number_of_credentials.is_none(),
            "numberOfCredentials again"
        );
        assert!(
            continuation.returned.insert(id),
            "a credential returned twice"
        );
        continuation.left -= 1;
        continuation.last_ms = self.now();
        self.continuation = Some(continuation);
    }

    /// The checks every assertion passes; returns its credential ID and flags.
    fn check_assertion(
        &mut self,
        response: &GetAssertionResponse,
        rp_id_hash: &[u8; 32],
        cdh: &[u8],
        allow: Option<&Vec<Vec<u8>>>,
        up_granted: bool,
        silent: bool,
    ) -> (Vec<u8>, u8) {
        let auth_data = &response.auth_data;
        assert!(auth_data.len() >= 37, "short authData");
        assert_eq!(&auth_data[..32], rp_id_hash, "assertion for another RP");
        let flags = auth_data[32];
        if flags & FLAG_UP == 0 {
            assert!(
                flags & FLAG_ED == 0,
                "extension output without user presence"
            );
            assert!(
                response.large_blob_key.is_none(),
                "a largeBlobKey without user presence"
            );
        }
        if flags & FLAG_UP != 0 {
            assert!(
                up_granted,
                "user-present flag without the person's approval"
            );
        } else {
            assert!(
                silent,
                "an assertion without presence that nobody asked for"
            );
        }
        self.check_counter(u32::from_be_bytes(auth_data[33..37].try_into().unwrap()));
        assert!(
            response.credential.is_public_key(),
            "a credential of another type"
        );
        let id = response.credential.id.clone();
        let known = self
            .known
            .iter()
            .find(|k| k.id == id)
            .expect("an assertion from a credential nobody made");
        assert!(!known.revoked, "an assertion from a revoked credential");
        assert_eq!(
            &known.rp_id_hash, rp_id_hash,
            "a credential used by another RP"
        );
        match allow {
            Some(list) => assert!(list.contains(&id), "a credential outside the allowList"),
            None => assert!(
                known.discoverable,
                "discovery returned a non-discoverable one"
            ),
        }
        if let Some(user) = &response.user {
            assert!(
                known.discoverable,
                "a user entity for a non-discoverable credential"
            );
            assert_eq!(user.id, known.user_id, "another user's handle");
        }
        let sig = &response.signature;
        let signed = [auth_data.as_slice(), cdh].concat();
        assert!(
            known.key.verifies(&signed, sig),
            "assertion signature does not verify"
        );
        self.stats.assertions += 1;
        (id, flags)
    }

    fn apdu(&mut self, request: Vec<u8>, presence: u8) {
        self.begin(presence);
        let origin = self.origin;
        let response = self.authenticator.process_apdu(origin, &request);
        self.command_from(origin);
        self.continuation = None;
        self.blob_write = None;
        assert!(response.len() >= 2, "no status word");
        let (data, sw) = response.split_at(response.len() - 2);
        self.count_refusal(sw != SW_NO_ERROR);
        if sw != SW_NO_ERROR {
            assert!(data.is_empty(), "status {sw:02x?} with data");
            return;
        }
        let apdu = Apdu::parse(&request).expect("a successful APDU parses");
        match apdu.ins {
            0x01 => self.after_u2f_register(apdu.data, data),
            0x02 => self.after_u2f_authenticate(apdu.p1, apdu.data, data),
            0x03 => assert_eq!(data, b"U2F_V2"),
            ins => panic!("instruction {ins:#x} succeeded"),
        }
    }

    fn after_u2f_register(&mut self, request: &[u8], response: &[u8]) {
        assert!(
            self.approved(Operation::Register),
            "U2F registration without presence"
        );
        let (challenge, application) = request.split_at(32);
        assert_eq!(response[0], 0x05, "reserved byte");
        let point = &response[1..66];
        let key = PublicKey::from_sec1(point).expect("a P-256 point");
        let handle_len = usize::from(response[66]);
        let handle = response[67..67 + handle_len].to_vec();
        let rest = &response[67 + handle_len..];
        let cert_len = der_len(rest).expect("a DER certificate");
        let signature = &rest[cert_len..];
        let signed = [&[0u8][..], application, challenge, &handle, point].concat();
        assert!(key.verifies(&signed, signature), "registration signature");
        self.stats.registrations += 1;
        assert!(
            self.known.iter().all(|k| k.id != handle),
            "a key handle issued twice"
        );
        self.known.push(Known {
            id: handle,
            rp_id_hash: application.try_into().unwrap(),
            key,
            discoverable: false,
            user_id: Vec::new(),
            revoked: false,
        });
    }

    fn after_u2f_authenticate(&mut self, p1: u8, request: &[u8], response: &[u8]) {
        let (challenge, rest) = request.split_at(32);
        let (application, handle) = rest.split_at(32);
        let handle = &handle[1..];
        let flags = response[0];
        match p1 {
            0x03 => {
                assert_eq!(flags, 0x01, "enforce-presence without the flag");
                assert!(
                    self.approved(Operation::Authenticate),
                    "U2F signature without presence"
                );
            }
            0x08 => {
                if flags & 1 != 0 {
                    assert!(
                        self.approved(Operation::Authenticate),
                        "presence flag unasked"
                    );
                }
            }
            other => panic!("U2F authenticate with control byte {other:#x} signed"),
        }
        let counter = u32::from_be_bytes(response[1..5].try_into().unwrap());
        self.check_counter(counter);
        let known = self
            .known
            .iter()
            .find(|k| k.id == handle)
            .expect("a U2F signature from a key handle nobody made");
        assert!(!known.revoked, "a U2F signature from a revoked credential");
        assert_eq!(
            known.rp_id_hash, application,
            "a key handle used by another application"
        );
        let signed = [application, &response[..5], challenge].concat();
        assert!(known.key.verifies(&signed, &response[5..]), "U2F signature");
        self.stats.assertions += 1;
    }

    fn now(&self) -> u64 {
        use protocol::env::Clock as _;
        self.clock.now_ms()
    }
}

pub fn rp_id_hash(rp_id: &str) -> [u8; 32] {
    Sha256::digest(rp_id.as_bytes()).into()
}

/// An extended-length APDU, as libfido2 and python-fido2 send U2F requests.
pub fn extended_apdu(ins: u8, p1: u8, data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, ins, p1, 0, 0];
    out.extend_from_slice(&(data.len() as u16).to_be_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&[0, 0]);
    out
}

/// The length of the DER element at the start of `bytes` (tag, length, contents).
fn der_len(bytes: &[u8]) -> Option<usize> {
    let first = *bytes.get(1)?;
    let (header, len) = match first {
        n if n < 0x80 => (2, usize::from(n)),
        0x81 => (3, usize::from(*bytes.get(2)?)),
        0x82 => (
            4,
            usize::from(u16::from_be_bytes([*bytes.get(2)?, *bytes.get(3)?])),
        ),
        _ => return None,
    };
    (header + len <= bytes.len()).then_some(header + len)
}

/// Typed programs: the ceremonies a platform runs, with and without the person's approval.
/// They are committed as seeds (`seeds/authenticator/typed-*`) and checked by the tests below.
pub fn typed_programs() -> Vec<(&'static str, Vec<u8>, Stats)> {
    use crate::input::Program;
    const APPROVE: u8 = 0;
    const DENY: u8 = 1;
    let mut programs = Vec::new();
    for (config, ceremonies, refusals) in [
        (0u8, "typed-ceremonies-file", "typed-refusals-file"),
        (1, "typed-ceremonies-memory", "typed-refusals-memory"),
    ] {
        // Two discoverable credentials (ES256, EdDSA) and a U2F one for example.com; discovery
        // returns both discoverable ones (getNextAssertion), the allowList the U2F one, U2F
        // authenticates with it; then reset erases all and sign-in finds nothing.
        let mut p = Program::default();
        p.byte(config);
        p.raw(&[op::MAKE_CREDENTIAL, 0, 1, 0, 0x03, 0, 0xc1, APPROVE]);
        p.raw(&[op::MAKE_CREDENTIAL, 0, 2, 1, 0x03, 0, 0xc2, APPROVE]);
        p.raw(&[op::U2F_REGISTER, 0, 0xc3, APPROVE]);
        p.raw(&[op::GET_ASSERTION, 0, 0, 0, 0, 0xa1, APPROVE]);
        p.raw(&[op::GET_NEXT_ASSERTION]);
        p.raw(&[op::GET_ASSERTION, 0, 4, 0, 0, 0xa2, APPROVE]);
        p.raw(&[op::U2F_AUTHENTICATE, 0, 3, 0, 0xa3, APPROVE]);
        p.raw(&[op::RESET, APPROVE]);
        p.raw(&[op::GET_ASSERTION, 0, 0, 0, 0, 0xa4, APPROVE]);
        let stats = Stats {
            registrations: 3,
            assertions: 4,
            refused: 0,
        };
        programs.push((ceremonies, p.0, stats));

        // The same asks, each denied (or timed out, or cancelled): nothing is made or signed;
        // silent assertions (up: false, a discovery and one naming its credential) and U2F
        // "don't enforce" sign without asking.
        let mut p = Program::default();
        p.byte(config);
        p.raw(&[op::MAKE_CREDENTIAL, 1, 1, 0, 0x03, 0, 0xc1, APPROVE]);
        p.raw(&[op::MAKE_CREDENTIAL, 1, 2, 0, 0x03, 0, 0xc2, DENY]);
        p.raw(&[op::U2F_REGISTER, 1, 0xc3, 2]);
        p.raw(&[op::GET_ASSERTION, 1, 0, 0, 0, 0xa1, DENY]);
        p.raw(&[op::GET_ASSERTION, 1, 2, 0, 0, 0xa2, 3]);
        p.raw(&[op::GET_ASSERTION, 1, 0, 0, 0x01, 0xa3, DENY]);
        p.raw(&[op::GET_ASSERTION, 1, 2, 0, 0x01, 0xa7, DENY]);
        p.raw(&[op::U2F_REGISTER, 1, 0xc4, APPROVE]);
        p.raw(&[op::U2F_AUTHENTICATE, 1, 2, 0, 0xa4, DENY]);
        p.raw(&[op::U2F_AUTHENTICATE, 1, 2, 2, 0xa5, DENY]);
        p.raw(&[op::U2F_AUTHENTICATE, 1, 2, 1, 0xa6, APPROVE]);
        p.raw(&[op::RESET, DENY]);
        p.raw(&[op::SELECTION, DENY]);
        let stats = Stats {
            registrations: 2,
            assertions: 3,
            refused: 7,
        };
        programs.push((refusals, p.0, stats));
    }
    // The attacks of the strict-CTAP issue, each from another origin than the state's owner:
    // getNextAssertion from another channel, after INIT, a large-blob fragment from another
    // UDP peer writing the same channel number, hmac-secret without presence, a hybrid peer.
    for (config, name) in [(0u8, "typed-channels-file"), (1, "typed-channels-memory")] {
        let from = |origin: u8, op: u8| op + OPS * origin;
        let mut p = Program::default();
        p.byte(config);
        p.raw(&[op::MAKE_CREDENTIAL, 0, 1, 0, 0x03, 0, 0xc1, APPROVE]);
        p.raw(&[op::MAKE_CREDENTIAL, 0, 2, 0, 0x03, 0, 0xc2, APPROVE]);
        p.raw(&[op::GET_ASSERTION, 0, 0, 0, 0, 0xa1, APPROVE]);
        p.raw(&[from(1, op::GET_NEXT_ASSERTION)]);
        p.raw(&[op::GET_NEXT_ASSERTION]);
        p.raw(&[op::GET_ASSERTION, 0, 0, 0, 0, 0xa2, APPROVE]);
        p.raw(&[op::FORGET_ORIGIN]);
        p.raw(&[op::GET_NEXT_ASSERTION]);
        p.raw(&[op::GET_ASSERTION, 0, 0, 0, 0, 0xa3, APPROVE]);
        p.raw(&[op::GET_NEXT_ASSERTION]);
        p.raw(&[from(2, op::LARGE_BLOB_FRAGMENT), 0]);
        p.raw(&[from(3, op::LARGE_BLOB_FRAGMENT), 1]);
        p.raw(&[from(2, op::LARGE_BLOB_FRAGMENT), 0]);
        p.raw(&[from(2, op::LARGE_BLOB_FRAGMENT), 1]);
        p.raw(&[op::GET_ASSERTION, 0, 2, 0, 0x81, 0xa4, APPROVE]);
        p.raw(&[from(4, op::GET_ASSERTION), 0, 2, 0, 0x01, 0xa5, APPROVE]);
        p.raw(&[from(4, op::LARGE_BLOB_FRAGMENT), 0]);
        let stats = Stats {
            registrations: 2,
            assertions: 4,
            refused: 0,
        };
        programs.push((name, p.0, stats));
    }
    programs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_programs_reach_the_checks() {
        for (name, program, expected) in typed_programs() {
            assert_eq!(run_with_stats(&program), expected, "{name}");
        }
    }

    #[test]
    fn typed_programs_are_committed_as_seeds() {
        let programs = typed_programs()
            .into_iter()
            .map(|(name, program, _)| (name, program));
        crate::committed_seeds::assert_committed("authenticator", programs);
    }
}
