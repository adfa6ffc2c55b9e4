//! Built-in user verification: the daemon checks that the person at the desktop is the key's
//! owner, through PAM (their login password by default, or a fingerprint with pam_fprintd).
//!
//! The desktop agent only relays PAM's questions ("Password: ") to the person and their
//! answers back; the daemon runs PAM itself, as root, so another program of the same user
//! cannot claim UV without the secret. A wrong secret is a failed verification (the
//! authenticator spends one uvRetry); a verifier that cannot run spends none.

use std::ffi::{CStr, CString};
use std::sync::atomic::AtomicBool;

use pam_client2::{ConversationHandler, ErrorCode, Flag};
use protocol::env::{uv_modality, UvOutcome};
use tracing::{info, warn};

use crate::owner::OwnerPolicy;
use crate::prompts::broker::{SecretAnswer, UvQuestion};
use crate::prompts::{Broker, PromptSpec};

/// How the person proves who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UvMethod {
    /// Their login password, checked by PAM (dist/pam.d/fido2d).
    Pam,
    /// A fingerprint, matched by PAM's pam_fprintd (dist/pam.d/fido2d-fingerprint).
    Fingerprint,
}

impl UvMethod {
    pub fn name(self) -> &'static str {
        match self {
            UvMethod::Pam => "pam",
            UvMethod::Fingerprint => "fingerprint",
        }
    }

    /// The PAM service used unless one is configured.
    pub fn default_service(self) -> &'static str {
        match self {
            UvMethod::Pam => "fido2d",
            UvMethod::Fingerprint => "fido2d-fingerprint",
        }
    }

    pub fn modality(self) -> u32 {
        match self {
            UvMethod::Pam => uv_modality::PASSCODE_EXTERNAL,
            UvMethod::Fingerprint => uv_modality::FINGERPRINT_INTERNAL,
        }
    }
}

pub struct UserVerifier {
    pub method: UvMethod,
    pub service: String,
    pub broker: Broker,
    pub owner: OwnerPolicy,
}

impl UserVerifier {
    /// Runs one PAM authentication of the owner, asking through the agents.
    pub fn verify(&self, spec: PromptSpec, cancelled: &AtomicBool) -> UvOutcome {
        let Some(user) = self.owner.owner_uid().and_then(user_name) else {
            warn!("user verification impossible: nobody owns the key now (no user at the seat)");
            return UvOutcome::Unavailable;
        };
        let conversation = AgentConversation {
            broker: &self.broker,
            spec,
            cancelled,
            ended: None,
        };
        let mut context = match pam_client2::Context::new(&self.service, Some(&user), conversation)
        {
            Ok(context) => context,
            Err(err) => {
                warn!(
                    service = self.service,
                    "user verification impossible: PAM: {err}"
                );
                return UvOutcome::Unavailable;
            }
        };
        let result = context
            .authenticate(Flag::DISALLOW_NULL_AUTHTOK)
            .and_then(|()| context.acct_mgmt(Flag::NONE));
        let ended = context.conversation_mut().ended.take();
        let outcome = match (result, ended) {
            (Ok(()), _) => UvOutcome::Verified,
            (Err(_), Some(ended)) => ended,
            (Err(err), None) => match err.code() {
                ErrorCode::AUTH_ERR
                | ErrorCode::USER_UNKNOWN
                | ErrorCode::MAXTRIES
                | ErrorCode::CRED_INSUFFICIENT => UvOutcome::Failed,
                _ => {
                    warn!(
                        service = self.service,
                        user, "user verification impossible: PAM: {err}"
                    );
                    UvOutcome::Unavailable
                }
            },
        };
        info!(
            method = self.method.name(),
            user,
            ?outcome,
            "user verification"
        );
        outcome
    }
}

/// PAM's questions go to the agents; their answers come back.
struct AgentConversation<'a> {
    broker: &'a Broker,
    spec: PromptSpec,
    cancelled: &'a AtomicBool,
    /// Why the conversation was abandoned (the person refused, the browser cancelled, ...).
    ended: Option<UvOutcome>,
}

impl AgentConversation<'_> {
    fn ask(&mut self, prompt: &CStr, echo: bool) -> Result<CString, ErrorCode> {
        let question = UvQuestion {
            message: prompt.to_string_lossy().into_owned(),
            echo,
        };
        let ended = match self
            .broker
            .ask_secret(self.spec.clone(), question, self.cancelled)
        {
            // A NUL cannot be typed in a password; refuse rather than truncate.
            SecretAnswer::Given(secret) => {
                return CString::new(secret.expose()).map_err(|_| ErrorCode::CONV_ERR)
            }
            SecretAnswer::Refused => UvOutcome::Denied,
            SecretAnswer::NoAgent => UvOutcome::Denied,
            SecretAnswer::TimedOut => UvOutcome::TimedOut,
            SecretAnswer::Cancelled => UvOutcome::Cancelled,
        };
        self.ended = Some(ended);
        Err(ErrorCode::CONV_ERR)
    }
}

impl ConversationHandler for AgentConversation<'_> {
    fn prompt_echo_on(&mut self, prompt: &CStr) -> Result<CString, ErrorCode> {
        self.ask(prompt, true)
    }

    fn prompt_echo_off(&mut self, prompt: &CStr) -> Result<CString, ErrorCode> {
        self.ask(prompt, false)
    }

    fn text_info(&mut self, message: &CStr) {
        self.broker.tell(message.to_string_lossy().into_owned());
    }

    fn error_msg(&mut self, message: &CStr) {
        self.broker.tell(message.to_string_lossy().into_owned());
    }
}

/// The login name of `uid`, from /etc/passwd.
fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    name_of(&passwd, uid)
}

fn name_of(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.get(2)?.parse::<u32>().ok()? == uid).then(|| fields[0].to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_owner_name_comes_from_passwd() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/sh\n";

        assert_eq!(name_of(passwd, 1000).as_deref(), Some("alice"));
        assert_eq!(name_of(passwd, 0).as_deref(), Some("root"));
        assert_eq!(name_of(passwd, 7), None);
    }

    #[test]
    fn each_method_has_its_service_and_modality() {
        assert_eq!(UvMethod::Pam.default_service(), "fido2d");
        assert_eq!(
            UvMethod::Fingerprint.default_service(),
            "fido2d-fingerprint"
        );
        assert_eq!(UvMethod::Pam.modality(), 0x800);
        assert_eq!(UvMethod::Fingerprint.modality(), 0x2);
    }
}
