//! The control socket server: accepts connections, checks who is on the other end
//! (SO_PEERCRED), and serves agents (prompts and answers) and clients (status, hybrid
//! sessions).

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use std::time::{Duration, Instant};

use protocol::control::{self, AgentInfo, Message, Role, WithdrawReason};
use tokio::io::{AsyncRead, AsyncWriteExt as _};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc as async_mpsc;
use tracing::{debug, info, warn};

use super::lines::LineReader;
use crate::hybrid::HybridService;
use crate::owner::{uid_from_name_or_number, AgentAdmission, OwnerPolicy, ROOT};
use crate::prompts::broker::{BrokerCall, Settled};
use crate::prompts::hub::{ConnectionId, Hub, Outgoing};
use crate::status_board::StatusBoard;

/// A replug asked for through the control socket (`fido2ctl reset`): the daemon's replug
/// server answers on it.
pub type ReplugReply = tokio::sync::oneshot::Sender<Result<(), String>>;

/// How many connections one uid may hold open at once: enough for a desktop (agent, a few
/// fido2ctl commands), too few for one program to exhaust the daemon.
const MAX_CONNECTIONS_PER_UID: usize = 16;
/// A connection must say `hello` within this time.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// Messages queued for one connection before it counts as not reading (and is dropped).
const OUTGOING_QUEUE: usize = 64;
/// One refusal log line per uid within this time (the rest are counted).
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// One log line per refused uid per [`REFUSAL_LOG_INTERVAL`]: a program that retries in a loop
/// cannot fill the journal.
#[derive(Default)]
struct RefusalLog {
    last: HashMap<u32, (Instant, u64)>,
}

impl RefusalLog {
    /// Logs `what` for `uid` unless it was logged recently (then it is counted).
    fn refused(&mut self, uid: u32, what: &str) {
        let now = Instant::now();
        match self.last.get_mut(&uid) {
            Some((at, suppressed)) if now.duration_since(*at) < REFUSAL_LOG_INTERVAL => {
                *suppressed += 1;
            }
            entry => {
                let suppressed = entry.map_or(0, |(_, n)| *n);
                if suppressed > 0 {
                    warn!("control socket: {what} (and {suppressed} more refusals of uid {uid})");
                } else {
                    warn!("control socket: {what}");
                }
                self.last.insert(uid, (now, 0));
            }
        }
    }
}

/// What every connection shares.
#[derive(Clone)]
struct Shared {
    owner: OwnerPolicy,
    status: StatusBoard,
    hub: Arc<Mutex<Hub>>,
    hybrid: Option<HybridService>,
    /// Where a client's `replug` goes (the daemon's replug server).
    replug: Option<async_mpsc::Sender<ReplugReply>>,
    refusals: Arc<Mutex<RefusalLog>>,
    /// Open connections per uid.
    connections: Arc<Mutex<HashMap<u32, usize>>>,
}

