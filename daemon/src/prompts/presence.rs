//! User presence in the daemon: who answers "allow this?".
//!
//! `fingerprint` has fprintd match the owner's enrolled finger (`crate::prompts::fingerprint`): the
//! touch happens on the reader, outside any program, and the agents are only told what is being
//! approved. `agent` has the desktop agent (`fido2ctl agent`, connected to the control socket)
//! ask the person: any program of the owner can be that agent. `auto`, the default, picks the
//! fingerprint when the owner has an enrolled finger and a reader answers at start, else the
//! agent (or this terminal, when stdin is one). `terminal` asks on the daemon's own terminal
//! (for running it by hand), `deny` refuses everything (a key nobody can touch), and
//! `auto-approve` exists only for automated tests: it says so at start and on every request it
//! approves.

use std::io::BufRead as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use protocol::control::{PromptOperation, RequestTransport};
use protocol::display;
use protocol::env::{Operation, Presence, PresenceOutcome, PresenceRequest, UvOutcome};
use tracing::{info, warn};

use crate::owner::user_name;
use crate::owner::OwnerPolicy;
use crate::prompts::fingerprint::{self, MatchOutcome, Readiness};
use crate::prompts::uv::{UserVerifier, UvMethod};
use crate::prompts::{Broker, PromptSpec};

pub enum PresenceMode {
    /// Ask the desktop agents connected to the control socket.
    Agent {
        broker: Broker,
        timeout: Duration,
    },
    Terminal {
        timeout: Duration,
    },
    Deny,
    AutoApprove,
    /// The owner's enrolled finger on the reader, matched by fprintd, is the gesture. The
    /// agents are told what is being approved (the broker's `uv-info`); nothing they answer
    /// approves anything.
    Fingerprint {
        broker: Broker,
        owner: OwnerPolicy,
        timeout: Duration,
    },
}

/// The presence mode the daemon runs with, and why (the start-up log and `fido2ctl status`).
pub struct PresenceChoice {
    pub mode: PresenceMode,
    pub reason: String,
}

/// Whether the owner's finger can be the touch now: the owner's name, and what fprintd says.
pub fn fingerprint_readiness(owner: &OwnerPolicy) -> Readiness {
    let Some(uid) = owner.owner_uid() else {
        return Readiness::NotReady("the key has no owner yet, so no finger to match".into());
    };
    match user_name(uid) {
        Some(user) => fingerprint::readiness(&user),
        None => Readiness::NotReady(format!("the owner (uid {uid}) has no user name")),
    }
}

impl PresenceMode {
    /// The name `status` reports.
    pub fn name(&self) -> &'static str {
        match self {
            PresenceMode::Agent { .. } => "agent",
            PresenceMode::Terminal { .. } => "terminal",
            PresenceMode::Deny => "deny",
            PresenceMode::AutoApprove => "auto-approve",
            PresenceMode::Fingerprint { .. } => "fingerprint",
        }
    }
}

/// The request being processed: lets a presence wait be cancelled and announced.
pub struct JobContext {
    /// Set by the transport when the platform sends CTAPHID_CANCEL for this request.
    pub cancelled: Arc<AtomicBool>,
    /// Called once when the authenticator starts waiting for the person (KEEPALIVE switches to
    /// "user presence needed").
    pub on_wait: Box<dyn Fn() + Send>,
    /// How the request arrived; the prompt says so.
    pub transport: RequestTransport,
}

pub struct DaemonPresence {
    mode: PresenceMode,
    job: Option<JobContext>,
    terminal: Option<mpsc::Receiver<String>>,
    /// Built-in user verification, when configured (`--user-verification`).
    verifier: Option<UserVerifier>,
}

/// How often a waiting prompt checks whether the platform cancelled.
const CANCEL_POLL: Duration = Duration::from_millis(50);

impl DaemonPresence {
    pub fn new(mode: PresenceMode, verifier: Option<UserVerifier>) -> Self {
        let terminal = matches!(mode, PresenceMode::Terminal { .. }).then(spawn_stdin_reader);
        match &mode {
            PresenceMode::Agent { .. } => {
                info!("presence: asking the desktop agent (fido2ctl agent)")
            }
            PresenceMode::AutoApprove => warn!(
                "PRESENCE IS AUTO-APPROVED: every request is signed without asking anyone. \
                 This mode is for automated tests only; never use it with real accounts."
            ),
            PresenceMode::Deny => {
                info!("presence: every request that needs a gesture is refused (--presence deny)")
            }
            PresenceMode::Terminal { .. } => info!("presence: asking on this terminal"),
            PresenceMode::Fingerprint { .. } => info!(
                "presence: the owner's finger on the fingerprint reader (fprintd); an agent's \
                 answer approves nothing"
            ),
        }
        if let Some(verifier) = &verifier {
            info!(
                "built-in user verification: {} (PAM service {})",
                verifier.method.name(),
                verifier.service
            );
        }
        DaemonPresence {
            mode,
            job: None,
            terminal,
            verifier,
        }
    }

