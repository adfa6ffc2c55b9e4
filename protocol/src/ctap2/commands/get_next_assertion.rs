//! authenticatorGetNextAssertion (CTAP 2.1 §6.3).

use crate::ctap2::authenticator::Authenticator;
use crate::ctap2::state::continuation::Continuation;
use crate::ctap2::state::Found;
use crate::env::Env;
use crate::status::StatusCode;
use crate::wire::{GetAssertionResponse, GetNextAssertionRequest};

impl<E: Env> Authenticator<E> {
    pub(crate) fn get_next_assertion(
        &mut self,
        _request: GetNextAssertionRequest,
    ) -> Result<GetAssertionResponse, StatusCode> {
        // 1-3. There must be a getAssertion to continue, begun on this very channel, with
        //      credentials left, and its 30-second timer must still run (the runtime state
        //      checks the origin and the timer: see `state`). From anywhere else: NOT_ALLOWED.
        let Found::Own(Continuation::NextAssertion(mut state)) = self.command.take_found() else {
            return Err(StatusCode::NotAllowed);
        };
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
            self.leave_continuation(Continuation::NextAssertion(state));
        }
        Ok(response)
    }
}