pub struct ControlServer {
    listener: UnixListener,
    path: PathBuf,
    shared: Shared,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ControlServer {
    /// Listens on `path`, replacing a stale socket. The socket is open to every local user
    /// (mode 0666): who may use it is decided per connection by the peer's uid.
    pub fn bind(path: &Path, owner: OwnerPolicy, status: StatusBoard) -> anyhow::Result<Self> {
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
        let hub = Hub::new(owner.clone());
        Ok(ControlServer {
            listener,
            path: path.to_owned(),
            shared: Shared {
                owner,
                status,
                hub: Arc::new(Mutex::new(hub)),
                hybrid: None,
                replug: None,
                refusals: Arc::default(),
                connections: Arc::default(),
            },
        })
    }

    /// Lets clients start hybrid sessions (`hybrid {qr}`).
    pub fn with_hybrid(mut self, hybrid: HybridService) -> Self {
        self.shared.hybrid = Some(hybrid);
        self
    }

    /// Lets the owner (and root) replug the key (`replug`), before a reset.
    pub fn with_replug(mut self, replug: async_mpsc::Sender<ReplugReply>) -> Self {
        self.shared.replug = Some(replug);
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
        let mut hub = lock(&self.shared.hub);
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
        let (uid, pid) = match stream.peer_cred() {
            Ok(cred) => (cred.uid(), cred.pid().and_then(|p| u32::try_from(p).ok())),
            Err(err) => {
                warn!("control socket: cannot read the peer's credentials, refused: {err}");
                return;
            }
        };
        // Who may get as far as `hello`: root, the owner, and anyone while the key has no
        // owner yet (its agent may claim it). The role decides the rest.
        let owner = &self.shared.owner;
        if !owner.allows_client(uid) && owner.owner_uid().is_some() {
            lock(&self.shared.refusals).refused(
                uid,
                &format!(
                    "refused a connection from uid {uid}: only root and the key's owner ({})                      may use it",
                    owner.describe()
                ),
            );
            tokio::spawn(refuse(
                stream,
                format!("uid {uid} may not use this key's control socket"),
            ));
            return;
        }
        {
            let mut connections = lock(&self.shared.connections);
            let open = connections.entry(uid).or_default();
            if *open >= MAX_CONNECTIONS_PER_UID {
                drop(connections);
                lock(&self.shared.refusals).refused(
                    uid,
                    &format!(
                        "refused a connection from uid {uid}: it already has                          {MAX_CONNECTIONS_PER_UID} open"
                    ),
                );
                tokio::spawn(refuse(
                    stream,
                    format!("too many connections from uid {uid}"),
                ));
                return;
            }
            *open += 1;
        }
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let peer = Peer { uid, pid };
            if let Err(err) = serve(stream, connection, peer, &shared).await {
                debug!(connection, "control connection ended: {err}");
            }
            let mut connections = lock(&shared.connections);
            if let Some(open) = connections.get_mut(&uid) {
                *open = open.saturating_sub(1);
            }
        });
    }
}

/// Who is on the other end of a connection (SO_PEERCRED).
#[derive(Debug, Clone, Copy)]
struct Peer {
    uid: u32,
    pid: Option<u32>,
}

impl Peer {
    /// What `status` shows of an agent: its program and systemd unit, from /proc.
    fn agent_info(&self) -> AgentInfo {
        let Some(pid) = self.pid else {
            return AgentInfo {
                uid: self.uid,
                ..AgentInfo::default()
            };
        };
        let executable = std::fs::read_link(format!("/proc/{pid}/exe"))
            .map(|path| path.display().to_string())
            .unwrap_or_default();
        let unit = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .ok()
            .and_then(|cgroup| unit_of(&cgroup))
            .unwrap_or_default();
        AgentInfo {
            uid: self.uid,
            pid,
            executable,
            unit,
        }
    }
}

/// The innermost systemd unit (`*.service`, `*.scope`) of a `/proc/PID/cgroup` text.
fn unit_of(cgroup: &str) -> Option<String> {
    let path = cgroup.lines().find_map(|line| line.strip_prefix("0::"))?;
    path.rsplit('/')
        .find(|part| part.ends_with(".service") || part.ends_with(".scope"))
        .map(str::to_owned)
}

async fn refuse(mut stream: UnixStream, message: String) {
    let message = Message::Error { message };
    let _ = stream.write_all(control::encode(&message).as_bytes()).await;
}

