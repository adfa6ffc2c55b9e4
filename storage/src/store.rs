//! [`Store`]: the keystore logic every backend shares. A [`KeyBackend`] makes and uses the
//! private keys and keeps the master secret at rest; the store seals everything else with
//! subkeys of that master secret and keeps it in a [`Persistence`].

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use protocol::env::{
    Algorithm, CredProtect, Credential, CredentialExtras, Keystore, KeystoreError, NewCredential,
    PinCheck, PublicKey, Rng, StateSlot, UserEntity, MAX_PIN_RETRIES,
};
use zeroize::Zeroizing;

use crate::backend::KeyAuth;
use crate::backend::{DictionaryAttack, KeyBackend, UnsealError, MASTER_FILES};
use crate::credential_id;
use crate::crypto::{self, Keys, MasterKey, KEY_ID_LEN, NONCE_LEN};
use crate::persistence::{join, DirPersistence, Persistence};
use crate::pin::{self, Accounting, PinHashCost, PinRecord, PinSecret, PinUnseal, UvKeys};
use crate::record::{self, FileId, Record};
use crate::state_file::{self, PIN_FILE, PIN_NAME};
use crate::status::KeystoreStatus;
use crate::StorageError;

const COUNTER_FILE: &str = "counter";
/// The counter sealed with a new master key, written by [`Keystore::reset`] before the new key
/// is committed and renamed over [`COUNTER_FILE`] after.
const COUNTER_NEXT_FILE: &str = "counter.next";
const CREDENTIALS_DIR: &str = "credentials";
const DAMAGED_SUFFIX: &str = ".damaged";

const COUNTER_MAGIC: &[u8; 8] = b"FIDO2DCT";
/// The limit alone (8 bytes): the file backend, and every counter file before NV counters.
const COUNTER_VERSION: u8 = 1;
/// The limit and the TPM NV counter value of its block (8 + 8 bytes).
const COUNTER_VERSION_NV: u8 = 2;

/// The NV index handles of a store's monotonic counters: in the owner range (0x01800000 to
/// 0x01BFFFFF), 21 bits from the master key's id, and one bit for which counter. A store's
/// counters are its own (a second state directory on the same TPM has others), and a reset,
/// which makes a new master key, moves to new ones after deleting the old.
const NV_OWNER_BASE: u32 = 0x0180_0000;
const NV_SIGNATURE_COUNTER: u32 = 0;
const NV_PIN_FAILURES: u32 = 1;

fn nv_handle(key_id: &[u8; KEY_ID_LEN], which: u32) -> u32 {
    let bits = u32::from_be_bytes(key_id[..4].try_into().expect("4 bytes")) & 0x001f_ffff;
    NV_OWNER_BASE | (bits << 1) | which
}

/// How many counter values are reserved with one durable write.
///
/// The counter file holds a reserved limit L: every value handed out so far is below L. Values
/// are handed out from memory up to L; reaching L first writes (and syncs) L + BLOCK. At open the
/// count resumes at the stored L (and a new block is reserved at once, which also shows early
/// that the directory is writable). A crash or restart therefore skips at most BLOCK values but
/// never repeats or goes back, and only one assertion in BLOCK pays for an fsync.
pub const COUNTER_BLOCK: u64 = 1024;

/// Tunables of a [`Store`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeystoreOptions {
    /// How many discoverable credentials may be stored. Start-up time and memory grow with it
    /// (about 10,000 records load in well under a second).
    pub max_discoverable: usize,
    /// The Argon2id cost of the file backend's PIN verifier (a PIN set from then on; a stored
    /// verifier keeps the parameters it was made with). The TPM backend does not use it.
    pub pin_hash_cost: PinHashCost,
}

impl KeystoreOptions {
    pub const DEFAULT_MAX_DISCOVERABLE: usize = 10_000;
}

impl Default for KeystoreOptions {
    fn default() -> Self {
        KeystoreOptions {
            max_discoverable: Self::DEFAULT_MAX_DISCOVERABLE,
            pin_hash_cost: PinHashCost::DEFAULT,
        }
    }
}

/// The loaded discoverable records, by file id, by RP ID hash and by (RP ID hash, user id): every
/// lookup is a hash-map hit, also with 10,000 records.
#[derive(Default)]
struct Index {
    records: HashMap<FileId, Record>,
    by_rp: HashMap<[u8; 32], Vec<FileId>>,
    /// At most one record per RP and user handle (a new one replaces the old).
    by_user: HashMap<([u8; 32], Vec<u8>), FileId>,
}

impl Index {
    fn len(&self) -> usize {
        self.records.len()
    }

    /// Adds a record; the caller has removed any record of the same RP and user.
    fn insert(&mut self, id: FileId, record: Record) {
        self.by_rp.entry(record.rp_id_hash).or_default().push(id);
        self.by_user
            .insert((record.rp_id_hash, record.user.id.clone()), id);
        self.records.insert(id, record);
    }

    fn remove(&mut self, id: &FileId) -> Option<Record> {
        let record = self.records.remove(id)?;
        if let Some(ids) = self.by_rp.get_mut(&record.rp_id_hash) {
            ids.retain(|other| other != id);
            if ids.is_empty() {
                self.by_rp.remove(&record.rp_id_hash);
            }
        }
        let key = (record.rp_id_hash, record.user.id.clone());
        if self.by_user.get(&key) == Some(id) {
            self.by_user.remove(&key);
        }
        Some(record)
    }

    /// The record of this RP with this user handle.
    fn same_user(&self, rp_id_hash: &[u8; 32], user_id: &[u8]) -> Option<FileId> {
        self.by_user.get(&(*rp_id_hash, user_id.to_vec())).copied()
    }

    /// The record a discoverable credential ID stands for, if it still exists for this RP.
    fn get(&self, credential_id: &[u8]) -> Option<&Record> {
        self.records
            .get(&record::file_id(credential_id))
            .filter(|r| r.credential_id == credential_id)
    }
}

/// A store whose backend is picked at run time (the daemon's: TPM or file).
pub type DynKeystore<R> = Store<Box<dyn KeyBackend>, R>;

/// The signature counter and its durable reservation (see [`COUNTER_BLOCK`]).
struct Counter {
    next: u64,
    limit: u64,
    /// With a TPM NV counter: its value, whose block [value * BLOCK, (value + 1) * BLOCK) the
    /// values come from (`None` until it was read, or with no NV counter).
    nv: Option<u64>,
}

/// A keystore: non-discoverable credential IDs wrap their key material (a raw key or a TPM
/// blob) with a subkey of the master secret, discoverable credentials keep a sealed record
/// each (with their key material), the signature counter is reserved in blocks.
///
/// The backend decides where private keys live and how the master secret is kept:
/// [`FileKeystore`](crate::FileKeystore) and `TpmKeystore` are the two kinds.
pub struct Store<B: KeyBackend, R: Rng> {
    backend: B,
    persistence: Box<dyn Persistence>,
    rng: R,
    keys: Keys,
    index: Index,
    counter: Counter,
    /// The contents of the state slots, read at open.
    state: HashMap<StateSlot, Zeroizing<Vec<u8>>>,
    options: KeystoreOptions,
    damaged: Vec<PathBuf>,
    /// The PIN verifier and its retry accounting (`pin.state`), if a PIN is set.
    pin: Option<PinRecord>,
    /// The secret the right PIN opened, for as long as the process lives.
    pin_secret: Option<PinSecret>,
    /// The TPM's count of PIN tries that were not a match, as last read (NV accounting).
    pin_failures: Option<u64>,
    /// A PIN was set on this store (its TPM failure counter exists) but `pin.state` is gone:
    /// the state directory was put back from a copy older than the PIN. The PIN counts as
    /// blocked, never as absent.
    pin_lost: bool,
    /// The TPM's dictionary-attack state when last read.
    dictionary_attack: Option<DictionaryAttack>,
    /// What the daemon should log (rollbacks, lockouts); see [`Store::take_notices`].
    notices: Vec<String>,
}

