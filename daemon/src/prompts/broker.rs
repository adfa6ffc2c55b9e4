//! The presence broker: how the authenticator thread asks the person, through the desktop agents
//! connected to the control socket.
//!
//! The authenticator thread is synchronous: [`Broker::ask`] blocks it until an agent answers, the
//! platform cancels, or the timeout. The control server (async) owns the agents; the two meet
//! over a channel of [`BrokerCall`]s. Every connected agent sees the prompt; the first answer
//! wins and the others' prompts are withdrawn.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use protocol::control::{Decision, PromptOperation, RequestTransport, Secret, WithdrawReason};
use protocol::env::PresenceOutcome;
use tokio::sync::mpsc as async_mpsc;
use tracing::warn;

/// How often a waiting prompt checks whether the platform cancelled.
const CANCEL_POLL: Duration = Duration::from_millis(50);

/// What a prompt shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptSpec {
    pub operation: PromptOperation,
    pub rp_id: Option<String>,
    pub user_name: Option<String>,
    pub transport: RequestTransport,
    pub timeout: Duration,
}

/// How the control server settled a prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// No agent is connected: nobody can be asked.
    NoAgent,
    /// Every agent that saw the prompt went away before answering.
    AgentsGone,
    Decided(Decision),
    /// The answer to a verification question; `None` when the person refused.
    Secret(Option<Secret>),
}

/// A question of the verifier (PAM) for the person, within a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UvQuestion {
    pub message: String,
    /// Whether the answer may be shown as it is typed.
    pub echo: bool,
}

/// How a verification question ended.
#[derive(Debug, PartialEq, Eq)]
pub enum SecretAnswer {
    Given(Secret),
    Refused,
    TimedOut,
    Cancelled,
    /// Nobody could be asked (no agent, or it went away).
    NoAgent,
}

/// From the authenticator thread to the control server.
#[derive(Debug)]
pub enum BrokerCall {
    Ask {
        id: u64,
        spec: PromptSpec,
        /// `Some` for a verification question, `None` for an Allow/Deny prompt.
        question: Option<UvQuestion>,
        reply: mpsc::Sender<Settled>,
    },
    /// Information from the verifier for the person ("place your finger on the reader").
    Tell {
        id: u64,
        message: String,
    },
    Withdraw {
        id: u64,
        reason: WithdrawReason,
    },
}

/// The authenticator thread's end of the broker.
#[derive(Clone)]
pub struct Broker {
    calls: async_mpsc::UnboundedSender<BrokerCall>,
    next_id: Arc<AtomicU64>,
}

impl Broker {
    /// A broker and the receiving end for the control server.
    pub fn new() -> (Self, async_mpsc::UnboundedReceiver<BrokerCall>) {
        let (calls, receiver) = async_mpsc::unbounded_channel();
        let broker = Broker {
            calls,
            next_id: Arc::new(AtomicU64::new(1)),
        };
        (broker, receiver)
    }

    /// Asks the person to allow; blocks until an answer, a cancel (`cancelled` set by the
    /// transport) or the timeout.
    pub fn ask(&self, spec: PromptSpec, cancelled: &AtomicBool) -> PresenceOutcome {
        match self.wait(spec, None, cancelled) {
            Waited::Settled(Settled::Decided(Decision::Allow)) => PresenceOutcome::Approved,
            Waited::Settled(Settled::Decided(Decision::Deny)) => PresenceOutcome::Denied,
            Waited::Settled(_) | Waited::Gone => PresenceOutcome::Denied,
            Waited::Cancelled => PresenceOutcome::Cancelled,
            Waited::TimedOut => PresenceOutcome::TimedOut,
        }
    }

    /// Asks the person a verifier's question (their password); blocks like [`Broker::ask`].
    pub fn ask_secret(
        &self,
        spec: PromptSpec,
        question: UvQuestion,
        cancelled: &AtomicBool,
    ) -> SecretAnswer {
        match self.wait(spec, Some(question), cancelled) {
            Waited::Settled(Settled::Secret(Some(secret))) => SecretAnswer::Given(secret),
            Waited::Settled(Settled::Secret(None) | Settled::Decided(_)) => SecretAnswer::Refused,
            Waited::Settled(Settled::NoAgent | Settled::AgentsGone) | Waited::Gone => {
                SecretAnswer::NoAgent
            }
            Waited::Cancelled => SecretAnswer::Cancelled,
            Waited::TimedOut => SecretAnswer::TimedOut,
        }
    }

    /// Shows the verifier's information to the agents (no answer expected).
    pub fn tell(&self, message: String) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let _ = self.calls.send(BrokerCall::Tell { id, message });
    }

    fn wait(
        &self,
        spec: PromptSpec,
        question: Option<UvQuestion>,
        cancelled: &AtomicBool,
    ) -> Waited {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let deadline = Instant::now() + spec.timeout;
        let (reply, settled) = mpsc::channel();
        let call = BrokerCall::Ask {
            id,
            spec,
            question,
            reply,
        };
        if self.calls.send(call).is_err() {
            warn!("refused: the control socket is not running, so no agent can be asked");
            return Waited::Gone;
        }
        loop {
            if cancelled.load(Ordering::SeqCst) {
                self.withdraw(id, WithdrawReason::Cancelled);
                return Waited::Cancelled;
            }
            let now = Instant::now();
            if now >= deadline {
                self.withdraw(id, WithdrawReason::Timeout);
                return Waited::TimedOut;
            }
            match settled.recv_timeout(CANCEL_POLL.min(deadline - now)) {
                Ok(Settled::NoAgent) => {
                    warn!(
                        "refused: no agent is connected to answer it; run `fido2ctl agent` in \
                         the desktop session (the fido2d-agent user service does)"
                    );
                    return Waited::Settled(Settled::NoAgent);
                }
                Ok(Settled::AgentsGone) => {
                    warn!("refused: the agent went away before answering");
                    return Waited::Settled(Settled::AgentsGone);
                }
                Ok(settled) => return Waited::Settled(settled),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return Waited::Gone,
            }
        }
    }

    fn withdraw(&self, id: u64, reason: WithdrawReason) {
        // A control server that is gone has no prompt to withdraw.
        let _ = self.calls.send(BrokerCall::Withdraw { id, reason });
    }
}

/// How [`Broker::wait`] ended.
enum Waited {
    Settled(Settled),
    Cancelled,
    TimedOut,
    /// The control server is gone.
    Gone,
}
