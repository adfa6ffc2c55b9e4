//! What `fido2ctl status` reports, shared: the daemon fills it in at start, the authenticator
//! thread keeps the keystore's part current, the control socket reads it.

use std::sync::{Arc, Mutex};

use protocol::control::Status;

pub type StatusBoard = Arc<Mutex<Status>>;
