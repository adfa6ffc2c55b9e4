//! The control socket (`/run/fido2d/control.sock`): the desktop agent answers presence prompts
//! through it, and `fido2ctl` asks for status. Protocol: `protocol::control` (JSON lines).

mod lines;
pub mod server;

pub use server::{ControlServer, ReplugReply};
