//! authenticatorMakeCredential (CTAP 2.1 §6.1).

use ciborium::Value;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::cbor;
use crate::ctap2::authenticator::Authenticator;
use crate::ctap2::authenticator_data::{self, AttestedCredential, FLAG_UP, FLAG_UV};
use crate::ctap2::extensions;
use crate::ctap2::hmac_secret::HmacSecretSalts;
use crate::ctap2::pin::token::permission;
use crate::ctap2::types;
use crate::env::{
    CredProtect, CredentialExtras, Env, HmacSecret, Keystore, NewCredential, Operation, Presence,
    Rng,
};
use crate::status::StatusCode;
use crate::wire::{MakeCredentialExtensionsInput, MakeCredentialRequest, MakeCredentialResponse};

/// The attestation statement formats we can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AttestationFormat {
    /// `packed` self attestation: signed by the credential's own key, no certificate.
    Packed,
    None,
}

/// Authenticator extension outputs, by extension name.
type ExtensionOutputs = Vec<(&'static str, Value)>;

/// attestationFormatsPreference (CTAP 2.2): the first listed format we support; our default
/// (`packed`) when we support none of them, or none is given.
fn attestation_format(preference: Option<&[String]>) -> AttestationFormat {
    preference
        .unwrap_or_default()
        .iter()
        .find_map(|format| match format.as_str() {
            "packed" => Some(AttestationFormat::Packed),
            "none" => Some(AttestationFormat::None),
            _ => None,
        })
        .unwrap_or(AttestationFormat::Packed)
}

impl<E: Env> Authenticator<E> {
    pub(crate) fn make_credential(
        &mut self,
        request: MakeCredentialRequest,
    ) -> Result<MakeCredentialResponse, StatusCode> {
        // 3. The algorithm: UNSUPPORTED_ALGORITHM when none fits, before anything else.
        let algorithm = types::choose_algorithm(&request.pub_key_cred_params, |alg| {
            self.keystore.supports(alg)
        })?;
        let attestation_format =
            attestation_format(request.attestation_formats_preference.as_deref());
        let rp = types::stored_rp(request.rp);
        let user = types::stored_user(request.user);

        // 1-2. pinUvAuthParam: the zero-length "which key?" probe, protocol checks.
        let auth =
            self.pin_uv_auth_precheck(request.pin_uv_auth_param, request.pin_uv_auth_protocol)?;

        // 5. Options. "up": false makes no sense for a new credential.
        if request.options.up == Some(false) {
            return Err(StatusCode::InvalidOption);
        }
        // "uv": true asks for built-in user verification; a pinUvAuthParam takes precedence
        //    (the option then counts as false). Without built-in UV it is an invalid option.
        let mut built_in_uv = request.options.uv == Some(true) && auth.is_none();
        if built_in_uv && !self.presence.built_in_uv() {
            return Err(StatusCode::InvalidOption);
        }
        let discoverable = request.options.rk == Some(true);
        let protected = self.is_protected()?;
        let always_uv = self.state()?.always_uv;

        // 6. alwaysUv: every credential needs user verification (and makeCredUvNotRqd counts
        //    as false). No pinUvAuthParam and no built-in UV: PUAT_REQUIRED (we always offer
        //    clientPin). With built-in UV, a CTAP 2.0 platform that sends no "uv" gets it
        //    anyway.
        if always_uv && auth.is_none() {
            if !self.presence.built_in_uv() {
                return Err(StatusCode::PuatRequired);
            }
            built_in_uv = true;
        }
        // 7-8. makeCredUvNotRqd (reported unless alwaysUv): on a protected key a
        //    non-discoverable credential may be made without UV, a discoverable one may not.
        //    PUAT_REQUIRED when a PIN could provide it, else OPERATION_DENIED.
        let make_cred_uv_not_rqd = !always_uv;
        if protected && !built_in_uv && auth.is_none() && (discoverable || !make_cred_uv_not_rqd) {
            return Err(if self.pin_is_set()? {
                StatusCode::PuatRequired
            } else {
                StatusCode::OperationDenied
            });
        }

        // 9. Enterprise attestation is not something this key can do.
        if request.enterprise_attestation.is_some() {
            return Err(StatusCode::InvalidParameter);
        }

        // 11.1. User verification through the pinUvAuthToken, or 11.2. built-in (the person
        //    sees the site and the account), which is also evidence of user interaction.
        let uv = match &auth {
            Some(auth) => {
                self.verify_ceremony_token(
                    auth,
                    &request.client_data_hash,
                    permission::MAKE_CREDENTIAL,
                    &rp.id,
                )?;
                true
            }
            None if built_in_uv => {
                self.verify_for_ceremony(Operation::Register, &rp.id, user.name.as_deref())?;
                true
            }
            None => false,
        };
        let user_present = built_in_uv || (auth.is_some() && self.pin.token.user_present());

        let rp_id_hash: [u8; 32] = Sha256::digest(rp.id.as_bytes()).into();

        // 12. excludeList: if one of ours for this RP is listed, the person confirms with a
        //    gesture before the platform learns it exists (so a page cannot probe silently);
        //    the answer is CREDENTIAL_EXCLUDED whatever the gesture, unless withdrawn. A
        //    credProtect=3 credential stays hidden unless the request is user-verified.
        for descriptor in request.exclude_list.iter().filter(|d| d.is_public_key()) {
            let Some(existing) = self.keystore.find_credential(&rp_id_hash, &descriptor.id)? else {
                continue;
            };
            if existing.extras.cred_protect == CredProtect::UserVerificationRequired && !uv {
                continue;
            }
            if user_present {
                return Err(StatusCode::CredentialExcluded);
            }
            return match self.collect_presence(
                Operation::ConfirmExcluded,
                Some(&rp.id),
                user.name.as_deref(),
            ) {
                Err(StatusCode::KeepaliveCancel) => Err(StatusCode::KeepaliveCancel),
                _ => Err(StatusCode::CredentialExcluded),
            };
        }

        // hmac-secret-mc's salts are checked before the gesture, so a bad request costs none.
        let mut requested_extensions = request.extensions;
        let hmac_secret_mc = match requested_extensions.hmac_secret_mc.take() {
            Some(input) if requested_extensions.hmac_secret => Some(self.hmac_secret_salts(input)?),
            _ => None,
        };
        // A full store still takes a credential that replaces one of the same RP and user
        // handle (§6.1.2 step 17: it overwrites that one; KEY_STORE_FULL is only for a
        // credential that needs a new slot).
        if discoverable
            && self.keystore.remaining_discoverable_credentials() == 0
            && !self.replaces_a_stored_credential(&rp_id_hash, &user.id)?
        {
            return Err(StatusCode::KeyStoreFull);
        }

        // 13. Built-in UV was the gesture: "up" is set, and no token is involved.
        // 14. Otherwise user presence ("up" is always true here), unless the token already
        //    carries it; then the token's flags and permissions are spent.
        if !built_in_uv {
            if !user_present {
                self.collect_presence(Operation::Register, Some(&rp.id), user.name.as_deref())?;
            }
            self.pin.token.consume_after_presence();
        }
        let mut flags = FLAG_UP;
        if uv {
            flags |= FLAG_UV;
        }

        // 15. Extensions.
        let (extras, outputs) = self.make_credential_extensions(
            &requested_extensions,
            &rp.id,
            discoverable,
            uv,
            hmac_secret_mc.as_ref(),
        )?;

        // 16-17. Generate the key pair; a discoverable credential replaces the stored one of
        //    the same RP and user ID (the credential store changes: CTAP 2.3 encCredStoreState).
        if discoverable {
            self.credential_store_changing()?;
        }
        let (credential, public_key) = self.keystore.create_credential(&NewCredential {
            rp: &rp,
            rp_id_hash: &rp_id_hash,
            user: &user,
            algorithm,
            discoverable,
            extras: &extras,
        })?;

        // 18-19. authenticatorData with the attested credential data, then the attestation.
        let sign_count = self.keystore.next_signature_counter()?;
        let extension_outputs = (!outputs.is_empty()).then(|| cbor::text_map(outputs));
        let auth_data = authenticator_data::build(
            &rp_id_hash,
            flags,
            sign_count,
            Some(&AttestedCredential {
                aaguid: &self.config.aaguid,
                credential_id: &credential.id,
                public_key: &public_key,
            }),
            extension_outputs.as_ref(),
        );
        let (fmt, att_stmt) = match attestation_format {
            AttestationFormat::Packed => {
                let mut signed = auth_data.clone();
                signed.extend_from_slice(&request.client_data_hash);
                let sig = self.keystore.sign(&credential, &signed)?;
                let statement = cbor::text_map(vec![
                    ("alg", Value::Integer(algorithm.cose_id().into())),
                    ("sig", Value::Bytes(sig)),
                ]);
                ("packed", statement)
            }
            AttestationFormat::None => ("none", Value::Map(vec![])),
        };
        Ok(MakeCredentialResponse {
            fmt: fmt.into(),
            auth_data,
            att_stmt,
            large_blob_key: credential
                .extras
                .large_blob_key
                .as_ref()
                .map(|key| Zeroizing::new(key.to_vec())),
        })
    }

    /// The extension state kept with the new credential, and the authenticator extension
    /// outputs (in authData).
    fn make_credential_extensions(
        &mut self,
        requested: &MakeCredentialExtensionsInput,
        rp_id: &str,
        discoverable: bool,
        uv: bool,
        hmac_secret_mc: Option<&HmacSecretSalts>,
    ) -> Result<(CredentialExtras, ExtensionOutputs), StatusCode> {
        let mut extras = CredentialExtras::default();
        let mut outputs = Vec::new();
        if let Some(level) = requested.cred_protect.and_then(CredProtect::from_level) {
            extras.cred_protect = level;
            outputs.push((
                extensions::CRED_PROTECT,
                Value::Integer(level.level().into()),
            ));
        }
        if requested.hmac_secret {
            let mut with_uv = Zeroizing::new([0u8; 32]);
            let mut without_uv = Zeroizing::new([0u8; 32]);
            self.rng.fill_bytes(with_uv.as_mut_slice());
            self.rng.fill_bytes(without_uv.as_mut_slice());
            outputs.push((extensions::HMAC_SECRET, Value::Bool(true)));
            if let Some(salts) = hmac_secret_mc {
                let cred_random = if uv { &with_uv } else { &without_uv };
                let rng = &mut self.rng;
                let output = salts.output(cred_random, |iv| rng.fill_bytes(iv));
                outputs.push((extensions::HMAC_SECRET_MC, Value::Bytes(output)));
            }
            extras.hmac_secret = Some(HmacSecret {
                with_uv,
                without_uv,
            });
        }
        if let Some(blob) = &requested.cred_blob {
            // A blob longer than maxCredBlobLength is not stored, and the output says so.
            let fits = blob.len() <= extensions::MAX_CRED_BLOB_LENGTH;
            if fits {
                extras.cred_blob = Some(blob.clone());
            }
            outputs.push((extensions::CRED_BLOB, Value::Bool(fits)));
        }
        // largeBlobKey only means something for a discoverable credential (§12.3).
        if requested.large_blob_key && discoverable {
            let mut key = Zeroizing::new([0u8; 32]);
            self.rng.fill_bytes(key.as_mut_slice());
            extras.large_blob_key = Some(key);
        }
        // thirdPartyPayment (CTAP 2.2 §12.9): the flag is kept with the credential, for
        // getAssertion and credential management to report; asked for, the registration says
        // it was set (as YubiKey 5.8 and pico-fido do: an RP checks it in the authenticator
        // data).
        if requested.third_party_payment {
            extras.third_party_payment = true;
            outputs.push((extensions::THIRD_PARTY_PAYMENT, Value::Bool(true)));
        }
        // minPinLength: only RPs the owner listed with setMinPINLength may learn it.
        if requested.min_pin_length {
            let state = self.state()?;
            if state.min_pin_length_rp_ids.iter().any(|id| id == rp_id) {
                outputs.push((
                    extensions::MIN_PIN_LENGTH,
                    Value::Integer(state.min_pin_length.into()),
                ));
            }
        }
        // pinComplexityPolicy (CTAP 2.3): whether the policy is on, under minPinLength's rule:
        // only to the RPs listed with setMinPINLength.
        if requested.pin_complexity_policy {
            let state = self.state()?;
            if state.min_pin_length_rp_ids.iter().any(|id| id == rp_id) {
                outputs.push((
                    extensions::PIN_COMPLEXITY_POLICY,
                    Value::Bool(state.pin_complexity_policy),
                ));
            }
        }
        Ok((extras, outputs))
    }
    /// Whether a discoverable credential of this RP and user handle is stored (a new one
    /// would replace it).
    fn replaces_a_stored_credential(
        &mut self,
        rp_id_hash: &[u8; 32],
        user_id: &[u8],
    ) -> Result<bool, StatusCode> {
        Ok(self
            .keystore
            .discoverable_credentials(rp_id_hash)?
            .iter()
            .any(|c| c.user.as_ref().is_some_and(|u| u.id == user_id)))
    }
}

#[cfg(test)]
mod tests;
