//! Target `client_pin`: the PIN/UV auth protocols and clientPIN (CTAP 2.1 §6.5) driven the way
//! platforms drive them (key agreement, setPIN, changePIN, tokens with and without
//! permissions, tokens used by makeCredential, getAssertion and credential management), mixed
//! with raw requests, wrong PINs, stale shared secrets, forged and stale tokens, reset and time.
//!
//! The platform side uses protocol's `pin_protocol` primitives (key agreement, AES-CBC,
//! HMAC); python-fido2 checks them against an independent platform in `tests/e2e/pin.py`.
//!
//! Input: `op*`, each op a byte (mod [`OPS`]) and its arguments, see [`Harness::step`].
//!
//! Invariants (beyond "never panics"):
//! - a pinUvAuthToken is only ever handed out for the PIN that was set last, encrypted under
//!   the current shared secret, and never while the PIN is blocked;
//! - every request answered PIN_INVALID costs exactly one retry, a token handed out restores
//!   all retries, and nothing else changes the count (getPinRetries is checked after every
//!   op); after three wrong PINs in a row, no PIN is accepted until a power cycle;
//! - the user-verified flag of makeCredential and getAssertion, and credential management
//!   success, need a pinUvAuthParam made with the token handed out last, under its protocol,
//!   carrying the right permission, for the RP the token is bound to; a token authorizes one
//!   ceremony (CTAP 2.1: permissions except lbw are cleared once presence was collected);
//! - setPIN, changePIN and reset end the current token; reset forgets the PIN.

use ciborium::Value;
use protocol::ctap2::pin::protocol::{KeyAgreementKey, PinProtocol, PlatformKey, SharedSecret};
use protocol::env::PresenceOutcome;
use protocol::testing::{ManualClock, MemoryKeystore, ScriptedPresence, SeededRng};
use protocol::wire::{
    permission, ClientPinRequest, ClientPinResponse, ClientPinSubcommand, Command,
    CredentialManagementRequest, CredentialManagementSubcommand, GetAssertionRequest,
    GetAssertionResponse, KeyAgreementPublicKey, MakeCredentialRequest, MakeCredentialResponse,
    PublicKeyCredentialParameters, PublicKeyCredentialRpEntity, PublicKeyCredentialUserEntity,
    Request, ResetRequest, Response, StatusCode,
};
use protocol::{Authenticator, AuthenticatorConfig};
use sha2::{Digest, Sha256};

use crate::input::Input;
use crate::verify::{int_field, text_field};

/// The one channel this target's platform talks on.
const ORIGIN: protocol::Origin = protocol::Origin::usb(1);

pub const PINS: [&str; 6] = ["1234", "123456", "hunter2!", "12", "ÄÖÜß", ""];
const RP_IDS: [&str; 3] = ["example.com", "example.org", "other.example"];

const SUCCESS: u8 = StatusCode::Success as u8;
const PIN_INVALID: u8 = StatusCode::PinInvalid as u8;
const PIN_BLOCKED: u8 = StatusCode::PinBlocked as u8;
const PIN_AUTH_BLOCKED: u8 = StatusCode::PinAuthBlocked as u8;
const PIN_POLICY_VIOLATION: u8 = StatusCode::PinPolicyViolation as u8;
const MAX_RETRIES: i128 = 8;

const PERMISSION_MC: u8 = permission::MAKE_CREDENTIAL;
const PERMISSION_GA: u8 = permission::GET_ASSERTION;
const PERMISSION_CM: u8 = permission::CREDENTIAL_MANAGEMENT;
const PERMISSION_LBW: u8 = permission::LARGE_BLOB_WRITE;

const FLAG_UV: u8 = 0x04;

