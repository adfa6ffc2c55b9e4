//! The pinUvAuthParam rules that makeCredential, getAssertion, credential management,
//! authenticatorConfig and largeBlobs share (CTAP 2.1 §6.1.2 steps 1-2 and 11, §6.2.2 steps
//! 1-2 and 6, §6.5.5.7 "pinUvAuthToken permissions").

use crate::ctap2::authenticator::Authenticator;
use crate::ctap2::pin::protocol::PinProtocol;
use crate::ctap2::pin::token::permission;
use crate::env::{Clock, Env, Operation, Presence, PresenceOutcome, PresenceRequest};
use crate::status::StatusCode;

/// A pinUvAuthParam with its protocol, checked to be non-empty and of a known protocol.
#[derive(Debug)]
pub(crate) struct PinUvAuth {
    pub protocol: PinProtocol,
    pub param: Vec<u8>,
}

impl<E: Env> Authenticator<E> {
    /// makeCredential / getAssertion steps 1-2.
    pub(crate) fn pin_uv_auth_precheck(
        &mut self,
        param: Option<Vec<u8>>,
        protocol: Option<i128>,
    ) -> Result<Option<PinUvAuth>, StatusCode> {
        let Some(param) = param else {
            return Ok(None);
        };
        // 1. A zero-length pinUvAuthParam is a platform asking "touch the key you want"
        //    (CTAP 2.0 platforms do this instead of authenticatorSelection): collect presence
        //    (refused or timed out is OPERATION_DENIED), then say whether a PIN is set.
        if param.is_empty() {
            let request = PresenceRequest {
                operation: Operation::Selection,
                rp_id: None,
                user_name: None,
            };
            return Err(match self.presence.request_presence(&request) {
                PresenceOutcome::Approved if self.pin_is_set()? => StatusCode::PinInvalid,
                PresenceOutcome::Approved => StatusCode::PinNotSet,
                PresenceOutcome::Cancelled => StatusCode::KeepaliveCancel,
                PresenceOutcome::Denied | PresenceOutcome::TimedOut => StatusCode::OperationDenied,
            });
        }
        // 2. The protocol must be given and be one we know.
        let protocol = PinProtocol::from_param(protocol.ok_or(StatusCode::MissingParameter)?)?;
        Ok(Some(PinUvAuth { protocol, param }))
    }

    /// makeCredential step 11.1 / getAssertion step 6.1: the pinUvAuthParam is
    /// authenticate(pinUvAuthToken, clientDataHash) of a token in use, with `permission`, for
    /// this RP, and the token still carries "user verified". Binds an unbound token to the RP.
    pub(crate) fn verify_ceremony_token(
        &mut self,
        auth: &PinUvAuth,
        client_data_hash: &[u8],
        permission: u8,
        rp_id: &str,
    ) -> Result<(), StatusCode> {
        // Without a PIN (and no built-in UV) there is no token this could be made with. CTAP
        // 2.1 leaves this case open; CTAP 2.0, OpenSK and YubiKeys answer PIN_NOT_SET, which
        // tells the platform what to do next.
        if !self.is_protected()? {
            return Err(StatusCode::PinNotSet);
        }
        self.verify_token(auth, client_data_hash)?;
        self.pin.token.require(permission)?;
        if self.pin.token.rp_id().is_some_and(|bound| bound != rp_id) {
            return Err(StatusCode::PinAuthInvalid);
        }
        if !self.pin.token.user_verified() {
            return Err(StatusCode::PinAuthInvalid);
        }
        self.pin.token.bind_rp_id(rp_id)
    }

    /// verify(pinUvAuthToken, message, pinUvAuthParam) with the token of the request's
    /// protocol: CTAP2_ERR_PIN_AUTH_INVALID unless a token is in use and the MAC is right.
    pub(crate) fn verify_token(
        &mut self,
        auth: &PinUvAuth,
        message: &[u8],
    ) -> Result<(), StatusCode> {
        let now = self.clock.now_ms();
        self.pin
            .verify_token_param(auth.protocol, message, &auth.param, now)
    }

    /// The authorization of credential management, authenticatorConfig and largeBlobs
    /// writes: pinUvAuthParam required (PUAT_REQUIRED), protocol given (MISSING_PARAMETER) and
    /// known (INVALID_PARAMETER), MAC right and `permission` held (PIN_AUTH_INVALID).
    pub(crate) fn authorize_management(
        &mut self,
        param: Option<Vec<u8>>,
        protocol: Option<i128>,
        message: &[u8],
        permission: u8,
    ) -> Result<(), StatusCode> {
        let param = param.ok_or(StatusCode::PuatRequired)?;
        let protocol = PinProtocol::from_param(protocol.ok_or(StatusCode::MissingParameter)?)?;
        self.verify_token(&PinUvAuth { protocol, param }, message)?;
        self.pin.token.require(permission)
    }
}

/// What authorized a credential management request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmAuthorization {
    /// The pinUvAuthToken in use, with the cm permission (its permissions RP ID applies).
    Token,
    /// The persistentPinUvAuthToken (pcmr): reading only, every RP.
    PersistentReadOnly,
}

impl<E: Env> Authenticator<E> {
    /// Credential management's authorization (CTAP 2.2 §6.8): the pinUvAuthToken in use with
    /// cm, or, for a subcommand that only reads (`read_only`: getCredsMetadata,
    /// enumerateRPsBegin, enumerateCredentialsBegin), the persistentPinUvAuthToken of pcmr.
    /// A MAC made with the persistent token on anything else is PIN_AUTH_INVALID, as a token
    /// without the permission is.
    pub(crate) fn authorize_credential_management(
        &mut self,
        param: Option<Vec<u8>>,
        protocol: Option<i128>,
        message: &[u8],
        read_only: bool,
    ) -> Result<CmAuthorization, StatusCode> {
        let param = param.ok_or(StatusCode::PuatRequired)?;
        let protocol = PinProtocol::from_param(protocol.ok_or(StatusCode::MissingParameter)?)?;
        let auth = PinUvAuth { protocol, param };
        let ephemeral = self
            .verify_token(&auth, message)
            .and_then(|()| self.pin.token.require(permission::CREDENTIAL_MANAGEMENT));
        match ephemeral {
            Ok(()) => Ok(CmAuthorization::Token),
            Err(StatusCode::PinAuthInvalid) => {
                let persistent = self.state()?.persistent_token.clone();
                let made_with_it = persistent
                    .is_some_and(|token| protocol.verify(token.bytes(), message, &auth.param));
                if made_with_it && read_only {
                    Ok(CmAuthorization::PersistentReadOnly)
                } else {
                    Err(StatusCode::PinAuthInvalid)
                }
            }
            Err(other) => Err(other),
        }
    }
}

#[cfg(test)]
mod tests;
