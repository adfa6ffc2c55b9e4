//! The CTAPHID session: carries reports between a transport and the sans-IO CTAPHID engine,
//! hands complete requests to the authenticator worker, and sends KEEPALIVEs while it works.
//!
//! Nothing here polls: the loop sleeps until a report, a worker answer, the next keepalive (only
//! while a request is being processed) or the engine's next timeout.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use protocol::control::RequestTransport;
use protocol::ctaphid::{Command, CtapHid, DeviceVersion, Event, KeepaliveStatus, Report};
use tokio::sync::mpsc as async_mpsc;
use tokio::time::Instant;
use tracing::{debug, info};

use crate::authenticator_thread::{Job, WorkerEvent, WorkerHandle};
use crate::transport::ReportTransport;

/// CTAP 2.1 §11.2.9.2.1: KEEPALIVE at least every 100 ms while processing.
const KEEPALIVE_INTERVAL: Duration = Duration::from_millis(100);

/// The request the worker is processing.
struct InFlight {
    token: u64,
    cancelled: Arc<AtomicBool>,
    status: KeepaliveStatus,
    next_keepalive: Instant,
}

pub async fn run<T: ReportTransport>(
    mut transport: T,
    worker: WorkerHandle,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let (events_tx, mut events) = async_mpsc::unbounded_channel();
    let origin = Instant::now();
    let now_ms = move || u64::try_from(origin.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut engine = CtapHid::new(device_version());
    let mut in_flight: Option<InFlight> = None;
    tokio::pin!(shutdown);

    loop {
        let deadline = engine
            .next_deadline()
            .map(|ms| origin + Duration::from_millis(ms));
        let keepalive_at = in_flight.as_ref().map(|f| f.next_keepalive);
        let events = tokio::select! {
            _ = &mut shutdown => break,
            report = transport.recv() => engine.receive(&report?, now_ms()),
            Some(event) = events.recv() => {
                match event {
                    WorkerEvent::AwaitingPresence { token } => {
                        if let Some(flight) = in_flight.as_mut().filter(|f| f.token == token) {
                            // Tell the platform at once, so it can ask for a touch.
                            flight.status = KeepaliveStatus::UserPresenceNeeded;
                            flight.next_keepalive = Instant::now();
                        }
                    }
                    WorkerEvent::Done { token, response } => {
                        for report in engine.respond(token, &response) {
                            transport.send(&report).await?;
                        }
                        if in_flight.as_ref().is_some_and(|f| f.token == token) {
                            in_flight = None;
                        }
                    }
                }
                Vec::new()
            }
            _ = tokio::time::sleep_until(keepalive_at.unwrap_or(origin)), if keepalive_at.is_some() => {
                if let Some(flight) = in_flight.as_mut() {
                    if let Some(report) = engine.keepalive(flight.status) {
                        transport.send(&report).await?;
                    }
                    flight.next_keepalive = Instant::now() + KEEPALIVE_INTERVAL;
                }
                Vec::new()
            }
            _ = tokio::time::sleep_until(deadline.unwrap_or(origin)), if deadline.is_some() => {
                engine.poll_timeouts(now_ms())
            }
        };
        for event in events {
            match event {
                Event::Send(report) => {
                    log_ctaphid_error(&report);
                    transport.send(&report).await?
                }
                Event::Request {
                    token,
                    cid,
                    kind,
                    payload,
                } => {
                    debug!(
                        token,
                        cid = format_args!("{cid:08x}"),
                        ?kind,
                        len = payload.len(),
                        "request"
                    );
                    let cancelled = Arc::new(AtomicBool::new(false));
                    in_flight = Some(InFlight {
                        token,
                        cancelled: cancelled.clone(),
                        status: KeepaliveStatus::Processing,
                        next_keepalive: Instant::now() + KEEPALIVE_INTERVAL,
                    });
                    worker.submit(Job {
                        token,
                        kind,
                        payload,
                        cancelled,
                        origin: transport.origin(cid),
                        transport: RequestTransport::Usb,
                        events: events_tx.clone(),
                    })?;
                }
                Event::Cancel { token } => {
                    if let Some(flight) = in_flight.as_ref().filter(|f| f.token == token) {
                        debug!(token, "cancelled by the platform");
                        flight.cancelled.store(true, Ordering::SeqCst);
                    }
                }
                Event::Wink => info!("wink: the platform asks the key to identify itself"),
                Event::ChannelReset { cid } => worker.forget(transport.origin(cid))?,
            }
        }
    }
    Ok(())
}

/// A CTAPHID_ERROR the engine answers (a message that timed out between packets, a bad
/// sequence, a busy channel) is the one failure a platform reports only as "error reading":
/// say which, for whoever reads the debug log.
fn log_ctaphid_error(report: &Report) {
    if report[4] == Command::Error.wire_byte() {
        let cid = u32::from_be_bytes([report[0], report[1], report[2], report[3]]);
        debug!(
            cid = format_args!("{cid:08x}"),
            code = report[7],
            "CTAPHID_ERROR sent"
        );
    }
}

fn device_version() -> DeviceVersion {
    let mut parts = env!("CARGO_PKG_VERSION")
        .split('.')
        .map(|p| p.parse::<u8>().unwrap_or(0));
    DeviceVersion {
        major: parts.next().unwrap_or(0),
        minor: parts.next().unwrap_or(0),
        build: parts.next().unwrap_or(0),
    }
}
