//! Deterministic stand-ins for the environment, for unit tests, fuzzers and benches.
//!
//! Not for production: the in-memory keystore keeps private keys in plain memory and forgets
//! everything when dropped.

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use zeroize::Zeroizing;

use crate::env::{
    uv_modality, Algorithm, Clock, Credential, KeyMaterial, Keystore, KeystoreError, NewCredential,
    Operation, PinCheck, Presence, PresenceOutcome, PresenceRequest, PublicKey, Rng, StateSlot,
    UserEntity, UvOutcome, MAX_PIN_RETRIES,
};
use crate::software_key;

/// A xorshift generator: reproducible "randomness" for tests.
#[derive(Debug, Clone)]
pub struct SeededRng(u64);

impl SeededRng {
    pub fn new(seed: u64) -> Self {
        SeededRng(seed | 1)
    }
}

impl Rng for SeededRng {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for byte in dest {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            *byte = self.0 as u8;
        }
    }
}

/// A clock the test moves by hand; clones share the time.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Rc<Cell<u64>>);

impl ManualClock {
    pub fn advance(&self, ms: u64) {
        self.0.set(self.0.get() + ms);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.get()
    }
}

/// What a presence or verification request asked: operation, RP ID, account name.
pub type AskedFor = (Operation, Option<String>, Option<String>);

/// Answers presence requests from a script (then with a default), and records what was asked.
/// Built-in user verification is off unless made with [`ScriptedPresence::with_built_in_uv`];
/// then verifications are answered from their own script and recorded apart.
#[derive(Debug, Clone)]
pub struct ScriptedPresence {
    pub script: VecDeque<PresenceOutcome>,
    pub default: PresenceOutcome,
    pub asked: Vec<AskedFor>,
    pub built_in_uv: bool,
    pub uv_modality: u32,
    pub uv_script: VecDeque<UvOutcome>,
    pub uv_default: UvOutcome,
    pub uv_asked: Vec<AskedFor>,
}

impl ScriptedPresence {
    pub fn always(outcome: PresenceOutcome) -> Self {
        ScriptedPresence {
            script: VecDeque::new(),
            default: outcome,
            asked: Vec::new(),
            built_in_uv: false,
            uv_modality: 0,
            uv_script: VecDeque::new(),
            uv_default: UvOutcome::Unavailable,
            uv_asked: Vec::new(),
        }
    }

    /// Presence approved; built-in UV (an external passcode) answering `outcome` unless
    /// scripted otherwise.
    pub fn with_built_in_uv(outcome: UvOutcome) -> Self {
        ScriptedPresence {
            built_in_uv: true,
            uv_modality: uv_modality::PASSCODE_EXTERNAL,
            uv_default: outcome,
            ..ScriptedPresence::always(PresenceOutcome::Approved)
        }
    }
}

fn asked_for(request: &PresenceRequest<'_>) -> AskedFor {
    (
        request.operation,
        request.rp_id.map(str::to_owned),
        request.user_name.map(str::to_owned),
    )
}

impl Presence for ScriptedPresence {
    fn request_presence(&mut self, request: &PresenceRequest<'_>) -> PresenceOutcome {
        self.asked.push(asked_for(request));
        self.script.pop_front().unwrap_or(self.default)
    }

    fn built_in_uv(&self) -> bool {
        self.built_in_uv
    }

    fn uv_modality(&self) -> u32 {
        self.uv_modality
    }

    fn verify_user(&mut self, request: &PresenceRequest<'_>) -> UvOutcome {
        assert!(self.built_in_uv, "verify_user called without built-in UV");
        self.uv_asked.push(asked_for(request));
        self.uv_script.pop_front().unwrap_or(self.uv_default)
    }
}

/// Credentials in memory, IDs random, at most `capacity` discoverable ones.
pub struct MemoryKeystore {
    rng: SeededRng,
    credentials: Vec<Credential>,
    counter: u32,
    created: u64,
    state: HashMap<StateSlot, Vec<u8>>,
    /// The PIN hash and the retries left (plain memory: a test double, not a verifier).
    pin: Option<(Zeroizing<[u8; 16]>, u8)>,
    pub capacity: usize,
    /// The algorithms it makes credentials for (both by default; a TPM-like store lacks EdDSA).
    pub algorithms: Vec<Algorithm>,
    /// Checks no PIN while set, as a TPM in dictionary-attack lockout.
    pub pin_locked_out: bool,
    /// Gives every credential as one whose UV-only secrets are bound to a PIN not verified
    /// yet (`Credential::uv_secrets_locked`).
    pub uv_secrets_locked: bool,
    /// Fails every state write while set, as a full disk does.
    pub state_writes_fail: bool,
}

impl MemoryKeystore {
    pub fn new(seed: u64) -> Self {
        MemoryKeystore {
            rng: SeededRng::new(seed),
            credentials: Vec::new(),
            counter: 0,
            created: 0,
            state: HashMap::new(),
            pin: None,
            capacity: 100,
            algorithms: vec![Algorithm::Es256, Algorithm::EdDsa],
            pin_locked_out: false,
            uv_secrets_locked: false,
            state_writes_fail: false,
        }
    }
}

impl MemoryKeystore {
    fn as_found(&self, credential: &Credential) -> Credential {
        Credential {
            uv_secrets_locked: self.uv_secrets_locked,
            ..credential.clone()
        }
    }
}

impl Keystore for MemoryKeystore {
    fn supports(&self, algorithm: Algorithm) -> bool {
        self.algorithms.contains(&algorithm)
    }

