//! CTAP2 requests the end-to-end tests send themselves, built from `protocol::wire`'s types,
//! and what they read back from the answers.

use protocol::wire::{
    GetAssertionRequest, MakeCredentialRequest, MakeCredentialResponse,
    PublicKeyCredentialDescriptor, PublicKeyCredentialParameters, PublicKeyCredentialRpEntity,
    PublicKeyCredentialUserEntity, Request, Response,
};

/// The clientDataHash every request here signs over.
const CLIENT_DATA_HASH: [u8; 32] = [0xcd; 32];

/// authenticatorMakeCredential for `rp` and the user handle `user`: ES256, a fixed
/// clientDataHash, discoverable when `rk` (which is sent either way).
pub fn make_credential_es256(rp: &str, user: &[u8], rk: bool) -> Vec<u8> {
    let mut request = MakeCredentialRequest::new(
        CLIENT_DATA_HASH.to_vec(),
        PublicKeyCredentialRpEntity::with_id(rp),
        PublicKeyCredentialUserEntity::with_handle(user.to_vec()),
        vec![PublicKeyCredentialParameters::public_key(
            protocol::cose::ALG_ES256,
        )],
    );
    request.options.rk = Some(rk);
    request.encode()
}

/// authenticatorGetAssertion for `rp` without an allowList (a discovery), presence asked.
pub fn get_assertion_discovery(rp: &str) -> Vec<u8> {
    GetAssertionRequest::new(rp, CLIENT_DATA_HASH.to_vec()).encode()
}

/// authenticatorGetAssertion for `rp` naming the credential `credential_id` in its allowList.
pub fn get_assertion_of(rp: &str, credential_id: &[u8], client_data_hash: [u8; 32]) -> Vec<u8> {
    let mut request = GetAssertionRequest::new(rp, client_data_hash.to_vec());
    request.allow_list = vec![PublicKeyCredentialDescriptor::public_key(
        credential_id.to_vec(),
    )];
    request.encode()
}

/// The credential ID a makeCredential answer's body (after the status byte) attests.
pub fn credential_id(make_credential_body: &[u8]) -> Vec<u8> {
    MakeCredentialResponse::decode(make_credential_body)
        .expect("a makeCredential response")
        .credential_id()
        .expect("attested credential data")
        .to_vec()
}