impl<B: KeyBackend, R: Rng> fmt::Debug for Store<B, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend.kind())
            .field("location", &self.persistence.location(""))
            .field("discoverable", &self.index.len())
            .field("options", &self.options)
            .field("damaged", &self.damaged)
            .finish_non_exhaustive()
    }
}

impl<B: KeyBackend, R: Rng> Store<B, R> {
    /// Opens (or creates) the keystore of `backend` in `state_dir`.
    pub fn open_dir(
        state_dir: &Path,
        backend: B,
        rng: R,
        options: KeystoreOptions,
    ) -> Result<Self, StorageError> {
        let persistence = DirPersistence::open(state_dir)?;
        Self::with_persistence(Box::new(persistence), backend, rng, options)
    }

    /// Opens the keystore of `backend` kept by `persistence`.
    pub fn with_persistence(
        mut persistence: Box<dyn Persistence>,
        mut backend: B,
        mut rng: R,
        options: KeystoreOptions,
    ) -> Result<Self, StorageError> {
        persistence.remove_stale_temporaries("")?;
        persistence.remove_stale_temporaries(CREDENTIALS_DIR)?;
        let master = load_or_create_master_key(persistence.as_mut(), &mut backend, &mut rng)?;
        let keys = Keys::derive(&master);
        drop(master);

        let mut store = Store {
            backend,
            persistence,
            rng,
            keys,
            index: Index::default(),
            counter: Counter {
                next: 0,
                limit: 0,
                nv: None,
            },
            state: HashMap::new(),
            options,
            damaged: Vec::new(),
            pin: None,
            pin_secret: None,
            pin_failures: None,
            pin_lost: false,
            dictionary_attack: None,
            notices: Vec::new(),
        };
        if let Some(reason) = store.backend.no_counters_reason() {
            store.notices.push(reason.to_owned());
        }
        let (stored, stored_nv) = store.load_counter()?;
        store.counter = Counter {
            next: stored,
            limit: stored,
            nv: None,
        };
        store.check_counter_rollback(stored_nv)?;
        store.load_records()?;
        store.load_state()?;
        store.load_pin()?;
        // Last: a store that cannot open (a state file it refuses) leaves the counter as it was.
        store.reserve_counter_block()?;
        store.dictionary_attack = store.backend.dictionary_attack()?;
        Ok(store)
    }

