//! The authenticator: one state machine that answers CTAP2 (CTAPHID_CBOR) and CTAP1/U2F
//! (CTAPHID_MSG) requests with the same credentials.
//!
//! It lives with CTAP2 because a CTAP2 authenticator is what it is: CTAP1 is the older
//! protocol it also speaks (CTAP 2.1 §10), so `ctap1` adds `process_apdu` on top of it and
//! nothing here knows of CTAP1.

use crate::ctap2::pin::token::PinSession;
use crate::ctap2::state::continuation::Continuation;
use crate::ctap2::state::persistent::{PersistentState, Secret, PERSISTENT_TOKEN_LEN};
use crate::ctap2::state::{Found, RuntimeState};
use crate::env::{
    Clock, Env, Keystore, Operation, Presence, PresenceOutcome, PresenceRequest, Rng, StateSlot,
    MAX_PIN_RETRIES,
};
use crate::origin::Origin;
use crate::status::StatusCode;

/// What the daemon tells the authenticator about itself; reported by authenticatorGetInfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatorConfig {
    /// Identifies the authenticator model (not the unit) to relying parties.
    pub aaguid: [u8; 16],
    /// The largest CTAP message the transport carries (getInfo maxMsgSize).
    pub max_msg_size: usize,
    /// The longest credential ID the keystore issues (getInfo maxCredentialIdLength).
    pub max_credential_id_length: usize,
    /// The transports the key is reachable by, e.g. "usb" or "hybrid".
    pub transports: Vec<String>,
    pub firmware_version: u64,
    /// Whether this start is a power-up, which opens authenticatorReset's 10 s window (CTAP
    /// 2.1 §6.6). A daemon restarted within one boot is not: the key did not appear anew, so
    /// malware that can restart the service cannot reset the key with it.
    pub start_is_power_up: bool,
}

/// fido2d's AAGUID: a fixed random value that names this software model.
pub const FIDO2D_AAGUID: [u8; 16] = [
    0x6d, 0x44, 0xba, 0x9b, 0xf6, 0xec, 0x4c, 0x4d, 0x9c, 0x2e, 0x3b, 0x1f, 0x52, 0x0d, 0x6a, 0x91,
];

impl Default for AuthenticatorConfig {
    fn default() -> Self {
        AuthenticatorConfig {
            aaguid: FIDO2D_AAGUID,
            max_msg_size: crate::ctaphid::MAX_MESSAGE_LEN,
            // A file-keystore ID with every extension (hmac-secret, a 32-byte credBlob,
            // largeBlobKey) is 197 bytes.
            max_credential_id_length: 256,
            transports: vec!["usb".into()],
            firmware_version: firmware_version_from(env!("CARGO_PKG_VERSION")),
            start_is_power_up: true,
        }
    }
}

/// "major.minor.patch" as 0xMMmmpp, the way security keys usually encode their firmware version.
fn firmware_version_from(version: &str) -> u64 {
    version.split('.').take(3).fold(0, |acc, part| {
        (acc << 8) | part.parse::<u64>().unwrap_or(0).min(0xff)
    })
}

/// How long after power-up authenticatorReset is allowed (CTAP 2.1 §6.6).
pub const RESET_WINDOW_MS: u64 = 10_000;

pub struct Authenticator<E: Env> {
    pub(crate) config: AuthenticatorConfig,
    pub(crate) keystore: E::Keystore,
    pub(crate) presence: E::Presence,
    pub(crate) clock: E::Clock,
    pub(crate) rng: E::Rng,
    /// When the authenticator was "powered up": the reset window starts here (`None`: no
    /// power-up since this start, the window is closed).
    pub(crate) powered_up_ms: Option<u64>,
    /// The PIN and config state, as last read from or written to the keystore.
    pub(crate) persistent: Option<PersistentState>,
    /// clientPIN's volatile state: key agreement keys, pinUvAuthTokens, wrong-PIN count.
    pub(crate) pin: PinSession,
    /// What spans commands, and whose it is (see [`crate::ctap2::state`]).
    pub(crate) runtime: RuntimeState,
    /// The command being answered: where it came from, and what it found pending.
    pub(crate) command: CommandContext,
}

/// The command being answered.
pub(crate) struct CommandContext {
    pub origin: Origin,
    /// The continuation [`RuntimeState::begin_command`] found for it.
    found: Found,
}

