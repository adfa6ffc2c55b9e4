//! Hybrid (caBLE v2) end to end and offline: fido2d serves two third-party initiators,
//! unmodified, through its real BlueZ advertiser (on a fake BlueZ on a private D-Bus) and a
//! caBLE tunnel server on loopback. Each initiator registers a credential through fido2d and
//! signs in with it; a webauthn-rs-core relying party in the initiator program verifies the
//! attestation and the assertion signature.
//!
//! - webauthn-authenticator-rs 0.6.2: tunnel override to ws://127.0.0.1 (its
//!   `cable-override-tunnel` feature); fido2d uses the same plain ws URL.
//! - libwebauthn 0.11: always wss://cable.ua5v.com: it runs in a mount namespace whose
//!   /etc/hosts sends that name to 127.0.0.1, trusting a test CA (SSL_CERT_FILE), through a
//!   TLS terminator on 127.0.0.1:443; fido2d reaches the same terminator as wss://localhost
//!   with --tunnel-ca. The sign-in's QR code reaches fido2d as a PNG picture.
//!
//! Needs (installed by .ci/deps): dbus-daemon, python3 with dbus-next, socat, openssl,
//! unshare (root), cable-tunnel-server-backend, libdbus-1-dev + pkg-config to build.

use fido2d_tests::tiers::{skip, Tier};
use std::process::{Command, Stdio};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant, SystemTime};

use ciborium::Value;
use fido2d_tests::hybrid::{
    initiator_bin, lines, FakeAdapter, Guard, Radio, TlsFront, TunnelServer,
};
use fido2d_tests::{fido2ctl_bin, fido2d_bin, run_with_timeout, ApprovingPerson, Daemon, Outcome};
use p256::elliptic_curve::sec1::ToSec1Point;

/// One ceremony (advert, tunnel, presence approved by the agent) takes well under a second
/// here.
const SESSION_TIMEOUT: Duration = Duration::from_secs(60);
const INITIATOR_TIMEOUT: Duration = Duration::from_secs(180);

/// `fido2d --hybrid QR` on its own: one session, then exit.
fn one_shot_session(radio: &Radio, qr: &str, extra: &[&str]) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(fido2d_bin());
    command
        .args([
            "--config",
            "/dev/null",
            "--transport",
            "udp",
            "--udp-port",
            "0",
        ])
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .arg("--control-socket")
        .arg(dir.path().join("control.sock"))
        .args(extra)
        .arg("--hybrid")
        .arg(qr)
        .env("DBUS_SYSTEM_BUS_ADDRESS", &radio.bus_address)
        .env("NO_COLOR", "1");
    run_with_timeout(&mut command, SESSION_TIMEOUT)
}

/// A running fido2d that serves hybrid sessions on `fido2ctl hybrid`, with a person who
/// allows each request through the agent (auto-approve never serves another computer).
fn hybrid_daemon(radio: &Radio, tunnel: &[&str]) -> (Daemon, ApprovingPerson) {
    let mut args = vec!["--presence", "agent", "--hybrid-wait", "30"];
    args.extend_from_slice(tunnel);
    let daemon = Daemon::builder()
        .args(&args)
        .envs(&[("DBUS_SYSTEM_BUS_ADDRESS", &radio.bus_address)])
        .start();
    let person = ApprovingPerson::start(&daemon.control_socket());
    (daemon, person)
}

/// `fido2ctl hybrid QR` (or `--qr-image FILE`) against the daemon.
fn fido2ctl_hybrid(daemon: &Daemon, qr: &QrInput) -> Outcome {
    let mut command = Command::new(fido2ctl_bin());
    command
        .arg("--socket")
        .arg(daemon.control_socket())
        .arg("hybrid");
    match qr {
        QrInput::Text(text) => command.arg(text),
        QrInput::Image(path) => command.arg("--qr-image").arg(path),
    };
    run_with_timeout(&mut command, SESSION_TIMEOUT)
}

enum QrInput {
    Text(String),
    Image(String),
}

/// Drives an initiator: every QR code it shows goes to the daemon through `fido2ctl hybrid`.
/// Returns the initiator's `OK` lines and fido2ctl's outcomes.
fn drive(mut initiator: Guard, daemon: &Daemon) -> (Vec<String>, Vec<Outcome>) {
    let stdout = lines(initiator.take_stdout());
    let deadline = Instant::now() + INITIATOR_TIMEOUT;
    let mut oks = Vec::new();
    let mut sessions = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = match stdout.recv_timeout(left) {
            Ok(line) => line,
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => panic!("the initiator did not finish in time"),
        };
        let qr = if let Some(text) = line.strip_prefix("QR ") {
            QrInput::Text(text.to_owned())
        } else if let Some(path) = line.strip_prefix("QRPNG ") {
            QrInput::Image(path.to_owned())
        } else {
            if line.starts_with("OK ") {
                oks.push(line);
            }
            continue;
        };
        let outcome = fido2ctl_hybrid(daemon, &qr);
        if !outcome.success() {
            panic!(
                "fido2ctl hybrid failed ({:?}):\n{}{}\n--- fido2d ---\n{}",
                outcome.status,
                outcome.stdout,
                outcome.stderr,
                daemon.logs()
            );
        }
        sessions.push(outcome);
    }
    drop(initiator);
    (oks, sessions)
}

