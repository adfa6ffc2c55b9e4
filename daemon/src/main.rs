//! fido2d: a software FIDO2 security key.
//!
//! The daemon owns the I/O: it opens the keystore, runs the sans-IO authenticator on a worker
//! thread, and carries CTAPHID reports between a transport and the CTAPHID engine.

// The one exception is the kernel boundary, transport::uhid_abi.
#![deny(unsafe_code)]

mod authenticator_thread;
mod cli;
mod clock;
mod config;
mod control;
mod hybrid;
mod keystore;
mod owner;
mod power_up;
mod prompts;
mod record_file;
mod state_lock;
mod status_board;
mod transport;

use std::process::ExitCode;

use tracing::{error, info, warn};

use crate::cli::{Cli, TransportKind};

/// Every freed block is zeroized before it goes back (see the workspace's Cargo.toml): the
/// copies of a secret that libraries make and drop do not linger in the heap.
#[global_allocator]
static ALLOCATOR: zalloc::ZeroizingAlloc<std::alloc::System> =
    zalloc::ZeroizingAlloc(std::alloc::System);

fn main() -> ExitCode {
    let cli = match config::load(std::env::args_os().collect()) {
        Ok(cli) => cli,
        Err(err) => {
            eprintln!("fido2d: {err:#}");
            return ExitCode::FAILURE;
        }
    };
    if cli.check_config {
        println!("fido2d: the configuration and options are valid");
        return ExitCode::SUCCESS;
    }
    quiet_tpm_library();
    init_logging(&cli.log_level);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            error!("{err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The TPM library (tpm2-tss) prints its own errors to stderr, also for failures fido2d
/// expects and handles (a tampered credential ID, an absent TPM). Silence it unless someone set
/// TSS2_LOG to debug it. Runs before any other thread exists.
fn quiet_tpm_library() {
    if std::env::var_os("TSS2_LOG").is_none() {
        std::env::set_var("TSS2_LOG", "all+NONE");
    }
}

/// Logs to the journal, with each line's priority, when systemd connected stderr to it
/// (`JOURNAL_STREAM`); otherwise to stderr.
fn init_logging(default_level: &str) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    // tss-esapi logs every failed TPM command at error level; fido2d reports those that
    // matter itself. FIDO2D_LOG=...,tss_esapi=debug shows them.
    let filter = tracing_subscriber::EnvFilter::try_from_env("FIDO2D_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("{default_level},tss_esapi=off"))
    });
    let journald = std::env::var_os("JOURNAL_STREAM")
        .and_then(|_| tracing_journald::layer().ok())
        .map(|layer| layer.with_syslog_identifier("fido2d".into()));
    let stderr = journald
        .is_none()
        .then(|| tracing_subscriber::fmt::layer().with_writer(std::io::stderr));
    tracing_subscriber::registry()
        .with(filter)
        .with(journald)
        .with(stderr)
        .init();
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let (broker, broker_calls) = prompts::Broker::new();
    let owner = owner::OwnerPolicy::load(cli.owner.as_deref(), &cli.state_dir)?;
    info!("the key's owner: {}", owner.describe());
    let prompts::presence::PresenceChoice {
        mode: presence_mode,
        reason: presence_reason,
    } = cli.presence_mode(broker.clone(), &owner);
    let presence_mode_name = presence_mode.name();
    info!("presence: {presence_mode_name} ({presence_reason})");
    let verifier = match cli.user_verification.method() {
        None => None,
        Some(method) => {
            if !matches!(
                presence_mode,
                prompts::presence::PresenceMode::Agent { .. }
                    | prompts::presence::PresenceMode::Fingerprint { .. }
            ) {
                anyhow::bail!(
                    "--user-verification {} asks through the desktop agent or the fingerprint \
                     reader: it needs --presence agent or --presence fingerprint",
                    method.name()
                );
            }
            Some(prompts::uv::UserVerifier {
                method,
                service: cli
                    .pam_service
                    .clone()
                    .unwrap_or_else(|| method.default_service().to_owned()),
                broker,
                owner: owner.clone(),
            })
        }
    };
    let status = status_board::StatusBoard::default();
    {
        let mut status = status.lock().expect("not shared yet");
        status.daemon_version = env!("CARGO_PKG_VERSION").into();
        status.presence_mode = presence_mode.name().into();
        status.presence_reason = presence_reason;
        status.user_verification = verifier.as_ref().map_or("off", |v| v.method.name()).into();
    }
    // A failed start changes nothing: the transport is checked before the state directory is
    // made or opened (without /dev/uhid, say, no empty key is left behind).
    if cli.hybrid.is_none() {
        match cli.transport {
            TransportKind::Uhid => transport::uhid::UhidTransport::check_access()?,
            TransportKind::Udp => transport::udp::check_port(cli.udp_port)?,
        }
    }
    // One daemon per state directory; the one-shot hybrid session goes through the running
    // service instead of opening the store beside it.
    let _state_lock = match state_lock::acquire(&cli.state_dir) {
        Ok(lock) => lock,
        Err(state_lock::LockError::Held { .. }) if cli.hybrid.is_some() => {
            return hybrid_through_the_service(&cli);
        }
        Err(err) => return Err(err.into()),
    };
    // The authenticator thread opens the keystore (every TPM call happens on it).
    let starting = keystore::start(&cli.keystore_settings()?)?;
    let presence = prompts::presence::DaemonPresence::new(presence_mode, verifier);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // The uhid key powers up at its first appearance in this boot, not at every start (see
    // power_up); over UDP (tests) every start stays a power-up.
    let start_is_power_up = cli.hybrid.is_some()
        || cli.transport == TransportKind::Udp
        || power_up::first_in_this_boot(&cli.state_dir);
    let (worker, authenticator_thread) =
        starting.run(presence, status.clone(), start_is_power_up)?;
    let served = runtime.block_on(async move {
        // Handlers first: a SIGTERM right after the ready line must still shut down cleanly.
        let shutdown = shutdown_signal()?;
        // The device first: without /dev/uhid nothing else matters, and its error says so.
        let transport = match cli.hybrid.clone() {
            Some(qr_text) => Transport::HybridOnce(qr_text),
            None => match cli.transport {
                TransportKind::Uhid => {
                    let uniq = transport::uhid::default_uniq();
                    let device = transport::uhid::UhidTransport::create(&uniq)?;
                    Transport::Uhid(device, uniq)
                }
                TransportKind::Udp => {
                    Transport::Udp(transport::udp::UdpTransport::bind(cli.udp_port).await?)
                }
            },
        };
        let control = control::ControlServer::bind(&cli.control_socket, owner, status.clone())?;
        info!(
            "control socket on {} (agent and fido2ctl)",
            control.path().display()
        );
        // Auto-approve signs whatever comes: never for another computer.
        let control = if matches!(presence_mode_name, "auto-approve") {
            warn!("hybrid sessions are off: --presence auto-approve never serves another computer");
            control
        } else {
            control.with_hybrid(hybrid::HybridService::new(
                worker.clone(),
                cli.hybrid_options(),
            ))
        };
        // `fido2ctl reset` replugs the key first: the owner's gesture, then the device anew.
        let (replug_requests, replug_rx) = tokio::sync::mpsc::channel(1);
        let (replug_now, mut replug_device) = tokio::sync::mpsc::channel(1);
        let uhid = matches!(transport, Transport::Uhid(..));
        tokio::spawn(serve_replugs(
            replug_rx,
            worker.clone(),
            uhid.then_some(replug_now),
        ));
        tokio::spawn(control.with_replug(replug_requests).run(broker_calls));
        tokio::pin!(shutdown);
        match transport {
            Transport::HybridOnce(qr_text) => run_hybrid_once(&qr_text, &cli, worker).await,
            Transport::Uhid(mut device, uniq) => {
                // A replug's caller, told once the new key is there.
                let mut replugged: Option<tokio::sync::oneshot::Sender<()>> = None;
                loop {
                    let node = tokio::select! {
                        node = device.wait_until_ready() => node?,
                        _ = &mut shutdown => return Ok(()),
                    };
                    if let Err(err) = power_up::record(&cli.state_dir) {
                        warn!("cannot record this boot in the state directory: {err}");
                    }
                    if let Some(done) = replugged.take() {
                        let _ = done.send(());
                    }
                    let id = format!(
                        "{:04x}:{:04x}",
                        transport::uhid::VENDOR_ID,
                        transport::uhid::PRODUCT_ID
                    );
                    status.lock().expect("poisoned").device = match &node {
                        Some(node) => format!("uhid {} (USB {id})", node.display()),
                        None => format!("uhid (USB {id}, hidraw node not found)"),
                    };
                    match node {
                        Some(node) => info!(
                        "fido2d ready: virtual security key on {} (uhid, USB {id}, serial {uniq})",
                        node.display()
                    ),
                        None => info!(
                            "fido2d ready: virtual security key created through {} (USB {id}, \
                         serial {uniq}); its hidraw node was not found in /sys/class/hidraw",
                            transport::uhid::UHID_PATH
                        ),
                    }
                    tokio::select! {
                        served = transport::ctaphid_session::run(device, worker.clone(), shutdown.as_mut()) => {
                            return served;
                        }
                        Some(done) = replug_device.recv() => {
                            // The session, and the device with it, is dropped: UHID_DESTROY, as
                            // when a key is unplugged. Then it is plugged in again.
                            info!("replug: the virtual key is removed and made anew");
                            device = transport::uhid::UhidTransport::create(&uniq)?;
                            replugged = Some(done);
                        }
                    }
                }
            }
            Transport::Udp(transport) => {
                status.lock().expect("poisoned").device = format!("udp {}", transport.local_addr());
                warn!(
                    "the UDP transport is for development and tests only: any local program can \
                     talk to the key through it"
                );
                info!(
                    "fido2d ready: CTAPHID over UDP on {}",
                    transport.local_addr()
                );
                transport::ctaphid_session::run(transport, worker, shutdown).await
            }
        }
    });
    // The control server's tasks (the hybrid service's handle among them) live as long as the
    // runtime: drop them too, so that nothing holds the authenticator any more. Then its thread
    // closes the keystore (and flushes what it loaded into the TPM). Wait for that, but not
    // forever.
    runtime.shutdown_timeout(SHUTDOWN_GRACE);
    authenticator_thread.wait(SHUTDOWN_GRACE);
    served
}