impl CommandContext {
    /// The continuation this command found: its own (taken), another origin's (cleared), or
    /// nothing. Asked once: a second call finds nothing.
    pub fn take_found(&mut self) -> Found {
        std::mem::replace(&mut self.found, Found::Nothing)
    }
}

/// Built from its four parts; the tuple of their types is the environment (see [`Env`]).
impl<K: Keystore, P: Presence, C: Clock, R: Rng> Authenticator<(K, P, C, R)> {
    pub fn new(config: AuthenticatorConfig, keystore: K, presence: P, clock: C, rng: R) -> Self {
        let powered_up_ms = config.start_is_power_up.then(|| clock.now_ms());
        Authenticator {
            config,
            keystore,
            presence,
            clock,
            rng,
            powered_up_ms,
            persistent: None,
            pin: PinSession::default(),
            runtime: RuntimeState::default(),
            command: CommandContext {
                origin: Origin::usb(0),
                found: Found::Nothing,
            },
        }
    }
}

impl<E: Env> Authenticator<E> {
    /// A power cycle, as when the key is unplugged and plugged in again: the volatile state
    /// goes (PIN tokens and key agreement keys, the count of wrong PINs in a row, what spans
    /// commands) and authenticatorReset's window opens.
    pub fn power_cycle(&mut self) {
        self.pin.clear();
        self.runtime.clear();
        self.persistent = None;
        self.powered_up_ms = Some(self.clock.now_ms());
    }

    /// `origin` is gone or starts over (CTAPHID_INIT on its channel, its hybrid session
    /// ended): what it began is cleared, and the pinUvAuthToken it held stops working.
    pub fn forget_origin(&mut self, origin: Origin) {
        if self.runtime.forget(origin) {
            self.pin.token.stop_using();
        }
    }

    /// The clearing rule of [`crate::ctap2::state`], applied before every command.
    pub(crate) fn begin_command(&mut self, origin: Origin) {
        let (found, end_token) = self.runtime.begin_command(origin, self.clock.now_ms());
        if end_token {
            self.pin.token.stop_using();
        }
        self.command = CommandContext { origin, found };
    }

    /// Leaves `continuation` for the next command of the current command's origin.
    pub(crate) fn leave_continuation(&mut self, continuation: Continuation) {
        let now = self.clock.now_ms();
        self.runtime.leave(self.command.origin, continuation, now);
    }

    /// Gives the keystore back: what survives a power cycle.
    pub fn into_keystore(self) -> E::Keystore {
        self.keystore
    }

    pub fn keystore(&self) -> &E::Keystore {
        &self.keystore
    }

    pub fn keystore_mut(&mut self) -> &mut E::Keystore {
        &mut self.keystore
    }

    pub fn presence_mut(&mut self) -> &mut E::Presence {
        &mut self.presence
    }

    pub fn config(&self) -> &AuthenticatorConfig {
        &self.config
    }

    /// Asks the person for a gesture and maps the outcome to the status a hardware key gives.
    pub(crate) fn collect_presence(
        &mut self,
        operation: Operation,
        rp_id: Option<&str>,
        user_name: Option<&str>,
    ) -> Result<(), StatusCode> {
        let request = PresenceRequest {
            operation,
            rp_id,
            user_name,
        };
        match self.presence.request_presence(&request) {
            PresenceOutcome::Approved => Ok(()),
            PresenceOutcome::Denied => Err(StatusCode::OperationDenied),
            PresenceOutcome::TimedOut => Err(StatusCode::UserActionTimeout),
            PresenceOutcome::Cancelled => Err(StatusCode::KeepaliveCancel),
        }
    }
}

