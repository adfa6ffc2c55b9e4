/// What the person is asked to allow; shown by the desktop prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// authenticatorMakeCredential or U2F register: create a credential.
    Register,
    /// authenticatorGetAssertion or U2F authenticate: sign in.
    Authenticate,
    /// A credential in the excludeList already exists: the person confirms before the platform
    /// is told so (CTAP 2.1 makeCredential step 4).
    ConfirmExcluded,
    /// authenticatorReset: erase every credential.
    Reset,
    /// authenticatorSelection: "is this the key you want to use?".
    Selection,
    /// Built-in user verification for a pinUvAuthToken that manages the key rather than
    /// registering or signing in: credential management, authenticatorConfig, large-blob
    /// writes (getPinUvAuthTokenUsingUvWithPermissions without the mc or ga permission).
    ManageKey,
}

/// A request for a user-presence gesture.
#[derive(Debug, Clone, Copy)]
pub struct PresenceRequest<'a> {
    pub operation: Operation,
    /// The relying party, when the operation concerns one.
    pub rp_id: Option<&'a str>,
    /// The account name, when the request or the stored credential tells it.
    pub user_name: Option<&'a str>,
}

/// How a presence request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresenceOutcome {
    Approved,
    /// The person said no.
    Denied,
    /// Nobody answered in time. (Nobody who can be asked at all, e.g. no prompt agent, is a
    /// refusal: `Denied`.)
    TimedOut,
    /// The platform withdrew the request (CTAPHID_CANCEL).
    Cancelled,
}

/// How a built-in user verification ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UvOutcome {
    /// The person proved who they are. The person acted to do so, so this is also user
    /// presence: no second gesture is asked for the same request.
    Verified,
    /// The secret (login password, fingerprint) did not match: one of the uvRetries is spent.
    Failed,
    /// The person said no, or closed the prompt.
    Denied,
    /// Nobody answered in time. (Nobody who can be asked at all, e.g. no agent, is `Denied`.)
    TimedOut,
    /// The platform withdrew the request (CTAPHID_CANCEL).
    Cancelled,
    /// The verifier itself failed (PAM misconfigured, fprintd gone): no retry is spent.
    Unavailable,
}

/// FIDO registry `uvModality` values (FIDO Registry of Predefined Values §3.1) that built-in UV
/// may report in getInfo.
pub mod uv_modality {
    /// A fingerprint, matched on this machine.
    pub const FINGERPRINT_INTERNAL: u32 = 0x0000_0002;
    /// A passcode (the person's login password), typed outside the authenticator (in the
    /// desktop agent) and checked by it.
    pub const PASSCODE_EXTERNAL: u32 = 0x0000_0800;
}

/// Asks the person at the machine for a gesture. Implementations block until an outcome is known.
pub trait Presence {
    fn request_presence(&mut self, request: &PresenceRequest<'_>) -> PresenceOutcome;

    /// Whether this environment can verify the person itself (their login password through
    /// PAM, a fingerprint): CTAP's "built-in user verification". Without it (the default) the
    /// key behaves as a hardware key with a PIN and no biometrics: getInfo reports no "uv"
    /// option, "uv": true is an invalid option, and getPinUvAuthTokenUsingUvWithPermissions
    /// and getUVRetries are unsupported subcommands. The desktop UX plugs in here.
    fn built_in_uv(&self) -> bool {
        false
    }

    /// The `uvModality` getInfo reports for built-in UV (see [`uv_modality`]); only asked when
    /// [`Presence::built_in_uv`] is true.
    fn uv_modality(&self) -> u32 {
        0
    }

    /// Performs built-in user verification for `request` (the person sees which operation and
    /// site it is for). Blocks until an outcome. Only called when [`Presence::built_in_uv`] is
    /// true; the authenticator keeps the uvRetries count, this only verifies. One call is one
    /// attempt; after a [`UvOutcome::Failed`] the same request may come again at once (a
    /// makeCredential/getAssertion with "uv": true tries up to three times), so a prompt may
    /// say the last secret was wrong.
    fn verify_user(&mut self, request: &PresenceRequest<'_>) -> UvOutcome {
        let _ = request;
        UvOutcome::Unavailable
    }
}