    pub fn set_job(&mut self, job: JobContext) {
        self.job = Some(job);
    }

    fn cancelled(&self) -> bool {
        self.job
            .as_ref()
            .is_some_and(|job| job.cancelled.load(Ordering::SeqCst))
    }

    /// What a prompt for `request` shows.
    fn prompt_spec(&self, request: &PresenceRequest<'_>, timeout: Duration) -> PromptSpec {
        PromptSpec {
            operation: prompt_operation(request.operation),
            // What a site chose is cleaned before anyone reads it (protocol::display).
            rp_id: request.rp_id.map(display::site),
            user_name: request.user_name.map(display::name),
            transport: self
                .job
                .as_ref()
                .map_or(RequestTransport::Usb, |job| job.transport),
            timeout,
        }
    }

    fn ask_agent(
        &self,
        broker: &Broker,
        request: &PresenceRequest<'_>,
        timeout: Duration,
    ) -> PresenceOutcome {
        let spec = self.prompt_spec(request, timeout);
        let never = AtomicBool::new(false);
        let cancelled = self.job.as_ref().map_or(&never, |job| &*job.cancelled);
        broker.ask(spec, cancelled)
    }

    /// Has fprintd match the owner's finger for `request`, telling the agents what is being
    /// approved and how it ended.
    fn match_finger(
        &self,
        broker: &Broker,
        owner: &OwnerPolicy,
        request: &PresenceRequest<'_>,
        timeout: Duration,
    ) -> MatchOutcome {
        let what = self.describe(request);
        let Some(user) = owner.owner_uid().and_then(user_name) else {
            warn!("refused: the key has no owner yet, so there is no finger to match");
            broker.tell(format!("{what}: refused (the key has no owner yet)"));
            return MatchOutcome::Unavailable("no owner".into());
        };
        // Information, not a question: only the finger answers.
        broker.tell(format!(
            "{what}: touch the fingerprint reader within {} s to allow it (only {user}'s \
             finger allows it, nothing typed or clicked does)",
            timeout.as_secs()
        ));
        let never = AtomicBool::new(false);
        let cancelled = self.job.as_ref().map_or(&never, |job| &*job.cancelled);
        let outcome = fingerprint::verify(&user, timeout, cancelled);
        let told = match &outcome {
            MatchOutcome::Matched => "the finger matched: allowed".to_owned(),
            MatchOutcome::NoMatch => "the finger did not match: refused".to_owned(),
            MatchOutcome::TimedOut => "no finger on the reader in time: refused".to_owned(),
            MatchOutcome::Cancelled => "withdrawn by the browser".to_owned(),
            MatchOutcome::Unavailable(why) => {
                warn!("refused: the fingerprint reader cannot be used: {why}");
                format!("the fingerprint reader cannot be used ({why}): refused")
            }
        };
        broker.tell(format!("{what}: {told}"));
        outcome
    }

    fn ask_on_terminal(
        &mut self,
        request: &PresenceRequest<'_>,
        timeout: Duration,
    ) -> PresenceOutcome {
        let Some(lines) = &self.terminal else {
            return PresenceOutcome::Denied;
        };
        // Answers typed before the question must not count.
        while lines.try_recv().is_ok() {}
        eprintln!(
            "\n>>> fido2d: {} -- allow? [y/N] (within {} s)",
            self.describe(request),
            timeout.as_secs()
        );
        let deadline = Instant::now() + timeout;
        loop {
            if self.cancelled() {
                eprintln!(">>> fido2d: request withdrawn by the browser");
                return PresenceOutcome::Cancelled;
            }
            let now = Instant::now();
            if now >= deadline {
                eprintln!(">>> fido2d: no answer, refused");
                return PresenceOutcome::TimedOut;
            }
            match lines.recv_timeout(CANCEL_POLL.min(deadline - now)) {
                Ok(line) => {
                    let yes = matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes");
                    return if yes {
                        PresenceOutcome::Approved
                    } else {
                        PresenceOutcome::Denied
                    };
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return PresenceOutcome::Denied,
            }
        }
    }
}

impl Presence for DaemonPresence {
    fn request_presence(&mut self, request: &PresenceRequest<'_>) -> PresenceOutcome {
        if let Some(job) = &self.job {
            (job.on_wait)();
        }
        let outcome = match &self.mode {
            PresenceMode::Agent { broker, timeout } => self.ask_agent(broker, request, *timeout),
            PresenceMode::AutoApprove => {
                warn!("AUTO-APPROVED (test mode): {}", self.describe(request));
                PresenceOutcome::Approved
            }
            PresenceMode::Deny => PresenceOutcome::Denied,
            PresenceMode::Terminal { timeout } => {
                let timeout = *timeout;
                self.ask_on_terminal(request, timeout)
            }
            PresenceMode::Fingerprint {
                broker,
                owner,
                timeout,
            } => match self.match_finger(broker, owner, request, *timeout) {
                MatchOutcome::Matched => PresenceOutcome::Approved,
                MatchOutcome::TimedOut => PresenceOutcome::TimedOut,
                MatchOutcome::Cancelled => PresenceOutcome::Cancelled,
                // A foreign finger, no reader, no enrolled finger: a refused touch.
                MatchOutcome::NoMatch | MatchOutcome::Unavailable(_) => PresenceOutcome::Denied,
            },
        };
        info!("presence for {}: {outcome:?}", self.describe(request));
        outcome
    }

