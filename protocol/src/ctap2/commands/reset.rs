//! authenticatorReset (CTAP 2.1 §6.6).

use crate::ctap2::authenticator::{Authenticator, RESET_WINDOW_MS};
use crate::env::{Clock, Env, Keystore, Operation};
use crate::status::StatusCode;
use crate::wire::{NoBody, ResetRequest};

impl<E: Env> Authenticator<E> {
    /// The request has no parameters (see [`ResetRequest`]).
    pub(crate) fn reset(&mut self, _request: ResetRequest) -> Result<NoBody, StatusCode> {
        // Only within 10 seconds of power-up (the key's appearance: see
        // `AuthenticatorConfig::start_is_power_up` and `power_cycle`), so malware cannot wipe
        // the key at an arbitrary moment...
        let in_window = self
            .powered_up_ms
            .is_some_and(|at| self.clock.now_ms().saturating_sub(at) <= RESET_WINDOW_MS);
        if !in_window {
            return Err(StatusCode::NotAllowed);
        }
        // ...and only with the person's consent.
        self.collect_presence(Operation::Reset, None, None)?;
        // Forget the cached state first: whatever the keystore manages to erase, nothing of
        // the old PIN lingers in memory.
        self.persistent = None;
        self.pin.clear();
        self.runtime.clear();
        self.keystore.reset()?;
        Ok(NoBody)
    }
}

#[cfg(test)]
mod tests;
