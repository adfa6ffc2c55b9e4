//! Built-in user verification (CTAP 2.1 §6.5: performBuiltInUv and the uvRetries counter): the
//! environment verifies the person (their login password through PAM, a fingerprint), the
//! authenticator keeps the count of attempts left.
//!
//! An attempt is spent and written before the person is asked, and given back when the
//! attempt ends in anything but a wrong secret: pulling the plug mid-verification never gives
//! a free try.

use crate::ctap2::authenticator::Authenticator;
use crate::ctap2::state::persistent::MAX_UV_RETRIES;
use crate::env::{Env, Operation, Presence, PresenceRequest, UvOutcome};
use crate::status::StatusCode;

/// getInfo preferredPlatformUvAttempts: the platform may call
/// getPinUvAuthTokenUsingUvWithPermissions this many times before falling back to the PIN.
/// More than 1, so each call is one attempt (internalRetry false, §6.5.5.7.3 step 6).
pub const PREFERRED_PLATFORM_UV_ATTEMPTS: u8 = 3;

/// How many attempts one makeCredential / getAssertion with "uv": true makes
/// (internalRetry true): the CTAP 2.0 platforms that use it cannot ask again themselves.
pub const INTERNAL_UV_ATTEMPTS: u8 = 3;

/// How performBuiltInUv ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UvResult {
    /// The person is verified (and, having acted, present); uvRetries is full again.
    Verified,
    /// The secret did not match, or no attempt was left to make. `blocked`: uvRetries is 0.
    Failed {
        blocked: bool,
    },
    Denied,
    TimedOut,
    Cancelled,
    /// The verifier could not run; no attempt was spent.
    Unavailable,
}

impl<E: Env> Authenticator<E> {
    /// performBuiltInUv(internalRetry): at most one attempt, or [`INTERNAL_UV_ATTEMPTS`] with
    /// internal retries, each wrong secret spending one of the uvRetries. Keystore failures
    /// are the only errors.
    pub(crate) fn perform_built_in_uv(
        &mut self,
        request: &PresenceRequest<'_>,
        internal_retry: bool,
    ) -> Result<UvResult, StatusCode> {
        let mut attempts_left = if internal_retry {
            INTERNAL_UV_ATTEMPTS
        } else {
            1
        };
        loop {
            let retries = self.state()?.uv_retries;
            if retries == 0 {
                return Ok(UvResult::Failed { blocked: true });
            }
            self.update_state(|state| state.uv_retries = retries - 1)?;
            let result = match self.presence.verify_user(request) {
                UvOutcome::Failed => {
                    attempts_left -= 1;
                    if retries == 1 || attempts_left == 0 {
                        return Ok(UvResult::Failed {
                            blocked: retries == 1,
                        });
                    }
                    continue;
                }
                UvOutcome::Verified => UvResult::Verified,
                UvOutcome::Denied => UvResult::Denied,
                UvOutcome::TimedOut => UvResult::TimedOut,
                UvOutcome::Cancelled => UvResult::Cancelled,
                UvOutcome::Unavailable => UvResult::Unavailable,
            };
            // Anything but a wrong secret gives the attempt back; a success fills them all.
            let restored = match result {
                UvResult::Verified => MAX_UV_RETRIES,
                _ => retries,
            };
            let verified = result == UvResult::Verified;
            self.update_state(|state| {
                state.uv_retries = restored;
                // getInfo uvCountSinceLastPinEntry (CTAP 2.2 §6.4 0x17).
                if verified {
                    state.uv_count_since_pin = state.uv_count_since_pin.saturating_add(1);
                }
            })?;
            return Ok(result);
        }
    }

    /// makeCredential step 11.2 / getAssertion step 6.2: the "uv" option with built-in UV, with
    /// internal retries, and the statuses the spec gives when it fails. With a PIN set the
    /// answer to a failure is PUAT_REQUIRED: the platform falls back to the PIN.
    pub(crate) fn verify_for_ceremony(
        &mut self,
        operation: Operation,
        rp_id: &str,
        user_name: Option<&str>,
    ) -> Result<(), StatusCode> {
        let request = PresenceRequest {
            operation,
            rp_id: Some(rp_id),
            user_name,
        };
        match self.perform_built_in_uv(&request, true)? {
            UvResult::Verified => Ok(()),
            // 11.2.3.1: a user action timeout.
            UvResult::TimedOut => Err(StatusCode::UserActionTimeout),
            // The platform withdrew the request (CTAPHID_CANCEL), as for a presence gesture.
            UvResult::Cancelled => Err(StatusCode::KeepaliveCancel),
            // The person refused the operation itself: no PIN fallback offered for it.
            UvResult::Denied => Err(StatusCode::OperationDenied),
            UvResult::Failed { blocked } => Err(self.ceremony_uv_failure(blocked)?),
            UvResult::Unavailable => Err(self.ceremony_uv_failure(false)?),
        }
    }

    /// 11.2.3.2-4: PUAT_REQUIRED when a PIN is set (we never report
    /// noMcGaPermissionsWithClientPin), else PIN_BLOCKED when no uvRetries are left, else
    /// OPERATION_DENIED.
    fn ceremony_uv_failure(&mut self, blocked: bool) -> Result<StatusCode, StatusCode> {
        Ok(if self.pin_is_set()? {
            StatusCode::PuatRequired
        } else if blocked {
            StatusCode::PinBlocked
        } else {
            StatusCode::OperationDenied
        })
    }
}

#[cfg(test)]
mod tests;
