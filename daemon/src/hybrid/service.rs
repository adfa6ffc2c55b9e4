//! Hybrid sessions on request (the control socket's `hybrid` message), one at a time: there is
//! one radio and one person to approve.

use std::sync::Arc;

use super::{serve, HybridError, HybridOptions, Progress, Summary};
use crate::authenticator_thread::WorkerHandle;

#[derive(Clone)]
pub struct HybridService {
    worker: WorkerHandle,
    options: Arc<HybridOptions>,
    running: Arc<tokio::sync::Mutex<()>>,
}

impl HybridService {
    pub fn new(worker: WorkerHandle, options: HybridOptions) -> Self {
        HybridService {
            worker,
            options: Arc::new(options),
            running: Arc::default(),
        }
    }

    /// Serves the QR code, unless a session is already running.
    pub async fn run(
        &self,
        qr_text: &str,
        progress: impl FnMut(Progress),
    ) -> Result<Summary, HybridError> {
        let Ok(_running) = self.running.try_lock() else {
            return Err(HybridError::Busy);
        };
        serve(qr_text, &self.options, self.worker.clone(), progress).await
    }
}