async fn serve(
    stream: UnixStream,
    connection: ConnectionId,
    peer: Peer,
    shared: &Shared,
) -> anyhow::Result<()> {
    let uid = peer.uid;
    let (read, mut write) = stream.into_split();
    let mut reader = LineReader::new(read);
    let send = |message: Message| control::encode(&message);
    let reply_error = |message: String| send(Message::Error { message });

    let first = match tokio::time::timeout(HELLO_TIMEOUT, reader.read_line()).await {
        Ok(line) => line?,
        Err(_) => {
            let error = reply_error(format!("no hello within {} s", HELLO_TIMEOUT.as_secs()));
            write.write_all(error.as_bytes()).await?;
            return Ok(());
        }
    };
    let Some(line) = first else {
        return Ok(());
    };
    let role = match control::decode(&line) {
        Ok(Message::Hello { role, client }) => {
            info!(connection, uid, ?role, client, "control client connected");
            role
        }
        Ok(_) => {
            write
                .write_all(reply_error("say hello first".into()).as_bytes())
                .await?;
            return Ok(());
        }
        Err(err) => {
            write
                .write_all(reply_error(err.to_string()).as_bytes())
                .await?;
            return Ok(());
        }
    };
    // Agents: the owner's only (the first one claims an unowned key). Clients: root and the
    // owner.
    let refusal = match role {
        Role::Agent => match shared.owner.admit_agent(uid)? {
            AgentAdmission::Owner => None,
            AgentAdmission::Claimed => {
                info!(
                    connection,
                    "the key's owner is now {} (its first agent)",
                    shared.owner.describe()
                );
                None
            }
            AgentAdmission::Refused { owner } => Some(format!(
                "uid {uid} is not the key's owner (uid {owner}): its agent may not answer prompts"
            )),
        },
        Role::Client if shared.owner.allows_client(uid) => None,
        Role::Client => Some(format!(
            "uid {uid} may not use this key's control socket (the owner is {})",
            shared.owner.describe()
        )),
    };
    if let Some(refusal) = refusal {
        lock(&shared.refusals).refused(uid, &format!("refused: {refusal}"));
        write.write_all(reply_error(refusal).as_bytes()).await?;
        return Ok(());
    }
    let welcome = send(Message::Welcome {
        daemon: env!("CARGO_PKG_VERSION").into(),
        protocol: control::VERSION,
    });
    write.write_all(welcome.as_bytes()).await?;

    // Everything this connection sends goes through one bounded queue, so prompts from the
    // broker and replies to requests never interleave within a line, and a peer that stops
    // reading cannot make the daemon hold its messages without end.
    let (outgoing, mut queue) = async_mpsc::channel::<Message>(OUTGOING_QUEUE);
    let writer = tokio::spawn(async move {
        while let Some(message) = queue.recv().await {
            if write.write_all(send(message).as_bytes()).await.is_err() {
                break;
            }
        }
    });
    let hub = &shared.hub;
    if role == Role::Agent {
        lock(hub).add_agent(connection, peer.agent_info(), outgoing.clone());
    }
    let reply = |message: Message| {
        let _ = outgoing.try_send(message);
    };

    let result = async {
        while let Some(line) = reader.read_line().await? {
            let message = match control::decode(&line) {
                Ok(message) => message,
                Err(err) => {
                    reply(Message::Error {
                        message: err.to_string(),
                    });
                    continue;
                }
            };
            match (role, message) {
                (_, Message::StatusRequest) => {
                    let mut current = lock(&shared.status).clone();
                    let hub = lock(hub);
                    current.agents = hub.agent_infos();
                    current.agents_connected = current.agents.len();
                    current.owner = shared.owner.describe();
                    drop(hub);
                    reply(Message::Status(current));
                }
                (Role::Agent, Message::Answer { id, decision }) => {
                    info!(connection, id, ?decision, "the person answered a prompt");
                    let mut hub = lock(hub);
                    if hub.asked(id, connection, false) {
                        hub.settle(
                            id,
                            Some(Settled::Decided(decision)),
                            WithdrawReason::Answered,
                            Some(connection),
                        );
                    }
                }
                (Role::Client, Message::Replug) => {
                    info!(connection, uid, "replug requested (for a reset)");
                    reply(replug(shared).await);
                }
                (Role::Client, Message::OwnerSet { user }) => {
                    reply(set_owner(uid, &user, shared));
                }
                (Role::Client, Message::Hybrid { qr }) => {
                    let Some(hybrid) = &shared.hybrid else {
                        reply(Message::HybridDone {
                            ok: false,
                            message: "this daemon does not serve hybrid sessions".into(),
                        });
                        continue;
                    };
                    // The session lasts while its client listens: fido2ctl interrupted (its
                    // connection closed) ends it, advert and tunnel included.
                    tokio::select! {
                        done = run_hybrid(hybrid, connection, &qr, &outgoing) => reply(done),
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
                    let mut hub = lock(hub);
                    if hub.asked(id, connection, true) {
                        hub.settle(
                            id,
                            Some(Settled::Secret(response)),
                            WithdrawReason::Answered,
                            Some(connection),
                        );
                    }
                }
                (_, other) => reply(Message::Error {
                    message: format!(
                        "unexpected message for a {role:?} connection: {}",
                        kind(&other)
                    ),
                }),
            }
        }
        anyhow::Ok(())
    }
    .await;

    if role == Role::Agent {
        lock(hub).remove_agent(connection);
        info!(connection, "agent disconnected");
    }
    drop(outgoing);
    let _ = writer.await;
    result
}

/// `replug`: the daemon asks the owner's gesture, then makes the key anew.
async fn replug(shared: &Shared) -> Message {
    let Some(requests) = &shared.replug else {
        return Message::ReplugDone {
            ok: false,
            message: "this daemon cannot replug its key".into(),
        };
    };
    let (reply, answer) = tokio::sync::oneshot::channel();
    let result = match requests.send(reply).await {
        Ok(()) => answer
            .await
            .unwrap_or_else(|_| Err("the daemon is shutting down".into())),
        Err(_) => Err("the daemon is shutting down".into()),
    };
    match result {
        Ok(()) => Message::ReplugDone {
            ok: true,
            message: "the key was replugged: it may be reset within 10 s".into(),
        },
        Err(message) => {
            warn!("replug refused: {message}");
            Message::ReplugDone { ok: false, message }
        }
    }
}

/// `owner-set`: root only. The owner's prompts go to the new owner's agents from now on.
fn set_owner(uid: u32, user: &str, shared: &Shared) -> Message {
    if uid != ROOT {
        return Message::Error {
            message: "only root may change the key's owner".into(),
        };
    }
    let result = uid_from_name_or_number(user).and_then(|new| shared.owner.set(new));
    match result {
        Ok(()) => {
            let owner = shared.owner.describe();
            warn!("the key's owner is now {owner} (set by root)");
            Message::OwnerSetDone { owner }
        }
        Err(err) => Message::Error {
            message: err.to_string(),
        },
    }
}

/// Resolves when the client closes its end (or sends anything: it should wait for
/// `hybrid-done` first, so that ends the session too).
async fn client_gone<R: AsyncRead + Unpin>(reader: &mut LineReader<R>) {
    let _ = reader.read_line().await;
}

/// Serves one hybrid session for a client, relaying its progress; returns `hybrid-done`.
async fn run_hybrid(
    hybrid: &HybridService,
    connection: ConnectionId,
    qr: &str,
    outgoing: &Outgoing,
) -> Message {
    info!(connection, "hybrid session requested");
    let result = hybrid
        .run(qr, |step| {
            let _ = outgoing.try_send(Message::HybridProgress {
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
        Message::OwnerSet { .. } => "owner-set",
        Message::OwnerSetDone { .. } => "owner-set-done",
        Message::Notice { .. } => "notice",
        Message::Replug => "replug",
        Message::ReplugDone { .. } => "replug-done",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unit_is_the_innermost_service_or_scope_of_the_cgroup() {
        let agent =
            "0::/user.slice/user-1000.slice/user@1000.service/app.slice/fido2d-agent.service\n";
        assert_eq!(unit_of(agent).as_deref(), Some("fido2d-agent.service"));
        let shell = "0::/user.slice/user-1000.slice/session-2.scope\n";
        assert_eq!(unit_of(shell).as_deref(), Some("session-2.scope"));
        assert_eq!(unit_of("0::/\n"), None);
        assert_eq!(
            unit_of("1:name=systemd:/x.service\n"),
            None,
            "cgroup v2 only"
        );
    }

    #[test]
    fn refusals_are_logged_once_a_minute_per_uid() {
        let mut log = RefusalLog::default();
        log.refused(5, "x");
        log.refused(5, "x");
        log.refused(5, "x");
        assert_eq!(log.last[&5].1, 2, "two counted, not logged");
        log.refused(6, "y");
        assert_eq!(log.last[&6].1, 0);
    }
}
