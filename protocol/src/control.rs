//! The daemon's control socket protocol (version 1): how `fido2ctl` and the desktop agent talk
//! to `fido2d` over `/run/fido2d/control.sock`.
//!
//! JSON lines: every message is one JSON object on one line, `{"v": 1, "type": ..., ...}`. A
//! client says `hello` first (its role: `agent` to answer prompts, `client` for everything
//! else); the daemon answers `welcome` or `error`. Unknown fields are ignored, so either side
//! may add optional fields without a version change; a new `v` means an incompatible change.
//!
//! ```text
//! client -> daemon                          daemon -> client
//! hello {role, client}                      welcome {daemon, protocol}
//! status                                    status {backend, ...}
//! answer {id, decision: allow|deny}         prompt {id, operation, rp_id?, user_name?, transport, timeout_ms}
//! uv-reply {id, response?}                  withdraw {id, reason}
//!                                           uv-prompt {id, message, echo, operation, ...}
//!                                           uv-info {id, message}
//! hybrid {qr}                               hybrid-progress {stage, message}, hybrid-done {ok, message}
//! owner-set {user}     (root only)          owner-set-done {owner}
//! replug                                    replug-done {ok, message}
//!                                           notice {message}   (to agents: something they must see)
//!                                           error {message}
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The protocol version this build speaks.
pub const VERSION: u32 = 1;

/// The longest line either side accepts (a QR code text is the largest legitimate message).
pub const MAX_LINE_LEN: usize = 16 * 1024;

/// What a connection is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Shows presence and verification prompts to the person and relays the answers.
    Agent,
    /// Asks for status or starts an operation (fido2ctl).
    Client,
}

/// What the person is asked to allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PromptOperation {
    Register,
    SignIn,
    ConfirmExcluded,
    Reset,
    Selection,
    /// A PIN/UV token or credential management needs the person's gesture.
    Other,
}

/// Which way the request reached the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RequestTransport {
    /// The local USB HID key (browsers on this machine), or the loopback test transport.
    Usb,
    /// Another computer, through the hybrid transport (QR code + Bluetooth + tunnel).
    Hybrid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    Allow,
    Deny,
}

/// Why a prompt disappeared without the person's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WithdrawReason {
    /// The browser cancelled the request (CTAPHID_CANCEL).
    Cancelled,
    /// Nobody answered in time.
    Timeout,
    /// Another agent answered first.
    Answered,
}

/// A secret typed by the person (a login password): zeroized, never printed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub Zeroizing<String>);

impl Secret {
    pub fn new(text: String) -> Self {
        Secret(Zeroizing::new(text))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The daemon's answer to `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Status {
    pub daemon_version: String,
    /// "tpm" or "file".
    pub backend: String,
    /// Backend details for people: TPM manufacturer and firmware, or the state directory.
    pub backend_detail: String,
    /// How platforms reach the key: "uhid" (with the hidraw node when known) or "udp ...".
    pub device: String,
    pub discoverable_credentials: usize,
    pub agents_connected: usize,
    /// "fingerprint", "agent", "terminal", "deny" or "auto-approve".
    pub presence_mode: String,
    /// Why that mode: "configured", or what `auto` found ("auto: the owner has 1 finger(s)
    /// enrolled on ...", "auto: no fingerprint reader ..., so the desktop agent").
    #[serde(default)]
    pub presence_reason: String,
    /// Built-in user verification: "off", "pam" or "fingerprint".
    pub user_verification: String,
    /// Whose key this is, and where that comes from.
    #[serde(default)]
    pub owner: String,
    /// Each connected agent: who and what answers the prompts.
    #[serde(default)]
    pub agents: Vec<AgentInfo>,
    /// How the PIN is checked and what guards the counters: the TPM and its dictionary-attack
    /// lockout state, or the file's Argon2id verifier.
    #[serde(default)]
    pub pin_protection: String,
}

/// A connected agent, as the kernel tells who is on the other end of the socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct AgentInfo {
    pub uid: u32,
    pub pid: u32,
    /// The program (`/proc/PID/exe`), if it could be read.
    #[serde(default)]
    pub executable: String,
    /// The systemd unit of its cgroup (`fido2d-agent.service`, `session-2.scope`), if any.
    #[serde(default)]
    pub unit: String,
}

