//! The CTAP 2.1 operations fido2ctl performs, as a platform does them: clientPIN (PIN/UV auth
//! protocol 2, or 1 for keys that only have it), credential management, reset and config.
//!
//! The PIN protocol crypto is the core's own (`protocol::ctap2::pin::protocol`), used from the
//! platform's side: our key agreement key, the key's public key, the shared secret.

use ciborium::Value;
use protocol::cbor;
use protocol::ctap2::pin::protocol::{KeyAgreementKey, PinProtocol, PlatformKey, SharedSecret};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::Key;
use crate::ctap_status;
use crate::exit::Failure;

use protocol::ctap2::permission;
use protocol::ctap2::{AUTHENTICATOR_CONFIG as CONFIG, CLIENT_PIN, CREDENTIAL_MANAGEMENT, RESET};

/// pinUvAuthToken permissions (CTAP 2.1 §6.5.5.7).
pub const PERMISSION_CREDENTIAL_MANAGEMENT: u8 = permission::CREDENTIAL_MANAGEMENT;
pub const PERMISSION_AUTHENTICATOR_CONFIG: u8 = permission::AUTHENTICATOR_CONFIG;
/// pcmr (CTAP 2.2): the persistent token, good for reading credential management only.
pub const PERMISSION_PERSISTENT_CREDENTIAL_MANAGEMENT_READ_ONLY: u8 =
    permission::PERSISTENT_CREDENTIAL_MANAGEMENT_READ_ONLY;

const STATUS_NOT_ALLOWED: u8 = protocol::ctap2::StatusCode::NotAllowed as u8;

fn int(i: i64) -> Value {
    Value::Integer(i.into())
}

/// Sends `command` with CBOR `params`; the decoded answer (Null when it has none) or the
/// key's status as a failure, described for people.
fn call(key: &mut Key, command: u8, params: Option<Value>, what: &str) -> Result<Value, Failure> {
    let mut request = vec![command];
    if let Some(params) = params {
        request.extend(cbor::encode(&params));
    }
    let (status, body) = key.cbor(&request)?;
    if status != 0 {
        return Err(KeyRefused {
            status,
            what: what.to_owned(),
        }
        .into());
    }
    if body.is_empty() {
        return Ok(Value::Null);
    }
    cbor::decode(&body)
        .map_err(|_| Failure::failed(format!("the key's answer to {what} is not CBOR")))
}

/// A key's refusal, with its CTAP status.
#[derive(Debug)]
pub struct KeyRefused {
    pub status: u8,
    pub what: String,
}

impl From<KeyRefused> for Failure {
    fn from(refused: KeyRefused) -> Self {
        let hint = match refused.status {
            STATUS_NOT_ALLOWED if refused.what == "reset" => {
                "; a key allows a reset only in the first 10 seconds after it is plugged in, \
                 and fido2ctl could not replug it through fido2d: run `fido2ctl reset` as the \
                 key's owner (or root), with --socket naming the daemon's control socket"
            }
            _ => "",
        };
        Failure::failed(format!(
            "the key refused {}: {}{hint}",
            refused.what,
            ctap_status::describe(refused.status)
        ))
    }
}

fn field(map: &Value, key: i64) -> Option<&Value> {
    map.as_map()?
        .iter()
        .find(|(k, _)| k.as_integer() == Some(key.into()))
        .map(|(_, v)| v)
}

fn text_field<'a>(map: &'a Value, key: &str) -> Option<&'a Value> {
    map.as_map()?
        .iter()
        .find(|(k, _)| k.as_text() == Some(key))
        .map(|(_, v)| v)
}

/// The protocol to use: 2 when the key offers it, else 1.
pub fn pin_protocol(info: &serde_json::Value) -> PinProtocol {
    let offers_two = info["pinUvAuthProtocols"]
        .as_array()
        .is_some_and(|list| list.iter().any(|p| p == 2));
    if offers_two {
        PinProtocol::Two
    } else {
        PinProtocol::One
    }
}

