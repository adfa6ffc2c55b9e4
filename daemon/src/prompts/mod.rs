//! Asking the person at the desktop: the broker that carries prompts to the agents, the
//! presence gesture (an agent's Allow or the owner's finger), and built-in user verification
//! (PAM, fprintd).

pub mod broker;
pub mod fingerprint;
pub mod hub;
pub mod presence;
pub mod uv;

pub use broker::{Broker, PromptSpec};
