//! authenticatorGetNextAssertion (CTAP 2.1 §6.3).

use ciborium::Value;

use crate::authenticator::Authenticator;
use crate::ctap2::get_assertion::NEXT_ASSERTION_WINDOW_MS;
use crate::ctap2::StatusCode;
use crate::env::{Clock, Keystore, Presence, Rng};

impl<K: Keystore, P: Presence, C: Clock, R: Rng> Authenticator<K, P, C, R> {
    pub(crate) fn get_next_assertion(&mut self, _params: &[u8]) -> Result<Value, StatusCode> {
        let now = self.clock.now_ms();
        // 1-3. There must be a getAssertion to continue, with credentials left, and its
        //      30-second timer must still run.
        let Some(mut state) = self.next_assertion.take() else {
            return Err(StatusCode::NotAllowed);
        };
        if now.saturating_sub(state.timer_start_ms) > NEXT_ASSERTION_WINDOW_MS {
            return Err(StatusCode::NotAllowed);
        }
        let Some(credential) = state.remaining.pop_front() else {
            return Err(StatusCode::NotAllowed);
        };
        // 4-5. Sign with the next credential under the same flags (presence was collected once
        //      for the whole batch), and restart the timer.
        let response = self.assertion_response(
            &credential,
            &state.rp_id_hash,
            state.flags,
            &state.client_data_hash,
            &state.extensions,
            None,
        )?;
        if !state.remaining.is_empty() {
            state.timer_start_ms = now;
            self.next_assertion = Some(state);
        }
        Ok(response)
    }
}
