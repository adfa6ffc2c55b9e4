//! authenticatorGetAssertion (CTAP 2.1 §6.2).
//!
//! **What a request without user presence (`"up": false`) may receive.** A silent assertion
//! exists so that a platform can check which credentials are on this key (CTAP 2.1 §6.2.2 step
//! 9 skips the gesture): OpenSSH, for one, looks for a resident key of the same user this way
//! before it makes a new one. It receives the credential, the authenticator data (UP clear),
//! the signature and, for a discoverable credential, the user handle (§6.2.2 step 11), and
//! nothing secret:
//! - hmac-secret (and WebAuthn's PRF, which travels as hmac-secret) is
//!   CTAP2_ERR_UNSUPPORTED_OPTION before anything is computed (§12.5: "If "up" is set to false,
//!   authenticator returns CTAP2_ERR_UNSUPPORTED_OPTION"): the output opens LUKS volumes and
//!   password stores, and must never be had without the person's touch;
//! - credBlob (§12.2) and largeBlobKey (§12.3) are left out of the response: both are data the
//!   relying party stored for this person, and the largeBlobKey decrypts their large blob. The
//!   spec names no error for them, and leaving an extension's output out is what an
//!   authenticator may always do;
//! - thirdPartyPayment (CTAP 2.2 §12.9) is answered: it is a property of the credential that
//!   the RP asked for, not data stored for the person;
//! - names and display names need user verification in any case (§6.2.2 step 12);
//! - a silent discovery is served as the spec allows: it tells a program that can open the key
//!   which user handles it holds for a site it names, as on every hardware key. credProtect
//!   level 2 or 3 hides a credential from it (§12.1); refusing it broke OpenSSH's resident
//!   keys (`ssh-keygen -O resident` answered "requested feature not supported");
//! - over hybrid, `"up": false` is refused altogether (see `hybrid_policy`).

use ciborium::Value;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::cbor;
use crate::ctap2::authenticator::Authenticator;
use crate::ctap2::authenticator_data::{self, FLAG_UP, FLAG_UV};
use crate::ctap2::extensions;
use crate::ctap2::pin::token::permission;
use crate::ctap2::state::continuation::{AssertionExtensions, Continuation, NextAssertionState};
use crate::env::{CredProtect, Credential, Env, Keystore, Operation, Presence, Rng};
use crate::status::StatusCode;
use crate::wire::{
    GetAssertionRequest, GetAssertionResponse, PublicKeyCredentialDescriptor,
    PublicKeyCredentialUserEntity,
};

/// credProtect (§12.1): may this credential be used? Level 3 only with UV; level 2 without
/// UV only when the platform named it in an allowList.
fn usable(credential: &Credential, uv: bool, listed: bool) -> bool {
    match credential.extras.cred_protect {
        CredProtect::UserVerificationOptional => true,
        CredProtect::UserVerificationOptionalWithCredentialIdList => uv || listed,
        CredProtect::UserVerificationRequired => uv,
    }
}

/// Whether answering for `credential` with UV needs a secret the keystore bound to the PIN and
/// cannot give before a PIN is verified (see `Credential::uv_secrets_locked`): a credential of
/// credProtect level 3, or an hmac-secret output.
fn needs_the_pins_secret(credential: &Credential, extensions: &AssertionExtensions) -> bool {
    credential.uv_secrets_locked
        && (credential.extras.cred_protect == CredProtect::UserVerificationRequired
            || extensions.hmac_secret.is_some())
}

