//! The key belongs to one user, with two real users on the machine (created by the test): the
//! first user whose agent connects owns it for good; the other's agent is refused; a switch
//! of the seat to the other user makes requests fail instead of moving the key; PAM user
//! verification authenticates the owner, so the other's password is worth nothing; root
//! changes the owner with `fido2ctl owner set`.
//!
//! Runs as root (as .ci/run does): it creates the users `fido2d-alice` and `fido2d-bob`
//! (system accounts without a home, left in place), runs agents as them, and installs a PAM
//! service of its own for its length.

use fido2d_tests::tiers::{skip, Tier};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use fido2d_tests::fprintd::TestUser as User;
use fido2d_tests::{
    fido2ctl_bin, python, run_with_timeout, shared_fido2ctl, uv_probe, Daemon, Watched,
};

const WAIT: Duration = Duration::from_secs(30);

/// A user of this machine for the test's programs to run as (created if missing).
fn user(name: &str) -> User {
    // SAFETY: getuid(2) has no preconditions.
    assert_eq!(
        unsafe { libc::getuid() },
        0,
        "this test creates users: run the suite as root (as .ci/run does)"
    );
    User::get_or_create(name)
}

/// `fido2ctl agent --terminal` run by `user`.
fn agent_of(fido2ctl: &Path, daemon: &Daemon, user: &User) -> Watched {
    Watched::spawn(
        Command::new(fido2ctl)
            .arg("--socket")
            .arg(daemon.control_socket())
            .args(["agent", "--terminal"])
            .uid(user.uid)
            .gid(user.gid),
    )
}

fn fido2ctl_as(fido2ctl: &Path, daemon: &Daemon, uid: u32, args: &[&str]) -> fido2d_tests::Outcome {
    run_with_timeout(
        Command::new(fido2ctl)
            .arg("--socket")
            .arg(daemon.control_socket())
            .args(args)
            .uid(uid),
        WAIT,
    )
}

/// tests/e2e/presence_probe.py: one makeCredential; its status line.
fn register(daemon: &Daemon) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/presence_probe.py");
    let outcome = run_with_timeout(
        Command::new(python())
            .arg(script)
            .arg(daemon.port().to_string()),
        Duration::from_secs(90),
    );
    assert!(outcome.success(), "{}{}", outcome.stdout, outcome.stderr);
    outcome
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("status=").map(str::to_owned))
        .expect("a status line")
}

