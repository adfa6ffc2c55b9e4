//! The virtual USB security key: a HID device made through the kernel's /dev/uhid.
//!
//! Browsers, libfido2 and OpenSSH find it like any USB FIDO key, through its hidraw node and the
//! FIDO usage page of its report descriptor. Output reports the host writes arrive here as
//! UHID_OUTPUT events; our input reports go back as UHID_INPUT2. The device lives as long as the
//! open file: dropping the transport destroys it (and so does the kernel if the daemon dies).

use std::fs::File;
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use protocol::ctaphid::{Report, REPORT_LEN};
use tokio::io::unix::AsyncFd;
use tracing::{debug, info, warn};

use super::uhid_abi::{self, DeviceSpec, KernelEvent, BUS_USB};
use super::ReportTransport;
use protocol::Origin;

pub const UHID_PATH: &str = "/dev/uhid";

/// The FIDO HID report descriptor (CTAP 2.1 §11.2.8.1): usage page 0xF1D0, usage 0x01 (CTAPHID
/// authenticator), one 64-byte input and one 64-byte output report, no report IDs. systemd's
/// fido_id (60-fido-id.rules) recognises a security token by exactly this usage.
pub const FIDO_REPORT_DESCRIPTOR: [u8; 34] = [
    0x06, 0xd0, 0xf1, // Usage Page (FIDO Alliance, 0xF1D0)
    0x09, 0x01, //       Usage (CTAPHID authenticator device)
    0xa1, 0x01, //       Collection (Application)
    0x09, 0x20, //         Usage (Input Report Data)
    0x15, 0x00, //         Logical Minimum (0)
    0x26, 0xff, 0x00, //   Logical Maximum (255)
    0x75, 0x08, //         Report Size (8 bits)
    0x95, 0x40, //         Report Count (64)
    0x81, 0x02, //         Input (Data, Variable, Absolute)
    0x09, 0x21, //         Usage (Output Report Data)
    0x15, 0x00, //         Logical Minimum (0)
    0x26, 0xff, 0x00, //   Logical Maximum (255)
    0x75, 0x08, //         Report Size (8 bits)
    0x95, 0x40, //         Report Count (64)
    0x91, 0x02, //         Output (Data, Variable, Absolute)
    0xc0, //             End Collection
];

/// The device's name as the kernel, udev and browsers show it.
pub const DEVICE_NAME: &str = "fido2d virtual security key";
/// pid.codes (the open-source hardware vendor ID) and its shared test product ID. FIDO clients
/// find keys by the usage page, never by these numbers; see the README.
pub const VENDOR_ID: u32 = 0x1209;
pub const PRODUCT_ID: u32 = 0x0001;

/// How long a HID driver (hid-generic) may take to bind the new device.
const START_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the hidraw node may take to show in sysfs once the driver started.
const HIDRAW_TIMEOUT: Duration = Duration::from_secs(2);

/// Why the device could not be made. Each says, in one line, what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum UhidError {
    #[error(
        "{UHID_PATH} does not exist: load the uhid module (`sudo modprobe uhid`; \
         dist/modules-load.d/fido2d.conf loads it at boot), or use `--transport udp`"
    )]
    NoDevice,
    #[error(
        "no permission to open {UHID_PATH}: run fido2d as root (e.g. the fido2d.service of \
         dist/), or give its user access with a udev rule for uhid (see README, Troubleshooting)"
    )]
    NoPermission,
    #[error("cannot use {UHID_PATH}: {0}")]
    Io(#[from] io::Error),
}

/// CTAPHID over a uhid device.
pub struct UhidTransport {
    fd: AsyncFd<File>,
    uniq: String,
    /// Output reports read while waiting for something else (see `wait_until_started`).
    pending: std::collections::VecDeque<Vec<u8>>,
    started: bool,
}

impl UhidTransport {
    /// Opens /dev/uhid and creates the key; `uniq` is its serial number (printable ASCII).
    /// Needs a tokio runtime with I/O enabled.
    /// Whether `/dev/uhid` can be opened (without making a device): what a start checks before
    /// it touches the state directory.
    pub fn check_access() -> Result<(), UhidError> {
        // A plain open and close (no runtime needed yet, no device made).
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(UHID_PATH)
            .map(drop)
            .map_err(open_error)
    }

