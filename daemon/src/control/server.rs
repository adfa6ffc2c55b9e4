//! The control socket server: accepts connections, checks who is on the other end
//! (SO_PEERCRED), and serves agents (prompts and answers) and clients (status, hybrid
//! sessions).

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex, PoisonError};

use protocol::control::{self, Message, Role, Status, WithdrawReason};
use tokio::io::{
    AsyncBufReadExt as _, AsyncRead, AsyncReadExt as _, AsyncWriteExt as _, BufReader,
};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc as async_mpsc;
use tracing::{debug, info, warn};
use zeroize::Zeroizing;

use super::broker::{BrokerCall, PromptSpec, Settled, UvQuestion};
use super::owner::OwnerPolicy;
use crate::hybrid::HybridService;

/// What `status` reports; the daemon fills it in at start and the worker keeps the credential
/// count current.
pub type StatusBoard = Arc<Mutex<Status>>;

type ConnectionId = u64;

/// A prompt shown to agents and not yet settled.
struct PendingPrompt {
    reply: mpsc::Sender<Settled>,
    asked: Vec<ConnectionId>,
    /// A verification question (answered by `uv-reply`), not an Allow/Deny prompt.
    secret: bool,
}

/// The agents and their open prompts.
#[derive(Default)]
struct Hub {
    agents: HashMap<ConnectionId, async_mpsc::UnboundedSender<Message>>,
    pending: HashMap<u64, PendingPrompt>,
}

impl Hub {
    fn ask(
        &mut self,
        id: u64,
        spec: PromptSpec,
        question: Option<UvQuestion>,
        reply: mpsc::Sender<Settled>,
    ) {
        if self.agents.is_empty() {
            let _ = reply.send(Settled::NoAgent);
            return;
        }
        let timeout_ms = u64::try_from(spec.timeout.as_millis()).unwrap_or(u64::MAX);
        let secret = question.is_some();
        let prompt = match question {
            None => Message::Prompt {
                id,
                operation: spec.operation,
                rp_id: spec.rp_id,
                user_name: spec.user_name,
                transport: spec.transport,
                timeout_ms,
            },
            Some(question) => Message::UvPrompt {
                id,
                message: question.message,
                echo: question.echo,
                operation: spec.operation,
                rp_id: spec.rp_id,
                user_name: spec.user_name,
                transport: spec.transport,
                timeout_ms,
            },
        };
        let asked = self
            .agents
            .iter()
            .filter(|(_, agent)| agent.send(prompt.clone()).is_ok())
            .map(|(connection, _)| *connection)
            .collect();
        self.pending.insert(
            id,
            PendingPrompt {
                reply,
                asked,
                secret,
            },
        );
    }

    fn tell(&self, id: u64, message: String) {
        for agent in self.agents.values() {
            let _ = agent.send(Message::UvInfo {
                id,
                message: message.clone(),
            });
        }
    }

    /// Whether `connection` was asked prompt `id`, of the kind (`secret` or not) it answers.
    fn asked(&self, id: u64, connection: ConnectionId, secret: bool) -> bool {
        self.pending
            .get(&id)
            .is_some_and(|p| p.secret == secret && p.asked.contains(&connection))
    }

    /// Settles a prompt and withdraws it from every agent that saw it but `except`.
    fn settle(
        &mut self,
        id: u64,
        outcome: Option<Settled>,
        reason: WithdrawReason,
        except: Option<ConnectionId>,
    ) {
        let Some(prompt) = self.pending.remove(&id) else {
            return;
        };
        if let Some(outcome) = outcome {
            let _ = prompt.reply.send(outcome);
        }
        for connection in prompt.asked.iter().filter(|c| Some(**c) != except) {
            if let Some(agent) = self.agents.get(connection) {
                let _ = agent.send(Message::Withdraw { id, reason });
            }
        }
    }

