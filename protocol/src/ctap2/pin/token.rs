//! The volatile clientPIN state (CTAP 2.1 §6.5.2): the key agreement keys and pinUvAuthTokens
//! of both protocols, the token's permissions, permissions RP ID, user present / user verified
//! flags and usage timer, and the count of consecutive wrong PINs. All of it is lost at
//! power-off (a daemon restart), as on a hardware key. The one token that is not lost, the
//! persistentPinUvAuthToken of the pcmr permission (CTAP 2.2), lives in the sealed
//! [`PersistentState`](crate::ctap2::state::persistent::PersistentState) instead.

use zeroize::Zeroizing;

use crate::ctap2::pin::protocol::{KeyAgreementKey, PinProtocol, TOKEN_LEN};
use crate::status::StatusCode;

/// pinUvAuthToken permissions: the bits are the wire's (CTAP 2.1 §6.5.5.7), which ones this
/// key grants is its own policy.
pub mod permission {
    pub use crate::wire::permission::*;

    /// The permissions this authenticator grants: all but bio enrollment ("be", never
    /// granted: fido2d enrolls no fingerprints).
    pub const SUPPORTED: u8 = MAKE_CREDENTIAL
        | GET_ASSERTION
        | CREDENTIAL_MANAGEMENT
        | LARGE_BLOB_WRITE
        | AUTHENTICATOR_CONFIG
        | PERSISTENT_CREDENTIAL_MANAGEMENT_READ_ONLY;
}

/// A token unused this long after it was handed out stops working (§6.5.2.1 "initial usage
/// time limit"; 30 s is the spec's default for USB).
pub const INITIAL_USAGE_TIME_LIMIT_MS: u64 = 30_000;
/// The token's "user present" flag lasts this long (§6.5.2.1 "user present time limit").
pub const USER_PRESENT_TIME_LIMIT_MS: u64 = 30_000;
/// No token lives longer than this (§6.5.2.1 "maximum usage time period": 10 minutes).
pub const MAX_USAGE_TIME_PERIOD_MS: u64 = 600_000;
/// Wrong PINs in a row before PIN use needs a power cycle (§6.5.5.7 step "3 consecutive").
pub const MAX_CONSECUTIVE_MISMATCHES: u8 = 3;

/// The pinUvAuthToken state machine: beginUsing / stopUsing, flags, permissions, timers.
#[derive(Debug, Default)]
pub struct TokenState {
    in_use: bool,
    permissions: u8,
    rp_id: Option<String>,
    user_present: bool,
    user_verified: bool,
    began_ms: u64,
    used_since_begin: bool,
}

impl TokenState {
    /// beginUsingPinUvAuthToken(userIsPresent).
    pub fn begin_using(
        &mut self,
        user_is_present: bool,
        permissions: u8,
        rp_id: Option<String>,
        now_ms: u64,
    ) {
        *self = TokenState {
            in_use: true,
            permissions,
            rp_id,
            user_present: user_is_present,
            user_verified: true,
            began_ms: now_ms,
            used_since_begin: false,
        };
    }

    /// stopUsingPinUvAuthToken().
    pub fn stop_using(&mut self) {
        *self = TokenState::default();
    }

    /// pinUvAuthTokenUsageTimerObserver(), run lazily whenever the token is looked at: the
    /// authenticator has no timer of its own, but the clock tells the same story.
    pub fn observe_timers(&mut self, now_ms: u64) {
        if !self.in_use {
            return;
        }
        let elapsed = now_ms.saturating_sub(self.began_ms);
        if elapsed > MAX_USAGE_TIME_PERIOD_MS
            || (!self.used_since_begin && elapsed > INITIAL_USAGE_TIME_LIMIT_MS)
        {
            self.stop_using();
            return;
        }
        if elapsed > USER_PRESENT_TIME_LIMIT_MS {
            self.user_present = false;
        }
    }

    pub fn in_use(&self) -> bool {
        self.in_use
    }

    /// Records a successful verification of a pinUvAuthParam made with the token.
    pub fn mark_used(&mut self) {
        self.used_since_begin = true;
    }

