//! Crash safety of the file keystore on a real directory: a writer process
//! (harness/bin/keystore_writer.rs) makes discoverable credentials, hands out counter values and
//! rewrites a state slot in a loop, and is killed with SIGKILL at random points, hundreds of
//! times. After every kill the store must open, without a damaged file, and hold everything
//! the writer acknowledged (or something newer in its place): for every user handle a
//! credential at least as new as the last acknowledged one (the same one, if nothing newer was
//! written), a counter above every value handed out, a state at least as new as the last
//! acknowledged write.
//!
//! `FIDO2D_CRASH_KILLS` sets the number of kills (default 300, about 20 s); the seed of the
//! random kill points is printed, `FIDO2D_CRASH_SEED` replays one.
//!
//! The same with the TPM keystore on swtpm (100 kills by default): its signature counter is
//! then a TPM NV counter, reserved a block at a time, which a kill must never move back.

use fido2d_tests::tiers::{skip, Tier};
use std::collections::HashMap;
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, SystemTime};

use fido2d_tests::swtpm::Swtpm;
use protocol::env::{Keystore as _, StateSlot};
use sha2::{Digest, Sha256};
use storage::{DynKeystore, KeyBackend, KeystoreOptions, OsRng, SoftwareKeys, Store};

const WRITER: &str = env!("CARGO_BIN_EXE_keystore_writer");
const RP_ID: &str = "crash.example";

/// What the writers acknowledged so far.
#[derive(Default)]
struct Acknowledged {
    /// Per user handle: the index and ID of the newest credential acknowledged.
    credentials: HashMap<u8, (u64, String)>,
    counter: Option<u32>,
    state: Option<u64>,
    highest_index: Option<u64>,
}

impl Acknowledged {
    fn take(&mut self, line: &str) {
        let mut parts = line.split(' ');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("C"), Some(index), Some(id)) => {
                let index: u64 = index.parse().expect("an index");
                // keystore_writer cycles through 24 user handles.
                let user = (index % 24) as u8;
                self.credentials.insert(user, (index, id.to_owned()));
                self.highest_index = self.highest_index.max(Some(index));
            }
            (Some("N"), Some(value), None) => {
                let value: u32 = value.parse().expect("a counter value");
                assert!(
                    self.counter.is_none_or(|last| value > last),
                    "the writer got counter {value} after {:?}",
                    self.counter
                );
                self.counter = Some(value);
            }
            (Some("S"), Some(index), None) => self.state = Some(index.parse().expect("an index")),
            _ => panic!("unexpected writer line {line:?}"),
        }
    }
}

struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Which keystore the writers use: the file one, or the TPM one on this swtpm.
struct Target {
    tpm: Option<Swtpm>,
}

impl Target {
    fn writer(&self, state: &Path, first: u64) -> Command {
        let mut command = Command::new(WRITER);
        command.arg(state).arg(first.to_string());
        if let Some(tpm) = &self.tpm {
            command.arg(tpm.tcti());
        }
        command
    }

    fn open(&self, state: &Path) -> Result<DynKeystore<OsRng>, String> {
        let backend: Box<dyn KeyBackend> = match &self.tpm {
            None => Box::new(SoftwareKeys),
            Some(tpm) => Box::new(
                storage::TpmKeys::open(&storage::TpmConfig {
                    tcti: tpm.tcti(),
                    parent: None,
                })
                .map_err(|e| e.to_string())?,
            ),
        };
        Store::open_dir(state, backend, OsRng, KeystoreOptions::default())
            .map_err(|e| e.to_string())
    }

    /// What a killed writer left loaded in the TPM goes (swtpm has no resource manager; the
    /// kernel's, /dev/tpmrm0, does this when a process dies).
    fn after_kill(&self) {
        if let Some(tpm) = &self.tpm {
            tpm.tool(&["tpm2_flushcontext", "-t"]);
            tpm.tool(&["tpm2_flushcontext", "-l"]);
        }
    }
}

/// Runs one writer from `first`, kills it after `delay`, returns the lines it completed.
fn run_and_kill(target: &Target, state: &Path, first: u64, delay: Duration) -> Vec<String> {
    let mut child = target
        .writer(state, first)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start keystore_writer");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    let reader = thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    thread::sleep(delay);
    child.kill().expect("SIGKILL the writer");
    let status = child.wait().expect("reap the writer");
    assert!(
        status.code().is_none(),
        "the writer exited by itself ({status}) instead of being killed"
    );
    reader.join().expect("reader thread");
    target.after_kill();
    // The writer prints each line with one write(2) of less than PIPE_BUF bytes, which a pipe
    // takes whole or not at all: every line here is complete.
    rx.try_iter().collect()
}

