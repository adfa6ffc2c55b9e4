//! The authenticator's thread. The authenticator is synchronous (it blocks while the person
//! decides), so it runs apart from the async transports, which keep sending KEEPALIVEs and
//! reading CANCELs meanwhile. Every transport (UDP, UHID, a hybrid tunnel) holds a clone of
//! the [`WorkerHandle`] and names, in each job, where its answer goes: one authenticator, one
//! request at a time, whoever asks.
//!
//! The thread also opens the keystore, so that every TPM call (a blocking C library on one
//! connection) happens on it: [`spawn`] starts it, reports how the opening goes, and
//! [`Starting::run`] lets it serve once the daemon accepts the keystore. A thread stuck in a
//! TPM that never answers is simply never told to run.

use std::sync::atomic::AtomicBool;
use std::sync::{mpsc, Arc, PoisonError};
use std::time::Duration;

use protocol::control::RequestTransport;
use protocol::ctaphid::RequestKind;
use protocol::env::{Keystore as _, Operation, Presence as _, PresenceOutcome, PresenceRequest};
use protocol::{Authenticator, AuthenticatorConfig, Origin};
use storage::{DynKeystore, KeystoreStatus, OsRng, TpmInfo};
use tokio::sync::mpsc as async_mpsc;
use tracing::{debug, info, warn};

use crate::clock::MonotonicClock;
use crate::prompts::presence::{DaemonPresence, JobContext};
use crate::status_board::StatusBoard;

/// The keystore the daemon runs with: either backend, picked at start.
pub type DaemonKeystore = DynKeystore<OsRng>;

/// A complete request from a transport.
pub struct Job {
    pub token: u64,
    pub kind: RequestKind,
    pub payload: Vec<u8>,
    pub cancelled: Arc<AtomicBool>,
    /// The channel, transport link or hybrid session it came from: what the authenticator
    /// binds multi-command state to.
    pub origin: Origin,
    /// How the request arrived (the presence prompt says so).
    pub transport: RequestTransport,
    /// Where the worker reports on this job.
    pub events: async_mpsc::UnboundedSender<WorkerEvent>,
}

/// What the authenticator thread is given to do.
enum Work {
    Request(Job),
    /// A channel started over (CTAPHID_INIT) or a hybrid session ended.
    Forget(Origin),
    /// The owner's gesture for a replug (before a reset): the answer goes back.
    ReplugGesture(mpsc::Sender<PresenceOutcome>),
    /// The key was unplugged and plugged in again.
    PowerCycle,
}

/// What the worker reports back.
#[derive(Debug)]
pub enum WorkerEvent {
    AwaitingPresence { token: u64 },
    Done { token: u64, response: Vec<u8> },
}

/// How the opening of the keystore goes, as the thread reports it.
#[derive(Debug)]
pub enum Progress {
    /// A TPM answered (the TPM backend goes on with its storage key and master secret).
    #[cfg_attr(not(feature = "tpm"), allow(dead_code))]
    TpmAnswered(TpmInfo),
    /// The keystore is open; the record files set aside as damaged, and what the keystore
    /// found that the person should hear about (a rollback, a TPM in lockout).
    Opened {
        status: KeystoreStatus,
        damaged: Vec<std::path::PathBuf>,
        notices: Vec<String>,
    },
    /// It could not be opened.
    Failed(OpenFailure),
}

/// Why the keystore did not open.
#[derive(Debug)]
pub struct OpenFailure {
    pub message: String,
    /// Nothing answered where the TPM should be: `--keystore auto` may use the file.
    pub tpm_absent: bool,
}

/// Why no progress came.
#[derive(Debug, PartialEq, Eq)]
pub enum NoProgress {
    /// Nothing within the time given.
    Timeout,
    /// The thread ended (after reporting everything it had).
    Gone,
}

/// A thread that is opening (or has opened) its keystore and waits to be told to serve.
pub struct Starting {
    thread: std::thread::JoinHandle<()>,
    progress: mpsc::Receiver<Progress>,
    go: mpsc::Sender<(DaemonPresence, StatusBoard, bool)>,
    jobs: mpsc::Sender<Work>,
}