impl<E: Env> Authenticator<E> {
    pub(crate) fn get_assertion(
        &mut self,
        request: GetAssertionRequest,
    ) -> Result<GetAssertionResponse, StatusCode> {
        // 1-2. pinUvAuthParam: the zero-length probe and protocol checks.
        let auth =
            self.pin_uv_auth_precheck(request.pin_uv_auth_param, request.pin_uv_auth_protocol)?;

        // 4. Options: "rk" has no meaning here. "uv": true asks for built-in user
        //    verification; a pinUvAuthParam takes precedence; without built-in UV it is an
        //    invalid option.
        if request.options.rk.is_some() {
            return Err(StatusCode::UnsupportedOption);
        }
        let mut built_in_uv = request.options.uv == Some(true) && auth.is_none();
        if built_in_uv && !self.presence.built_in_uv() {
            return Err(StatusCode::InvalidOption);
        }
        let want_presence = request.options.up != Some(false);

        // A silent request receives no secret (see the module documentation): hmac-secret is
        // refused before anything is computed.
        if !want_presence && request.extensions.hmac_secret.is_some() {
            return Err(StatusCode::UnsupportedOption);
        }

        // 5. alwaysUv: an assertion with presence needs user verification (a silent probe,
        //    "up": false, does not). No pinUvAuthParam and no built-in UV: PUAT_REQUIRED; with
        //    built-in UV a CTAP 2.0 platform that sends no "uv" gets it anyway.
        if want_presence && auth.is_none() && self.state()?.always_uv {
            if !self.presence.built_in_uv() {
                return Err(StatusCode::PuatRequired);
            }
            built_in_uv = true;
        }

        // 6.1. User verification through the pinUvAuthToken. (6.2, built-in, follows the
        //    lookup below, so the prompt can name the account.)
        let uv = match &auth {
            Some(auth) => {
                self.verify_ceremony_token(
                    auth,
                    &request.client_data_hash,
                    permission::GET_ASSERTION,
                    &request.rp_id,
                )?;
                true
            }
            None => built_in_uv,
        };

        // 7. Locate the credentials: the first of the allowList that is ours for this RP, or,
        //    with no (or an empty) allowList, the RP's discoverable credentials, newest first;
        //    credProtect decides which of them may be used without UV. With built-in UV the
        //    lookup assumes the verification below succeeds: nothing found leaves otherwise.
        let rp_id_hash: [u8; 32] = Sha256::digest(request.rp_id.as_bytes()).into();
        // A present, non-empty allowList is never a discovery, even when none of its entries
        // is of a type we know (§6.2.2 step 7: "If the allowList parameter is present and
        // non-empty"): it then simply names no credential of ours.
        let discovery = request.allow_list.is_empty();
        let mut credentials = match discovery {
            false => {
                let mut found = None;
                for descriptor in request.allow_list.iter().filter(|d| d.is_public_key()) {
                    if let Some(credential) =
                        self.keystore.find_credential(&rp_id_hash, &descriptor.id)?
                    {
                        if usable(&credential, uv, true) {
                            found = Some(credential);
                            break;
                        }
                    }
                }
                found.into_iter().collect::<Vec<_>>()
            }
            true => {
                let mut list = self.keystore.discoverable_credentials(&rp_id_hash)?;
                list.retain(|c| usable(c, uv, false));
                list.sort_by_key(|c| std::cmp::Reverse(c.created));
                list
            }
        };
        let only_account = match credentials.as_slice() {
            [single] => single.user.as_ref().and_then(|u| u.name.clone()),
            _ => None,
        };
        // 6.2. Built-in UV, whether or not anything was found: its prompt says nothing to the
        //    platform, and skipping it would tell which credProtect=3 credentials exist.
        if built_in_uv {
            self.verify_for_ceremony(
                Operation::Authenticate,
                &request.rp_id,
                only_account.as_deref(),
            )?;
        }
        if credentials.is_empty() {
            return Err(StatusCode::NoCredentials);
        }

        // hmac-secret's salts are checked before the presence gesture, so a bad request costs
        // none (built-in UV comes first, as in the spec).
        let extensions = AssertionExtensions {
            hmac_secret: request
                .extensions
                .hmac_secret
                .map(|input| self.hmac_secret_salts(input))
                .transpose()?,
            // Data the RP stored for the person: only with their gesture.
            cred_blob: request.extensions.cred_blob && want_presence,
            large_blob_key: request.extensions.large_blob_key && want_presence,
            // Whether the credential may serve a third-party payment: a property of the
            // credential, not data of the person, so no gesture is needed to learn it.
            third_party_payment: request.extensions.third_party_payment,
        };
        // UV by built-in verification since the keystore opened, and no PIN yet: what the
        // keystore bound to the PIN is out of reach. CTAP2_ERR_PUAT_REQUIRED sends the platform
        // to the PIN, which opens it (before any gesture is asked for).
        if uv
            && credentials
                .iter()
                .any(|c| needs_the_pins_secret(c, &extensions))
        {
            return Err(StatusCode::PuatRequired);
        }

        // 9. User presence, unless the platform asked for a silent check ("up": false), or the
        //    token already carries it, or built-in UV was the gesture; then the token's flags
        //    and permissions are spent.
        let mut flags = 0;
        if uv {
            flags |= FLAG_UV;
        }
        if want_presence {
            let user_present = built_in_uv || (auth.is_some() && self.pin.token.user_present());
            if !user_present {
                self.collect_presence(
                    Operation::Authenticate,
                    Some(&request.rp_id),
                    only_account.as_deref(),
                )?;
            }
            self.pin.token.consume_after_presence();
            flags |= FLAG_UP;
        }

        // 10-12. Sign with the first credential; keep the others for getNextAssertion.
        let count = credentials.len();
        let first = credentials.remove(0);
        let response = self.assertion_response(
            &first,
            &rp_id_hash,
            flags,
            &request.client_data_hash,
            &extensions,
            (discovery && count > 1).then_some(count),
        )?;
        if discovery && count > 1 {
            self.leave_continuation(Continuation::NextAssertion(NextAssertionState {
                rp_id_hash,
                client_data_hash: request.client_data_hash,
                flags,
                extensions,
                remaining: credentials.into(),
            }));
        }
        Ok(response)
    }