/// One message on the control socket, either way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Message {
    Hello {
        role: Role,
        /// Program name and version, for the daemon's log.
        client: String,
    },
    Welcome {
        daemon: String,
        protocol: u32,
    },
    Error {
        message: String,
    },
    StatusRequest,
    Status(Status),
    Prompt {
        id: u64,
        operation: PromptOperation,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rp_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user_name: Option<String>,
        transport: RequestTransport,
        timeout_ms: u64,
    },
    Answer {
        id: u64,
        decision: Decision,
    },
    Withdraw {
        id: u64,
        reason: WithdrawReason,
    },
    /// Built-in UV: the verifier (PAM) asks something of the person, for this request.
    UvPrompt {
        id: u64,
        /// What the verifier asks, e.g. "Password: ".
        message: String,
        /// Whether the answer may be shown as typed (never for a password).
        echo: bool,
        operation: PromptOperation,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rp_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user_name: Option<String>,
        transport: RequestTransport,
        timeout_ms: u64,
    },
    /// Built-in UV: information for the person ("place your finger on the reader").
    UvInfo {
        id: u64,
        message: String,
    },
    /// The person's answer to a `uv-prompt`; no `response` when they refused.
    UvReply {
        id: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        response: Option<Secret>,
    },
    Hybrid {
        qr: String,
    },
    HybridProgress {
        stage: String,
        message: String,
    },
    HybridDone {
        ok: bool,
        message: String,
    },
    /// Root makes `user` (a name or a uid) the key's owner.
    OwnerSet {
        user: String,
    },
    OwnerSetDone {
        owner: String,
    },
    /// Something every agent must show the person (another program answers prompts now).
    Notice {
        message: String,
    },
    /// "Unplug and plug in the key" (to reset it): after the owner's gesture, the daemon
    /// makes the virtual key anew, which opens authenticatorReset's window.
    Replug,
    ReplugDone {
        ok: bool,
        message: String,
    },
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    v: u32,
    #[serde(flatten)]
    message: Message,
}

/// Why a line is not a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    TooLong,
    /// Not JSON, not an object, or an unknown `type` or field value.
    Malformed(String),
    /// A `v` this build does not speak.
    UnsupportedVersion(u32),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::TooLong => write!(f, "message longer than {MAX_LINE_LEN} bytes"),
            DecodeError::Malformed(reason) => write!(f, "malformed message: {reason}"),
            DecodeError::UnsupportedVersion(v) => write!(
                f,
                "protocol version {v} is not supported (this side speaks {VERSION})"
            ),
        }
    }
}

impl std::error::Error for DecodeError {}

/// One line, with its newline.
pub fn encode(message: &Message) -> String {
    let envelope = Envelope {
        v: VERSION,
        message: message.clone(),
    };
    let mut line = serde_json::to_string(&envelope).expect("control messages always serialize");
    line.push('\n');
    line
}

/// Parses one line (with or without its newline).
pub fn decode(line: &str) -> Result<Message, DecodeError> {
    if line.len() > MAX_LINE_LEN {
        return Err(DecodeError::TooLong);
    }
    // The version first, so a future message gets "unsupported version", not "malformed".
    #[derive(Deserialize)]
    struct VersionOnly {
        v: u32,
    }
    let version: VersionOnly = serde_json::from_str(line.trim_end()).map_err(malformed)?;
    if version.v != VERSION {
        return Err(DecodeError::UnsupportedVersion(version.v));
    }
    let envelope: Envelope = serde_json::from_str(line.trim_end()).map_err(malformed)?;
    Ok(envelope.message)
}

