//! A real TPM 2.0 for tests: `swtpm` (libtpms) on loopback, on free ports, with its state in a
//! directory that outlives a restart.
//!
//! - [`Swtpm::start`] runs one with a fresh state; [`Swtpm::restart`] stops it and starts it
//!   again on the same state (the same TPM: same seeds, same persistent objects).
//! - [`Swtpm::tcti`] is what fido2d and tpm2-tools take (`swtpm:host=127.0.0.1,port=P`).
//! - [`SilentEndpoint`] accepts TPM connections and never answers: the hung TPM that must not
//!   hang fido2d's start-up.
//!
//! A missing `swtpm` fails the test (never skips it): `.ci/deps` installs it.

use std::fs::File;
use std::io::Read as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long swtpm may take to listen.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How many times to try other ports when the chosen ones were taken meanwhile.
const PORT_ATTEMPTS: usize = 8;

/// A running swtpm; stopped (and its temporary state removed) when dropped.
pub struct Swtpm {
    child: Option<Child>,
    /// Whether swtpm runs TPM2_Startup itself (as firmware would).
    startup: bool,
    port: u16,
    state_dir: PathBuf,
    log: PathBuf,
    _temp: TempDir,
}

impl Swtpm {
    /// A new TPM (fresh state) on free loopback ports.
    ///
    /// # Panics
    /// If swtpm is not installed or does not start.
    pub fn start() -> Swtpm {
        Swtpm::launch_new(true)
    }

    /// A new TPM that nobody has sent TPM2_Startup: every command fails with
    /// TPM_RC_INITIALIZE, as on a machine whose firmware did not start its TPM.
    pub fn start_without_startup() -> Swtpm {
        Swtpm::launch_new(false)
    }

    /// A TPM whose state is a copy of the swtpm state directory `state` (its
    /// `tpm2-00.permall`: the seeds, persistent objects and NV of a TPM used before).
    pub fn start_from(state: &Path) -> Swtpm {
        Swtpm::create(true, Some(state))
    }

    fn launch_new(startup: bool) -> Swtpm {
        Swtpm::create(startup, None)
    }

    fn create(startup: bool, from: Option<&Path>) -> Swtpm {
        let temp = tempfile::Builder::new()
            .prefix("swtpm-")
            .tempdir()
            .expect("create a temporary directory for swtpm");
        let state_dir = temp.path().join("state");
        std::fs::create_dir(&state_dir).expect("create the swtpm state directory");
        for entry in from.into_iter().flat_map(|from| {
            std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display()))
        }) {
            let path = entry.expect("a directory entry").path();
            std::fs::copy(
                &path,
                state_dir.join(path.file_name().expect("a file name")),
            )
            .unwrap_or_else(|e| panic!("copy {}: {e}", path.display()));
        }
        let log = temp.path().join("swtpm.log");
        let mut swtpm = Swtpm {
            child: None,
            startup,
            port: 0,
            state_dir,
            log,
            _temp: temp,
        };
        swtpm.launch();
        swtpm
    }

    /// `swtpm:host=127.0.0.1,port=P`, the TCTI of this TPM (it changes with a restart).
    pub fn tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port)
    }

    /// The TPM command port (the control port is the next one).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Where swtpm keeps the TPM's persistent state.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// Stops swtpm and starts it again on the same state, as a reboot of the machine would
    /// (TPM2_Startup(CLEAR): loaded objects and sessions are gone, seeds and persistent
    /// objects stay).
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// Runs a tpm2-tools command against this TPM (e.g. `["tpm2_changeauth", "-c", "owner",
    /// "secret"]`) and returns its stdout.
    ///
    /// # Panics
    /// If the tool is missing or fails.
    pub fn tool(&self, args: &[&str]) -> String {
        let output = Command::new(args[0])
            .args(&args[1..])
            .env("TPM2TOOLS_TCTI", self.tcti())
            .env("TSS2_LOG", "all+NONE")
            .current_dir(self._temp.path())
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run {}: {e} (install tpm2-tools: .ci/deps)", args[0])
            });
        assert!(
            output.status.success(),
            "{args:?} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Sets the TPM's dictionary-attack parameters (`tpm2_dictionarylockout -s`): `max_tries`
    /// failed authorizations put it in lockout, one is forgiven every `recovery_s` seconds,
    /// and a failed lockout authorization waits `lockout_recovery_s`. The count starts at 0.
    /// (swtpm's own: 3, 1000 s, 1000 s.) Close every other connection first: swtpm serves one
    /// at a time.
    pub fn set_dictionary_attack(&self, max_tries: u32, recovery_s: u32, lockout_recovery_s: u32) {
        self.tool(&["tpm2_dictionarylockout", "-c"]);
        self.tool(&[
            "tpm2_dictionarylockout",
            "-s",
            "-n",
            &max_tries.to_string(),
            "-t",
            &recovery_s.to_string(),
            "-l",
            &lockout_recovery_s.to_string(),
        ]);
    }

    /// A variable TPM property as `tpm2_getcap properties-variable` prints it, e.g.
    /// `"TPM2_PT_LOCKOUT_COUNTER"`, or a TPMA_PERMANENT bit, e.g. `"inLockout"`.
    pub fn variable_property(&self, name: &str) -> u32 {
        let output = self.tool(&["tpm2_getcap", "properties-variable"]);
        output
            .lines()
            .find_map(|line| {
                let (key, value) = line.trim().split_once(':')?;
                (key.trim() == name).then(|| value.trim().to_owned())
            })
            .and_then(|value| match value.strip_prefix("0x") {
                Some(hex) => u32::from_str_radix(hex, 16).ok(),
                None => value.parse().ok(),
            })
            .unwrap_or_else(|| panic!("no {name} in tpm2_getcap properties-variable:\n{output}"))
    }

    /// The directory tpm2-tools commands run in (for their input and context files).
    pub fn work_dir(&self) -> &Path {
        self._temp.path()
    }

    /// Runs a tpm2-tools command that must fail and returns its stderr.
    ///
    /// # Panics
    /// If the tool is missing or succeeds.
    pub fn tool_fails(&self, args: &[&str]) -> String {
        let output = Command::new(args[0])
            .args(&args[1..])
            .env("TPM2TOOLS_TCTI", self.tcti())
            .current_dir(self._temp.path())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", args[0]));
        assert!(!output.status.success(), "{args:?} succeeded");
        String::from_utf8_lossy(&output.stderr).into_owned()
    }

    fn launch(&mut self) {
        let mut last_failure = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port_pair();
            let mut child = spawn_swtpm(port, &self.state_dir, &self.log, self.startup);
            match wait_listening(&mut child, port + 1) {
                Ok(()) => {
                    self.child = Some(child);
                    self.port = port;
                    return;
                }
                Err(failure) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_failure = failure;
                }
            }
        }
        panic!(
            "swtpm did not start ({last_failure}); its log:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spawn_swtpm(port: u16, state_dir: &Path, log: &Path, startup: bool) -> Child {
    let log_file = File::options()
        .create(true)
        .append(true)
        .open(log)
        .expect("open the swtpm log");
    Command::new("swtpm")
        .args(["socket", "--tpm2"])
        .arg("--server")
        .arg(format!("type=tcp,port={port},bindaddr=127.0.0.1"))
        .arg("--ctrl")
        .arg(format!("type=tcp,port={},bindaddr=127.0.0.1", port + 1))
        .arg("--tpmstate")
        .arg(format!("dir={}", state_dir.display()))
        .args([
            "--flags",
            if startup {
                "not-need-init,startup-clear"
            } else {
                "not-need-init"
            },
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start swtpm: {e}. The TPM tests need a real TPM 2.0 simulator: \
                 apt-get install swtpm swtpm-tools tpm2-tools (.ci/deps installs them)"
            )
        })
}

