//! The tunnel after the other computer joined: WebSocket messages in and out of the
//! protocol's [`ResponderSession`] (handshake, post-handshake message, frames), its requests
//! to the authenticator worker, its events to the log and the person.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use protocol::ctaphid::RequestKind;
use protocol::hybrid::qr::QrRequest;
use protocol::hybrid::session::{Action, Event, Refusal, ResponderSession};
use protocol::hybrid::HybridError as ProtocolError;
use tokio::sync::mpsc as async_mpsc;
use tokio_tungstenite::tungstenite::Message;
use tracing::{debug, info, warn};

use super::tunnel::TunnelStream;
use super::{random_secret, HybridError, Progress, Summary};
use crate::authenticator_thread::{Job, WorkerEvent, WorkerHandle};
use protocol::control::RequestTransport;
use protocol::Origin;

/// Numbers the hybrid sessions of this daemon: each is its own origin.
static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

/// Tells the authenticator, however the session ends, that its state goes with it.
struct ForgetOnDrop<'a> {
    worker: &'a WorkerHandle,
    origin: Origin,
}

impl Drop for ForgetOnDrop<'_> {
    fn drop(&mut self) {
        // A stopped authenticator has nothing left to forget.
        let _ = self.worker.forget(self.origin);
    }
}

/// Waits for the initiator's first handshake message.
pub async fn wait_for_initiator(
    stream: &mut TunnelStream,
    timeout: Duration,
) -> Result<Vec<u8>, HybridError> {
    match tokio::time::timeout(timeout, next_binary(stream)).await {
        Ok(message) => message?.ok_or(HybridError::TunnelClosed),
        Err(_) => Err(HybridError::InitiatorTimeout(timeout.as_secs())),
    }
}

/// The next binary WebSocket message; `None` when the tunnel closed.
async fn next_binary(stream: &mut TunnelStream) -> Result<Option<Vec<u8>>, HybridError> {
    while let Some(message) = stream.next().await {
        match message.map_err(|err| HybridError::TunnelIo(err.to_string()))? {
            Message::Binary(bytes) => return Ok(Some(bytes.to_vec())),
            Message::Close(_) => return Ok(None),
            // Pings are answered by tungstenite; text has no meaning in caBLE.
            other => debug!(kind = ?other, "hybrid: ignoring a non-binary message"),
        }
    }
    Ok(None)
}

async fn send(stream: &mut TunnelStream, bytes: Vec<u8>) -> Result<(), HybridError> {
    stream
        .send(Message::Binary(bytes.into()))
        .await
        .map_err(|err| HybridError::TunnelIo(err.to_string()))
}

/// Closes the tunnel politely (errors do not matter any more).
pub async fn close(stream: &mut TunnelStream) {
    let _ = stream.close(None).await;
}

/// Handshake, getInfo, then requests until the initiator shuts the session down: each
/// tunnel message goes to the protocol's session, whose actions are carried out here.
pub async fn run(
    stream: &mut TunnelStream,
    request: &QrRequest,
    psk: &[u8; 32],
    first_message: &[u8],
    worker: &WorkerHandle,
    summary: &mut Summary,
    progress: &mut impl FnMut(Progress),
) -> Result<(), HybridError> {
    let started = Instant::now();
    // A random 32 bytes is not a P-256 scalar about once in 2^32 draws: draw again, but not
    // forever, so a broken random source ends the session instead of spinning.
    let mut draws = 0;
    let mut session = loop {
        draws += 1;
        match ResponderSession::new(request, psk, random_secret()?) {
            Err(ProtocolError::BadRandomness(_)) if draws < 4 => continue,
            other => break other.map_err(HybridError::Handshake)?,
        }
    };
    let mut actions = VecDeque::from(session.receive(first_message).map_err(failed)?);
    summary.handshake = started.elapsed();

    let origin = Origin::hybrid(
        NEXT_SESSION.fetch_add(1, Ordering::Relaxed),
        request.request_type,
    );
    let _forget = ForgetOnDrop { worker, origin };
    let mut worker_link = WorkerLink::new(worker, origin);
    loop {
        while let Some(action) = actions.pop_front() {
            match action {
                Action::Send(bytes) => send(stream, bytes).await?,
                Action::Ask(payload) => {
                    let response = worker_link
                        .call(stream, &mut session, payload, progress)
                        .await?;
                    // The answer's actions come before any left in this batch.
                    let answered = session.answer(&response).map_err(failed)?;
                    for action in answered.into_iter().rev() {
                        actions.push_front(action);
                    }
                }
                Action::Report(event) => report(event, summary, progress),
                Action::Close => {
                    info!("hybrid: the other computer ended the session");
                    return Ok(());
                }
            }
        }
        let Some(message) = next_binary(stream).await? else {
            info!("hybrid: the other computer closed the tunnel");
            return Ok(());
        };
        actions.extend(session.receive(&message).map_err(failed)?);
    }
}

