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
                .map(|key| key.to_vec()),
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
mod tests {
    use super::*;
    use crate::ctap2::authenticator_data::FLAG_AT;
    use crate::ctap2::test_support::*;
    use crate::env::PresenceOutcome;
    use crate::wire::{Command, PublicKeyCredentialDescriptor};

    const MC: u8 = Command::MakeCredential as u8;

    #[test]
    fn es256_packed_self_attestation_verifies_like_an_rp_checks_it() {
        let (mut a, _) = authenticator();
        let response = make_credential(&mut a, &mc_request("example.com", b"user", &[-7])).unwrap();

        assert_eq!(response.fmt, "packed");
        let reg = registration(&response);
        assert_eq!(&reg.auth_data[..32], &rp_id_hash("example.com"));
        assert_eq!(
            reg.auth_data[32],
            FLAG_UP | FLAG_AT,
            "UP and AT set, UV clear"
        );
        assert_eq!(&reg.auth_data[37..53], &a.config().aaguid);
        assert_eq!(field(&reg.cose_key, 3), Some(&int(-7)));
        let att_stmt = &response.att_stmt;
        assert_eq!(text_field(att_stmt, "alg"), Some(&int(-7)));
        assert!(
            text_field(att_stmt, "x5c").is_none(),
            "self attestation has no certificate"
        );
        let signed = [&reg.auth_data[..], &TEST_CLIENT_DATA_HASH].concat();
        assert!(verify(
            &reg.cose_key,
            &signed,
            as_bytes(text_field(att_stmt, "sig").unwrap())
        ));
        assert_eq!(a.presence_mut().asked[0].0, Operation::Register);
        assert_eq!(a.presence_mut().asked[0].1.as_deref(), Some("example.com"));
    }

    #[test]
    fn the_first_supported_algorithm_in_the_rp_list_is_used() {
        let (mut a, _) = authenticator();
        let r = make_credential(&mut a, &mc_request("x.org", b"u", &[-257, -8, -7])).unwrap();
        let reg = registration(&r);
        assert_eq!(field(&reg.cose_key, 3), Some(&int(-8)));
        let sig = as_bytes(text_field(&r.att_stmt, "sig").unwrap());
        assert!(verify(
            &reg.cose_key,
            &[&reg.auth_data[..], &TEST_CLIENT_DATA_HASH].concat(),
            sig
        ));

        let r = make_credential(&mut a, &mc_request("x.org", b"u", &[-257, -7, -8])).unwrap();
        assert_eq!(field(&registration(&r).cose_key, 3), Some(&int(-7)));
    }

    #[test]
    fn only_unsupported_algorithms_is_unsupported_algorithm() {
        let (mut a, _) = authenticator();
        assert_eq!(
            make_credential(&mut a, &mc_request("x.org", b"u", &[-257, -35])),
            Err(StatusCode::UnsupportedAlgorithm)
        );
        assert!(
            a.presence_mut().asked.is_empty(),
            "no gesture asked for a request that fails"
        );
    }

    #[test]
    fn each_missing_required_parameter_is_missing_parameter() {
        for key in 1..=4 {
            let (mut a, _) = authenticator();
            let mut p = make_credential_params("x.org", b"u", &[-7]);
            p.retain(|(k, _)| *k != key);
            assert_eq!(
                call(&mut a, MC, p),
                Err(StatusCode::MissingParameter),
                "without key {key}"
            );
        }
        let (mut a, _) = authenticator();
        let mut p = make_credential_params("x.org", b"u", &[-7]);
        p[1].1 = cbor::text_map(vec![("name", text("no id"))]);
        assert_eq!(
            call(&mut a, MC, p),
            Err(StatusCode::MissingParameter),
            "rp without id"
        );
    }

    #[test]
    fn wrong_cbor_types_are_cbor_unexpected_type() {
        let cases: Vec<(i64, Value)> = vec![
            (1, text("not bytes")),
            (2, text("example.com")),
            (3, bytes(b"user")),
            (4, int(-7)),
            (5, int(1)),
            (6, Value::Array(vec![])),
            (7, Value::Array(vec![])),
            (8, text("pin")),
            (9, text("1")),
        ];
        for (key, value) in cases {
            let (mut a, _) = authenticator();
            let mut p = make_credential_params("x.org", b"u", &[-7]);
            p.retain(|(k, _)| *k != key);
            p.push((key, value));
            assert_eq!(
                call(&mut a, MC, p),
                Err(StatusCode::CborUnexpectedType),
                "key {key}"
            );
        }
    }

