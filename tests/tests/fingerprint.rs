//! The fingerprint reader as the touch (`--presence fingerprint`, and `auto`), end to end: the
//! real fprintd with libfprint's virtual reader on a private system bus (tests/harness/fprintd.rs),
//! a real fido2d over UDP, and CTAP requests sent by hand (HidClient).
//!
//! The point: with the reader as the touch, a program of the owner that makes itself the agent
//! and answers "allow" at once (tests/e2e/eager_agent.py, run as the owner) gets nothing
//! signed; nor does one that forges fprintd's "verify-match" signal on the bus. Only the
//! enrolled finger approves; a stranger's finger is a refused touch, no finger a timeout, and
//! the browser's CTAPHID_CANCEL ends the wait, with the statuses a hardware key gives.
//!
//! Runs as root: it creates a user and runs fprintd (.ci/deps installs fprintd and
//! python3-dbusmock).

use fido2d_tests::tiers::{skip, Tier};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use fido2d_tests::fprintd::{Fprintd, TestUser};
use fido2d_tests::requests::{get_assertion_discovery, make_credential_es256};
use fido2d_tests::{fido2ctl_bin, run_with_timeout, Daemon, HidAnswer, HidClient, Watched};
use protocol::wire::{
    MakeCredentialRequest, MakeCredentialResponse, PublicKeyCredentialParameters,
    PublicKeyCredentialRpEntity, PublicKeyCredentialUserEntity, Request as _, Response as _,
    StatusCode,
};

/// The key's owner in these tests (created if missing).
const OWNER: &str = "fido2d-fp";
/// The print the owner enrols, and another person's.
const OWNER_PRINT: &str = "fido2d-owner-right-index";
const STRANGER_PRINT: &str = "a-strangers-thumb";
/// `--presence-timeout`, in seconds: short, so the timeout case is quick.
const PRESENCE_TIMEOUT: u64 = 4;
const RP: &str = "fingerprint.fido2d.test";

const OK: StatusCode = StatusCode::Success;
const OPERATION_DENIED: StatusCode = StatusCode::OperationDenied;
const KEEPALIVE_CANCEL: StatusCode = StatusCode::KeepaliveCancel;
const USER_ACTION_TIMEOUT: StatusCode = StatusCode::UserActionTimeout;
/// KEEPALIVE status: the authenticator waits for the person.
const UP_NEEDED: u8 = 2;

fn start_daemon(fprintd: &Fprintd, extra: &[&str]) -> Daemon {
    let timeout = PRESENCE_TIMEOUT.to_string();
    let mut args = vec!["--owner", OWNER, "--presence-timeout", &timeout];
    args.extend_from_slice(extra);
    Daemon::builder().args(&args).envs(&fprintd.env()).start()
}

/// tests/e2e/eager_agent.py run as the owner: a program of theirs that answers "allow".
fn eager_agent(daemon: &Daemon, owner: &TestUser) -> Watched {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/eager_agent.py");
    let mut agent = Watched::spawn(
        Command::new("/usr/bin/python3")
            .arg(script)
            .arg(daemon.control_socket())
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .uid(owner.uid)
            .gid(owner.gid),
    );
    agent.wait_for("connected");
    agent
}

/// Sends `request` on a channel of its own, waits until the daemon waits for the person
/// (KEEPALIVE UP_NEEDED), does `meanwhile`, and returns the CTAP status of the answer.
fn status_of(
    daemon: &Daemon,
    request: &[u8],
    meanwhile: impl FnOnce(&mut HidClient),
) -> StatusCode {
    let mut client = HidClient::connect(daemon.addr()).expect("a CTAPHID channel");
    client.send(HidClient::CMD_CBOR, request).unwrap();
    client
        .wait_for_keepalive(UP_NEEDED)
        .unwrap_or_else(|e| panic!("no KEEPALIVE UP_NEEDED: {e}\n{}", daemon.logs()));
    meanwhile(&mut client);
    match client.read_answer().unwrap() {
        HidAnswer::Message(HidClient::CMD_CBOR, payload) => status(&payload),
        other => panic!("not a CBOR answer: {other:?}"),
    }
}