    /// The token must carry `permission`, else CTAP2_ERR_PIN_AUTH_INVALID.
    pub fn require(&self, permission: u8) -> Result<(), StatusCode> {
        if self.in_use && self.permissions & permission == permission {
            Ok(())
        } else {
            Err(StatusCode::PinAuthInvalid)
        }
    }

    pub fn rp_id(&self) -> Option<&str> {
        self.rp_id.as_deref()
    }

    /// makeCredential/getAssertion: a token bound to another RP is CTAP2_ERR_PIN_AUTH_INVALID;
    /// an unbound one is bound to this RP from now on.
    pub fn bind_rp_id(&mut self, rp_id: &str) -> Result<(), StatusCode> {
        match &self.rp_id {
            Some(bound) if bound != rp_id => Err(StatusCode::PinAuthInvalid),
            Some(_) => Ok(()),
            None => {
                self.rp_id = Some(rp_id.to_owned());
                Ok(())
            }
        }
    }

    /// getUserPresentFlagValue().
    pub fn user_present(&self) -> bool {
        self.in_use && self.user_present
    }

    /// getUserVerifiedFlagValue().
    pub fn user_verified(&self) -> bool {
        self.in_use && self.user_verified
    }

    /// clearUserPresentFlag(), clearUserVerifiedFlag() and
    /// clearPinUvAuthTokenPermissionsExceptLbw(): what makeCredential and getAssertion do once
    /// they collected presence, so one token authorizes one ceremony.
    pub fn consume_after_presence(&mut self) {
        if self.in_use {
            self.user_present = false;
            self.user_verified = false;
            self.permissions &= permission::LARGE_BLOB_WRITE;
        }
    }
}

/// Everything clientPIN keeps in memory only.
#[derive(Default)]
pub struct PinSession {
    key_agreement: [Option<KeyAgreementKey>; 2],
    tokens: [Option<Zeroizing<[u8; TOKEN_LEN]>>; 2],
    pub token: TokenState,
    /// Wrong PINs in a row since power-up.
    pub consecutive_mismatches: u8,
}

impl std::fmt::Debug for PinSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinSession")
            .field("token", &self.token)
            .field("consecutive_mismatches", &self.consecutive_mismatches)
            .finish_non_exhaustive()
    }
}

impl PinSession {
    /// The key agreement key of `protocol`, drawn on first use (the "initialize" of power-up).
    pub fn key_agreement(
        &mut self,
        protocol: PinProtocol,
        fill_random: impl FnMut(&mut [u8]),
    ) -> &KeyAgreementKey {
        self.key_agreement[protocol.index()]
            .get_or_insert_with(|| KeyAgreementKey::generate(fill_random))
    }

    /// regenerate(): a new key agreement key for `protocol` (after a wrong PIN).
    pub fn regenerate(&mut self, protocol: PinProtocol) {
        self.key_agreement[protocol.index()] = None;
    }

    /// resetPinUvAuthToken() for every protocol: new random tokens, none in use.
    pub fn reset_tokens(&mut self, mut fill_random: impl FnMut(&mut [u8])) {
        for token in &mut self.tokens {
            let mut fresh = Zeroizing::new([0u8; TOKEN_LEN]);
            fill_random(fresh.as_mut_slice());
            *token = Some(fresh);
        }
        self.token.stop_using();
    }

    pub fn token_bytes(&self, protocol: PinProtocol) -> Option<&[u8; TOKEN_LEN]> {
        self.tokens[protocol.index()].as_deref()
    }

    /// Checks a pinUvAuthParam made with the pinUvAuthToken of `protocol` over `message`: the
    /// token must be in use (timers included) and the MAC right, else PIN_AUTH_INVALID.
    pub fn verify_token_param(
        &mut self,
        protocol: PinProtocol,
        message: &[u8],
        param: &[u8],
        now_ms: u64,
    ) -> Result<(), StatusCode> {
        self.token.observe_timers(now_ms);
        if !self.token.in_use() {
            return Err(StatusCode::PinAuthInvalid);
        }
        let token = self.tokens[protocol.index()]
            .as_deref()
            .ok_or(StatusCode::PinAuthInvalid)?;
        if !protocol.verify(token, message, param) {
            return Err(StatusCode::PinAuthInvalid);
        }
        self.token.mark_used();
        Ok(())
    }