/// What every session must show: one advert of the right shape, withdrawn once the
/// initiator joined; fido2ctl's progress and summary; the hybrid-marked presence prompt.
fn check_sessions(radio: &Radio, daemon: &Daemon, sessions: &[Outcome]) {
    let events = radio.advert_events();
    let registered: Vec<_> = events.iter().filter(|e| e["event"] == "register").collect();
    let unregistered = events.iter().filter(|e| e["event"] == "unregister").count();
    assert_eq!(
        registered.len(),
        sessions.len(),
        "one advert a session: {events:?}"
    );
    assert_eq!(
        unregistered,
        sessions.len(),
        "every advert withdrawn: {events:?}"
    );
    const FFF9: &str = "0000fff9-0000-1000-8000-00805f9b34fb";
    for advert in registered {
        assert_eq!(
            advert["service_uuids"],
            serde_json::json!([FFF9]),
            "{advert}"
        );
        let data = advert["service_data"].as_object().unwrap();
        assert_eq!(data.len(), 1, "{advert}");
        assert_eq!(data[FFF9].as_str().unwrap().len(), 40, "20 bytes: {advert}");
        assert!(advert["local_name"].is_null(), "no name: {advert}");
        assert_eq!(advert["includes"], serde_json::json!([]), "{advert}");
    }
    for session in sessions {
        for step in [
            "QR code read",
            "advertising over Bluetooth",
            "connected to the other computer",
            "done: 1 request(s) answered",
        ] {
            assert!(
                session.stdout.contains(step),
                "{step:?} in:\n{}",
                session.stdout
            );
        }
        // The figures for the report (`cargo test -- --nocapture`).
        println!("{}", session.stdout.lines().last().unwrap_or_default());
    }
    let logs = daemon.logs_after("hybrid request from another computer", 1);
    assert!(
        logs.contains("hybrid request from another computer"),
        "the prompt names the hybrid origin:\n{logs}"
    );
    for line in logs.lines().filter(|l| l.contains("hybrid session done")) {
        println!("{line}");
    }
}

#[test]
fn webauthn_authenticator_rs_registers_and_signs_in_through_fido2d() {
    if skip(Tier::Hybrid) {
        return;
    }
    let radio = Radio::start(FakeAdapter::Powered);
    let tunnel = TunnelServer::start();
    let url = tunnel.ws_url();
    let (daemon, _person) = hybrid_daemon(&radio, &["--tunnel-url", &url]);
    let initiator = Guard::spawn(
        "war_initiator",
        Command::new(initiator_bin("war_initiator"))
            .arg(tunnel.ws_url())
            .env("DBUS_SYSTEM_BUS_ADDRESS", &radio.bus_address)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped()),
    );
    let (oks, sessions) = drive(initiator, &daemon);
    println!("{oks:#?}");
    assert!(oks.iter().any(|l| l.starts_with("OK register")), "{oks:?}");
    assert!(
        oks.iter().any(|l| l.starts_with("OK authenticate")),
        "{oks:?}"
    );
    assert_eq!(sessions.len(), 2, "one session a ceremony");
    check_sessions(&radio, &daemon, &sessions);
}

#[test]
fn libwebauthn_registers_and_signs_in_through_fido2d() {
    if skip(Tier::Hybrid) {
        return;
    }
    let radio = Radio::start(FakeAdapter::Powered);
    let tunnel = TunnelServer::start();
    let tls = TlsFront::start(radio.dir.path(), tunnel.port);
    let ca = tls.ca.display().to_string();
    let (daemon, _person) = hybrid_daemon(
        &radio,
        &["--tunnel-url", "wss://localhost:443", "--tunnel-ca", &ca],
    );
    let pictures = tempfile::tempdir().unwrap();
    // The initiator alone sees the private /etc/hosts: mount namespace, bind mount, exec.
    let initiator = Guard::spawn(
        "lwa_initiator",
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg(r#"mount --bind "$0" /etc/hosts && exec "$1" "$2""#)
            .arg(&tls.hosts)
            .arg(initiator_bin("lwa_initiator"))
            .arg(pictures.path())
            .env("DBUS_SYSTEM_BUS_ADDRESS", &radio.bus_address)
            .env("SSL_CERT_FILE", &tls.ca)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped()),
    );
    let (oks, sessions) = drive(initiator, &daemon);
    println!("{oks:#?}");
    assert!(oks.iter().any(|l| l.starts_with("OK register")), "{oks:?}");
    assert!(
        oks.iter().any(|l| l.starts_with("OK authenticate")),
        "{oks:?}"
    );
    assert_eq!(sessions.len(), 2, "one session a ceremony");
    check_sessions(&radio, &daemon, &sessions);
}