/// A program of the owner emits fprintd's "verify-match" signal on the system bus, as if the
/// reader had matched (the bus lets anyone emit a signal).
fn forge_a_match(fprintd: &Fprintd, owner: &TestUser) {
    let device = fprintd.device_path().expect("the virtual reader");
    let outcome = run_with_timeout(
        Command::new("dbus-send")
            .args(["--system", "--type=signal", &device])
            .args([
                "net.reactivated.Fprint.Device.VerifyStatus",
                "string:verify-match",
                "boolean:true",
            ])
            .env("DBUS_SYSTEM_BUS_ADDRESS", &fprintd.bus_address)
            .uid(owner.uid)
            .gid(owner.gid),
        Duration::from_secs(10),
    );
    assert!(outcome.success(), "dbus-send: {}", outcome.stderr);
}

#[test]
fn the_owners_finger_is_the_touch_and_an_eager_agent_approves_nothing() {
    if skip(Tier::Udp) {
        return;
    }
    let owner = TestUser::get_or_create(OWNER);
    let fprintd = Fprintd::start();
    fprintd.enroll(OWNER, OWNER_PRINT);
    let daemon = start_daemon(&fprintd, &["--presence", "fingerprint"]);
    let mut agent = eager_agent(&daemon, &owner);
    let register = make_credential_es256(RP, b"owner", true);
    let sign_in = get_assertion_discovery(RP);

    // The owner's finger registers and signs in.
    let status = status_of(&daemon, &register, |_| fprintd.scan(OWNER_PRINT));
    assert_eq!(status, OK, "{}", daemon.logs());
    // The agent was told what it was for, and that only the finger allows it.
    let told = agent.wait_for("touch the fingerprint reader");
    assert!(
        told.contains("register") && told.contains(RP),
        "the notice names the operation and the site: {told}"
    );
    agent.wait_for("answered");
    agent.wait_for("the finger matched");
    assert_eq!(
        status_of(&daemon, &sign_in, |_| fprintd.scan(OWNER_PRINT)),
        OK
    );

    // A stranger's finger is a refused touch, although the agent said "allow".
    assert_eq!(
        status_of(&daemon, &sign_in, |_| fprintd.scan(STRANGER_PRINT)),
        OPERATION_DENIED
    );
    agent.wait_for("the finger did not match");

    // No finger: the request times out, although the agent said "allow" and a program of the
    // owner forged fprintd's "verify-match" on the bus meanwhile.
    let started = Instant::now();
    let status = status_of(&daemon, &sign_in, |_| {
        std::thread::sleep(Duration::from_millis(300));
        forge_a_match(&fprintd, &owner);
    });
    assert_eq!(status, USER_ACTION_TIMEOUT, "{}", daemon.logs());
    assert!(
        started.elapsed() >= Duration::from_secs(PRESENCE_TIMEOUT) - Duration::from_millis(500),
        "it waited for the finger: {:?}",
        started.elapsed()
    );
    agent.wait_for("no finger on the reader in time");

    // The browser withdraws the request while the reader waits.
    let status = status_of(&daemon, &sign_in, |client| {
        std::thread::sleep(Duration::from_millis(500));
        client.cancel().unwrap();
    });
    assert_eq!(status, KEEPALIVE_CANCEL, "{}", daemon.logs());
    agent.wait_for("withdrawn by the browser");

    // The reader was stopped and released each time: the owner's finger works again at once.
    assert_eq!(
        status_of(&daemon, &sign_in, |_| fprintd.scan(OWNER_PRINT)),
        OK,
        "{}\n--- fprintd ---\n{}",
        daemon.logs(),
        fprintd.log()
    );
    let logs = daemon.logs_after(": Approved", 3);
    assert_eq!(
        logs.matches(": Approved").count(),
        3,
        "exactly the three touches of the owner's finger approved:\n{logs}"
    );
    assert!(
        logs.contains("decision=Allow"),
        "the agent's \"allow\" answers reached the daemon, and approved nothing:\n{logs}"
    );
}