impl Starting {
    /// The next report of the opening; waits at most `timeout` (forever if `None`).
    pub fn next_progress(&self, timeout: Option<Duration>) -> Result<Progress, NoProgress> {
        match timeout {
            Some(timeout) => self
                .progress
                .recv_timeout(timeout)
                .map_err(|err| match err {
                    mpsc::RecvTimeoutError::Timeout => NoProgress::Timeout,
                    mpsc::RecvTimeoutError::Disconnected => NoProgress::Gone,
                }),
            None => self.progress.recv().map_err(|_| NoProgress::Gone),
        }
    }

    /// Lets the thread serve requests, with `presence` deciding on user presence; it keeps
    /// the keystore's part of `status` (backend, credential count) up to date. It ends when
    /// every [`WorkerHandle`] is dropped.
    pub fn run(
        self,
        presence: DaemonPresence,
        status: StatusBoard,
        start_is_power_up: bool,
    ) -> anyhow::Result<(WorkerHandle, Finishing)> {
        self.go
            .send((presence, status, start_is_power_up))
            .map_err(|_| anyhow::anyhow!("the authenticator thread has stopped"))?;
        Ok((WorkerHandle { jobs: self.jobs }, Finishing(self.thread)))
    }
}

/// The serving authenticator thread, to wait for at shutdown.
pub struct Finishing(std::thread::JoinHandle<()>);

