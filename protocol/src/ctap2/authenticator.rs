//! The authenticator: one state machine that answers CTAP2 (CTAPHID_CBOR) and CTAP1/U2F
//! (CTAPHID_MSG) requests with the same credentials.
//!
//! It lives with CTAP2 because a CTAP2 authenticator is what it is: CTAP1 is the older
//! protocol it also speaks (CTAP 2.1 §10), so `ctap1` adds `process_apdu` on top of it and
//! nothing here knows of CTAP1.

use crate::ctap2::state::{Continuation, Found, RuntimeState};
use crate::ctap2::{PersistentState, PinSession, StatusCode};
use crate::env::{
    Clock, Env, Keystore, Operation, Presence, PresenceOutcome, PresenceRequest, Rng,
};
use crate::origin::Origin;

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
    /// Answers a CTAPHID_CBOR message from `origin`: command byte + CBOR parameters in,
    /// status byte + CBOR response out.
    pub fn process_cbor(&mut self, origin: Origin, request: &[u8]) -> Vec<u8> {
        self.begin_command(origin);
        super::process(self, request)
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn firmware_version_packs_semver_into_bytes() {
        assert_eq!(firmware_version_from("1.2.3"), 0x010203);
        assert_eq!(firmware_version_from("0.1.0"), 0x000100);
    }
}