    #[test]
    fn invalid_cbor_is_invalid_cbor() {
        let (mut a, _) = authenticator();
        assert_eq!(
            call_raw(&mut a, &[MC, 0xa1, 0x01]),
            Err(StatusCode::InvalidCbor)
        );
        assert_eq!(call_raw(&mut a, &[MC, 0xff]), Err(StatusCode::InvalidCbor));
        assert_eq!(
            call_raw(&mut a, &[MC, 0x80]),
            Err(StatusCode::CborUnexpectedType),
            "an array is not a parameter map"
        );
    }

    #[test]
    fn up_false_and_uv_true_without_built_in_uv_are_invalid_options_unknown_ones_are_ignored() {
        let (mut a, _) = authenticator();
        let mut r = mc_request("x.org", b"u", &[-7]);
        r.options.up = Some(false);
        assert_eq!(make_credential(&mut a, &r), Err(StatusCode::InvalidOption));

        let mut r = mc_request("x.org", b"u", &[-7]);
        r.options.uv = Some(true);
        assert_eq!(make_credential(&mut a, &r), Err(StatusCode::InvalidOption));

        // An option CTAP does not define: built by hand, the wire type has no room for it.

        let mut p = make_credential_params("x.org", b"u", &[-7]);
        p.push((
            7,
            options(&[("uv", false), ("up", true), ("someday", true)]),
        ));
        assert!(call(&mut a, MC, p).is_ok());
    }

    #[test]
    fn unknown_extensions_are_ignored() {
        let (mut a, _) = authenticator();
        let mut p = make_credential_params("x.org", b"u", &[-7]);
        p.push((6, cbor::text_map(vec![("future-ext", Value::Bool(true))])));
        let reg = parse_registration(&call(&mut a, MC, p).unwrap());
        assert_eq!(
            reg.auth_data[32] & authenticator_data::FLAG_ED,
            0,
            "no extension output"
        );
        assert!(reg.extensions.is_none());
    }

    #[test]
    fn enterprise_attestation_is_invalid_parameter() {
        let (mut a, _) = authenticator();
        let mut r = mc_request("x.org", b"u", &[-7]);
        r.enterprise_attestation = Some(1);
        assert_eq!(
            make_credential(&mut a, &r),
            Err(StatusCode::InvalidParameter)
        );
    }

    #[test]
    fn attestation_formats_preference_picks_the_first_supported() {
        let (mut a, _) = authenticator();
        let mut with = |list: &[&str]| {
            let mut r = mc_request("x.org", b"u", &[-7]);
            r.attestation_formats_preference = Some(list.iter().map(|f| f.to_string()).collect());
            make_credential(&mut a, &r).unwrap()
        };
        let r = with(&["none", "packed"]);
        assert_eq!(r.fmt, "none");
        assert_eq!(r.att_stmt, Value::Map(vec![]));
        assert_eq!(with(&["tpm", "packed", "none"]).fmt, "packed");
        assert_eq!(with(&["android-key"]).fmt, "packed", "default");
    }

    #[test]
    fn presence_refused_times_out_or_cancelled_creates_nothing() {
        for (outcome, status) in [
            (PresenceOutcome::Denied, StatusCode::OperationDenied),
            (PresenceOutcome::TimedOut, StatusCode::UserActionTimeout),
            (PresenceOutcome::Cancelled, StatusCode::KeepaliveCancel),
        ] {
            let (mut a, _) = authenticator();
            a.presence_mut().default = outcome;
            let mut r = mc_request("x.org", b"u", &[-7]);
            r.options.rk = Some(true);
            assert_eq!(make_credential(&mut a, &r), Err(status));
            assert_eq!(a.keystore().discoverable_count(), 0);
        }
    }

    #[test]
    fn rk_stores_a_discoverable_credential_replacing_the_same_user() {
        let (mut a, _) = authenticator();
        let first = register(&mut a, "x.org", b"alice", -7, true);
        register(&mut a, "x.org", b"bob", -7, true);
        let replacement = register(&mut a, "x.org", b"alice", -7, true);

        let stored = a
            .keystore_mut()
            .discoverable_credentials(&rp_id_hash("x.org"))
            .unwrap();
        assert_eq!(stored.len(), 2);
        assert!(stored.iter().any(|c| c.id == replacement.credential_id));
        assert!(!stored.iter().any(|c| c.id == first.credential_id));
        let alice = stored
            .iter()
            .find(|c| c.id == replacement.credential_id)
            .unwrap();
        assert_eq!(
            alice.user.as_ref().unwrap().name.as_deref(),
            Some("alice@example.com")
        );
        assert_eq!(alice.rp_id.as_deref(), Some("x.org"));
    }

    #[test]
    fn without_rk_nothing_is_stored_as_discoverable() {
        let (mut a, _) = authenticator();
        register(&mut a, "x.org", b"alice", -7, false);
        assert_eq!(a.keystore().discoverable_count(), 0);
    }

