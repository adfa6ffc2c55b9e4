//! The hybrid transport: serve another computer the way a phone does.
//!
//! Given the text of the `FIDO:/` QR code the other computer shows, [`serve`]:
//! 1. decodes the request (protocol::hybrid::qr) and derives the session keys;
//! 2. opens the tunnel at the tunnel server while it readies the Bluetooth adapter;
//! 3. advertises the encrypted advert (routing ID + tunnel server) until the other computer
//!    joins the tunnel, then stops advertising;
//! 4. answers the Noise handshake, sends our getInfo, and carries CTAP requests to the
//!    authenticator worker (same keys, same presence prompts, marked as hybrid) until the
//!    other computer ends the session or the time is up.

mod advertiser;
mod error;
mod service;
mod session;
mod tunnel;

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use protocol::hybrid::advert::Eid;
use protocol::hybrid::qr::{QrRequest, RequestType};
use protocol::hybrid::{keys, tunnel_domain};
use tracing::info;
use zeroize::Zeroizing;

pub use error::HybridError;
pub use service::HybridService;

use crate::authenticator_thread::WorkerHandle;

/// How a hybrid session is run.
#[derive(Debug, Clone)]
pub struct HybridOptions {
    /// Tunnel server base URL (`wss://host[:port]`, or `ws://` for tests). `None`: the server
    /// that `tunnel_domain` names, over wss.
    pub tunnel_url: Option<String>,
    /// The tunnel server id put in the advert (0 = cable.ua5v.com); the other computer
    /// connects to the server that this id names.
    pub tunnel_domain: u16,
    /// An extra CA certificate (PEM) to trust for the tunnel server.
    pub extra_ca: Option<PathBuf>,
    /// A QR code older than this has expired.
    pub qr_max_age: Duration,
    /// How long to advertise before giving up on the other computer.
    pub initiator_timeout: Duration,
    /// The longest a whole session may last.
    pub session_timeout: Duration,
}

impl Default for HybridOptions {
    fn default() -> Self {
        HybridOptions {
            tunnel_url: None,
            tunnel_domain: 0,
            extra_ca: None,
            qr_max_age: Duration::from_secs(10 * 60),
            initiator_timeout: Duration::from_secs(60),
            session_timeout: Duration::from_secs(5 * 60),
        }
    }
}

/// Steps of a session, for whoever shows progress to the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    QrAccepted { request: RequestType },
    TunnelOpen { url: String },
    Advertising { adapter: String },
    InitiatorJoined,
    Connected,
    Request { command: u8 },
    AwaitingPresence,
    Answered { command: u8, status: u8 },
}

impl Progress {
    /// A short name for the step (the control socket's `stage`).
    pub fn stage(&self) -> &'static str {
        match self {
            Progress::QrAccepted { .. } => "qr-accepted",
            Progress::TunnelOpen { .. } => "tunnel-open",
            Progress::Advertising { .. } => "advertising",
            Progress::InitiatorJoined => "initiator-joined",
            Progress::Connected => "connected",
            Progress::Request { .. } => "request",
            Progress::AwaitingPresence => "awaiting-presence",
            Progress::Answered { .. } => "answered",
        }
    }

    /// The step in words for the person.
    pub fn describe(&self) -> String {
        match self {
            Progress::QrAccepted {
                request: RequestType::MakeCredential,
            } => "QR code read: the other computer wants to register a passkey".into(),
            Progress::QrAccepted {
                request: RequestType::GetAssertion,
            } => "QR code read: the other computer wants to sign in".into(),
            Progress::TunnelOpen { url } => format!("tunnel server reached ({url})"),
            Progress::Advertising { adapter } => format!(
                "advertising over Bluetooth ({adapter}): the other computer should find this one \
                 now"
            ),
            Progress::InitiatorJoined => "the other computer joined the tunnel".into(),
            Progress::Connected => "connected to the other computer".into(),
            Progress::Request { command } => {
                format!("the other computer asks: {}", command_name(*command))
            }
            Progress::AwaitingPresence => "waiting for your approval on this computer".into(),
            Progress::Answered { command, status } => format!(
                "{} answered (status 0x{status:02x})",
                command_name(*command)
            ),
        }
    }
}