    fn create_credential(
        &mut self,
        new: &NewCredential<'_>,
    ) -> Result<(Credential, PublicKey), KeystoreError> {
        if new.discoverable {
            let before = self.credentials.len();
            // The same RP and user handle: the new credential replaces the old one.
            self.credentials.retain(|c| {
                !(c.discoverable
                    && c.rp_id_hash == *new.rp_id_hash
                    && c.user.as_ref().map(|u| &u.id) == Some(&new.user.id))
            });
            if self.credentials.len() == before && self.remaining_discoverable_credentials() == 0 {
                return Err(KeystoreError::Full);
            }
        }
        let rng = &mut self.rng;
        let (secret, public) = software_key::generate(new.algorithm, |b| rng.fill_bytes(b));
        let mut id = vec![0u8; 16];
        self.rng.fill_bytes(&mut id);
        self.created += 1;
        let credential = Credential {
            id,
            rp_id_hash: *new.rp_id_hash,
            rp_id: new.discoverable.then(|| new.rp.id.clone()),
            algorithm: new.algorithm,
            discoverable: new.discoverable,
            user: new.discoverable.then(|| new.user.clone()),
            created: self.created,
            key: KeyMaterial::new(secret.to_vec()),
            extras: new.extras.clone(),
            uv_secrets_locked: false,
        };
        self.credentials.push(credential.clone());
        Ok((credential, public))
    }

    fn find_credential(
        &mut self,
        rp_id_hash: &[u8; 32],
        credential_id: &[u8],
    ) -> Result<Option<Credential>, KeystoreError> {
        Ok(self
            .credentials
            .iter()
            .find(|c| c.id == credential_id && c.rp_id_hash == *rp_id_hash)
            .map(|c| self.as_found(c)))
    }

    fn discoverable_credentials(
        &mut self,
        rp_id_hash: &[u8; 32],
    ) -> Result<Vec<Credential>, KeystoreError> {
        Ok(self
            .credentials
            .iter()
            .filter(|c| c.discoverable && c.rp_id_hash == *rp_id_hash)
            .map(|c| self.as_found(c))
            .collect())
    }

    fn all_discoverable_credentials(&mut self) -> Result<Vec<Credential>, KeystoreError> {
        Ok(self
            .credentials
            .iter()
            .filter(|c| c.discoverable)
            .cloned()
            .collect())
    }

    fn discoverable_count(&self) -> usize {
        self.credentials.iter().filter(|c| c.discoverable).count()
    }

    fn delete_credential(&mut self, credential_id: &[u8]) -> Result<bool, KeystoreError> {
        let before = self.credentials.len();
        self.credentials
            .retain(|c| !(c.discoverable && c.id == credential_id));
        Ok(self.credentials.len() < before)
    }

    fn update_user(
        &mut self,
        credential_id: &[u8],
        user: &UserEntity,
    ) -> Result<bool, KeystoreError> {
        let found = self
            .credentials
            .iter_mut()
            .find(|c| c.discoverable && c.id == credential_id);
        Ok(found.map(|c| c.user = Some(user.clone())).is_some())
    }

    fn public_key(&mut self, credential: &Credential) -> Result<PublicKey, KeystoreError> {
        software_key::public_key(credential.algorithm, credential.key.as_bytes())
            .ok_or_else(|| KeystoreError::Failure("invalid key".into()))
    }

    fn sign(&mut self, credential: &Credential, message: &[u8]) -> Result<Vec<u8>, KeystoreError> {
        software_key::sign(credential.algorithm, credential.key.as_bytes(), message)
            .ok_or_else(|| KeystoreError::Failure("invalid key".into()))
    }

    fn next_signature_counter(&mut self) -> Result<u32, KeystoreError> {
        self.counter += 1;
        Ok(self.counter)
    }

    fn remaining_discoverable_credentials(&self) -> usize {
        self.capacity.saturating_sub(self.discoverable_count())
    }

    fn read_state(&mut self, slot: StateSlot) -> Result<Option<Zeroizing<Vec<u8>>>, KeystoreError> {
        Ok(self.state.get(&slot).cloned().map(Zeroizing::new))
    }

    fn write_state(&mut self, slot: StateSlot, bytes: &[u8]) -> Result<(), KeystoreError> {
        if self.state_writes_fail {
            return Err(KeystoreError::Failure("no space left (test)".into()));
        }
        self.state.insert(slot, bytes.to_vec());
        Ok(())
    }

    fn reset(&mut self) -> Result<(), KeystoreError> {
        self.credentials.clear();
        self.state.clear();
        self.pin = None;
        Ok(())
    }

    fn pin_retries(&mut self) -> Result<Option<u8>, KeystoreError> {
        Ok(self.pin.as_ref().map(|(_, retries)| *retries))
    }

    fn set_pin(&mut self, pin_hash: &[u8; 16], retries: u8) -> Result<(), KeystoreError> {
        self.pin = Some((Zeroizing::new(*pin_hash), retries.min(MAX_PIN_RETRIES)));
        Ok(())
    }

    fn verify_pin(&mut self, pin_hash: &[u8]) -> Result<PinCheck, KeystoreError> {
        let locked_out = self.pin_locked_out;
        let (stored, retries) = self
            .pin
            .as_mut()
            .ok_or_else(|| KeystoreError::Failure("no PIN is set".into()))?;
        if *retries == 0 {
            return Ok(PinCheck::Blocked);
        }
        if locked_out {
            return Ok(PinCheck::LockedOut);
        }
        *retries -= 1;
        if pin_hash == stored.as_slice() {
            *retries = MAX_PIN_RETRIES;
            Ok(PinCheck::Match)
        } else {
            Ok(PinCheck::Mismatch { retries: *retries })
        }
    }
}
