//! authenticatorCredentialManagement: every subcommand, the token rules, the error paths.

use crate::status::StatusCode;

use ciborium::Value;

use crate::cbor;
use crate::ctap2::test_support::*;
use crate::env::Keystore as _;
use crate::wire::Command;
use crate::wire::{
    CredentialManagementParams, CredentialManagementRequest, CredentialManagementSubcommand as Sub,
    MakeCredentialExtensionsInput, PublicKeyCredentialDescriptor, PublicKeyCredentialUserEntity,
};

/// A user entity as a platform sends it.
fn user_entity(
    id: &[u8],
    name: Option<&str>,
    display_name: Option<&str>,
) -> PublicKeyCredentialUserEntity {
    PublicKeyCredentialUserEntity {
        id: id.to_vec(),
        name: name.map(str::to_owned),
        display_name: display_name.map(str::to_owned),
    }
}

const CM: u8 = Command::CredentialManagement as u8;
const P2: PinProtocol = PinProtocol::Two;

/// A key with PIN "1234" and a cm token (optionally bound to an RP).
fn managed(rp: Option<&str>) -> (TestAuthenticator, Vec<u8>) {
    let (mut a, _) = authenticator();
    set_pin(&mut a, "1234");
    let token = pin_token(&mut a, P2, "1234", PERM_CM, rp).unwrap();
    (a, token)
}

/// Registers with a token, as platforms do once a PIN is set.
fn register_rk(
    a: &mut TestAuthenticator,
    rp: &str,
    user_id: &[u8],
    extensions: Option<MakeCredentialExtensionsInput>,
) -> Registration {
    let token = pin_token(a, P2, "1234", PERM_MC, Some(rp)).unwrap();
    let mut request = mc_request(rp, user_id, &[-7]);
    request.options.rk = Some(true);
    request.pin_uv_auth_param = Some(P2.authenticate(&token, &TEST_CLIENT_DATA_HASH));
    request.pin_uv_auth_protocol = Some(P2.number().into());
    request.extensions = extensions.unwrap_or_default();
    registration(&make_credential(a, &request).expect("makeCredential"))
}

fn cm(
    a: &mut TestAuthenticator,
    token: &[u8],
    sub: u8,
    params: Option<Value>,
) -> Result<Value, StatusCode> {
    send_value(a, &cm_request(token, sub, params))
}

fn rp_hash_params(rp: &str) -> Value {
    CredentialManagementParams {
        rp_id_hash: Some(rp_id_hash(rp).to_vec()),
        ..CredentialManagementParams::default()
    }
    .to_cbor()
}

/// subCommandParams naming a credential, and the new user entity of an update.
fn credential_params(credential_id: &[u8], user: Option<PublicKeyCredentialUserEntity>) -> Value {
    CredentialManagementParams {
        credential_id: Some(PublicKeyCredentialDescriptor::public_key(
            credential_id.to_vec(),
        )),
        user,
        ..CredentialManagementParams::default()
    }
    .to_cbor()
}

/// A GetNext subcommand: no parameters, no token.
fn next(a: &mut TestAuthenticator, sub: Sub) -> Result<Value, StatusCode> {
    send_value(a, &CredentialManagementRequest::new(sub))
}

#[test]
fn metadata_counts_discoverable_credentials() {
    let (mut a, _) = managed(None);
    register_rk(&mut a, "a.org", b"u1", None);
    register_rk(&mut a, "b.org", b"u2", None);
    let token = pin_token(&mut a, P2, "1234", PERM_CM, None).unwrap();
    let r = cm(&mut a, &token, 1, None).unwrap();
    assert_eq!(field(&r, 1), Some(&int(2)));
    assert_eq!(field(&r, 2), Some(&int(98)));
}

