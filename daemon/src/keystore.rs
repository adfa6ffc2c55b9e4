//! Which keystore the daemon runs with, and opening it on the authenticator thread.
//!
//! `--keystore auto` (the default) follows the state directory when it already belongs to a
//! backend (its credentials live there); a new state directory gets the TPM when one answers
//! within `--tpm-timeout`, else the encrypted file. A TPM that answers and then fails (owner
//! password, lockout, a cleared TPM) is an error, never a reason to use the file: that would
//! split the person's credentials between two keystores.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail};
use storage::{BackendKind, KeyBackend, KeystoreOptions, OsRng, SoftwareKeys, Store};
use tracing::{debug, info, warn};

use crate::authenticator_thread::{self, NoProgress, OpenFailure, OpenProgress, Starting};
use crate::cli::KeystoreChoice;

/// What the command line says about the keystore.
#[derive(Debug, Clone)]
pub struct KeystoreSettings {
    pub choice: KeystoreChoice,
    pub state_dir: PathBuf,
    /// The TCTI, already resolved (option, environment, default).
    pub tcti: String,
    /// A persistent parent key handle instead of a primary key in the owner hierarchy.
    #[cfg_attr(not(feature = "tpm"), allow(dead_code))]
    pub tpm_parent: Option<u32>,
    /// How long a TPM may take to answer its first command.
    pub tpm_timeout: Duration,
}

/// Which backend to open, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Plan {
    File {
        why: String,
    },
    /// `fallback`: if nothing answers at the TCTI, use the file (a new state directory only).
    Tpm {
        why: String,
        fallback: bool,
    },
}

/// The decision, from the choice and the backends whose master secret the state directory
/// holds (with the file that shows it: `storage::backends_in`).
fn plan(choice: KeystoreChoice, found: &[(BackendKind, &str)]) -> anyhow::Result<Plan> {
    Ok(match choice {
        KeystoreChoice::File => Plan::File {
            why: "--keystore file".into(),
        },
        KeystoreChoice::Tpm => Plan::Tpm {
            why: "--keystore tpm".into(),
            fallback: false,
        },
        KeystoreChoice::Auto => match found {
            [(_, first), (_, second), ..] => bail!(
                "the state directory holds both {first} and {second}: choose with \
                 --keystore file or --keystore tpm"
            ),
            [(BackendKind::Tpm, file)] => Plan::Tpm {
                why: format!("the state directory holds TPM credentials ({file})"),
                fallback: false,
            },
            [(BackendKind::File, file)] => Plan::File {
                why: format!("the state directory holds file credentials ({file})"),
            },
            [] => Plan::Tpm {
                why: "a new state directory, and a TPM is preferred".into(),
                fallback: true,
            },
        },
    })
}

/// Starts the authenticator thread with the keystore these settings pick, logs which one and
/// why (one line, once the keystore is open: a TPM that was tried and is not there is part of
/// the reason, not a decision of its own), and returns once it is open.
pub fn start(settings: &KeystoreSettings) -> anyhow::Result<Starting> {
    let dir = &settings.state_dir;
    let plan = plan(settings.choice, &storage::backends_in(dir))?;
    match plan {
        Plan::File { why } => opened(spawn_file(dir), Reason::info(why)),
        Plan::Tpm { why, fallback } => start_tpm(settings, why, fallback),
    }
}

/// Why the open keystore is the one it is; `warn` when the person should look at it (a TPM
/// that hangs).
struct Reason {
    why: String,
    warn: bool,
}

impl Reason {
    fn info(why: String) -> Reason {
        Reason { why, warn: false }
    }
}

fn start_tpm(settings: &KeystoreSettings, why: String, fallback: bool) -> anyhow::Result<Starting> {
    let tcti = &settings.tcti;
    debug!(
        "asking the TPM at {tcti} (up to {:?})",
        settings.tpm_timeout
    );
    let starting = spawn_tpm(settings);
    match starting.next_progress(Some(settings.tpm_timeout)) {
        Ok(OpenProgress::TpmAnswered(info)) => {
            debug!("TPM answered: {info}");
            // From here on the TPM exists: any failure is an error, however long it takes.
            opened(starting, Reason::info(why))
        }
        Ok(OpenProgress::Failed(failure)) if failure.tpm_absent && fallback => opened(
            spawn_file(&settings.state_dir),
            Reason::info(format!("{} ({why}, --keystore auto)", failure.message)),
        ),
        Ok(OpenProgress::Failed(failure)) => Err(anyhow!("{} ({why})", failure.message)),
        Ok(done @ OpenProgress::Opened { .. }) => finish(starting, done, Reason::info(why)),
        // The thread stays blocked in the TPM library; it is never told to run.
        Err(NoProgress::Timeout) if fallback => opened(
            spawn_file(&settings.state_dir),
            Reason {
                why: format!(
                    "the TPM at {tcti} did not answer within {:?} ({why}, --keystore auto)",
                    settings.tpm_timeout
                ),
                warn: true,
            },
        ),
        Err(NoProgress::Timeout) => bail!(
            "the TPM at {tcti} did not answer within {:?} (--tpm-timeout)",
            settings.tpm_timeout
        ),
        Err(NoProgress::Gone) => bail!("the authenticator thread stopped while opening the TPM"),
    }
}

