//! Helpers shared by the command tests: an authenticator over the deterministic environment,
//! request builders, and response decoding/verification the way a relying party does it.

use ciborium::Value;
use ecdsa::signature::Verifier as _;
use sha2::{Digest, Sha256};

use crate::cbor;
use crate::ctap2::authenticator::{Authenticator, AuthenticatorConfig};
use crate::env::{PresenceOutcome, UvOutcome};
use crate::origin::Origin;
use crate::status::StatusCode;
use crate::testing::{ManualClock, MemoryKeystore, ScriptedPresence, SeededRng};
// The tests call the keystore of `Authenticator<E>` through its trait.
pub use crate::env::Keystore;
use crate::wire::{
    CredentialManagementParams, GetAssertionRequest, GetAssertionResponse, MakeCredentialRequest,
    MakeCredentialResponse, PublicKeyCredentialDescriptor, PublicKeyCredentialParameters,
    PublicKeyCredentialRpEntity, PublicKeyCredentialUserEntity, Request, Response,
    SetMinPinLengthParams,
};

pub type TestAuthenticator =
    Authenticator<(MemoryKeystore, ScriptedPresence, ManualClock, SeededRng)>;

pub const TEST_CLIENT_DATA_HASH: [u8; 32] = [0xcd; 32];

pub fn authenticator() -> (TestAuthenticator, ManualClock) {
    let clock = ManualClock::default();
    let authenticator = Authenticator::new(
        AuthenticatorConfig::default(),
        MemoryKeystore::new(7),
        ScriptedPresence::always(PresenceOutcome::Approved),
        clock.clone(),
        SeededRng::new(3),
    );
    (authenticator, clock)
}

/// A power cycle: a new authenticator over the same keystore (the daemon restarted).
pub fn restart(a: TestAuthenticator, clock: &ManualClock) -> TestAuthenticator {
    Authenticator::new(
        AuthenticatorConfig::default(),
        a.into_keystore(),
        ScriptedPresence::always(PresenceOutcome::Approved),
        clock.clone(),
        SeededRng::new(4),
    )
}

/// An authenticator whose environment verifies the person itself (built-in UV), answering
/// `Verified` unless scripted otherwise; presence is approved.
pub fn uv_authenticator() -> (TestAuthenticator, ManualClock) {
    let clock = ManualClock::default();
    let authenticator = Authenticator::new(
        AuthenticatorConfig::default(),
        MemoryKeystore::new(7),
        ScriptedPresence::with_built_in_uv(UvOutcome::Verified),
        clock.clone(),
        SeededRng::new(3),
    );
    (authenticator, clock)
}

/// A power cycle of a [`uv_authenticator`]: the same keystore, everything else new.
pub fn restart_with_uv(a: TestAuthenticator, clock: &ManualClock) -> TestAuthenticator {
    Authenticator::new(
        AuthenticatorConfig::default(),
        a.into_keystore(),
        ScriptedPresence::with_built_in_uv(UvOutcome::Verified),
        clock.clone(),
        SeededRng::new(4),
    )
}

pub fn text(s: &str) -> Value {
    Value::Text(s.into())
}

pub fn int(i: i64) -> Value {
    Value::Integer(i.into())
}

pub fn bytes(b: &[u8]) -> Value {
    Value::Bytes(b.to_vec())
}

pub fn rp_id_hash(rp_id: &str) -> [u8; 32] {
    Sha256::digest(rp_id.as_bytes()).into()
}

/// Sends command + CBOR map; returns the decoded response or the error status.
pub fn call(
    a: &mut TestAuthenticator,
    command: u8,
    params: Vec<(i64, Value)>,
) -> Result<Value, StatusCode> {
    call_from(a, TEST_ORIGIN, command, params)
}

pub fn call_raw(a: &mut TestAuthenticator, request: &[u8]) -> Result<Value, StatusCode> {
    call_raw_from(a, TEST_ORIGIN, request)
}

/// The channel every test request comes from unless it names another.
pub const TEST_ORIGIN: Origin = Origin::usb(1);

/// [`call`] from another origin (another channel, transport or hybrid session).
pub fn call_from(
    a: &mut TestAuthenticator,
    origin: Origin,
    command: u8,
    params: Vec<(i64, Value)>,
) -> Result<Value, StatusCode> {
    let mut request = vec![command];
    if !params.is_empty() {
        request.extend(cbor::encode(&cbor::int_map(params)));
    }
    call_raw_from(a, origin, &request)
}

