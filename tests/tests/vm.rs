//! The real-kernel tier (tests/vm/run.sh): a Debian kernel in qemu runs `fido2d --transport
//! uhid`, and libfido2, OpenSSH and python-fido2 use the virtual key through /dev/hidraw*.
//! A missing tool (qemu, fido2-tools, ...) fails this test with what to install; it is never
//! skipped for that. `.ci/deps` installs everything. Two tiers: `browser` is the browser group,
//! `vm` every other group; one VM boot runs whichever are selected (`FIDO2D_TEST_TIERS`).

use std::process::Command;
use std::time::Duration;

use fido2d_tests::tiers::{report_skipped, selected, Tier};
use fido2d_tests::{
    fido2ctl_bin, fido2d_bin, python, require_python_fido2, run_with_timeout, workspace_root,
};

/// run.sh kills qemu after its own limit (540 s plus the groups' declared timeouts: 2940 s
/// with the browser group's 1500 s, pam's 300 s and luks' 600 s); this, above it, only guards
/// against a hung script.
const TIMEOUT: Duration = Duration::from_secs(3300);

/// The VM tier's check groups (`run.sh --list`), the browser group apart.
fn groups() -> (Vec<String>, String) {
    let list = run_with_timeout(
        Command::new("bash")
            .arg(workspace_root().join("tests/vm/run.sh"))
            .arg("--list"),
        Duration::from_secs(30),
    );
    assert!(list.success(), "run.sh --list: {}", list.stderr);
    let (browser, others): (Vec<String>, Vec<String>) = list
        .stdout
        .lines()
        .map(str::to_owned)
        .partition(|g| g == "browser");
    assert_eq!(browser.len(), 1, "run.sh --list names the browser group");
    (others, browser[0].clone())
}

#[test]
fn real_kernel_checks_in_qemu() {
    let (vm, browser) = (selected(Tier::Vm), selected(Tier::Browser));
    let (others, browser_group) = groups();
    // No group named: run.sh runs every one, in one boot.
    let named: Vec<String> = match (vm, browser) {
        (true, true) => Vec::new(),
        (true, false) => {
            report_skipped(Tier::Browser, "the VM tier's browser group");
            others
        }
        (false, true) => {
            report_skipped(Tier::Vm, &format!("the VM groups {}", others.join(" ")));
            vec![browser_group]
        }
        (false, false) => {
            report_skipped(Tier::Vm, "real_kernel_checks_in_qemu (every VM group)");
            report_skipped(
                Tier::Browser,
                "real_kernel_checks_in_qemu (the browser group)",
            );
            return;
        }
    };
    require_python_fido2();
    let outcome = run_with_timeout(
        Command::new("bash")
            .arg(workspace_root().join("tests/vm/run.sh"))
            .args(&named)
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