pub const OPS: u8 = 13;
pub mod op {
    pub const KEY_AGREEMENT: u8 = 0;
    pub const SET_PIN: u8 = 1;
    pub const CHANGE_PIN: u8 = 2;
    pub const GET_PIN_TOKEN: u8 = 3;
    pub const TOKEN_WITH_PERMISSIONS: u8 = 4;
    pub const GET_RETRIES: u8 = 5;
    pub const MAKE_CREDENTIAL: u8 = 6;
    pub const GET_ASSERTION: u8 = 7;
    pub const CREDENTIALS_METADATA: u8 = 8;
    pub const RAW: u8 = 9;
    pub const RESET: u8 = 10;
    pub const ADVANCE_CLOCK: u8 = 11;
    pub const RAW_CLIENT_PIN: u8 = 12;
}

/// A shared secret the platform holds, and what the harness knows of its freshness.
struct Session {
    platform_key: KeyAgreementPublicKey,
    secret: SharedSecret,
    /// The authenticator regenerated its key agreement key since (wrong PIN, reset): using
    /// this secret can no longer succeed.
    stale: bool,
}

/// The token handed out last, as the model of §6.5.2 sees it.
struct Token {
    protocol: PinProtocol,
    bytes: Vec<u8>,
    permissions: u8,
    rp_id: Option<String>,
}

/// What the MAC of a request was made with.
#[derive(Clone, Copy)]
enum TokenChoice {
    Current,
    Forged,
}

pub fn run(data: &[u8]) {
    run_with_stats(data);
}

/// What a run went through, so tests can tell that the checks were reached.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub tokens: usize,
    /// User-verified ceremonies and credential management calls the token allowed.
    pub authorized: usize,
    pub wrong_pins: usize,
}

pub fn run_with_stats(data: &[u8]) -> Stats {
    let mut harness = Harness::new();
    harness.run(&mut Input::new(data));
    harness.stats
}

struct Harness {
    authenticator: Authenticator<(MemoryKeystore, ScriptedPresence, ManualClock, SeededRng)>,
    clock: ManualClock,
    sessions: [Option<Session>; 2],
    pin: Option<&'static str>,
    retries: i128,
    mismatches: u8,
    token: Option<Token>,
    platform_random: u8,
    stats: Stats,
}

fn protocol_of(byte: u8) -> PinProtocol {
    if byte & 1 == 0 {
        PinProtocol::Two
    } else {
        PinProtocol::One
    }
}

fn index(protocol: PinProtocol) -> usize {
    match protocol {
        PinProtocol::One => 0,
        PinProtocol::Two => 1,
    }
}

fn pin_hash(pin: &str) -> [u8; 16] {
    Sha256::digest(pin.as_bytes())[..16].try_into().unwrap()
}

fn padded(pin: &str) -> Vec<u8> {
    let mut out = pin.as_bytes().to_vec();
    out.resize(64, 0);
    out
}

impl Harness {
    fn new() -> Self {
        let clock = ManualClock::default();
        Harness {
            authenticator: Authenticator::new(
                AuthenticatorConfig::default(),
                MemoryKeystore::new(11),
                ScriptedPresence::always(PresenceOutcome::Approved),
                clock.clone(),
                SeededRng::new(13),
            ),
            clock,
            sessions: [None, None],
            pin: None,
            retries: MAX_RETRIES,
            mismatches: 0,
            token: None,
            platform_random: 0,
            stats: Stats::default(),
        }
    }

    fn run(&mut self, input: &mut Input<'_>) {
        for _ in 0..48 {
            if input.is_empty() {
                break;
            }
            self.step(input);
            self.check_retries();
        }
    }

