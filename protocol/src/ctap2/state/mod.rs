//! The runtime state that spans commands, and the one rule that clears it.
//!
//! Four things outlive the command that made them: the credentials a getAssertion left for
//! getNextAssertion (§6.3), the RPs or credentials an enumerate*Begin left for its GetNext
//! subcommands (§6.8), a large-blob array arriving in fragments (§6.10), and the
//! pinUvAuthToken in use (§6.5.2.1). Each belongs to the [`Origin`] that began it (a CTAPHID
//! channel of one transport link, or a hybrid session), and lives here, nowhere else.
//!
//! **The clearing rule.** At most one continuation is pending at a time. Every command, from
//! anywhere, first takes it out of the state ([`RuntimeState::begin_command`]); only the
//! command that continues it, from the same origin, within [`CONTINUATION_WINDOW_MS`] of the
//! previous step, gets it back, and puts it back if something is left. So a continuation is
//! cleared by:
//! - any command of its own origin that does not continue it (as the spec asks: "any other
//!   command" ends getNextAssertion and the enumerations);
//! - any command from another origin (another channel, another UDP peer, another transport, a
//!   hybrid peer); a continuation command from there is answered CTAP2_ERR_NOT_ALLOWED;
//! - CTAPHID_INIT on its channel, or the end of its hybrid session ([`RuntimeState::forget`]);
//! - a step that fails (a wrong MAC on a fragment, say): the operation starts over;
//! - authenticatorReset ([`RuntimeState::clear`]);
//! - 30 seconds without a step (§6.3's getNextAssertion timer, applied to all four).
//!
//! The pinUvAuthToken follows the same rule: it is handed to one origin, and a command from
//! any other origin, INIT on its channel, or a reset ends its use (stopUsingPinUvAuthToken);
//! the token's own timers (§6.5.2.1) are kept by [`crate::ctap2::pin::token::TokenState`]. A
//! token is a secret that only its platform knows, so this costs a platform nothing it could
//! lose to another program; what it gains is that no state a platform built up can be spent by
//! anybody else, whatever they know.

use crate::origin::Origin;
use continuation::Continuation;

/// How long a continuation waits for its next step (§6.3: 30 seconds).
pub const CONTINUATION_WINDOW_MS: u64 = 30_000;

/// What a command finds when it begins.
pub(crate) enum Found {
    /// Nothing pending, or what was pending expired.
    Nothing,
    /// This origin's own continuation (taken out: put it back with [`RuntimeState::leave`]).
    Own(Continuation),
    /// Another origin's continuation, now cleared.
    Foreign,
}

struct Pending {
    origin: Origin,
    /// When the last step happened: the window starts here.
    step_ms: u64,
    continuation: Continuation,
}

/// See the module documentation.
#[derive(Default)]
pub struct RuntimeState {
    pending: Option<Pending>,
    /// The origin the pinUvAuthToken in use was handed to.
    token_holder: Option<Origin>,
}

impl RuntimeState {
    /// Every command starts here: the pending continuation leaves the state, and comes back
    /// only to its own origin in time. Returns whether the pinUvAuthToken in use must end
    /// (it belongs to another origin).
    pub(crate) fn begin_command(&mut self, origin: Origin, now_ms: u64) -> (Found, bool) {
        let found = match self.pending.take() {
            None => Found::Nothing,
            Some(pending) if pending.origin != origin => Found::Foreign,
            Some(pending) if now_ms.saturating_sub(pending.step_ms) > CONTINUATION_WINDOW_MS => {
                Found::Nothing
            }
            Some(pending) => Found::Own(pending.continuation),
        };
        let end_token = self.token_holder.is_some_and(|holder| holder != origin);
        if end_token {
            self.token_holder = None;
        }
        (found, end_token)
    }

    /// Leaves `continuation` for `origin`'s next command (the window restarts now).
    pub(crate) fn leave(&mut self, origin: Origin, continuation: Continuation, now_ms: u64) {
        self.pending = Some(Pending {
            origin,
            step_ms: now_ms,
            continuation,
        });
    }

    /// The pinUvAuthToken was just handed to `origin`.
    pub(crate) fn token_handed_to(&mut self, origin: Origin) {
        self.token_holder = Some(origin);
    }

    /// CTAPHID_INIT on `origin`'s channel, or its hybrid session ended: its continuation goes.
    /// Returns whether it held the pinUvAuthToken (whose use must then end).
    pub(crate) fn forget(&mut self, origin: Origin) -> bool {
        if self.pending.as_ref().is_some_and(|p| p.origin == origin) {
            self.pending = None;
        }
        let held = self.token_holder == Some(origin);
        if held {
            self.token_holder = None;
        }
        held
    }

    /// authenticatorReset: nothing survives.
    pub(crate) fn clear(&mut self) {
        *self = RuntimeState::default();
    }

    /// Whether anything is pending (for tests and the fuzzer's model).
    pub fn has_pending(&self) -> bool {
        self.pending.is_some()
    }
}

pub mod continuation;
pub mod persistent;
#[cfg(test)]
mod rules;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::origin::udp_link;
    use std::collections::VecDeque;

    const A: Origin = Origin::usb(1);
    const B: Origin = Origin::usb(2);

    fn rps() -> Continuation {
        Continuation::Rps(VecDeque::from([("x.org".to_owned(), [0; 32])]))
    }

    #[test]
    fn a_continuation_comes_back_only_to_its_origin_in_time() {
        let mut state = RuntimeState::default();
        state.leave(A, rps(), 0);
        assert!(matches!(state.begin_command(A, 30_000).0, Found::Own(_)));
        assert!(!state.has_pending(), "taken out by the command");

        state.leave(A, rps(), 0);
        assert!(matches!(state.begin_command(B, 1).0, Found::Foreign));
        assert!(matches!(state.begin_command(A, 2).0, Found::Nothing));

        state.leave(A, rps(), 0);
        assert!(matches!(state.begin_command(A, 30_001).0, Found::Nothing));
    }

    #[test]
    fn the_same_channel_number_of_another_udp_peer_is_another_origin() {
        let mut state = RuntimeState::default();
        let mine = Origin::udp(udp_link([127, 0, 0, 1], 5000), 9);
        let theirs = Origin::udp(udp_link([127, 0, 0, 1], 5001), 9);
        state.leave(mine, rps(), 0);
        assert!(matches!(state.begin_command(theirs, 0).0, Found::Foreign));
    }

    #[test]
    fn the_token_ends_at_a_command_from_elsewhere_not_from_its_holder() {
        let mut state = RuntimeState::default();
        state.token_handed_to(A);
        assert!(!state.begin_command(A, 0).1);
        assert!(state.begin_command(B, 0).1);
        assert!(!state.begin_command(A, 0).1, "ended once, nothing left");
    }

    #[test]
    fn forgetting_a_channel_clears_only_what_it_began() {
        let mut state = RuntimeState::default();
        state.leave(A, rps(), 0);
        state.token_handed_to(A);
        assert!(!state.forget(B));
        assert!(state.has_pending());
        assert!(state.forget(A));
        assert!(!state.has_pending());
    }
}
