//! Target `storage_file`: fido2d-storage's files (`master.key`, `counter`, `counter.next`,
//! `credentials/*.cred`, `*.state`) read by the file keystore's real open path
//! (`FileKeystore::open` over a state directory in a temporary folder).
//!
//! Every run starts from a genuine state directory (made once by a real store under a known
//! master key: three discoverable credentials of two RPs, both state slots, the counter), then
//! the input rewrites its files: raw bytes, truncation, bit flips, removal, and, through
//! fido2d-storage's `fuzzing` feature, files properly sealed under that master key (or
//! another) with contents of the input's choosing.
//!
//! Input: `op*`, each op a byte (mod 8) and its arguments, see [`mutate`].
//!
//! Invariants (beyond "never panics"):
//! - `master.key` is never rewritten or removed, and no file is ever overwritten with other
//!   contents, except the counter (which only grows: the value stored after an open is above
//!   every value stored before);
//! - a record file that does not open under the master key is renamed to `*.damaged` with its
//!   bytes intact and reported by `damaged_files`, never deleted; a record file that opens is
//!   kept and loaded, unless another record of the same RP and user supersedes it (the newer
//!   `created` wins; a replacement interrupted by a crash leaves both), and only then removed;
//! - what the open store lists are exactly the records that open (after that rule), and each
//!   is found by its ID for its own RP only;
//! - a state file sealed under the master key is loaded as it is; one sealed under another, or
//!   damaged, makes open fail and stays as it is (never an empty slot: that would forget a PIN);
//! - a reset that stopped after its commit (`counter.next` opens under the master key and
//!   `counter` does not) is finished: every record and state file goes, the store is empty;
//! - after a successful open, a second open succeeds and sees the same credentials.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use protocol::env::{
    Algorithm, CredentialExtras, Keystore, NewCredential, RelyingParty, StateSlot, UserEntity,
};
use protocol::testing::SeededRng;
use sha2::{Digest, Sha256};
use storage::fuzzing::{record_file_name, state_file_name, SealingKeys};
use storage::{FileKeystore, KeystoreOptions, StorageError};

use crate::input::Input;

pub const MASTER: [u8; 32] = [0x3c; 32];
const OTHER_MASTER: [u8; 32] = [0x91; 32];
const RP_IDS: [&str; 2] = ["example.com", "example.org"];
const CREDENTIALS: &str = "credentials";

/// A state directory, file by file (paths relative to it).
type Files = BTreeMap<String, Vec<u8>>;

struct Baseline {
    files: Files,
    /// Names of the genuine record files.
    records: Vec<String>,
}

fn baseline() -> &'static Baseline {
    static BASELINE: OnceLock<Baseline> = OnceLock::new();
    BASELINE.get_or_init(make_baseline)
}

fn scratch_root() -> PathBuf {
    let base = Path::new("/dev/shm");
    let base = if base.is_dir() {
        base.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    base.join(format!("fido2d-fuzz-storage-{}", std::process::id()))
}

fn make_baseline() -> Baseline {
    let dir = scratch_root().join("baseline");
    let _ = fs::remove_dir_all(&dir);
    let keys = SealingKeys::new(MASTER);
    write_files(
        &dir,
        &BTreeMap::from([("master.key".to_owned(), keys.master_key_file())]),
    );
    let mut store = FileKeystore::open(&dir, SeededRng::new(11)).expect("the baseline opens");
    let hashes: Vec<[u8; 32]> = RP_IDS
        .iter()
        .map(|id| Sha256::digest(id.as_bytes()).into())
        .collect();
    for (rp, user) in [(0usize, 1u8), (0, 2), (1, 1)] {
        let rp_entity = RelyingParty {
            id: RP_IDS[rp].into(),
            name: None,
        };
        store
            .create_credential(&NewCredential {
                rp: &rp_entity,
                rp_id_hash: &hashes[rp],
                user: &UserEntity {
                    id: vec![user],
                    name: Some(format!("user{user}")),
                    display_name: None,
                },
                algorithm: Algorithm::Es256,
                discoverable: true,
                extras: &CredentialExtras::default(),
            })
            .expect("baseline credential");
    }
    store
        .write_state(StateSlot::Authenticator, b"pin state")
        .expect("baseline state");
    store
        .write_state(StateSlot::LargeBlobs, b"large blobs")
        .expect("baseline state");
    drop(store);
    let files = read_files(&dir);
    let _ = fs::remove_dir_all(&dir);
    let records = files
        .keys()
        .filter_map(|p| p.strip_prefix("credentials/"))
        .map(str::to_owned)
        .collect();
    Baseline { files, records }
}

fn write_files(dir: &Path, files: &Files) {
    for sub in [dir.to_path_buf(), dir.join(CREDENTIALS)] {
        let _ = fs::DirBuilder::new()
            .mode(0o700)
            .recursive(true)
            .create(sub);
    }
    for (name, bytes) in files {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(dir.join(name))
            .expect("scratch write");
        file.write_all(bytes).expect("scratch write");
    }
}

fn read_files(dir: &Path) -> Files {
    let mut files = Files::new();
    for (prefix, sub) in [
        ("", dir.to_path_buf()),
        ("credentials/", dir.join(CREDENTIALS)),
    ] {
        let Ok(entries) = fs::read_dir(&sub) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_file()) {
                let name = entry.file_name().to_string_lossy().into_owned();
                let bytes = fs::read(entry.path()).expect("scratch read");
                files.insert(format!("{prefix}{name}"), bytes);
            }
        }
    }
    files
}