/// Waits until swtpm accepts connections on `port`, or says why it will not.
fn wait_listening(child: &mut Child, port: u16) -> Result<(), String> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Err(format!("swtpm exited with {status}"));
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "not listening on port {port} after {READY_TIMEOUT:?}"
            ));
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// A port P with P and P + 1 free on 127.0.0.1 at the time of asking.
fn free_port_pair() -> u16 {
    loop {
        let first = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a free port");
        let port = first.local_addr().expect("local address").port();
        if port < u16::MAX && TcpListener::bind((Ipv4Addr::LOCALHOST, port + 1)).is_ok() {
            return port;
        }
    }
}

/// Two listening ports (a TPM command port and the control port after it) that accept
/// every connection, read what comes and never answer.
pub struct SilentEndpoint {
    port: u16,
    /// Every connection accepted so far, kept open.
    connections: Arc<Mutex<Vec<TcpStream>>>,
}

impl SilentEndpoint {
    pub fn start() -> SilentEndpoint {
        let connections = Arc::new(Mutex::new(Vec::new()));
        loop {
            let port = free_port_pair();
            let (Ok(command), Ok(control)) = (
                TcpListener::bind((Ipv4Addr::LOCALHOST, port)),
                TcpListener::bind((Ipv4Addr::LOCALHOST, port + 1)),
            ) else {
                continue;
            };
            for listener in [command, control] {
                let connections = Arc::clone(&connections);
                thread::spawn(move || {
                    for stream in listener.incoming().flatten() {
                        let mut reader = stream.try_clone().expect("clone a TCP stream");
                        connections
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(stream);
                        // Swallow requests so the client's writes never block.
                        thread::spawn(move || {
                            let mut sink = [0u8; 4096];
                            while matches!(reader.read(&mut sink), Ok(n) if n > 0) {}
                        });
                    }
                });
            }
            return SilentEndpoint { port, connections };
        }
    }

    /// `swtpm:host=127.0.0.1,port=P`.
    pub fn tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port)
    }

    /// How many connections it accepted (and left unanswered).
    pub fn connections(&self) -> usize {
        self.connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }
}
