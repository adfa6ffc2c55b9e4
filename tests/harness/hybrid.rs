//! The offline hybrid setup: a private D-Bus "system" bus with a fake BlueZ on it, a caBLE
//! tunnel server on loopback, a test CA and a TLS terminator, and the third-party initiator
//! programs of tests/hybrid/initiators (built on first use).
//!
//! Every helper process is killed when its guard drops.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::workspace_root;

/// A child process that is killed (and reaped) on drop.
pub struct Guard {
    name: &'static str,
    child: Child,
}

impl Guard {
    pub fn spawn(name: &'static str, command: &mut Command) -> Guard {
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({command:?}): {e}"));
        Guard { name, child }
    }

    pub fn take_stdout(&mut self) -> ChildStdout {
        self.child.stdout.take().expect("stdout was piped")
    }

    /// Fails the test if the process already died (e.g. a port was taken).
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited early: {status}", self.name);
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Lines of a child's stdout, read on a thread.
pub fn lines(stdout: ChildStdout) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits until `path` exists.
fn wait_for_path(path: &Path, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{what} did not appear at {}",
            path.display()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
    while TcpStream::connect_timeout(&addr.into(), Duration::from_millis(200)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} is not listening on {addr}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// How the fake BlueZ behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FakeAdapter {
    Powered,
    Off,
    Missing,
}

/// The private bus, the fake BlueZ on it, and the files they use.
pub struct Radio {
    pub dir: TempDir,
    pub bus_address: String,
    pub advert_log: PathBuf,
    _bluez: Guard,
    _bus: Guard,
}

impl Radio {
    pub fn start(adapter: FakeAdapter) -> Radio {
        let dir = tempfile::tempdir().expect("temp dir");
        let socket = dir.path().join("system_bus_socket");
        let bus_address = format!("unix:path={}", socket.display());
        // A session-type bus: it lets anyone own any name, which is all the fake needs.
        let bus = Guard::spawn(
            "dbus-daemon",
            Command::new("dbus-daemon")
                .args(["--session", "--nofork", "--nopidfile"])
                .arg(format!("--address={bus_address}"))
                .stdout(Stdio::null()),
        );
        wait_for_path(&socket, "the private D-Bus socket");
        let advert_log = dir.path().join("adverts.jsonl");
        let mut command = Command::new(python());
        command
            .arg(workspace_root().join("tests/hybrid/fake_bluez.py"))
            .env("DBUS_SYSTEM_BUS_ADDRESS", &bus_address)
            .env("FAKE_BLUEZ_LOG", &advert_log)
            .env("PYTHONUNBUFFERED", "1")
            .stdout(Stdio::piped());
        match adapter {
            FakeAdapter::Powered => {}
            FakeAdapter::Off => {
                command.env("FAKE_BLUEZ_POWERED", "0");
            }
            FakeAdapter::Missing => {
                command.env("FAKE_BLUEZ_NO_ADAPTER", "1");
            }
        }
        let mut bluez = Guard::spawn("fake_bluez.py", &mut command);
        let ready = lines(bluez.take_stdout());
        match ready.recv_timeout(Duration::from_secs(20)) {
            Ok(line) if line == "READY" => {}
            other => {
                panic!("fake_bluez.py did not start ({other:?}); it needs `pip install dbus-next`")
            }
        }
        Radio {
            dir,
            bus_address,
            advert_log,
            _bluez: bluez,
            _bus: bus,
        }
    }

    /// The adverts registered so far (one JSON object a line), parsed.
    pub fn advert_events(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.advert_log)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).expect("a JSON advert record"))
            .collect()
    }
}

pub fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// cable-tunnel-server-backend (installed by .ci/deps) on a loopback port, plain ws.
pub struct TunnelServer {
    pub port: u16,
    _server: Guard,
}

impl TunnelServer {
    pub fn start() -> TunnelServer {
        let port = free_port();
        let mut server = Guard::spawn(
            "cable-tunnel-server-backend",
            Command::new(tunnel_server_bin())
                .args(["--bind-address", &format!("127.0.0.1:{port}")])
                .arg("--insecure-http-server")
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null()),
        );
        wait_for_port(port, "the tunnel server");
        server.assert_running();
        TunnelServer {
            port,
            _server: server,
        }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }
}

