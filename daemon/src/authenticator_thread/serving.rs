//! The authenticator thread serving: one request at a time, from whichever transport asks.

use std::sync::atomic::AtomicBool;
use std::sync::{mpsc, Arc, PoisonError};
use std::time::Duration;

use protocol::control::RequestTransport;
use protocol::ctaphid::RequestKind;
use protocol::env::{Keystore as _, Operation, Presence as _, PresenceRequest};
use protocol::{Authenticator, AuthenticatorConfig};
use storage::{KeystoreStatus, OsRng};
use tracing::{debug, info, warn};

use super::{DaemonKeystore, Work, WorkerEvent};
use crate::clock::MonotonicClock;
use crate::prompts::presence::{DaemonPresence, JobContext};
use crate::status_board::StatusBoard;

pub(super) fn serve(
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