    pub fn create(uniq: &str) -> Result<Self, UhidError> {
        debug_assert!(is_printable_ascii(uniq), "uniq must be printable ASCII");
        let fd = uhid_abi::open_nonblocking(Path::new(UHID_PATH)).map_err(open_error)?;
        let transport = UhidTransport {
            fd,
            uniq: uniq.to_owned(),
            pending: Default::default(),
            started: false,
        };
        let version = device_version();
        transport.write_event(&uhid_abi::create2(&DeviceSpec {
            name: DEVICE_NAME,
            phys: "fido2d/uhid",
            uniq,
            bus: BUS_USB,
            vendor: VENDOR_ID,
            product: PRODUCT_ID,
            version,
            report_descriptor: &FIDO_REPORT_DESCRIPTOR,
        }))?;
        Ok(transport)
    }

    /// Waits until a HID driver has bound the device (UHID_START), and returns its hidraw node
    /// if it can be found in sysfs. Reports written meanwhile are kept for `recv`.
    pub async fn wait_until_ready(&mut self) -> io::Result<Option<PathBuf>> {
        let started = tokio::time::timeout(START_TIMEOUT, async {
            while !self.started {
                if let Some(report) = self.next_event().await? {
                    self.pending.push_back(report);
                }
            }
            io::Result::Ok(())
        })
        .await;
        match started {
            Ok(result) => result?,
            Err(_) => {
                warn!(
                    "no HID driver took the virtual key within {START_TIMEOUT:?}: is the \
                     hid_generic module loaded?"
                );
                return Ok(None);
            }
        }
        // hidraw registers right after the driver's start returns: give it a moment.
        let deadline = tokio::time::Instant::now() + HIDRAW_TIMEOUT;
        loop {
            if let Some(node) = find_hidraw(Path::new("/sys/class/hidraw"), &self.uniq) {
                return Ok(Some(node));
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Reads and handles one kernel event; returns the CTAPHID report of an output event.
    async fn next_event(&mut self) -> io::Result<Option<Vec<u8>>> {
        let mut buf = vec![0u8; uhid_abi::EVENT_SIZE];
        let len = loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|fd| fd.get_ref().read(&mut buf)) {
                Ok(result) => break result?,
                Err(_would_block) => continue,
            }
        };
        let Some(event) = uhid_abi::parse(&buf[..len]) else {
            warn!(len, "uhid: short event ignored");
            return Ok(None);
        };
        match event {
            // A device without numbered reports still gets the report-ID byte (0) first.
            KernelEvent::Output(data) => return Ok(Some(data.get(1..).unwrap_or(&[]).to_vec())),
            KernelEvent::Start => {
                self.started = true;
                debug!("uhid: started by the HID driver");
            }
            KernelEvent::Stop => {
                self.started = false;
                debug!("uhid: stopped by the HID driver");
            }
            KernelEvent::Open => debug!("uhid: opened by a client"),
            KernelEvent::Close => debug!("uhid: closed by the last client"),
            KernelEvent::OtherOutput { rtype } => debug!(rtype, "uhid: non-output report ignored"),
            KernelEvent::GetReport { id } => {
                debug!(
                    id,
                    "uhid: GET_REPORT refused (a FIDO key has no feature reports)"
                );
                self.write_event(&uhid_abi::get_report_refusal(id))?;
            }
            KernelEvent::SetReport { id } => {
                debug!(id, "uhid: SET_REPORT refused");
                self.write_event(&uhid_abi::set_report_refusal(id))?;
            }
            KernelEvent::Unknown(kind) => debug!(kind, "uhid: unknown event ignored"),
        }
        Ok(None)
    }

    /// Writes one event. uhid writes never block (the kernel queues or rejects at once), and
    /// one write() is one event: a short write would be a kernel bug worth an error.
    fn write_event(&self, event: &[u8]) -> io::Result<()> {
        let written = self.fd.get_ref().write(event)?;
        if written != event.len() {
            return Err(io::Error::other(format!(
                "uhid took {written} of {} bytes",
                event.len()
            )));
        }
        Ok(())
    }
}

impl ReportTransport for UhidTransport {
    async fn recv(&mut self) -> io::Result<Vec<u8>> {
        // Cancel-safe: a report is only taken out of `pending` or the kernel once it is returned.
        if let Some(report) = self.pending.pop_front() {
            return Ok(report);
        }
        loop {
            if let Some(report) = self.next_event().await? {
                return Ok(report);
            }
        }
    }

    async fn send(&mut self, report: &Report) -> io::Result<()> {
        self.write_event(&uhid_abi::input2(report))
    }