/// `cable-tunnel-server-backend`: $CABLE_TUNNEL_SERVER, else on PATH, else in cargo's bin dir.
fn tunnel_server_bin() -> PathBuf {
    const NAME: &str = "cable-tunnel-server-backend";
    if let Some(path) = std::env::var_os("CABLE_TUNNEL_SERVER") {
        return PathBuf::from(path);
    }
    let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(NAME))
                .collect()
        })
        .unwrap_or_default();
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    if let Some(home) = cargo_home {
        candidates.push(home.join("bin").join(NAME));
    }
    candidates.into_iter().find(|p| p.is_file()).unwrap_or_else(|| {
        panic!("{NAME} not found: .ci/deps installs it (cargo install {NAME} --version 0.1.0 --locked)")
    })
}

/// A test CA, a certificate for cable.ua5v.com / localhost signed by it, and a TLS
/// terminator (socat) on 127.0.0.1:443 in front of the tunnel server.
pub struct TlsFront {
    pub ca: PathBuf,
    pub hosts: PathBuf,
    _socat: Guard,
    /// Port 443 is one: tests that need it take turns (they run on threads of one process).
    _port: std::sync::MutexGuard<'static, ()>,
}

/// Held by the [`TlsFront`] that has port 443.
static PORT_443: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl TlsFront {
    pub fn start(dir: &Path, backend_port: u16) -> TlsFront {
        // A test that failed while holding the port leaves it poisoned, not taken.
        let port = PORT_443
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let ca_key = dir.join("ca.key");
        let ca = dir.join("ca.pem");
        let key = dir.join("server.key");
        let csr = dir.join("server.csr");
        let cert = dir.join("server.pem");
        let ext = dir.join("server.ext");
        std::fs::write(
            &ext,
            "subjectAltName=DNS:cable.ua5v.com,DNS:localhost,IP:127.0.0.1\n\
             basicConstraints=critical,CA:FALSE\n\
             keyUsage=critical,digitalSignature\n\
             extendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        let p256 = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        openssl(
            Command::new("openssl")
                .args(["req", "-x509"])
                .args(p256)
                .arg("-keyout")
                .arg(&ca_key)
                .arg("-out")
                .arg(&ca)
                .args(["-days", "2", "-subj", "/CN=fido2d hybrid test CA"])
                .args(["-addext", "basicConstraints=critical,CA:TRUE"])
                .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]),
        );
        openssl(
            Command::new("openssl")
                .arg("req")
                .args(p256)
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&csr)
                .args(["-subj", "/CN=cable.ua5v.com"]),
        );
        openssl(
            Command::new("openssl")
                .args(["x509", "-req", "-days", "2", "-set_serial", "2"])
                .arg("-in")
                .arg(&csr)
                .arg("-CA")
                .arg(&ca)
                .arg("-CAkey")
                .arg(&ca_key)
                .arg("-extfile")
                .arg(&ext)
                .arg("-out")
                .arg(&cert),
        );
        let hosts = dir.join("hosts");
        std::fs::write(&hosts, "127.0.0.1 localhost cable.ua5v.com\n").unwrap();
        let mut socat = Guard::spawn(
            "socat",
            Command::new("socat")
                .arg(format!(
                    "OPENSSL-LISTEN:443,bind=127.0.0.1,reuseaddr,fork,cert={},key={},verify=0",
                    cert.display(),
                    key.display()
                ))
                .arg(format!("TCP:127.0.0.1:{backend_port}"))
                .stdout(Stdio::null()),
        );
        wait_for_port(443, "the TLS terminator");
        socat.assert_running();
        TlsFront {
            ca,
            hosts,
            _socat: socat,
            _port: port,
        }
    }
}

fn openssl(command: &mut Command) {
    let output = command.output().expect("openssl runs");
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Path of an initiator program, building the package on first use.
pub fn initiator_bin(name: &str) -> PathBuf {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let dir = BUILT
        .get_or_init(build_initiators)
        .clone()
        .unwrap_or_else(|e| panic!("cannot build the hybrid initiators: {e}"));
    dir.join(name)
}

fn build_initiators() -> Result<PathBuf, String> {
    let manifest = workspace_root().join("tests/hybrid/initiators/Cargo.toml");
    let target = workspace_root().join("target/hybrid-initiators");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args(["build", "--locked", "--manifest-path"])
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    Ok(target.join("debug"))
}
