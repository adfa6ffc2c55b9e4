//! Finding security keys: hidraw nodes whose report descriptor has the FIDO usage page
//! (0xF1D0), as libfido2 and browsers find them.

use std::path::{Path, PathBuf};

/// Usage Page (FIDO Alliance): the short item 0x06 followed by 0xF1D0, little-endian.
const FIDO_USAGE_PAGE_ITEM: [u8; 3] = [0x06, 0xd0, 0xf1];

/// A security key found on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundKey {
    pub node: PathBuf,
    pub name: String,
    /// HID_UNIQ: fido2d's virtual keys have `fido2d-<pid>`.
    pub serial: String,
}

impl FoundKey {
    pub fn is_fido2d(&self) -> bool {
        self.serial.starts_with("fido2d-")
    }
}

/// Every FIDO hidraw node under `class_dir` (normally /sys/class/hidraw), sorted.
pub fn find(class_dir: &Path) -> Vec<FoundKey> {
    let Ok(entries) = std::fs::read_dir(class_dir) else {
        return Vec::new();
    };
    let mut keys: Vec<FoundKey> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let device = entry.path().join("device");
            let descriptor = std::fs::read(device.join("report_descriptor")).ok()?;
            if !descriptor.windows(3).any(|w| w == FIDO_USAGE_PAGE_ITEM) {
                return None;
            }
            let uevent = std::fs::read_to_string(device.join("uevent")).unwrap_or_default();
            let field = |key: &str| {
                uevent
                    .lines()
                    .find_map(|l| l.strip_prefix(key))
                    .unwrap_or_default()
                    .to_owned()
            };
            Some(FoundKey {
                node: Path::new("/dev").join(entry.file_name()),
                name: field("HID_NAME="),
                serial: field("HID_UNIQ="),
            })
        })
        .collect();
    keys.sort_by(|a, b| a.node.cmp(&b.node));
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(class: &Path, name: &str, descriptor: &[u8], uevent: &str) {
        let device = class.join(name).join("device");
        std::fs::create_dir_all(&device).unwrap();
        std::fs::write(device.join("report_descriptor"), descriptor).unwrap();
        std::fs::write(device.join("uevent"), uevent).unwrap();
    }

    #[test]
    fn only_nodes_with_the_fido_usage_page_are_keys() {
        let class = tempfile::tempdir().unwrap();
        node(
            class.path(),
            "hidraw3",
            &[0x06, 0xd0, 0xf1, 0x09, 0x01, 0xa1, 0x01],
            "HID_NAME=fido2d virtual security key\nHID_UNIQ=fido2d-42\n",
        );
        node(
            class.path(),
            "hidraw0",
            &[0x05, 0x01, 0x09, 0x06],
            "HID_NAME=keyboard\n",
        );
        node(
            class.path(),
            "hidraw1",
            &[0x06, 0xd0, 0xf1, 0x09, 0x01],
            "HID_NAME=Yubico YubiKey\nHID_UNIQ=\n",
        );

        let keys = find(class.path());

        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].node, Path::new("/dev/hidraw1"));
        assert!(!keys[0].is_fido2d());
        assert_eq!(keys[1].name, "fido2d virtual security key");
        assert!(keys[1].is_fido2d());
        assert!(find(Path::new("/nonexistent")).is_empty());
    }
}