/// Names the input can pick: every baseline file, and some that are not there.
fn pick_name(files: &Files, input: &mut Input) -> String {
    let mut names: Vec<String> = baseline().files.keys().cloned().collect();
    names.extend(
        [
            "counter.next",
            "credentials/00112233445566778899aabbccddeeff.cred",
            "credentials/not-hex.cred",
            "credentials/ABCDEF00112233445566778899aabbcc.cred",
        ]
        .map(str::to_owned),
    );
    names.extend(files.keys().cloned());
    names.sort();
    names.dedup();
    let i = usize::from(input.byte()) % names.len();
    names.swap_remove(i)
}

fn mutate(files: &mut Files, input: &mut Input) {
    let keys = SealingKeys::new(MASTER);
    let other = SealingKeys::new(OTHER_MASTER);
    match input.byte() % 8 {
        // Raw bytes.
        0 => {
            let name = pick_name(files, input);
            files.insert(name, input.bytes().to_vec());
        }
        // Truncation.
        1 => {
            let name = pick_name(files, input);
            if let Some(bytes) = files.get_mut(&name) {
                let len = usize::from(input.u16()) % (bytes.len() + 1);
                bytes.truncate(len);
            }
        }
        // A bit flip.
        2 => {
            let name = pick_name(files, input);
            let at = usize::from(input.u16());
            let mask = input.byte().max(1);
            if let Some(bytes) = files.get_mut(&name).filter(|b| !b.is_empty()) {
                let at = at % bytes.len();
                bytes[at] ^= mask;
            }
        }
        // Removal.
        3 => {
            let name = pick_name(files, input);
            files.remove(&name);
        }
        // A sealed record file: the fields of a genuine record, changed, or raw fields.
        4 => {
            let sealer = if input.byte() & 1 == 0 { &keys } else { &other };
            let version = input.byte() % 4;
            let nonce = input.array::<12>();
            let source = &baseline().records[usize::from(input.byte()) % baseline().records.len()];
            let genuine = keys
                .record_fields(source, &baseline().files[&format!("credentials/{source}")])
                .map(|(_, fields)| fields)
                .unwrap_or_default();
            let mut fields = match input.byte() % 3 {
                0 => genuine,
                1 => input.bytes().to_vec(),
                _ => {
                    let mut fields = genuine;
                    let at = usize::from(input.u16());
                    let patch = input.bytes();
                    let at = at % (fields.len() + 1);
                    let end = (at + patch.len()).min(fields.len());
                    fields.splice(at..end, patch.iter().copied());
                    fields
                }
            };
            if input.byte() & 1 == 1 {
                fields.truncate(usize::from(input.u16()));
            }
            let name = match input.byte() % 3 {
                0 => source.clone(),
                1 => credential_id_of(&fields)
                    .map(|id| record_file_name(&id))
                    .unwrap_or_else(|| source.clone()),
                _ => pick_name(files, input)
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
            };
            let file = sealer.record_file(version, &nonce, &name, &fields);
            files.insert(format!("credentials/{name}"), file);
        }
        // A sealed counter file.
        5 => {
            let sealer = if input.byte() & 1 == 0 { &keys } else { &other };
            let name = if input.byte() & 1 == 0 {
                "counter"
            } else {
                "counter.next"
            };
            let nonce = input.array::<12>();
            let plaintext = match input.byte() % 2 {
                0 => input.array::<8>().to_vec(),
                _ => input.bytes().to_vec(),
            };
            files.insert(name.into(), sealer.counter_file(&nonce, &plaintext));
        }
        // A sealed state file.
        6 => {
            let sealer = if input.byte() & 1 == 0 { &keys } else { &other };
            let slot = StateSlot::ALL[usize::from(input.byte() % 2)];
            let nonce = input.array::<12>();
            let contents = input.bytes().to_vec();
            files.insert(
                state_file_name(slot),
                sealer.state_file(&nonce, slot, &contents),
            );
        }
        // Another master key.
        _ => {
            files.insert("master.key".into(), other.master_key_file());
        }
    }
}

