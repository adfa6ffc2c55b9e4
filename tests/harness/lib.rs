//! Shared helpers for the end-to-end tests: building and starting fido2d.
//!
//! - [`fido2d_bin`] builds the `fido2d` binary once per test process (with the
//!   profile the tests were built with) and returns its path.
//! - [`Daemon`] runs it on a free UDP port in a fresh state directory, waits for
//!   its ready line, keeps its logs, and stops it when dropped.
//! - [`swtpm`] runs a real TPM 2.0 simulator for the TPM backend.
//! - [`requests`] builds the CTAP2 requests the tests send by hand.
//! - [`state_tree`] makes a private state directory and snapshots one byte for byte.
//! - [`tiers`] lets a developer run some tiers alone (`FIDO2D_TEST_TIERS`).
//! - [`run_with_timeout`] runs a helper program (e.g. a Python script) with a
//!   deadline, collecting its output.

pub mod fprintd;
pub mod hybrid;

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write as _};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use protocol::ctaphid::host::{Answer, AnswerReader};
use regex::Regex;
use tempfile::TempDir;

pub mod process_memory;
pub mod requests;
pub mod state_tree;
/// swtpm, from its own crate (`tests/swtpm`, which storage's tests use too).
pub use fido2d_swtpm as swtpm;
pub mod tiers;

/// How long fido2d may take to print its ready line.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long fido2d may take to exit after SIGTERM before it is killed.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The phrase of fido2d's ready line; the port follows it as `127.0.0.1:<port>`.
const READY_PHRASE: &str = "CTAPHID over UDP on";

/// The workspace root (the parent of this package's directory).
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent directory")
}

/// Path of the `fido2d` binary, built on first use (once per test process).
///
/// `FIDO2D_BIN` overrides it with a prebuilt binary. Otherwise this runs
/// `$CARGO build -p fido2d --bin fido2d` with the profile and target directory
/// the running test was built with, and panics with cargo's output if that fails.
pub fn fido2d_bin() -> PathBuf {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match BIN.get_or_init(|| build_bin("fido2d", "FIDO2D_BIN")) {
        Ok(path) => path.clone(),
        Err(e) => panic!("cannot build fido2d: {e}"),
    }
}

/// Path of the `fido2ctl` binary, built like [`fido2d_bin`] (`FIDO2CTL_BIN` overrides it).
pub fn fido2ctl_bin() -> PathBuf {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match BIN.get_or_init(|| build_bin("fido2ctl", "FIDO2CTL_BIN")) {
        Ok(path) => path.clone(),
        Err(e) => panic!("cannot build fido2ctl: {e}"),
    }
}

/// Builds the binary `name` of the package of the same name.
fn build_bin(name: &str, override_var: &str) -> Result<PathBuf, String> {
    if let Some(bin) = std::env::var_os(override_var) {
        return Ok(PathBuf::from(bin));
    }
    // The test runs as <target>/<profile>/deps/<test>-<hash>.
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let deps = exe.parent().ok_or("test executable has no parent")?;
    if deps.file_name().is_none_or(|n| n != "deps") {
        return Err(format!(
            "{} is not in a cargo deps/ directory; set {override_var}",
            exe.display()
        ));
    }
    let profile_dir = deps.parent().ok_or("deps/ has no parent")?;
    let target_dir = profile_dir.parent().ok_or("profile dir has no parent")?;
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or("profile dir has no UTF-8 name")?;

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from(env!("CARGO")));
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root())
        .args(["build", "-p", name, "--bin", name])
        .env("CARGO_TARGET_DIR", target_dir);
    match profile {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        custom => {
            cmd.args(["--profile", custom]);
        }
    }
    let output = cmd
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "{cmd:?} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let bin = profile_dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if !bin.is_file() {
        return Err(format!("{} missing after the build", bin.display()));
    }
    Ok(bin)
}