    /// What happened that the person should hear about: a state directory put back from an
    /// older copy (a rollback), a TPM in dictionary-attack lockout, a TPM without NV counters.
    /// Each is returned once.
    pub fn take_notices(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notices)
    }

    /// Record files that could not be read at open and were renamed to `*.damaged` (their new
    /// paths), for the daemon to log. They are left for a person to look at; `reset` removes
    /// them.
    pub fn damaged_files(&self) -> &[PathBuf] {
        &self.damaged
    }

    pub fn options(&self) -> &KeystoreOptions {
        &self.options
    }

    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// Which backend keeps the keys, what the TPM is, how many credentials are stored: what
    /// the start-up log and `fido2ctl status` show.
    pub fn status(&self) -> KeystoreStatus {
        KeystoreStatus {
            backend: self.backend.kind(),
            tpm: self.backend.tpm_info().cloned(),
            location: self.persistence.location("").components().collect(),
            discoverable_credentials: self.index.len(),
            remaining_discoverable_credentials: self.remaining(),
            dictionary_attack: self.dictionary_attack.clone(),
            rollback_protection: self.backend.kind() == crate::BackendKind::Tpm
                && self.backend.no_counters_reason().is_none(),
        }
    }

    /// [`Store::status`] with the TPM's dictionary-attack state read again (a TPM command).
    pub fn refresh_status(&mut self) -> KeystoreStatus {
        if let Ok(Some(state)) = self.backend.dictionary_attack() {
            self.dictionary_attack = Some(state);
        }
        self.status()
    }

    /// The longest credential ID this store issues: a non-discoverable credential with the
    /// largest key material and every extension (getInfo maxCredentialIdLength).
    pub fn max_credential_id_len(&self) -> usize {
        credential_id::id_len(
            self.backend.max_key_material_len(),
            credential_id::MAX_EXTRAS_LEN,
        )
    }

    fn remaining(&self) -> usize {
        self.options
            .max_discoverable
            .saturating_sub(self.index.len())
    }

    fn random<const N: usize>(&mut self) -> [u8; N] {
        let mut bytes = [0u8; N];
        self.rng.fill_bytes(&mut bytes);
        bytes
    }

    // ---- signature counter ----

    /// The stored counter limit (1 for a new store: 0 would tell RPs "no counter") and, in a
    /// TPM store's file, the NV counter value its block was reserved at.
    fn load_counter(&mut self) -> Result<(u64, Option<u64>), StorageError> {
        // Finish or roll back an interrupted reset: `counter.next` is sealed with the new master
        // key, so it opens exactly when the new key was committed.
        if let Some(bytes) = self.persistence.read(COUNTER_NEXT_FILE)? {
            let committed = open_counter(&self.keys, &bytes)
                .ok()
                .map(|(limit, _)| limit);
            let current = self
                .persistence
                .read(COUNTER_FILE)?
                .and_then(|bytes| open_counter(&self.keys, &bytes).ok())
                .map(|(limit, _)| limit);
            match (committed, current) {
                // Committed, and `counter` is still the old key's: the reset stopped before
                // its end. Its last steps are done now, so nothing of the old key is left to
                // be mistaken for this key's state.
                (Some(_), None) => {
                    let stale = self.files_a_reset_removes()?;
                    self.persistence.remove(&stale)?;
                    self.persistence.rename(COUNTER_NEXT_FILE, COUNTER_FILE)?;
                }
                // The counter never goes back: were `counter` sealed under this key too (a
                // reset does not leave that, a restored or forged file could), the larger
                // value stays.
                (Some(next), Some(current)) if current < next => {
                    self.persistence.rename(COUNTER_NEXT_FILE, COUNTER_FILE)?;
                }
                _ => self.persistence.remove(&[COUNTER_NEXT_FILE.to_owned()])?,
            }
        }
        match self.persistence.read(COUNTER_FILE)? {
            None => Ok((1, None)),
            Some(bytes) => {
                open_counter(&self.keys, &bytes).map_err(|reason| StorageError::Corrupt {
                    kind: "counter file",
                    path: self.persistence.location(COUNTER_FILE),
                    reason: reason.into(),
                })
            }
        }
    }

    fn seal_counter(&mut self, limit: u64, nv: Option<u64>) -> Vec<u8> {
        let nonce = self.random::<NONCE_LEN>();
        let mut plaintext = limit.to_be_bytes().to_vec();
        if let Some(nv) = nv {
            plaintext.extend_from_slice(&nv.to_be_bytes());
        }
        counter_file(&self.keys, &nonce, &plaintext)
    }

    fn signature_counter_handle(&self) -> u32 {
        nv_handle(&self.keys.key_id, NV_SIGNATURE_COUNTER)
    }

    /// Reads the TPM's signature counter; a counter file reserved at a lower value was put
    /// back from an older copy of the state directory: the person hears of it. The values
    /// handed out come from the TPM's counter, so they go on above everything seen anyway.
    fn check_counter_rollback(&mut self, stored_nv: Option<u64>) -> Result<(), StorageError> {
        let handle = self.signature_counter_handle();
        let Some(counters) = self.backend.monotonic_counters() else {
            return Ok(());
        };
        let current = counters.read(handle)?;
        self.counter.nv = current;
        if let (Some(stored), Some(current)) = (stored_nv, current) {
            if stored < current {
                self.notices.push(format!(
                    "rollback: {} was written when the TPM's signature counter (NV index \
                     {handle:#010x}) was {stored}, and it is {current} now: the state \
                     directory was put back from an older copy. The signature counter goes on \
                     from the TPM's value, above every value handed out before",
                    self.persistence.location(COUNTER_FILE).display()
                ));
            }
        }
        Ok(())
    }

    fn reserve_counter_block(&mut self) -> Result<(), StorageError> {
        let handle = self.signature_counter_handle();
        if self.backend.monotonic_counters().is_none() {
            let limit = self
                .counter
                .next
                .checked_add(COUNTER_BLOCK)
                .ok_or(StorageError::CounterExhausted)?;
            let sealed = self.seal_counter(limit, None);
            self.persistence.write(COUNTER_FILE, &sealed)?;
            self.counter.limit = limit;
            return Ok(());
        }
        // The block of NV value v is [v * BLOCK, (v + 1) * BLOCK): one NV increment per block.
        let block_limit = |nv: u64| {
            nv.checked_add(1)
                .and_then(|n| n.checked_mul(COUNTER_BLOCK))
                .ok_or(StorageError::CounterExhausted)
        };
        if let Some(current) = self.counter.nv {
            // Written before the increment: a crash in between leaves a file one ahead of the
            // TPM, which is not mistaken for a rollback.
            let intent = current + 1;
            let sealed = self.seal_counter(block_limit(intent)?, Some(intent));
            self.persistence.write(COUNTER_FILE, &sealed)?;
        }
        let counters = self
            .backend
            .monotonic_counters()
            .expect("checked above: the backend has counters");
        let mut value = counters.increment(handle)?;
        // The first block after a counter file of an older format (or an older state
        // directory) lies above everything handed out before: an increment per block until it
        // does, once.
        while value.saturating_mul(COUNTER_BLOCK) < self.counter.next {
            value = counters.increment(handle)?;
        }
        let limit = block_limit(value)?;
        if self.counter.nv.map(|current| current + 1) != Some(value) {
            let sealed = self.seal_counter(limit, Some(value));
            self.persistence.write(COUNTER_FILE, &sealed)?;
        }
        self.counter.nv = Some(value);
        self.counter.next = self.counter.next.max(value * COUNTER_BLOCK);
        self.counter.limit = limit;
        Ok(())
    }

    /// The next value of the persisted sequence shared by the signature counter and the
    /// creation order of discoverable credentials.
    fn next_sequence(&mut self) -> Result<u64, StorageError> {
        if self.counter.next >= self.counter.limit {
            self.reserve_counter_block()?;
        }
        let value = self.counter.next;
        self.counter.next += 1;
        Ok(value)
    }

    // ---- records ----

    fn load_records(&mut self) -> Result<(), StorageError> {
        let mut names = self.persistence.list(CREDENTIALS_DIR)?;
        names.sort();
        let mut duplicates = Vec::new();
        for name in names {
            if !name.ends_with(record::SUFFIX) {
                continue;
            }
            let path = join(CREDENTIALS_DIR, &name);
            let Some(bytes) = self.persistence.read(&path)? else {
                continue;
            };
            let Ok((id, record)) = self.open_record(&name, &bytes) else {
                self.set_aside(&path)?;
                continue;
            };
            // Two records for one (RP, user): a replacement was interrupted between writing the
            // new record and removing the old one. Finish it: the newer one wins.
            if let Some(other) = self.index.same_user(&record.rp_id_hash, &record.user.id) {
                if self.index.records[&other].created > record.created {
                    duplicates.push(path);
                    continue;
                }
                self.index.remove(&other);
                duplicates.push(join(CREDENTIALS_DIR, &record::file_name(&other)));
            }
            self.index.insert(id, record);
        }
        self.persistence.remove(&duplicates)
    }

    /// Opens the record file `name`; the error is why it is unusable.
    fn open_record(&self, name: &str, bytes: &[u8]) -> Result<(FileId, Record), &'static str> {
        open_record(&self.keys, self.backend.id_version(), name, bytes)
    }

    // ---- state slots ----

    /// Reads every state slot. A file that does not open under this master key is an error and
    /// stays where it is: damaged, or sealed under another key (restored from another store,
    /// or a flipped byte in its header). Either way the key's state is not what it holds, and
    /// reading it as empty would forget the PIN and the settings. (An interrupted reset leaves
    /// no such file: `load_counter` finishes it first.)
    fn load_state(&mut self) -> Result<(), StorageError> {
        for slot in StateSlot::ALL {
            let name = state_file::file_name(slot);
            let Some(bytes) = self.persistence.read(&name)? else {
                continue;
            };
            match state_file::open(&self.keys, slot, &bytes) {
                Ok(contents) => {
                    self.state.insert(slot, contents);
                }
                Err(err) => {
                    return Err(StorageError::Corrupt {
                        kind: "state file",
                        path: self.persistence.location(&name),
                        reason: err.reason().into(),
                    })
                }
            }
        }
        Ok(())
    }

    // ---- PIN (see `crate::pin` and PIN_AND_COUNTERS.md) ----

    /// The keys that bind UV-only secrets to the PIN, while the PIN's secret is known.
    fn uv_keys(&self) -> Option<UvKeys> {
        self.pin_secret.as_ref().map(UvKeys::derive)
    }

    /// The authorization of a credential's key: from the PIN's secret for a credProtect level
    /// 3 credential bound to the PIN (an error without it), else from the master secret.
    fn key_auth_of(&self, credential: &Credential) -> Result<KeyAuth, KeystoreError> {
        let level_3 = credential.extras.cred_protect == CredProtect::UserVerificationRequired;
        let pin_bound = if credential.discoverable {
            self.index.get(&credential.id).is_some_and(|r| r.pin_bound)
        } else {
            credential_id::unwrap(
                &self.keys.wrap,
                self.backend.id_version(),
                &credential.rp_id_hash,
                &credential.id,
            )
            .is_some_and(|unwrapped| unwrapped.pin_bound)
        };
        if !(level_3 && pin_bound) {
            return Ok(self.keys.key_auth(&credential.rp_id_hash));
        }
        self.uv_keys()
            .map(|uv| uv.key_auth(&credential.rp_id_hash))
            .ok_or_else(|| {
                KeystoreError::Failure(
                    "this credential (credProtect level 3) is bound to the PIN, which was not \
                     verified since fido2d started"
                        .into(),
                )
            })
    }

    fn pin_failures_handle(&self) -> u32 {
        nv_handle(&self.keys.key_id, NV_PIN_FAILURES)
    }

    /// Reads `pin.state` and squares it with the TPM's PIN failure counter: moves a count kept
    /// in the file to the counter, notices a file put back from an older copy (and counts
    /// from the TPM anyway), and a PIN whose file is gone altogether (blocked, not absent).
    fn load_pin(&mut self) -> Result<(), StorageError> {
        let record =
            match self.persistence.read(PIN_FILE)? {
                None => None,
                Some(bytes) => match state_file::open_named(&self.keys, PIN_NAME, &bytes) {
                    Ok(contents) => Some(PinRecord::decode(&contents).map_err(|reason| {
                        StorageError::Corrupt {
                            kind: "PIN file",
                            path: self.persistence.location(PIN_FILE),
                            reason: reason.into(),
                        }
                    })?),
                    // Never "no PIN": a PIN file this key cannot open is an error.
                    Err(err) => {
                        return Err(StorageError::Corrupt {
                            kind: "PIN file",
                            path: self.persistence.location(PIN_FILE),
                            reason: err.reason().into(),
                        })
                    }
                },
            };
        let handle = self.pin_failures_handle();
        let location = self.persistence.location(PIN_FILE);
        let Some(counters) = self.backend.monotonic_counters() else {
            self.pin = record;
            return Ok(());
        };
        let failures = counters.read(handle)?;
        self.pin_failures = failures;
        let Some(mut record) = record else {
            if let Some(failures) = failures {
                self.pin_lost = true;
                self.notices.push(format!(
                    "rollback: a PIN was set on this key (the TPM counts its failed tries in \
                     NV index {handle:#010x}, now {failures}) but {} is missing: the state \
                     directory was put back from a copy older than the PIN. The PIN counts as \
                     blocked; only a reset (fido2ctl reset) makes the key usable with a PIN again",
                    location.display()
                ));
            }
            return Ok(());
        };
        match (record.accounting, failures) {
            // Counted in the file (a TPM that had no counters then, or a crash while the PIN
            // was being set): from now on the TPM counts.
            (Accounting::InFile { retries }, _) => {
                record.accounting = self.nv_accounting(retries)?;
                self.write_pin(&record)?;
            }
            (Accounting::Nv { base, seen }, Some(failures)) if seen < failures => {
                let left = retries_left(base, failures);
                self.notices.push(format!(
                    "rollback: {} was written when the TPM had counted {seen} failed PIN tries \
                     (NV index {handle:#010x}), and it has counted {failures}: the state \
                     directory was put back from an older copy. The PIN retries are counted \
                     from the TPM: {left} left",
                    location.display()
                ));
                record.accounting = Accounting::Nv {
                    base,
                    seen: failures,
                };
                self.write_pin(&record)?;
            }
            (Accounting::Nv { .. }, Some(_)) => {}
            // The counter is gone (deleted by hand, or a reset that stopped half-way): a new
            // one, with no more retries than the file had.
            (Accounting::Nv { base, seen }, None) => {
                let left = retries_left(base, seen);
                self.notices.push(format!(
                    "the TPM's PIN failure counter (NV index {handle:#010x}) is gone; a new one \
                     counts from {left} retries left, as {} says",
                    location.display()
                ));
                record.accounting = self.nv_accounting(left)?;
                self.write_pin(&record)?;
            }
        }
        self.pin = Some(record);
        Ok(())
    }

    /// NV accounting that leaves `retries`: the PIN failure counter's value (created if
    /// needed) as `seen`, and a base `MAX - retries` below it.
    fn nv_accounting(&mut self, retries: u8) -> Result<Accounting, StorageError> {
        let handle = self.pin_failures_handle();
        let spent = u64::from(MAX_PIN_RETRIES.saturating_sub(retries));
        let counters = self
            .backend
            .monotonic_counters()
            .expect("only called with counters");
        let mut failures = match counters.read(handle)? {
            Some(value) => value,
            None => counters.increment(handle)?,
        };
        while failures < spent {
            failures = counters.increment(handle)?;
        }
        self.pin_failures = Some(failures);
        Ok(Accounting::Nv {
            base: failures - spent,
            seen: failures,
        })
    }

    fn write_pin(&mut self, record: &PinRecord) -> Result<(), StorageError> {
        let nonce = self.random::<NONCE_LEN>();
        let sealed = state_file::seal_named(&self.keys, &nonce, PIN_NAME, &record.encode());
        self.persistence.write(PIN_FILE, &sealed)?;
        self.pin = Some(record.clone());
        Ok(())
    }

    /// The retries left; `None` without a PIN.
    fn pin_retries_left(&self) -> Option<u8> {
        if self.pin_lost {
            return Some(0);
        }
        Some(match self.pin.as_ref()?.accounting {
            Accounting::InFile { retries } => retries.min(MAX_PIN_RETRIES),
            Accounting::Nv { base, seen } => retries_left(base, self.pin_failures.unwrap_or(seen)),
        })
    }

    /// Spends a retry, durably, before a PIN is compared.
    fn spend_pin_retry(&mut self, record: &mut PinRecord) -> Result<(), StorageError> {
        match record.accounting {
            Accounting::InFile { retries } => {
                record.accounting = Accounting::InFile {
                    retries: retries.saturating_sub(1),
                };
                self.write_pin(record)
            }
            Accounting::Nv { base, .. } => {
                let handle = self.pin_failures_handle();
                let current = self.pin_failures.unwrap_or(0);
                // The file first: a crash before the increment leaves it one ahead of the
                // TPM (the try was not spent), never behind (which would read as a rollback).
                record.accounting = Accounting::Nv {
                    base,
                    seen: current + 1,
                };
                self.write_pin(record)?;
                let counters = self
                    .backend
                    .monotonic_counters()
                    .expect("NV accounting needs counters");
                let value = counters.increment(handle)?;
                self.pin_failures = Some(value);
                if value != current + 1 {
                    record.accounting = Accounting::Nv { base, seen: value };
                    self.write_pin(record)?;
                }
                Ok(())
            }
        }
    }

    /// The right PIN: the retries are full again.
    fn restore_pin_retries(&mut self, record: &mut PinRecord) -> Result<(), StorageError> {
        record.accounting = match record.accounting {
            Accounting::InFile { .. } => Accounting::InFile {
                retries: MAX_PIN_RETRIES,
            },
            Accounting::Nv { seen, .. } => {
                let failures = self.pin_failures.unwrap_or(seen);
                Accounting::Nv {
                    base: failures,
                    seen: failures,
                }
            }
        };
        self.write_pin(record)
    }

    /// Gives back the retry spent for a try the TPM refused to make (lockout).
    fn refund_pin_retry(&mut self, record: &mut PinRecord) -> Result<(), StorageError> {
        record.accounting = match record.accounting {
            Accounting::InFile { retries } => Accounting::InFile {
                retries: (retries + 1).min(MAX_PIN_RETRIES),
            },
            Accounting::Nv { base, seen } => Accounting::Nv {
                base: base + 1,
                seen,
            },
        };
        self.write_pin(record)
    }

    fn lockout_notice(&mut self) {
        let state = self
            .dictionary_attack
            .as_ref()
            .map_or_else(|| "in lockout".to_owned(), ToString::to_string);
        self.notices.push(format!(
            "the TPM is in dictionary-attack lockout ({state}): it checks no PIN until it \
             forgives a failure, so PIN use is refused with CTAP2_ERR_PIN_AUTH_BLOCKED and no \
             PIN retry is spent; the owner of the TPM can end the lockout with \
             tpm2_dictionarylockout -c"
        ));
    }

    /// Every file sealed under the master key that a reset replaces: the records (and those
    /// set aside), the state files and the PIN file.
    fn files_a_reset_removes(&self) -> Result<Vec<String>, StorageError> {
        Ok(self
            .persistence
            .list(CREDENTIALS_DIR)?
            .into_iter()
            .map(|name| join(CREDENTIALS_DIR, &name))
            .chain(StateSlot::ALL.map(state_file::file_name))
            .chain([PIN_FILE.to_owned()])
            .collect())
    }

    /// Renames a record that cannot be read to `<name>.damaged` (or `.damaged.N`), never
    /// deleting it.
    fn set_aside(&mut self, path: &str) -> Result<(), StorageError> {
        let mut target = format!("{path}{DAMAGED_SUFFIX}");
        let mut n = 1;
        while self.persistence.exists(&target)? {
            n += 1;
            target = format!("{path}{DAMAGED_SUFFIX}.{n}");
        }
        self.persistence.rename(path, &target)?;
        self.damaged.push(self.persistence.location(&target));
        Ok(())
    }

    fn seal_record(&mut self, record: &Record) -> Result<(String, Vec<u8>), KeystoreError> {
        let name = record::file_name(&record::file_id(&record.credential_id));
        let nonce = self.random::<NONCE_LEN>();
        let sealed = record
            .seal(&self.keys.record, &nonce, &name)
            .map_err(|too_large| {
                KeystoreError::Failure(format!("{} too large to store", too_large.0))
            })?;
        Ok((name, sealed))
    }

    fn store_record(&mut self, record: Record) -> Result<(), KeystoreError> {
        let id = record::file_id(&record.credential_id);
        let (name, sealed) = self.seal_record(&record)?;
        // Write the new record first, then remove the one it replaces: a crash in between
        // leaves both, and the next open keeps the newer.
        let replaced = self.index.same_user(&record.rp_id_hash, &record.user.id);
        self.persistence
            .write(&join(CREDENTIALS_DIR, &name), &sealed)?;
        let mut removed = Vec::new();
        if let Some(old) = replaced {
            self.index.remove(&old);
            removed.push(join(CREDENTIALS_DIR, &record::file_name(&old)));
        }
        self.index.insert(id, record);
        self.persistence.remove(&removed)?;
        Ok(())
    }
}