    /// The signed response for one credential (shared with getNextAssertion).
    pub(crate) fn assertion_response(
        &mut self,
        credential: &Credential,
        rp_id_hash: &[u8; 32],
        flags: u8,
        client_data_hash: &[u8],
        extensions: &AssertionExtensions,
        number_of_credentials: Option<usize>,
    ) -> Result<GetAssertionResponse, StatusCode> {
        let uv = flags & FLAG_UV != 0;
        if uv && needs_the_pins_secret(credential, extensions) {
            return Err(StatusCode::PuatRequired);
        }
        let mut outputs = Vec::new();
        if let (Some(salts), Some(secret)) =
            (&extensions.hmac_secret, &credential.extras.hmac_secret)
        {
            // The UV and non-UV CredRandoms differ: a secret derived without UV says nothing
            // about the one derived with it.
            let cred_random = if uv {
                &secret.with_uv
            } else {
                &secret.without_uv
            };
            let rng = &mut self.rng;
            let output = salts.output(cred_random, |iv| rng.fill_bytes(iv));
            outputs.push((extensions::HMAC_SECRET, Value::Bytes(output)));
        }
        if extensions.cred_blob {
            let blob = credential.extras.cred_blob.clone().unwrap_or_default();
            outputs.push((extensions::CRED_BLOB, Value::Bytes(blob)));
        }
        // thirdPartyPayment (CTAP 2.2 §12.9): asked for, the credential's flag, true or false.
        if extensions.third_party_payment {
            outputs.push((
                extensions::THIRD_PARTY_PAYMENT,
                Value::Bool(credential.extras.third_party_payment),
            ));
        }
        let extension_outputs = (!outputs.is_empty()).then(|| cbor::text_map(outputs));

        let sign_count = self.keystore.next_signature_counter()?;
        let auth_data = authenticator_data::build(
            rp_id_hash,
            flags,
            sign_count,
            None,
            extension_outputs.as_ref(),
        );
        let mut signed = auth_data.clone();
        signed.extend_from_slice(client_data_hash);
        let signature = self.keystore.sign(credential, &signed)?;

        // The user entity of a discoverable credential. Without user verification only the
        // user handle is returned: names identify the person (CTAP 2.1 §6.2.2, privacy).
        let user = credential
            .user
            .as_ref()
            .map(|user| PublicKeyCredentialUserEntity {
                id: user.id.clone(),
                name: user.name.clone().filter(|_| uv),
                display_name: user.display_name.clone().filter(|_| uv),
            });
        let large_blob_key = if extensions.large_blob_key {
            credential
                .extras
                .large_blob_key
                .as_ref()
                .map(|key| Zeroizing::new(key.to_vec()))
        } else {
            None
        };
        Ok(GetAssertionResponse {
            credential: PublicKeyCredentialDescriptor::public_key(credential.id.clone()),
            auth_data,
            signature,
            user,
            number_of_credentials: number_of_credentials.map(|count| count as u64),
            user_selected: None,
            large_blob_key,
        })
    }
}

#[cfg(test)]
mod tests;
