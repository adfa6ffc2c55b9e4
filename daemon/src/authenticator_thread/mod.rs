//! The authenticator's thread. The authenticator is synchronous (it blocks while the person
//! decides), so it runs apart from the async transports, which keep sending KEEPALIVEs and
//! reading CANCELs meanwhile. Every transport (UDP, UHID, a hybrid tunnel) holds a clone of
//! the [`WorkerHandle`] and names, in each job, where its answer goes: one authenticator, one
//! request at a time, whoever asks.
//!
//! - `opening`: the thread first opens the keystore, so that every TPM call (a blocking C
//!   library on one connection) happens on it, and reports how that goes;
//! - `serving`: once the daemon accepts the keystore, the thread serves requests.

mod opening;
mod serving;

use std::sync::atomic::AtomicBool;
use std::sync::{mpsc, Arc};

use protocol::control::RequestTransport;
use protocol::ctaphid::RequestKind;
use protocol::env::PresenceOutcome;
use protocol::Origin;
use storage::{DynKeystore, OsRng};
use tokio::sync::mpsc as async_mpsc;

pub use opening::{spawn, NoProgress, OpenFailure, OpenProgress, Starting};

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
pub(crate) enum Work {
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

/// The way to the authenticator thread; it ends when every handle is dropped.
#[derive(Clone)]
pub struct WorkerHandle {
    jobs: mpsc::Sender<Work>,
}

impl WorkerHandle {
    pub(crate) fn new(jobs: mpsc::Sender<Work>) -> Self {
        WorkerHandle { jobs }
    }

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