/// The Python interpreter of the python-fido2 tests (`PYTHON`, default `python3`).
pub fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// Runs `tests/e2e/<script> PORT args...` (python-fido2) against `daemon`, printing its output,
/// and fails the test with the script's failed checks (its `FAIL ` lines) if it fails or does
/// not finish within `timeout`.
pub fn run_e2e_script(script: &str, daemon: &Daemon, args: &[&str], timeout: Duration) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("e2e")
        .join(script);
    let outcome = run_with_timeout(
        Command::new(python())
            .arg(&path)
            .arg(daemon.port().to_string())
            .args(args)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("PYTHONUNBUFFERED", "1"),
        timeout,
    );
    println!("{}", outcome.stdout);
    if !outcome.stderr.is_empty() {
        eprintln!("----- {script} {args:?} stderr -----\n{}", outcome.stderr);
    }
    let failures: Vec<&str> = outcome
        .stdout
        .lines()
        .filter(|l| l.starts_with("FAIL "))
        .collect();
    match outcome.status {
        None => panic!("{script} {args:?} did not finish within {timeout:?}"),
        Some(status) => assert!(
            status.success(),
            "{script} {args:?} exited with {status}; failed checks:\n{}",
            failures.join("\n")
        ),
    }
}

/// Fails the test (never skips it) when python-fido2 2.x is not importable.
pub fn require_python_fido2() {
    const MISSING: &str = "python-fido2 is missing: pip install fido2==2.2.1";
    let probe = Command::new(python())
        .args([
            "-c",
            "import fido2, importlib.metadata as m; print(m.version('fido2'))",
        ])
        .output();
    let output = match probe {
        Ok(output) => output,
        Err(e) => panic!("{MISSING} (cannot run {}: {e})", python()),
    };
    if !output.status.success() {
        panic!("{MISSING}\n{}", String::from_utf8_lossy(&output.stderr));
    }
    let version = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    assert!(
        version.starts_with("2."),
        "python-fido2 {version} found, the e2e harness needs 2.x: pip install fido2==2.2.1"
    );
}

/// A running fido2d serving CTAPHID over UDP on 127.0.0.1.
///
/// Dropping it stops the daemon (SIGTERM, then SIGKILL after [`STOP_TIMEOUT`])
/// and, if the test is panicking, prints the daemon's logs.
pub struct Daemon {
    child: Child,
    port: u16,
    state_dir: PathBuf,
    _temp_dir: Option<TempDir>,
    /// Holds the control socket (mode 0755, so other users reach the socket itself).
    runtime_dir: TempDir,
    logs: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
    exit_status: Option<ExitStatus>,
}

/// How a test's fido2d is started: on a fresh private state directory unless one is given,
/// CTAPHID over UDP on a free port, the encrypted-file keystore unless the arguments pick one.
/// [`DaemonBuilder::start`] waits for the ready line; [`DaemonBuilder::expect_refusal`] runs
/// one that must not start.
#[derive(Default)]
pub struct DaemonBuilder {
    args: Vec<String>,
    state_dir: Option<PathBuf>,
    envs: Vec<(String, String)>,
    stdin: Option<Stdio>,
    wrapper: Vec<String>,
}

