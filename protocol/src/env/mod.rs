//! The authenticator's view of the world: everything it needs and cannot compute itself.
//!
//! The daemon passes real implementations (TPM or file keystore, desktop prompts, the monotonic
//! clock, the OS random generator); tests, fuzzers and benches pass deterministic ones.

mod clock;
mod credential_extras;
mod keystore;
mod presence;
mod rng;

pub use clock::Clock;
pub use credential_extras::{CredProtect, CredentialExtras, HmacSecret, MalformedExtras};
pub use keystore::{
    Algorithm, Credential, KeyMaterial, Keystore, KeystoreError, NewCredential, PinCheck,
    PublicKey, RelyingParty, StateSlot, UserEntity, MAX_PIN_RETRIES,
};
pub use presence::{uv_modality, Operation, Presence, PresenceOutcome, PresenceRequest, UvOutcome};
pub use rng::Rng;

/// The four parts of the world an authenticator runs in, named once: `Authenticator<E>`
/// instead of four type parameters on every `impl`.
///
/// Any tuple `(keystore, presence, clock, rng)` of implementations is an environment, so a
/// caller names its parts and nothing else (`Authenticator<(FileKeystore, Prompts,
/// MonotonicClock, OsRng)>`).
pub trait Env {
    type Keystore: Keystore;
    type Presence: Presence;
    type Clock: Clock;
    type Rng: Rng;
}

impl<K: Keystore, P: Presence, C: Clock, R: Rng> Env for (K, P, C, R) {
    type Keystore = K;
    type Presence = P;
    type Clock = C;
    type Rng = R;
}