    /// Power-cycle equivalent for authenticatorReset: new keys, no token, no mismatch count.
    pub fn clear(&mut self) {
        *self = PinSession::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unused_token_expires_after_the_initial_usage_time_limit() {
        let mut state = TokenState::default();
        state.begin_using(false, permission::GET_ASSERTION, None, 1_000);
        state.observe_timers(1_000 + INITIAL_USAGE_TIME_LIMIT_MS);
        assert!(state.in_use());
        state.observe_timers(1_001 + INITIAL_USAGE_TIME_LIMIT_MS);
        assert!(!state.in_use());
        assert_eq!(
            state.require(permission::GET_ASSERTION),
            Err(StatusCode::PinAuthInvalid)
        );
    }

    #[test]
    fn a_used_token_lives_until_the_maximum_usage_period() {
        let mut state = TokenState::default();
        state.begin_using(true, permission::CREDENTIAL_MANAGEMENT, None, 0);
        state.mark_used();
        state.observe_timers(USER_PRESENT_TIME_LIMIT_MS + 1);
        assert!(state.in_use());
        assert!(!state.user_present(), "the user present flag lasts 30 s");
        assert!(state.user_verified());
        state.observe_timers(MAX_USAGE_TIME_PERIOD_MS);
        assert!(state.in_use());
        state.observe_timers(MAX_USAGE_TIME_PERIOD_MS + 1);
        assert!(!state.in_use(), "never longer than 10 minutes");
    }

    #[test]
    fn presence_consumes_flags_and_all_permissions_but_lbw() {
        let mut state = TokenState::default();
        let all = permission::SUPPORTED;
        state.begin_using(true, all, None, 0);
        state.consume_after_presence();
        assert!(!state.user_present());
        assert!(!state.user_verified());
        assert_eq!(
            state.require(permission::MAKE_CREDENTIAL),
            Err(StatusCode::PinAuthInvalid)
        );
        assert_eq!(state.require(permission::LARGE_BLOB_WRITE), Ok(()));
    }

    #[test]
    fn rp_binding_is_first_come_then_enforced() {
        let mut state = TokenState::default();
        state.begin_using(false, permission::GET_ASSERTION, None, 0);
        assert_eq!(state.bind_rp_id("a.org"), Ok(()));
        assert_eq!(state.rp_id(), Some("a.org"));
        assert_eq!(state.bind_rp_id("a.org"), Ok(()));
        assert_eq!(state.bind_rp_id("b.org"), Err(StatusCode::PinAuthInvalid));
    }

    #[test]
    fn token_params_verify_only_while_the_token_is_in_use() {
        let mut session = PinSession::default();
        let mut seed = 0u8;
        session.reset_tokens(|b| {
            seed += 1;
            b.fill(seed)
        });
        let token = *session.token_bytes(PinProtocol::Two).unwrap();
        let param = PinProtocol::Two.authenticate(&token, b"msg");
        assert_eq!(
            session.verify_token_param(PinProtocol::Two, b"msg", &param, 0),
            Err(StatusCode::PinAuthInvalid),
            "not in use yet"
        );
        session
            .token
            .begin_using(false, permission::GET_ASSERTION, None, 0);
        assert_eq!(
            session.verify_token_param(PinProtocol::Two, b"msg", &param, 0),
            Ok(())
        );
        assert_eq!(
            session.verify_token_param(PinProtocol::One, b"msg", &param[..16], 0),
            Err(StatusCode::PinAuthInvalid),
            "each protocol has its own token"
        );
        assert_eq!(
            session.verify_token_param(PinProtocol::Two, b"msh", &param, 0),
            Err(StatusCode::PinAuthInvalid)
        );
    }
}