pub fn call_raw_from(
    a: &mut TestAuthenticator,
    origin: Origin,
    request: &[u8],
) -> Result<Value, StatusCode> {
    let response = a.process_cbor(origin, request);
    match response.split_first() {
        Some((0, [])) => Ok(Value::Null),
        Some((0, body)) => Ok(cbor::decode(body).expect("response is valid CBOR")),
        Some((&status, [])) => Err(StatusCode::from_byte(status)
            .unwrap_or_else(|| panic!("status {status:#04x} is not a CTAP status"))),
        other => panic!("error status with a body: {other:?}"),
    }
}

pub fn field(map: &Value, key: i64) -> Option<&Value> {
    let Value::Map(entries) = map else {
        panic!("not a map: {map:?}")
    };
    entries.iter().find(|(k, _)| *k == int(key)).map(|(_, v)| v)
}

pub fn text_field<'a>(map: &'a Value, key: &str) -> Option<&'a Value> {
    let Value::Map(entries) = map else {
        panic!("not a map: {map:?}")
    };
    entries
        .iter()
        .find(|(k, _)| *k == text(key))
        .map(|(_, v)| v)
}

pub fn as_bytes(v: &Value) -> &[u8] {
    match v {
        Value::Bytes(b) => b,
        _ => panic!("not bytes: {v:?}"),
    }
}

pub fn user(id: &[u8], name: &str) -> Value {
    user_entity(id, name).to_cbor()
}

/// A user with a name and a display name, as the requests here register them.
pub fn user_entity(id: &[u8], name: &str) -> PublicKeyCredentialUserEntity {
    PublicKeyCredentialUserEntity {
        id: id.to_vec(),
        name: Some(name.into()),
        display_name: Some("Display".into()),
    }
}

fn public_key_param(alg: i64) -> PublicKeyCredentialParameters {
    PublicKeyCredentialParameters::public_key(alg)
}

pub fn descriptor(id: &[u8]) -> Value {
    PublicKeyCredentialDescriptor::public_key(id.to_vec()).to_cbor()
}

/// An options map of any names, also ones CTAP does not define (for what the authenticator
/// must ignore); well-formed requests set [`crate::wire::Options`] instead.
pub fn options(entries: &[(&str, bool)]) -> Value {
    cbor::text_map(entries.iter().map(|(k, v)| (*k, Value::Bool(*v))).collect())
}

/// A makeCredential request for `rp` with the given user and algorithms.
pub fn mc_request(rp: &str, user_id: &[u8], algs: &[i64]) -> MakeCredentialRequest {
    MakeCredentialRequest::new(
        TEST_CLIENT_DATA_HASH.to_vec(),
        PublicKeyCredentialRpEntity {
            id: rp.into(),
            name: Some("Example".into()),
        },
        user_entity(user_id, "alice@example.com"),
        algs.iter().map(|alg| public_key_param(*alg)).collect(),
    )
}

/// A getAssertion request for `rp` naming `allow` (a discovery when empty).
pub fn ga_request(rp: &str, allow: &[&[u8]]) -> GetAssertionRequest {
    let mut request = GetAssertionRequest::new(rp, TEST_CLIENT_DATA_HASH.to_vec());
    request.allow_list = allow
        .iter()
        .map(|id| PublicKeyCredentialDescriptor::public_key(id.to_vec()))
        .collect();
    request
}

/// makeCredential authorized by `token`: its MAC over clientDataHash (§6.1.2 step 11).
pub fn mc_with_token(
    mut request: MakeCredentialRequest,
    protocol: PinProtocol,
    token: &[u8],
) -> MakeCredentialRequest {
    request.pin_uv_auth_param = Some(protocol.authenticate(token, &request.client_data_hash));
    request.pin_uv_auth_protocol = Some(protocol.number().into());
    request
}

/// getAssertion authorized by `token`: its MAC over clientDataHash (§6.2.2 step 9).
pub fn ga_with_token(
    mut request: GetAssertionRequest,
    protocol: PinProtocol,
    token: &[u8],
) -> GetAssertionRequest {
    request.pin_uv_auth_param = Some(protocol.authenticate(token, &request.client_data_hash));
    request.pin_uv_auth_protocol = Some(protocol.number().into());
    request
}