fn command_name(command: u8) -> &'static str {
    use protocol::wire::Command;
    match Command::from_byte(command) {
        Some(Command::MakeCredential) => "register a passkey (makeCredential)",
        Some(Command::GetAssertion) => "sign in (getAssertion)",
        Some(Command::GetInfo) => "getInfo",
        Some(Command::GetNextAssertion) => "getNextAssertion",
        Some(Command::Selection) => "selection",
        _ => "another CTAP command",
    }
}

/// How a session went (times from the QR code's arrival).
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub requests: u32,
    pub tunnel_open: Duration,
    pub advertising: Duration,
    pub initiator_joined: Duration,
    /// The handshake computation alone (our side of Noise).
    pub handshake: Duration,
}

/// Serves one hybrid session for the QR code `qr_text`.
pub async fn serve(
    qr_text: &str,
    options: &HybridOptions,
    worker: WorkerHandle,
    mut progress: impl FnMut(Progress),
) -> Result<Summary, HybridError> {
    let started = Instant::now();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let request =
        QrRequest::parse(qr_text, now, options.qr_max_age.as_secs()).map_err(HybridError::Qr)?;
    info!(?request, "hybrid: QR code accepted");
    progress(Progress::QrAccepted {
        request: request.request_type,
    });

    let url = tunnel_url(options, &request)?;
    let tls = tunnel::tls_config(options.extra_ca.as_deref())?;
    let (advertiser, opened) = tokio::try_join!(advertiser::Advertiser::open(), async {
        let opened = tunnel::open(&url, tls).await?;
        Ok((opened, started.elapsed()))
    })?;
    let ((mut stream, routing_id), tunnel_open) = opened;
    info!(%url, routing_id = %hex(&routing_id), "hybrid: tunnel open");
    progress(Progress::TunnelOpen { url: url.clone() });

    let eid = Eid {
        nonce: random_bytes()?,
        routing_id,
        tunnel_domain: options.tunnel_domain,
    };
    let eid_key = keys::eid_key(request.qr_secret());
    let psk = keys::psk(request.qr_secret(), &eid.to_bytes());
    let advert = advertiser.advertise(&eid.encrypt(&eid_key)).await?;
    let advertising = started.elapsed();
    info!(adapter = advertiser.adapter_name(), "hybrid: advertising");
    progress(Progress::Advertising {
        adapter: advertiser.adapter_name().to_owned(),
    });

    let first_message =
        match session::wait_for_initiator(&mut stream, options.initiator_timeout).await {
            Ok(message) => {
                drop(advert); // The other computer found us: the advert has done its job.
                message
            }
            Err(err) => {
                advert.withdraw().await;
                return Err(err);
            }
        };
    let initiator_joined = started.elapsed();
    info!("hybrid: the other computer joined the tunnel");
    progress(Progress::InitiatorJoined);

    let deadline = tokio::time::Instant::from_std(started + options.session_timeout);
    let mut summary = Summary {
        tunnel_open,
        advertising,
        initiator_joined,
        ..Summary::default()
    };
    let served = tokio::time::timeout_at(
        deadline,
        session::run(
            &mut stream,
            &request,
            &psk,
            &first_message,
            &worker,
            &mut summary,
            &mut progress,
        ),
    )
    .await;
    let result = match served {
        Ok(result) => result,
        Err(_) => Err(HybridError::SessionTimeout(
            options.session_timeout.as_secs(),
        )),
    };
    session::close(&mut stream).await;
    result.map(|()| summary)
}

/// `<base>/cable/new/<TUNNEL ID>`.
fn tunnel_url(options: &HybridOptions, request: &QrRequest) -> Result<String, HybridError> {
    let base = match &options.tunnel_url {
        Some(base) => base.trim_end_matches('/').to_owned(),
        None => {
            let domain = tunnel_domain::domain_name(options.tunnel_domain)
                .map_err(|err| HybridError::Config(err.to_string()))?;
            if !tunnel_domain::initiator_knows(options.tunnel_domain, request.known_domains) {
                return Err(HybridError::Config(format!(
                    "the other computer does not know the tunnel server {domain}"
                )));
            }
            format!("wss://{domain}")
        }
    };
    if !(base.starts_with("wss://") || base.starts_with("ws://")) {
        return Err(HybridError::Config(format!(
            "the tunnel URL {base} is neither wss:// nor ws://"
        )));
    }
    let tunnel_id = keys::tunnel_id(request.qr_secret());
    Ok(format!(
        "{base}{}",
        tunnel_domain::new_tunnel_path(&tunnel_id)
    ))
}

