//! authenticatorSelection (CTAP 2.1 §6.9): "touch the key you want to use".

use ciborium::Value;

use crate::ctap2::authenticator::Authenticator;
use crate::env::{Env, Operation};
use crate::status::StatusCode;
use crate::wire::{Request as _, SelectionRequest};

impl<E: Env> Authenticator<E> {
    pub(crate) fn selection(&mut self, params: &[u8]) -> Result<Value, StatusCode> {
        let SelectionRequest = SelectionRequest::decode(params)?;
        self.collect_presence(Operation::Selection, None, None)?;
        Ok(Value::Null)
    }
}

#[cfg(test)]
mod tests;
