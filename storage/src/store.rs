//! [`Store`]: the keystore logic every backend shares. A [`KeyBackend`] makes and uses the
//! private keys and keeps the master secret at rest; the store seals everything else with
//! subkeys of that master secret and keeps it in a [`Persistence`].

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use protocol::env::{
    Algorithm, Credential, CredentialExtras, Keystore, KeystoreError, NewCredential, PublicKey,
    Rng, StateSlot, UserEntity,
};
use zeroize::Zeroizing;

use crate::backend::{KeyBackend, UnsealError, MASTER_FILES};
use crate::credential_id;
use crate::crypto::{self, Keys, MasterKey, NONCE_LEN};
use crate::persistence::{join, DirPersistence, Persistence};
use crate::record::{self, FileId, Record};
use crate::state_file;
use crate::status::KeystoreStatus;
use crate::StorageError;

const COUNTER_FILE: &str = "counter";
/// The counter sealed with a new master key, written by [`Keystore::reset`] before the new key
/// is committed and renamed over [`COUNTER_FILE`] after.
const COUNTER_NEXT_FILE: &str = "counter.next";
const CREDENTIALS_DIR: &str = "credentials";
const DAMAGED_SUFFIX: &str = ".damaged";

const COUNTER_MAGIC: &[u8; 8] = b"FIDO2DCT";
const COUNTER_VERSION: u8 = 1;

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
}

impl KeystoreOptions {
    pub const DEFAULT_MAX_DISCOVERABLE: usize = 10_000;
}

impl Default for KeystoreOptions {
    fn default() -> Self {
        KeystoreOptions {
            max_discoverable: Self::DEFAULT_MAX_DISCOVERABLE,
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
            counter: Counter { next: 0, limit: 0 },
            state: HashMap::new(),
            options,
            damaged: Vec::new(),
        };
        let stored = store.load_counter()?;
        store.counter = Counter {
            next: stored,
            limit: stored,
        };
        store.reserve_counter_block()?;
        store.load_records()?;
        store.load_state()?;
        Ok(store)
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
        }
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

    /// The stored counter limit; 1 for a new store (0 would tell RPs "no counter").
    fn load_counter(&mut self) -> Result<u64, StorageError> {
        // Finish or roll back an interrupted reset: `counter.next` is sealed with the new master
        // key, so it opens exactly when the new key was committed.
        if let Some(bytes) = self.persistence.read(COUNTER_NEXT_FILE)? {
            let committed = open_counter(&self.keys, &bytes).ok();
            // The counter never goes back: were `counter` sealed under this key too (a reset
            // does not leave that, a restored or forged file could), the larger value stays.
            let current = self
                .persistence
                .read(COUNTER_FILE)?
                .and_then(|bytes| open_counter(&self.keys, &bytes).ok());
            match (committed, current) {
                (Some(next), current) if current.is_none_or(|current| current < next) => {
                    self.persistence.rename(COUNTER_NEXT_FILE, COUNTER_FILE)?;
                }
                _ => self.persistence.remove(&[COUNTER_NEXT_FILE.to_owned()])?,
            }
        }
        match self.persistence.read(COUNTER_FILE)? {
            None => Ok(1),
            Some(bytes) => {
                open_counter(&self.keys, &bytes).map_err(|reason| StorageError::Corrupt {
                    kind: "counter file",
                    path: self.persistence.location(COUNTER_FILE),
                    reason: reason.into(),
                })
            }
        }
    }

    fn seal_counter(&mut self, limit: u64) -> Vec<u8> {
        let nonce = self.random::<NONCE_LEN>();
        counter_file(&self.keys, &nonce, &limit.to_be_bytes())
    }

    fn reserve_counter_block(&mut self) -> Result<(), StorageError> {
        let limit = self
            .counter
            .next
            .checked_add(COUNTER_BLOCK)
            .ok_or(StorageError::CounterExhausted)?;
        let sealed = self.seal_counter(limit);
        self.persistence.write(COUNTER_FILE, &sealed)?;
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

    /// Reads every state slot. A slot sealed under another master key (left by an interrupted
    /// reset, or restored from another store) is set aside and empty; a damaged one is an
    /// error, and stays where it is.
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
                Err(state_file::OpenError::OtherMasterKey) => self.set_aside(&name)?,
                Err(state_file::OpenError::Corrupt(reason)) => {
                    return Err(StorageError::Corrupt {
                        kind: "state file",
                        path: self.persistence.location(&name),
                        reason: reason.into(),
                    })
                }
            }
        }
        Ok(())
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