/// Waits until the thread has opened its keystore; logs what it opened and why.
fn opened(starting: Starting, reason: Reason) -> anyhow::Result<Starting> {
    match starting.next_progress(None) {
        Ok(progress) => finish(starting, progress, reason),
        Err(_) => bail!("the authenticator thread stopped while opening the keystore"),
    }
}

fn finish(starting: Starting, progress: OpenProgress, reason: Reason) -> anyhow::Result<Starting> {
    match progress {
        OpenProgress::Opened {
            status,
            damaged,
            notices,
        } => {
            for file in damaged {
                warn!(
                    "a damaged credential record was moved aside: {}",
                    file.display()
                );
            }
            for notice in notices {
                warn!("keystore: {notice}");
            }
            let Reason { why, warn } = reason;
            if warn {
                warn!("keystore: {status}, because {why}");
            } else {
                info!("keystore: {status}, because {why}");
            }
            info!("PIN: {}", status.pin_protection());
            Ok(starting)
        }
        OpenProgress::Failed(failure) => Err(anyhow!(failure.message)),
        OpenProgress::TpmAnswered(_) => opened(starting, reason),
    }
}

fn spawn_file(dir: &Path) -> Starting {
    let dir = dir.to_path_buf();
    authenticator_thread::spawn(move |_| {
        let backend: Box<dyn KeyBackend> = Box::new(SoftwareKeys);
        Store::open_dir(&dir, backend, OsRng, KeystoreOptions::default()).map_err(|err| {
            OpenFailure {
                message: format!("cannot open the keystore: {err}"),
                tpm_absent: false,
            }
        })
    })
}

#[cfg(feature = "tpm")]
fn spawn_tpm(settings: &KeystoreSettings) -> Starting {
    use storage::{TpmConnection, TpmKeys};
    let (dir, tcti, parent) = (
        settings.state_dir.clone(),
        settings.tcti.clone(),
        settings.tpm_parent,
    );
    authenticator_thread::spawn(move |report| {
        let connection = TpmConnection::connect(&tcti).map_err(|err| OpenFailure {
            tpm_absent: err.is_absent(),
            message: err.to_string(),
        })?;
        report(OpenProgress::TpmAnswered(connection.info().clone()));
        let failure = |message: String| OpenFailure {
            message,
            tpm_absent: false,
        };
        let keys = TpmKeys::start(connection, parent).map_err(|err| failure(err.to_string()))?;
        let backend: Box<dyn KeyBackend> = Box::new(keys);
        Store::open_dir(&dir, backend, OsRng, KeystoreOptions::default())
            .map_err(|err| failure(format!("cannot open the TPM keystore: {err}")))
    })
}

#[cfg(not(feature = "tpm"))]
fn spawn_tpm(_settings: &KeystoreSettings) -> Starting {
    authenticator_thread::spawn(move |_| {
        Err(OpenFailure {
            message: "this fido2d was built without TPM support (cargo feature tpm)".into(),
            tpm_absent: true,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(why: &str) -> Plan {
        Plan::File { why: why.into() }
    }

    /// What `storage::backends_in` finds in a state directory holding these master files.
    fn in_state_dir(file_master: bool, tpm_master: bool) -> Vec<(BackendKind, &'static str)> {
        let dir = tempfile::tempdir().unwrap();
        for (present, name) in [(file_master, "master.key"), (tpm_master, "master.tpm")] {
            if present {
                std::fs::write(dir.path().join(name), b"").unwrap();
            }
        }
        storage::backends_in(dir.path())
    }

    #[test]
    fn auto_follows_the_state_directory_and_prefers_the_tpm_for_a_new_one() {
        let auto = |file, tpm| plan(KeystoreChoice::Auto, &in_state_dir(file, tpm));

        assert_eq!(
            auto(false, false).unwrap(),
            Plan::Tpm {
                why: "a new state directory, and a TPM is preferred".into(),
                fallback: true
            }
        );
        assert_eq!(
            auto(true, false).unwrap(),
            file("the state directory holds file credentials (master.key)")
        );
        assert!(matches!(
            auto(false, true).unwrap(),
            Plan::Tpm {
                fallback: false,
                ..
            }
        ));
        assert!(auto(true, true).unwrap_err().to_string().contains("both"));
    }

    #[test]
    fn an_explicit_choice_is_kept_whatever_the_state_directory_holds() {
        for (file_master, tpm_master) in [(false, false), (true, false), (false, true)] {
            assert_eq!(
                plan(KeystoreChoice::File, &in_state_dir(file_master, tpm_master)).unwrap(),
                file("--keystore file")
            );
            assert_eq!(
                plan(KeystoreChoice::Tpm, &in_state_dir(file_master, tpm_master)).unwrap(),
                Plan::Tpm {
                    why: "--keystore tpm".into(),
                    fallback: false
                }
            );
        }
    }
}
