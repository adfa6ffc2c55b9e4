//! The fingerprint reader as the key's touch (`--presence fingerprint`): the daemon itself asks
//! fprintd to match the owner's enrolled finger, and a match is the gesture.
//!
//! fido2d talks to fprintd's D-Bus API on the system bus (`net.reactivated.Fprint`:
//! `Manager.GetDefaultDevice`, `Device.Claim(user)`, `VerifyStart("any")`, the `VerifyStatus`
//! signal, `VerifyStop`, `Release`) rather than going through PAM and pam_fprintd (which built-in
//! UV uses with `--presence agent`), because a touch needs what PAM does not give:
//! - precise outcomes: no reader, no enrolled finger, a finger that does not match and nobody
//!   touching in time are different answers (a refused touch, a timeout, a log line that says
//!   what to fix); `pam_authenticate` folds them into one failure or two;
//! - a cancel: a CTAPHID_CANCEL from the browser stops the scan at once (`VerifyStop`), and the
//!   wait is fido2d's own `--presence-timeout`; a PAM conversation cannot be interrupted and
//!   pam_fprintd has its own timeout and retries;
//! - `--presence auto` must know at start whether the owner has a finger enrolled and a reader
//!   answers (`ListEnrolledFingers`), which PAM cannot tell without asking for a finger;
//! - nothing an administrator's PAM stack could turn into something else (a `pam_permit` in an
//!   included file would make every touch an approval).
//!
//! Trust: a `VerifyStatus` is accepted only from the bus connection that owns
//! `net.reactivated.Fprint` (its unique name, asked of the bus after fprintd answered). On the
//! system bus any program may emit a signal with the same path, interface and member; a forged
//! "verify-match" must never be a touch.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use dbus::blocking::stdintf::org_freedesktop_dbus::Properties as _;
use dbus::blocking::Connection;
use dbus::message::MatchRule;
use tracing::{debug, info};

const SERVICE: &str = "net.reactivated.Fprint";
const MANAGER_PATH: &str = "/net/reactivated/Fprint/Manager";
const MANAGER: &str = "net.reactivated.Fprint.Manager";
const DEVICE: &str = "net.reactivated.Fprint.Device";

/// How long one method call to fprintd may take (opening a USB reader takes a moment).
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the clean-up calls (`VerifyStop`, `Release`) may take.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(2);
/// How often a waiting match checks whether the platform cancelled.
const CANCEL_POLL: Duration = Duration::from_millis(50);
/// How long to wait before claiming a reader that another program is using again.
const BUSY_RETRY: Duration = Duration::from_millis(200);

/// Whether the reader can stand for the owner's touch now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// A reader answers and `user` has these fingers enrolled on it.
    Ready {
        reader: String,
        fingers: Vec<String>,
    },
    /// Why not, for the log and `fido2ctl status`.
    NotReady(String),
}

/// How one match ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatchOutcome {
    /// The owner's enrolled finger was on the reader.
    Matched,
    /// A finger was scanned and it is not one of the owner's.
    NoMatch,
    /// No finger within the time given.
    TimedOut,
    /// The platform withdrew the request (CTAPHID_CANCEL).
    Cancelled,
    /// The reader could not be used (no fprintd, no reader, no enrolled finger, ...): why.
    Unavailable(String),
}

/// Asks fprintd, without touching the reader, whether `user` has a finger enrolled on the
/// default reader.
pub fn readiness(user: &str) -> Readiness {
    let connection = match Connection::new_system() {
        Ok(connection) => connection,
        Err(err) => return Readiness::NotReady(format!("no system bus ({})", describe(&err))),
    };
    let device = match default_device(&connection) {
        Ok(device) => device,
        Err(why) => return Readiness::NotReady(why),
    };
    let proxy = connection.with_proxy(SERVICE, device, CALL_TIMEOUT);
    let reader = proxy
        .get::<String>(DEVICE, "name")
        .unwrap_or_else(|_| "the fingerprint reader".into());
    let fingers: Result<(Vec<String>,), _> =
        proxy.method_call(DEVICE, "ListEnrolledFingers", (user,));
    match fingers {
        Ok((fingers,)) if !fingers.is_empty() => Readiness::Ready { reader, fingers },
        Ok(_) => Readiness::NotReady(no_finger(user, &reader)),
        Err(err) if err.name() == Some("net.reactivated.Fprint.Error.NoEnrolledPrints") => {
            Readiness::NotReady(no_finger(user, &reader))
        }
        Err(err) => Readiness::NotReady(format!(
            "fprintd cannot list {user}'s fingers ({})",
            describe(&err)
        )),
    }
}

fn no_finger(user: &str, reader: &str) -> String {
    format!("{user} has no finger enrolled on {reader} (fprintd-enroll {user})")
}