impl DaemonBuilder {
    /// Arguments after the harness's own (e.g. `["--presence", "auto-approve"]`).
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| (*a).to_owned()));
        self
    }

    /// An existing state directory the caller owns (e.g. to restart a daemon on the same
    /// state), in place of a fresh temporary one.
    pub fn state_dir(mut self, dir: &Path) -> Self {
        self.state_dir = Some(dir.to_path_buf());
        self
    }

    /// Environment variables for the daemon (e.g. the D-Bus system bus it should use).
    pub fn envs(mut self, envs: &[(&str, &str)]) -> Self {
        self.envs
            .extend(envs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        self
    }

    /// The daemon's standard input (e.g. a FIFO that answers `--presence terminal` prompts);
    /// null otherwise.
    pub fn stdin(mut self, stdin: Stdio) -> Self {
        self.stdin = Some(stdin);
        self
    }

    /// Runs fido2d through `wrapper` (a command and its arguments, to which fido2d's path and
    /// arguments are appended; it must exec them, so that the pid is fido2d's), e.g.
    /// `unshare -m sh -c '...; exec "$@"'` for a private mount namespace.
    pub fn wrapper(mut self, wrapper: &[&str]) -> Self {
        self.wrapper = wrapper.iter().map(|a| (*a).to_owned()).collect();
        self
    }

    /// Starts fido2d and waits for its ready line.
    pub fn start(self) -> Daemon {
        let (state_dir, temp) = match &self.state_dir {
            Some(dir) => (dir.clone(), None),
            None => {
                let temp = private_temp_dir("fido2d-state-");
                (temp.path().to_path_buf(), Some(temp))
            }
        };
        Daemon::spawn(state_dir, temp, self)
    }

    /// Runs fido2d when it is expected to refuse to start: returns its exit status and
    /// output, or fails the test if it is still running after `timeout` (it hung) or printed
    /// its ready line (it started).
    pub fn expect_refusal(self, timeout: Duration) -> Outcome {
        let state_dir = self
            .state_dir
            .clone()
            .expect("expect_refusal needs the state directory it is about");
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let mut cmd = Command::new(fido2d_bin());
        cmd.args(["--config", "/dev/null"])
            .args(["--transport", "udp", "--udp-port", "0", "--state-dir"])
            .arg(&state_dir)
            .args(hermetic_keystore(&args))
            .args(&args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .env("NO_COLOR", "1");
        let outcome = run_with_timeout(&mut cmd, timeout);
        assert!(
            outcome.status.is_some(),
            "fido2d {args:?} was still running after {timeout:?}:\n{}",
            outcome.stderr
        );
        assert!(
            !outcome.stderr.contains(READY_PHRASE),
            "fido2d {args:?} started:\n{}",
            outcome.stderr
        );
        outcome
    }
}

/// A temporary directory of mode 0700 (fido2d refuses a state directory that group or others
/// can read).
fn private_temp_dir(prefix: &str) -> TempDir {
    let temp = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("create a temporary state directory");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(temp.path(), std::fs::Permissions::from_mode(0o700))
            .expect("chmod 0700 the temporary state directory");
    }
    temp
}

impl Daemon {
    /// How to start one: see [`DaemonBuilder`].
    pub fn builder() -> DaemonBuilder {
        DaemonBuilder::default()
    }

    /// The common case: a fresh state directory and `extra_args`
    /// (`Daemon::builder().args(extra_args).start()`).
    pub fn start(extra_args: &[&str]) -> Daemon {
        Daemon::builder().args(extra_args).start()
    }

    /// A daemon whose user-presence checks all succeed at once.
    pub fn auto_approve() -> Daemon {
        Daemon::start(&["--presence", "auto-approve"])
    }