    fn remove_agent(&mut self, connection: ConnectionId) {
        self.agents.remove(&connection);
        let orphaned: Vec<u64> = self
            .pending
            .iter_mut()
            .filter_map(|(id, prompt)| {
                prompt.asked.retain(|c| *c != connection);
                prompt.asked.is_empty().then_some(*id)
            })
            .collect();
        for id in orphaned {
            self.settle(
                id,
                Some(Settled::AgentsGone),
                WithdrawReason::Answered,
                None,
            );
        }
    }
}

pub struct ControlServer {
    listener: UnixListener,
    path: PathBuf,
    policy: OwnerPolicy,
    status: StatusBoard,
    hub: Arc<Mutex<Hub>>,
    hybrid: Option<HybridService>,
}

fn lock(hub: &Mutex<Hub>) -> std::sync::MutexGuard<'_, Hub> {
    hub.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ControlServer {
    /// Listens on `path`, replacing a stale socket. The socket is open to every local user
    /// (mode 0666): who may use it is decided per connection by the peer's uid.
    pub fn bind(path: &Path, policy: OwnerPolicy, status: StatusBoard) -> anyhow::Result<Self> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|err| {
                anyhow::anyhow!(
                    "cannot create {} for the control socket: {err}",
                    parent.display()
                )
            })?;
        }
        match std::fs::remove_file(path) {
            Ok(()) => debug!("removed a stale control socket at {}", path.display()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => anyhow::bail!("cannot replace {}: {err}", path.display()),
        }
        let listener = UnixListener::bind(path)
            .map_err(|err| anyhow::anyhow!("cannot listen on {}: {err}", path.display()))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))
            .map_err(|err| anyhow::anyhow!("cannot set the mode of {}: {err}", path.display()))?;
        Ok(ControlServer {
            listener,
            path: path.to_owned(),
            policy,
            status,
            hub: Arc::default(),
            hybrid: None,
        })
    }

    /// Lets clients start hybrid sessions (`hybrid {qr}`).
    pub fn with_hybrid(mut self, hybrid: HybridService) -> Self {
        self.hybrid = Some(hybrid);
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serves until the future is dropped: connections, and the broker's calls.
    pub async fn run(self, mut calls: async_mpsc::UnboundedReceiver<BrokerCall>) {
        let mut next_connection: ConnectionId = 0;
        loop {
            tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        next_connection += 1;
                        self.admit(stream, next_connection);
                    }
                    Err(err) => warn!("control socket: accept failed: {err}"),
                },
                Some(call) = calls.recv() => self.handle_call(call),
            }
        }
    }

    fn handle_call(&self, call: BrokerCall) {
        let mut hub = lock(&self.hub);
        match call {
            BrokerCall::Ask {
                id,
                spec,
                question,
                reply,
            } => hub.ask(id, spec, question, reply),
            BrokerCall::Tell { id, message } => hub.tell(id, message),
            BrokerCall::Withdraw { id, reason } => hub.settle(id, None, reason, None),
        }
    }

    fn admit(&self, stream: UnixStream, connection: ConnectionId) {
        let uid = match stream.peer_cred() {
            Ok(cred) => cred.uid(),
            Err(err) => {
                warn!("control socket: cannot read the peer's credentials, refused: {err}");
                return;
            }
        };
        if !self.policy.allows(uid) {
            warn!(
                "control socket: refused a connection from uid {uid}: only root and the key's \
                 owner ({}) may use it",
                self.policy.describe()
            );
            tokio::spawn(refuse(stream, uid));
            return;
        }
        let hub = self.hub.clone();
        let status = self.status.clone();
        let hybrid = self.hybrid.clone();
        tokio::spawn(async move {
            if let Err(err) = serve(stream, connection, uid, hub, status, hybrid).await {
                debug!(connection, "control connection ended: {err}");
            }
        });
    }
}

