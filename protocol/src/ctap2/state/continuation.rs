//! What a multi-command operation leaves for its next step (CTAP 2.1 §6.3 getNextAssertion,
//! §6.8 credential management's enumerations, §6.10 largeBlobs' fragments). Plain data: the
//! commands fill and read it, [`super::RuntimeState`] keeps it for the origin that began it.

use std::collections::VecDeque;

use zeroize::Zeroizing;

use crate::ctap2::hmac_secret::HmacSecretSalts;
use crate::env::Credential;

/// What a multi-command operation left for its next step.
pub(crate) enum Continuation {
    /// getAssertion's remaining credentials, for getNextAssertion.
    NextAssertion(NextAssertionState),
    /// enumerateRPsBegin's remaining RPs (ID, ID hash), for enumerateRPsGetNextRP.
    Rps(VecDeque<(String, [u8; 32])>),
    /// enumerateCredentialsBegin's remaining credentials, for GetNextCredential.
    Credentials(VecDeque<Credential>),
    /// A large-blob array whose first fragments arrived.
    LargeBlobWrite(LargeBlobWrite),
}

/// What getAssertion leaves for getNextAssertion: the remaining credentials, newest first.
pub(crate) struct NextAssertionState {
    pub(crate) rp_id_hash: [u8; 32],
    pub(crate) client_data_hash: Vec<u8>,
    pub(crate) flags: u8,
    pub(crate) extensions: AssertionExtensions,
    /// Still to be returned, in order.
    pub(crate) remaining: std::collections::VecDeque<Credential>,
}

/// The extensions of a getAssertion, ready to be applied to each credential it returns.
#[derive(Debug, Default)]
pub(crate) struct AssertionExtensions {
    pub(crate) hmac_secret: Option<HmacSecretSalts>,
    pub(crate) cred_blob: bool,
    pub(crate) large_blob_key: bool,
    pub(crate) third_party_payment: bool,
}

/// A serialized large-blob array arriving in fragments.
pub(crate) struct LargeBlobWrite {
    pub(crate) expected_length: usize,
    pub(crate) buffer: Zeroizing<Vec<u8>>,
}
