//! The two ways fido2ctl reaches a key's 64-byte reports: a hidraw node (any USB security key,
//! fido2d's virtual one included) or fido2d's loopback UDP transport (development and tests).

use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::net::UdpSocket;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use protocol::ctaphid::{Report, REPORT_LEN};

/// Sends and receives whole CTAPHID reports.
pub trait ReportLink {
    fn send(&mut self, report: &Report) -> io::Result<()>;
    /// The next report, or `None` after `timeout`.
    fn receive(&mut self, timeout: Duration) -> io::Result<Option<Report>>;
}

/// A hidraw node. Reads block, so a thread reads and hands reports over a channel; it ends
/// when the node is closed or unplugged.
pub struct HidrawLink {
    file: File,
    reports: mpsc::Receiver<io::Result<Report>>,
}

impl HidrawLink {
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let mut reader = file.try_clone()?;
        let (tx, reports) = mpsc::channel();
        std::thread::spawn(move || loop {
            let mut buf = [0u8; REPORT_LEN];
            let result = match reader.read(&mut buf) {
                Ok(REPORT_LEN) => Ok(buf),
                Ok(0) => break,
                Ok(n) => Err(io::Error::other(format!("a {n}-byte HID report, not 64"))),
                Err(err) => Err(err),
            };
            let failed = result.is_err();
            if tx.send(result).is_err() || failed {
                break;
            }
        });
        Ok(HidrawLink { file, reports })
    }
}

impl ReportLink for HidrawLink {
    fn send(&mut self, report: &Report) -> io::Result<()> {
        // The first byte is the report ID: 0, as FIDO devices have no numbered reports.
        let mut out = [0u8; REPORT_LEN + 1];
        out[1..].copy_from_slice(report);
        self.file.write_all(&out)
    }

    fn receive(&mut self, timeout: Duration) -> io::Result<Option<Report>> {
        match self.reports.recv_timeout(timeout) {
            Ok(report) => report.map(Some),
            Err(mpsc::RecvTimeoutError::Timeout) => Ok(None),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the security key went away",
            )),
        }
    }
}

/// fido2d's UDP transport: one report per datagram, on 127.0.0.1.
pub struct UdpLink {
    socket: UdpSocket,
}

impl UdpLink {
    pub fn connect(address: &str) -> io::Result<Self> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.connect(address)?;
        Ok(UdpLink { socket })
    }
}

impl ReportLink for UdpLink {
    fn send(&mut self, report: &Report) -> io::Result<()> {
        self.socket.send(report).map(|_| ())
    }

    fn receive(&mut self, timeout: Duration) -> io::Result<Option<Report>> {
        self.socket.set_read_timeout(Some(timeout))?;
        let mut buf = [0u8; REPORT_LEN + 1];
        match self.socket.recv(&mut buf) {
            Ok(REPORT_LEN) => Ok(Some(buf[..REPORT_LEN].try_into().expect("64 bytes"))),
            Ok(n) => Err(io::Error::other(format!(
                "a {n}-byte datagram, not a 64-byte report"
            ))),
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Ok(None)
            }
            Err(err) => Err(err),
        }
    }
}
