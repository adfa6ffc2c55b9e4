//! When the virtual key "powers up": its first appearance in this boot of the machine.
//!
//! CTAP allows authenticatorReset only within 10 s of power-up, so that software cannot wipe
//! a key whenever it likes: someone must unplug and plug it in. If every start of the daemon
//! counted, any program that can restart the service (a package upgrade does) would open that
//! window. So the key powers up once per boot (the kernel's boot id, recorded in the state
//! directory when the key appears); a restart within the same boot is not a power-up.
//! `fido2ctl reset` replugs the key instead, under the owner's gesture.

use std::path::Path;

/// The record's name in the state directory.
const RECORD: &str = "boot";

/// The kernel's id of this boot.
fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|id| id.trim().to_owned())
        .filter(|id| !id.is_empty())
}

/// Whether the key has not appeared yet in this boot (so this start is its power-up). Reads
/// only: [`record`] writes once the key exists.
pub fn first_in_this_boot(state_dir: &Path) -> bool {
    let Some(now) = boot_id() else {
        // No boot id to compare: every start counts, as before.
        return true;
    };
    let recorded = std::fs::read_to_string(state_dir.join(RECORD)).unwrap_or_default();
    recorded
        .lines()
        .find_map(|line| line.strip_prefix("boot_id="))
        .is_none_or(|id| id.trim() != now)
}

/// Records this boot as the one the key appeared in (atomically, `record_file`).
pub fn record(state_dir: &Path) -> std::io::Result<()> {
    match boot_id() {
        Some(id) => crate::record_file::write_atomically(
            &state_dir.join(RECORD),
            &format!("boot_id={id}\n"),
        ),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_appearance_in_a_boot_is_the_power_up_and_a_restart_is_not() {
        let dir = tempfile::tempdir().unwrap();
        assert!(first_in_this_boot(dir.path()), "never seen: a power-up");
        record(dir.path()).unwrap();
        assert!(!first_in_this_boot(dir.path()), "same boot: not again");
        std::fs::write(dir.path().join(RECORD), "boot_id=an-earlier-boot\n").unwrap();
        assert!(first_in_this_boot(dir.path()), "after a reboot: a power-up");
    }
}