impl Finishing {
    /// Waits up to `grace` for the thread to end (it closes the keystore on its way out).
    pub fn wait(self, grace: Duration) {
        let deadline = std::time::Instant::now() + grace;
        while !self.0.is_finished() {
            if std::time::Instant::now() >= deadline {
                tracing::warn!("the authenticator thread is still busy; exiting without it");
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.0.join();
    }
}

/// The way to the authenticator thread; it ends when every handle is dropped.
#[derive(Clone)]
pub struct WorkerHandle {
    jobs: mpsc::Sender<Work>,
}

impl WorkerHandle {
    pub fn submit(&self, job: Job) -> anyhow::Result<()> {
        self.send(Work::Request(job))
    }

    /// `origin` starts over or is gone: the authenticator forgets what it began.
    pub fn forget(&self, origin: Origin) -> anyhow::Result<()> {
        self.send(Work::Forget(origin))
    }

    /// Asks the person to allow a replug (it leads to a reset), as for any request; waits for
    /// the answer without blocking the runtime.
    pub async fn replug_gesture(&self) -> anyhow::Result<PresenceOutcome> {
        let (reply, answer) = mpsc::channel();
        self.send(Work::ReplugGesture(reply))?;
        tokio::task::spawn_blocking(move || answer.recv())
            .await?
            .map_err(|_| anyhow::anyhow!("the authenticator thread has stopped"))
    }

    /// The virtual key was made anew: a power cycle for the authenticator.
    pub fn power_cycle(&self) -> anyhow::Result<()> {
        self.send(Work::PowerCycle)
    }

    fn send(&self, work: Work) -> anyhow::Result<()> {
        self.jobs
            .send(work)
            .map_err(|_| anyhow::anyhow!("the authenticator thread has stopped"))
    }
}

/// Starts the authenticator thread. It opens the keystore with `open` (reporting a TPM that
/// answered through the callback), reports the result, then waits for [`Starting::run`].
pub fn spawn<F>(open: F) -> Starting
where
    F: FnOnce(&dyn Fn(Progress)) -> Result<DaemonKeystore, OpenFailure> + Send + 'static,
{
    let (progress_tx, progress) = mpsc::channel();
    let (go, go_rx) = mpsc::channel::<(DaemonPresence, StatusBoard, bool)>();
    let (jobs, job_rx) = mpsc::channel::<Work>();
    let thread = std::thread::Builder::new()
        .name("authenticator".into())
        .spawn(move || {
            let report = |p: Progress| {
                let _ = progress_tx.send(p);
            };
            let mut keystore = match open(&report) {
                Ok(keystore) => keystore,
                Err(failure) => return report(Progress::Failed(failure)),
            };
            report(Progress::Opened {
                status: keystore.status(),
                damaged: keystore.damaged_files().to_vec(),
                notices: keystore.take_notices(),
            });
            // Not told to run: the daemon chose another keystore, or is exiting.
            let Ok((presence, status, start_is_power_up)) = go_rx.recv() else {
                return;
            };
            serve(keystore, presence, job_rx, &status, start_is_power_up);
        })
        .expect("spawning the authenticator thread");
    Starting {
        thread,
        progress,
        go,
        jobs,
    }
}

fn serve(
    keystore: DaemonKeystore,
    presence: DaemonPresence,
    jobs: mpsc::Receiver<Work>,
    status: &StatusBoard,
    start_is_power_up: bool,
) {
    let config = AuthenticatorConfig {
        max_credential_id_length: keystore.max_credential_id_len(),
        start_is_power_up,
        ..AuthenticatorConfig::default()
    };
    publish(status, &keystore.status());
    let mut authenticator =
        Authenticator::new(config, keystore, presence, MonotonicClock::start(), OsRng);
    let mut last_refresh = std::time::Instant::now();
    // Ends when every transport has dropped its handle (shutdown).
    for work in jobs {
        let job = match work {
            Work::Request(job) => job,
            Work::Forget(origin) => {
                authenticator.forget_origin(origin);
                continue;
            }
            Work::ReplugGesture(reply) => {
                let request = PresenceRequest {
                    operation: Operation::Reset,
                    rp_id: None,
                    user_name: None,
                };
                authenticator.presence_mut().set_job(JobContext {
                    cancelled: Arc::new(AtomicBool::new(false)),
                    transport: RequestTransport::Usb,
                    on_wait: Box::new(|| {}),
                });
                let _ = reply.send(authenticator.presence_mut().request_presence(&request));
                continue;
            }
            Work::PowerCycle => {
                authenticator.power_cycle();
                info!("the key was replugged: authenticatorReset is allowed for 10 s");
                continue;
            }
        };
        let notify = job.events.clone();
        let token = job.token;
        authenticator.presence_mut().set_job(JobContext {
            cancelled: job.cancelled,
            transport: job.transport,
            on_wait: Box::new(move || {
                let _ = notify.send(WorkerEvent::AwaitingPresence { token });
            }),
        });
        let response = match job.kind {
            RequestKind::Cbor => authenticator.process_cbor(job.origin, &job.payload),
            RequestKind::Msg => authenticator.process_apdu(job.origin, &job.payload),
        };
        debug!(
            token,
            status = response.first().copied(),
            discoverable = authenticator.keystore().discoverable_count(),
            "request answered"
        );
        for notice in authenticator.keystore_mut().take_notices() {
            warn!("keystore: {notice}");
        }
        publish(status, &authenticator.keystore().status());
        // A transport that went away meanwhile no longer wants the answer.
        let _ = job.events.send(WorkerEvent::Done { token, response });
        // After the answer left: reading the TPM's lockout state again is a TPM command.
        if last_refresh.elapsed() >= STATUS_REFRESH {
            last_refresh = std::time::Instant::now();
            publish(status, &authenticator.keystore_mut().refresh_status());
        }
    }
}

/// How often, at most, the TPM's dictionary-attack state is read again for `fido2ctl status`,
/// after a request (an idle daemon asks the TPM nothing).
const STATUS_REFRESH: Duration = Duration::from_secs(2);

/// The keystore's part of what `fido2ctl status` shows.
fn publish(board: &StatusBoard, keystore: &KeystoreStatus) {
    let mut board = board.lock().unwrap_or_else(PoisonError::into_inner);
    board.backend = keystore.backend.name().into();
    board.backend_detail = keystore.detail();
    board.discoverable_credentials = keystore.discoverable_credentials;
    board.pin_protection = keystore.pin_protection();
}
