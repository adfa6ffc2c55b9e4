//! The control socket and the presence agent, end to end: a real fido2d, a real `fido2ctl
//! agent`, python-fido2 as the platform, and for the desktop agent a real session D-Bus
//! (`dbus-daemon --session`) with a notification server test double that clicks for the person.
//!
//! Needs python-fido2 (.ci/deps), dbus-daemon (Debian `dbus`), and root for the refused-uid case.

use fido2d_tests::tiers::{skip, Tier};
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fido2d_tests::{fido2ctl_bin, run_with_timeout, Daemon, Watched};

const WAIT: Duration = Duration::from_secs(20);

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// Runs tests/e2e/presence_probe.py: one makeCredential; returns its output lines.
fn probe(daemon: &Daemon, extra: &[&str]) -> Vec<String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/presence_probe.py");
    let outcome = run_with_timeout(
        Command::new(python())
            .arg(script)
            .arg(daemon.port().to_string())
            .args(extra),
        Duration::from_secs(90),
    );
    assert!(
        outcome.success(),
        "presence_probe.py failed: {}\n{}",
        outcome.stdout,
        outcome.stderr
    );
    outcome.stdout.lines().map(str::to_owned).collect()
}

fn status_of(lines: &[String]) -> &str {
    lines
        .iter()
        .find_map(|l| l.strip_prefix("status="))
        .unwrap_or_else(|| panic!("no status line in {lines:?}"))
}

fn terminal_agent(daemon: &Daemon) -> Watched {
    let mut agent = Watched::spawn(
        Command::new(fido2ctl_bin())
            .arg("--socket")
            .arg(daemon.control_socket())
            .args(["agent", "--terminal"]),
    );
    agent.wait_for("connected to fido2d");
    agent
}

fn agent_daemon(extra: &[&str]) -> Daemon {
    let mut args = vec!["--presence", "agent"];
    args.extend_from_slice(extra);
    Daemon::start(&args)
}

#[test]
fn allowing_on_the_terminal_agent_creates_the_credential() {
    if skip(Tier::Udp) {
        return;
    }
    let daemon = agent_daemon(&[]);
    let mut agent = terminal_agent(&daemon);

    let probe = std::thread::scope(|scope| {
        let probe = scope.spawn(|| probe(&daemon, &[]));
        let prompt = agent.wait_for("asks to create a new credential");
        assert!(prompt.contains("presence.fido2d.test"), "{prompt}");
        assert!(prompt.contains("as alice@example.com"), "{prompt}");
        assert!(prompt.contains("on this computer"), "{prompt}");
        agent.type_line("y");
        probe.join().unwrap()
    });

    assert_eq!(status_of(&probe), "0x00");
    assert!(
        probe.contains(&"keepalive=UPNEEDED".to_owned()),
        "the platform was told a gesture is needed: {probe:?}"
    );
}

#[test]
fn denying_on_the_agent_is_operation_denied() {
    if skip(Tier::Udp) {
        return;
    }
    let daemon = agent_daemon(&[]);
    let mut agent = terminal_agent(&daemon);

    let probe = std::thread::scope(|scope| {
        let probe = scope.spawn(|| probe(&daemon, &[]));
        agent.wait_for("[y/N]");
        agent.type_line("n");
        probe.join().unwrap()
    });

    assert_eq!(status_of(&probe), "0x27", "CTAP2_ERR_OPERATION_DENIED");
}

#[test]
fn without_an_agent_requests_fail_at_once_with_a_clear_log_line() {
    if skip(Tier::Udp) {
        return;
    }
    let daemon = agent_daemon(&["--presence-timeout", "60"]);

    let started = Instant::now();
    let probe = probe(&daemon, &[]);

    assert_eq!(status_of(&probe), "0x27", "refused, never approved");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "fails fast rather than waiting for the 60 s timeout"
    );
    daemon.logs_after("no agent is connected", 1);
}

#[test]
fn an_unanswered_prompt_times_out_and_is_withdrawn() {
    if skip(Tier::Udp) {
        return;
    }
    let daemon = agent_daemon(&["--presence-timeout", "2"]);
    let mut agent = terminal_agent(&daemon);

    let probe = std::thread::scope(|scope| {
        let probe = scope.spawn(|| probe(&daemon, &[]));
        agent.wait_for("[y/N]");
        agent.wait_for("not answered in time");
        probe.join().unwrap()
    });

    assert_eq!(status_of(&probe), "0x2f", "CTAP2_ERR_USER_ACTION_TIMEOUT");
}