/// Retries left when the TPM has counted `failures` failed tries and the last right PIN (or
/// setting it) came at `base`.
fn retries_left(base: u64, failures: u64) -> u8 {
    let spent = failures.saturating_sub(base);
    MAX_PIN_RETRIES.saturating_sub(u8::try_from(spent).unwrap_or(u8::MAX))
}

fn credential_from_record(record: &Record, uv: Option<&UvKeys>) -> Credential {
    let (extras, uv_secrets_locked) =
        reveal(&record.extras, record.pin_bound, &record.credential_id, uv);
    Credential {
        id: record.credential_id.clone(),
        rp_id_hash: record.rp_id_hash,
        rp_id: Some(record.rp_id.clone()),
        algorithm: record.algorithm,
        discoverable: true,
        user: Some(record.user.clone()),
        created: record.created,
        key: record.key.clone(),
        extras,
        uv_secrets_locked,
    }
}

/// A credential's extras as the protocol gets them: stored ones as they are; bound ones freed
/// with the PIN's keys, or without them (the PIN not verified since the store opened) with
/// their UV-only secrets left out, and locked.
fn reveal(
    stored: &CredentialExtras,
    pin_bound: bool,
    credential_id: &[u8],
    uv: Option<&UvKeys>,
) -> (CredentialExtras, bool) {
    if !pin_bound {
        return (stored.clone(), false);
    }
    match (uv, credential_id::nonce(credential_id)) {
        (Some(uv), Some(nonce)) => {
            let mut extras = stored.clone();
            uv.toggle(nonce, &mut extras);
            (extras, false)
        }
        _ => (pin::locked_view(stored), true),
    }
}

