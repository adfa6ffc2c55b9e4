//! The CTAP 2.1 operations fido2ctl performs, as a platform does them: clientPIN (PIN/UV auth
//! protocol 2, or 1 for keys that only have it), credential management, reset and config.
//!
//! The PIN protocol crypto is the core's own (`protocol::ctap2::pin::protocol`), used from the
//! platform's side: our key agreement key, the key's public key, the shared secret.

use protocol::ctap2::pin::protocol::{KeyAgreementKey, PinProtocol, PlatformKey, SharedSecret};
use protocol::wire::{
    permission, ClientPinRequest, ClientPinResponse, ClientPinSubcommand, ConfigRequest,
    ConfigSubcommand, CredentialManagementParams, CredentialManagementRequest,
    CredentialManagementResponse, CredentialManagementSubcommand, KeyAgreementPublicKey,
    PublicKeyCredentialDescriptor, PublicKeyCredentialUserEntity, Request, ResetRequest, Response,
    SetMinPinLengthParams, StatusCode,
};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::Key;
use crate::ctap_status;
use crate::exit::Failure;

/// pinUvAuthToken permissions (CTAP 2.1 §6.5.5.7).
pub const PERMISSION_CREDENTIAL_MANAGEMENT: u8 = permission::CREDENTIAL_MANAGEMENT;
pub const PERMISSION_AUTHENTICATOR_CONFIG: u8 = permission::AUTHENTICATOR_CONFIG;
/// pcmr (CTAP 2.2): the persistent token, good for reading credential management only.
pub const PERMISSION_PERSISTENT_CREDENTIAL_MANAGEMENT_READ_ONLY: u8 =
    permission::PERSISTENT_CREDENTIAL_MANAGEMENT_READ_ONLY;

const STATUS_NOT_ALLOWED: u8 = StatusCode::NotAllowed as u8;

/// Sends a request; the answer's body (empty when it has none) or the key's status as a
/// failure, described for people.
fn send(key: &mut Key, request: &impl Request, what: &str) -> Result<Vec<u8>, Failure> {
    let (status, body) = key.cbor(&request.encode())?;
    if status != 0 {
        return Err(KeyRefused {
            status,
            what: what.to_owned(),
        }
        .into());
    }
    Ok(body)
}