/// The shared secret of a fresh key agreement, and our public key to send with it.
fn agree(key: &mut Key, protocol: PinProtocol) -> Result<(SharedSecret, Value), Failure> {
    let params = cbor::int_map(vec![(1, int(protocol.number().into())), (2, int(0x02))]);
    let answer = call(key, CLIENT_PIN, Some(params), "getKeyAgreement")?;
    let theirs = field(&answer, 1)
        .cloned()
        .ok_or_else(|| Failure::failed("the key sent no key agreement key"))?;
    let theirs = PlatformKey::parse(theirs)
        .map_err(|_| Failure::failed("the key's key agreement key is not a P-256 COSE key"))?;
    let ours = KeyAgreementKey::generate(fill_random);
    Ok((ours.decapsulate(protocol, &theirs), ours.public_cose_key()))
}

fn fill_random(bytes: &mut [u8]) {
    getrandom::fill(bytes).expect("the OS random generator works");
}

/// The PIN as CTAP sends it: UTF-8, zero-padded to 64 bytes.
fn padded_pin(pin: &str) -> Result<Zeroizing<Vec<u8>>, Failure> {
    if pin.len() > 63 {
        return Err(Failure::failed("a PIN has at most 63 bytes"));
    }
    let mut padded = Zeroizing::new(vec![0u8; 64]);
    padded[..pin.len()].copy_from_slice(pin.as_bytes());
    Ok(padded)
}

fn pin_hash(pin: &str) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(Sha256::digest(pin.as_bytes())[..16].to_vec())
}

pub fn pin_retries(key: &mut Key, protocol: PinProtocol) -> Result<u64, Failure> {
    let params = cbor::int_map(vec![(1, int(protocol.number().into())), (2, int(0x01))]);
    let answer = call(key, CLIENT_PIN, Some(params), "getPinRetries")?;
    field(&answer, 3)
        .and_then(|v| v.as_integer())
        .and_then(|i| u64::try_from(i).ok())
        .ok_or_else(|| Failure::failed("the key sent no PIN retries"))
}

pub fn set_pin(key: &mut Key, protocol: PinProtocol, new_pin: &str) -> Result<(), Failure> {
    let (secret, ours) = agree(key, protocol)?;
    let new_pin_enc = secret.encrypt(&padded_pin(new_pin)?, fill_random);
    let params = cbor::int_map(vec![
        (1, int(protocol.number().into())),
        (2, int(0x03)),
        (3, ours),
        (4, Value::Bytes(secret.authenticate(&new_pin_enc))),
        (5, Value::Bytes(new_pin_enc)),
    ]);
    call(key, CLIENT_PIN, Some(params), "setting the PIN").map(drop)
}

pub fn change_pin(
    key: &mut Key,
    protocol: PinProtocol,
    current: &str,
    new_pin: &str,
) -> Result<(), Failure> {
    let (secret, ours) = agree(key, protocol)?;
    let new_pin_enc = secret.encrypt(&padded_pin(new_pin)?, fill_random);
    let pin_hash_enc = secret.encrypt(&pin_hash(current), fill_random);
    let signed = [&new_pin_enc[..], &pin_hash_enc[..]].concat();
    let params = cbor::int_map(vec![
        (1, int(protocol.number().into())),
        (2, int(0x04)),
        (3, ours),
        (4, Value::Bytes(secret.authenticate(&signed))),
        (5, Value::Bytes(new_pin_enc)),
        (6, Value::Bytes(pin_hash_enc)),
    ]);
    call(key, CLIENT_PIN, Some(params), "changing the PIN").map(drop)
}

/// A pinUvAuthToken with `permissions`, and the protocol to use it with.
pub struct Token {
    protocol: PinProtocol,
    token: Zeroizing<Vec<u8>>,
}

impl Token {
    fn authenticate(&self, message: &[u8]) -> Vec<u8> {
        self.protocol.authenticate(&self.token, message)
    }
}

