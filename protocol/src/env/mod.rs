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