#[test]
fn a_cancel_from_the_platform_withdraws_the_prompt() {
    if skip(Tier::Udp) {
        return;
    }
    let daemon = agent_daemon(&[]);
    let mut agent = terminal_agent(&daemon);

    let probe = std::thread::scope(|scope| {
        let probe = scope.spawn(|| probe(&daemon, &["--cancel-after", "1.5"]));
        agent.wait_for("[y/N]");
        agent.wait_for("withdrawn by the browser");
        probe.join().unwrap()
    });

    assert_eq!(status_of(&probe), "0x2d", "CTAP2_ERR_KEEPALIVE_CANCEL");
}

#[test]
fn status_reports_the_keystore_device_and_agents() {
    if skip(Tier::Udp) {
        return;
    }
    let daemon = agent_daemon(&[]);
    let status = |daemon: &Daemon| -> serde_json::Value {
        let outcome = run_with_timeout(
            Command::new(fido2ctl_bin())
                .arg("--socket")
                .arg(daemon.control_socket())
                .args(["--json", "status"]),
            WAIT,
        );
        assert!(outcome.success(), "{}", outcome.stderr);
        serde_json::from_str(&outcome.stdout).expect("JSON status")
    };

    let before = status(&daemon);
    let _agent = terminal_agent(&daemon);
    let after = status(&daemon);

    assert_eq!(before["backend"], "file");
    assert_eq!(before["presence_mode"], "agent");
    assert_eq!(before["discoverable_credentials"], 0);
    assert_eq!(
        before["device"],
        format!("udp 127.0.0.1:{}", daemon.port()).as_str()
    );
    assert_eq!(before["agents_connected"], 0);
    assert_eq!(after["agents_connected"], 1);
}

#[test]
fn status_without_a_daemon_says_so_with_exit_code_3() {
    if skip(Tier::Udp) {
        return;
    }
    let outcome = run_with_timeout(
        Command::new(fido2ctl_bin()).args(["--socket", "/nonexistent/control.sock", "status"]),
        WAIT,
    );

    assert_eq!(outcome.status.and_then(|s| s.code()), Some(3));
    assert!(
        outcome.stderr.contains("fido2d is not running"),
        "{}",
        outcome.stderr
    );
}

