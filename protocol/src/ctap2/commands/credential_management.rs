//! authenticatorCredentialManagement (CTAP 2.1 §6.8; also served as 0x41, its FIDO_2_1_PRE
//! name): metadata, enumeration of RPs and of their discoverable credentials, deletion and
//! user entity updates. Every subcommand but the GetNext ones needs a pinUvAuthToken with the
//! cm permission, over subCommand || subCommandParams.

use std::collections::VecDeque;

use ciborium::Value;
use sha2::{Digest, Sha256};

use crate::cbor::{self, RequestMap};
use crate::ctap2::authenticator::Authenticator;
use crate::ctap2::pin::uv_auth::CmAuthorization;
use crate::ctap2::state::continuation::Continuation;
use crate::ctap2::state::Found;
use crate::ctap2::types;
use crate::env::{Credential, Env, Keystore};
use crate::status::StatusCode;

const SUB_COMMAND: i128 = 0x01;
const SUB_COMMAND_PARAMS: i128 = 0x02;
const PIN_UV_AUTH_PROTOCOL: i128 = 0x03;
const PIN_UV_AUTH_PARAM: i128 = 0x04;

const PARAM_RP_ID_HASH: i128 = 0x01;
const PARAM_CREDENTIAL_ID: i128 = 0x02;
const PARAM_USER: i128 = 0x03;

const GET_CREDS_METADATA: u8 = 0x01;
const ENUMERATE_RPS_BEGIN: u8 = 0x02;
const ENUMERATE_RPS_GET_NEXT_RP: u8 = 0x03;
const ENUMERATE_CREDENTIALS_BEGIN: u8 = 0x04;
const ENUMERATE_CREDENTIALS_GET_NEXT_CREDENTIAL: u8 = 0x05;
const DELETE_CREDENTIAL: u8 = 0x06;
const UPDATE_USER_INFORMATION: u8 = 0x07;

const RESPONSE_EXISTING_COUNT: i64 = 0x01;
const RESPONSE_REMAINING_COUNT: i64 = 0x02;
const RESPONSE_RP: i64 = 0x03;
const RESPONSE_RP_ID_HASH: i64 = 0x04;
const RESPONSE_TOTAL_RPS: i64 = 0x05;
const RESPONSE_USER: i64 = 0x06;
const RESPONSE_CREDENTIAL_ID: i64 = 0x07;
const RESPONSE_PUBLIC_KEY: i64 = 0x08;
const RESPONSE_TOTAL_CREDENTIALS: i64 = 0x09;
const RESPONSE_CRED_PROTECT: i64 = 0x0A;
const RESPONSE_LARGE_BLOB_KEY: i64 = 0x0B;
const RESPONSE_THIRD_PARTY_PAYMENT: i64 = 0x0C;

struct Request {
    sub_command: u8,
    params: Option<Value>,
    protocol: Option<i128>,
    pin_uv_auth_param: Option<Vec<u8>>,
}

fn parse(params: &[u8]) -> Result<Request, StatusCode> {
    let mut map = RequestMap::parse(params)?;
    let sub_command = cbor::into_int(map.required(SUB_COMMAND)?)?;
    let params = map.take(SUB_COMMAND_PARAMS);
    if !matches!(params, None | Some(Value::Map(_))) {
        return Err(StatusCode::CborUnexpectedType);
    }
    let protocol = map
        .take(PIN_UV_AUTH_PROTOCOL)
        .map(cbor::into_int)
        .transpose()?;
    let pin_uv_auth_param = map
        .take(PIN_UV_AUTH_PARAM)
        .map(cbor::into_bytes)
        .transpose()?;
    Ok(Request {
        sub_command: u8::try_from(sub_command).map_err(|_| StatusCode::InvalidSubcommand)?,
        params,
        protocol,
        pin_uv_auth_param,
    })
}

/// The subCommandParams entries.
struct Params {
    rp_id_hash: Option<Vec<u8>>,
    credential_id: Option<Vec<u8>>,
    user: Option<crate::env::UserEntity>,
}

fn parse_params(value: Option<&Value>) -> Result<Params, StatusCode> {
    let Some(value) = value else {
        return Ok(Params {
            rp_id_hash: None,
            credential_id: None,
            user: None,
        });
    };
    let mut map = RequestMap::parse(&cbor::encode(value))?;
    let rp_id_hash = map
        .take(PARAM_RP_ID_HASH)
        .map(cbor::into_bytes)
        .transpose()?;
    let credential_id = map
        .take(PARAM_CREDENTIAL_ID)
        .map(|d| types::parse_credential_list(Value::Array(vec![d])))
        .transpose()?
        .and_then(|mut list| list.pop())
        .map(|d| d.id);
    let user = map.take(PARAM_USER).map(types::parse_user).transpose()?;
    Ok(Params {
        rp_id_hash,
        credential_id,
        user,
    })
}