/// Opens the record file `name` of a store whose credential IDs have `id_version`; the error
/// is why it is unusable.
pub(crate) fn open_record(
    keys: &Keys,
    id_version: u8,
    name: &str,
    bytes: &[u8],
) -> Result<(FileId, Record), &'static str> {
    let opened = Record::open(&keys.record, name, bytes)?;
    let id = record::parse_file_name(name).ok_or("unexpected file name")?;
    if record::file_id(&opened.record.credential_id) != id {
        return Err("file name does not match the credential");
    }
    let unwrapped = credential_id::unwrap(
        &keys.wrap,
        id_version,
        &opened.record.rp_id_hash,
        &opened.record.credential_id,
    )
    .filter(|unwrapped| unwrapped.discoverable)
    .ok_or("the credential ID is not a discoverable one of this keystore")?;
    let mut record = opened.record;
    if opened.key_in_id {
        // Format 1 kept the key material and extension state in the credential ID.
        record.key = unwrapped.key;
        record.extras = unwrapped.extras;
    }
    record.pin_bound = unwrapped.pin_bound;
    Ok((id, record))
}

/// The counter file sealing `plaintext`: the limit, 8 bytes big-endian (version 1), then the
/// TPM NV counter value of its block, 8 more (version 2).
pub(crate) fn counter_file(keys: &Keys, nonce: &[u8; NONCE_LEN], plaintext: &[u8]) -> Vec<u8> {
    let version = if plaintext.len() == 16 {
        COUNTER_VERSION_NV
    } else {
        COUNTER_VERSION
    };
    let mut out = Vec::with_capacity(COUNTER_MAGIC.len() + 1 + NONCE_LEN + plaintext.len() + 16);
    out.extend_from_slice(COUNTER_MAGIC);
    out.push(version);
    out.extend_from_slice(nonce);
    crypto::seal_into(
        &keys.counter,
        nonce,
        &counter_aad(version),
        plaintext,
        &mut out,
    );
    out
}

fn counter_aad(version: u8) -> Vec<u8> {
    let mut aad = COUNTER_MAGIC.to_vec();
    aad.push(version);
    aad.extend_from_slice(COUNTER_FILE.as_bytes());
    aad
}

/// The limit and, in a version 2 file, the NV counter value.
pub(crate) fn open_counter(keys: &Keys, bytes: &[u8]) -> Result<(u64, Option<u64>), &'static str> {
    let header = COUNTER_MAGIC.len() + 1;
    if bytes.len() < header + NONCE_LEN {
        return Err("truncated");
    }
    if &bytes[..COUNTER_MAGIC.len()] != COUNTER_MAGIC {
        return Err("bad magic");
    }
    let version = bytes[COUNTER_MAGIC.len()];
    if version != COUNTER_VERSION && version != COUNTER_VERSION_NV {
        return Err("unsupported version");
    }
    let nonce: &[u8; NONCE_LEN] = bytes[header..header + NONCE_LEN]
        .try_into()
        .map_err(|_| "truncated")?;
    let plaintext = crypto::open(
        &keys.counter,
        nonce,
        &counter_aad(version),
        &bytes[header + NONCE_LEN..],
    )
    .ok_or("authentication failed")?;
    let number = |at: usize| -> Result<u64, &'static str> {
        let value: [u8; 8] = plaintext
            .get(at..at + 8)
            .and_then(|b| b.try_into().ok())
            .ok_or("bad length")?;
        Ok(u64::from_be_bytes(value))
    };
    match (version, plaintext.len()) {
        (COUNTER_VERSION, 8) => Ok((number(0)?, None)),
        (COUNTER_VERSION_NV, 16) => Ok((number(0)?, Some(number(8)?))),
        _ => Err("bad length"),
    }
}

