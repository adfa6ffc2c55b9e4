//! The real-kernel tier (tests/vm/run.sh): a Debian kernel in qemu runs `fido2d --transport
//! uhid`, and libfido2, OpenSSH and python-fido2 use the virtual key through /dev/hidraw*.
//! A missing tool (qemu, fido2-tools, ...) fails this test with what to install; it is never
//! skipped. `.ci/deps` installs everything.

use std::process::Command;
use std::time::Duration;

use fido2d_tests::{
    fido2ctl_bin, fido2d_bin, python, require_python_fido2, run_with_timeout, workspace_root,
};

/// run.sh kills qemu after its own limit (540 s plus the groups' declared timeouts: 2940 s
/// with the browser group's 1500 s, pam's 300 s and luks' 600 s); this, above it, only guards
/// against a hung script.
const TIMEOUT: Duration = Duration::from_secs(3300);

#[test]
fn real_kernel_checks_in_qemu() {
    require_python_fido2();
    let outcome = run_with_timeout(
        Command::new("bash")
            .arg(workspace_root().join("tests/vm/run.sh"))
            .env("FIDO2D_BIN", fido2d_bin())
            .env("FIDO2CTL_BIN", fido2ctl_bin())
            .env("PYTHON", python()),
        TIMEOUT,
    );
    // The verdict lines, then the whole run for a failure.
    let summary: Vec<&str> = outcome
        .stdout
        .lines()
        .filter(|l| l.starts_with("PASS ") || l.starts_with("FAIL ") || l.starts_with("vm: "))
        .collect();
    println!("{}", summary.join("\n"));
    assert!(
        outcome.success(),
        "tests/vm/run.sh failed ({:?}); logs in target/vm/out/\n{}\n----- stderr -----\n{}",
        outcome.status,
        outcome.stdout,
        outcome.stderr
    );
}
