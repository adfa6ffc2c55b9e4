//! A real fprintd with libfprint's virtual reader, offline, for the fingerprint-as-the-touch
//! tests: a private system bus (`dbus-daemon` with a configuration of its own), python-dbusmock's
//! polkit stand-in that allows every action fprintd asks about, and `/usr/libexec/fprintd -t`
//! with `FP_VIRTUAL_DEVICE` (the `virtual_device` driver, compiled into Debian's libfprint) and
//! `STATE_DIRECTORY` (the enrolled prints, in a temporary directory).
//!
//! A finger is a line on the virtual reader's UNIX socket: `SCAN <print-id>`. Enrolment takes
//! five scans of one id; a match is a scan of an enrolled id. The reader listens only while a
//! client (fprintd-enroll, or fido2d waiting for a touch) has claimed it, so [`Fprintd::scan`]
//! retries until it can connect: that is also how a test waits for fido2d to ask.
//!
//! Needs Debian's `fprintd python3-dbusmock dbus` (.ci/deps) and root (fprintd, and users).
//! Every process is killed when the guard drops.

use std::io::Write as _;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::hybrid::Guard;
use crate::run_with_timeout;

/// Debian's python3, which has python-dbusmock (a pyenv python may not).
const SYSTEM_PYTHON: &str = "/usr/bin/python3";
/// fprintd's daemon, as Debian installs it.
pub const FPRINTD: &str = "/usr/libexec/fprintd";
/// How long the bus, the polkit stand-in and fprintd may take to come up.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The private system bus with polkit's stand-in and fprintd on it.
pub struct Fprintd {
    /// `unix:path=...`: what `DBUS_SYSTEM_BUS_ADDRESS` must be for fido2d and the tools.
    pub bus_address: String,
    finger: PathBuf,
    // Dropped in this order: fprintd, then polkit, then the bus, then their files.
    fprintd: Option<Guard>,
    _polkit: Guard,
    _bus: Guard,
    dir: TempDir,
}

impl Fprintd {
    /// Starts the bus, polkit's stand-in and fprintd with a virtual reader.
    pub fn start() -> Fprintd {
        Fprintd::start_with(true)
    }

