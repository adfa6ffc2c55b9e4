//! The files under dist/: the systemd unit passes `systemd-analyze verify`, and the module list
//! loads what the uhid transport needs.

use fido2d_tests::tiers::{skip, Tier};
use std::process::Command;

use fido2d_tests::{fido2d_bin, workspace_root};

#[test]
fn the_service_unit_passes_systemd_analyze_verify() {
    if skip(Tier::Unit) {
        return;
    }
    let unit = std::fs::read_to_string(workspace_root().join("dist/fido2d.service"))
        .expect("read dist/fido2d.service");
    assert!(
        unit.contains("ExecStart=/usr/bin/fido2d --config /etc/fido2d/config.toml"),
        "the unit should start the installed binary with the installed configuration"
    );
    // verify also checks that ExecStart= names an executable: point it at the one just built.
    let bin = fido2d_bin();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let copy = dir.path().join("fido2d.service");
    std::fs::write(
        &copy,
        unit.replace("/usr/bin/fido2d", &bin.display().to_string()),
    )
    .expect("write the unit copy");

    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .unwrap_or_else(|e| panic!("cannot run systemd-analyze (apt-get install systemd): {e}"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "systemd-analyze verify failed:\n{stderr}"
    );
    // It also warns (without failing) about unknown or misplaced settings: none allowed.
    assert!(
        stderr.trim().is_empty(),
        "systemd-analyze verify warned:\n{stderr}"
    );
}

#[test]
fn the_service_is_hardened_as_documented() {
    if skip(Tier::Unit) {
        return;
    }
    let unit = std::fs::read_to_string(workspace_root().join("dist/fido2d.service"))
        .expect("read dist/fido2d.service");
    let settings: Vec<&str> = unit.lines().map(str::trim).collect();
    for required in [
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "NoNewPrivileges=yes",
        "DevicePolicy=closed",
        "DeviceAllow=/dev/uhid rw",
        "DeviceAllow=/dev/tpmrm0 rw",
        "StateDirectory=fido2d",
        "Restart=on-failure",
        "SupplementaryGroups=tss",
        "RuntimeDirectory=fido2d",
    ] {
        assert!(
            settings.contains(&required),
            "{required} missing from the unit"
        );
    }
}

#[test]
fn modules_load_d_loads_uhid() {
    if skip(Tier::Unit) {
        return;
    }
    let conf = std::fs::read_to_string(workspace_root().join("dist/modules-load.d/fido2d.conf"))
        .expect("read dist/modules-load.d/fido2d.conf");
    let modules: Vec<&str> = conf
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(modules, ["uhid"]);
}

#[test]
fn the_agent_user_unit_passes_systemd_analyze_verify() {
    if skip(Tier::Unit) {
        return;
    }
    let unit = std::fs::read_to_string(workspace_root().join("dist/fido2d-agent.service"))
        .expect("read dist/fido2d-agent.service");
    assert!(unit.contains("ExecStart=/usr/bin/fido2ctl agent"));
    assert!(unit.contains("WantedBy=graphical-session.target"));
    let bin = fido2d_tests::fido2ctl_bin();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let copy = dir.path().join("fido2d-agent.service");
    std::fs::write(
        &copy,
        unit.replace("/usr/bin/fido2ctl", &bin.display().to_string()),
    )
    .unwrap();
    // A user manager needs a runtime directory of its own, even to verify.
    let runtime = tempfile::tempdir().unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(runtime.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    }

    let output = Command::new("systemd-analyze")
        .args(["--user", "verify"])
        .arg(&copy)
        .env("XDG_RUNTIME_DIR", runtime.path())
        .output()
        .expect("systemd-analyze");

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.trim().is_empty(),
        "systemd-analyze warned:\n{stderr}"
    );
}

#[test]
fn the_autostart_entry_is_a_valid_desktop_file_skipped_under_systemd() {
    if skip(Tier::Unit) {
        return;
    }
    let path = workspace_root().join("dist/autostart/fido2ctl-agent.desktop");
    let entry = std::fs::read_to_string(&path).unwrap();
    assert!(entry.contains("Exec=/usr/bin/fido2ctl agent"));
    assert!(
        entry.contains("X-systemd-skip=true"),
        "systemd sessions run the user unit instead; two agents would show every prompt twice"
    );

    let output = Command::new("desktop-file-validate")
        .arg(&path)
        .output()
        .expect("desktop-file-validate (apt-get install desktop-file-utils; .ci/deps does)");

    assert!(
        output.status.success() && output.stdout.is_empty(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