pub fn token(
    key: &mut Key,
    protocol: PinProtocol,
    pin: &str,
    permissions: u8,
) -> Result<Token, Failure> {
    let (secret, ours) = agree(key, protocol)?;
    let params = cbor::int_map(vec![
        (1, int(protocol.number().into())),
        (2, int(0x09)),
        (3, ours),
        (6, Value::Bytes(secret.encrypt(&pin_hash(pin), fill_random))),
        (9, int(permissions.into())),
    ]);
    let answer = call(key, CLIENT_PIN, Some(params), "the PIN")?;
    let encrypted = field(&answer, 2)
        .and_then(|v| v.as_bytes())
        .ok_or_else(|| Failure::failed("the key sent no pinUvAuthToken"))?;
    let token = secret
        .decrypt(encrypted)
        .ok_or_else(|| Failure::failed("the key's pinUvAuthToken does not decrypt"))?;
    Ok(Token { protocol, token })
}

/// A discoverable credential, as credential management lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoredCredential {
    pub rp_id: String,
    /// Hex of the credential ID.
    pub credential_id: String,
    /// Hex of the user handle.
    pub user_id: String,
    pub user_name: Option<String>,
    pub display_name: Option<String>,
    pub cred_protect: Option<u64>,
    /// thirdPartyPayment (CTAP 2.2 §6.8.3, 0x0C), when the key reports it.
    pub third_party_payment: Option<bool>,
}

/// A credentialManagement or authenticatorConfig request: subCommand (1), subCommandParams
/// (2), pinUvAuthProtocol (3) and pinUvAuthParam (4), the token's MAC over
/// `prefix || subCommand || subCommandParams`.
fn authorized_subcommand(
    token: &Token,
    prefix: &[u8],
    sub_command: u8,
    sub_params: Option<Value>,
) -> Value {
    let mut signed = prefix.to_vec();
    signed.push(sub_command);
    if let Some(params) = &sub_params {
        signed.extend(cbor::encode(params));
    }
    let mut params = vec![(1, int(sub_command.into()))];
    if let Some(sub_params) = sub_params {
        params.push((2, sub_params));
    }
    params.push((3, int(token.protocol.number().into())));
    params.push((4, Value::Bytes(token.authenticate(&signed))));
    cbor::int_map(params)
}

fn credential_management(
    key: &mut Key,
    token: &Token,
    sub_command: u8,
    sub_params: Option<Value>,
    what: &str,
) -> Result<Value, Failure> {
    let request = authorized_subcommand(token, &[], sub_command, sub_params);
    call(key, CREDENTIAL_MANAGEMENT, Some(request), what)
}

fn next(key: &mut Key, sub_command: u8, what: &str) -> Result<Value, Failure> {
    let params = cbor::int_map(vec![(1, int(sub_command.into()))]);
    call(key, CREDENTIAL_MANAGEMENT, Some(params), what)
}

fn count(answer: &Value, at: i64) -> usize {
    field(answer, at)
        .and_then(|v| v.as_integer())
        .and_then(|i| usize::try_from(i).ok())
        .unwrap_or(0)
}

/// Every discoverable credential on the key (enumerateRPs, then enumerateCredentials of each).
pub fn list_credentials(key: &mut Key, token: &Token) -> Result<Vec<StoredCredential>, Failure> {
    const NO_CREDENTIALS: u8 = 0x2E;
    let first = match credential_management(key, token, 0x02, None, "listing the sites") {
        Ok(answer) => answer,
        Err(failure)
            if failure
                .message
                .contains(&format!("(0x{NO_CREDENTIALS:02x})")) =>
        {
            return Ok(Vec::new())
        }
        Err(failure) => return Err(failure),
    };
    let total = count(&first, 5);
    let mut rps = vec![first];
    for _ in 1..total {
        rps.push(next(key, 0x03, "listing the sites")?);
    }
    let mut credentials = Vec::new();
    for rp in rps {
        let rp_id = field(&rp, 3)
            .and_then(|rp| text_field(rp, "id"))
            .and_then(|id| id.as_text())
            .unwrap_or_default()
            .to_owned();
        let hash = field(&rp, 4)
            .cloned()
            .ok_or_else(|| Failure::failed("the key sent a site without its RP ID hash"))?;
        let params = cbor::int_map(vec![(1, hash)]);
        let first = credential_management(key, token, 0x04, Some(params), "listing credentials")?;
        let total = count(&first, 9);
        let mut answers = vec![first];
        for _ in 1..total {
            answers.push(next(key, 0x05, "listing credentials")?);
        }
        for answer in answers {
            let user = field(&answer, 6);
            let user_text = |name: &str| {
                user.and_then(|u| text_field(u, name))
                    .and_then(|v| v.as_text())
                    .map(str::to_owned)
            };
            let id = field(&answer, 7)
                .and_then(|d| text_field(d, "id"))
                .and_then(|v| v.as_bytes())
                .ok_or_else(|| Failure::failed("the key sent a credential without its ID"))?;
            credentials.push(StoredCredential {
                rp_id: rp_id.clone(),
                credential_id: hex::encode(id),
                user_id: user
                    .and_then(|u| text_field(u, "id"))
                    .and_then(|v| v.as_bytes())
                    .map(hex::encode)
                    .unwrap_or_default(),
                user_name: user_text("name"),
                display_name: user_text("displayName"),
                cred_protect: field(&answer, 0x0A)
                    .and_then(|v| v.as_integer())
                    .and_then(|i| u64::try_from(i).ok()),
                third_party_payment: field(&answer, 0x0C).and_then(|v| v.as_bool()),
            });
        }
    }
    Ok(credentials)
}

