//! Prompts on the terminal: `fido2ctl agent --terminal`.

use protocol::control::{Decision, Secret, WithdrawReason};
use tokio::sync::mpsc;
use zeroize::Zeroizing;

use super::{Frontend, FrontendEvent, Prompt, PromptKind};
use crate::exit::Failure;

pub struct TerminalFrontend {
    lines: mpsc::UnboundedReceiver<Zeroizing<String>>,
    /// The prompt a line typed now answers, and whether it asks for a secret.
    current: Option<(u64, bool)>,
}

impl TerminalFrontend {
    pub fn new() -> Self {
        let (tx, lines) = mpsc::unbounded_channel();
        // stdin blocks: read it on a thread of its own. Lines may be passwords: zeroized.
        std::thread::spawn(move || {
            while let Ok(Some(line)) = crate::secret_input::read_line() {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        TerminalFrontend {
            lines,
            current: None,
        }
    }
}

impl Frontend for TerminalFrontend {
    async fn show(&mut self, prompt: &Prompt) -> Result<(), Failure> {
        // Lines typed before the question must not answer it.
        while self.lines.try_recv().is_ok() {}
        let (title, body) = prompt.text();
        match &prompt.kind {
            PromptKind::Allow => eprintln!("\n>>> {title}\n>>> {body} [y/N]"),
            PromptKind::Secret { message, .. } => {
                eprintln!("\n>>> {title}\n>>> {body}\n>>> (an empty line refuses)");
                eprint!(">>> {message}");
            }
        }
        self.current = Some((prompt.id, matches!(prompt.kind, PromptKind::Secret { .. })));
        if matches!(prompt.kind, PromptKind::Secret { echo: false, .. }) {
            // On again once the answer is read or the prompt withdrawn.
            crate::secret_input::set_echo(false);
        }
        Ok(())
    }

    async fn withdraw(&mut self, id: u64, reason: WithdrawReason) -> Result<(), Failure> {
        if self.current.is_some_and(|(current, _)| current == id) {
            self.current = None;
            crate::secret_input::set_echo(true);
            let why = match reason {
                WithdrawReason::Cancelled => "withdrawn by the browser",
                WithdrawReason::Timeout => "not answered in time: refused",
                WithdrawReason::Answered => "answered elsewhere",
            };
            eprintln!(">>> {why}");
        }
        Ok(())
    }

    async fn tell(&mut self, message: &str) -> Result<(), Failure> {
        eprintln!(">>> fido2d: {message}");
        Ok(())
    }

    async fn next_event(&mut self) -> Option<FrontendEvent> {
        loop {
            let line = self.lines.recv().await?;
            let Some((id, secret)) = self.current.take() else {
                continue;
            };
            let answer = line.as_str();
            if secret {
                crate::secret_input::set_echo(true);
                eprintln!();
                let response = (!answer.is_empty()).then(|| Secret::new(answer.to_owned()));
                return Some(FrontendEvent::Secret { id, response });
            }
            let yes = matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes");
            let decision = if yes { Decision::Allow } else { Decision::Deny };
            return Some(FrontendEvent::Answer { id, decision });
        }
    }
}
