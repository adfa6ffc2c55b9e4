//! `fido2ctl agent`: answers fido2d's presence prompts in the person's session, as desktop
//! notifications with Allow/Deny buttons, or on the terminal.

mod desktop;
mod pinentry;
mod terminal;

use std::path::Path;

use protocol::control::{
    Decision, Message, PromptOperation, RequestTransport, Role, Secret, WithdrawReason,
};
use protocol::display;

use crate::control_client::ControlConnection;
use crate::exit::Failure;

pub use desktop::DesktopFrontend;
pub use terminal::TerminalFrontend;

/// A prompt as the agent shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub id: u64,
    pub operation: PromptOperation,
    pub rp_id: Option<String>,
    pub user_name: Option<String>,
    pub transport: RequestTransport,
    pub timeout_ms: u64,
    pub kind: PromptKind,
}

/// Allow/Deny, or a question of the daemon's verifier (built-in UV: the login password).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromptKind {
    Allow,
    Secret {
        /// What PAM asks, e.g. "Password: ".
        message: String,
        /// Whether the answer may be shown as typed.
        echo: bool,
    },
}

impl Prompt {
    /// A short title and a sentence for the person.
    pub fn text(&self) -> (String, String) {
        // The daemon cleans what a site chose; cleaning again costs nothing and keeps this
        // agent safe with any daemon.
        let site = self
            .rp_id
            .as_deref()
            .filter(|rp| !rp.is_empty())
            .map(display::site);
        let account = self
            .user_name
            .as_deref()
            .map(|user| format!(" as {}", display::name(user)))
            .unwrap_or_default();
        let (title, action) = match self.operation {
            PromptOperation::Register => (
                "Register this security key?",
                format!("create a new credential{account}"),
            ),
            PromptOperation::SignIn => (
                "Sign in with this security key?",
                format!("sign in{account}"),
            ),
            PromptOperation::ConfirmExcluded => (
                "This security key is already registered",
                "confirm that this key is already registered".to_owned(),
            ),
            PromptOperation::Reset => (
                "RESET the security key?",
                "ERASE EVERY CREDENTIAL on this key".to_owned(),
            ),
            PromptOperation::Selection => ("Use this security key?", "select this key".to_owned()),
            PromptOperation::Other => ("Allow the security key?", "use the key".to_owned()),
        };
        let who = match (site, self.transport) {
            // Any program of this computer can send a request, not only a browser.
            (Some(site), RequestTransport::Usb) => {
                format!("{site} (from a program on this computer)")
            }
            (Some(site), RequestTransport::Hybrid) => {
                format!("{site} (from ANOTHER computer, through the hybrid transport)")
            }
            (None, RequestTransport::Usb) => "A program on this computer".to_owned(),
            (None, RequestTransport::Hybrid) => "Another computer (hybrid transport)".to_owned(),
        };
        let seconds = self.timeout_ms.div_ceil(1000);
        match &self.kind {
            PromptKind::Allow => (
                format!("fido2d: {title}"),
                format!("{who} asks to {action}. Allow within {seconds} s?"),
            ),
            PromptKind::Secret { message, .. } => (
                "fido2d: verify that it is you".to_owned(),
                format!(
                    "{who} asks to {action}, with user verification. fido2d checks your \
                     login: {} (within {seconds} s)",
                    message.trim_end()
                ),
            ),
        }
    }
}

/// Something the person did.
#[derive(Debug, PartialEq, Eq)]
pub enum FrontendEvent {
    Answer {
        id: u64,
        decision: Decision,
    },
    /// The answer to a verification question; `None` when the person refused.
    Secret {
        id: u64,
        response: Option<Secret>,
    },
}

/// Where prompts are shown.
#[allow(async_fn_in_trait)] // used with concrete types only
pub trait Frontend {
    async fn show(&mut self, prompt: &Prompt) -> Result<(), Failure>;
    async fn withdraw(&mut self, id: u64, reason: WithdrawReason) -> Result<(), Failure>;
    /// Information of the verifier ("place your finger on the reader").
    async fn tell(&mut self, message: &str) -> Result<(), Failure>;
    /// The next answer; `None` when the frontend can give no more (stdin closed).
    async fn next_event(&mut self) -> Option<FrontendEvent>;
}

