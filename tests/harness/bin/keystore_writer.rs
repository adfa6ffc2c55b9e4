//! The writer of the crash-safety test (tests/tests/crash_safety.rs): opens the real file
//! keystore on STATE_DIR and writes to it until it is killed, printing a line after each
//! write returned (the acknowledgement a client would get):
//!
//! - `C <index> <credential id hex>`: a discoverable credential for "crash.example" made, user
//!   handle `[index % USERS]` (so most of them replace an older one), user name `n<index>`;
//! - `N <value>`: a signature counter value handed out;
//! - `S <index>`: the authenticator state slot now holds `state <index>`.
//!
//! Usage: keystore_writer STATE_DIR FIRST_INDEX [TCTI]
//!
//! With a TCTI (`swtpm:host=...,port=...`), the TPM keystore on that TPM (ES256 credentials);
//! else the file keystore (EdDSA ones).

use std::io::Write as _;

use protocol::env::{
    Algorithm, CredentialExtras, Keystore as _, NewCredential, RelyingParty, StateSlot, UserEntity,
};
use sha2::{Digest, Sha256};
use storage::{DynKeystore, KeyBackend, KeystoreOptions, OsRng, SoftwareKeys, Store};

/// How many user handles the writes cycle through.
pub const USERS: u64 = 24;
pub const RP_ID: &str = "crash.example";

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(first)) = (args.next(), args.next()) else {
        eprintln!("usage: keystore_writer STATE_DIR FIRST_INDEX [TCTI]");
        std::process::exit(2);
    };
    let first: u64 = first.parse().expect("FIRST_INDEX is a number");
    let tcti = args.next();
    let mut store = open(dir.as_ref(), tcti.as_deref()).unwrap_or_else(|e| {
        eprintln!("keystore_writer: {e}");
        std::process::exit(1);
    });
    let algorithm = if tcti.is_some() {
        Algorithm::Es256
    } else {
        Algorithm::EdDsa
    };
    let rp = RelyingParty {
        id: RP_ID.into(),
        name: None,
    };
    let rp_id_hash: [u8; 32] = Sha256::digest(RP_ID.as_bytes()).into();
    let mut out = std::io::stdout().lock();
    for index in first.. {
        let user = UserEntity {
            id: vec![(index % USERS) as u8],
            name: Some(format!("n{index}")),
            display_name: None,
        };
        let new = NewCredential {
            rp: &rp,
            rp_id_hash: &rp_id_hash,
            user: &user,
            algorithm,
            discoverable: true,
            extras: &CredentialExtras::default(),
        };
        let (credential, _) = store.create_credential(&new).expect("create a credential");
        writeln!(out, "C {index} {}", hex(&credential.id)).expect("stdout");
        out.flush().expect("stdout");
        if index % 3 == 0 {
            let value = store.next_signature_counter().expect("a counter value");
            writeln!(out, "N {value}").expect("stdout");
            out.flush().expect("stdout");
        }
        if index % 5 == 0 {
            let contents = format!("state {index}");
            store
                .write_state(StateSlot::Authenticator, contents.as_bytes())
                .expect("write the state slot");
            writeln!(out, "S {index}").expect("stdout");
            out.flush().expect("stdout");
        }
    }
}

/// The keystore in `dir`: the TPM one on `tcti`, or the file one.
pub fn open(dir: &std::path::Path, tcti: Option<&str>) -> Result<DynKeystore<OsRng>, String> {
    let backend: Box<dyn KeyBackend> = match tcti {
        None => Box::new(SoftwareKeys),
        Some(tcti) => Box::new(
            storage::TpmKeys::open(&storage::TpmConfig {
                tcti: tcti.to_owned(),
                parent: None,
            })
            .map_err(|e| e.to_string())?,
        ),
    };
    Store::open_dir(dir, backend, OsRng, KeystoreOptions::default()).map_err(|e| e.to_string())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
