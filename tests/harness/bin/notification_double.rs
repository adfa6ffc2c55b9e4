//! A stand-in for the desktop's notification server (org.freedesktop.Notifications) on a real
//! session bus, for the agent tests: it records every notification and "clicks" for the person.
//!
//! Usage: notification_double --answer allow|deny|dismiss|ignore --log FILE
//!
//! Each Notify call appends one JSON line `{"call":"notify","id":N,"summary":..,"body":..,
//! "actions":[..]}` to FILE (CloseNotification: `{"call":"close","id":N}`), then, 300 ms
//! later, answers as told: ActionInvoked(id, "allow"/"deny"), NotificationClosed(id, 2) for
//! dismiss, nothing for ignore. Prints "ready" once it owns the name.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use zbus::object_server::SignalEmitter;
use zbus::zvariant::Value;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Answer {
    Allow,
    Deny,
    Dismiss,
    Ignore,
}

struct Notifications {
    answer: Answer,
    log: PathBuf,
    next_id: Arc<AtomicU32>,
}

impl Notifications {
    fn record(&self, line: serde_json::Value) {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the notification log");
        writeln!(file, "{line}").expect("write the notification log");
    }
}

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl Notifications {
    #[allow(clippy::too_many_arguments)]
    async fn notify(
        &self,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
        app_name: String,
        _replaces_id: u32,
        _app_icon: String,
        summary: String,
        body: String,
        actions: Vec<String>,
        _hints: HashMap<String, Value<'_>>,
        expire_timeout: i32,
    ) -> u32 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.record(serde_json::json!({
            "call": "notify", "id": id, "app": app_name, "summary": summary, "body": body,
            "actions": actions, "expire_timeout": expire_timeout,
        }));
        let answer = self.answer;
        let emitter = emitter.to_owned();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let _ = match answer {
                Answer::Allow => Self::action_invoked(&emitter, id, "allow").await,
                Answer::Deny => Self::action_invoked(&emitter, id, "deny").await,
                Answer::Dismiss => Self::notification_closed(&emitter, id, 2).await,
                Answer::Ignore => Ok(()),
            };
        });
        id
    }

    async fn close_notification(
        &self,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
        id: u32,
    ) {
        self.record(serde_json::json!({"call": "close", "id": id}));
        let _ = Self::notification_closed(&emitter, id, 3).await;
    }

    fn get_capabilities(&self) -> Vec<String> {
        // Like GNOME Shell and KDE Plasma: the body is read as markup.
        vec!["actions".into(), "body".into(), "body-markup".into()]
    }

    fn get_server_information(&self) -> (String, String, String, String) {
        (
            "notification-double".into(),
            "fido2d tests".into(),
            "1".into(),
            "1.2".into(),
        )
    }

    #[zbus(signal)]
    async fn action_invoked(
        emitter: &SignalEmitter<'_>,
        id: u32,
        action_key: &str,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn notification_closed(
        emitter: &SignalEmitter<'_>,
        id: u32,
        reason: u32,
    ) -> zbus::Result<()>;
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> zbus::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let value_of = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .unwrap_or_else(|| panic!("usage: notification_double --answer A --log FILE"))
            .clone()
    };
    let answer = match value_of("--answer").as_str() {
        "allow" => Answer::Allow,
        "deny" => Answer::Deny,
        "dismiss" => Answer::Dismiss,
        "ignore" => Answer::Ignore,
        other => panic!("unknown answer {other:?}"),
    };
    let server = Notifications {
        answer,
        log: PathBuf::from(value_of("--log")),
        next_id: Arc::new(AtomicU32::new(1)),
    };
    let _connection = zbus::connection::Builder::session()?
        .name("org.freedesktop.Notifications")?
        .serve_at("/org/freedesktop/Notifications", server)?
        .build()
        .await?;
    println!("ready");
    std::future::pending::<()>().await;
    Ok(())
}
