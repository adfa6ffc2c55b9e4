//! The prompt hub: which agents may see a prompt (the owner's, checked again for every prompt),
//! the prompts they were shown and not yet answered, and the withdrawal of a prompt from every
//! agent once one answered, the browser cancelled or the time ran out.

use std::collections::HashMap;
use std::sync::mpsc;

use protocol::control::{AgentInfo, Message, WithdrawReason};
use protocol::display;
use tokio::sync::mpsc as async_mpsc;
use tracing::warn;

use super::broker::{PromptSpec, Settled, UvQuestion};
use crate::owner::{seat_user, OwnerPolicy};

/// A connection of the control socket, as the daemon numbers them.
pub type ConnectionId = u64;

/// A connection's outgoing queue: bounded, never blocking the sender.
pub type Outgoing = async_mpsc::Sender<Message>;

/// A prompt shown to agents and not yet settled.
struct PendingPrompt {
    reply: mpsc::Sender<Settled>,
    asked: Vec<ConnectionId>,
    /// A verification question (answered by `uv-reply`), not an Allow/Deny prompt.
    secret: bool,
}

/// A connected agent.
struct Agent {
    info: AgentInfo,
    queue: Outgoing,
}

/// The agents and their open prompts.
pub struct Hub {
    owner: OwnerPolicy,
    agents: HashMap<ConnectionId, Agent>,
    pending: HashMap<u64, PendingPrompt>,
}

impl Hub {
    pub fn new(owner: OwnerPolicy) -> Self {
        Hub {
            owner,
            agents: HashMap::new(),
            pending: HashMap::new(),
        }
    }

    /// The connected agents, by process id.
    pub fn agent_infos(&self) -> Vec<AgentInfo> {
        let mut infos: Vec<AgentInfo> = self.agents.values().map(|a| a.info.clone()).collect();
        infos.sort_by_key(|a| a.pid);
        infos
    }

    /// The agents that may see a prompt now: the owner's, checked again for every prompt (the
    /// owner can change, `fido2ctl owner set`).
    fn owners_agents(&self) -> Vec<ConnectionId> {
        let owner = self.owner.owner_uid();
        self.agents
            .iter()
            .filter(|(_, agent)| Some(agent.info.uid) == owner)
            .map(|(connection, _)| *connection)
            .collect()
    }

    pub fn ask(
        &mut self,
        id: u64,
        spec: PromptSpec,
        question: Option<UvQuestion>,
        reply: mpsc::Sender<Settled>,
    ) {
        // The person at the keyboard is another user (a switched desktop): the owner cannot
        // be there to answer, and nobody else may. A refused touch, and a log line.
        if let (Some(seat), Some(owner)) = (seat_user(), self.owner.owner_uid()) {
            if seat != owner {
                warn!(
                    "refused a request: uid {seat} is the active user of the seat, and the key \
                     belongs to {}",
                    self.owner.describe()
                );
                let _ = reply.send(Settled::NoAgent);
                return;
            }
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
        let asked: Vec<ConnectionId> = self
            .owners_agents()
            .into_iter()
            .filter(|connection| self.deliver(*connection, prompt.clone()))
            .collect();
        if asked.is_empty() {
            let _ = reply.send(Settled::NoAgent);
            return;
        }
        self.pending.insert(
            id,
            PendingPrompt {
                reply,
                asked,
                secret,
            },
        );
    }

    /// Queues `message` for an agent; an agent that does not read its queue is not asked.
    fn deliver(&self, connection: ConnectionId, message: Message) -> bool {
        self.agents
            .get(&connection)
            .is_some_and(|agent| agent.queue.try_send(message).is_ok())
    }

    pub fn tell(&self, id: u64, message: String) {
        for connection in self.owners_agents() {
            self.deliver(
                connection,
                Message::UvInfo {
                    id,
                    message: message.clone(),
                },
            );
        }
    }

    /// Tells every agent something the person must see.
    fn notice(&self, message: &str) {
        for connection in self.agents.keys() {
            self.deliver(
                *connection,
                Message::Notice {
                    message: message.to_owned(),
                },
            );
        }
    }

    /// Whether `connection` was asked prompt `id`, of the kind (`secret` or not) it answers.
    pub fn asked(&self, id: u64, connection: ConnectionId, secret: bool) -> bool {
        self.pending
            .get(&id)
            .is_some_and(|p| p.secret == secret && p.asked.contains(&connection))
    }

    /// Settles a prompt and withdraws it from every agent that saw it but `except`.
    pub fn settle(
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
            self.deliver(*connection, Message::Withdraw { id, reason });
        }
    }

    pub fn add_agent(&mut self, connection: ConnectionId, info: AgentInfo, queue: Outgoing) {
        let others: Vec<&AgentInfo> = self
            .agents
            .values()
            .map(|agent| &agent.info)
            .filter(|other| other.uid == info.uid)
            .collect();
        if !others.is_empty() {
            // A second program now answers the owner's prompts: everyone must know. (It cannot
            // be stopped here; a fingerprint as the touch can: see the README.)
            let message = format!(
                "another program now answers fido2d's prompts: PID {}, {}{}",
                info.pid,
                display::clean(&info.executable, 200),
                if info.unit.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", display::clean(&info.unit, 100))
                }
            );
            warn!("{message}");
            self.agents.insert(connection, Agent { info, queue });
            self.notice(&message);
            return;
        }
        self.agents.insert(connection, Agent { info, queue });
    }

    pub fn remove_agent(&mut self, connection: ConnectionId) {
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
