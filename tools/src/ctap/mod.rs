//! fido2ctl as a CTAP client: it talks to the key like any platform, so its CTAP commands work
//! with a hardware key too.
//!
//! - `link`: hidraw nodes and fido2d's UDP transport;
//! - `devices`: finding FIDO hidraw nodes;
//! - `ctaphid`: the host side of CTAPHID.

pub mod client;
pub mod ctaphid;
pub mod devices;
pub mod link;

use std::path::Path;

use crate::exit::Failure;
use ctaphid::CtapHidClient;
use link::{HidrawLink, ReportLink, UdpLink};

impl ReportLink for Box<dyn ReportLink> {
    fn send(&mut self, report: &protocol::ctaphid::Report) -> std::io::Result<()> {
        (**self).send(report)
    }

    fn receive(
        &mut self,
        timeout: std::time::Duration,
    ) -> std::io::Result<Option<protocol::ctaphid::Report>> {
        (**self).receive(timeout)
    }
}

pub type Key = CtapHidClient<Box<dyn ReportLink>>;

/// Opens the key named by `--device` (a hidraw path, or `udp:HOST:PORT` for fido2d's loopback
/// transport), or else the one FIDO key plugged in (fido2d's own first if there are several).
pub fn open(device: Option<&str>) -> Result<Key, Failure> {
    let link: Box<dyn ReportLink> = match device {
        Some(spec) if spec.starts_with("udp:") => {
            let address = &spec["udp:".len()..];
            Box::new(
                UdpLink::connect(address)
                    .map_err(|err| Failure::no_key(format!("cannot reach {address}: {err}")))?,
            )
        }
        Some(path) => Box::new(open_hidraw(Path::new(path))?),
        None => {
            let keys = devices::find(Path::new("/sys/class/hidraw"));
            let key = keys
                .iter()
                .find(|k| k.is_fido2d())
                .or(keys.first())
                .ok_or_else(|| {
                    Failure::no_key(
                        "no security key found (no hidraw node with the FIDO usage page); is \
                         fido2d running? (`systemctl status fido2d`)",
                    )
                })?;
            Box::new(open_hidraw(&key.node)?)
        }
    };
    CtapHidClient::open(link)
}

fn open_hidraw(path: &Path) -> Result<HidrawLink, Failure> {
    HidrawLink::open(path).map_err(|err| match err.kind() {
        std::io::ErrorKind::PermissionDenied => Failure::refused(format!(
            "no permission to open {}: security keys are given to the user at the seat (udev \
             uaccess); run fido2ctl in your desktop session, or as root",
            path.display()
        )),
        _ => Failure::no_key(format!("cannot open {}: {err}", path.display())),
    })
}