#[test]
fn another_user_is_refused_and_logged() {
    if skip(Tier::Udp) {
        return;
    }
    use std::os::unix::process::CommandExt as _;
    // SAFETY: getuid(2) has no preconditions.
    let uid = unsafe { libc::getuid() };
    assert_eq!(
        uid, 0,
        "this test runs a client as another user: run the suite as root (as .ci/run does)"
    );
    let daemon = agent_daemon(&["--owner", "0"]);
    let bin_dir = tempfile::tempdir().unwrap();
    let fido2ctl = fido2d_tests::shared_fido2ctl(bin_dir.path());

    let outcome = run_with_timeout(
        Command::new(fido2ctl)
            .arg("--socket")
            .arg(daemon.control_socket())
            .arg("status")
            .uid(65534)
            .gid(65534),
        WAIT,
    );

    assert_eq!(
        outcome.status.and_then(|s| s.code()),
        Some(4),
        "{}",
        outcome.stderr
    );
    assert!(outcome.stderr.contains("may not use"), "{}", outcome.stderr);
    let deadline = Instant::now() + WAIT;
    while !daemon
        .logs()
        .contains("refused a connection from uid 65534")
    {
        assert!(Instant::now() < deadline, "{}", daemon.logs());
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---- the desktop agent, over a real session bus ----

/// A private session bus; killed on drop.
struct SessionBus {
    daemon: Child,
    address: String,
}

impl SessionBus {
    fn start() -> SessionBus {
        let mut daemon = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("dbus-daemon is missing: apt-get install dbus (.ci/deps does)");
        let mut address = String::new();
        BufReader::new(daemon.stdout.take().unwrap())
            .read_line(&mut address)
            .unwrap();
        SessionBus {
            daemon,
            address: address.trim().to_owned(),
        }
    }
}

impl Drop for SessionBus {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

/// The notification double answering `answer`, and the desktop agent, on `bus`.
fn desktop_agent(daemon: &Daemon, bus: &SessionBus, answer: &str, log: &Path) -> [Watched; 2] {
    let mut double = Watched::spawn(
        Command::new(env!("CARGO_BIN_EXE_notification_double"))
            .args(["--answer", answer, "--log"])
            .arg(log)
            .env("DBUS_SESSION_BUS_ADDRESS", &bus.address),
    );
    double.wait_for("ready");
    let mut agent = Watched::spawn(
        Command::new(fido2ctl_bin())
            .arg("--socket")
            .arg(daemon.control_socket())
            .arg("agent")
            .env("DBUS_SESSION_BUS_ADDRESS", &bus.address),
    );
    agent.wait_for("connected to fido2d");
    [double, agent]
}

fn notifications(log: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn the_desktop_agent_shows_a_notification_and_allow_signs() {
    if skip(Tier::Udp) {
        return;
    }
    let daemon = agent_daemon(&[]);
    let bus = SessionBus::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("notifications.jsonl");
    let _agent = desktop_agent(&daemon, &bus, "allow", &log);

    let probe = probe(&daemon, &[]);

    assert_eq!(status_of(&probe), "0x00");
    let shown = notifications(&log);
    let notify = shown
        .iter()
        .find(|n| n["call"] == "notify")
        .expect("a notification");
    assert_eq!(notify["app"], "fido2d");
    assert!(notify["summary"]
        .as_str()
        .unwrap()
        .contains("Register this security key?"));
    let body = notify["body"].as_str().unwrap();
    assert!(body.contains("presence.fido2d.test"), "{body}");
    assert!(body.contains("alice@example.com"), "{body}");
    assert_eq!(
        notify["actions"],
        serde_json::json!(["allow", "Allow", "deny", "Deny"])
    );
}

#[test]
fn the_desktop_agent_deny_and_dismiss_refuse() {
    if skip(Tier::Udp) {
        return;
    }
    for answer in ["deny", "dismiss"] {
        let daemon = agent_daemon(&[]);
        let bus = SessionBus::start();
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("notifications.jsonl");
        let _agent = desktop_agent(&daemon, &bus, answer, &log);

        let probe = probe(&daemon, &[]);

        assert_eq!(status_of(&probe), "0x27", "{answer}");
    }
}

#[test]
fn a_cancelled_request_closes_its_notification() {
    if skip(Tier::Udp) {
        return;
    }
    let daemon = agent_daemon(&[]);
    let bus = SessionBus::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("notifications.jsonl");
    let _agent = desktop_agent(&daemon, &bus, "ignore", &log);

    let probe = probe(&daemon, &["--cancel-after", "1.5"]);

    assert_eq!(status_of(&probe), "0x2d");
    let deadline = Instant::now() + WAIT;
    loop {
        let shown = notifications(&log);
        let id = shown
            .iter()
            .find(|n| n["call"] == "notify")
            .map(|n| n["id"].clone());
        if id.is_some()
            && shown
                .iter()
                .any(|n| n["call"] == "close" && Some(&n["id"]) == id.as_ref())
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the notification was not closed: {shown:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What a hostile site (or any local program) puts in its names: an OSC 52 clipboard write, a
/// screen clear, a bidi override, notification markup, and 6 kB more (a CTAP message holds at
/// most 7609 bytes).
fn hostile_rp() -> String {
    format!(
        "bank.test\u{1b}]52;c;aGk=\u{7}\u{1b}[2J<b>evil</b>&amp;\u{202e}moc.{}",
        "A".repeat(6_000)
    )
}

const HOSTILE_USER: &str = "\u{9b}31m<i>root</i>\u{2066}\u{1b}]0;title\u{7}";

/// Clean: no control character, no bidi control, and short.
fn assert_clean(text: &str) {
    assert!(
        !text.chars().any(|c| c.is_control()
            || ('\u{202a}'..='\u{202e}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)),
        "{text:?}"
    );
    assert!(
        text.chars().count() < 600,
        "{} characters",
        text.chars().count()
    );
}

#[test]
fn a_hostile_sites_names_reach_the_terminal_agent_clean_and_bounded() {
    if skip(Tier::Udp) {
        return;
    }
    let daemon = agent_daemon(&[]);
    let mut agent = terminal_agent(&daemon);
    let rp = hostile_rp();
    let refused = std::thread::scope(|scope| {
        let probe = scope.spawn(|| probe(&daemon, &["--rp", &rp, "--user", HOSTILE_USER]));
        let prompt = agent.wait_for("[y/N]");
        assert_clean(&prompt);
        assert!(
            prompt.contains("bank.test\\u{1b}]52"),
            "shown escaped: {prompt}"
        );
        assert!(prompt.contains('…'), "cut: {prompt}");
        agent.type_line("n");
        probe.join().unwrap()
    });
    assert_eq!(status_of(&refused), "0x27");
    // The agent is still there for the next request (the line was not too long for it).
    let next = std::thread::scope(|scope| {
        let probe = scope.spawn(|| probe(&daemon, &[]));
        agent.wait_for("[y/N]");
        agent.type_line("y");
        probe.join().unwrap()
    });
    assert_eq!(status_of(&next), "0x00");
    assert_clean(
        daemon
            .logs_after("presence for", 1)
            .lines()
            .find(|l| l.contains("presence for"))
            .expect("a log line for the prompt"),
    );
}

#[test]
fn a_hostile_sites_names_reach_the_desktop_clean_and_as_text_not_markup() {
    if skip(Tier::Udp) {
        return;
    }
    let daemon = agent_daemon(&[]);
    let bus = SessionBus::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("notifications.jsonl");
    let _agent = desktop_agent(&daemon, &bus, "deny", &log);
    let rp = hostile_rp();
    let probe = probe(&daemon, &["--rp", &rp, "--user", HOSTILE_USER]);
    assert_eq!(status_of(&probe), "0x27");
    let shown = notifications(&log);
    let notify = shown
        .iter()
        .find(|n| n["call"] == "notify")
        .expect("a notification");
    let body = notify["body"].as_str().unwrap();
    assert_clean(body);
    assert!(
        !body.contains("<b>") && !body.contains("<i>"),
        "markup escaped: {body}"
    );
    assert!(body.contains("&lt;b&gt;evil&lt;/b&gt;&amp;amp;"), "{body}");
    assert!(body.contains("from a program on this computer"), "{body}");
}

/// The control socket's limits: a connection that does not say hello is closed after 5 s, and
/// one uid holds at most 16 connections (a program cannot tie up the daemon).
#[test]
fn the_control_socket_bounds_silent_and_piled_up_connections() {
    if skip(Tier::Udp) {
        return;
    }
    use std::io::{BufRead as _, Write as _};
    use std::os::unix::net::UnixStream;
    let daemon = agent_daemon(&["--owner", "0"]);
    let socket = daemon.control_socket();
    let first_line = |stream: &UnixStream| {
        let mut line = String::new();
        let _ = BufReader::new(stream).read_line(&mut line);
        line
    };

    let silent = UnixStream::connect(&socket).unwrap();
    silent.set_read_timeout(Some(WAIT)).unwrap();
    let started = Instant::now();
    let said = first_line(&silent);
    assert!(said.contains("no hello within 5 s"), "{said}");
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );

    let hello = "{\"v\":1,\"type\":\"hello\",\"role\":\"client\",\"client\":\"test\"}\n";
    let mut held = Vec::new();
    for _ in 0..16 {
        let mut stream = UnixStream::connect(&socket).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.write_all(hello.as_bytes()).unwrap();
        assert!(first_line(&stream).contains("welcome"));
        held.push(stream);
    }
    let seventeenth = UnixStream::connect(&socket).unwrap();
    seventeenth.set_read_timeout(Some(WAIT)).unwrap();
    let said = first_line(&seventeenth);
    assert!(said.contains("too many connections from uid 0"), "{said}");
    drop(held);
    // Once they are closed, the uid is let in again.
    let deadline = Instant::now() + WAIT;
    loop {
        let mut stream = UnixStream::connect(&socket).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.write_all(hello.as_bytes()).unwrap();
        if first_line(&stream).contains("welcome") {
            break;
        }
        assert!(Instant::now() < deadline, "never let in again");
        std::thread::sleep(Duration::from_millis(100));
    }
}
