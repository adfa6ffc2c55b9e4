//! What the keystore tells the person: which backend keeps the keys, which TPM, how many
//! credentials. The daemon logs it at start; `fido2ctl status` shows it.

use std::fmt;
use std::path::PathBuf;

use crate::backend::{BackendKind, TpmInfo};

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
        };
        let file = KeystoreStatus {
            backend: BackendKind::File,
            tpm: None,
            discoverable_credentials: 0,
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
    }
}
