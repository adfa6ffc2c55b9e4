//! Whose key this is: one user, fixed, never "whoever sits at the seat now".
//!
//! The owner is the configured `owner`, or else the first user whose agent connects after the
//! state directory was made, recorded there (`<state-dir>/owner`, written atomically, 0600).
//! Root changes it with `fido2ctl owner set USER`. Prompts and built-in UV go to the owner's
//! agents only, and PAM UV authenticates the owner; another user's agent is refused at
//! `hello`. Root may use the socket as a client (status, owner), as it owns the machine anyway.
//!
//! The seat matters once more: while another user is the active user of the seat (a switched
//! desktop), requests fail as a refused touch, since the person at the keyboard is not the
//! owner ([`seat_user`]).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// The uid of root, which owns the machine anyway.
pub const ROOT: u32 = 0;

/// The name of the record in the state directory.
pub const RECORD: &str = "owner";

/// Where the owner comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerSource {
    /// `owner` in the configuration (or `--owner`).
    Configured,
    /// Recorded in the state directory (the first agent, or `fido2ctl owner set`).
    Recorded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Owned(u32, OwnerSource),
    /// Nobody yet: the first agent to connect becomes the owner.
    Unclaimed,
}

/// The key's owner (see the module documentation). Cheap to clone: all clones share it.
#[derive(Debug, Clone)]
pub struct OwnerPolicy {
    state: Arc<Mutex<State>>,
    /// The record file; `None` when the owner is configured.
    record: Option<PathBuf>,
}

impl OwnerPolicy {
    /// The configured owner (a user name or a numeric uid), else the one recorded in
    /// `state_dir`, else nobody yet.
    pub fn load(configured: Option<&str>, state_dir: &Path) -> anyhow::Result<Self> {
        if let Some(owner) = configured {
            let uid = uid_from_name_or_number(owner)?;
            return Ok(OwnerPolicy {
                state: Arc::new(Mutex::new(State::Owned(uid, OwnerSource::Configured))),
                record: None,
            });
        }
        let record = state_dir.join(RECORD);
        let state = match read_record(&record)? {
            Some(uid) => State::Owned(uid, OwnerSource::Recorded),
            None => State::Unclaimed,
        };
        Ok(OwnerPolicy {
            state: Arc::new(Mutex::new(state)),
            record: Some(record),
        })
    }

    fn state(&self) -> State {
        *self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The owner's uid, if the key has one yet.
    pub fn owner_uid(&self) -> Option<u32> {
        match self.state() {
            State::Owned(uid, _) => Some(uid),
            State::Unclaimed => None,
        }
    }

    /// May `uid` use the socket as a client (status, hybrid, owner)? Root and the owner.
    pub fn allows_client(&self, uid: u32) -> bool {
        uid == ROOT || self.owner_uid() == Some(uid)
    }

    /// May `uid` answer prompts? The owner only. While nobody owns the key, the first agent
    /// claims it (and is recorded).
    pub fn admit_agent(&self, uid: u32) -> anyhow::Result<AgentAdmission> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match *state {
            State::Owned(owner, _) if owner == uid => Ok(AgentAdmission::Owner),
            State::Owned(owner, _) => Ok(AgentAdmission::Refused { owner }),
            State::Unclaimed => {
                if let Some(record) = &self.record {
                    write_record(record, uid)?;
                }
                *state = State::Owned(uid, OwnerSource::Recorded);
                Ok(AgentAdmission::Claimed)
            }
        }
    }

    /// Root's `fido2ctl owner set`: records `uid` as the owner. A configured owner cannot be
    /// changed this way (the configuration would win at the next start).
    pub fn set(&self, uid: u32) -> anyhow::Result<()> {
        let Some(record) = &self.record else {
            anyhow::bail!(
                "the owner is set in the configuration (`owner`): change it there and restart \
                 fido2d"
            );
        };
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        write_record(record, uid)?;
        *state = State::Owned(uid, OwnerSource::Recorded);
        Ok(())
    }

    /// For `status` and the log: "alice (uid 1000), recorded in ...".
    pub fn describe(&self) -> String {
        match self.state() {
            State::Owned(uid, source) => {
                let who = match user_name(uid) {
                    Some(name) => format!("{name} (uid {uid})"),
                    None => format!("uid {uid}"),
                };
                match (source, &self.record) {
                    (OwnerSource::Configured, _) => format!("{who}, from the configuration"),
                    (OwnerSource::Recorded, Some(record)) => {
                        format!("{who}, recorded in {}", record.display())
                    }
                    (OwnerSource::Recorded, None) => who,
                }
            }
            State::Unclaimed => {
                "nobody yet: the first user whose agent connects becomes the owner".into()
            }
        }
    }
}

/// How an agent's `hello` went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentAdmission {
    /// The owner's agent.
    Owner,
    /// The first agent of an unclaimed key: its user is now the owner.
    Claimed,
    /// Another user's agent.
    Refused { owner: u32 },
}