    fn step(&mut self, input: &mut Input<'_>) {
        match input.byte() % OPS {
            op::KEY_AGREEMENT => self.key_agreement(protocol_of(input.byte()), input.byte()),
            op::SET_PIN => {
                let protocol = protocol_of(input.byte());
                let pin = PINS[usize::from(input.byte()) % PINS.len()];
                self.set_pin(protocol, pin);
            }
            op::CHANGE_PIN => {
                let protocol = protocol_of(input.byte());
                let old = PINS[usize::from(input.byte()) % PINS.len()];
                let new = PINS[usize::from(input.byte()) % PINS.len()];
                self.change_pin(protocol, old, new);
            }
            op::GET_PIN_TOKEN => {
                let protocol = protocol_of(input.byte());
                let pin = PINS[usize::from(input.byte()) % PINS.len()];
                self.get_token(protocol, pin, None);
            }
            op::TOKEN_WITH_PERMISSIONS => {
                let protocol = protocol_of(input.byte());
                let pin = PINS[usize::from(input.byte()) % PINS.len()];
                let permissions = input.byte();
                let rp = input.byte();
                let rp = (rp != 0).then(|| RP_IDS[usize::from(rp - 1) % RP_IDS.len()]);
                self.get_token(protocol, pin, Some((permissions, rp)));
            }
            op::GET_RETRIES => {
                let request = ClientPinRequest {
                    pin_uv_auth_protocol: Some(1),
                    ..ClientPinRequest::new(ClientPinSubcommand::GetPinRetries)
                };
                self.client_pin(&request);
            }
            op::MAKE_CREDENTIAL | op::GET_ASSERTION => {
                let make = input.byte().is_multiple_of(2);
                let rp = RP_IDS[usize::from(input.byte()) % RP_IDS.len()];
                let protocol = protocol_of(input.byte());
                let choice = if input.byte().is_multiple_of(4) {
                    TokenChoice::Forged
                } else {
                    TokenChoice::Current
                };
                let rk = input.byte().is_multiple_of(2);
                if make {
                    self.make_credential(rp, protocol, choice, rk);
                } else {
                    self.get_assertion(rp, protocol, choice);
                }
            }
            op::CREDENTIALS_METADATA => {
                let protocol = protocol_of(input.byte());
                self.credentials_metadata(protocol);
            }
            op::RAW => {
                let request = input.bytes().to_vec();
                let response = self.authenticator.process_cbor(ORIGIN, &request);
                self.after_raw(&request, response[0]);
            }
            op::RESET => {
                let response = self
                    .authenticator
                    .process_cbor(ORIGIN, &ResetRequest.encode());
                if response[0] == SUCCESS {
                    self.after_reset();
                }
            }
            op::RAW_CLIENT_PIN => {
                let params = input.bytes();
                let request = [&[Command::ClientPin.as_byte()][..], params].concat();
                let response = self.authenticator.process_cbor(ORIGIN, &request);
                self.after_raw(&request, response[0]);
            }
            _ => self.clock.advance(u64::from(input.u16()) * 16),
        }
    }

    /// A raw request: without the shared secret or a token, the fuzzer's bytes can change
    /// the PIN state only by a wrong guess (or a reset); anything else is a violation.
    fn after_raw(&mut self, request: &[u8], status: u8) {
        let params = crate::verify::cbor_prefix(request.get(1..).unwrap_or_default());
        let field = |key: i64| {
            params
                .as_ref()
                .and_then(|(map, _)| int_field(map, key))
                .and_then(Value::as_integer)
                .map(i128::from)
        };
        let command = request.first().copied().and_then(Command::from_byte);
        match (command, status) {
            (Some(Command::Reset), SUCCESS) => self.after_reset(),
            (Some(Command::ClientPin), SUCCESS) => {
                let sub_command = field(2);
                assert!(
                    matches!(sub_command, Some(1 | 2)),
                    "clientPIN subcommand {sub_command:?} succeeded without the shared secret"
                );
            }
            (Some(Command::ClientPin), PIN_INVALID | PIN_BLOCKED | PIN_AUTH_BLOCKED) => {
                let protocol = match field(1) {
                    Some(1) => Some(PinProtocol::One),
                    Some(2) => Some(PinProtocol::Two),
                    _ => None,
                };
                let protocol = protocol.expect("a PIN compared under a known protocol");
                self.after_pin_check(protocol, status);
            }
            (Some(Command::MakeCredential), SUCCESS) => self.consume_token(),
            (Some(Command::GetAssertion), SUCCESS) => {
                let silent = params
                    .as_ref()
                    .and_then(|(map, _)| int_field(map, 5))
                    .and_then(|options| text_field(options, "up"))
                    .and_then(Value::as_bool)
                    == Some(false);
                if !silent {
                    self.consume_token();
                }
            }
            _ => {}
        }
    }

