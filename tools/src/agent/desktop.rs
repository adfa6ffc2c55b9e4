//! Prompts as desktop notifications with Allow/Deny buttons (org.freedesktop.Notifications on
//! the session bus).

use std::collections::HashMap;

use futures_util::StreamExt as _;
use protocol::control::{Decision, Secret, WithdrawReason};
use tokio::sync::mpsc;
use zbus::zvariant::Value;

use super::pinentry;
use super::{Frontend, FrontendEvent, Prompt, PromptKind};
use crate::exit::Failure;

const ALLOW: &str = "allow";
const DENY: &str = "deny";
/// NotificationClosed reasons (Desktop Notifications Specification).
const CLOSED_BY_USER: u32 = 2;
/// Notification urgency hint: critical, so it stays until answered.
const URGENCY_CRITICAL: u8 = 2;

#[zbus::proxy(
    interface = "org.freedesktop.Notifications",
    default_service = "org.freedesktop.Notifications",
    default_path = "/org/freedesktop/Notifications"
)]
trait Notifications {
    #[allow(clippy::too_many_arguments)]
    fn notify(
        &self,
        app_name: &str,
        replaces_id: u32,
        app_icon: &str,
        summary: &str,
        body: &str,
        actions: &[&str],
        hints: HashMap<&str, Value<'_>>,
        expire_timeout: i32,
    ) -> zbus::Result<u32>;

    fn close_notification(&self, id: u32) -> zbus::Result<()>;

    fn get_capabilities(&self) -> zbus::Result<Vec<String>>;

    #[zbus(signal)]
    fn action_invoked(&self, id: u32, action_key: String) -> zbus::Result<()>;

    #[zbus(signal)]
    fn notification_closed(&self, id: u32, reason: u32) -> zbus::Result<()>;
}

type SecretResult = (u64, pinentry::Answer);

pub struct DesktopFrontend {
    proxy: NotificationsProxy<'static>,
    actions: ActionInvokedStream,
    closed: NotificationClosedStream,
    /// Notification id -> prompt id, for the prompts on screen.
    shown: HashMap<u32, u64>,
    /// Whether the server reads the body as markup (it is then escaped).
    markup: bool,
    /// Password dialogs (pinentry) on screen, by prompt id, and where their answers arrive.
    dialogs: HashMap<u64, pinentry::Dialog>,
    secrets_tx: mpsc::UnboundedSender<SecretResult>,
    secrets: mpsc::UnboundedReceiver<SecretResult>,
}

impl DesktopFrontend {
    pub async fn connect() -> Result<Self, Failure> {
        let no_server = |err: zbus::Error| {
            Failure::failed(format!(
                "cannot reach the desktop notification service ({err}); run the agent in a \
                 desktop session, or use `fido2ctl agent --terminal`"
            ))
        };
        let bus = zbus::Connection::session().await.map_err(no_server)?;
        let proxy = NotificationsProxy::new(&bus).await.map_err(no_server)?;
        let capabilities = proxy.get_capabilities().await.map_err(no_server)?;
        if !capabilities.iter().any(|c| c == "actions") {
            return Err(Failure::failed(
                "the desktop notification service cannot show Allow/Deny buttons; use \
                 `fido2ctl agent --terminal`",
            ));
        }
        // A server with body markup reads `<b>`, `&amp;`...: a site's text must not be markup.
        let markup = capabilities.iter().any(|c| c == "body-markup");
        let actions = proxy.receive_action_invoked().await.map_err(no_server)?;
        let closed = proxy
            .receive_notification_closed()
            .await
            .map_err(no_server)?;
        let (secrets_tx, secrets) = mpsc::unbounded_channel();
        Ok(DesktopFrontend {
            proxy,
            actions,
            closed,
            shown: HashMap::new(),
            markup,
            dialogs: HashMap::new(),
            secrets_tx,
            secrets,
        })
    }

    fn dbus_failure(err: zbus::Error) -> Failure {
        Failure::failed(format!("the desktop notification service failed: {err}"))
    }
}

impl DesktopFrontend {
    /// A password question goes to a pinentry dialog, answered on a thread of its own.
    fn ask_secret(&mut self, prompt: &Prompt, message: &str) -> Result<(), Failure> {
        let (title, body) = prompt.text();
        let (dialog, run) =
            pinentry::ask(&pinentry::program(), &title, &body, message).map_err(Failure::failed)?;
        self.dialogs.insert(prompt.id, dialog);
        let answers = self.secrets_tx.clone();
        let id = prompt.id;
        std::thread::spawn(move || {
            let _ = answers.send((id, run()));
        });
        Ok(())
    }
}