impl<E: Env> Authenticator<E> {
    pub(crate) fn credential_management(&mut self, params: &[u8]) -> Result<Value, StatusCode> {
        // The GetNext subcommands continue only the enumeration begun on this channel (see
        // `state`); any other command, here or elsewhere, has ended it.
        let found = self.command.take_found();
        let request = parse(params)?;
        match request.sub_command {
            ENUMERATE_RPS_GET_NEXT_RP => return self.next_rp(found),
            ENUMERATE_CREDENTIALS_GET_NEXT_CREDENTIAL => return self.next_credential(found),
            GET_CREDS_METADATA
            | ENUMERATE_RPS_BEGIN
            | ENUMERATE_CREDENTIALS_BEGIN
            | DELETE_CREDENTIAL
            | UPDATE_USER_INFORMATION => {}
            _ => return Err(StatusCode::InvalidSubcommand),
        }
        // The token: authenticate(pinUvAuthToken, subCommand || subCommandParams), cm; or, to
        // read, the persistent token of pcmr (CTAP 2.2).
        let mut message = vec![request.sub_command];
        if let Some(params) = &request.params {
            message.extend(cbor::encode(params));
        }
        let read_only = matches!(
            request.sub_command,
            GET_CREDS_METADATA | ENUMERATE_RPS_BEGIN | ENUMERATE_CREDENTIALS_BEGIN
        );
        let authorization = self.authorize_credential_management(
            request.pin_uv_auth_param,
            request.protocol,
            &message,
            read_only,
        )?;
        let params = parse_params(request.params.as_ref())?;
        let token_rp = match authorization {
            CmAuthorization::Token => self.pin.token.rp_id().map(str::to_owned),
            CmAuthorization::PersistentReadOnly => None,
        };
        match request.sub_command {
            GET_CREDS_METADATA => {
                // Metadata and RP enumeration span every RP: an RP-bound token may not.
                if token_rp.is_some() {
                    return Err(StatusCode::PinAuthInvalid);
                }
                Ok(cbor::int_map(vec![
                    (
                        RESPONSE_EXISTING_COUNT,
                        Value::Integer((self.keystore.discoverable_count() as u64).into()),
                    ),
                    (
                        RESPONSE_REMAINING_COUNT,
                        Value::Integer(
                            (self.keystore.remaining_discoverable_credentials() as u64).into(),
                        ),
                    ),
                ]))
            }
            ENUMERATE_RPS_BEGIN => {
                if token_rp.is_some() {
                    return Err(StatusCode::PinAuthInvalid);
                }
                self.enumerate_rps_begin()
            }
            ENUMERATE_CREDENTIALS_BEGIN => {
                let rp_id_hash = params.rp_id_hash.ok_or(StatusCode::MissingParameter)?;
                let rp_id_hash: [u8; 32] = rp_id_hash
                    .try_into()
                    .map_err(|_| StatusCode::InvalidParameter)?;
                if token_rp.is_some_and(|rp| Sha256::digest(rp.as_bytes())[..] != rp_id_hash) {
                    return Err(StatusCode::PinAuthInvalid);
                }
                self.enumerate_credentials_begin(&rp_id_hash)
            }
            DELETE_CREDENTIAL => {
                let id = params.credential_id.ok_or(StatusCode::MissingParameter)?;
                let credential = self.stored_credential(&id, token_rp.as_deref())?;
                self.credential_store_changing()?;
                self.keystore.delete_credential(&credential.id)?;
                Ok(Value::Null)
            }
            UPDATE_USER_INFORMATION => {
                let id = params.credential_id.ok_or(StatusCode::MissingParameter)?;
                let mut user = params.user.ok_or(StatusCode::MissingParameter)?;
                let credential = self.stored_credential(&id, token_rp.as_deref())?;
                // The user handle names the account; only its names may change.
                if credential.user.as_ref().map(|u| &u.id) != Some(&user.id) {
                    return Err(StatusCode::InvalidParameter);
                }
                // §6.8.6: a name or displayName that is absent, or present and empty, is
                // removed from the stored user.
                user.name = user.name.filter(|name| !name.is_empty());
                user.display_name = user.display_name.filter(|name| !name.is_empty());
                self.credential_store_changing()?;
                self.keystore.update_user(&credential.id, &user)?;
                Ok(Value::Null)
            }
            _ => unreachable!("filtered above"),
        }
    }

    /// The discoverable credential with this ID (NO_CREDENTIALS if none); a token bound to an
    /// RP may only touch that RP's credentials.
    fn stored_credential(
        &mut self,
        id: &[u8],
        token_rp: Option<&str>,
    ) -> Result<Credential, StatusCode> {
        let credential = self
            .keystore
            .all_discoverable_credentials()?
            .into_iter()
            .find(|c| c.id == id)
            .ok_or(StatusCode::NoCredentials)?;
        if token_rp.is_some_and(|rp| credential.rp_id.as_deref() != Some(rp)) {
            return Err(StatusCode::PinAuthInvalid);
        }
        Ok(credential)
    }