/// Serves `fido2ctl reset`'s replugs: the owner's gesture, then (on uhid) the device is made
/// anew, then the authenticator powers up.
async fn serve_replugs(
    mut requests: tokio::sync::mpsc::Receiver<control::ReplugReply>,
    worker: authenticator_thread::WorkerHandle,
    device: Option<tokio::sync::mpsc::Sender<tokio::sync::oneshot::Sender<()>>>,
) {
    while let Some(reply) = requests.recv().await {
        let result = async {
            match worker
                .replug_gesture()
                .await
                .map_err(|err| err.to_string())?
            {
                protocol::env::PresenceOutcome::Approved => {}
                outcome => return Err(format!("the replug was not allowed ({outcome:?})")),
            }
            if let Some(device) = &device {
                let (done, made) = tokio::sync::oneshot::channel();
                device
                    .send(done)
                    .await
                    .map_err(|_| "the key is shutting down".to_owned())?;
                made.await
                    .map_err(|_| "the key could not be made anew".to_owned())?;
            }
            worker.power_cycle().map_err(|err| err.to_string())
        }
        .await;
        let _ = reply.send(result);
    }
}

/// How long the authenticator thread may take to finish at shutdown (it may be waiting for a
/// person).
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// How this run of the daemon serves platforms.
enum Transport {
    Uhid(transport::uhid::UhidTransport, String),
    Udp(transport::udp::UdpTransport),
    /// One hybrid session for a QR code given on the command line, then exit.
    HybridOnce(String),
}

