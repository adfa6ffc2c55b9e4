//! Who may use the control socket: root, and the key's owner.
//!
//! The owner is a configured user, or else whoever is logged in on the active seat (logind's
//! `/run/systemd/seats/seat0`, `ACTIVE_UID=`), decided at each connection so that switching
//! users at the desktop moves the prompts with them. Everyone else is refused and logged: an
//! agent of another user must never answer this user's prompts.

use std::path::PathBuf;

/// The uid of root, which owns the machine anyway.
const ROOT: u32 = 0;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnerPolicy {
    /// Exactly this uid (from the configuration).
    User(u32),
    /// The user of the active session on the seat described by this logind file.
    ActiveSeat(PathBuf),
}

impl OwnerPolicy {
    pub fn active_seat() -> Self {
        OwnerPolicy::ActiveSeat(PathBuf::from("/run/systemd/seats/seat0"))
    }

    /// Resolves a configured owner: a user name from /etc/passwd, or a numeric uid.
    pub fn configured(owner: &str) -> anyhow::Result<Self> {
        if let Ok(uid) = owner.parse::<u32>() {
            return Ok(OwnerPolicy::User(uid));
        }
        let passwd = std::fs::read_to_string("/etc/passwd")
            .map_err(|err| anyhow::anyhow!("cannot read /etc/passwd to find {owner:?}: {err}"))?;
        uid_of(&passwd, owner)
            .map(OwnerPolicy::User)
            .ok_or_else(|| anyhow::anyhow!("owner {owner:?} is not a user of this machine"))
    }

    /// The owner's uid now, if there is one.
    pub fn owner_uid(&self) -> Option<u32> {
        match self {
            OwnerPolicy::User(uid) => Some(*uid),
            OwnerPolicy::ActiveSeat(path) => std::fs::read_to_string(path)
                .ok()
                .and_then(|seat| active_uid(&seat)),
        }
    }

    pub fn allows(&self, uid: u32) -> bool {
        uid == ROOT || self.owner_uid() == Some(uid)
    }

    pub fn describe(&self) -> String {
        match self {
            OwnerPolicy::User(uid) => format!("uid {uid}"),
            OwnerPolicy::ActiveSeat(path) => format!("the active user of {}", path.display()),
        }
    }
}

/// `ACTIVE_UID=1000` in a logind seat file.
fn active_uid(seat_file: &str) -> Option<u32> {
    seat_file
        .lines()
        .find_map(|line| line.strip_prefix("ACTIVE_UID="))
        .and_then(|uid| uid.trim().parse().ok())
}

/// The uid of `name` in /etc/passwd contents.
fn uid_of(passwd: &str, name: &str) -> Option<u32> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next() == Some(name))
            .then(|| fields.nth(1)?.parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_active_seat_user_and_root_are_allowed_nobody_else() {
        let dir = tempfile::tempdir().unwrap();
        let seat = dir.path().join("seat0");
        std::fs::write(&seat, "IS_SEAT0=1\nACTIVE=c2\nACTIVE_UID=1000\n").unwrap();
        let policy = OwnerPolicy::ActiveSeat(seat.clone());

        assert!(policy.allows(1000));
        assert!(policy.allows(0));
        assert!(!policy.allows(1001));

        std::fs::write(&seat, "IS_SEAT0=1\n").unwrap();
        assert!(!policy.allows(1000), "nobody at the seat: only root");
        std::fs::remove_file(&seat).unwrap();
        assert!(!policy.allows(1000));
        assert!(policy.allows(0));
    }

    #[test]
    fn a_configured_owner_is_a_name_or_a_uid() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/sh\n";

        assert_eq!(uid_of(passwd, "alice"), Some(1000));
        assert_eq!(uid_of(passwd, "root"), Some(0));
        assert_eq!(uid_of(passwd, "bob"), None);
        assert_eq!(uid_of(passwd, "x"), None);
        assert_eq!(
            OwnerPolicy::configured("1234").unwrap(),
            OwnerPolicy::User(1234)
        );
        assert_eq!(
            OwnerPolicy::configured("root").unwrap(),
            OwnerPolicy::User(0)
        );
        assert!(OwnerPolicy::configured("no-such-user-here").is_err());
        assert!(OwnerPolicy::User(5).allows(5));
        assert!(!OwnerPolicy::User(5).allows(6));
    }
}