/// A third-party initiator (libwebauthn) that asks for more than a phone serves: every
/// command but the session's own operation is refused with its CTAP error, the daemon logs
/// each refusal, and nothing reaches a prompt.
#[test]
fn a_hybrid_peer_gets_what_a_phone_serves_and_nothing_more() {
    if skip(Tier::Hybrid) {
        return;
    }
    let radio = Radio::start(FakeAdapter::Powered);
    let tunnel = TunnelServer::start();
    let tls = TlsFront::start(radio.dir.path(), tunnel.port);
    let ca = tls.ca.display().to_string();
    let (daemon, person) = hybrid_daemon(
        &radio,
        &["--tunnel-url", "wss://localhost:443", "--tunnel-ca", &ca],
    );
    let initiator = Guard::spawn(
        "lwa_forbidden",
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg(r#"mount --bind "$0" /etc/hosts && exec "$1""#)
            .arg(&tls.hosts)
            .arg(initiator_bin("lwa_forbidden"))
            .env("DBUS_SYSTEM_BUS_ADDRESS", &radio.bus_address)
            .env("SSL_CERT_FILE", &tls.ca)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped()),
    );
    let (oks, sessions) = drive(initiator, &daemon);
    println!("{oks:#?}");
    assert_eq!(sessions.len(), 1, "one session");
    for refused in [
        "getPINRetries InvalidCommand",
        "getCredsMetadata InvalidCommand",
        "enumerateCredentialsGetNextCredential InvalidCommand",
        "largeBlobs get InvalidCommand",
        "toggleAlwaysUv InvalidCommand",
        "reset InvalidCommand",
        "makeCredential in a sign-in session NotAllowed",
    ] {
        assert!(
            oks.iter().any(|l| l == &format!("OK refused {refused}")),
            "{refused:?} in {oks:?}"
        );
    }
    assert!(oks.iter().any(|l| l == "OK served getInfo"), "{oks:?}");
    let logs = daemon.logs_after("hybrid: refused", 7);
    let refusals = logs
        .lines()
        .filter(|l| l.contains("hybrid: refused"))
        .count();
    assert_eq!(refusals, 7, "one log line a refusal:\n{logs}");
    assert_eq!(
        person.answered.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "no refused request reached the person"
    );
}

