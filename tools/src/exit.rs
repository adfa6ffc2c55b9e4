//! Exit codes, documented in `fido2ctl --help` and the README:
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | success |
//! | 1 | the operation failed (the key said no, a wrong PIN, ...) |
//! | 2 | wrong usage (clap) |
//! | 3 | fido2d is not running, or the control socket failed |
//! | 4 | refused: this user may not use the key |
//! | 5 | no security key found |

use std::fmt;
use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Failed = 1,
    Daemon = 3,
    Refused = 4,
    NoKey = 5,
}

/// An error that ends the program with a message and an exit code.
#[derive(Debug)]
pub struct Failure {
    pub kind: Kind,
    pub message: String,
}

impl Failure {
    pub fn failed(message: impl Into<String>) -> Self {
        Failure {
            kind: Kind::Failed,
            message: message.into(),
        }
    }

    pub fn daemon(message: impl Into<String>) -> Self {
        Failure {
            kind: Kind::Daemon,
            message: message.into(),
        }
    }

    pub fn refused(message: impl Into<String>) -> Self {
        Failure {
            kind: Kind::Refused,
            message: message.into(),
        }
    }

    pub fn no_key(message: impl Into<String>) -> Self {
        Failure {
            kind: Kind::NoKey,
            message: message.into(),
        }
    }

    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.kind as u8)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}