/// Logs an event of the session and shows it to the person.
fn report(event: Event, summary: &mut Summary, progress: &mut impl FnMut(Progress)) {
    match event {
        Event::Connected => {
            info!("hybrid: connected, waiting for requests");
            progress(Progress::Connected);
        }
        Event::Request { command } => progress(Progress::Request { command }),
        Event::Refused {
            command,
            refusal: Refusal::TooLong { len },
        } => warn!(
            command,
            len, "hybrid: refused a request longer than maxMsgSize"
        ),
        Event::Refused {
            command,
            refusal: Refusal::NotServed(refusal),
        } => warn!(
            command,
            status = refusal.status().as_byte(),
            "hybrid: refused: {refusal}"
        ),
        Event::Answered { command, status } => {
            summary.requests += 1;
            info!(command, status, "hybrid: request answered");
            progress(Progress::Answered { command, status });
        }
        Event::Ignored { kind } => {
            debug!(kind, "hybrid: ignoring a frame kind we do not serve");
        }
    }
}

/// The daemon's words for why the session failed.
fn failed(err: ProtocolError) -> HybridError {
    match err {
        ProtocolError::HandshakeFailed(_) | ProtocolError::BadRandomness(_) => {
            HybridError::Handshake(err)
        }
        ProtocolError::FrameTooLong { len, max } => {
            warn!(
                len,
                max, "hybrid: the other computer sent a message longer than maxMsgSize allows"
            );
            HybridError::Protocol(err)
        }
        ProtocolError::EndedMidRequest => HybridError::TunnelClosed,
        ProtocolError::GetInfoFailed(status) => HybridError::GetInfoFailed(status),
        ProtocolError::EmptyAnswer => HybridError::WorkerStopped,
        other => HybridError::Protocol(other),
    }
}

/// Sets the request's cancel flag when dropped: a session dropped while the worker waits for
/// the person must not leave the prompt open. (Harmless once the request is answered.)
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Requests to the authenticator worker, one at a time.
struct WorkerLink<'a> {
    worker: &'a WorkerHandle,
    origin: Origin,
    events_tx: async_mpsc::UnboundedSender<WorkerEvent>,
    events: async_mpsc::UnboundedReceiver<WorkerEvent>,
    next_token: u64,
}

impl<'a> WorkerLink<'a> {
    fn new(worker: &'a WorkerHandle, origin: Origin) -> Self {
        let (events_tx, events) = async_mpsc::unbounded_channel();
        WorkerLink {
            worker,
            origin,
            events_tx,
            events,
            next_token: 1,
        }
    }

    /// Runs one CTAP request. If the initiator hangs up or shuts down meanwhile, the request
    /// is cancelled (a pending presence prompt is withdrawn) and the session ends.
    async fn call(
        &mut self,
        stream: &mut TunnelStream,
        session: &mut ResponderSession,
        payload: Vec<u8>,
        progress: &mut impl FnMut(Progress),
    ) -> Result<Vec<u8>, HybridError> {
        let token = self.next_token;
        self.next_token += 1;
        let cancelled = Arc::new(AtomicBool::new(false));
        // If the session is dropped mid-request (the client went away), withdraw the request.
        let _withdraw_if_dropped = CancelOnDrop(cancelled.clone());
        let job = Job {
            token,
            kind: RequestKind::Cbor,
            payload,
            cancelled: cancelled.clone(),
            origin: self.origin,
            transport: RequestTransport::Hybrid,
            events: self.events_tx.clone(),
        };
        self.worker
            .submit(job)
            .map_err(|_| HybridError::WorkerStopped)?;
        let mut ended_early: Option<HybridError> = None;
        loop {
            tokio::select! {
                event = self.events.recv() => match event {
                    Some(WorkerEvent::AwaitingPresence { token: t }) if t == token => {
                        progress(Progress::AwaitingPresence);
                    }
                    Some(WorkerEvent::Done { token: t, response }) if t == token => {
                        return match ended_early {
                            Some(err) => Err(err),
                            None => Ok(response),
                        };
                    }
                    Some(_) => {}
                    None => return Err(HybridError::WorkerStopped),
                },
                // While the worker works, a shutdown or a hang-up withdraws the request.
                message = next_binary(stream), if ended_early.is_none() => {
                    let reason = match message {
                        // The session ends on any message now: a shutdown or a frame out
                        // of turn.
                        Ok(Some(message)) => match session.receive(&message) {
                            Err(err) => failed(err),
                            Ok(_) => HybridError::Protocol(ProtocolError::OutOfTurn(
                                "the session went on while the authenticator worked",
                            )),
                        },
                        Ok(None) => HybridError::TunnelClosed,
                        Err(err) => err,
                    };
                    warn!("hybrid: the request is withdrawn: {reason}");
                    cancelled.store(true, Ordering::SeqCst);
                    ended_early = Some(reason);
                }
            }
        }
    }
}