    /// The bus and polkit's stand-in, and fprintd only when `with_fprintd` (without it, the
    /// bus has no fprintd at all, as on a machine without the package).
    pub fn start_with(with_fprintd: bool) -> Fprintd {
        // SAFETY: getuid(2) has no preconditions.
        assert_eq!(
            unsafe { libc::getuid() },
            0,
            "the fingerprint tests run fprintd and create a user: run the suite as root (as \
             .ci/run does)"
        );
        assert!(
            Path::new(FPRINTD).exists(),
            "{FPRINTD} is missing: apt-get install fprintd python3-dbusmock (.ci/deps)"
        );
        let dir = tempfile::Builder::new()
            .prefix("fido2d-fprintd-")
            .tempdir()
            .expect("a temporary directory");
        let socket = dir.path().join("system_bus_socket");
        let bus_address = format!("unix:path={}", socket.display());
        let config = dir.path().join("system.conf");
        std::fs::write(&config, bus_config(&socket)).expect("write the bus configuration");
        let bus = Guard::spawn(
            "dbus-daemon",
            Command::new("dbus-daemon")
                .arg(format!("--config-file={}", config.display()))
                .args(["--nofork", "--nopidfile"])
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        wait_until("the private system bus", || socket.exists());

        let polkit_log = std::fs::File::create(dir.path().join("polkit.log")).unwrap();
        let polkit = Guard::spawn(
            "python-dbusmock (polkitd)",
            Command::new(SYSTEM_PYTHON)
                .args(["-m", "dbusmock", "--system", "--template", "polkitd"])
                .env("DBUS_SYSTEM_BUS_ADDRESS", &bus_address)
                .stdout(polkit_log.try_clone().unwrap())
                .stderr(polkit_log),
        );
        let mut fprintd = Fprintd {
            finger: dir.path().join("finger.sock"),
            bus_address,
            fprintd: None,
            _polkit: polkit,
            _bus: bus,
            dir,
        };
        wait_until("the polkit stand-in", || {
            fprintd
                .gdbus(&[
                    "--dest",
                    "org.freedesktop.PolicyKit1",
                    "--object-path",
                    "/org/freedesktop/PolicyKit1/Authority",
                    "--method",
                    "org.freedesktop.DBus.Mock.AllowUnknown",
                    "true",
                ])
                .is_ok()
        });
        if with_fprintd {
            let prints = fprintd.dir.path().join("prints");
            std::fs::create_dir(&prints).unwrap();
            let log = std::fs::File::create(fprintd.dir.path().join("fprintd.log")).unwrap();
            fprintd.fprintd = Some(Guard::spawn(
                "fprintd",
                Command::new(FPRINTD)
                    .arg("-t")
                    .env("DBUS_SYSTEM_BUS_ADDRESS", &fprintd.bus_address)
                    .env("FP_VIRTUAL_DEVICE", &fprintd.finger)
                    .env("STATE_DIRECTORY", &prints)
                    .stdout(log.try_clone().unwrap())
                    .stderr(log),
            ));
            wait_until("fprintd", || fprintd.device_path().is_ok());
        }
        fprintd
    }

    /// The environment fido2d and the tools need to use this bus.
    pub fn env(&self) -> [(&str, &str); 1] {
        [("DBUS_SYSTEM_BUS_ADDRESS", self.bus_address.as_str())]
    }

    /// The virtual reader's object path (`/net/reactivated/Fprint/Device/0`).
    pub fn device_path(&self) -> Result<String, String> {
        let reply = self.gdbus(&[
            "--dest",
            "net.reactivated.Fprint",
            "--object-path",
            "/net/reactivated/Fprint/Manager",
            "--method",
            "net.reactivated.Fprint.Manager.GetDefaultDevice",
        ])?;
        // "(objectpath '/net/reactivated/Fprint/Device/0',)"
        reply
            .split('\'')
            .nth(1)
            .map(str::to_owned)
            .ok_or_else(|| format!("unexpected reply {reply:?}"))
    }

    /// `gdbus call --system ARGS` on this bus: its output, or its error.
    fn gdbus(&self, args: &[&str]) -> Result<String, String> {
        let outcome = run_with_timeout(
            Command::new("gdbus")
                .args(["call", "--system", "--timeout", "5"])
                .args(args)
                .env("DBUS_SYSTEM_BUS_ADDRESS", &self.bus_address),
            Duration::from_secs(10),
        );
        if outcome.success() {
            Ok(outcome.stdout.trim().to_owned())
        } else {
            Err(outcome.stderr)
        }
    }

    /// Puts a finger with print `print` on the reader: `SCAN <print>`, sent as soon as the
    /// reader listens (someone has claimed it), within `within`. Returns whether it was sent.
    pub fn scan_within(&self, print: &str, within: Duration) -> bool {
        self.command_within(&format!("SCAN {print}"), within)
    }

    /// [`Fprintd::scan_within`] with 20 s; fails the test if nobody claims the reader.
    pub fn scan(&self, print: &str) {
        assert!(
            self.scan_within(print, Duration::from_secs(20)),
            "nobody claimed the fingerprint reader, so the finger could not be put on it"
        );
    }

    /// Sends one command line to the virtual reader (see libfprint's virtual-device driver).
    pub fn command_within(&self, command: &str, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(mut stream) = UnixStream::connect(&self.finger) {
                if stream.write_all(format!("{command}\n").as_bytes()).is_ok() {
                    return true;
                }
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Enrols `print` as `user`'s right index finger (`fprintd-enroll`, five scans).
    pub fn enroll(&self, user: &str, print: &str) {
        let mut enroll = Guard::spawn(
            "fprintd-enroll",
            Command::new("fprintd-enroll")
                .args(["-f", "right-index-finger", user])
                .env("DBUS_SYSTEM_BUS_ADDRESS", &self.bus_address)
                .stdout(Stdio::piped())
                .stderr(Stdio::null()),
        );
        let output = crate::hybrid::lines(enroll.take_stdout());
        let mut seen = Vec::new();
        for stage in 1..=5 {
            self.scan(print);
            // Each scan is answered by a line (enroll-stage-passed, then enroll-completed).
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let line = output.recv_timeout(left).unwrap_or_else(|_| {
                    panic!("fprintd-enroll did not answer scan {stage}; it said:\n{seen:#?}")
                });
                seen.push(line.clone());
                if line.contains("enroll-completed") && stage == 5 {
                    return;
                }
                if line.contains("enroll-stage-passed") || line.contains("enroll-completed") {
                    break;
                }
                assert!(
                    !line.contains("enroll-failed") && !line.contains("enroll-disconnected"),
                    "enrolment failed: {seen:#?}"
                );
            }
        }
        panic!("fprintd-enroll did not complete after 5 scans: {seen:#?}");
    }

    /// fprintd's log so far (for a failing test's message).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("fprintd.log")).unwrap_or_default()
    }
}

impl Drop for Fprintd {
    fn drop(&mut self) {
        // fprintd first, while the bus it talks to is still there.
        self.fprintd.take();
    }
}

/// A system bus that lets anyone own names (fprintd and the polkit stand-in must) and send and
/// receive anything, listening on `socket`.
fn bus_config(socket: &Path) -> String {
    format!(
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_type="method_return"/>
    <allow send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="signal"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
  </policy>
</busconfig>
"#,
        socket.display()
    )
}

fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + START_TIMEOUT;
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "{what} did not come up within {START_TIMEOUT:?}"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// A user of this machine for a test (a system user without a home, created if missing).
#[derive(Debug, Clone)]
pub struct TestUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

impl TestUser {
    /// `name`, created with useradd if this machine does not have it yet.
    pub fn get_or_create(name: &str) -> TestUser {
        let id = |flag: &str| {
            let out = Command::new("id").args([flag, name]).output().ok()?;
            if !out.status.success() {
                return None;
            }
            String::from_utf8_lossy(&out.stdout).trim().parse().ok()
        };
        // Another test process may be adding a user at the same moment (useradd locks
        // /etc/passwd and fails rather than wait): try a few times.
        for _ in 0..20 {
            if id("-u").is_some() {
                break;
            }
            let _ = Command::new("useradd")
                .args([
                    "--system",
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                    name,
                ])
                .stderr(Stdio::null())
                .status();
            if id("-u").is_none() {
                thread::sleep(Duration::from_millis(200));
            }
        }
        TestUser {
            name: name.to_owned(),
            uid: id("-u").unwrap_or_else(|| panic!("useradd {name} failed")),
            gid: id("-g").unwrap_or_else(|| panic!("{name} has no group")),
        }
    }
}