#[test]
fn rps_are_enumerated_one_by_one() {
    let (mut a, _) = managed(None);
    register_rk(&mut a, "b.org", b"u1", None);
    register_rk(&mut a, "a.org", b"u2", None);
    register_rk(&mut a, "a.org", b"u3", None);
    let token = pin_token(&mut a, P2, "1234", PERM_CM, None).unwrap();
    let first = cm(&mut a, &token, 2, None).unwrap();
    assert_eq!(field(&first, 5), Some(&int(2)), "totalRPs");
    let second = next(&mut a, Sub::EnumerateRpsGetNextRp).unwrap();
    assert!(field(&second, 5).is_none());
    let mut seen = vec![];
    for r in [&first, &second] {
        let id = text_field(field(r, 3).unwrap(), "id").unwrap().clone();
        let Value::Text(id) = id else { panic!() };
        assert_eq!(as_bytes(field(r, 4).unwrap()), rp_id_hash(&id));
        seen.push(id);
    }
    seen.sort();
    assert_eq!(seen, vec!["a.org", "b.org"]);
    assert_eq!(
        next(&mut a, Sub::EnumerateRpsGetNextRp),
        Err(StatusCode::NotAllowed),
        "no more RPs"
    );
}

#[test]
fn credentials_of_an_rp_are_enumerated_with_their_details() {
    let (mut a, _) = managed(None);
    let ext = MakeCredentialExtensionsInput {
        cred_protect: Some(2),
        large_blob_key: true,
        third_party_payment: true,
        ..MakeCredentialExtensionsInput::default()
    };
    let first = register_rk(&mut a, "a.org", b"u1", Some(ext));
    let second = register_rk(&mut a, "a.org", b"u2", None);
    register_rk(&mut a, "b.org", b"u3", None);
    let token = pin_token(&mut a, P2, "1234", PERM_CM, None).unwrap();
    let r1 = cm(&mut a, &token, 4, Some(rp_hash_params("a.org"))).unwrap();
    assert_eq!(field(&r1, 9), Some(&int(2)), "totalCredentials");
    let r2 = next(&mut a, Sub::EnumerateCredentialsGetNextCredential).unwrap();
    assert_eq!(
        next(&mut a, Sub::EnumerateCredentialsGetNextCredential),
        Err(StatusCode::NotAllowed)
    );

    let by_id = |r: &Value| as_bytes(text_field(field(r, 7).unwrap(), "id").unwrap()).to_vec();
    let (r_first, r_second) = if by_id(&r1) == first.credential_id {
        (&r1, &r2)
    } else {
        (&r2, &r1)
    };
    assert_eq!(by_id(r_second), second.credential_id);
    assert_eq!(
        field(r_first, 8),
        Some(&first.cose_key),
        "publicKey as registered"
    );
    assert_eq!(field(r_first, 0x0A), Some(&int(2)), "credProtect");
    assert_eq!(
        as_bytes(field(r_first, 0x0B).unwrap()).len(),
        32,
        "largeBlobKey"
    );
    assert_eq!(field(r_second, 0x0A), Some(&int(1)));
    assert!(field(r_second, 0x0B).is_none());
    // CTAP 2.2 §6.8.3 enumerateCredentials response 0x0C thirdPartyPayment: the flag the
    // credential was made with.
    assert_eq!(field(r_first, 0x0C), Some(&Value::Bool(true)));
    assert_eq!(field(r_second, 0x0C), Some(&Value::Bool(false)));
    let user = field(r_first, 6).unwrap();
    assert_eq!(text_field(user, "id"), Some(&bytes(b"u1")));
    assert_eq!(text_field(user, "name"), Some(&text("alice@example.com")));
    assert_eq!(text_field(user, "displayName"), Some(&text("Display")));
}

#[test]
fn enumeration_ends_with_any_other_command() {
    let (mut a, _) = managed(None);
    register_rk(&mut a, "a.org", b"u1", None);
    register_rk(&mut a, "b.org", b"u2", None);
    let token = pin_token(&mut a, P2, "1234", PERM_CM, None).unwrap();
    cm(&mut a, &token, 2, None).unwrap();
    call(&mut a, Command::GetInfo.as_byte(), vec![]).unwrap();
    assert_eq!(
        next(&mut a, Sub::EnumerateRpsGetNextRp),
        Err(StatusCode::NotAllowed)
    );
    assert_eq!(
        next(&mut a, Sub::EnumerateCredentialsGetNextCredential),
        Err(StatusCode::NotAllowed),
        "nothing was begun"
    );
}

