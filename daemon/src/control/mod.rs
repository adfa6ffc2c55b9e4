//! The control socket (`/run/fido2d/control.sock`): the desktop agent answers presence prompts
//! through it, and `fido2ctl` asks for status. Protocol: `protocol::control` (JSON lines).

pub mod broker;
mod lines;
pub mod owner;
pub mod server;

pub use broker::{Broker, PromptSpec};
pub use owner::OwnerPolicy;
pub use server::{ControlServer, StatusBoard};