/// Reads the backend's master-secret file, or creates it if the store is new.
fn load_or_create_master_key(
    persistence: &mut dyn Persistence,
    backend: &mut impl KeyBackend,
    rng: &mut impl Rng,
) -> Result<MasterKey, StorageError> {
    let file = backend.master_file();
    if let Some(bytes) = persistence.read(file)? {
        return unseal_master(persistence, backend, &bytes);
    }
    // Another backend's state directory: its credentials would be lost to a second master key.
    for (other, kind) in MASTER_FILES {
        if other != file && persistence.exists(other)? {
            return Err(StorageError::OtherBackend {
                path: persistence.location(other),
                found: kind,
                wanted: backend.kind(),
            });
        }
    }
    // A missing key beside data sealed with it: creating a new key would orphan that data.
    let leftover = [COUNTER_FILE, COUNTER_NEXT_FILE]
        .into_iter()
        .map(str::to_owned)
        .chain(
            persistence
                .list(CREDENTIALS_DIR)?
                .into_iter()
                .filter(|name| name.ends_with(record::SUFFIX))
                .map(|name| join(CREDENTIALS_DIR, &name)),
        )
        .try_fold(None, |found, name| -> Result<_, StorageError> {
            Ok(match found {
                Some(found) => Some(found),
                None => persistence.exists(&name)?.then_some(name),
            })
        })?;
    if let Some(found) = leftover {
        return Err(StorageError::MissingMasterKey {
            path: persistence.location(file),
            found: persistence.location(&found),
        });
    }
    let master = MasterKey::generate(|bytes| rng.fill_bytes(bytes));
    let sealed = backend.seal_master(&master)?;
    if persistence.create_new(file, &sealed)? {
        return Ok(master);
    }
    // Another process created it first: use theirs.
    let bytes = persistence
        .read(file)?
        .ok_or_else(|| StorageError::Corrupt {
            kind: "master key file",
            path: persistence.location(file),
            reason: "vanished while being created".into(),
        })?;
    unseal_master(persistence, backend, &bytes)
}

fn unseal_master(
    persistence: &dyn Persistence,
    backend: &mut impl KeyBackend,
    bytes: &[u8],
) -> Result<MasterKey, StorageError> {
    backend.unseal_master(bytes).map_err(|err| match err {
        UnsealError::Corrupt(reason) => StorageError::Corrupt {
            kind: "master key file",
            path: persistence.location(backend.master_file()),
            reason,
        },
        UnsealError::Refused(err) => err,
    })
}

impl<B: KeyBackend, R: Rng> Keystore for Store<B, R> {
    fn supports(&self, algorithm: Algorithm) -> bool {
        self.backend.supports(algorithm)
    }

    fn create_credential(
        &mut self,
        new: &NewCredential<'_>,
    ) -> Result<(Credential, PublicKey), KeystoreError> {
        if !self.backend.supports(new.algorithm) {
            return Err(KeystoreError::Failure(format!(
                "the {} keystore cannot create {:?} keys",
                self.backend.kind(),
                new.algorithm
            )));
        }
        if new.discoverable
            && self.index.len() >= self.options.max_discoverable
            && self.index.same_user(new.rp_id_hash, &new.user.id).is_none()
        {
            return Err(KeystoreError::Full);
        }
        // With the PIN's secret at hand (the PIN was verified since the store opened), what the
        // credential gives only with UV is bound to the PIN (see `crate::pin::UvKeys`).
        let uv = self.uv_keys();
        let level_3 = new.extras.cred_protect == CredProtect::UserVerificationRequired;
        let auth = match (&uv, level_3) {
            (Some(uv), true) => uv.key_auth(new.rp_id_hash),
            _ => self.keys.key_auth(new.rp_id_hash),
        };
        let (key, public) = self.backend.generate(new.algorithm, &auth, &mut self.rng)?;
        let nonce = self.random::<NONCE_LEN>();
        let mut stored_extras = new.extras.clone();
        if let Some(uv) = &uv {
            uv.toggle(&nonce, &mut stored_extras);
        }
        let pin_bound = uv.is_some();

        if !new.discoverable {
            // Nothing is stored: the ID is the credential. Its RP ID, user and creation time are
            // not known when it comes back, so they are left out here too.
            let id = credential_id::wrap_bound(
                &self.keys.wrap,
                self.backend.id_version(),
                &nonce,
                new.rp_id_hash,
                (false, pin_bound),
                new.algorithm,
                key.as_bytes(),
                &stored_extras,
            );
            let credential = Credential {
                id,
                rp_id_hash: *new.rp_id_hash,
                rp_id: None,
                algorithm: new.algorithm,
                discoverable: false,
                user: None,
                created: 0,
                key,
                extras: new.extras.clone(),
                uv_secrets_locked: false,
            };
            return Ok((credential, public));
        }

        // A discoverable credential's key material and extension state stay in its record:
        // the ID only names it (and proves it is ours), so deleting the record destroys them.
        let id = credential_id::wrap_bound(
            &self.keys.wrap,
            self.backend.id_version(),
            &nonce,
            new.rp_id_hash,
            (true, pin_bound),
            new.algorithm,
            &[],
            &CredentialExtras::default(),
        );
        let created = self.next_sequence()?;
        let record = Record {
            credential_id: id,
            rp_id: new.rp.id.clone(),
            rp_id_hash: *new.rp_id_hash,
            user: new.user.clone(),
            algorithm: new.algorithm,
            created,
            key,
            extras: stored_extras,
            pin_bound,
        };
        let credential = credential_from_record(&record, uv.as_ref());
        self.store_record(record)?;
        Ok((credential, public))
    }

    fn find_credential(
        &mut self,
        rp_id_hash: &[u8; 32],
        credential_id: &[u8],
    ) -> Result<Option<Credential>, KeystoreError> {
        let Some(unwrapped) = credential_id::unwrap(
            &self.keys.wrap,
            self.backend.id_version(),
            rp_id_hash,
            credential_id,
        ) else {
            return Ok(None);
        };
        let uv = self.uv_keys();
        if !unwrapped.discoverable {
            let (extras, uv_secrets_locked) = reveal(
                &unwrapped.extras,
                unwrapped.pin_bound,
                credential_id,
                uv.as_ref(),
            );
            return Ok(Some(Credential {
                id: credential_id.to_vec(),
                rp_id_hash: *rp_id_hash,
                rp_id: None,
                algorithm: unwrapped.algorithm,
                discoverable: false,
                user: None,
                created: 0,
                key: unwrapped.key,
                extras,
                uv_secrets_locked,
            }));
        }
        // A discoverable ID is valid only while its record exists: deleting or replacing the
        // record revokes it.
        Ok(self
            .index
            .get(credential_id)
            .filter(|r| r.rp_id_hash == *rp_id_hash)
            .map(|record| credential_from_record(record, uv.as_ref())))
    }

    /// Newest first.
    fn discoverable_credentials(
        &mut self,
        rp_id_hash: &[u8; 32],
    ) -> Result<Vec<Credential>, KeystoreError> {
        let uv = self.uv_keys();
        let mut credentials: Vec<Credential> = self
            .index
            .by_rp
            .get(rp_id_hash)
            .into_iter()
            .flatten()
            .map(|id| credential_from_record(&self.index.records[id], uv.as_ref()))
            .collect();
        credentials.sort_by_key(|c| std::cmp::Reverse(c.created));
        Ok(credentials)
    }

    fn all_discoverable_credentials(&mut self) -> Result<Vec<Credential>, KeystoreError> {
        let uv = self.uv_keys();
        Ok(self
            .index
            .records
            .values()
            .map(|record| credential_from_record(record, uv.as_ref()))
            .collect())
    }

    fn discoverable_count(&self) -> usize {
        self.index.len()
    }

    fn delete_credential(&mut self, credential_id: &[u8]) -> Result<bool, KeystoreError> {
        if self.index.get(credential_id).is_none() {
            return Ok(false);
        }
        let id = record::file_id(credential_id);
        self.persistence
            .remove(&[join(CREDENTIALS_DIR, &record::file_name(&id))])?;
        self.index.remove(&id);
        Ok(true)
    }