    fn enumerate_rps_begin(&mut self) -> Result<Value, StatusCode> {
        let mut rps: Vec<(String, [u8; 32])> = self
            .keystore
            .all_discoverable_credentials()?
            .into_iter()
            .map(|c| (c.rp_id.unwrap_or_default(), c.rp_id_hash))
            .collect();
        rps.sort();
        rps.dedup_by(|a, b| a.1 == b.1);
        let total = rps.len();
        let mut rps: VecDeque<_> = rps.into();
        let first = rps.pop_front().ok_or(StatusCode::NoCredentials)?;
        let mut response = rp_entry(first);
        response.push((RESPONSE_TOTAL_RPS, Value::Integer((total as u64).into())));
        if !rps.is_empty() {
            self.leave_continuation(Continuation::Rps(rps));
        }
        Ok(cbor::int_map(response))
    }

    fn next_rp(&mut self, found: Found) -> Result<Value, StatusCode> {
        let Found::Own(Continuation::Rps(mut rps)) = found else {
            return Err(StatusCode::NotAllowed);
        };
        let next = rps.pop_front().ok_or(StatusCode::NotAllowed)?;
        if !rps.is_empty() {
            self.leave_continuation(Continuation::Rps(rps));
        }
        Ok(cbor::int_map(rp_entry(next)))
    }

    fn enumerate_credentials_begin(&mut self, rp_id_hash: &[u8; 32]) -> Result<Value, StatusCode> {
        let mut credentials = self.keystore.discoverable_credentials(rp_id_hash)?;
        credentials.sort_by_key(|c| c.created);
        let total = credentials.len();
        let mut credentials: VecDeque<_> = credentials.into();
        let first = credentials.pop_front().ok_or(StatusCode::NoCredentials)?;
        let mut response = self.credential_entry(&first)?;
        response.push((
            RESPONSE_TOTAL_CREDENTIALS,
            Value::Integer((total as u64).into()),
        ));
        if !credentials.is_empty() {
            self.leave_continuation(Continuation::Credentials(credentials));
        }
        Ok(cbor::int_map(response))
    }

    fn next_credential(&mut self, found: Found) -> Result<Value, StatusCode> {
        let Found::Own(Continuation::Credentials(mut credentials)) = found else {
            return Err(StatusCode::NotAllowed);
        };
        let next = credentials.pop_front().ok_or(StatusCode::NotAllowed)?;
        let response = self.credential_entry(&next)?;
        if !credentials.is_empty() {
            self.leave_continuation(Continuation::Credentials(credentials));
        }
        Ok(cbor::int_map(response))
    }

    fn credential_entry(
        &mut self,
        credential: &Credential,
    ) -> Result<Vec<(i64, Value)>, StatusCode> {
        let public_key = self.keystore.public_key(credential)?;
        let public_key = cbor::decode(&public_key.to_cose())?;
        let mut user = Vec::new();
        if let Some(entity) = &credential.user {
            user.push(("id", Value::Bytes(entity.id.clone())));
            if let Some(name) = &entity.name {
                user.push(("name", Value::Text(name.clone())));
            }
            if let Some(display_name) = &entity.display_name {
                user.push(("displayName", Value::Text(display_name.clone())));
            }
        }
        let mut entry = vec![
            (RESPONSE_USER, cbor::text_map(user)),
            (
                RESPONSE_CREDENTIAL_ID,
                types::credential_descriptor(&credential.id),
            ),
            (RESPONSE_PUBLIC_KEY, public_key),
            (
                RESPONSE_CRED_PROTECT,
                Value::Integer(credential.extras.cred_protect.level().into()),
            ),
        ];
        if let Some(key) = &credential.extras.large_blob_key {
            entry.push((RESPONSE_LARGE_BLOB_KEY, Value::Bytes(key.to_vec())));
        }
        // CTAP 2.2 §6.8.3: thirdPartyPayment, whether the credential has the flag.
        entry.push((
            RESPONSE_THIRD_PARTY_PAYMENT,
            Value::Bool(credential.extras.third_party_payment),
        ));
        Ok(entry)
    }
}

fn rp_entry((rp_id, rp_id_hash): (String, [u8; 32])) -> Vec<(i64, Value)> {
    vec![
        (
            RESPONSE_RP,
            cbor::text_map(vec![("id", Value::Text(rp_id))]),
        ),
        (RESPONSE_RP_ID_HASH, Value::Bytes(rp_id_hash.to_vec())),
    ]
}

#[cfg(test)]
mod tests;