/// Sends a request and reads its typed answer.
fn exchange<R: Response>(key: &mut Key, request: &impl Request, what: &str) -> Result<R, Failure> {
    let body = send(key, request, what)?;
    R::decode(&body)
        .map_err(|_| Failure::failed(format!("the key's answer to {what} is malformed")))
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
fn agree(
    key: &mut Key,
    protocol: PinProtocol,
) -> Result<(SharedSecret, KeyAgreementPublicKey), Failure> {
    let request = ClientPinRequest::get_key_agreement(protocol.number());
    let answer: ClientPinResponse = exchange(key, &request, "getKeyAgreement")?;
    let theirs = answer
        .key_agreement
        .ok_or_else(|| Failure::failed("the key sent no key agreement key"))?;
    let theirs = PlatformKey::from_wire(&theirs)
        .map_err(|_| Failure::failed("the key's key agreement key is not a P-256 point"))?;
    let ours = KeyAgreementKey::generate(fill_random);
    Ok((ours.decapsulate(protocol, &theirs), ours.public_key()))
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
    let request = ClientPinRequest {
        pin_uv_auth_protocol: Some(protocol.number().into()),
        ..ClientPinRequest::new(ClientPinSubcommand::GetPinRetries)
    };
    let answer: ClientPinResponse = exchange(key, &request, "getPinRetries")?;
    answer
        .pin_retries
        .ok_or_else(|| Failure::failed("the key sent no PIN retries"))
}

pub fn set_pin(key: &mut Key, protocol: PinProtocol, new_pin: &str) -> Result<(), Failure> {
    let (secret, ours) = agree(key, protocol)?;
    let new_pin_enc = secret.encrypt(&padded_pin(new_pin)?, fill_random);
    let mac = secret.authenticate(&new_pin_enc);
    let request = ClientPinRequest::set_pin(protocol.number(), ours, new_pin_enc, mac);
    send(key, &request, "setting the PIN").map(drop)
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
    let mac = secret.authenticate(&[&new_pin_enc[..], &pin_hash_enc[..]].concat());
    let request =
        ClientPinRequest::change_pin(protocol.number(), ours, pin_hash_enc, new_pin_enc, mac);
    send(key, &request, "changing the PIN").map(drop)
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
    let pin_hash_enc = secret.encrypt(&pin_hash(pin), fill_random);
    let request = ClientPinRequest::get_token_using_pin(
        protocol.number(),
        ours,
        pin_hash_enc,
        permissions,
        None,
    );
    let answer: ClientPinResponse = exchange(key, &request, "the PIN")?;
    let encrypted = answer
        .pin_uv_auth_token
        .ok_or_else(|| Failure::failed("the key sent no pinUvAuthToken"))?;
    let token = secret
        .decrypt(&encrypted)
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

/// An authorized credentialManagement subcommand: the token's MAC over subCommand ||
/// subCommandParams.
fn credential_management(
    key: &mut Key,
    token: &Token,
    sub_command: CredentialManagementSubcommand,
    params: Option<&CredentialManagementParams>,
    what: &str,
) -> Result<CredentialManagementResponse, Failure> {
    let request = match params {
        Some(params) => CredentialManagementRequest::with_params(sub_command, params),
        None => CredentialManagementRequest::new(sub_command),
    }
    .authorized(token.protocol.number(), |message| {
        token.authenticate(message)
    });
    exchange(key, &request, what)
}

/// A GetNext subcommand: no parameters, no token.
fn next(
    key: &mut Key,
    sub_command: CredentialManagementSubcommand,
    what: &str,
) -> Result<CredentialManagementResponse, Failure> {
    exchange(key, &CredentialManagementRequest::new(sub_command), what)
}

fn count(total: Option<u64>) -> usize {
    total.and_then(|n| usize::try_from(n).ok()).unwrap_or(0)
}

/// Every discoverable credential on the key (enumerateRPs, then enumerateCredentials of each).
pub fn list_credentials(key: &mut Key, token: &Token) -> Result<Vec<StoredCredential>, Failure> {
    use CredentialManagementSubcommand as Sub;
    const NO_CREDENTIALS: u8 = StatusCode::NoCredentials as u8;
    let first = match credential_management(
        key,
        token,
        Sub::EnumerateRpsBegin,
        None,
        "listing the sites",
    ) {
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
    let total = count(first.total_rps);
    let mut rps = vec![first];
    for _ in 1..total {
        rps.push(next(key, Sub::EnumerateRpsGetNextRp, "listing the sites")?);
    }
    let mut credentials = Vec::new();
    for rp in rps {
        let rp_id = rp.rp.map(|rp| rp.id).unwrap_or_default();
        let hash = rp
            .rp_id_hash
            .ok_or_else(|| Failure::failed("the key sent a site without its RP ID hash"))?;
        let params = CredentialManagementParams {
            rp_id_hash: Some(hash),
            ..CredentialManagementParams::default()
        };
        let first = credential_management(
            key,
            token,
            Sub::EnumerateCredentialsBegin,
            Some(&params),
            "listing credentials",
        )?;
        let total = count(first.total_credentials);
        let mut answers = vec![first];
        for _ in 1..total {
            answers.push(next(
                key,
                Sub::EnumerateCredentialsGetNextCredential,
                "listing credentials",
            )?);
        }
        for answer in answers {
            let id = answer
                .credential_id
                .map(|descriptor| descriptor.id)
                .ok_or_else(|| Failure::failed("the key sent a credential without its ID"))?;
            let user = answer.user.unwrap_or_default();
            credentials.push(StoredCredential {
                rp_id: rp_id.clone(),
                credential_id: hex::encode(id),
                user_id: hex::encode(user.id),
                user_name: user.name,
                display_name: user.display_name,
                cred_protect: answer.cred_protect,
                third_party_payment: answer.third_party_payment,
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
    let params = CredentialManagementParams {
        credential_id: Some(PublicKeyCredentialDescriptor::public_key(
            credential_id.to_vec(),
        )),
        ..CredentialManagementParams::default()
    };
    let sub_command = CredentialManagementSubcommand::DeleteCredential;
    credential_management(
        key,
        token,
        sub_command,
        Some(&params),
        "deleting the credential",
    )
    .map(drop)
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
    let params = CredentialManagementParams {
        credential_id: Some(PublicKeyCredentialDescriptor::public_key(
            credential_id.to_vec(),
        )),
        user: Some(PublicKeyCredentialUserEntity {
            id: user_id.to_vec(),
            name: name.map(str::to_owned),
            display_name: display_name.map(str::to_owned),
        }),
        ..CredentialManagementParams::default()
    };
    let sub_command = CredentialManagementSubcommand::UpdateUserInformation;
    credential_management(
        key,
        token,
        sub_command,
        Some(&params),
        "updating the credential",
    )
    .map(drop)
}

pub fn reset(key: &mut Key) -> Result<(), Failure> {
    send(key, &ResetRequest, "reset").map(drop)
}

/// An authorized authenticatorConfig subcommand: the token's MAC over 32×0xff || 0x0d ||
/// subCommand || subCommandParams.
fn config(key: &mut Key, token: &Token, request: ConfigRequest, what: &str) -> Result<(), Failure> {
    let request = request.authorized(token.protocol.number(), |message| {
        token.authenticate(message)
    });
    send(key, &request, what).map(drop)
}

pub fn toggle_always_uv(key: &mut Key, token: &Token) -> Result<(), Failure> {
    let request = ConfigRequest::new(ConfigSubcommand::ToggleAlwaysUv);
    config(key, token, request, "toggling alwaysUv")
}

pub fn set_min_pin_length(
    key: &mut Key,
    token: &Token,
    length: Option<u8>,
    rp_ids: &[String],
    force_change: bool,
) -> Result<(), Failure> {
    let params = SetMinPinLengthParams {
        new_min_pin_length: length.map(i128::from),
        min_pin_length_rp_ids: (!rp_ids.is_empty()).then(|| rp_ids.to_vec()),
        force_change_pin: force_change.then_some(true),
        pin_complexity_policy: None,
    };
    let request = ConfigRequest::set_min_pin_length(&params);
    config(key, token, request, "setting the minimum PIN length")
}