/// A QR code as an initiator makes one: `FIDO:/` digits of the CBOR map.
fn qr_code(made_at: u64, request_type: &str) -> String {
    let identity = p256::SecretKey::from_slice(&[0x31; 32])
        .unwrap()
        .public_key();
    let map = Value::Map(vec![
        (
            Value::from(0),
            Value::Bytes(identity.to_sec1_point(true).as_bytes().to_vec()),
        ),
        (Value::from(1), Value::Bytes(vec![0x42; 16])),
        (Value::from(2), Value::from(2)),
        (Value::from(3), Value::from(made_at)),
        (Value::from(5), Value::Text(request_type.into())),
    ]);
    let cbor = protocol::cbor::encode(&map);
    format!("FIDO:/{}", protocol::hybrid::digits::encode(&cbor))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn failing_session(radio: &Radio, qr: &str, tunnel: &[&str]) -> String {
    let outcome = one_shot_session(radio, qr, tunnel);
    assert!(
        outcome.status.is_some_and(|s| !s.success()),
        "fido2d should fail: {:?}\n{}",
        outcome.status,
        outcome.stderr
    );
    outcome.stderr
}

#[test]
fn errors_are_reported_in_words() {
    if skip(Tier::Hybrid) {
        return;
    }
    let tunnel = TunnelServer::start();
    let url = tunnel.ws_url();
    let ws = ["--tunnel-url", url.as_str()];
    let radio = Radio::start(FakeAdapter::Powered);
    let cases = [
        ("https://example.com/".to_owned(), "not a FIDO QR code"),
        ("FIDO:/12345".to_owned(), "unreadable"),
        (qr_code(now() - 3600, "mc"), "expired"),
        (qr_code(now(), "dc"), "unsupported request type"),
    ];
    for (qr, expected) in &cases {
        let stderr = failing_session(&radio, qr, &ws);
        assert!(
            stderr.contains(expected),
            "{qr}: expected {expected:?} in:\n{stderr}"
        );
    }
    // Nobody listens on port 9 of the loopback.
    let stderr = failing_session(
        &radio,
        &qr_code(now(), "ga"),
        &["--tunnel-url", "ws://127.0.0.1:9"],
    );
    assert!(
        stderr.contains("cannot reach the tunnel server"),
        "{stderr}"
    );

    // Through the control socket, fido2ctl shows the same words and exits 1.
    let (daemon, _person) = hybrid_daemon(&radio, &ws);
    for (qr, expected) in &cases {
        let outcome = fido2ctl_hybrid(&daemon, &QrInput::Text(qr.clone()));
        assert_eq!(
            outcome.status.and_then(|s| s.code()),
            Some(1),
            "{outcome:?}"
        );
        assert!(
            outcome.stderr.contains(expected),
            "{expected:?} in {}",
            outcome.stderr
        );
    }
    let picture = radio.dir.path().join("blank.png");
    std::fs::write(&picture, PNG_1X1_WHITE).unwrap();
    let outcome = fido2ctl_hybrid(&daemon, &QrInput::Image(picture.display().to_string()));
    assert!(!outcome.success());
    assert!(
        outcome.stderr.contains("no QR code was found"),
        "{}",
        outcome.stderr
    );
    // fido2ctl interrupted while the advert is out: the daemon ends the session at once.
    let mut client = Guard::spawn(
        "fido2ctl hybrid",
        Command::new(fido2ctl_bin())
            .arg("--socket")
            .arg(daemon.control_socket())
            .arg("hybrid")
            .arg(qr_code(now(), "ga"))
            .stdout(Stdio::piped()),
    );
    let progress = lines(client.take_stdout());
    loop {
        let line = progress
            .recv_timeout(Duration::from_secs(20))
            .expect("fido2ctl reports the advert");
        if line.contains("advertising over Bluetooth") {
            break;
        }
    }
    drop(client);
    let withdrawn_by = Instant::now() + Duration::from_secs(5);
    while radio.advert_events().last().unwrap()["event"] != "unregister" {
        assert!(
            Instant::now() < withdrawn_by,
            "the advert outlived its client"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // Nobody joins the tunnel: the advert goes out, then the wait ends and it is withdrawn.
    let outcome = one_shot_session(
        &radio,
        &qr_code(now(), "ga"),
        &["--tunnel-url", &url, "--hybrid-wait", "1"],
    );
    assert!(!outcome.success());
    assert!(
        outcome.stderr.contains("did not connect within 1 s"),
        "{}",
        outcome.stderr
    );
    let events = radio.advert_events();
    assert_eq!(events.last().unwrap()["event"], "unregister", "{events:?}");
    drop(daemon);

    drop(radio);
    let off = Radio::start(FakeAdapter::Off);
    let stderr = failing_session(&off, &qr_code(now(), "ga"), &ws);
    assert!(stderr.contains("switched off"), "{stderr}");
    drop(off);
    let missing = Radio::start(FakeAdapter::Missing);
    let stderr = failing_session(&missing, &qr_code(now(), "ga"), &ws);
    assert!(stderr.contains("no Bluetooth adapter"), "{stderr}");
}

/// A valid 1x1 white PNG: a picture with no QR code in it.
const PNG_1X1_WHITE: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x00, 0x00, 0x00, 0x3a, 0x7e, 0x9b,
    0x55, 0x00, 0x00, 0x00, 0x0a, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0x0f, 0x00, 0x01,
    0x01, 0x01, 0x00, 0xb1, 0x38, 0xf6, 0x14, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae,
    0x42, 0x60, 0x82,
];

/// One daemon per state directory: `fido2d --hybrid` while the service runs on the same state
/// directory asks the service (through its control socket) instead of opening the store beside
/// it, and reports the service's words.
#[test]
fn the_one_shot_session_goes_through_the_running_service() {
    if skip(Tier::Hybrid) {
        return;
    }
    let (daemon, _person) = {
        let radio = Radio::start(FakeAdapter::Powered);
        hybrid_daemon(&radio, &["--tunnel-url", "ws://127.0.0.1:9"])
    };
    let outcome = run_with_timeout(
        Command::new(fido2d_bin())
            .args([
                "--config",
                "/dev/null",
                "--transport",
                "udp",
                "--udp-port",
                "0",
            ])
            .arg("--state-dir")
            .arg(daemon.state_dir())
            .arg("--control-socket")
            .arg(daemon.control_socket())
            .args(["--hybrid", "https://example.com/"])
            .env("NO_COLOR", "1"),
        SESSION_TIMEOUT,
    );
    assert!(!outcome.success(), "{outcome:?}");
    assert!(
        outcome.stderr.contains("the fido2d service uses"),
        "{}",
        outcome.stderr
    );
    assert!(
        outcome.stderr.contains("not a FIDO QR code"),
        "{}",
        outcome.stderr
    );
    assert!(
        daemon.logs().contains("hybrid session requested"),
        "the service served it:\n{}",
        daemon.logs()
    );
}