async fn refuse(mut stream: UnixStream, uid: u32) {
    let message = Message::Error {
        message: format!("uid {uid} may not use this key's control socket"),
    };
    let _ = stream.write_all(control::encode(&message).as_bytes()).await;
}

/// Reads one line of at most [`control::MAX_LINE_LEN`] bytes; `None` at the end of the stream.
/// The buffer is zeroized: a `uv-reply` line holds a password.
async fn read_line<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
) -> anyhow::Result<Option<Zeroizing<String>>> {
    let mut buffer = Zeroizing::new(Vec::new());
    let limit = control::MAX_LINE_LEN as u64 + 1;
    let read = (&mut *reader)
        .take(limit)
        .read_until(b'\n', &mut buffer)
        .await?;
    if read == 0 {
        return Ok(None);
    }
    if buffer.len() > control::MAX_LINE_LEN {
        anyhow::bail!("a line longer than {} bytes", control::MAX_LINE_LEN);
    }
    let text = String::from_utf8(std::mem::take(&mut *buffer))
        .map_err(|_| anyhow::anyhow!("a line that is not UTF-8"))?;
    Ok(Some(Zeroizing::new(text)))
}

async fn serve(
    stream: UnixStream,
    connection: ConnectionId,
    uid: u32,
    hub: Arc<Mutex<Hub>>,
    status: StatusBoard,
    hybrid: Option<HybridService>,
) -> anyhow::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let send = |message: Message| control::encode(&message);

    let Some(line) = read_line(&mut reader).await? else {
        return Ok(());
    };
    let role = match control::decode(&line) {
        Ok(Message::Hello { role, client }) => {
            info!(connection, uid, ?role, client, "control client connected");
            role
        }
        Ok(_) => {
            let error = send(Message::Error {
                message: "say hello first".into(),
            });
            write.write_all(error.as_bytes()).await?;
            return Ok(());
        }
        Err(err) => {
            write
                .write_all(
                    send(Message::Error {
                        message: err.to_string(),
                    })
                    .as_bytes(),
                )
                .await?;
            return Ok(());
        }
    };
    let welcome = send(Message::Welcome {
        daemon: env!("CARGO_PKG_VERSION").into(),
        protocol: control::VERSION,
    });
    write.write_all(welcome.as_bytes()).await?;

    // Everything this connection sends goes through one queue, so prompts from the broker and
    // replies to requests never interleave within a line.
    let (outgoing, mut queue) = async_mpsc::unbounded_channel::<Message>();
    let writer = tokio::spawn(async move {
        while let Some(message) = queue.recv().await {
            if write.write_all(send(message).as_bytes()).await.is_err() {
                break;
            }
        }
    });
    if role == Role::Agent {
        lock(&hub).agents.insert(connection, outgoing.clone());
    }

    let result = async {
        while let Some(line) = read_line(&mut reader).await? {
            let message = match control::decode(&line) {
                Ok(message) => message,
                Err(err) => {
                    let _ = outgoing.send(Message::Error {
                        message: err.to_string(),
                    });
                    continue;
                }
            };
            match (role, message) {
                (_, Message::StatusRequest) => {
                    let mut current = status
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .clone();
                    current.agents_connected = lock(&hub).agents.len();
                    let _ = outgoing.send(Message::Status(current));
                }
                (Role::Agent, Message::Answer { id, decision }) => {
                    info!(connection, id, ?decision, "the person answered a prompt");
                    let mut hub = lock(&hub);
                    if hub.asked(id, connection, false) {
                        hub.settle(
                            id,
                            Some(Settled::Decided(decision)),
                            WithdrawReason::Answered,
                            Some(connection),
                        );
                    }
                }
                (Role::Client, Message::Hybrid { qr }) => {
                    let Some(hybrid) = &hybrid else {
                        let _ = outgoing.send(Message::HybridDone {
                            ok: false,
                            message: "this daemon does not serve hybrid sessions".into(),
                        });
                        continue;
                    };
                    // The session lasts while its client listens: fido2ctl interrupted (its
                    // connection closed) ends it, advert and tunnel included.
                    tokio::select! {
                        done = run_hybrid(hybrid, connection, &qr, &outgoing) => {
                            let _ = outgoing.send(done);
                        }
                        _ = client_gone(&mut reader) => {
                            info!(connection, "hybrid session ended: its client went away");
                            break;
                        }
                    }
                }
                (Role::Agent, Message::UvReply { id, response }) => {
                    info!(
                        connection,
                        id,
                        answered = response.is_some(),
                        "the person answered a verification question"
                    );
                    let mut hub = lock(&hub);
                    if hub.asked(id, connection, true) {
                        hub.settle(
                            id,
                            Some(Settled::Secret(response)),
                            WithdrawReason::Answered,
                            Some(connection),
                        );
                    }
                }
                (_, other) => {
                    let _ = outgoing.send(Message::Error {
                        message: format!(
                            "unexpected message for a {role:?} connection: {}",
                            kind(&other)
                        ),
                    });
                }
            }
        }
        anyhow::Ok(())
    }
    .await;

    if role == Role::Agent {
        lock(&hub).remove_agent(connection);
        info!(connection, "agent disconnected");
    }
    drop(outgoing);
    let _ = writer.await;
    result
}