    fn update_user(
        &mut self,
        credential_id: &[u8],
        user: &UserEntity,
    ) -> Result<bool, KeystoreError> {
        let Some(mut record) = self.index.get(credential_id).cloned() else {
            return Ok(false);
        };
        let id = record::file_id(credential_id);
        record.user = user.clone();
        // Same credential ID, same file: the write replaces the record atomically.
        let (name, sealed) = self.seal_record(&record)?;
        self.persistence
            .write(&join(CREDENTIALS_DIR, &name), &sealed)?;
        self.index.remove(&id);
        self.index.insert(id, record);
        Ok(true)
    }

    fn public_key(&mut self, credential: &Credential) -> Result<PublicKey, KeystoreError> {
        self.backend
            .public_key(credential.algorithm, &credential.key)
    }

    fn sign(&mut self, credential: &Credential, message: &[u8]) -> Result<Vec<u8>, KeystoreError> {
        let auth = self.key_auth_of(credential)?;
        self.backend
            .sign(credential.algorithm, &credential.key, &auth, message)
    }

    fn next_signature_counter(&mut self) -> Result<u32, KeystoreError> {
        let value = self.next_sequence()?;
        u32::try_from(value).map_err(|_| StorageError::CounterExhausted.into())
    }

    fn remaining_discoverable_credentials(&self) -> usize {
        self.remaining()
    }

    fn read_state(&mut self, slot: StateSlot) -> Result<Option<Zeroizing<Vec<u8>>>, KeystoreError> {
        Ok(self.state.get(&slot).cloned())
    }

    fn write_state(&mut self, slot: StateSlot, bytes: &[u8]) -> Result<(), KeystoreError> {
        let nonce = self.random::<NONCE_LEN>();
        let sealed = state_file::seal(&self.keys, &nonce, slot, bytes);
        self.persistence
            .write(&state_file::file_name(slot), &sealed)?;
        self.state.insert(slot, Zeroizing::new(bytes.to_vec()));
        Ok(())
    }

    fn pin_retries(&mut self) -> Result<Option<u8>, KeystoreError> {
        Ok(self.pin_retries_left())
    }

    fn set_pin(&mut self, pin_hash: &[u8; 16], retries: u8) -> Result<(), KeystoreError> {
        // changePIN keeps the secret the current PIN opened; a first PIN gets a new one.
        let secret = match &self.pin_secret {
            Some(secret) => secret.clone(),
            None => PinSecret::generate(|b| self.rng.fill_bytes(b)),
        };
        let auth = self.keys.pin_auth(pin_hash);
        let verifier = self.backend.seal_pin_secret(
            &auth,
            &secret,
            self.options.pin_hash_cost,
            &mut self.rng,
        )?;
        let retries = retries.min(MAX_PIN_RETRIES);
        let mut record = PinRecord {
            kind: self.backend.pin_verifier_kind(),
            verifier,
            accounting: Accounting::InFile { retries },
        };
        if self.backend.monotonic_counters().is_some() {
            if self.pin_failures.is_none() {
                // No counter yet: the PIN is durable first (counted in the file), so a crash
                // before the counter exists cannot leave a counter without its PIN (which
                // would read as a rollback to before the PIN).
                self.write_pin(&record)?;
            }
            record.accounting = self.nv_accounting(retries)?;
        }
        self.write_pin(&record)?;
        self.pin_secret = Some(secret);
        self.pin_lost = false;
        Ok(())
    }

    fn verify_pin(&mut self, pin_hash: &[u8]) -> Result<PinCheck, KeystoreError> {
        let Some(retries) = self.pin_retries_left() else {
            return Err(KeystoreError::Failure("no PIN is set".into()));
        };
        if retries == 0 {
            return Ok(PinCheck::Blocked);
        }
        let mut record = self.pin.clone().expect("retries come from the PIN file");
        // A TPM in lockout checks nothing: ask before spending a retry.
        if let Some(state) = self.backend.dictionary_attack()? {
            let in_lockout = state.in_lockout;
            self.dictionary_attack = Some(state);
            if in_lockout {
                self.lockout_notice();
                return Ok(PinCheck::LockedOut);
            }
        }
        self.spend_pin_retry(&mut record)?;
        let outcome = if pin_hash.len() == 16 {
            let auth = self.keys.pin_auth(pin_hash);
            self.backend.unseal_pin_secret(&record.verifier, &auth)?
        } else {
            PinUnseal::Wrong
        };
        match outcome {
            PinUnseal::Secret(secret) => {
                self.pin_secret = Some(secret);
                self.restore_pin_retries(&mut record)?;
                Ok(PinCheck::Match)
            }
            PinUnseal::Wrong => {
                if let Ok(Some(state)) = self.backend.dictionary_attack() {
                    self.dictionary_attack = Some(state);
                }
                Ok(PinCheck::Mismatch {
                    retries: self.pin_retries_left().unwrap_or(0),
                })
            }
            PinUnseal::LockedOut => {
                self.refund_pin_retry(&mut record)?;
                if let Ok(Some(state)) = self.backend.dictionary_attack() {
                    self.dictionary_attack = Some(state);
                }
                self.lockout_notice();
                Ok(PinCheck::LockedOut)
            }
        }
    }

    /// 1. seal the counter with a new master key into `counter.next`;
    /// 2. replace the master-secret file (the commit point: every old credential ID, record
    ///    and state file is now undecryptable, and every old TPM key's authorization is lost);
    /// 3. remove every file in `credentials/`, every state file and the PIN file;
    /// 4. rename `counter.next` over `counter` (the end: `counter.next` marks a reset under
    ///    way until every old file is gone).
    ///
    /// A crash before 2 leaves the old state (open drops `counter.next`); after 2 the new one
    /// (open does 3 and 4 again). So a file sealed under another key is never an interrupted
    /// reset's leftover, and open refuses it rather than reading it as empty.
    fn reset(&mut self) -> Result<(), KeystoreError> {
        // The TPM counters of this master key go first: a counter made later (the new
        // key's) starts above every value they had, so the signature counter stays above
        // everything handed out, even if the reset stops half-way.
        let handles = [self.signature_counter_handle(), self.pin_failures_handle()];
        if let Some(counters) = self.backend.monotonic_counters() {
            for handle in handles {
                counters.remove(handle)?;
            }
        }
        self.counter.nv = None;
        self.pin_failures = None;
        let master = MasterKey::generate(|b| self.rng.fill_bytes(b));
        let sealed_master = self.backend.seal_master(&master)?;
        let new_keys = Keys::derive(&master);
        drop(master);
        let old_keys = std::mem::replace(&mut self.keys, new_keys);
        let sealed_counter = self.seal_counter(self.counter.limit, None);
        let master_file = self.backend.master_file();
        let committed = self
            .persistence
            .write(COUNTER_NEXT_FILE, &sealed_counter)
            .and_then(|()| self.persistence.write(master_file, &sealed_master));
        if let Err(err) = committed {
            self.keys = old_keys;
            return Err(err.into());
        }
        drop(old_keys);
        self.index = Index::default();
        self.state.clear();
        self.damaged.clear();
        self.pin = None;
        self.pin_secret = None;
        self.pin_lost = false;
        let stale = self.files_a_reset_removes()?;
        self.persistence.remove(&stale)?;
        self.persistence.rename(COUNTER_NEXT_FILE, COUNTER_FILE)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file::{FileKeystore, SoftwareKeys};
    use crate::persistence::MemoryPersistence;
    use protocol::env::{KeyMaterial, RelyingParty};

    /// Deterministic and without short cycles: SHA-256 of a running counter.
    struct SeqRng(u64);

    impl Rng for SeqRng {
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            use sha2::Digest as _;
            for chunk in dest.chunks_mut(32) {
                self.0 += 1;
                let block = sha2::Sha256::digest(self.0.to_be_bytes());
                chunk.copy_from_slice(&block[..chunk.len()]);
            }
        }
    }

