//! authenticatorCredentialManagement (CTAP 2.1 §6.8; also served as 0x41, its FIDO_2_1_PRE
//! name): metadata, enumeration of RPs and of their discoverable credentials, deletion and
//! user entity updates. Every subcommand but the GetNext ones needs a pinUvAuthToken with the
//! cm permission, over subCommand || subCommandParams.

use std::collections::VecDeque;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::cbor;
use crate::ctap2::authenticator::Authenticator;
use crate::ctap2::pin::uv_auth::CmAuthorization;
use crate::ctap2::state::continuation::Continuation;
use crate::ctap2::state::Found;
use crate::ctap2::types;
use crate::env::{Credential, Env, Keystore};
use crate::status::StatusCode;
use crate::wire::{
    CredentialManagementParams, CredentialManagementRequest, CredentialManagementResponse,
    CredentialManagementSubcommand as Sub, PublicKeyCredentialDescriptor,
    PublicKeyCredentialRpEntity, PublicKeyCredentialUserEntity,
};

/// subCommandParams as the authenticator uses them.
struct Params {
    rp_id_hash: Option<Vec<u8>>,
    /// The ID of a "public-key" descriptor: one of another type names no credential here,
    /// as if none were sent.
    credential_id: Option<Vec<u8>>,
    /// The user entity as it would be stored: names truncated.
    user: Option<crate::env::UserEntity>,
}

impl From<CredentialManagementParams> for Params {
    fn from(params: CredentialManagementParams) -> Self {
        Params {
            rp_id_hash: params.rp_id_hash,
            credential_id: params
                .credential_id
                .filter(PublicKeyCredentialDescriptor::is_public_key)
                .map(|descriptor| descriptor.id),
            user: params.user.map(types::stored_user),
        }
    }
}