#[test]
fn delete_credential_removes_it_for_good() {
    let (mut a, _) = managed(None);
    let reg = register_rk(&mut a, "a.org", b"u1", None);
    let token = pin_token(&mut a, P2, "1234", PERM_CM, None).unwrap();
    let params = credential_params(&reg.credential_id, None);
    assert_eq!(cm(&mut a, &token, 6, Some(params.clone())), Ok(Value::Null));
    assert_eq!(a.keystore().discoverable_count(), 0);
    assert_eq!(
        cm(&mut a, &token, 6, Some(params)),
        Err(StatusCode::NoCredentials),
        "already gone"
    );
    assert_eq!(
        cm(&mut a, &token, 2, None),
        Err(StatusCode::NoCredentials),
        "no RPs left"
    );
}

#[test]
fn update_user_information_changes_names_not_the_handle() {
    let (mut a, _) = managed(None);
    let reg = register_rk(&mut a, "a.org", b"u1", None);
    let token = pin_token(&mut a, P2, "1234", PERM_CM, None).unwrap();
    let new_user = user_entity(b"u1", Some("new@example.com"), None);
    let params = credential_params(&reg.credential_id, Some(new_user));
    assert_eq!(cm(&mut a, &token, 7, Some(params)), Ok(Value::Null));
    let stored = a.keystore_mut().all_discoverable_credentials().unwrap();
    let user = stored[0].user.clone().unwrap();
    assert_eq!(user.name.as_deref(), Some("new@example.com"));
    assert_eq!(user.display_name, None, "absent fields are removed");

    let other = user_entity(b"u2", Some("x"), None);
    let params = credential_params(&reg.credential_id, Some(other));
    assert_eq!(
        cm(&mut a, &token, 7, Some(params)),
        Err(StatusCode::InvalidParameter),
        "another user handle"
    );
    let params = credential_params(&reg.credential_id, None);
    assert_eq!(
        cm(&mut a, &token, 7, Some(params)),
        Err(StatusCode::MissingParameter),
        "no user"
    );
    let user = user_entity(b"u1", None, None);
    let params = credential_params(b"unknown", Some(user));
    assert_eq!(
        cm(&mut a, &token, 7, Some(params)),
        Err(StatusCode::NoCredentials)
    );
}

/// A descriptor of a type other than "public-key" names no credential here: as if none were
/// sent.
#[test]
fn a_descriptor_of_another_type_is_no_credential_id() {
    let (mut a, _) = managed(None);
    let reg = register_rk(&mut a, "a.org", b"u1", None);
    let token = pin_token(&mut a, P2, "1234", PERM_CM, None).unwrap();
    let params = CredentialManagementParams {
        credential_id: Some(PublicKeyCredentialDescriptor {
            kind: "future".into(),
            id: reg.credential_id.clone(),
        }),
        ..CredentialManagementParams::default()
    }
    .to_cbor();
    assert_eq!(
        cm(&mut a, &token, 6, Some(params)),
        Err(StatusCode::MissingParameter)
    );
    assert_eq!(a.keystore().discoverable_count(), 1, "nothing deleted");
}

/// §6.8.6: "If a field is not present in the passed-in user, or is present and empty,
/// remove it from the matching credential's user."
#[test]
fn update_user_information_removes_names_that_are_present_but_empty() {
    let (mut a, _) = managed(None);
    let reg = register_rk(&mut a, "a.org", b"u1", None);
    let token = pin_token(&mut a, P2, "1234", PERM_CM, None).unwrap();
    let emptied = user_entity(b"u1", Some(""), Some(""));
    let params = credential_params(&reg.credential_id, Some(emptied));
    assert_eq!(cm(&mut a, &token, 7, Some(params)), Ok(Value::Null));
    let stored = a.keystore_mut().all_discoverable_credentials().unwrap();
    let user = stored[0].user.clone().unwrap();
    assert_eq!((user.name, user.display_name), (None, None));
}

