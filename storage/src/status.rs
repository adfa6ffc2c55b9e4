//! What the keystore tells the person: which backend keeps the keys, which TPM, how many
//! credentials. The daemon logs it at start; `fido2ctl status` shows it.

use std::fmt;
use std::path::PathBuf;

use crate::backend::{BackendKind, DictionaryAttack, TpmInfo};

/// A snapshot of the keystore's state; holds nothing secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeystoreStatus {
    pub backend: BackendKind,
    /// The TPM that keeps the keys (TPM backend only).
    pub tpm: Option<TpmInfo>,
    /// The state directory.
    pub location: PathBuf,
    pub discoverable_credentials: usize,
    pub remaining_discoverable_credentials: usize,
    /// The TPM's dictionary-attack state when last read (TPM backend only).
    pub dictionary_attack: Option<DictionaryAttack>,
    /// Whether TPM NV counters back the signature counter and the PIN retries.
    pub rollback_protection: bool,
}

impl KeystoreStatus {
    /// Where the keys are, for people: the TPM (manufacturer, firmware, TCTI) or the encrypted
    /// file, and the state directory; e.g. `manufacturer IBM, vendor "SW TPM", firmware
    /// 1.2.3.4, spec 1.59, via device:/dev/tpmrm0; state in /var/lib/fido2d`.
    pub fn detail(&self) -> String {
        match &self.tpm {
            Some(tpm) => format!("{tpm}; state in {}", self.location.display()),
            None => format!("encrypted file in {}", self.location.display()),
        }
    }
}

impl KeystoreStatus {
    /// How the PIN is checked and what guards the counters, for people: e.g. `checked by the
    /// TPM (not in lockout: 0 of 32 failed authorizations, one forgiven every 7200 s); PIN
    /// retries and signature counter in TPM NV counters`.
    pub fn pin_protection(&self) -> String {
        match self.backend {
            BackendKind::Tpm => {
                let lockout = self
                    .dictionary_attack
                    .as_ref()
                    .map_or_else(|| "lockout state unknown".to_owned(), ToString::to_string);
                let counters = if self.rollback_protection {
                    "PIN retries and signature counter in TPM NV counters"
                } else {
                    "no TPM NV counters (the owner hierarchy has a password): a restored copy \
                     of the state directory goes unnoticed"
                };
                format!("checked by the TPM ({lockout}); {counters}")
            }
            BackendKind::File => "Argon2id verifier in the state directory, no TPM: a copy of \
                 the directory can be attacked offline at Argon2id's cost, and restoring one \
                 brings the retries back"
                .to_owned(),
        }
    }
}

impl fmt::Display for KeystoreStatus {
    /// One line, e.g. `tpm (manufacturer IBM, vendor "SW TPM", firmware 1.2.3.4, spec 1.59, via
    /// device:/dev/tpmrm0) in /var/lib/fido2d, 3 discoverable credentials (9997 more fit)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.backend, &self.tpm) {
            (BackendKind::Tpm, Some(tpm)) => write!(f, "tpm ({tpm})")?,
            (BackendKind::Tpm, None) => f.write_str("tpm")?,
            (BackendKind::File, _) => f.write_str("encrypted file")?,
        }
        write!(
            f,
            " in {}, {} discoverable credential{} ({} more fit)",
            self.location.display(),
            self.discoverable_credentials,
            if self.discoverable_credentials == 1 {
                ""
            } else {
                "s"
            },
            self.remaining_discoverable_credentials
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_as_one_line_for_each_backend() {
        let tpm = KeystoreStatus {
            backend: BackendKind::Tpm,
            tpm: Some(TpmInfo {
                tcti: "device:/dev/tpmrm0".into(),
                manufacturer: "IBM".into(),
                vendor: "SW TPM".into(),
                firmware_version: "8217.4131.22.13".into(),
                spec_revision: "1.59".into(),
            }),
            location: "/var/lib/fido2d".into(),
            discoverable_credentials: 1,
            remaining_discoverable_credentials: 9_999,
            dictionary_attack: Some(DictionaryAttack {
                failures: 2,
                max_failures: 32,
                recovery_seconds: 7200,
                lockout_recovery_seconds: 86400,
                in_lockout: false,
                lockout_auth_set: true,
            }),
            rollback_protection: true,
        };
        let file = KeystoreStatus {
            backend: BackendKind::File,
            tpm: None,
            discoverable_credentials: 0,
            dictionary_attack: None,
            rollback_protection: false,
            ..tpm.clone()
        };

        assert_eq!(
            tpm.to_string(),
            "tpm (manufacturer IBM, vendor \"SW TPM\", firmware 8217.4131.22.13, spec \
             1.59, via device:/dev/tpmrm0) in /var/lib/fido2d, 1 discoverable credential (9999 \
             more fit)"
        );
        assert_eq!(
            file.to_string(),
            "encrypted file in /var/lib/fido2d, 0 discoverable credentials (9999 more fit)"
        );
        assert_eq!(
            tpm.detail(),
            "manufacturer IBM, vendor \"SW TPM\", firmware 8217.4131.22.13, spec 1.59, via \
             device:/dev/tpmrm0; state in /var/lib/fido2d"
        );
        assert_eq!(file.detail(), "encrypted file in /var/lib/fido2d");
        assert_eq!(
            tpm.pin_protection(),
            "checked by the TPM (not in lockout: 2 of 32 failed authorizations, one forgiven \
             every 7200 s); PIN retries and signature counter in TPM NV counters"
        );
        assert!(file.pin_protection().starts_with("Argon2id verifier"));
    }

    #[test]
    fn a_tpm_in_lockout_and_one_without_a_lockout_password_say_so() {
        let state = DictionaryAttack {
            failures: 3,
            max_failures: 3,
            recovery_seconds: 1000,
            lockout_recovery_seconds: 1000,
            in_lockout: true,
            lockout_auth_set: false,
        };

        assert_eq!(
            state.to_string(),
            "in lockout: 3 of 3 failed authorizations, one forgiven every 1000 s; no lockout \
             password is set, so root can reset the count (tpm2_changeauth -c lockout sets one)"
        );
    }
}