pub fn delete_credential(
    key: &mut Key,
    token: &Token,
    credential_id: &[u8],
) -> Result<(), Failure> {
    let descriptor = cbor::text_map(vec![
        ("id", Value::Bytes(credential_id.to_vec())),
        ("type", Value::Text("public-key".into())),
    ]);
    let params = cbor::int_map(vec![(2, descriptor)]);
    credential_management(key, token, 0x06, Some(params), "deleting the credential").map(drop)
}

/// updateUserInformation (credential management 0x07): the stored user entity's names.
pub fn update_user(
    key: &mut Key,
    token: &Token,
    credential_id: &[u8],
    user_id: &[u8],
    name: Option<&str>,
    display_name: Option<&str>,
) -> Result<(), Failure> {
    let descriptor = cbor::text_map(vec![
        ("id", Value::Bytes(credential_id.to_vec())),
        ("type", Value::Text("public-key".into())),
    ]);
    let mut user = vec![("id", Value::Bytes(user_id.to_vec()))];
    if let Some(name) = name {
        user.push(("name", Value::Text(name.to_owned())));
    }
    if let Some(display_name) = display_name {
        user.push(("displayName", Value::Text(display_name.to_owned())));
    }
    let params = cbor::int_map(vec![(2, descriptor), (3, cbor::text_map(user))]);
    credential_management(key, token, 0x07, Some(params), "updating the credential").map(drop)
}

pub fn reset(key: &mut Key) -> Result<(), Failure> {
    call(key, RESET, None, "reset").map(drop)
}

fn config(
    key: &mut Key,
    token: &Token,
    sub_command: u8,
    sub_params: Option<Value>,
    what: &str,
) -> Result<(), Failure> {
    // pinUvAuthParam = authenticate(token, 32 × 0xff || 0x0d || subCommand || subCommandParams)
    let mut prefix = vec![0xff; 32];
    prefix.push(CONFIG);
    let request = authorized_subcommand(token, &prefix, sub_command, sub_params);
    call(key, CONFIG, Some(request), what).map(drop)
}

pub fn toggle_always_uv(key: &mut Key, token: &Token) -> Result<(), Failure> {
    config(key, token, 0x02, None, "toggling alwaysUv")
}

pub fn set_min_pin_length(
    key: &mut Key,
    token: &Token,
    length: Option<u8>,
    rp_ids: &[String],
    force_change: bool,
) -> Result<(), Failure> {
    let mut params = Vec::new();
    if let Some(length) = length {
        params.push((1, int(length.into())));
    }
    if !rp_ids.is_empty() {
        params.push((
            2,
            Value::Array(rp_ids.iter().map(|id| Value::Text(id.clone())).collect()),
        ));
    }
    if force_change {
        params.push((3, Value::Bool(true)));
    }
    config(
        key,
        token,
        0x03,
        Some(cbor::int_map(params)),
        "setting the minimum PIN length",
    )
}