    fn spawn(state_dir: PathBuf, temp_dir: Option<TempDir>, how: DaemonBuilder) -> Daemon {
        let extra_args: Vec<&str> = how.args.iter().map(String::as_str).collect();
        let extra_args = extra_args.as_slice();
        let wrapper = how.wrapper.as_slice();
        let bin = fido2d_bin();
        let runtime_dir = tempfile::Builder::new()
            .prefix("fido2d-run-")
            .tempdir()
            .expect("create a temporary runtime directory");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(runtime_dir.path(), std::fs::Permissions::from_mode(0o755))
                .expect("chmod 0755 the temporary runtime directory");
        }
        let mut cmd = match wrapper.split_first() {
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg(&bin);
                cmd
            }
            None => Command::new(&bin),
        };
        // --config /dev/null: the machine's /etc/fido2d/config.toml must not change the test.
        cmd.args(["--config", "/dev/null"])
            .args(["--transport", "udp", "--udp-port", "0", "--state-dir"])
            .arg(&state_dir)
            .arg("--control-socket")
            .arg(runtime_dir.path().join("control.sock"))
            .args(hermetic_keystore(extra_args))
            .args(extra_args)
            .envs(how.envs.iter().map(|(k, v)| (k, v)))
            .env("NO_COLOR", "1")
            .stdin(how.stdin.unwrap_or_else(Stdio::null))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));

        let logs = Arc::new(Mutex::new(String::new()));
        let (lines_tx, lines_rx) = mpsc::channel();
        let stderr = child.stderr.take().expect("piped stderr");
        let stdout = child.stdout.take().expect("piped stdout");
        let readers = vec![
            collect_lines(stderr, "", Arc::clone(&logs), Some(lines_tx)),
            collect_lines(stdout, "[stdout] ", Arc::clone(&logs), None),
        ];

        let mut daemon = Daemon {
            child,
            port: 0,
            state_dir,
            _temp_dir: temp_dir,
            runtime_dir,
            logs,
            readers,
            exit_status: None,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines_rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(port) = ready_port(&line) {
                        daemon.port = port;
                        return daemon;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    daemon.stop();
                    panic!(
                        "fido2d printed no '{READY_PHRASE} 127.0.0.1:<port>' line within \
                         {READY_TIMEOUT:?} (its logs follow)"
                    );
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = daemon.stop();
                    panic!("fido2d exited ({status}) before its ready line (its logs follow)");
                }
            }
        }
    }

    /// The UDP port fido2d serves on (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The socket address fido2d serves on.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// The daemon's state directory.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The daemon's control socket.
    pub fn control_socket(&self) -> PathBuf {
        self.runtime_dir.path().join("control.sock")
    }

    /// Everything the daemon logged so far (stderr; stdout lines prefixed).
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The logs once `needle` has been logged `times` times. The daemon may log an outcome
    /// just after it sends the answer, so a test that has its answer waits for the line.
    /// Panics with the logs after 10 s.
    pub fn logs_after(&self, needle: &str, times: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let logs = self.logs();
            if logs.matches(needle).count() >= times {
                return logs;
            }
            assert!(
                Instant::now() < deadline,
                "{needle:?} was not logged {times} time(s) within 10 s:\n{logs}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the daemon: SIGTERM, then SIGKILL if it has not exited within
    /// [`STOP_TIMEOUT`]. Returns its exit status; later calls return it again.
    pub fn stop(&mut self) -> ExitStatus {
        if let Some(status) = self.exit_status {
            return status;
        }
        let status = match self.child.try_wait() {
            Ok(Some(status)) => status,
            _ => {
                terminate(&self.child);
                match wait_timeout(&mut self.child, STOP_TIMEOUT) {
                    Some(status) => status,
                    None => {
                        let _ = self.child.kill();
                        self.child.wait().expect("wait for the killed fido2d")
                    }
                }
            }
        };
        self.exit_status = Some(status);
        // Let the readers take in the last lines (bounded: a grandchild could
        // keep the pipes open).
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline && !self.readers.iter().all(|r| r.is_finished()) {
            thread::sleep(Duration::from_millis(10));
        }
        status
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let status = self.stop();
        if thread::panicking() {
            eprintln!(
                "----- fido2d (port {}, {status}) logs -----\n{}----- end of fido2d logs -----",
                self.port,
                self.logs()
            );
        }
    }
}

/// Tests never reach the machine's own TPM: unless a test picks a keystore or names a TPM
/// (`--keystore`, `--tcti`), the daemon runs with the encrypted file.
fn hermetic_keystore(extra_args: &[&str]) -> &'static [&'static str] {
    if extra_args
        .iter()
        .any(|a| *a == "--keystore" || *a == "--tcti")
    {
        &[]
    } else {
        &["--keystore", "file"]
    }
}