/// A request's parameters as integer-keyed entries, for a test that then breaks one of them.
pub fn params_of(request: &impl Request) -> Vec<(i64, Value)> {
    let Some(Value::Map(entries)) = request.to_cbor() else {
        return Vec::new();
    };
    entries
        .into_iter()
        .map(|(key, value)| {
            let key = key.as_integer().expect("integer keys");
            (i64::try_from(key).expect("small keys"), value)
        })
        .collect()
}

/// The makeCredential parameters of [`mc_request`], as entries.
pub fn make_credential_params(rp: &str, user_id: &[u8], algs: &[i64]) -> Vec<(i64, Value)> {
    params_of(&mc_request(rp, user_id, algs))
}

/// Sends a typed request from [`TEST_ORIGIN`]; returns the typed answer or the error status.
pub fn send<Q: Request, S: Response>(
    a: &mut TestAuthenticator,
    request: &Q,
) -> Result<S, StatusCode> {
    send_from(a, TEST_ORIGIN, request)
}

/// [`send`] from another origin.
pub fn send_from<Q: Request, S: Response>(
    a: &mut TestAuthenticator,
    origin: Origin,
    request: &Q,
) -> Result<S, StatusCode> {
    let response = a.process_cbor(origin, &request.encode());
    match response.split_first() {
        Some((0, body)) => Ok(S::decode(body).expect("a well-formed response")),
        Some((&status, [])) => Err(StatusCode::from_byte(status)
            .unwrap_or_else(|| panic!("status {status:#04x} is not a CTAP status"))),
        other => panic!("error status with a body: {other:?}"),
    }
}

/// makeCredential with a typed request and answer.
pub fn make_credential(
    a: &mut TestAuthenticator,
    request: &MakeCredentialRequest,
) -> Result<MakeCredentialResponse, StatusCode> {
    send(a, request)
}

/// getAssertion with a typed request and answer.
pub fn get_assertion(
    a: &mut TestAuthenticator,
    request: &GetAssertionRequest,
) -> Result<GetAssertionResponse, StatusCode> {
    send(a, request)
}

/// What an RP reads from a makeCredential response.
pub struct Registration {
    pub auth_data: Vec<u8>,
    pub credential_id: Vec<u8>,
    pub cose_key: Value,
    /// The authenticator extension outputs, if the ED flag is set.
    pub extensions: Option<Value>,
}

/// [`registration`] of a response read as a CBOR value.
pub fn parse_registration(response: &Value) -> Registration {
    registration(
        &MakeCredentialResponse::decode(&cbor::encode(response))
            .expect("a makeCredential response"),
    )
}

/// The attested credential data and extension outputs of a makeCredential response.
pub fn registration(response: &MakeCredentialResponse) -> Registration {
    let auth_data = response.auth_data.clone();
    let credential_id = response
        .credential_id()
        .expect("attested credential data")
        .to_vec();
    let mut rest = &auth_data[55 + credential_id.len()..];
    let cose_key: Value = ciborium::from_reader(&mut rest).expect("COSE key follows the ID");
    let extensions = (!rest.is_empty()).then(|| cbor::decode(rest).expect("extensions map"));
    assert_eq!(
        extensions.is_some(),
        auth_data[32] & crate::ctap2::authenticator_data::FLAG_ED != 0,
        "ED flag iff extension outputs"
    );
    Registration {
        auth_data,
        credential_id,
        cose_key,
        extensions,
    }
}

/// Verifies a signature with a COSE public key as an RP does: ES256 (DER) or EdDSA.
pub fn verify(cose_key: &Value, message: &[u8], signature: &[u8]) -> bool {
    let alg = field(cose_key, 3).unwrap().clone();
    let x = as_bytes(field(cose_key, -2).unwrap());
    if alg == int(-7) {
        let y = as_bytes(field(cose_key, -3).unwrap());
        let point = [&[4u8][..], x, y].concat();
        let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).unwrap();
        let Ok(sig) = p256::ecdsa::DerSignature::try_from(signature) else {
            return false;
        };
        key.verify(message, &sig).is_ok()
    } else {
        let key = ed25519_dalek::VerifyingKey::from_bytes(x.try_into().unwrap()).unwrap();
        let Ok(sig) = ed25519_dalek::Signature::from_slice(signature) else {
            return false;
        };
        key.verify(message, &sig).is_ok()
    }
}

/// Registers a credential and returns it (the registration must succeed).
pub fn register(
    a: &mut TestAuthenticator,
    rp: &str,
    user_id: &[u8],
    alg: i64,
    rk: bool,
) -> Registration {
    let mut request = mc_request(rp, user_id, &[alg]);
    if rk {
        request.options.rk = Some(true);
    }
    registration(&make_credential(a, &request).expect("makeCredential succeeds"))
}