    /// A file keystore with default options on `files` (shared, so a test can reopen it).
    fn open_on(files: &MemoryPersistence) -> FileKeystore<SeqRng> {
        FileKeystore::with_persistence(
            Box::new(files.clone()),
            SoftwareKeys,
            SeqRng(1),
            KeystoreOptions::default(),
        )
        .unwrap()
    }

    fn create(store: &mut FileKeystore<SeqRng>, user: u8, discoverable: bool) -> Credential {
        let rp = RelyingParty {
            id: "example.com".into(),
            name: None,
        };
        let user = UserEntity {
            id: vec![user],
            ..UserEntity::default()
        };
        let new = NewCredential {
            rp: &rp,
            rp_id_hash: &[7; 32],
            user: &user,
            algorithm: Algorithm::Es256,
            discoverable,
            extras: &CredentialExtras::default(),
        };
        store.create_credential(&new).unwrap().0
    }

    #[test]
    fn in_memory_store_survives_a_restart_on_the_same_files() {
        let files = MemoryPersistence::new();
        let open = || open_on(&files);
        let mut store = open();
        let resident = create(&mut store, 1, true);
        let plain = create(&mut store, 2, false);
        let counter = store.next_signature_counter().unwrap();
        drop(store);

        let mut store = open();

        assert_eq!(
            store.find_credential(&[7; 32], &resident.id).unwrap(),
            Some(resident)
        );
        assert_eq!(
            store.find_credential(&[7; 32], &plain.id).unwrap(),
            Some(plain)
        );
        assert!(store.next_signature_counter().unwrap() > counter);
    }

    #[test]
    fn counter_writes_once_per_block() {
        let files = MemoryPersistence::new();
        let mut store = open_on(&files);
        let stored = || files.read(COUNTER_FILE).unwrap().unwrap().to_vec();
        let before = stored();

        let values: Vec<u32> = (0..COUNTER_BLOCK)
            .map(|_| store.next_signature_counter().unwrap())
            .collect();
        let unchanged = stored() == before;
        let next = store.next_signature_counter().unwrap();

        assert!(unchanged, "no write within a reserved block");
        assert_eq!(
            open_counter(&store.keys, &before),
            Ok((COUNTER_BLOCK + 1, None))
        );
        assert_eq!(values.first(), Some(&1));
        assert!(values.windows(2).all(|w| w[1] == w[0] + 1));
        assert_eq!(u64::from(next), COUNTER_BLOCK + 1);
        assert_eq!(
            open_counter(&store.keys, &stored()),
            Ok((2 * COUNTER_BLOCK + 1, None))
        );
    }

    #[test]
    fn a_lower_counter_next_under_the_current_key_does_not_move_the_counter_back() {
        let files = MemoryPersistence::new();
        let open = || open_on(&files);
        let mut store = open();
        let counter = store.next_signature_counter().unwrap();
        let lower = counter_file(&store.keys, &[3; NONCE_LEN], &0u64.to_be_bytes());
        drop(store);
        let mut writer = files.clone();
        writer.write(COUNTER_NEXT_FILE, &lower).unwrap();

        let mut store = open();

        assert!(store.next_signature_counter().unwrap() > counter);
        assert!(!files.exists(COUNTER_NEXT_FILE).unwrap());
    }

    #[test]
    fn a_full_store_refuses_new_discoverable_credentials_but_allows_replacement() {
        let mut store = FileKeystore::with_persistence(
            Box::new(MemoryPersistence::new()),
            SoftwareKeys,
            SeqRng(1),
            KeystoreOptions {
                max_discoverable: 2,
                ..KeystoreOptions::default()
            },
        )
        .unwrap();
        create(&mut store, 1, true);
        create(&mut store, 2, true);
        let rp = RelyingParty::default();
        let user = UserEntity {
            id: vec![3],
            ..UserEntity::default()
        };
        let new = NewCredential {
            rp: &rp,
            rp_id_hash: &[7; 32],
            user: &user,
            algorithm: Algorithm::EdDsa,
            discoverable: true,
            extras: &CredentialExtras::default(),
        };

        let full = store.create_credential(&new);
        create(&mut store, 2, true);
        create(&mut store, 4, false);

        assert_eq!(full.unwrap_err(), KeystoreError::Full);
        assert_eq!(store.remaining_discoverable_credentials(), 0);
        assert_eq!(store.discoverable_count(), 2);
    }

    #[test]
    fn debug_output_holds_no_key() {
        let mut store = FileKeystore::in_memory(SeqRng(1));
        let credential = create(&mut store, 1, true);

        let debug = format!("{store:?} {credential:?}");

        assert!(debug.contains("Store"));
        assert!(debug.contains("File"));
        assert!(debug.contains("redacted"));
        let key_hex = hex::encode(credential.key.as_bytes());
        assert!(!debug.contains(&key_hex));
        assert!(!debug.contains(&format!("{:?}", credential.key.as_bytes())));
    }

    #[test]
    fn a_format_1_record_keeps_working_with_the_key_from_its_id() {
        let files = MemoryPersistence::new();
        let open = || open_on(&files);
        let store = open();
        let (secret, public) = protocol::software_key::generate(Algorithm::Es256, |b| b.fill(0x42));
        let extras = CredentialExtras {
            cred_blob: Some(b"blob".to_vec()),
            ..CredentialExtras::default()
        };
        // Format 1 kept the key and extras in the discoverable credential's ID.
        let id = credential_id::wrap(
            &store.keys.wrap,
            credential_id::VERSION_SOFTWARE,
            &[3; NONCE_LEN],
            &[7; 32],
            true,
            Algorithm::Es256,
            secret.as_slice(),
            &extras,
        );
        let record = Record {
            credential_id: id.clone(),
            rp_id: "example.com".into(),
            rp_id_hash: [7; 32],
            user: UserEntity {
                id: vec![1],
                ..UserEntity::default()
            },
            algorithm: Algorithm::Es256,
            created: 5,
            key: KeyMaterial::new(secret.to_vec()),
            extras: extras.clone(),
            pin_bound: false,
        };
        let name = record::file_name(&record::file_id(&id));
        let file = record::format_1_file(&store.keys.record, &record, &name);
        drop(store);
        files
            .clone()
            .write(&join(CREDENTIALS_DIR, &name), &file)
            .unwrap();

        let mut store = open();
        let found = store.find_credential(&[7; 32], &id).unwrap().unwrap();
        let signature = store.sign(&found, b"message").unwrap();

        assert!(store.damaged_files().is_empty());
        assert_eq!(found.key.as_bytes(), secret.as_slice());
        assert_eq!(found.extras, extras);
        assert_eq!(
            store.discoverable_credentials(&[7; 32]).unwrap(),
            vec![found]
        );
        use p256::ecdsa::signature::Verifier as _;
        let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&public.raw).unwrap();
        let signature = p256::ecdsa::DerSignature::try_from(signature.as_slice()).unwrap();
        assert!(key.verify(b"message", &signature).is_ok());
    }
}