impl<E: Env> Authenticator<E> {
    pub(crate) fn credential_management(
        &mut self,
        request: CredentialManagementRequest,
    ) -> Result<CredentialManagementResponse, StatusCode> {
        // The GetNext subcommands continue only the enumeration begun on this channel (see
        // `state`); any other command, here or elsewhere, has ended it.
        let found = self.command.take_found();
        match request.sub_command {
            Sub::EnumerateRpsGetNextRp => return self.next_rp(found),
            Sub::EnumerateCredentialsGetNextCredential => return self.next_credential(found),
            Sub::GetCredsMetadata
            | Sub::EnumerateRpsBegin
            | Sub::EnumerateCredentialsBegin
            | Sub::DeleteCredential
            | Sub::UpdateUserInformation => {}
        }
        // The token: authenticate(pinUvAuthToken, subCommand || subCommandParams), cm; or, to
        // read, the persistent token of pcmr (CTAP 2.2).
        let message = request.message_to_authenticate();
        let read_only = matches!(
            request.sub_command,
            Sub::GetCredsMetadata | Sub::EnumerateRpsBegin | Sub::EnumerateCredentialsBegin
        );
        let authorization = self.authorize_credential_management(
            request.pin_uv_auth_param,
            request.pin_uv_auth_protocol,
            &message,
            read_only,
        )?;
        let params: Params =
            CredentialManagementParams::from_cbor(request.sub_command_params.as_ref())?.into();
        let token_rp = match authorization {
            CmAuthorization::Token => self.pin.token.rp_id().map(str::to_owned),
            CmAuthorization::PersistentReadOnly => None,
        };
        match request.sub_command {
            Sub::GetCredsMetadata => {
                // Metadata and RP enumeration span every RP: an RP-bound token may not.
                if token_rp.is_some() {
                    return Err(StatusCode::PinAuthInvalid);
                }
                Ok(CredentialManagementResponse {
                    existing_resident_credentials_count: Some(
                        self.keystore.discoverable_count() as u64
                    ),
                    max_possible_remaining_resident_credentials_count: Some(
                        self.keystore.remaining_discoverable_credentials() as u64,
                    ),
                    ..CredentialManagementResponse::default()
                })
            }
            Sub::EnumerateRpsBegin => {
                if token_rp.is_some() {
                    return Err(StatusCode::PinAuthInvalid);
                }
                self.enumerate_rps_begin()
            }
            Sub::EnumerateCredentialsBegin => {
                let rp_id_hash = params.rp_id_hash.ok_or(StatusCode::MissingParameter)?;
                let rp_id_hash: [u8; 32] = rp_id_hash
                    .try_into()
                    .map_err(|_| StatusCode::InvalidParameter)?;
                if token_rp.is_some_and(|rp| Sha256::digest(rp.as_bytes())[..] != rp_id_hash) {
                    return Err(StatusCode::PinAuthInvalid);
                }
                self.enumerate_credentials_begin(&rp_id_hash)
            }
            Sub::DeleteCredential => {
                let id = params.credential_id.ok_or(StatusCode::MissingParameter)?;
                let credential = self.stored_credential(&id, token_rp.as_deref())?;
                self.credential_store_changing()?;
                self.keystore.delete_credential(&credential.id)?;
                Ok(CredentialManagementResponse::default())
            }
            Sub::UpdateUserInformation => {
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
                Ok(CredentialManagementResponse::default())
            }
            Sub::EnumerateRpsGetNextRp | Sub::EnumerateCredentialsGetNextCredential => {
                unreachable!("answered above")
            }
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

    fn enumerate_rps_begin(&mut self) -> Result<CredentialManagementResponse, StatusCode> {
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
        let response = CredentialManagementResponse {
            total_rps: Some(total as u64),
            ..rp_entry(first)
        };
        if !rps.is_empty() {
            self.leave_continuation(Continuation::Rps(rps));
        }
        Ok(response)
    }

    fn next_rp(&mut self, found: Found) -> Result<CredentialManagementResponse, StatusCode> {
        let Found::Own(Continuation::Rps(mut rps)) = found else {
            return Err(StatusCode::NotAllowed);
        };
        let next = rps.pop_front().ok_or(StatusCode::NotAllowed)?;
        if !rps.is_empty() {
            self.leave_continuation(Continuation::Rps(rps));
        }
        Ok(rp_entry(next))
    }

    fn enumerate_credentials_begin(
        &mut self,
        rp_id_hash: &[u8; 32],
    ) -> Result<CredentialManagementResponse, StatusCode> {
        let mut credentials = self.keystore.discoverable_credentials(rp_id_hash)?;
        credentials.sort_by_key(|c| c.created);
        let total = credentials.len();
        let mut credentials: VecDeque<_> = credentials.into();
        let first = credentials.pop_front().ok_or(StatusCode::NoCredentials)?;
        let response = CredentialManagementResponse {
            total_credentials: Some(total as u64),
            ..self.credential_entry(&first)?
        };
        if !credentials.is_empty() {
            self.leave_continuation(Continuation::Credentials(credentials));
        }
        Ok(response)
    }

    fn next_credential(
        &mut self,
        found: Found,
    ) -> Result<CredentialManagementResponse, StatusCode> {
        let Found::Own(Continuation::Credentials(mut credentials)) = found else {
            return Err(StatusCode::NotAllowed);
        };
        let next = credentials.pop_front().ok_or(StatusCode::NotAllowed)?;
        let response = self.credential_entry(&next)?;
        if !credentials.is_empty() {
            self.leave_continuation(Continuation::Credentials(credentials));
        }
        Ok(response)
    }

    fn credential_entry(
        &mut self,
        credential: &Credential,
    ) -> Result<CredentialManagementResponse, StatusCode> {
        let public_key = self.keystore.public_key(credential)?;
        let public_key = cbor::decode(&public_key.to_cose())?;
        // A discoverable credential always has its user entity (makeCredential requires one).
        let user = credential
            .user
            .as_ref()
            .map(|user| PublicKeyCredentialUserEntity {
                id: user.id.clone(),
                name: user.name.clone(),
                display_name: user.display_name.clone(),
            });
        Ok(CredentialManagementResponse {
            user,
            credential_id: Some(PublicKeyCredentialDescriptor::public_key(
                credential.id.clone(),
            )),
            public_key: Some(public_key),
            cred_protect: Some(credential.extras.cred_protect.level().into()),
            large_blob_key: credential
                .extras
                .large_blob_key
                .as_ref()
                .map(|key| Zeroizing::new(key.to_vec())),
            // CTAP 2.2 §6.8.3: thirdPartyPayment, whether the credential has the flag.
            third_party_payment: Some(credential.extras.third_party_payment),
            ..CredentialManagementResponse::default()
        })
    }
}

fn rp_entry((rp_id, rp_id_hash): (String, [u8; 32])) -> CredentialManagementResponse {
    CredentialManagementResponse {
        rp: Some(PublicKeyCredentialRpEntity {
            id: rp_id,
            name: None,
        }),
        rp_id_hash: Some(rp_id_hash.to_vec()),
        ..CredentialManagementResponse::default()
    }
}

#[cfg(test)]
mod tests;