/// The port of a fido2d ready line: `... CTAPHID over UDP on 127.0.0.1:<port> ...`.
fn ready_port(line: &str) -> Option<u16> {
    static PORT: OnceLock<Regex> = OnceLock::new();
    let (_, rest) = line.split_once(READY_PHRASE)?;
    let re = PORT.get_or_init(|| Regex::new(r"127\.0\.0\.1:(\d+)").expect("valid regex"));
    re.captures(rest)?.get(1)?.as_str().parse().ok()
}

/// Drops ANSI escape sequences (colours), in case the logger ignores NO_COLOR.
fn strip_ansi(line: &str) -> String {
    static ANSI: OnceLock<Regex> = OnceLock::new();
    let re = ANSI.get_or_init(|| Regex::new(r"\x1b\[[0-9;?]*[ -/]*[@-~]").expect("valid regex"));
    re.replace_all(line, "").into_owned()
}

/// Reads `stream` line by line in a thread, appending to `logs` and, while
/// someone listens, sending each line to `lines`.
fn collect_lines(
    stream: impl Read + Send + 'static,
    prefix: &'static str,
    logs: Arc<Mutex<String>>,
    lines: Option<mpsc::Sender<String>>,
) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let line = strip_ansi(String::from_utf8_lossy(&buf).trim_end_matches(['\r', '\n']));
            {
                let mut logs = logs.lock().unwrap_or_else(|e| e.into_inner());
                logs.push_str(prefix);
                logs.push_str(&line);
                logs.push('\n');
            }
            if let Some(tx) = &lines {
                let _ = tx.send(line);
            }
        }
    })
}

#[cfg(unix)]
fn terminate(child: &Child) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid fits in pid_t");
    // SAFETY: kill(2) with a pid we spawned and have not yet reaped.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
}

#[cfg(not(unix))]
fn terminate(child: &Child) {
    let _ = child;
}

/// Waits for `child` to exit, for at most `timeout`.
fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            _ => return None,
        }
    }
}

/// What [`run_with_timeout`] saw.
#[derive(Debug)]
pub struct Outcome {
    /// The exit status, or `None` if the program was killed at the deadline.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// True if the program exited by itself with status 0.
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }
}