/// The uid of the active user of seat0 (logind's `/run/systemd/seats/seat0`, `ACTIVE_UID=`),
/// if the machine has a seat with a user on it.
pub fn seat_user() -> Option<u32> {
    let seat = std::fs::read_to_string("/run/systemd/seats/seat0").ok()?;
    active_uid(&seat)
}

/// `ACTIVE_UID=1000` in a logind seat file.
fn active_uid(seat_file: &str) -> Option<u32> {
    seat_file
        .lines()
        .find_map(|line| line.strip_prefix("ACTIVE_UID="))
        .and_then(|uid| uid.trim().parse().ok())
}

/// A user name from the passwd database, or a numeric uid.
pub fn uid_from_name_or_number(owner: &str) -> anyhow::Result<u32> {
    if let Ok(uid) = owner.parse::<u32>() {
        return Ok(uid);
    }
    nix::unistd::User::from_name(owner)
        .map_err(|err| anyhow::anyhow!("cannot look up the user {owner:?}: {err}"))?
        .map(|user| user.uid.as_raw())
        .ok_or_else(|| anyhow::anyhow!("{owner:?} is not a user of this machine"))
}

/// The name of `uid` in the passwd database.
pub fn user_name(uid: u32) -> Option<String> {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|user| user.name)
}

/// `uid=1000` (and a name, for people reading the file).
fn read_record(path: &Path) -> anyhow::Result<Option<u32>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => anyhow::bail!("cannot read the owner record {}: {err}", path.display()),
    };
    text.lines()
        .find_map(|line| line.strip_prefix("uid="))
        .and_then(|uid| uid.trim().parse().ok())
        .map(Some)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{} is not an owner record (no `uid=` line): fix or remove it, or set `owner`",
                path.display()
            )
        })
}

/// Writes the record atomically (`record_file`).
fn write_record(path: &Path, uid: u32) -> anyhow::Result<()> {
    let text = match user_name(uid) {
        Some(name) => format!("uid={uid}\nname={name}\n"),
        None => format!("uid={uid}\n"),
    };
    crate::record_file::write_atomically(path, &text)
        .map_err(|err| anyhow::anyhow!("cannot record the owner in {}: {err}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_agent_claims_an_unowned_key_and_it_stays_claimed() {
        let dir = tempfile::tempdir().unwrap();
        let owner = OwnerPolicy::load(None, dir.path()).unwrap();
        assert_eq!(owner.owner_uid(), None);
        assert!(!owner.allows_client(1000), "nobody but root before a claim");
        assert!(owner.allows_client(ROOT));

        assert_eq!(owner.admit_agent(1000).unwrap(), AgentAdmission::Claimed);
        assert_eq!(owner.admit_agent(1000).unwrap(), AgentAdmission::Owner);
        assert_eq!(
            owner.admit_agent(1001).unwrap(),
            AgentAdmission::Refused { owner: 1000 }
        );
        assert!(owner.allows_client(1000));
        assert!(!owner.allows_client(1001));

        // A restart reads the record: the owner does not move.
        let again = OwnerPolicy::load(None, dir.path()).unwrap();
        assert_eq!(again.owner_uid(), Some(1000));
        assert_eq!(
            again.admit_agent(1001).unwrap(),
            AgentAdmission::Refused { owner: 1000 }
        );
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join(RECORD))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn root_sets_the_owner_unless_it_is_configured() {
        let dir = tempfile::tempdir().unwrap();
        let owner = OwnerPolicy::load(None, dir.path()).unwrap();
        owner.admit_agent(1000).unwrap();
        owner.set(1001).unwrap();
        assert_eq!(
            OwnerPolicy::load(None, dir.path()).unwrap().owner_uid(),
            Some(1001)
        );

        let configured = OwnerPolicy::load(Some("1234"), dir.path()).unwrap();
        assert_eq!(configured.owner_uid(), Some(1234), "the configuration wins");
        assert!(configured.set(5).is_err());
        assert_eq!(
            configured.admit_agent(1001).unwrap(),
            AgentAdmission::Refused { owner: 1234 }
        );
    }

    #[test]
    fn a_damaged_record_is_an_error_not_an_unowned_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(RECORD), "garbage").unwrap();
        let err = OwnerPolicy::load(None, dir.path()).unwrap_err().to_string();
        assert!(err.contains("not an owner record"), "{err}");
    }

    #[test]
    fn the_active_seat_user_is_read_from_logind() {
        assert_eq!(
            active_uid("IS_SEAT0=1\nACTIVE=c2\nACTIVE_UID=1000\n"),
            Some(1000)
        );
        assert_eq!(active_uid("IS_SEAT0=1\n"), None);
    }

    #[test]
    fn an_owner_is_a_name_or_a_uid() {
        assert_eq!(uid_from_name_or_number("1234").unwrap(), 1234);
        assert_eq!(uid_from_name_or_number("root").unwrap(), 0);
        assert!(uid_from_name_or_number("no-such-user-here").is_err());
    }
}