fn wait_for_log(daemon: &Daemon, needle: &str) {
    let deadline = Instant::now() + WAIT;
    while !daemon.logs().contains(needle) {
        assert!(
            Instant::now() < deadline,
            "no {needle:?} in:\n{}",
            daemon.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_first_agents_user_owns_the_key_and_the_others_agent_is_refused() {
    if skip(Tier::Udp) {
        return;
    }
    let (alice, bob) = (user("fido2d-alice"), user("fido2d-bob"));
    let bin = tempfile::tempdir().unwrap();
    let fido2ctl = shared_fido2ctl(bin.path());
    let mut daemon = Daemon::start(&["--presence", "agent"]);

    let mut alices = agent_of(&fido2ctl, &daemon, &alice);
    alices.wait_for("connected to fido2d");
    let record = std::fs::read_to_string(daemon.state_dir().join("owner")).unwrap();
    assert!(record.contains(&format!("uid={}", alice.uid)), "{record}");

    // Another user's agent is refused as soon as it connects (before its hello).
    let mut bobs = agent_of(&fido2ctl, &daemon, &bob);
    let refusal = bobs.wait_for("may not use this key's control socket");
    assert!(refusal.contains(&format!("uid {}", bob.uid)), "{refusal}");
    wait_for_log(
        &daemon,
        &format!("refused a connection from uid {}", bob.uid),
    );
    let status = fido2ctl_as(&fido2ctl, &daemon, bob.uid, &["status"]);
    assert!(
        !status.success(),
        "bob may not even read the status: {status:?}"
    );

    // The prompt reaches alice's agent, and alice's answer signs.
    let status = std::thread::scope(|scope| {
        let probe = scope.spawn(|| register(&daemon));
        alices.wait_for("[y/N]");
        alices.type_line("y");
        probe.join().unwrap()
    });
    assert_eq!(status, "0x00");

    // Root sees the owner and alice's agent (its program and pid).
    let status = fido2ctl_as(&fido2ctl, &daemon, 0, &["status"]);
    assert!(status.success(), "{status:?}");
    assert!(
        status.stdout.contains("owner:          fido2d-alice"),
        "{}",
        status.stdout
    );
    assert!(
        status.stdout.contains(&format!("uid {} pid", alice.uid)),
        "{}",
        status.stdout
    );

    // A restart keeps the owner: bob's agent is refused before alice's is even there.
    drop(alices);
    daemon.stop();
    let state = daemon.state_dir().to_path_buf();
    let daemon = Daemon::builder()
        .state_dir(&state)
        .args(&["--presence", "agent"])
        .start();
    let mut bobs = agent_of(&fido2ctl, &daemon, &bob);
    bobs.wait_for("may not use this key's control socket");

    // Root moves the key to bob; from then on only bob's agent is asked.
    let set = fido2ctl_as(&fido2ctl, &daemon, 0, &["owner", "set", &bob.name]);
    assert!(set.success(), "{set:?}");
    assert!(set.stdout.contains("fido2d-bob"), "{}", set.stdout);
    let not_root = fido2ctl_as(&fido2ctl, &daemon, bob.uid, &["owner", "set", &alice.name]);
    assert!(!not_root.success());
    assert!(not_root.stderr.contains("only root"), "{}", not_root.stderr);
    let mut alices = agent_of(&fido2ctl, &daemon, &alice);
    alices.wait_for("may not use this key's control socket");
}

#[test]
fn a_second_agent_of_the_owner_is_announced_to_every_agent() {
    if skip(Tier::Udp) {
        return;
    }
    let daemon = Daemon::start(&["--presence", "agent", "--owner", "0"]);
    let mut first = Watched::spawn(
        Command::new(fido2ctl_bin())
            .arg("--socket")
            .arg(daemon.control_socket())
            .args(["agent", "--terminal"]),
    );
    first.wait_for("connected to fido2d");
    let mut second = Watched::spawn(
        Command::new(fido2ctl_bin())
            .arg("--socket")
            .arg(daemon.control_socket())
            .args(["agent", "--terminal"]),
    );
    second.wait_for("connected to fido2d");
    for agent in [&mut first, &mut second] {
        let notice = agent.wait_for("another program now answers fido2d's prompts");
        assert!(notice.contains("fido2ctl"), "{notice}");
    }
    wait_for_log(&daemon, "another program now answers fido2d's prompts: PID");
}

/// logind's seat file, in a mount namespace of fido2d's own: `/run` is a directory of the
/// test's, where it writes `systemd/seats/seat0`.
struct Seat {
    run: tempfile::TempDir,
}

impl Seat {
    fn new() -> Seat {
        let run = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(run.path().join("systemd/seats")).unwrap();
        Seat { run }
    }

    fn active(&self, uid: u32) {
        let seat = self.run.path().join("systemd/seats/seat0");
        std::fs::write(&seat, format!("IS_SEAT0=1\nACTIVE=c2\nACTIVE_UID={uid}\n")).unwrap();
    }

    fn wrapper(&self) -> Vec<String> {
        vec![
            "unshare".into(),
            "--mount".into(),
            "--propagation".into(),
            "private".into(),
            "--".into(),
            "sh".into(),
            "-c".into(),
            r#"mount --bind "$0" /run && exec "$@""#.into(),
            self.run.path().display().to_string(),
        ]
    }
}

#[test]
fn a_seat_switch_does_not_move_the_key() {
    if skip(Tier::Udp) {
        return;
    }
    let (alice, bob) = (user("fido2d-alice"), user("fido2d-bob"));
    let bin = tempfile::tempdir().unwrap();
    let fido2ctl = shared_fido2ctl(bin.path());
    let seat = Seat::new();
    seat.active(alice.uid);
    let state = tempfile::tempdir().unwrap();
    let wrapper = seat.wrapper();
    let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
    let daemon = Daemon::builder()
        .state_dir(&state.path().join("state"))
        .wrapper(&wrapper)
        .args(&["--presence", "agent", "--owner", &alice.name])
        .start();
    let mut alices = agent_of(&fido2ctl, &daemon, &alice);
    alices.wait_for("connected to fido2d");

    // Bob switches in: his browser's request is refused at once, nobody is asked.
    seat.active(bob.uid);
    assert_eq!(register(&daemon), "0x27", "OPERATION_DENIED");
    wait_for_log(
        &daemon,
        &format!(
            "refused a request: uid {} is the active user of the seat",
            bob.uid
        ),
    );
    // Bob's agent cannot take over either.
    let mut bobs = agent_of(&fido2ctl, &daemon, &bob);
    bobs.wait_for("may not use this key's control socket");

    // Alice is back: her agent is asked again.
    seat.active(alice.uid);
    let status = std::thread::scope(|scope| {
        let probe = scope.spawn(|| register(&daemon));
        alices.wait_for("[y/N]");
        alices.type_line("y");
        probe.join().unwrap()
    });
    assert_eq!(status, "0x00");
}

/// A PAM service with pam_unix: the login passwords of this machine's users.
struct UnixPam {
    name: String,
}

impl UnixPam {
    fn install() -> UnixPam {
        let name = format!("fido2d-owner-test-{}", std::process::id());
        std::fs::write(
            Path::new("/etc/pam.d").join(&name),
            "auth required pam_unix.so\naccount required pam_permit.so\n",
        )
        .expect("write a PAM service under /etc/pam.d");
        UnixPam { name }
    }
}

impl Drop for UnixPam {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(Path::new("/etc/pam.d").join(&self.name));
    }
}

fn set_password(user: &User, password: &str) {
    use std::io::Write as _;
    let mut chpasswd = Command::new("chpasswd")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("chpasswd");
    writeln!(chpasswd.stdin.take().unwrap(), "{}:{password}", user.name).unwrap();
    assert!(chpasswd.wait().unwrap().success());
}

#[test]
fn the_owners_user_verification_is_not_satisfied_by_another_users_password() {
    if skip(Tier::Udp) {
        return;
    }
    let (alice, bob) = (user("fido2d-alice"), user("fido2d-bob"));
    set_password(&alice, "alice's own secret");
    set_password(&bob, "bob's own secret");
    let pam = UnixPam::install();
    let bin = tempfile::tempdir().unwrap();
    let fido2ctl = shared_fido2ctl(bin.path());
    let daemon = Daemon::start(&[
        "--presence",
        "agent",
        "--owner",
        &alice.name,
        "--user-verification",
        "pam",
        "--pam-service",
        &pam.name,
    ]);
    let mut alices = agent_of(&fido2ctl, &daemon, &alice);
    alices.wait_for("connected to fido2d");
    let mut answer = |secret: &str| {
        std::thread::scope(|scope| {
            let probe = scope.spawn(|| uv_probe(&daemon, "token"));
            alices.wait_for("fido2d checks your login");
            alices.type_line(secret);
            probe.join().unwrap()
        })
    };
    assert_eq!(answer("bob's own secret"), "status=0x3f", "UV_INVALID");
    assert_eq!(answer("alice's own secret"), "token=ok");
    assert!(
        !daemon.logs().contains("own secret"),
        "no password in the log"
    );
}