/// Runs `cmd` (stdin closed, output collected), killing it after `timeout`.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Outcome {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let stdout = read_all(child.stdout.take().expect("piped stdout"));
    let stderr = read_all(child.stderr.take().expect("piped stderr"));
    let status = wait_timeout(&mut child, timeout);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    Outcome {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

fn read_all(mut stream: impl Read + Send + 'static) -> JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stream.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// How long [`Watched::wait_for`] waits for a line.
pub const WATCH_TIMEOUT: Duration = Duration::from_secs(20);

/// A running program (an agent, say) whose output lines a test waits for and whose stdin it
/// types into. Killed when dropped.
pub struct Watched {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Watched {
    /// The program's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn spawn(cmd: &mut Command) -> Watched {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
        let (tx, lines) = mpsc::channel();
        for stream in [
            Box::new(child.stderr.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stdout.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        let stdin = child.stdin.take();
        Watched {
            child,
            stdin,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line containing `needle`; returns it.
    pub fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + WATCH_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!("no line with {needle:?}; saw:\n{}", self.seen.join("\n")),
            }
        }
    }

    pub fn type_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").expect("write to the agent");
        stdin.flush().unwrap();
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A copy of fido2ctl that any user can run (the build tree may be private), in `dir`.
pub fn shared_fido2ctl(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let copy = dir.join("fido2ctl");
    std::fs::copy(fido2ctl_bin(), &copy).expect("copy fido2ctl");
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    copy
}

/// tests/e2e/uv_probe.py ACTION against `daemon` (built-in UV through python-fido2); its
/// output line.
pub fn uv_probe(daemon: &Daemon, action: &str) -> String {
    let script = workspace_root().join("tests/e2e/uv_probe.py");
    let outcome = run_with_timeout(
        Command::new(python())
            .arg(script)
            .arg(daemon.port().to_string())
            .arg(action),
        Duration::from_secs(90),
    );
    assert!(outcome.success(), "{}{}", outcome.stdout, outcome.stderr);
    outcome.stdout.trim().to_owned()
}

/// A person at the desktop who allows every request: `fido2ctl agent --terminal` on the
/// daemon's control socket, answered "y" each time it asks. Where `--presence auto-approve`
/// may not go (another computer through hybrid), tests approve the way a person does.
/// Stopped when dropped.
pub struct ApprovingPerson {
    child: Child,
    /// How many prompts were answered.
    pub answered: Arc<std::sync::atomic::AtomicUsize>,
}

impl ApprovingPerson {
    pub fn start(control_socket: &Path) -> ApprovingPerson {
        let mut child = Command::new(fido2ctl_bin())
            .arg("--socket")
            .arg(control_socket)
            .args(["agent", "--terminal"])
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run fido2ctl agent");
        let mut stdin = child.stdin.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = answered.clone();
        let (connected_tx, connected) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("connected to fido2d") {
                    let _ = connected_tx.send(());
                }
                if line.trim_end().ends_with("[y/N]") {
                    if writeln!(stdin, "y").and_then(|()| stdin.flush()).is_err() {
                        break;
                    }
                    count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            }
        });
        // Prompts that come before the agent is there are refused: wait for it.
        connected
            .recv_timeout(WATCH_TIMEOUT)
            .expect("fido2ctl agent connects to the daemon");
        ApprovingPerson { child, answered }
    }
}

impl Drop for ApprovingPerson {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_ready_line() {
        assert_eq!(
            ready_port("2025-01-01T00:00:00Z  INFO fido2d: CTAPHID over UDP on 127.0.0.1:40123"),
            Some(40123)
        );
        assert_eq!(
            ready_port("INFO CTAPHID over UDP on addr=127.0.0.1:9 (Solo simulator framing)"),
            Some(9)
        );
        assert_eq!(ready_port("INFO binding 127.0.0.1:0"), None);
        assert_eq!(ready_port("INFO CTAPHID over UDP on 127.0.0.1:99999"), None);
    }

    #[test]
    fn strips_colours() {
        assert_eq!(
            strip_ansi("\x1b[2m2025\x1b[0m \x1b[32m INFO\x1b[0m CTAPHID over UDP on 127.0.0.1:5"),
            "2025  INFO CTAPHID over UDP on 127.0.0.1:5"
        );
    }
}

impl Daemon {
    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the daemon with SIGKILL (no cleanup at all, like a power cut of the process).
    pub fn kill(&mut self) -> ExitStatus {
        if let Some(status) = self.exit_status {
            return status;
        }
        let _ = self.child.kill();
        let status = self.child.wait().expect("wait for the killed fido2d");
        self.exit_status = Some(status);
        status
    }
}

/// A CTAPHID client over fido2d's UDP transport, written from the spec (CTAP 2.1 §11.2) on top
/// of protocol's fragmentation: one socket, one channel from INIT. For tests that need many
/// independent clients or precise control over the reports; interoperability is what the
/// python-fido2, libfido2 and OpenSSH tests show.
pub struct HidClient {
    socket: std::net::UdpSocket,
    pub cid: u32,
}

fn invalid(what: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what)
}

/// What came back for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HidAnswer {
    /// The answer message (command without the init bit, payload).
    Message(u8, Vec<u8>),
    /// CTAPHID_ERROR with this code.
    Error(u8),
}

impl HidClient {
    pub const CMD_PING: u8 = 0x01;
    pub const CMD_MSG: u8 = 0x03;
    pub const CMD_INIT: u8 = 0x06;
    pub const CMD_CANCEL: u8 = 0x11;
    pub const CMD_CBOR: u8 = 0x10;
    pub const CMD_KEEPALIVE: u8 = 0x3b;
    pub const CMD_ERROR: u8 = 0x3f;
    pub const ERR_CHANNEL_BUSY: u8 = 0x06;