fn credential_from_record(record: &Record) -> Credential {
    Credential {
        id: record.credential_id.clone(),
        rp_id_hash: record.rp_id_hash,
        rp_id: Some(record.rp_id.clone()),
        algorithm: record.algorithm,
        discoverable: true,
        user: Some(record.user.clone()),
        created: record.created,
        key: record.key.clone(),
        extras: record.extras.clone(),
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
    Ok((id, record))
}

/// The counter file sealing `plaintext` (the limit, 8 bytes big-endian).
pub(crate) fn counter_file(keys: &Keys, nonce: &[u8; NONCE_LEN], plaintext: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(COUNTER_MAGIC.len() + 1 + NONCE_LEN + plaintext.len() + 16);
    out.extend_from_slice(COUNTER_MAGIC);
    out.push(COUNTER_VERSION);
    out.extend_from_slice(nonce);
    crypto::seal_into(&keys.counter, nonce, &counter_aad(), plaintext, &mut out);
    out
}

fn counter_aad() -> Vec<u8> {
    let mut aad = COUNTER_MAGIC.to_vec();
    aad.push(COUNTER_VERSION);
    aad.extend_from_slice(COUNTER_FILE.as_bytes());
    aad
}

pub(crate) fn open_counter(keys: &Keys, bytes: &[u8]) -> Result<u64, &'static str> {
    let header = COUNTER_MAGIC.len() + 1;
    if bytes.len() < header + NONCE_LEN {
        return Err("truncated");
    }
    if &bytes[..COUNTER_MAGIC.len()] != COUNTER_MAGIC {
        return Err("bad magic");
    }
    if bytes[COUNTER_MAGIC.len()] != COUNTER_VERSION {
        return Err("unsupported version");
    }
    let nonce: &[u8; NONCE_LEN] = bytes[header..header + NONCE_LEN]
        .try_into()
        .map_err(|_| "truncated")?;
    let plaintext = crypto::open(
        &keys.counter,
        nonce,
        &counter_aad(),
        &bytes[header + NONCE_LEN..],
    )
    .ok_or("authentication failed")?;
    let value: [u8; 8] = plaintext.as_slice().try_into().map_err(|_| "bad length")?;
    Ok(u64::from_be_bytes(value))
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
        let auth = self.keys.key_auth(new.rp_id_hash);
        let (key, public) = self.backend.generate(new.algorithm, &auth, &mut self.rng)?;
        let nonce = self.random::<NONCE_LEN>();

        if !new.discoverable {
            // Nothing is stored: the ID is the credential. Its RP ID, user and creation time are
            // not known when it comes back, so they are left out here too.
            let id = credential_id::wrap(
                &self.keys.wrap,
                self.backend.id_version(),
                &nonce,
                new.rp_id_hash,
                false,
                new.algorithm,
                key.as_bytes(),
                new.extras,
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
            };
            return Ok((credential, public));
        }

        // A discoverable credential's key material and extension state stay in its record:
        // the ID only names it (and proves it is ours), so deleting the record destroys them.
        let id = credential_id::wrap(
            &self.keys.wrap,
            self.backend.id_version(),
            &nonce,
            new.rp_id_hash,
            true,
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
            extras: new.extras.clone(),
        };
        let credential = credential_from_record(&record);
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
        if !unwrapped.discoverable {
            return Ok(Some(Credential {
                id: credential_id.to_vec(),
                rp_id_hash: *rp_id_hash,
                rp_id: None,
                algorithm: unwrapped.algorithm,
                discoverable: false,
                user: None,
                created: 0,
                key: unwrapped.key,
                extras: unwrapped.extras,
            }));
        }
        // A discoverable ID is valid only while its record exists: deleting or replacing the
        // record revokes it.
        Ok(self
            .index
            .get(credential_id)
            .filter(|r| r.rp_id_hash == *rp_id_hash)
            .map(credential_from_record))
    }

    /// Newest first.
    fn discoverable_credentials(
        &mut self,
        rp_id_hash: &[u8; 32],
    ) -> Result<Vec<Credential>, KeystoreError> {
        let mut credentials: Vec<Credential> = self
            .index
            .by_rp
            .get(rp_id_hash)
            .into_iter()
            .flatten()
            .map(|id| credential_from_record(&self.index.records[id]))
            .collect();
        credentials.sort_by_key(|c| std::cmp::Reverse(c.created));
        Ok(credentials)
    }

    fn all_discoverable_credentials(&mut self) -> Result<Vec<Credential>, KeystoreError> {
        Ok(self
            .index
            .records
            .values()
            .map(credential_from_record)
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
        let auth = self.keys.key_auth(&credential.rp_id_hash);
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

    /// 1. seal the counter with a new master key into `counter.next`;
    /// 2. replace the master-secret file (the commit point: every old credential ID, record
    ///    and state file is now undecryptable, and every old TPM key's authorization is lost);
    /// 3. rename `counter.next` over `counter`;
    /// 4. remove every file in `credentials/` and every state file.
    ///
    /// A crash before 2 leaves the old state (open drops `counter.next`); after 2 the new one
    /// (open finishes 3; any record or state file left from 4 is sealed under the old key and
    /// is set aside).
    fn reset(&mut self) -> Result<(), KeystoreError> {
        let master = MasterKey::generate(|b| self.rng.fill_bytes(b));
        let sealed_master = self.backend.seal_master(&master)?;
        let new_keys = Keys::derive(&master);
        drop(master);
        let old_keys = std::mem::replace(&mut self.keys, new_keys);
        let sealed_counter = self.seal_counter(self.counter.limit);
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
        self.persistence.rename(COUNTER_NEXT_FILE, COUNTER_FILE)?;
        let files: Vec<String> = self
            .persistence
            .list(CREDENTIALS_DIR)?
            .into_iter()
            .map(|name| join(CREDENTIALS_DIR, &name))
            .chain(StateSlot::ALL.map(state_file::file_name))
            .collect();
        self.persistence.remove(&files)?;
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
        assert_eq!(open_counter(&store.keys, &before), Ok(COUNTER_BLOCK + 1));
        assert_eq!(values.first(), Some(&1));
        assert!(values.windows(2).all(|w| w[1] == w[0] + 1));
        assert_eq!(u64::from(next), COUNTER_BLOCK + 1);
        assert_eq!(
            open_counter(&store.keys, &stored()),
            Ok(2 * COUNTER_BLOCK + 1)
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