/// The persistent state (PIN, config, tokens), as the commands read and change it.
impl<E: Env> Authenticator<E> {
    /// The persistent state, read from the keystore on first use. Unreadable state fails the
    /// request (CTAP1_ERR_OTHER) rather than falling back to "no PIN".
    ///
    /// A state of version 1 or 2 holds the PIN hash: the PIN moves into the keystore with its
    /// retries (the keystore's verifier first, then the state without the hash, so a crash in
    /// between moves it again), and from then on no file holds it.
    pub(crate) fn state(&mut self) -> Result<&PersistentState, StatusCode> {
        if self.persistent.is_none() {
            let mut state = match self.keystore.read_state(StateSlot::Authenticator)? {
                None => PersistentState::default(),
                Some(bytes) => PersistentState::decode(&bytes).map_err(|_| StatusCode::Other)?,
            };
            if let Some(legacy) = state.legacy_pin.take() {
                self.keystore.set_pin(&legacy.hash, legacy.retries)?;
                self.keystore
                    .write_state(StateSlot::Authenticator, &state.encode())?;
            }
            self.persistent = Some(state);
        }
        Ok(self.persistent.as_ref().expect("loaded above"))
    }

    /// Whether a PIN is set (the keystore holds it; an older state moves into it first).
    pub(crate) fn pin_is_set(&mut self) -> Result<bool, StatusCode> {
        self.state()?;
        Ok(self.keystore.pin_retries()?.is_some())
    }

    /// The PIN retries left; 0 without a PIN.
    pub(crate) fn pin_retries(&mut self) -> Result<u8, StatusCode> {
        self.state()?;
        Ok(self.keystore.pin_retries()?.unwrap_or(MAX_PIN_RETRIES))
    }

    /// Writes `state` durably, then makes it the current one: an answer built after this
    /// call never claims more than what survives a crash.
    pub(crate) fn save_state(&mut self, state: PersistentState) -> Result<(), StatusCode> {
        // Drop the cache first: if the write fails, the next request reads what is on disk.
        self.persistent = None;
        self.keystore
            .write_state(StateSlot::Authenticator, &state.encode())?;
        self.persistent = Some(state);
        Ok(())
    }

    /// Changes the persistent state with `change` and saves it.
    pub(crate) fn update_state(
        &mut self,
        change: impl FnOnce(&mut PersistentState),
    ) -> Result<(), StatusCode> {
        let mut state = self.state()?.clone();
        change(&mut state);
        self.save_state(state)
    }

    /// The persistentPinUvAuthToken, with the device identifier and the credential store state
    /// that getInfo encrypts under it: each is drawn (and saved) when first needed, by getInfo
    /// or a pcmr grant, as a hardware key has its token from initialization on. A PIN change,
    /// forcePINChange or a reset removes the token, so the next one is another.
    pub(crate) fn persistent_token(&mut self) -> Result<Secret<PERSISTENT_TOKEN_LEN>, StatusCode> {
        let state = self.state()?;
        if let (Some(token), Some(_), Some(_)) = (
            &state.persistent_token,
            &state.device_identifier,
            &state.cred_store_state,
        ) {
            return Ok(token.clone());
        }
        let mut state = state.clone();
        let rng = &mut self.rng;
        state
            .device_identifier
            .get_or_insert_with(|| Secret::random(|b| rng.fill_bytes(b)));
        state
            .cred_store_state
            .get_or_insert_with(|| Secret::random(|b| rng.fill_bytes(b)));
        let token = state
            .persistent_token
            .get_or_insert_with(|| Secret::random(|b| rng.fill_bytes(b)))
            .clone();
        self.save_state(state)?;
        Ok(token)
    }

    /// Before a discoverable credential is created, replaced or deleted, or its user entity
    /// changes: a new credential store state (getInfo encCredStoreState, CTAP 2.3 §6.4), once
    /// one exists (before, no platform can hold a view to compare). Written ahead of the change, so a crash in between over-reports (a
    /// platform enumerates again for nothing) and never under-reports.
    pub(crate) fn credential_store_changing(&mut self) -> Result<(), StatusCode> {
        if self.state()?.cred_store_state.is_none() {
            return Ok(());
        }
        let rng = &mut self.rng;
        let fresh = Secret::random(|b| rng.fill_bytes(b));
        self.update_state(|state| state.cred_store_state = Some(fresh))
    }

    /// "Protected by some form of user verification": a PIN is set, or built-in UV exists.
    pub(crate) fn is_protected(&mut self) -> Result<bool, StatusCode> {
        let uv = self.presence.built_in_uv();
        Ok(uv || self.pin_is_set()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn firmware_version_packs_semver_into_bytes() {
        assert_eq!(firmware_version_from("1.2.3"), 0x010203);
        assert_eq!(firmware_version_from("0.1.0"), 0x000100);
    }
}
