//! authenticatorSelection (CTAP 2.1 §6.9): "touch the key you want to use".

use crate::ctap2::authenticator::Authenticator;
use crate::env::{Env, Operation};
use crate::status::StatusCode;
use crate::wire::{NoBody, SelectionRequest};

impl<E: Env> Authenticator<E> {
    /// The request has no parameters (see [`SelectionRequest`]).
    pub(crate) fn selection(&mut self, _request: SelectionRequest) -> Result<NoBody, StatusCode> {
        self.collect_presence(Operation::Selection, None, None)?;
        Ok(NoBody)
    }
}

#[cfg(test)]
mod tests;