    fn built_in_uv(&self) -> bool {
        self.verifier.is_some()
    }

    fn uv_modality(&self) -> u32 {
        self.verifier.as_ref().map_or(0, |v| v.method.modality())
    }

    fn verify_user(&mut self, request: &PresenceRequest<'_>) -> UvOutcome {
        let Some(verifier) = &self.verifier else {
            return UvOutcome::Unavailable;
        };
        if let Some(job) = &self.job {
            (job.on_wait)();
        }
        let timeout = match &self.mode {
            PresenceMode::Agent { timeout, .. }
            | PresenceMode::Terminal { timeout }
            | PresenceMode::Fingerprint { timeout, .. } => *timeout,
            PresenceMode::Deny | PresenceMode::AutoApprove => Duration::ZERO,
        };
        // With the reader as the touch, fingerprint UV is the same match, done by the daemon
        // itself (a match is then UV and UP at once); otherwise PAM (pam_fprintd) does it.
        if let (PresenceMode::Fingerprint { broker, owner, .. }, UvMethod::Fingerprint) =
            (&self.mode, verifier.method)
        {
            let outcome = match self.match_finger(broker, owner, request, timeout) {
                MatchOutcome::Matched => UvOutcome::Verified,
                MatchOutcome::NoMatch => UvOutcome::Failed,
                MatchOutcome::TimedOut => UvOutcome::TimedOut,
                MatchOutcome::Cancelled => UvOutcome::Cancelled,
                MatchOutcome::Unavailable(_) => UvOutcome::Unavailable,
            };
            info!(
                "user verification (fingerprint reader) for {}: {outcome:?}",
                self.describe(request)
            );
            return outcome;
        }
        let spec = self.prompt_spec(request, timeout);
        let never = AtomicBool::new(false);
        let cancelled = self.job.as_ref().map_or(&never, |job| &*job.cancelled);
        let outcome = verifier.verify(spec, cancelled);
        info!(
            "user verification for {}: {outcome:?}",
            self.describe(request)
        );
        outcome
    }
}

fn prompt_operation(operation: Operation) -> PromptOperation {
    match operation {
        Operation::Register => PromptOperation::Register,
        Operation::Authenticate => PromptOperation::SignIn,
        Operation::ConfirmExcluded => PromptOperation::ConfirmExcluded,
        Operation::Reset => PromptOperation::Reset,
        Operation::Selection => PromptOperation::Selection,
        Operation::ManageKey => PromptOperation::Other,
    }
}

impl DaemonPresence {
    /// [`describe`], prefixed with the origin when the request comes from elsewhere.
    fn describe(&self, request: &PresenceRequest<'_>) -> String {
        match self.job.as_ref().map(|job| job.transport) {
            Some(RequestTransport::Hybrid) => {
                format!(
                    "hybrid request from another computer: {}",
                    describe(request)
                )
            }
            _ => describe(request),
        }
    }
}

/// "register on example.com as alice": what the person is asked about.
fn describe(request: &PresenceRequest<'_>) -> String {
    let action = match request.operation {
        Operation::Register => "register a new credential",
        Operation::Authenticate => "sign in",
        Operation::ConfirmExcluded => "confirm an already registered key",
        Operation::Reset => "RESET the key (erase every credential)",
        Operation::Selection => "select this key",
        Operation::ManageKey => "manage the key (credentials, settings)",
    };
    let mut text = action.to_owned();
    if let Some(rp) = request.rp_id.filter(|rp| !rp.is_empty()) {
        text.push_str(&format!(" on {}", display::site(rp)));
    }
    if let Some(user) = request.user_name {
        text.push_str(&format!(" as {}", display::name(user)));
    }
    text
}

/// Reads stdin lines on a thread of its own, so a prompt can wait with a timeout.
fn spawn_stdin_reader() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("presence-stdin".into())
        .spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        })
        .expect("spawning the stdin reader thread");
    rx
}