/// The credential ID the fields of a record start with.
fn credential_id_of(fields: &[u8]) -> Option<Vec<u8>> {
    let len = usize::from(u16::from_be_bytes([*fields.first()?, *fields.get(1)?]));
    fields.get(2..2 + len).map(<[u8]>::to_vec)
}

pub fn run(data: &[u8]) {
    let mut files = baseline().files.clone();
    let mut input = Input::new(data);
    for _ in 0..16 {
        if input.is_empty() {
            break;
        }
        mutate(&mut files, &mut input);
    }
    let dir = scratch_root().join("run");
    let _ = fs::remove_dir_all(&dir);
    write_files(&dir, &files);
    let before = read_files(&dir);
    let opened = FileKeystore::open_with(&dir, SeededRng::new(5), KeystoreOptions::default());
    let after = read_files(&dir);
    check(&before, &after, opened, &dir);
    let _ = fs::remove_dir_all(&dir);
}

/// The (RP ID hash, user id, created, credential id) of a record file that opens.
type Facts = ([u8; 32], Vec<u8>, u64, Vec<u8>);

fn check(
    before: &Files,
    after: &Files,
    opened: Result<FileKeystore<SeededRng>, StorageError>,
    dir: &Path,
) {
    // master.key is never written once there.
    if let Some(master) = before.get("master.key") {
        assert_eq!(after.get("master.key"), Some(master), "master.key changed");
    }
    let keys = after
        .get("master.key")
        .and_then(|m| SealingKeys::from_master_key_file(m));

    // Records: which open, and which of those the newest-wins rule keeps (in name order).
    let mut readable: BTreeMap<String, Facts> = BTreeMap::new();
    for (path, bytes) in before {
        let Some(name) = path.strip_prefix("credentials/") else {
            continue;
        };
        if !name.ends_with(".cred") {
            continue;
        }
        if let Some(facts) = keys.as_ref().and_then(|k| k.readable_record(name, bytes)) {
            readable.insert(
                name.to_owned(),
                (
                    facts.rp_id_hash,
                    facts.user_id,
                    facts.created,
                    facts.credential_id,
                ),
            );
        }
    }
    let mut winners: BTreeMap<([u8; 32], Vec<u8>), String> = BTreeMap::new();
    for (name, (rp, user, created, _)) in &readable {
        let key = (*rp, user.clone());
        match winners.get(&key) {
            Some(other) if readable[other].2 > *created => {}
            _ => {
                winners.insert(key, name.clone());
            }
        }
    }
    let mut kept: Vec<&String> = winners.values().collect();
    // A reset that was committed (counter.next sealed under this key) and stopped before its
    // end (counter still the old key's): open finishes it.
    let opens_as_counter = |name: &str| {
        before
            .get(name)
            .zip(keys.as_ref())
            .and_then(|(b, k)| k.counter_value(b))
            .is_some()
    };
    let finishes_a_reset = opens_as_counter("counter.next") && !opens_as_counter("counter");
    if finishes_a_reset {
        kept.clear();
    }

    for (path, bytes) in before {
        let is_record = path
            .strip_prefix("credentials/")
            .is_some_and(|n| n.ends_with(".cred"));
        match after.get(path) {
            Some(now) if now == bytes => continue,
            Some(now) => {
                assert!(
                    path == "counter",
                    "{path} was overwritten ({} -> {} bytes)",
                    bytes.len(),
                    now.len()
                );
                if let Some(k) = &keys {
                    // Never back: at least every value stored before, above them once open
                    // reserved a new block (an open that fails may stop after taking
                    // counter.next, e.g. when no block is left above it).
                    let new = k.counter_value(now).expect("the counter written opens");
                    let floor = [Some(bytes), before.get("counter.next")]
                        .into_iter()
                        .flatten()
                        .filter_map(|b| k.counter_value(b))
                        .max()
                        .unwrap_or(0);
                    assert!(new >= floor, "the counter went back from {floor} to {new}");
                    assert!(
                        new > floor || opened.is_err(),
                        "the counter stayed at {new} in an open store"
                    );
                }
            }
            None if finishes_a_reset
                && (path.starts_with("credentials/") || path.ends_with(".state")) => {}
            None if is_record => {
                let name = &path["credentials/".len()..];
                if readable.contains_key(name) {
                    assert!(
                        !kept.contains(&&name.to_owned()),
                        "{path} was removed though it is the newest of its user"
                    );
                } else {
                    let aside = after
                        .iter()
                        .any(|(p, b)| p.starts_with(&format!("{path}.damaged")) && b == bytes);
                    assert!(aside, "{path} vanished without being set aside intact");
                }
            }
            None if path == "counter.next" => {}
            None => panic!("{path} vanished"),
        }
    }

    let Ok(mut store) = opened else {
        return;
    };
    let keys = keys.expect("an open store has a readable master.key");

    // Exactly the kept records are listed, each found for its RP only.
    let listed = store
        .all_discoverable_credentials()
        .expect("listing never fails");
    let mut listed_ids: Vec<Vec<u8>> = listed.iter().map(|c| c.id.clone()).collect();
    let mut expected: Vec<Vec<u8>> = kept.iter().map(|n| readable[*n].3.clone()).collect();
    listed_ids.sort();
    expected.sort();
    assert_eq!(listed_ids, expected, "the store lists other credentials");
    for credential in &listed {
        let found = store
            .find_credential(&credential.rp_id_hash, &credential.id)
            .expect("find");
        assert!(found.is_some(), "a listed credential is not found");
        let mut other = credential.rp_id_hash;
        other[0] ^= 1;
        assert!(store
            .find_credential(&other, &credential.id)
            .expect("find")
            .is_none());
    }
    for path in store.damaged_files() {
        assert!(path.exists(), "a damaged file reported is not there");
    }

    // State slots hold what their files seal.
    for slot in StateSlot::ALL {
        let name = state_file_name(slot);
        let expected = before.get(&name).filter(|_| !finishes_a_reset).map(|b| {
            keys.state_contents(slot, b)
                .expect("a state file that does not open under the key was read")
        });
        let read = store.read_state(slot).expect("read_state");
        assert_eq!(read.map(|r| r.to_vec()), expected, "{name}");
    }
    drop(store);

    // Opening again sees the same (unless the first open took the counter's last block).
    let mut again = match FileKeystore::open(dir, SeededRng::new(6)) {
        Ok(again) => again,
        Err(StorageError::CounterExhausted) => return,
        Err(err) => panic!("a second open: {err}"),
    };
    let mut ids: Vec<Vec<u8>> = again
        .all_discoverable_credentials()
        .expect("list")
        .into_iter()
        .map(|c| c.id)
        .collect();
    ids.sort();
    assert_eq!(ids, expected, "a second open sees other credentials");
}

