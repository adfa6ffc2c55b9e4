//! The tunnel after the other computer joined: handshake, post-handshake message, then one
//! CTAP request after another through the authenticator worker.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use protocol::ctap2::hybrid_policy;
use protocol::ctaphid::RequestKind;
use protocol::hybrid::crypter::{max_ciphertext_len, Crypter};
use protocol::hybrid::handshake::{self, INITIATOR_MESSAGE_LEN};
use protocol::hybrid::messages::{self, InitiatorFrame};
use protocol::hybrid::qr::QrRequest;
use protocol::hybrid::HybridError as ProtocolError;
use protocol::wire::Request as _;
use tokio::sync::mpsc as async_mpsc;
use tokio_tungstenite::tungstenite::Message;
use tracing::{debug, info, warn};

use super::tunnel::TunnelStream;
use super::{random_secret, HybridError, Progress, Summary};
use crate::authenticator_thread::{Job, WorkerEvent, WorkerHandle};
use protocol::control::RequestTransport;
use protocol::Origin;

/// The largest CTAP request a peer may send: the maxMsgSize getInfo announces.
const MAX_REQUEST_LEN: usize = protocol::ctaphid::MAX_MESSAGE_LEN;
/// The longest tunnel message that can carry such a request (frame type byte + request, with
/// any padding): anything longer is refused before it is decrypted or decoded.
pub const MAX_FRAME_LEN: usize = max_ciphertext_len(1 + MAX_REQUEST_LEN);

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

/// Handshake, getInfo, then requests until the initiator shuts the session down.
pub async fn run(
    stream: &mut TunnelStream,
    request: &QrRequest,
    psk: &[u8; 32],
    first_message: &[u8],
    worker: &WorkerHandle,
    summary: &mut Summary,
    progress: &mut impl FnMut(Progress),
) -> Result<(), HybridError> {
    if first_message.len() != INITIATOR_MESSAGE_LEN {
        return Err(HybridError::Handshake(ProtocolError::HandshakeFailed(
            "the first handshake message has the wrong length",
        )));
    }
    let started = Instant::now();
    let done = loop {
        match handshake::respond(&request.identity_key, psk, first_message, random_secret()?) {
            Err(ProtocolError::BadRandomness(_)) => continue,
            other => break other.map_err(HybridError::Handshake)?,
        }
    };
    summary.handshake = started.elapsed();
    let mut crypter = done.crypter;
    send(stream, done.response).await?;

    let origin = Origin::hybrid(
        NEXT_SESSION.fetch_add(1, Ordering::Relaxed),
        request.request_type,
    );
    let _forget = ForgetOnDrop { worker, origin };
    let mut worker_link = WorkerLink::new(worker, origin);
    let get_info = worker_link
        .call(
            stream,
            &mut crypter,
            protocol::wire::GetInfoRequest.encode(),
            progress,
        )
        .await?;
    let get_info_cbor = match get_info.split_first() {
        Some((&0, cbor)) => cbor,
        Some((&status, _)) => return Err(HybridError::GetInfoFailed(status)),
        None => return Err(HybridError::WorkerStopped),
    };
    let post_handshake = messages::post_handshake_message(get_info_cbor);
    send(
        stream,
        crypter
            .encrypt(&post_handshake)
            .map_err(HybridError::Protocol)?,
    )
    .await?;
    info!("hybrid: connected, waiting for requests");
    progress(Progress::Connected);

    loop {
        let Some(ciphertext) = next_binary(stream).await? else {
            info!("hybrid: the other computer closed the tunnel");
            return Ok(());
        };
        // Refused unread: the frame counter cannot skip a frame, so the session ends.
        if ciphertext.len() > MAX_FRAME_LEN {
            warn!(
                len = ciphertext.len(),
                max = MAX_FRAME_LEN,
                "hybrid: the other computer sent a message longer than maxMsgSize allows"
            );
            return Err(HybridError::Protocol(ProtocolError::BadFrame(
                "a message longer than maxMsgSize allows",
            )));
        }
        let frame = crypter
            .decrypt(&ciphertext)
            .map_err(HybridError::Protocol)?;
        match InitiatorFrame::parse(&frame).map_err(HybridError::Protocol)? {
            InitiatorFrame::Shutdown => {
                info!("hybrid: the other computer ended the session");
                return Ok(());
            }
            InitiatorFrame::Other { kind } => {
                debug!(kind, "hybrid: ignoring a frame kind we do not serve");
            }
            InitiatorFrame::Ctap {
                command,
                parameters,
            } => {
                progress(Progress::Request { command });
                let mut payload = Vec::with_capacity(parameters.len() + 1);
                payload.push(command);
                payload.extend_from_slice(parameters);
                // What a phone does not serve never reaches the authenticator (which would
                // refuse it too): the peer gets the status, the log says why.
                let response = match (
                    payload.len() > MAX_REQUEST_LEN,
                    hybrid_policy::admit(request.request_type, &payload),
                ) {
                    (true, _) => {
                        warn!(
                            command,
                            len = payload.len(),
                            "hybrid: refused a request longer than maxMsgSize"
                        );
                        vec![protocol::ctap2::StatusCode::InvalidLength.as_byte()]
                    }
                    (false, Err(refusal)) => {
                        warn!(
                            command,
                            status = refusal.status().as_byte(),
                            "hybrid: refused: {refusal}"
                        );
                        vec![refusal.status().as_byte()]
                    }
                    (false, Ok(())) => {
                        worker_link
                            .call(stream, &mut crypter, payload, progress)
                            .await?
                    }
                };
                let status = response.first().copied().unwrap_or(0xff);
                summary.requests += 1;
                info!(command, status, "hybrid: request answered");
                progress(Progress::Answered { command, status });
                let frame = messages::ctap_response_frame(&response);
                send(
                    stream,
                    crypter.encrypt(&frame).map_err(HybridError::Protocol)?,
                )
                .await?;
            }
        }
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
        crypter: &mut Crypter,
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
                        Ok(Some(ciphertext)) => match crypter.decrypt(&ciphertext) {
                            Ok(frame) if frame.first() == Some(&0) => HybridError::TunnelClosed,
                            Ok(_) => HybridError::Protocol(ProtocolError::BadFrame(
                                "a request arrived before the previous one was answered",
                            )),
                            Err(err) => HybridError::Protocol(err),
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