/// How long a writer takes from exec to its first acknowledged write (on a store like the
/// ones of the test: opened, with up to 24 records); the store is removed again.
fn time_to_first_write(target: &Target, state: &Path) -> Duration {
    let mut child = target
        .writer(state, 0)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start keystore_writer");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    // A second writer on a store with 24 records: the open the kills will interrupt.
    for _ in 0..30 {
        lines.next().expect("a line").expect("a line");
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    target.after_kill();
    let reopened = std::time::Instant::now();
    let mut child = target
        .writer(state, 100)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start keystore_writer");
    BufReader::new(child.stdout.take().expect("stdout"))
        .lines()
        .next()
        .expect("a line")
        .expect("a line");
    let startup = reopened.elapsed();
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    target.after_kill();
    std::fs::remove_dir_all(state).expect("remove the calibration store");
    startup
}

/// Opens the store after a kill and checks it against what was acknowledged; returns the
/// newest index it holds.
fn check_store(target: &Target, state: &Path, acked: &Acknowledged, kill: usize) -> Option<u64> {
    let mut store = target
        .open(state)
        .unwrap_or_else(|e| panic!("after kill {kill} the store does not open: {e}"));
    assert!(
        store.damaged_files().is_empty(),
        "after kill {kill} files were set aside as damaged: {:?}",
        store.damaged_files()
    );
    let rp_id_hash: [u8; 32] = Sha256::digest(RP_ID.as_bytes()).into();
    let stored = store.discoverable_credentials(&rp_id_hash).expect("list");
    let mut by_user: HashMap<u8, (u64, String)> = HashMap::new();
    for credential in &stored {
        let user = credential.user.as_ref().expect("a stored user");
        let index: u64 = user.name.as_deref().expect("a name")[1..]
            .parse()
            .expect("n<index>");
        let previous = by_user.insert(user.id[0], (index, hex(&credential.id)));
        assert!(
            previous.is_none(),
            "after kill {kill}: two credentials for user {}",
            user.id[0]
        );
    }
    for (user, (index, id)) in &acked.credentials {
        let Some((stored_index, stored_id)) = by_user.get(user) else {
            panic!("after kill {kill}: acknowledged credential {index} of user {user} is gone");
        };
        assert!(
            stored_index >= index,
            "after kill {kill}: user {user} went back from credential {index} to {stored_index}"
        );
        if stored_index == index {
            assert_eq!(
                stored_id, id,
                "after kill {kill}: credential {index} changed its ID"
            );
        }
    }
    if let Some(last) = acked.counter {
        let next = store.next_signature_counter().expect("a counter value");
        assert!(
            next > last,
            "after kill {kill}: counter {next} after {last} was handed out"
        );
    }
    if let Some(index) = acked.state {
        let state = store
            .read_state(StateSlot::Authenticator)
            .expect("read the state")
            .unwrap_or_else(|| panic!("after kill {kill}: the acknowledged state {index} is gone"));
        let text = String::from_utf8(state.to_vec()).expect("UTF-8 state");
        let stored: u64 = text
            .strip_prefix("state ")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("after kill {kill}: state slot holds {text:?}"));
        assert!(
            stored >= index,
            "after kill {kill}: state went back from {index} to {stored}"
        );
    }
    let temporaries: Vec<_> = walk(state)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(
        temporaries.is_empty(),
        "after kill {kill}: temporary files survived the open: {temporaries:?}"
    );
    by_user.values().map(|(index, _)| *index).max()
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn every_acknowledged_write_survives_sigkill_at_random_points() {
    if skip(Tier::Unit) {
        return;
    }
    survives_sigkill(&Target { tpm: None }, 300);
}

#[test]
fn every_acknowledged_write_survives_sigkill_at_random_points_with_the_tpm() {
    if skip(Tier::Tpm) {
        return;
    }
    survives_sigkill(
        &Target {
            tpm: Some(Swtpm::start()),
        },
        100,
    );
}

fn survives_sigkill(target: &Target, default_kills: usize) {
    let kills: usize = std::env::var("FIDO2D_CRASH_KILLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default_kills);
    let seed = std::env::var("FIDO2D_CRASH_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .expect("time")
                .as_nanos() as u64
                | 1
        });
    println!("crash-safety seed {seed} (FIDO2D_CRASH_SEED replays it), {kills} kills");
    let mut rng = XorShift(seed);

    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    let mut acked = Acknowledged::default();
    let mut next = 0u64;
    let mut kills_mid_run = 0;
    let mut acknowledged_lines = 0;
    // Kill points from before the store is open to a dozen writes in: the writer's start-up
    // (much longer in a debug build) measured once, plus 30 ms.
    let startup = time_to_first_write(target, &state);
    let window = (2 * startup + Duration::from_millis(30)).as_micros() as u64;
    println!("writer start-up {startup:?}, kills within {window} us");
    for kill in 0..kills {
        let delay = Duration::from_micros(rng.below(window));
        let lines = run_and_kill(target, &state, next, delay);
        if !lines.is_empty() {
            kills_mid_run += 1;
        }
        acknowledged_lines += lines.len();
        for line in &lines {
            acked.take(line);
        }
        let stored = check_store(target, &state, &acked, kill);
        next = acked.highest_index.max(stored).map_or(0, |i| i + 1);
    }
    println!(
        "{kills} kills, {kills_mid_run} after at least one acknowledged write, \
         {acknowledged_lines} acknowledgements, {next} credentials made"
    );
    assert!(
        kills_mid_run >= kills / 3,
        "too few kills landed while writing ({kills_mid_run} of {kills}): the test is not \
         testing what it says"
    );
}
