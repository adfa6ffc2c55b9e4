//! Extensions through makeCredential and getAssertion, checked the way a platform and an RP
//! check them.

use crate::status::StatusCode;

use ciborium::Value;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::cbor;
use crate::ctap2::pin::protocol::SharedSecret;
use crate::ctap2::test_support::*;
use crate::env::Keystore as _;
use crate::wire::{
    Command, GetAssertionExtensionsInput, GetAssertionRequest, GetAssertionResponse,
    HmacSecretInput, MakeCredentialExtensionsInput, MakeCredentialResponse,
};

const MC: u8 = Command::MakeCredential as u8;
const P2: PinProtocol = PinProtocol::Two;

fn register_with(
    a: &mut TestAuthenticator,
    rp: &str,
    user: &[u8],
    rk: bool,
    extensions: MakeCredentialExtensionsInput,
) -> (Registration, MakeCredentialResponse) {
    let mut request = mc_request(rp, user, &[-7]);
    request.options.rk = rk.then_some(true);
    request.extensions = extensions;
    let r = make_credential(a, &request).expect("makeCredential");
    (registration(&r), r)
}

fn mc_ext() -> MakeCredentialExtensionsInput {
    MakeCredentialExtensionsInput::default()
}

fn ga_ext() -> GetAssertionExtensionsInput {
    GetAssertionExtensionsInput::default()
}

/// makeCredential's hmac-secret: true.
fn with_hmac_secret() -> MakeCredentialExtensionsInput {
    MakeCredentialExtensionsInput {
        hmac_secret: true,
        ..mc_ext()
    }
}

/// getAssertion's hmac-secret with `input`.
fn hmac_secret_ext(input: HmacSecretInput) -> GetAssertionExtensionsInput {
    GetAssertionExtensionsInput {
        hmac_secret: Some(input),
        ..ga_ext()
    }
}

/// A getAssertion request naming `allow` if given, with a pinUvAuthParam of `token`.
fn ga_request_with(
    rp: &str,
    allow: Option<&[u8]>,
    extensions: Option<GetAssertionExtensionsInput>,
    token: Option<&[u8]>,
) -> GetAssertionRequest {
    let mut request = ga_request(rp, allow.as_slice());
    request.extensions = extensions.unwrap_or_default();
    if let Some(token) = token {
        request.pin_uv_auth_param = Some(P2.authenticate(token, &TEST_CLIENT_DATA_HASH));
        request.pin_uv_auth_protocol = Some(2);
    }
    request
}

fn ga(
    a: &mut TestAuthenticator,
    rp: &str,
    allow: Option<&[u8]>,
    extensions: Option<GetAssertionExtensionsInput>,
    token: Option<&[u8]>,
) -> Result<GetAssertionResponse, StatusCode> {
    get_assertion(a, &ga_request_with(rp, allow, extensions, token))
}

/// The authenticator extension outputs of an assertion.
fn outputs(response: &GetAssertionResponse) -> Option<Value> {
    let auth_data = &response.auth_data;
    (auth_data.len() > 37).then(|| cbor::decode(&auth_data[37..]).unwrap())
}