    /// makeCredential, and getAssertion with presence, spend the token's permissions (all but
    /// lbw) whether or not they used it (CTAP 2.1 §6.1.2 step 14, §6.2.2 step 9).
    fn consume_token(&mut self) {
        if let Some(token) = &mut self.token {
            token.permissions &= PERMISSION_LBW;
        }
    }

    fn after_reset(&mut self) {
        self.pin = None;
        self.token = None;
        self.retries = MAX_RETRIES;
        self.mismatches = 0;
        for session in self.sessions.iter_mut().flatten() {
            session.stale = true;
        }
    }

    /// A clientPIN request: the status, and the answer when it succeeded.
    fn client_pin(&mut self, request: &ClientPinRequest) -> (u8, ClientPinResponse) {
        let response = self.authenticator.process_cbor(ORIGIN, &request.encode());
        let body = ClientPinResponse::decode(&response[1..]).expect("a clientPIN answer");
        (response[0], body)
    }

    fn read_retries(&mut self) -> (i128, bool) {
        let request = ClientPinRequest {
            pin_uv_auth_protocol: Some(2),
            ..ClientPinRequest::new(ClientPinSubcommand::GetPinRetries)
        };
        let (status, body) = self.client_pin(&request);
        assert_eq!(status, SUCCESS, "getPinRetries failed");
        let retries = body.pin_retries.expect("pinRetries").into();
        (retries, body.power_cycle_state.unwrap_or(false))
    }

    fn check_retries(&mut self) {
        let (retries, power_cycle) = self.read_retries();
        assert_eq!(
            retries,
            self.retries.max(0),
            "pinRetries differs from the model"
        );
        assert_eq!(power_cycle, self.mismatches >= 3, "powerCycleState differs");
    }

    fn key_agreement(&mut self, protocol: PinProtocol, seed: u8) {
        let request = ClientPinRequest::get_key_agreement(protocol.number());
        let (status, body) = self.client_pin(&request);
        assert_eq!(status, SUCCESS, "getKeyAgreement failed");
        let key = body.key_agreement.expect("keyAgreement");
        let peer = PlatformKey::from_wire(&key).expect("a P-256 point");
        // Equal bytes below 0x80 are a valid P-256 scalar (generate would draw again forever
        // from a closure that always gives the same out-of-range bytes).
        let platform = KeyAgreementKey::generate(|b| b.fill(seed % 0x7f + 1));
        let secret = platform.decapsulate(protocol, &peer);
        self.sessions[index(protocol)] = Some(Session {
            platform_key: platform.public_key(),
            secret,
            stale: false,
        });
    }

    fn session(&mut self, protocol: PinProtocol) -> Option<&Session> {
        if self.sessions[index(protocol)].is_none() {
            self.key_agreement(protocol, 0x5a);
        }
        self.sessions[index(protocol)].as_ref()
    }

    fn encrypt(&mut self, protocol: PinProtocol, plaintext: &[u8]) -> Vec<u8> {
        self.platform_random = self.platform_random.wrapping_add(1);
        let fill = self.platform_random;
        let session = self.session(protocol).expect("a session");
        session.secret.encrypt(plaintext, |b| b.fill(fill))
    }

    /// A wrong PIN (or a PIN under a stale secret): the answers that may come, and the count.
    fn after_pin_check(&mut self, protocol: PinProtocol, status: u8) {
        match status {
            PIN_INVALID | PIN_AUTH_BLOCKED | PIN_BLOCKED if self.compared(status) => {
                self.stats.wrong_pins += 1;
                self.retries -= 1;
                self.mismatches += 1;
                if let Some(session) = &mut self.sessions[index(protocol)] {
                    session.stale = true;
                }
            }
            _ => {}
        }
    }