/// makeCredential with `"uv": true`.
fn make_credential_with_uv(rp: &str) -> Vec<u8> {
    let mut request = MakeCredentialRequest::new(
        vec![0xcd; 32],
        PublicKeyCredentialRpEntity::with_id(rp),
        PublicKeyCredentialUserEntity::with_handle(b"uv".to_vec()),
        vec![PublicKeyCredentialParameters::public_key(
            protocol::cose::ALG_ES256,
        )],
    );
    request.options.uv = Some(true);
    request.encode()
}

/// With fingerprint UV as well, a match is user verification: the UV flag, from the daemon's
/// own match; a stranger's finger spends an attempt and the owner's next scan succeeds.
#[test]
fn with_fingerprint_uv_a_match_verifies_the_owner() {
    if skip(Tier::Udp) {
        return;
    }
    let owner = TestUser::get_or_create(OWNER);
    let fprintd = Fprintd::start();
    fprintd.enroll(OWNER, OWNER_PRINT);
    let daemon = start_daemon(
        &fprintd,
        &[
            "--presence",
            "fingerprint",
            "--user-verification",
            "fingerprint",
        ],
    );
    let mut agent = eager_agent(&daemon, &owner);

    let mut client = HidClient::connect(daemon.addr()).unwrap();
    client
        .send(HidClient::CMD_CBOR, &make_credential_with_uv(RP))
        .unwrap();
    client.wait_for_keepalive(UP_NEEDED).unwrap();
    fprintd.scan(STRANGER_PRINT);
    agent.wait_for("the finger did not match");
    fprintd.scan(OWNER_PRINT);
    let answer = client.read_answer().unwrap();
    let HidAnswer::Message(HidClient::CMD_CBOR, payload) = answer else {
        panic!("not a CBOR answer: {answer:?}");
    };
    assert_eq!(status(&payload), OK, "{}", daemon.logs());
    let flags = auth_data(&payload)[32];
    assert_eq!(flags & 0x05, 0x05, "UP and UV: flags {flags:#04x}");
    // The daemon's own match, not PAM.
    daemon.logs_after("user verification (fingerprint reader)", 1);
}

/// The shipped PAM service of fingerprint UV (dist/pam.d/fido2d-fingerprint: pam_fprintd),
/// installed under /etc/pam.d for the test's length.
struct PamService {
    name: String,
}

impl PamService {
    fn install() -> PamService {
        let name = format!("fido2d-fingerprint-test-{}", std::process::id());
        let shipped =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist/pam.d/fido2d-fingerprint");
        std::fs::copy(shipped, Path::new("/etc/pam.d").join(&name))
            .expect("install a PAM service under /etc/pam.d");
        PamService { name }
    }
}

impl Drop for PamService {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(Path::new("/etc/pam.d").join(&self.name));
    }
}

