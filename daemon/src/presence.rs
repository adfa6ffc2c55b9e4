//! User presence in the daemon: who answers "allow this?".
//!
//! By default the desktop agent (`fido2ctl agent`, connected to the control socket) asks the
//! person. `terminal` asks on the daemon's own terminal (for running it by hand), `deny` refuses
//! everything (a key nobody can touch), and `auto-approve` exists only for automated tests: it
//! says so at start and on every request it approves.

use std::io::BufRead as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use protocol::control::{PromptOperation, RequestTransport};
use protocol::display;
use protocol::env::{Operation, Presence, PresenceOutcome, PresenceRequest, UvOutcome};
use tracing::{info, warn};

use crate::control::{Broker, PromptSpec};
use crate::uv::UserVerifier;

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
}

impl PresenceMode {
    /// The name `status` reports.
    pub fn name(&self) -> &'static str {
        match self {
            PresenceMode::Agent { .. } => "agent",
            PresenceMode::Terminal { .. } => "terminal",
            PresenceMode::Deny => "deny",
            PresenceMode::AutoApprove => "auto-approve",
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
            PresenceMode::Agent { timeout, .. } | PresenceMode::Terminal { timeout } => *timeout,
            PresenceMode::Deny | PresenceMode::AutoApprove => Duration::ZERO,
        };
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