    #[test]
    fn a_full_keystore_is_key_store_full() {
        let (mut a, _) = authenticator();
        a.keystore_mut().capacity = 1;
        register(&mut a, "x.org", b"alice", -7, true);
        let mut r = mc_request("x.org", b"bob", &[-7]);
        r.options.rk = Some(true);
        assert_eq!(make_credential(&mut a, &r), Err(StatusCode::KeyStoreFull));
        register(&mut a, "x.org", b"carol", -7, false);
    }

    /// §6.1.2 step 17: a discoverable credential of the same RP and user handle replaces the
    /// stored one, so a full store takes it; KEY_STORE_FULL is for one that needs a new slot.
    #[test]
    fn a_full_keystore_still_takes_a_replacement() {
        let (mut a, _) = authenticator();
        a.keystore_mut().capacity = 1;
        let old = register(&mut a, "x.org", b"alice", -7, true);
        let new = register(&mut a, "x.org", b"alice", -7, true);
        let stored = a.keystore_mut().all_discoverable_credentials().unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].id, new.credential_id);
        assert_ne!(stored[0].id, old.credential_id);
        let mut r = mc_request("y.org", b"alice", &[-7]);
        r.options.rk = Some(true);
        assert_eq!(
            make_credential(&mut a, &r),
            Err(StatusCode::KeyStoreFull),
            "same user, other RP"
        );
    }

    #[test]
    fn exclude_list_hit_asks_presence_then_is_credential_excluded_whatever_the_answer() {
        for (outcome, status) in [
            (PresenceOutcome::Approved, StatusCode::CredentialExcluded),
            (PresenceOutcome::Denied, StatusCode::CredentialExcluded),
            (PresenceOutcome::TimedOut, StatusCode::CredentialExcluded),
            (PresenceOutcome::Cancelled, StatusCode::KeepaliveCancel),
        ] {
            let (mut a, _) = authenticator();
            let existing = register(&mut a, "x.org", b"alice", -7, false);
            a.presence_mut().asked.clear();
            a.presence_mut().default = outcome;
            let mut r = mc_request("x.org", b"alice", &[-7]);
            r.exclude_list = vec![
                PublicKeyCredentialDescriptor::public_key(b"unknown".to_vec()),
                PublicKeyCredentialDescriptor::public_key(existing.credential_id),
            ];
            assert_eq!(make_credential(&mut a, &r), Err(status));
            assert_eq!(a.presence_mut().asked.len(), 1);
            assert_eq!(a.presence_mut().asked[0].0, Operation::ConfirmExcluded);
        }
    }

    #[test]
    fn exclude_list_of_another_rp_does_not_exclude() {
        let (mut a, _) = authenticator();
        let other = register(&mut a, "other.org", b"alice", -7, false);
        let mut r = mc_request("x.org", b"alice", &[-7]);
        r.exclude_list = vec![PublicKeyCredentialDescriptor::public_key(
            other.credential_id,
        )];
        assert!(make_credential(&mut a, &r).is_ok());
    }

    #[test]
    fn empty_pin_uv_auth_param_asks_for_a_touch_then_pin_not_set() {
        let (mut a, _) = authenticator();
        let mut r = mc_request("x.org", b"u", &[-7]);
        r.pin_uv_auth_param = Some(Vec::new());
        r.pin_uv_auth_protocol = Some(1);
        assert_eq!(make_credential(&mut a, &r), Err(StatusCode::PinNotSet));
        assert_eq!(a.presence_mut().asked[0].0, Operation::Selection);

        a.presence_mut().default = PresenceOutcome::Denied;
        r.pin_uv_auth_protocol = None;
        assert_eq!(
            make_credential(&mut a, &r),
            Err(StatusCode::OperationDenied)
        );
    }

    #[test]
    fn pin_uv_auth_param_needs_a_known_protocol_and_is_pin_not_set_without_a_pin() {
        let (mut a, _) = authenticator();
        let with = |protocol: Option<i128>| {
            let mut r = mc_request("x.org", b"u", &[-7]);
            r.pin_uv_auth_param = Some(vec![1; 16]);
            r.pin_uv_auth_protocol = protocol;
            r
        };
        assert_eq!(
            make_credential(&mut a, &with(None)),
            Err(StatusCode::MissingParameter)
        );
        assert_eq!(
            make_credential(&mut a, &with(Some(3))),
            Err(StatusCode::InvalidParameter)
        );
        assert_eq!(
            make_credential(&mut a, &with(Some(2))),
            Err(StatusCode::PinNotSet)
        );
        assert!(a.presence_mut().asked.is_empty());
    }

    #[test]
    fn user_id_over_64_bytes_is_rejected_before_any_gesture() {
        let (mut a, _) = authenticator();
        assert_eq!(
            make_credential(&mut a, &mc_request("x.org", &[1; 65], &[-7])),
            Err(StatusCode::InvalidLength)
        );
        assert!(a.presence_mut().asked.is_empty());
    }
}