    /// Whether a PIN-refusing status followed a comparison (and so cost a retry): PIN_INVALID
    /// always; PIN_AUTH_BLOCKED and PIN_BLOCKED when they are the answer to the comparison
    /// that reached the limit, not to a request refused before comparing.
    fn compared(&self, status: u8) -> bool {
        match status {
            PIN_INVALID => true,
            PIN_AUTH_BLOCKED => self.mismatches == 2 && self.retries > 1,
            PIN_BLOCKED => self.retries == 1,
            _ => false,
        }
    }

    fn set_pin(&mut self, protocol: PinProtocol, pin: &'static str) {
        let new_pin_enc = self.encrypt(protocol, &padded(pin));
        let session = self.session(protocol).expect("a session");
        let auth = session.secret.authenticate(&new_pin_enc);
        let stale = session.stale;
        let key = session.platform_key.clone();
        let request = ClientPinRequest::set_pin(protocol.number(), key, new_pin_enc, auth);
        let (status, _) = self.client_pin(&request);
        if status == SUCCESS {
            assert!(!stale, "setPIN under a stale shared secret");
            assert!(self.pin.is_none(), "setPIN over a PIN");
            self.pin = Some(pin);
            self.token = None;
        }
    }

    fn change_pin(&mut self, protocol: PinProtocol, old: &'static str, new: &'static str) {
        let pin_hash_enc = self.encrypt(protocol, &pin_hash(old));
        let new_pin_enc = self.encrypt(protocol, &padded(new));
        let session = self.session(protocol).expect("a session");
        let auth = session
            .secret
            .authenticate(&[new_pin_enc.as_slice(), &pin_hash_enc].concat());
        let stale = session.stale;
        let key = session.platform_key.clone();
        let request =
            ClientPinRequest::change_pin(protocol.number(), key, pin_hash_enc, new_pin_enc, auth);
        let (status, _) = self.client_pin(&request);
        match status {
            SUCCESS => {
                self.check_accepted(stale, old);
                self.pin = Some(new);
                self.token = None;
                self.retries = MAX_RETRIES;
                self.mismatches = 0;
            }
            // §6.5.5.6: the current PIN matched (retries restored), the new one breaks the
            // policy (too short here) and is not stored.
            PIN_POLICY_VIOLATION => {
                self.check_accepted(stale, old);
                self.retries = MAX_RETRIES;
                self.mismatches = 0;
            }
            _ => self.after_pin_check(protocol, status),
        }
    }

    /// A PIN was accepted: it must be the one set, under a live secret, while not blocked.
    fn check_accepted(&self, stale: bool, pin: &str) {
        assert!(!stale, "a PIN accepted under a stale shared secret");
        assert_eq!(self.pin, Some(pin), "a wrong PIN was accepted");
        assert!(self.retries > 0, "a PIN accepted while blocked");
        assert!(self.mismatches < 3, "a PIN accepted before the power cycle");
    }