/// Connects as an agent and relays prompts until the daemon goes away.
pub async fn run(socket: &Path, mut frontend: impl Frontend) -> Result<(), Failure> {
    let mut connection = ControlConnection::connect(socket, Role::Agent).await?;
    eprintln!(
        "fido2ctl agent: connected to fido2d at {}",
        socket.display()
    );
    loop {
        tokio::select! {
            message = connection.recv() => match message? {
                Some(Message::Prompt { id, operation, rp_id, user_name, transport, timeout_ms }) => {
                    let kind = PromptKind::Allow;
                    let prompt = Prompt { id, operation, rp_id, user_name, transport, timeout_ms, kind };
                    frontend.show(&prompt).await?;
                }
                Some(Message::UvPrompt { id, message, echo, operation, rp_id, user_name, transport, timeout_ms }) => {
                    let kind = PromptKind::Secret { message, echo };
                    let prompt = Prompt { id, operation, rp_id, user_name, transport, timeout_ms, kind };
                    frontend.show(&prompt).await?;
                }
                Some(Message::UvInfo { message, .. }) => frontend.tell(&message).await?,
                // Another program answers prompts too: the person must know.
                Some(Message::Notice { message }) => {
                    frontend.tell(&display::clean(&message, 300)).await?
                }
                Some(Message::Withdraw { id, reason }) => frontend.withdraw(id, reason).await?,
                Some(Message::Error { message }) => eprintln!("fido2ctl agent: fido2d says: {message}"),
                Some(_) => {}
                None => return Err(Failure::daemon("fido2d closed the connection (stopped?)")),
            },
            event = frontend.next_event() => match event {
                Some(FrontendEvent::Answer { id, decision }) => {
                    connection.send(&Message::Answer { id, decision }).await?;
                }
                Some(FrontendEvent::Secret { id, response }) => {
                    connection.send(&Message::UvReply { id, response }).await?;
                }
                None => return Ok(()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompt(operation: PromptOperation, transport: RequestTransport) -> Prompt {
        Prompt {
            id: 1,
            operation,
            rp_id: Some("example.com".into()),
            user_name: Some("alice".into()),
            transport,
            timeout_ms: 29_500,
            kind: PromptKind::Allow,
        }
    }

    #[test]
    fn the_prompt_names_the_site_the_account_and_where_it_comes_from() {
        let (title, body) = prompt(PromptOperation::SignIn, RequestTransport::Usb).text();

        assert_eq!(title, "fido2d: Sign in with this security key?");
        assert_eq!(
            body,
            "example.com (from a program on this computer) asks to sign in as alice. Allow within 30 s?"
        );
        let (_, body) = prompt(PromptOperation::Register, RequestTransport::Hybrid).text();
        assert!(body.contains("ANOTHER computer"), "{body}");
        assert!(body.contains("create a new credential as alice"), "{body}");
    }

    #[test]
    fn a_sites_escape_sequences_and_bidi_never_reach_the_person() {
        let mut hostile = prompt(PromptOperation::SignIn, RequestTransport::Usb);
        hostile.rp_id = Some("x\u{1b}]52;c;aGk=\u{7}.com\u{202e}".repeat(500));
        hostile.user_name = Some("\u{9b}2J".repeat(3000));
        let (title, body) = hostile.text();
        for text in [&title, &body] {
            assert!(
                !text.chars().any(|c| c.is_control() || c == '\u{202e}'),
                "{text:?}"
            );
        }
        assert!(
            body.chars().count() < 400,
            "bounded: {} chars",
            body.chars().count()
        );
    }

    #[test]
    fn a_reset_prompt_says_what_is_lost() {
        let mut reset = prompt(PromptOperation::Reset, RequestTransport::Usb);
        reset.rp_id = None;
        reset.user_name = None;

        let (title, body) = reset.text();

        assert!(title.contains("RESET"));
        assert!(body.contains("ERASE EVERY CREDENTIAL"), "{body}");
        assert!(body.starts_with("A program on this computer"), "{body}");
    }

    #[test]
    fn a_verification_prompt_says_the_daemon_checks_the_login() {
        let mut uv = prompt(PromptOperation::SignIn, RequestTransport::Usb);
        uv.kind = PromptKind::Secret {
            message: "Password: ".into(),
            echo: false,
        };

        let (title, body) = uv.text();

        assert_eq!(title, "fido2d: verify that it is you");
        assert!(body.contains("example.com"), "{body}");
        assert!(
            body.contains("fido2d checks your login: Password:"),
            "{body}"
        );
    }
}