/// Resolves when the client closes its end (or sends anything: it should wait for
/// `hybrid-done` first, so that ends the session too).
async fn client_gone<R: AsyncRead + Unpin>(reader: &mut BufReader<R>) {
    let _ = read_line(reader).await;
}

/// Serves one hybrid session for a client, relaying its progress; returns `hybrid-done`.
async fn run_hybrid(
    hybrid: &HybridService,
    connection: ConnectionId,
    qr: &str,
    outgoing: &async_mpsc::UnboundedSender<Message>,
) -> Message {
    info!(connection, "hybrid session requested");
    let result = hybrid
        .run(qr, |step| {
            let _ = outgoing.send(Message::HybridProgress {
                stage: step.stage().into(),
                message: step.describe(),
            });
        })
        .await;
    match result {
        Ok(summary) => {
            info!(
                connection,
                requests = summary.requests,
                tunnel_open_ms = summary.tunnel_open.as_millis() as u64,
                advertising_ms = summary.advertising.as_millis() as u64,
                initiator_joined_ms = summary.initiator_joined.as_millis() as u64,
                handshake_us = summary.handshake.as_micros() as u64,
                "hybrid session done"
            );
            Message::HybridDone {
                ok: true,
                message: format!(
                    "done: {} request(s) answered (tunnel server after {} ms, advertising after \
                     {} ms, the other computer joined after {} ms)",
                    summary.requests,
                    summary.tunnel_open.as_millis(),
                    summary.advertising.as_millis(),
                    summary.initiator_joined.as_millis()
                ),
            }
        }
        Err(err) => {
            warn!(connection, "hybrid session failed: {err}");
            Message::HybridDone {
                ok: false,
                message: err.to_string(),
            }
        }
    }
}

/// A message's type name, for errors (never its contents).
fn kind(message: &Message) -> &'static str {
    match message {
        Message::Hello { .. } => "hello",
        Message::Welcome { .. } => "welcome",
        Message::Error { .. } => "error",
        Message::StatusRequest => "status-request",
        Message::Status(_) => "status",
        Message::Prompt { .. } => "prompt",
        Message::Answer { .. } => "answer",
        Message::Withdraw { .. } => "withdraw",
        Message::UvPrompt { .. } => "uv-prompt",
        Message::UvInfo { .. } => "uv-info",
        Message::UvReply { .. } => "uv-reply",
        Message::Hybrid { .. } => "hybrid",
        Message::HybridProgress { .. } => "hybrid-progress",
        Message::HybridDone { .. } => "hybrid-done",
    }
}