    fn get_token(
        &mut self,
        protocol: PinProtocol,
        pin: &'static str,
        permissions: Option<(u8, Option<&'static str>)>,
    ) {
        let pin_hash_enc = self.encrypt(protocol, &pin_hash(pin));
        let session = self.session(protocol).expect("a session");
        let stale = session.stale;
        let key = session.platform_key.clone();
        let request = match permissions {
            Some((bits, rp)) => ClientPinRequest::get_token_using_pin(
                protocol.number(),
                key,
                pin_hash_enc,
                bits,
                rp.map(str::to_owned),
            ),
            None => ClientPinRequest::get_pin_token(protocol.number(), key, pin_hash_enc),
        };
        let (status, body) = self.client_pin(&request);
        if status != SUCCESS {
            self.after_pin_check(protocol, status);
            return;
        }
        self.check_accepted(stale, pin);
        let encrypted = body.pin_uv_auth_token.expect("pinUvAuthToken");
        let session = self.sessions[index(protocol)].as_ref().expect("a session");
        let bytes = session
            .secret
            .decrypt(&encrypted)
            .expect("a token ciphertext");
        assert_eq!(bytes.len(), 32, "a token of {} bytes", bytes.len());
        let (permissions, rp_id) = match permissions {
            Some((bits, rp)) => (bits, rp.map(str::to_owned)),
            None => (PERMISSION_MC | PERMISSION_GA, None),
        };
        self.token = Some(Token {
            protocol,
            bytes: bytes.to_vec(),
            permissions,
            rp_id,
        });
        self.retries = MAX_RETRIES;
        self.mismatches = 0;
        self.stats.tokens += 1;
    }

    /// pinUvAuthParam over `message` with the current token (or a forged one).
    fn mac(&self, protocol: PinProtocol, choice: TokenChoice, message: &[u8]) -> (Vec<u8>, bool) {
        match (choice, &self.token) {
            (TokenChoice::Current, Some(token)) => (
                protocol.authenticate(&token.bytes, message),
                token.protocol == protocol,
            ),
            _ => (protocol.authenticate(&[0x77; 32], message), false),
        }
    }

    /// The request's MAC came from the current token under its protocol, with `permission`,
    /// for this RP: what a user-verified answer needs. Then the token is used up.
    fn check_token_use(&mut self, genuine: bool, permission: u8, rp_id: Option<&str>) {
        assert!(genuine, "user verified without the current token");
        self.stats.authorized += 1;
        let token = self.token.as_mut().expect("a token");
        assert!(
            token.permissions & permission == permission,
            "a token without permission {permission:#x} was accepted"
        );
        if let Some(rp_id) = rp_id {
            if let Some(bound) = &token.rp_id {
                assert_eq!(bound, rp_id, "a token bound to another RP was accepted");
            }
            token.rp_id = Some(rp_id.to_owned());
        }
    }

    fn make_credential(&mut self, rp: &str, protocol: PinProtocol, choice: TokenChoice, rk: bool) {
        let cdh = [0xcd; 32];
        let (param, genuine) = self.mac(protocol, choice, &cdh);
        let mut request = MakeCredentialRequest::new(
            cdh.to_vec(),
            PublicKeyCredentialRpEntity::with_id(rp),
            PublicKeyCredentialUserEntity::with_handle(vec![1, 2]),
            vec![PublicKeyCredentialParameters::public_key(-7)],
        );
        request.pin_uv_auth_param = Some(param);
        request.pin_uv_auth_protocol = Some(protocol.number().into());
        if rk {
            request.options.rk = Some(true);
        }
        let response = self.authenticator.process_cbor(ORIGIN, &request.encode());
        if response[0] != SUCCESS {
            return;
        }
        let answer =
            MakeCredentialResponse::decode(&response[1..]).expect("a makeCredential answer");
        if answer.auth_data[32] & FLAG_UV != 0 {
            self.check_token_use(genuine, PERMISSION_MC, Some(rp));
        }
        self.consume_token();
    }

    fn get_assertion(&mut self, rp: &str, protocol: PinProtocol, choice: TokenChoice) {
        let cdh = [0xab; 32];
        let (param, genuine) = self.mac(protocol, choice, &cdh);
        let mut request = GetAssertionRequest::new(rp, cdh.to_vec());
        request.pin_uv_auth_param = Some(param);
        request.pin_uv_auth_protocol = Some(protocol.number().into());
        let response = self.authenticator.process_cbor(ORIGIN, &request.encode());
        if response[0] != SUCCESS {
            return;
        }
        let answer = GetAssertionResponse::decode(&response[1..]).expect("a getAssertion answer");
        let uv = answer.auth_data[32] & FLAG_UV != 0;
        if uv {
            self.check_token_use(genuine, PERMISSION_GA, Some(rp));
        }
        self.consume_token();
        // The user entity's names are shown only with user verification (§6.2.2 step 12).
        if let Some(user) = answer.user {
            if !uv {
                assert!(user.name.is_none(), "a user name without UV");
            }
        }
    }

    fn credentials_metadata(&mut self, protocol: PinProtocol) {
        let mut genuine = false;
        let request =
            CredentialManagementRequest::new(CredentialManagementSubcommand::GetCredsMetadata)
                .authorized(protocol.number(), |message| {
                    let (param, from_current) = self.mac(protocol, TokenChoice::Current, message);
                    genuine = from_current;
                    param
                });
        let response = self.authenticator.process_cbor(ORIGIN, &request.encode());
        if response[0] == SUCCESS {
            self.check_token_use(genuine, PERMISSION_CM, None);
        }
    }
}

/// Typed programs: PIN ceremonies as platforms run them, committed as seeds
/// (`seeds/client_pin/typed-*`) and checked by the tests below.
pub fn typed_programs() -> Vec<(&'static str, Vec<u8>, Stats)> {
    const P2: u8 = 0;
    const P1: u8 = 1;
    let mut programs = Vec::new();

    // Set a PIN, get tokens both ways, use them for makeCredential, getAssertion and
    // credential management, change the PIN, get a token with the new one.
    let mut p = Vec::new();
    p.extend([op::KEY_AGREEMENT, P2, 0x21]);
    p.extend([op::SET_PIN, P2, 0]);
    p.extend([op::GET_PIN_TOKEN, P2, 0]);
    p.extend([op::MAKE_CREDENTIAL, 0, 0, P2, 1, 0]);
    p.extend([op::GET_PIN_TOKEN, P2, 0]);
    p.extend([op::GET_ASSERTION, 1, 0, P2, 1, 0]);
    p.extend([op::TOKEN_WITH_PERMISSIONS, P2, 0, 0x07, 2]);
    p.extend([op::MAKE_CREDENTIAL, 0, 1, P2, 1, 0]);
    p.extend([op::CREDENTIALS_METADATA, P2]);
    p.extend([op::CHANGE_PIN, P2, 0, 1]);
    p.extend([op::KEY_AGREEMENT, P1, 0x33]);
    p.extend([op::GET_PIN_TOKEN, P1, 1]);
    p.extend([op::GET_ASSERTION, 1, 0, P1, 1, 0]);
    programs.push((
        "typed-pin-ceremonies",
        p,
        Stats {
            tokens: 4,
            authorized: 4,
            wrong_pins: 0,
        },
    ));

    // Wrong PINs: each one costs a retry and makes the platform agree on a key again; the
    // third in a row blocks PIN use until a power cycle; reset clears the PIN.
    let mut p = Vec::new();
    p.extend([op::SET_PIN, P1, 1]);
    p.extend([op::GET_PIN_TOKEN, P1, 0]);
    p.extend([op::GET_PIN_TOKEN, P1, 1]);
    p.extend([op::KEY_AGREEMENT, P1, 0x44]);
    p.extend([op::GET_PIN_TOKEN, P1, 2]);
    p.extend([op::KEY_AGREEMENT, P1, 0x45]);
    p.extend([op::GET_PIN_TOKEN, P1, 1]);
    p.extend([op::KEY_AGREEMENT, P1, 0x46]);
    p.extend([op::GET_PIN_TOKEN, P1, 0]);
    p.extend([op::GET_PIN_TOKEN, P1, 1]);
    p.extend([op::GET_ASSERTION, 1, 0, P1, 1, 0]);
    p.extend([op::RESET]);
    p.extend([op::SET_PIN, P2, 2]);
    p.extend([op::GET_PIN_TOKEN, P2, 2]);
    programs.push((
        "typed-pin-lockout",
        p,
        Stats {
            tokens: 1,
            authorized: 0,
            wrong_pins: 3,
        },
    ));
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
        crate::committed_seeds::assert_committed("client_pin", programs);
    }
}