/// Has fprintd match `user`'s enrolled fingers on the default reader: blocks until a finger
/// is scanned, `cancelled` is set, or `timeout`. Scans that the reader asks to repeat (too
/// short, not centred) go on waiting.
pub fn verify(user: &str, timeout: Duration, cancelled: &AtomicBool) -> MatchOutcome {
    let deadline = Instant::now() + timeout;
    let connection = match Connection::new_system() {
        Ok(connection) => connection,
        Err(err) => {
            return MatchOutcome::Unavailable(format!("no system bus ({})", describe(&err)))
        }
    };
    let device = match default_device(&connection) {
        Ok(device) => device,
        Err(why) => return MatchOutcome::Unavailable(why),
    };
    // Only fprintd's own connection speaks for the reader (see the module's documentation).
    let owner: Result<(String,), _> = connection
        .with_proxy(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            CALL_TIMEOUT,
        )
        .method_call("org.freedesktop.DBus", "GetNameOwner", (SERVICE,));
    let fprintd = match owner {
        Ok((name,)) => name,
        Err(err) => {
            return MatchOutcome::Unavailable(format!("fprintd went away ({})", describe(&err)))
        }
    };
    let proxy = connection.with_proxy(SERVICE, device.clone(), CALL_TIMEOUT);
    loop {
        let claimed: Result<(), _> = proxy.method_call(DEVICE, "Claim", (user,));
        match claimed {
            Ok(()) => break,
            // Another program (a login screen, sudo with pam_fprintd) is using the reader.
            Err(err) if err.name() == Some("net.reactivated.Fprint.Error.AlreadyInUse") => {
                if cancelled.load(Ordering::SeqCst) {
                    return MatchOutcome::Cancelled;
                }
                if Instant::now() + BUSY_RETRY >= deadline {
                    return MatchOutcome::TimedOut;
                }
                debug!("the fingerprint reader is in use; trying again");
                std::thread::sleep(BUSY_RETRY);
            }
            Err(err) => {
                return MatchOutcome::Unavailable(format!(
                    "fprintd refused to claim the reader for {user} ({})",
                    describe(&err)
                ))
            }
        }
    }
    let mut claim = Claim {
        connection: &connection,
        device: device.clone(),
        verifying: false,
    };
    let (statuses, status) = mpsc::channel::<(String, bool)>();
    let rule = MatchRule::new_signal(DEVICE, "VerifyStatus")
        .with_path(device)
        .with_sender(fprintd);
    let watched = connection.add_match(rule, move |(result, done): (String, bool), _, _| {
        let _ = statuses.send((result, done));
        true
    });
    if let Err(err) = watched {
        return MatchOutcome::Unavailable(format!(
            "cannot follow the reader's answers ({})",
            describe(&err)
        ));
    }
    let started: Result<(), _> = proxy.method_call(DEVICE, "VerifyStart", ("any",));
    match started {
        Ok(()) => claim.verifying = true,
        Err(err) if err.name() == Some("net.reactivated.Fprint.Error.NoEnrolledPrints") => {
            return MatchOutcome::Unavailable(format!("{user} has no finger enrolled"))
        }
        Err(err) => {
            return MatchOutcome::Unavailable(format!(
                "fprintd did not start a match ({})",
                describe(&err)
            ))
        }
    }
    loop {
        if cancelled.load(Ordering::SeqCst) {
            return MatchOutcome::Cancelled;
        }
        let now = Instant::now();
        if now >= deadline {
            return MatchOutcome::TimedOut;
        }
        if let Err(err) = connection.process(CANCEL_POLL.min(deadline - now)) {
            return MatchOutcome::Unavailable(format!("lost the system bus ({})", describe(&err)));
        }
        while let Ok((result, done)) = status.try_recv() {
            match result.as_str() {
                "verify-match" => return MatchOutcome::Matched,
                "verify-no-match" => return MatchOutcome::NoMatch,
                "verify-disconnected" => {
                    return MatchOutcome::Unavailable("the reader was disconnected".into())
                }
                other if done => {
                    return MatchOutcome::Unavailable(format!("the reader reported {other}"))
                }
                // verify-retry-scan, verify-swipe-too-short, ...: the person tries again.
                other => info!("fingerprint reader: {other}; waiting for another scan"),
            }
        }
    }
}

/// The reader, claimed for one match: stopped and released however the match ends.
struct Claim<'a> {
    connection: &'a Connection,
    device: dbus::Path<'static>,
    verifying: bool,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        let proxy = self
            .connection
            .with_proxy(SERVICE, self.device.clone(), CLEANUP_TIMEOUT);
        if self.verifying {
            let stopped: Result<(), _> = proxy.method_call(DEVICE, "VerifyStop", ());
            if let Err(err) = stopped {
                debug!("fprintd VerifyStop: {}", describe(&err));
            }
        }
        let released: Result<(), _> = proxy.method_call(DEVICE, "Release", ());
        if let Err(err) = released {
            debug!("fprintd Release: {}", describe(&err));
        }
    }
}

/// The default reader's object path, or why there is none.
fn default_device(connection: &Connection) -> Result<dbus::Path<'static>, String> {
    let manager = connection.with_proxy(SERVICE, MANAGER_PATH, CALL_TIMEOUT);
    let device: Result<(dbus::Path<'static>,), _> =
        manager.method_call(MANAGER, "GetDefaultDevice", ());
    match device {
        Ok((device,)) => Ok(device),
        Err(err) => Err(match err.name() {
            Some("net.reactivated.Fprint.Error.NoSuchDevice") => {
                "no fingerprint reader (fprintd found none)".into()
            }
            Some(
                "org.freedesktop.DBus.Error.ServiceUnknown"
                | "org.freedesktop.DBus.Error.NameHasNoOwner",
            ) => "fprintd is not running (install fprintd for the fingerprint reader)".into(),
            _ => format!("fprintd did not answer ({})", describe(&err)),
        }),
    }
}

/// A D-Bus error for a log line: its name and message.
fn describe(err: &dbus::Error) -> String {
    match (err.name(), err.message()) {
        (Some(name), Some(message)) => format!("{name}: {message}"),
        (Some(name), None) => name.to_owned(),
        (None, Some(message)) => message.to_owned(),
        (None, None) => "unknown D-Bus error".into(),
    }
}