/// Where and what kind of error, without serde's text: it can quote the input, and a `uv-reply`
/// carries a password.
fn malformed(err: serde_json::Error) -> DecodeError {
    use serde_json::error::Category;
    let kind = match err.classify() {
        Category::Io => "unreadable",
        Category::Syntax | Category::Eof => "not a JSON object",
        Category::Data => "unknown type, or a field missing or of the wrong kind",
    };
    DecodeError::Malformed(format!("{kind} (column {})", err.column()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_json_lines_with_version_and_type() {
        let line = encode(&Message::Answer {
            id: 7,
            decision: Decision::Allow,
        });

        assert_eq!(
            line,
            "{\"v\":1,\"type\":\"answer\",\"id\":7,\"decision\":\"allow\"}\n"
        );
        assert_eq!(
            decode(&line),
            Ok(Message::Answer {
                id: 7,
                decision: Decision::Allow
            })
        );
    }

    #[test]
    fn every_message_round_trips() {
        let messages = vec![
            Message::Hello {
                role: Role::Agent,
                client: "fido2ctl 0.1.0".into(),
            },
            Message::Welcome {
                daemon: "0.1.0".into(),
                protocol: 1,
            },
            Message::Error {
                message: "no".into(),
            },
            Message::StatusRequest,
            Message::Status(Status {
                backend: "file".into(),
                discoverable_credentials: 3,
                ..Status::default()
            }),
            Message::Prompt {
                id: 1,
                operation: PromptOperation::SignIn,
                rp_id: Some("example.com".into()),
                user_name: None,
                transport: RequestTransport::Hybrid,
                timeout_ms: 30_000,
            },
            Message::Withdraw {
                id: 1,
                reason: WithdrawReason::Cancelled,
            },
            Message::UvPrompt {
                id: 2,
                message: "Password: ".into(),
                echo: false,
                operation: PromptOperation::SignIn,
                rp_id: Some("example.com".into()),
                user_name: None,
                transport: RequestTransport::Usb,
                timeout_ms: 30_000,
            },
            Message::UvInfo {
                id: 2,
                message: "Place your finger".into(),
            },
            Message::UvReply {
                id: 2,
                response: Some(Secret::new("hunter2".into())),
            },
            Message::UvReply {
                id: 2,
                response: None,
            },
            Message::Hybrid {
                qr: "FIDO:/123".into(),
            },
            Message::HybridProgress {
                stage: "advertising".into(),
                message: "...".into(),
            },
            Message::HybridDone {
                ok: true,
                message: "done".into(),
            },
        ];
        for message in messages {
            let line = encode(&message);
            assert_eq!(line.matches('\n').count(), 1, "{line}");
            assert_eq!(decode(&line).as_ref(), Ok(&message), "{line}");
        }
    }

    #[test]
    fn unknown_fields_are_ignored_unknown_types_and_versions_are_errors() {
        assert_eq!(
            decode(r#"{"v":1,"type":"status-request","future":true}"#),
            Ok(Message::StatusRequest)
        );
        assert!(matches!(
            decode(r#"{"v":1,"type":"launch-rockets"}"#),
            Err(DecodeError::Malformed(_))
        ));
        assert_eq!(
            decode(r#"{"v":2,"type":"status-request"}"#),
            Err(DecodeError::UnsupportedVersion(2))
        );
        assert!(matches!(decode("not json"), Err(DecodeError::Malformed(_))));
        assert!(matches!(
            decode(r#"{"type":"status-request"}"#),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            decode(r#"{"v":1,"type":"answer","id":1,"decision":"maybe"}"#),
            Err(DecodeError::Malformed(_))
        ));
        let long = format!(
            r#"{{"v":1,"type":"hybrid","qr":"{}"}}"#,
            "1".repeat(MAX_LINE_LEN)
        );
        assert_eq!(decode(&long), Err(DecodeError::TooLong));
    }

    #[test]
    fn decode_errors_never_quote_the_input() {
        let err = decode(r#"{"v":1,"type":"uv-reply","id":1,"response":["hunter2"]}"#)
            .unwrap_err()
            .to_string();

        assert!(err.starts_with("malformed message"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn a_secret_never_shows_in_debug_output() {
        let reply = Message::UvReply {
            id: 1,
            response: Some(Secret::new("hunter2".into())),
        };

        assert!(!format!("{reply:?}").contains("hunter2"));
    }
}
