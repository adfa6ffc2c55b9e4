//! Two clients at once and CANCEL during a presence wait, over the UDP transport: python-fido2
//! (tests/e2e/concurrency.py) answers fido2d's `--presence terminal` prompts through a FIFO
//! that is the daemon's stdin. The same script runs over real hidraw in the VM tier.

use fido2d_tests::tiers::{skip, Tier};
use std::fs::OpenOptions;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use fido2d_tests::{python, require_python_fido2, run_with_timeout, Daemon};

const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

#[test]
fn busy_second_client_and_cancel_of_a_presence_wait() {
    if skip(Tier::Python) {
        return;
    }
    require_python_fido2();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let fifo = dir.path().join("presence");
    let made = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(made.success(), "mkfifo {} failed", fifo.display());
    // Opened read-write: the open does not wait for a writer, and the daemon never reads
    // end-of-file between the script's answers.
    let stdin = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo)
        .expect("open the presence FIFO");
    let mut daemon = Daemon::builder()
        .args(&["--presence", "terminal", "--presence-timeout", "60"])
        .stdin(Stdio::from(stdin))
        .start();

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/concurrency.py");
    let outcome = run_with_timeout(
        Command::new(python())
            .arg(&script)
            .arg(daemon.port().to_string())
            .arg(&fifo)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("PYTHONUNBUFFERED", "1"),
        SCRIPT_TIMEOUT,
    );
    println!("{}", outcome.stdout);
    if !outcome.stderr.is_empty() {
        eprintln!("----- concurrency.py stderr -----\n{}", outcome.stderr);
    }
    assert!(
        outcome.success(),
        "concurrency.py failed ({:?}):\n{}",
        outcome.status,
        outcome.stdout
    );
    let status = daemon.stop();
    assert!(status.success(), "fido2d exited with {status} on SIGTERM");
}