// --- clientPIN, the way a platform does it -------------------------------------------------

pub use crate::ctap2::pin::protocol::PinProtocol;
use crate::ctap2::pin::protocol::{platform, SharedSecret};
use crate::wire::{
    permission, ClientPinRequest, ClientPinResponse, ClientPinSubcommand, ConfigRequest,
    ConfigSubcommand, CredentialManagementRequest, CredentialManagementSubcommand,
    KeyAgreementPublicKey,
};

pub const PERM_MC: u8 = permission::MAKE_CREDENTIAL;
pub const PERM_GA: u8 = permission::GET_ASSERTION;
pub const PERM_CM: u8 = permission::CREDENTIAL_MANAGEMENT;
pub const PERM_LBW: u8 = permission::LARGE_BLOB_WRITE;
pub const PERM_ACFG: u8 = permission::AUTHENTICATOR_CONFIG;
pub const PERM_PCMR: u8 = permission::PERSISTENT_CREDENTIAL_MANAGEMENT_READ_ONLY;

/// Sends a typed request; the answer as CBOR (Null when it has no body) or its status.
pub fn send_value(a: &mut TestAuthenticator, request: &impl Request) -> Result<Value, StatusCode> {
    call_raw(a, &request.encode())
}

/// A request's parameter map as (key, value) entries, for the tests that then break it.
pub fn entries(request: &impl Request) -> Vec<(i64, Value)> {
    let Some(Value::Map(map)) = request.to_cbor() else {
        panic!("a request with a parameter map")
    };
    map.into_iter()
        .map(|(key, value)| {
            let key = key.as_integer().expect("an integer key");
            (i64::try_from(key).expect("a small key"), value)
        })
        .collect()
}

/// getKeyAgreement, then the platform's half: (platform key, shared secret).
pub fn platform_key_agreement(
    a: &mut TestAuthenticator,
    protocol: PinProtocol,
) -> (KeyAgreementPublicKey, SharedSecret) {
    let response: ClientPinResponse =
        send(a, &ClientPinRequest::get_key_agreement(protocol.number())).expect("getKeyAgreement");
    let theirs = response.key_agreement.expect("a key agreement key");
    let (ours, shared) = platform::agree(protocol, &theirs.to_cbor(), 0x77);
    let ours = KeyAgreementPublicKey::from_cbor(ours).expect("our own key");
    (ours, shared)
}

/// getKeyAgreement, then the platform's half: (platform COSE key, shared secret).
pub fn key_agreement(a: &mut TestAuthenticator, protocol: PinProtocol) -> (Value, SharedSecret) {
    let (key, shared) = platform_key_agreement(a, protocol);
    (key.to_cbor(), shared)
}

/// The PIN as the platform sends it: UTF-8 padded with zeros to 64 bytes.
pub fn padded(pin: &[u8]) -> Vec<u8> {
    let mut out = pin.to_vec();
    out.resize(64, 0);
    out
}

pub fn pin_hash(pin: &[u8]) -> Vec<u8> {
    Sha256::digest(pin)[..16].to_vec()
}

/// The platform's IV for protocol two.
pub fn iv(buf: &mut [u8]) {
    buf.fill(0x1f)
}

/// setPIN with a fresh key agreement.
pub fn set_pin_request(
    a: &mut TestAuthenticator,
    protocol: PinProtocol,
    padded_pin: &[u8],
) -> ClientPinRequest {
    let (key, shared) = platform_key_agreement(a, protocol);
    let new_pin_enc = shared.encrypt(padded_pin, iv);
    let mac = shared.authenticate(&new_pin_enc);
    ClientPinRequest::set_pin(protocol.number(), key, new_pin_enc, mac)
}

/// [`set_pin_request`]'s map, for the tests that break it.
pub fn set_pin_params(
    a: &mut TestAuthenticator,
    protocol: PinProtocol,
    padded_pin: &[u8],
) -> Vec<(i64, Value)> {
    entries(&set_pin_request(a, protocol, padded_pin))
}

pub fn set_pin(a: &mut TestAuthenticator, pin: &str) {
    let request = set_pin_request(a, PinProtocol::Two, &padded(pin.as_bytes()));
    assert_eq!(send_value(a, &request), Ok(Value::Null), "setPIN");
}