    /// Every program reaches the key through the same node: the channel is the unit.
    fn origin(&self, cid: u32) -> Origin {
        Origin::usb(cid)
    }
}

impl Drop for UhidTransport {
    fn drop(&mut self) {
        // Closing the fd would destroy the device as well; saying it is explicit and logged.
        match self.write_event(&uhid_abi::destroy()) {
            Ok(()) => info!("virtual security key removed"),
            Err(err) => warn!("uhid: destroying the device failed: {err}"),
        }
    }
}

/// What an error opening `/dev/uhid` means for the person.
fn open_error(err: io::Error) -> UhidError {
    match err.raw_os_error() {
        Some(libc::ENOENT | libc::ENODEV | libc::ENXIO) => UhidError::NoDevice,
        Some(libc::EACCES | libc::EPERM) => UhidError::NoPermission,
        _ => UhidError::Io(err),
    }
}

/// The hidraw node whose HID device has serial number `uniq`, from
/// `<class_dir>/hidrawN/device/uevent` (HID_UNIQ=...).
pub fn find_hidraw(class_dir: &Path, uniq: &str) -> Option<PathBuf> {
    let want = format!("HID_UNIQ={uniq}");
    let mut nodes: Vec<_> = std::fs::read_dir(class_dir)
        .ok()?
        .filter_map(Result::ok)
        .filter(|entry| {
            std::fs::read_to_string(entry.path().join("device/uevent"))
                .is_ok_and(|uevent| uevent.lines().any(|line| line == want))
        })
        .map(|entry| Path::new("/dev").join(entry.file_name()))
        .collect();
    nodes.sort();
    nodes.into_iter().next()
}

/// What udev and browsers accept in HID_UNIQ.
pub fn is_printable_ascii(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_graphic())
}

/// The serial number of this daemon's device: unique among running daemons, printable ASCII.
pub fn default_uniq() -> String {
    format!("fido2d-{}", std::process::id())
}

/// The HID version number: major.minor of the daemon in the BCD-like form of bcdDevice.
fn device_version() -> u32 {
    let mut parts = env!("CARGO_PKG_VERSION")
        .split('.')
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let major = parts.next().unwrap_or(0).min(0xff);
    let minor = parts.next().unwrap_or(0).min(0xff);
    (major << 8) | minor
}

const _: () = assert!(REPORT_LEN == 64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_descriptor_declares_the_fido_usage_and_64_byte_reports() {
        let d = &FIDO_REPORT_DESCRIPTOR;
        assert_eq!(&d[..3], &[0x06, 0xd0, 0xf1], "usage page 0xF1D0 first");
        assert_eq!(&d[3..5], &[0x09, 0x01], "usage 0x01");
        assert_eq!(&d[5..7], &[0xa1, 0x01], "application collection");
        // Report Count 64 before each of Input and Output.
        let input = d.windows(2).position(|w| w == [0x81, 0x02]).unwrap();
        let output = d.windows(2).position(|w| w == [0x91, 0x02]).unwrap();
        assert_eq!(&d[input - 2..input], &[0x95, 0x40]);
        assert_eq!(&d[output - 2..output], &[0x95, 0x40]);
        assert_eq!(d.last(), Some(&0xc0));
        assert!(
            !d.contains(&0x85),
            "no Report ID item: reports are unnumbered"
        );
    }

    #[test]
    fn hidraw_is_found_by_uniq_in_sysfs() {
        let sys = tempfile::tempdir().unwrap();
        for (node, uniq) in [("hidraw0", "other"), ("hidraw3", "fido2d-42")] {
            let device = sys.path().join(node).join("device");
            std::fs::create_dir_all(&device).unwrap();
            std::fs::write(
                device.join("uevent"),
                format!("DRIVER=hid-generic\nHID_NAME=x\nHID_UNIQ={uniq}\n"),
            )
            .unwrap();
        }
        assert_eq!(
            find_hidraw(sys.path(), "fido2d-42"),
            Some(PathBuf::from("/dev/hidraw3"))
        );
        assert_eq!(
            find_hidraw(sys.path(), "fido2d-4"),
            None,
            "whole-line match"
        );
        assert_eq!(find_hidraw(&sys.path().join("missing"), "x"), None);
    }

    #[test]
    fn the_default_uniq_is_printable_ascii() {
        assert!(is_printable_ascii(&default_uniq()));
        assert!(!is_printable_ascii("with space"));
        assert!(!is_printable_ascii("é"));
        assert!(!is_printable_ascii(""));
    }
}