/// The hmac-secret input a platform builds for `salts`, with the secret to read the output.
fn hmac_input(
    a: &mut TestAuthenticator,
    protocol: PinProtocol,
    salts: &[u8],
) -> (HmacSecretInput, SharedSecret) {
    let (key, shared) = key_agreement(a, protocol);
    let salt_enc = shared.encrypt(salts, iv);
    let salt_auth = shared.authenticate(&salt_enc);
    let input = HmacSecretInput {
        key_agreement: key,
        salt_enc,
        salt_auth,
        pin_uv_auth_protocol: protocol.number(),
    };
    (input, shared)
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn hmac_secret(
    a: &mut TestAuthenticator,
    id: &[u8],
    protocol: PinProtocol,
    salts: &[u8],
    token: Option<&[u8]>,
) -> Vec<u8> {
    let (input, shared) = hmac_input(a, protocol, salts);
    let r = ga(a, "x.org", Some(id), Some(hmac_secret_ext(input)), token).unwrap();
    let out = outputs(&r).expect("extension outputs");
    shared
        .decrypt(as_bytes(text_field(&out, "hmac-secret").unwrap()))
        .unwrap()
        .to_vec()
}

#[test]
fn hmac_secret_derives_stable_secrets_from_the_credentials_cred_random() {
    for protocol in [PinProtocol::One, PinProtocol::Two] {
        let (mut a, _) = authenticator();
        let (reg, _) = register_with(&mut a, "x.org", b"u", false, with_hmac_secret());
        assert_eq!(
            text_field(reg.extensions.as_ref().unwrap(), "hmac-secret"),
            Some(&Value::Bool(true))
        );
        let salt1 = [0x11; 32];
        let salt2 = [0x22; 32];
        let one = hmac_secret(&mut a, &reg.credential_id, protocol, &salt1, None);
        let again = hmac_secret(&mut a, &reg.credential_id, protocol, &salt1, None);
        let two = hmac_secret(
            &mut a,
            &reg.credential_id,
            protocol,
            &[salt1, salt2].concat(),
            None,
        );
        assert_eq!(one.len(), 32);
        assert_eq!(one, again, "same salt, same secret");
        assert_eq!(two.len(), 64);
        assert_eq!(&two[..32], &one[..]);
        assert_ne!(&two[32..], &one[..]);
        let stored = a
            .keystore_mut()
            .find_credential(&rp_id_hash("x.org"), &reg.credential_id)
            .unwrap()
            .unwrap();
        let secret = stored.extras.hmac_secret.unwrap();
        assert_eq!(
            one,
            hmac(secret.without_uv.as_slice(), &salt1),
            "HMAC(CredRandomWithoutUV, salt)"
        );
    }
}

#[test]
fn hmac_secret_with_uv_uses_the_other_cred_random() {
    let (mut a, _) = authenticator();
    set_pin(&mut a, "1234");
    let (reg, _) = register_with(&mut a, "x.org", b"u", false, with_hmac_secret());
    let salt = [0x33; 32];
    let without = hmac_secret(&mut a, &reg.credential_id, P2, &salt, None);
    let token = pin_token(&mut a, P2, "1234", PERM_GA, Some("x.org")).unwrap();
    let with = hmac_secret(&mut a, &reg.credential_id, P2, &salt, Some(&token));
    assert_ne!(with, without, "UV and non-UV secrets differ");
    let token = pin_token(&mut a, P2, "1234", PERM_GA, Some("x.org")).unwrap();
    assert_eq!(
        with,
        hmac_secret(&mut a, &reg.credential_id, P2, &salt, Some(&token))
    );
}

#[test]
fn hmac_secret_input_errors() {
    let (mut a, _) = authenticator();
    let (reg, _) = register_with(&mut a, "x.org", b"u", false, with_hmac_secret());
    let (key, shared) = key_agreement(&mut a, P2);
    let salt_enc = shared.encrypt(&[1; 32], iv);
    let bad_auth = HmacSecretInput {
        key_agreement: key.clone(),
        salt_enc,
        salt_auth: vec![0; 32],
        pin_uv_auth_protocol: 2,
    };
    assert_eq!(
        ga(
            &mut a,
            "x.org",
            Some(&reg.credential_id),
            Some(hmac_secret_ext(bad_auth)),
            None
        ),
        Err(StatusCode::PinAuthInvalid)
    );
    let short = shared.encrypt(&[1; 16], iv);
    let input = HmacSecretInput {
        key_agreement: key,
        salt_auth: shared.authenticate(&short),
        salt_enc: short,
        pin_uv_auth_protocol: 2,
    };
    assert_eq!(
        ga(
            &mut a,
            "x.org",
            Some(&reg.credential_id),
            Some(hmac_secret_ext(input)),
            None
        ),
        Err(StatusCode::InvalidParameter),
        "one 16-byte salt"
    );
    assert!(
        a.presence_mut()
            .asked
            .iter()
            .all(|(op, ..)| *op != crate::env::Operation::Authenticate),
        "no gesture for a bad input"
    );
}

#[test]
fn a_credential_without_hmac_secret_gives_no_output() {
    let (mut a, _) = authenticator();
    let reg = register(&mut a, "x.org", b"u", -7, false);
    let (input, _) = hmac_input(&mut a, P2, &[1; 32]);
    let r = ga(
        &mut a,
        "x.org",
        Some(&reg.credential_id),
        Some(hmac_secret_ext(input)),
        None,
    )
    .unwrap();
    assert!(outputs(&r).is_none());
}

#[test]
fn hmac_secret_mc_returns_the_first_secret_at_registration() {
    let (mut a, _) = authenticator();
    let salt = [0x44; 32];
    let (input, shared) = hmac_input(&mut a, P2, &salt);
    let (reg, _) = register_with(
        &mut a,
        "x.org",
        b"u",
        false,
        MakeCredentialExtensionsInput {
            hmac_secret: true,
            hmac_secret_mc: Some(input),
            ..mc_ext()
        },
    );
    let out = reg.extensions.unwrap();
    let at_registration = shared
        .decrypt(as_bytes(text_field(&out, "hmac-secret-mc").unwrap()))
        .unwrap()
        .to_vec();
    assert_eq!(
        at_registration,
        hmac_secret(&mut a, &reg.credential_id, P2, &salt, None)
    );
}

#[test]
fn hmac_secret_applies_per_credential_through_get_next_assertion() {
    let (mut a, _) = authenticator();
    let on = with_hmac_secret;
    register_with(&mut a, "x.org", b"alice", true, on());
    register_with(&mut a, "x.org", b"bob", true, on());
    let (input, shared) = hmac_input(&mut a, P2, &[5; 32]);
    let first = ga(&mut a, "x.org", None, Some(hmac_secret_ext(input)), None).unwrap();
    let second = send(&mut a, &crate::wire::GetNextAssertionRequest).unwrap();
    let secret = |r: &GetAssertionResponse| {
        shared
            .decrypt(as_bytes(
                text_field(&outputs(r).unwrap(), "hmac-secret").unwrap(),
            ))
            .unwrap()
            .to_vec()
    };
    assert_ne!(secret(&first), secret(&second));
}

#[test]
fn cred_protect_is_enforced_on_discovery_allow_list_and_exclude_list() {
    let (mut a, _) = authenticator();
    set_pin(&mut a, "1234");
    let protect = |level: u8| MakeCredentialExtensionsInput {
        cred_protect: Some(level),
        ..mc_ext()
    };
    let mc_token =
        |a: &mut TestAuthenticator, rp: &str| pin_token(a, P2, "1234", PERM_MC, Some(rp)).unwrap();
    let mut regs = Vec::new();
    for (rp, level) in [("one.org", 1), ("two.org", 2), ("three.org", 3)] {
        let token = mc_token(&mut a, rp);
        let mut request = mc_request(rp, b"u", &[-7]);
        request.options.rk = Some(true);
        request.extensions = protect(level);
        request.pin_uv_auth_param = Some(P2.authenticate(&token, &TEST_CLIENT_DATA_HASH));
        request.pin_uv_auth_protocol = Some(2);
        let reg = registration(&make_credential(&mut a, &request).unwrap());
        assert_eq!(
            text_field(reg.extensions.as_ref().unwrap(), "credProtect"),
            Some(&int(level.into()))
        );
        regs.push(reg);
    }
    // Without UV: level 1 always, level 2 only when listed, level 3 never.
    assert!(ga(&mut a, "one.org", None, None, None).is_ok());
    assert_eq!(
        ga(&mut a, "two.org", None, None, None),
        Err(StatusCode::NoCredentials)
    );
    assert!(ga(&mut a, "two.org", Some(&regs[1].credential_id), None, None).is_ok());
    assert_eq!(
        ga(&mut a, "three.org", None, None, None),
        Err(StatusCode::NoCredentials)
    );
    assert_eq!(
        ga(
            &mut a,
            "three.org",
            Some(&regs[2].credential_id),
            None,
            None
        ),
        Err(StatusCode::NoCredentials)
    );
    // With UV, all of them.
    for (i, rp) in ["two.org", "three.org"].into_iter().enumerate() {
        let token = pin_token(&mut a, P2, "1234", PERM_GA, Some(rp)).unwrap();
        assert!(ga(&mut a, rp, None, None, Some(&token)).is_ok(), "{rp}");
        let token = pin_token(&mut a, P2, "1234", PERM_GA, Some(rp)).unwrap();
        assert!(ga(
            &mut a,
            rp,
            Some(&regs[i + 1].credential_id),
            None,
            Some(&token)
        )
        .is_ok());
    }
    // excludeList: a level-3 credential is not revealed without UV.
    let mut request = mc_request("three.org", b"v", &[-7]);
    request.exclude_list = vec![crate::wire::PublicKeyCredentialDescriptor::public_key(
        regs[2].credential_id.clone(),
    )];
    assert!(
        make_credential(&mut a, &request).is_ok(),
        "not excluded without UV"
    );
    let token = mc_token(&mut a, "three.org");
    request.pin_uv_auth_param = Some(P2.authenticate(&token, &TEST_CLIENT_DATA_HASH));
    request.pin_uv_auth_protocol = Some(2);
    assert_eq!(
        make_credential(&mut a, &request),
        Err(StatusCode::CredentialExcluded),
        "excluded with UV"
    );
}

#[test]
fn cred_blob_is_kept_up_to_32_bytes_and_returned() {
    let (mut a, _) = authenticator();
    let (reg, _) = register_with(
        &mut a,
        "x.org",
        b"u",
        true,
        MakeCredentialExtensionsInput {
            cred_blob: Some(vec![7; 32]),
            ..mc_ext()
        },
    );
    assert_eq!(
        text_field(reg.extensions.as_ref().unwrap(), "credBlob"),
        Some(&Value::Bool(true))
    );
    let r = ga(
        &mut a,
        "x.org",
        Some(&reg.credential_id),
        Some(GetAssertionExtensionsInput {
            cred_blob: true,
            ..ga_ext()
        }),
        None,
    )
    .unwrap();
    assert_eq!(
        text_field(&outputs(&r).unwrap(), "credBlob"),
        Some(&bytes(&[7; 32]))
    );

    let (big, _) = register_with(
        &mut a,
        "x.org",
        b"v",
        false,
        MakeCredentialExtensionsInput {
            cred_blob: Some(vec![7; 33]),
            ..mc_ext()
        },
    );
    assert_eq!(
        text_field(big.extensions.as_ref().unwrap(), "credBlob"),
        Some(&Value::Bool(false))
    );
    let r = ga(
        &mut a,
        "x.org",
        Some(&big.credential_id),
        Some(GetAssertionExtensionsInput {
            cred_blob: true,
            ..ga_ext()
        }),
        None,
    )
    .unwrap();
    assert_eq!(
        text_field(&outputs(&r).unwrap(), "credBlob"),
        Some(&bytes(&[]))
    );
}

#[test]
fn large_blob_key_comes_with_discoverable_credentials() {
    let (mut a, _) = authenticator();
    let mc_on = || MakeCredentialExtensionsInput {
        large_blob_key: true,
        ..mc_ext()
    };
    let ga_on = GetAssertionExtensionsInput {
        large_blob_key: true,
        ..ga_ext()
    };
    let (reg, r) = register_with(&mut a, "x.org", b"u", true, mc_on());
    let key = r.large_blob_key.expect("largeBlobKey in the response");
    assert_eq!(key.len(), 32);
    assert!(
        reg.extensions.is_none(),
        "not an authenticator extension output"
    );
    let assertion = ga(&mut a, "x.org", None, Some(ga_on), None).unwrap();
    assert_eq!(assertion.large_blob_key, Some(key));
    let plain = ga(&mut a, "x.org", None, None, None).unwrap();
    assert!(plain.large_blob_key.is_none(), "only when asked");

    let (_, r) = register_with(&mut a, "y.org", b"u", false, mc_on());
    assert!(
        r.large_blob_key.is_none(),
        "a non-discoverable credential has none"
    );
}

#[test]
fn the_platform_side_of_the_key_agreement_matches() {
    // Guards the test helper itself: the platform's secret equals the authenticator's.
    let (mut a, _) = authenticator();
    let (key, shared) = key_agreement(&mut a, P2);
    let ours = a
        .shared_secret(
            P2,
            &crate::wire::KeyAgreementPublicKey::from_cbor(key).unwrap(),
        )
        .unwrap();
    let ct = shared.encrypt(&[9; 32], iv);
    assert_eq!(ours.decrypt(&ct).unwrap().as_slice(), &[9; 32]);
}

/// A request without user presence ("up": false): hmac-secret is UNSUPPORTED_OPTION before
/// anything is computed (CTAP 2.1 §12.5, hmac-secret's getAssertion processing: "If "up" is
/// set to false, authenticator returns CTAP2_ERR_UNSUPPORTED_OPTION").
#[test]
fn hmac_secret_without_presence_is_unsupported_option_before_any_computation() {
    let (mut a, _) = authenticator();
    let (reg, _) = register_with(&mut a, "x.org", b"u", false, with_hmac_secret());
    let (good, _) = hmac_input(&mut a, P2, &[1; 32]);
    // An input whose MAC is wrong: computing anything would answer PIN_AUTH_INVALID.
    let bad = HmacSecretInput {
        key_agreement: key_agreement(&mut a, P2).0,
        salt_enc: vec![0; 48],
        salt_auth: vec![0; 32],
        pin_uv_auth_protocol: 2,
    };
    for (input, with_presence) in [(good, true), (bad, false)] {
        a.presence_mut().asked.clear();
        let mut request = ga_request_with(
            "x.org",
            Some(&reg.credential_id),
            Some(hmac_secret_ext(input)),
            None,
        );
        request.options.up = Some(false);
        assert_eq!(
            get_assertion(&mut a, &request),
            Err(StatusCode::UnsupportedOption)
        );
        assert!(a.presence_mut().asked.is_empty());
        request.options.up = None;
        let answer = get_assertion(&mut a, &request);
        match with_presence {
            true => assert!(answer.is_ok(), "with presence it works"),
            false => assert_eq!(
                answer,
                Err(StatusCode::PinAuthInvalid),
                "with presence the bad MAC is seen"
            ),
        }
    }
}

/// credBlob (§12.2) and largeBlobKey (§12.3) are the RP's data for this person: a silent
/// assertion leaves them out (see get_assertion's module documentation).
#[test]
fn a_silent_assertion_carries_no_cred_blob_and_no_large_blob_key() {
    let (mut a, _) = authenticator();
    let (reg, _) = register_with(
        &mut a,
        "x.org",
        b"u",
        true,
        MakeCredentialExtensionsInput {
            cred_blob: Some(vec![7; 32]),
            large_blob_key: true,
            ..mc_ext()
        },
    );
    let request = |up: Option<bool>| {
        let extensions = GetAssertionExtensionsInput {
            cred_blob: true,
            large_blob_key: true,
            ..ga_ext()
        };
        let mut request =
            ga_request_with("x.org", Some(&reg.credential_id), Some(extensions), None);
        request.options.up = up;
        request
    };
    let silent = get_assertion(&mut a, &request(Some(false))).unwrap();
    assert_eq!(
        silent.auth_data[32], 0,
        "no UP, no ED: no extension output at all"
    );
    assert!(outputs(&silent).is_none());
    assert!(silent.large_blob_key.is_none(), "no largeBlobKey");

    let touched = get_assertion(&mut a, &request(None)).unwrap();
    assert_eq!(
        text_field(&outputs(&touched).unwrap(), "credBlob"),
        Some(&bytes(&[7; 32]))
    );
    assert!(touched.large_blob_key.is_some());
}

/// CTAP 2.2 §12.9 thirdPartyPayment: makeCredential stores the flag with the credential and
/// says so in its extension outputs; getAssertion asked for it reports it, true or false, in
/// the authenticator extension outputs; not asked, says nothing. The flag travels inside a
/// non-discoverable credential's ID too.
#[test]
fn third_party_payment_is_kept_with_the_credential_and_reported_when_asked() {
    let (mut a, _) = authenticator();
    let tpp = || MakeCredentialExtensionsInput {
        third_party_payment: true,
        ..mc_ext()
    };
    let asks = || GetAssertionExtensionsInput {
        third_party_payment: true,
        ..ga_ext()
    };
    for rk in [true, false] {
        let rp = if rk { "bank.example" } else { "shop.example" };
        let (paying, r) = register_with(&mut a, rp, b"payer", rk, tpp());
        let registered = registration(&r);
        assert_eq!(
            registered
                .extensions
                .as_ref()
                .and_then(|e| text_field(e, "thirdPartyPayment").cloned()),
            Some(Value::Bool(true)),
            "the registration says the flag is set"
        );
        let (plain, r) = register_with(&mut a, rp, b"other", rk, mc_ext());
        assert!(registration(&r).extensions.is_none());

        let asked = ga(&mut a, rp, Some(&paying.credential_id), Some(asks()), None).unwrap();
        assert_eq!(
            text_field(&outputs(&asked).unwrap(), "thirdPartyPayment"),
            Some(&Value::Bool(true))
        );
        let plain_asked = ga(&mut a, rp, Some(&plain.credential_id), Some(asks()), None).unwrap();
        assert_eq!(
            text_field(&outputs(&plain_asked).unwrap(), "thirdPartyPayment"),
            Some(&Value::Bool(false))
        );
        let not_asked = ga(&mut a, rp, Some(&paying.credential_id), None, None).unwrap();
        assert!(outputs(&not_asked).is_none());
    }
    assert_eq!(
        call(
            &mut a,
            MC,
            [
                make_credential_params("x.org", b"u", &[-7]),
                vec![(6, cbor::text_map(vec![("thirdPartyPayment", int(1))]))]
            ]
            .concat()
        ),
        Err(StatusCode::CborUnexpectedType),
        "not a boolean: CTAP2_ERR_CBOR_UNEXPECTED_TYPE"
    );
}