/// Seeds: the genuine directory; each kind of file damaged, set aside, sealed anew.
pub fn typed_programs() -> Vec<(&'static str, Vec<u8>)> {
    let n = |name: &str| -> u8 {
        // The index pick_name gives `name` in the genuine directory.
        let mut names: Vec<String> = baseline().files.keys().cloned().collect();
        names.extend(
            [
                "counter.next",
                "credentials/00112233445566778899aabbccddeeff.cred",
                "credentials/not-hex.cred",
                "credentials/ABCDEF00112233445566778899aabbcc.cred",
            ]
            .map(str::to_owned),
        );
        names.sort();
        names.dedup();
        names.iter().position(|x| x == name).unwrap_or(0) as u8
    };
    let record = format!("credentials/{}", baseline().records[0]);
    vec![
        ("typed-untouched", vec![]),
        ("typed-record-flipped", vec![2, n(&record), 0, 40, 0x10]),
        ("typed-record-truncated", vec![1, n(&record), 0, 20]),
        ("typed-master-truncated", vec![1, n("master.key"), 0, 10]),
        ("typed-master-other", vec![7]),
        ("typed-counter-raw", vec![0, n("counter"), 0, 3, 1, 2, 3]),
        (
            "typed-state-flipped",
            vec![2, n("authenticator.state"), 0, 9, 1],
        ),
        (
            "typed-record-resealed",
            [vec![4, 0, 2], vec![7; 12], vec![0, 0, 0, 0]].concat(),
        ),
        (
            "typed-record-patched",
            [
                vec![4, 0, 2],
                vec![8; 12],
                vec![1, 2, 0, 3, 0, 1, 0x41, 0, 1],
            ]
            .concat(),
        ),
        (
            "typed-state-resealed",
            [vec![6, 0, 0], vec![9; 12], vec![0, 3, 1, 2, 3]].concat(),
        ),
        (
            "typed-counter-resealed",
            [vec![5, 0, 0], vec![9; 12], vec![0], vec![0xff; 8]].concat(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_programs_are_committed_as_seeds() {
        let programs = typed_programs();
        for (_, program) in &programs {
            run(program);
        }
        crate::committed_seeds::assert_committed("storage_file", programs);
    }
}