fn random_bytes<const N: usize>() -> Result<[u8; N], HybridError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)
        .map_err(|err| HybridError::Config(format!("no randomness from the OS: {err}")))?;
    Ok(bytes)
}

/// Fresh ephemeral key bytes (redrawn in the ~2^-32 case of an out-of-range scalar).
fn random_secret() -> Result<Zeroizing<[u8; 32]>, HybridError> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    getrandom::fill(bytes.as_mut_slice())
        .map_err(|err| HybridError::Config(format!("no randomness from the OS: {err}")))?;
    Ok(bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use ciborium::Value;
    use p256::elliptic_curve::sec1::ToSec1Point;

    use super::*;

    /// A QR request whose initiator knows `known_domains` assigned tunnel servers.
    fn request(known_domains: u64) -> QrRequest {
        let identity = p256::SecretKey::from_slice(&[5; 32]).unwrap().public_key();
        let map = Value::Map(vec![
            (
                Value::from(0),
                Value::Bytes(identity.to_sec1_point(true).as_bytes().to_vec()),
            ),
            (
                Value::from(1),
                Value::Bytes(hex_decode("01fea6f7c4807493dc256f9eacf756c9")),
            ),
            (Value::from(2), Value::from(known_domains)),
        ]);
        QrRequest::from_cbor(&protocol::cbor::encode(&map)).unwrap()
    }

    fn hex_decode(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn the_default_tunnel_is_google_s_over_wss() {
        let url = tunnel_url(&HybridOptions::default(), &request(2)).unwrap();
        assert_eq!(
            url,
            "wss://cable.ua5v.com/cable/new/367CBBF5F5085DF4098476AFE4B9B1D2"
        );
    }

    #[test]
    fn a_configured_base_url_is_used_as_given() {
        let options = HybridOptions {
            tunnel_url: Some("ws://127.0.0.1:8080/".into()),
            ..HybridOptions::default()
        };
        assert_eq!(
            tunnel_url(&options, &request(2)).unwrap(),
            "ws://127.0.0.1:8080/cable/new/367CBBF5F5085DF4098476AFE4B9B1D2"
        );
        let options = HybridOptions {
            tunnel_url: Some("https://example.com".into()),
            ..HybridOptions::default()
        };
        assert!(matches!(
            tunnel_url(&options, &request(2)),
            Err(HybridError::Config(_))
        ));
    }

    #[test]
    fn apple_s_server_only_for_initiators_that_know_it() {
        let apple = HybridOptions {
            tunnel_domain: 1,
            ..HybridOptions::default()
        };
        assert!(tunnel_url(&apple, &request(2))
            .unwrap()
            .starts_with("wss://cable.auth.com/"));
        assert!(matches!(
            tunnel_url(&apple, &request(1)),
            Err(HybridError::Config(_))
        ));
        let unassigned = HybridOptions {
            tunnel_domain: 7,
            ..HybridOptions::default()
        };
        assert!(matches!(
            tunnel_url(&unassigned, &request(2)),
            Err(HybridError::Config(_))
        ));
        let hashed = HybridOptions {
            tunnel_domain: 266,
            ..HybridOptions::default()
        };
        assert!(tunnel_url(&hashed, &request(0))
            .unwrap()
            .starts_with("wss://cable.wufkweyy3uaxb.com/cable/new/"));
    }

    #[test]
    fn progress_has_a_stage_name_and_words() {
        let steps = [
            Progress::QrAccepted {
                request: RequestType::MakeCredential,
            },
            Progress::TunnelOpen {
                url: "wss://x".into(),
            },
            Progress::Advertising {
                adapter: "hci0".into(),
            },
            Progress::InitiatorJoined,
            Progress::Connected,
            Progress::Request { command: 1 },
            Progress::AwaitingPresence,
            Progress::Answered {
                command: 2,
                status: 0,
            },
        ];
        let mut stages: Vec<_> = steps.iter().map(Progress::stage).collect();
        stages.dedup();
        assert_eq!(stages.len(), steps.len(), "distinct stage names");
        assert!(steps[0].describe().contains("register"));
        assert!(steps[5].describe().contains("makeCredential"));
        assert!(steps[7].describe().contains("getAssertion"));
    }
}