    /// Opens a socket to `addr` and allocates a channel.
    pub fn connect(addr: SocketAddr) -> std::io::Result<Self> {
        use protocol::ctaphid::host::{self, InitAnswer};
        let socket = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        socket.connect(addr)?;
        socket.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut client = HidClient {
            socket,
            cid: protocol::ctaphid::BROADCAST_CID,
        };
        let port = client.socket.local_addr()?.port();
        let nonce: [u8; 8] = std::array::from_fn(|i| (i as u8) ^ (port as u8));
        client.socket.send(&host::init_request(&nonce))?;
        let HidAnswer::Message(Self::CMD_INIT, answer) = client.read_answer()? else {
            return Err(std::io::Error::other("INIT was not answered by INIT"));
        };
        let answer = InitAnswer::parse(&nonce, &answer)
            .ok_or_else(|| std::io::Error::other("INIT answer with another nonce"))?;
        client.cid = answer.cid;
        Ok(client)
    }

    /// Sends one message and reads its answer, skipping keepalives. Every report that comes
    /// back must be for this channel and in sequence.
    pub fn transact(&mut self, command: u8, payload: &[u8]) -> std::io::Result<HidAnswer> {
        self.send(command, payload)?;
        self.read_answer()
    }

    /// Sends one message without reading its answer ([`HidClient::read_answer`] does).
    pub fn send(&mut self, command: u8, payload: &[u8]) -> std::io::Result<()> {
        let command = protocol::ctaphid::Command::from_code(command)
            .ok_or_else(|| std::io::Error::other("unknown command"))?;
        let reports = protocol::ctaphid::host::request(self.cid, command, payload)
            .ok_or_else(|| std::io::Error::other("message too long"))?;
        for report in &reports {
            self.socket.send(report)?;
        }
        Ok(())
    }

    /// CTAPHID_CANCEL: the platform withdraws the request in progress on this channel.
    pub fn cancel(&mut self) -> std::io::Result<()> {
        self.send(Self::CMD_CANCEL, &[])
    }

    /// Reads reports until a KEEPALIVE with `status` (1 processing, 2 user presence needed)
    /// comes for the request in progress; an answer or an error first is an error.
    pub fn wait_for_keepalive(&mut self, status: u8) -> std::io::Result<()> {
        loop {
            match self.next_answer()? {
                Answer::Keepalive(s) if s == status => return Ok(()),
                Answer::Keepalive(_) => {}
                other => {
                    return Err(invalid(format!(
                        "{other:?} came before a keepalive with status {status}"
                    )))
                }
            }
        }
    }

    /// Reads one answer message on this channel (keepalives skipped).
    pub fn read_answer(&mut self) -> std::io::Result<HidAnswer> {
        loop {
            match self.next_answer()? {
                Answer::Keepalive(_) => {}
                Answer::Error(code) => return Ok(HidAnswer::Error(code)),
                Answer::Message(command, payload) => {
                    return Ok(HidAnswer::Message(command, payload))
                }
            }
        }
    }

    /// The next whole thing the device says on this channel. Every report must be for this
    /// channel and in sequence: these tests hold the device to the letter.
    fn next_answer(&mut self) -> std::io::Result<Answer> {
        let mut reader = AnswerReader::new(self.cid);
        loop {
            let report = self.read_report()?;
            if let Some(answer) = reader
                .feed(&report)
                .map_err(|err| invalid(format!("{err:?}")))?
            {
                return Ok(answer);
            }
        }
    }

    fn read_report(&mut self) -> std::io::Result<[u8; 64]> {
        let mut buf = [0u8; 128];
        let n = self.socket.recv(&mut buf)?;
        if n != 64 {
            return Err(invalid(format!("a {n}-byte datagram")));
        }
        Ok(buf[..64].try_into().expect("64 bytes"))
    }

    /// A CTAP2 request (command byte + CBOR) answered over CTAPHID_CBOR.
    pub fn cbor(&mut self, request: &[u8]) -> std::io::Result<HidAnswer> {
        self.transact(Self::CMD_CBOR, request)
    }
}
