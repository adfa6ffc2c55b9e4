//! What fido2d's fuzz targets need from inside this crate (feature `fuzzing`, never in a
//! release build): sealing every stored format with contents of the caller's choosing.
//!
//! A fuzzer cannot forge AES-GCM, so on its own it never gets past the authentication of a
//! record, a state file, the counter or a credential ID. With these it can hand the store
//! files and IDs that are properly sealed yet malformed inside (which only a bug here or a
//! future format could produce) and check that the decoders behind the AES-GCM refuse them
//! cleanly. Everything is sealed under a master key the caller picks.

use protocol::env::StateSlot;

use crate::crypto::{Keys, MasterKey, NONCE_LEN};
use crate::{credential_id, record, state_file, store};

/// The subkeys of one master key, for sealing.
pub struct SealingKeys {
    master: MasterKey,
    keys: Keys,
}

/// What a readable record file says about its credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordFacts {
    pub credential_id: Vec<u8>,
    pub rp_id_hash: [u8; 32],
    pub user_id: Vec<u8>,
    pub created: u64,
}

impl SealingKeys {
    pub fn new(master: [u8; 32]) -> Self {
        let master = MasterKey::generate(|key| key.copy_from_slice(&master));
        let keys = Keys::derive(&master);
        SealingKeys { master, keys }
    }

    /// The keys of the master key in `bytes` (a `master.key` file), if it is a valid one.
    pub fn from_master_key_file(bytes: &[u8]) -> Option<Self> {
        let master = MasterKey::from_file(bytes).ok()?;
        let keys = Keys::derive(&master);
        Some(SealingKeys { master, keys })
    }

    /// The contents of `master.key` for this master key.
    pub fn master_key_file(&self) -> Vec<u8> {
        self.master.to_file().to_vec()
    }

    /// A credential ID of `version` (0x01 software, 0x02 TPM) sealing `plaintext` for
    /// `rp_id_hash`. The plaintext a store writes is `flags | algorithm | u16 key length | key
    /// | extras`.
    pub fn credential_id(
        &self,
        version: u8,
        nonce: &[u8; NONCE_LEN],
        rp_id_hash: &[u8; 32],
        plaintext: &[u8],
    ) -> Vec<u8> {
        credential_id::seal_plaintext(&self.keys.wrap, version, nonce, rp_id_hash, plaintext)
    }

    /// A record file of format `version` named `file_name`, sealing `fields`.
    pub fn record_file(
        &self,
        version: u8,
        nonce: &[u8; NONCE_LEN],
        file_name: &str,
        fields: &[u8],
    ) -> Vec<u8> {
        record::seal_fields(&self.keys.record, version, nonce, file_name, fields)
    }

    /// A counter file sealing `plaintext` (a store writes the 8-byte big-endian limit).
    pub fn counter_file(&self, nonce: &[u8; NONCE_LEN], plaintext: &[u8]) -> Vec<u8> {
        store::counter_file(&self.keys, nonce, plaintext)
    }

    /// The state file of `slot` sealing `contents`.
    pub fn state_file(&self, nonce: &[u8; NONCE_LEN], slot: StateSlot, contents: &[u8]) -> Vec<u8> {
        state_file::seal(&self.keys, nonce, slot, contents)
    }

    /// The counter limit a counter file holds, if it opens under this key.
    pub fn counter_value(&self, bytes: &[u8]) -> Option<u64> {
        store::open_counter(&self.keys, bytes)
            .ok()
            .map(|(limit, _nv)| limit)
    }

    /// What a state file of `slot` holds, or why it does not open under this key (damaged or
    /// sealed under another: the store refuses to open either way).
    pub fn state_contents(&self, slot: StateSlot, bytes: &[u8]) -> Result<Vec<u8>, &'static str> {
        state_file::open(&self.keys, slot, bytes)
            .map(|contents| contents.to_vec())
            .map_err(|err| err.reason())
    }

    /// The fields a record file `file_name` seals (format version, fields), if it opens.
    pub fn record_fields(&self, file_name: &str, bytes: &[u8]) -> Option<(u8, Vec<u8>)> {
        record::open_fields(&self.keys.record, file_name, bytes)
    }

    /// What the file backend's store reads from the record file `file_name`, if it can.
    pub fn readable_record(&self, file_name: &str, bytes: &[u8]) -> Option<RecordFacts> {
        let (_, record) = store::open_record(
            &self.keys,
            credential_id::VERSION_SOFTWARE,
            file_name,
            bytes,
        )
        .ok()?;
        Some(RecordFacts {
            credential_id: record.credential_id,
            rp_id_hash: record.rp_id_hash,
            user_id: record.user.id,
            created: record.created,
        })
    }
}

/// The names of the state files, by slot.
pub fn state_file_name(slot: StateSlot) -> String {
    state_file::file_name(slot)
}

/// The name of the record file of a credential ID.
pub fn record_file_name(credential_id: &[u8]) -> String {
    record::file_name(&record::file_id(credential_id))
}