#[test]
fn the_token_must_be_right_and_carry_cm() {
    let (mut a, token) = managed(None);
    register_rk(&mut a, "a.org", b"u1", None);
    let token = pin_token(&mut a, P2, "1234", PERM_CM, None).unwrap_or(token);
    assert_eq!(
        send_value(
            &mut a,
            &CredentialManagementRequest::new(Sub::GetCredsMetadata)
        ),
        Err(StatusCode::PuatRequired),
        "no pinUvAuthParam"
    );
    assert_eq!(
        call(&mut a, CM, vec![(1, int(1)), (4, bytes(&[0; 32]))]),
        Err(StatusCode::MissingParameter),
        "no protocol"
    );
    assert_eq!(
        call(
            &mut a,
            CM,
            vec![(1, int(1)), (3, int(5)), (4, bytes(&[0; 32]))]
        ),
        Err(StatusCode::InvalidParameter),
        "unknown protocol"
    );
    let wrong = auth_param(P2, &token, &[2]);
    assert_eq!(
        call(&mut a, CM, vec![(1, int(1)), (3, int(2)), (4, wrong)]),
        Err(StatusCode::PinAuthInvalid),
        "MAC over another subcommand"
    );
    let ga = pin_token(&mut a, P2, "1234", PERM_GA, Some("a.org")).unwrap();
    assert_eq!(
        cm(&mut a, &ga, 1, None),
        Err(StatusCode::PinAuthInvalid),
        "no cm permission"
    );
}

#[test]
fn an_rp_bound_token_sees_only_its_rp() {
    let (mut a, _) = managed(None);
    register_rk(&mut a, "a.org", b"u1", None);
    let b = register_rk(&mut a, "b.org", b"u2", None);
    let token = pin_token(&mut a, P2, "1234", PERM_CM, Some("a.org")).unwrap();
    assert_eq!(
        cm(&mut a, &token, 1, None),
        Err(StatusCode::PinAuthInvalid),
        "metadata spans every RP"
    );
    assert_eq!(
        cm(&mut a, &token, 2, None),
        Err(StatusCode::PinAuthInvalid),
        "so does RP enumeration"
    );
    assert_eq!(
        cm(&mut a, &token, 4, Some(rp_hash_params("b.org"))),
        Err(StatusCode::PinAuthInvalid)
    );
    assert!(cm(&mut a, &token, 4, Some(rp_hash_params("a.org"))).is_ok());
    let params = credential_params(&b.credential_id, None);
    assert_eq!(
        cm(&mut a, &token, 6, Some(params)),
        Err(StatusCode::PinAuthInvalid),
        "another RP's credential"
    );
    assert_eq!(a.keystore().discoverable_count(), 2);
}

#[test]
fn malformed_requests() {
    let (mut a, token) = managed(None);
    assert_eq!(
        call(&mut a, CM, vec![]),
        Err(StatusCode::MissingParameter),
        "no subCommand"
    );
    assert_eq!(
        call(&mut a, CM, vec![(1, text("1"))]),
        Err(StatusCode::CborUnexpectedType)
    );
    assert_eq!(
        call(&mut a, CM, vec![(1, int(1)), (2, int(1))]),
        Err(StatusCode::CborUnexpectedType)
    );
    for sub in [0, 8, 0x40, 300] {
        assert_eq!(
            call(&mut a, CM, vec![(1, int(sub))]),
            Err(StatusCode::InvalidSubcommand),
            "{sub}"
        );
    }
    assert_eq!(
        cm(&mut a, &token, 4, None),
        Err(StatusCode::MissingParameter),
        "no rpIDHash"
    );
    assert_eq!(
        cm(
            &mut a,
            &token,
            4,
            Some(cbor::int_map(vec![(1, bytes(&[1; 5]))]))
        ),
        Err(StatusCode::InvalidParameter)
    );
    assert_eq!(
        cm(&mut a, &token, 4, Some(rp_hash_params("none.org"))),
        Err(StatusCode::NoCredentials)
    );
    assert_eq!(
        cm(&mut a, &token, 6, Some(cbor::int_map(vec![]))),
        Err(StatusCode::MissingParameter),
        "no credentialID"
    );
}

#[test]
fn the_preview_command_0x41_answers_the_same() {
    let (mut a, _) = managed(None);
    register_rk(&mut a, "a.org", b"u1", None);
    let token = pin_token(&mut a, P2, "1234", PERM_CM, None).unwrap();
    let p = entries(&cm_request(&token, 1, None));
    let r = call(&mut a, Command::CredentialManagementPreview.as_byte(), p).unwrap();
    assert_eq!(field(&r, 1), Some(&int(1)));
}