/// `fido2d --hybrid QR` while the service runs on the same state directory: the service serves
/// the session (as for `fido2ctl hybrid`), and this process relays its progress to the log.
fn hybrid_through_the_service(cli: &Cli) -> anyhow::Result<()> {
    use protocol::control::{self, Message, Role};
    use std::io::{BufRead as _, Write as _};
    info!(
        "the fido2d service uses {}: asking it to serve the hybrid session",
        cli.state_dir.display()
    );
    let socket = &cli.control_socket;
    let mut stream = std::os::unix::net::UnixStream::connect(socket).map_err(|err| {
        anyhow::anyhow!(
            "cannot reach the running fido2d at {}: {err}",
            socket.display()
        )
    })?;
    let hello = Message::Hello {
        role: Role::Client,
        client: format!("fido2d --hybrid {}", env!("CARGO_PKG_VERSION")),
    };
    let qr = cli.hybrid.clone().unwrap_or_default();
    stream.write_all(control::encode(&hello).as_bytes())?;
    stream.write_all(control::encode(&Message::Hybrid { qr }).as_bytes())?;
    for line in std::io::BufReader::new(stream).lines() {
        match control::decode(&line?).map_err(|err| anyhow::anyhow!("fido2d: {err}"))? {
            Message::Welcome { .. } => {}
            Message::HybridProgress { message, .. } => info!("hybrid: {message}"),
            Message::HybridDone { ok: true, message } => {
                info!("hybrid: {message}");
                return Ok(());
            }
            Message::HybridDone { ok: false, message } | Message::Error { message } => {
                anyhow::bail!("hybrid: {message}")
            }
            _ => {}
        }
    }
    anyhow::bail!("the running fido2d closed the connection")
}

/// `fido2d --hybrid QR`: one hybrid session, then exit (the running daemon serves
/// `fido2ctl hybrid` through its control socket instead).
async fn run_hybrid_once(
    qr_text: &str,
    cli: &Cli,
    worker: authenticator_thread::WorkerHandle,
) -> anyhow::Result<()> {
    let options = cli.hybrid_options();
    let summary = hybrid::serve(qr_text, &options, worker, |step| {
        info!("hybrid: {step:?}");
    })
    .await
    .map_err(|err| anyhow::anyhow!("hybrid: {err}"))?;
    info!(
        requests = summary.requests,
        tunnel_open_ms = summary.tunnel_open.as_millis() as u64,
        advertising_ms = summary.advertising.as_millis() as u64,
        initiator_joined_ms = summary.initiator_joined.as_millis() as u64,
        handshake_us = summary.handshake.as_micros() as u64,
        "hybrid session done"
    );
    Ok(())
}

/// Installs the SIGTERM and SIGINT handlers now; the future resolves on either signal.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => info!("SIGTERM: shutting down"),
            _ = int.recv() => info!("SIGINT: shutting down"),
        }
    })
}