/// With the agent as presence, fingerprint UV goes through PAM: the shipped service's
/// pam_fprintd, run by the daemon for the owner, against the real fprintd.
#[test]
fn with_the_agent_as_presence_fingerprint_uv_goes_through_pam_fprintd() {
    if skip(Tier::Udp) {
        return;
    }
    let _owner = TestUser::get_or_create(OWNER);
    let fprintd = Fprintd::start();
    fprintd.enroll(OWNER, OWNER_PRINT);
    let pam = PamService::install();
    let daemon = start_daemon(
        &fprintd,
        &[
            "--presence",
            "agent",
            "--user-verification",
            "fingerprint",
            "--pam-service",
            &pam.name,
        ],
    );

    let mut client = HidClient::connect(daemon.addr()).unwrap();
    client
        .send(HidClient::CMD_CBOR, &make_credential_with_uv(RP))
        .unwrap();
    client.wait_for_keepalive(UP_NEEDED).unwrap();
    fprintd.scan(OWNER_PRINT);
    let answer = client.read_answer().unwrap();
    let HidAnswer::Message(HidClient::CMD_CBOR, payload) = answer else {
        panic!("not a CBOR answer: {answer:?}");
    };
    assert_eq!(
        status(&payload),
        OK,
        "{}\n--- fprintd ---\n{}",
        daemon.logs(),
        fprintd.log()
    );
    let flags = auth_data(&payload)[32];
    assert_eq!(flags & 0x05, 0x05, "UP and UV: flags {flags:#04x}");
    let logs = daemon.logs_after("Verified", 1);
    assert!(
        logs.contains("method=\"fingerprint\"") && logs.contains("Verified"),
        "PAM verified the owner:\n{logs}"
    );
}

/// The status of a CTAP2 answer (its first byte).
fn status(payload: &[u8]) -> StatusCode {
    StatusCode::from_byte(payload[0]).expect("a CTAP status")
}

/// authData of a successful makeCredential answer (status byte, then the response).
fn auth_data(payload: &[u8]) -> Vec<u8> {
    MakeCredentialResponse::decode(&payload[1..])
        .expect("a makeCredential response")
        .auth_data
}

/// `fido2ctl status` run as root: the presence line.
fn presence_line(daemon: &Daemon) -> String {
    let outcome = run_with_timeout(
        Command::new(fido2ctl_bin())
            .arg("--socket")
            .arg(daemon.control_socket())
            .arg("status"),
        Duration::from_secs(20),
    );
    assert!(outcome.success(), "fido2ctl status: {}", outcome.stderr);
    outcome
        .stdout
        .lines()
        .find(|line| line.trim_start().starts_with("presence:"))
        .unwrap_or_else(|| panic!("no presence line in:\n{}", outcome.stdout))
        .to_owned()
}

#[test]
fn auto_picks_the_reader_when_the_owner_has_a_finger_and_the_agent_otherwise() {
    if skip(Tier::Udp) {
        return;
    }
    let _owner = TestUser::get_or_create(OWNER);

    // No fprintd on the system bus at all: the agent.
    let bare = Fprintd::start_with(false);
    let daemon = start_daemon(&bare, &[]);
    let line = presence_line(&daemon);
    assert!(
        line.contains("agent") && line.contains("fprintd is not running"),
        "{line}"
    );
    drop(daemon);
    drop(bare);

    // A reader, but no finger enrolled: the agent, and the reason says what to do.
    let fprintd = Fprintd::start();
    let daemon = start_daemon(&fprintd, &["--presence", "auto"]);
    let line = presence_line(&daemon);
    assert!(
        line.contains("agent") && line.contains("no finger enrolled"),
        "{line}"
    );
    assert!(
        daemon
            .logs()
            .contains("presence: agent (auto: fido2d-fp has no finger enrolled"),
        "{}",
        daemon.logs()
    );
    drop(daemon);

    // The owner enrols a finger: from the next start on, the reader is the touch.
    fprintd.enroll(OWNER, OWNER_PRINT);
    let daemon = start_daemon(&fprintd, &[]);
    let line = presence_line(&daemon);
    assert!(
        line.contains("fingerprint") && line.contains("1 finger(s) enrolled"),
        "{line}"
    );
    assert!(
        daemon.logs().contains("presence: fingerprint (auto: "),
        "{}",
        daemon.logs()
    );
    // ... and works without any agent.
    assert_eq!(
        status_of(&daemon, &make_credential_es256(RP, b"auto", false), |_| {
            fprintd.scan(OWNER_PRINT)
        }),
        OK
    );
}