/// The token in a clientPIN answer, decrypted.
fn decrypt_token(response: ClientPinResponse, shared: &SharedSecret) -> Vec<u8> {
    let encrypted = response.pin_uv_auth_token.expect("a pinUvAuthToken");
    shared.decrypt(&encrypted).expect("token decrypts").to_vec()
}

/// getPinUvAuthTokenUsingPinWithPermissions; returns the decrypted token.
pub fn pin_token(
    a: &mut TestAuthenticator,
    protocol: PinProtocol,
    pin: &str,
    permissions: u8,
    rp_id: Option<&str>,
) -> Result<Vec<u8>, StatusCode> {
    let (key, shared) = platform_key_agreement(a, protocol);
    let request = ClientPinRequest::get_token_using_pin(
        protocol.number(),
        key,
        shared.encrypt(&pin_hash(pin.as_bytes()), iv),
        permissions,
        rp_id.map(str::to_owned),
    );
    Ok(decrypt_token(send(a, &request)?, &shared))
}

/// A credentialManagement request (protocol 2): subCommand, its params, and the token's MAC
/// over subCommand || subCommandParams.
pub fn cm_request(token: &[u8], sub: u8, params: Option<Value>) -> CredentialManagementRequest {
    let sub = CredentialManagementSubcommand::from_number(sub.into()).expect("a subcommand");
    let request = CredentialManagementRequest {
        sub_command_params: params,
        ..CredentialManagementRequest::new(sub)
    };
    request.authorized(PinProtocol::Two.number(), |message| {
        PinProtocol::Two.authenticate(token, message)
    })
}

/// [`cm_request`]'s map, for the tests that break it.
pub fn cm_params(token: &[u8], sub: u8, params: Option<Value>) -> Vec<(i64, Value)> {
    entries(&cm_request(token, sub, params))
}

/// pinUvAuthParam = authenticate(token, message).
pub fn auth_param(protocol: PinProtocol, token: &[u8], message: &[u8]) -> Value {
    bytes(&protocol.authenticate(token, message))
}

/// getPinUvAuthTokenUsingUvWithPermissions; returns the decrypted token.
pub fn uv_token(
    a: &mut TestAuthenticator,
    protocol: PinProtocol,
    permissions: u8,
    rp_id: Option<&str>,
) -> Result<Vec<u8>, StatusCode> {
    let (key, shared) = platform_key_agreement(a, protocol);
    let request = ClientPinRequest::get_token_using_uv(
        protocol.number(),
        key,
        permissions,
        rp_id.map(str::to_owned),
    );
    Ok(decrypt_token(send(a, &request)?, &shared))
}

/// getUVRetries.
pub fn uv_retries(a: &mut TestAuthenticator) -> i64 {
    let request = ClientPinRequest::new(ClientPinSubcommand::GetUvRetries);
    let response: ClientPinResponse = send(a, &request).expect("getUVRetries");
    let retries = response.uv_retries.expect("uvRetries");
    i64::try_from(retries).expect("a small count")
}

/// authenticatorConfig (0x0D) with an acfg token (protocol 2), or without one.
pub fn authenticator_config(
    a: &mut TestAuthenticator,
    token: Option<&[u8]>,
    sub: u8,
    params: Option<Value>,
) -> Result<Value, StatusCode> {
    let sub = ConfigSubcommand::from_number(sub.into()).expect("a subcommand");
    let mut request = ConfigRequest {
        sub_command_params: params,
        ..ConfigRequest::new(sub)
    };
    if let Some(token) = token {
        request = request.authorized(PinProtocol::Two.number(), |message| {
            PinProtocol::Two.authenticate(token, message)
        });
    }
    send_value(a, &request)
}

/// credentialManagement's subCommandParams naming an RP (enumerateCredentialsBegin).
pub fn rp_hash_params(rp: &str) -> Value {
    CredentialManagementParams {
        rp_id_hash: Some(rp_id_hash(rp).to_vec()),
        ..Default::default()
    }
    .to_cbor()
}

/// setMinPINLength's subCommandParams turning the PIN complexity policy on or off.
pub fn complexity_policy(on: bool) -> Value {
    SetMinPinLengthParams {
        pin_complexity_policy: Some(on),
        ..Default::default()
    }
    .to_cbor()
}

/// setMinPINLength's subCommandParams with forceChangePin.
pub fn force_change_pin() -> Value {
    SetMinPinLengthParams {
        force_change_pin: Some(true),
        ..Default::default()
    }
    .to_cbor()
}
