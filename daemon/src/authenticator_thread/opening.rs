//! Opening the keystore on the authenticator thread: [`spawn`] starts the thread, which opens
//! the keystore and reports how it goes ([`OpenProgress`]); [`Starting::run`] lets it serve
//! once the daemon accepts the keystore. A thread stuck in a TPM that never answers is simply
//! never told to run.

use std::sync::mpsc;
use std::time::Duration;

use storage::{KeystoreStatus, TpmInfo};

use super::serving::serve;
use super::{DaemonKeystore, Work, WorkerHandle};
use crate::prompts::presence::DaemonPresence;
use crate::status_board::StatusBoard;

/// How the opening of the keystore goes, as the thread reports it.
#[derive(Debug)]
pub enum OpenProgress {
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
    progress: mpsc::Receiver<OpenProgress>,
    go: mpsc::Sender<(DaemonPresence, StatusBoard, bool)>,
    jobs: mpsc::Sender<Work>,
}

impl Starting {
    /// The next report of the opening; waits at most `timeout` (forever if `None`).
    pub fn next_progress(&self, timeout: Option<Duration>) -> Result<OpenProgress, NoProgress> {
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
        Ok((WorkerHandle::new(self.jobs), Finishing(self.thread)))
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

/// Starts the authenticator thread. It opens the keystore with `open` (reporting a TPM that
/// answered through the callback), reports the result, then waits for [`Starting::run`].
pub fn spawn<F>(open: F) -> Starting
where
    F: FnOnce(&dyn Fn(OpenProgress)) -> Result<DaemonKeystore, OpenFailure> + Send + 'static,
{
    let (progress_tx, progress) = mpsc::channel();
    let (go, go_rx) = mpsc::channel::<(DaemonPresence, StatusBoard, bool)>();
    let (jobs, job_rx) = mpsc::channel::<Work>();
    let thread = std::thread::Builder::new()
        .name("authenticator".into())
        .spawn(move || {
            let report = |p: OpenProgress| {
                let _ = progress_tx.send(p);
            };
            let mut keystore = match open(&report) {
                Ok(keystore) => keystore,
                Err(failure) => return report(OpenProgress::Failed(failure)),
            };
            report(OpenProgress::Opened {
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