impl Frontend for DesktopFrontend {
    async fn show(&mut self, prompt: &Prompt) -> Result<(), Failure> {
        if let PromptKind::Secret { message, .. } = &prompt.kind {
            return self.ask_secret(prompt, message);
        }
        let (title, body) = prompt.text();
        let body = if self.markup {
            escape_markup(&body)
        } else {
            body
        };
        let hints = HashMap::from([
            ("urgency", Value::U8(URGENCY_CRITICAL)),
            ("category", Value::from("device")),
            ("desktop-entry", Value::from("fido2ctl-agent")),
        ]);
        let timeout = i32::try_from(prompt.timeout_ms).unwrap_or(i32::MAX);
        let id = self
            .proxy
            .notify(
                "fido2d",
                0,
                "security-high",
                &title,
                &body,
                &[ALLOW, "Allow", DENY, "Deny"],
                hints,
                timeout,
            )
            .await
            .map_err(Self::dbus_failure)?;
        self.shown.insert(id, prompt.id);
        Ok(())
    }

    async fn withdraw(&mut self, id: u64, _reason: WithdrawReason) -> Result<(), Failure> {
        if let Some(dialog) = self.dialogs.remove(&id) {
            dialog.close();
        }
        let notifications: Vec<u32> = self
            .shown
            .iter()
            .filter(|(_, prompt)| **prompt == id)
            .map(|(notification, _)| *notification)
            .collect();
        for notification in notifications {
            self.shown.remove(&notification);
            // Already gone from the screen is fine.
            let _ = self.proxy.close_notification(notification).await;
        }
        Ok(())
    }

    async fn tell(&mut self, message: &str) -> Result<(), Failure> {
        let message = if self.markup {
            escape_markup(message)
        } else {
            message.to_owned()
        };
        let message = message.as_str();
        let hints = HashMap::from([("category", Value::from("device"))]);
        self.proxy
            .notify(
                "fido2d",
                0,
                "security-high",
                "fido2d",
                message,
                &[],
                hints,
                10_000,
            )
            .await
            .map_err(Self::dbus_failure)?;
        Ok(())
    }

    async fn next_event(&mut self) -> Option<FrontendEvent> {
        loop {
            tokio::select! {
                Some((id, result)) = self.secrets.recv() => {
                    // A dialog withdrawn meanwhile has no one waiting for its answer.
                    if self.dialogs.remove(&id).is_none() {
                        continue;
                    }
                    let response = match result {
                        Ok(answer) => answer.map(|s| Secret::new(s.to_string())),
                        Err(err) => {
                            eprintln!("fido2ctl agent: {err}");
                            None
                        }
                    };
                    return Some(FrontendEvent::Secret { id, response });
                }
                signal = self.actions.next() => {
                    let signal = signal?;
                    let args = signal.args().ok()?;
                    let Some(prompt) = self.shown.remove(&args.id) else { continue };
                    let decision = if args.action_key == ALLOW { Decision::Allow } else { Decision::Deny };
                    let _ = self.proxy.close_notification(args.id).await;
                    return Some(FrontendEvent::Answer { id: prompt, decision });
                }
                signal = self.closed.next() => {
                    let signal = signal?;
                    let args = signal.args().ok()?;
                    let Some(prompt) = self.shown.remove(&args.id) else { continue };
                    // Dismissing the prompt is a no; letting it expire leaves the daemon to
                    // time the request out.
                    if args.reason == CLOSED_BY_USER {
                        return Some(FrontendEvent::Answer { id: prompt, decision: Decision::Deny });
                    }
                }
            }
        }
    }
}
/// The notification spec's body markup is a small XML subset: `&`, `<` and `>` written as
/// entities show as themselves.
fn escape_markup(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_a_sites_text_is_shown_as_text() {
        assert_eq!(
            escape_markup("<b>bank</b> & <a href=\"x\">co</a>"),
            "&lt;b&gt;bank&lt;/b&gt; &amp; &lt;a href=\"x\"&gt;co&lt;/a&gt;"
        );
    }
}
