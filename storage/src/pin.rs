//! The PIN verifier and what counts the tries: see `storage/PIN_AND_COUNTERS.md` for the design.
//!
//! The store never keeps the CTAP PIN hash (LEFT(SHA-256(PIN), 16)). It keeps a *verifier*: a
//! random 32-byte [`PinSecret`] that only the right PIN gets back.
//!
//! - TPM backend: the secret is the data of a sealed object created by the TPM under our storage
//!   key *without* `noDA`, whose authValue is the [`PinAuth`] of the PIN. Getting it back is one
//!   TPM2_Unseal authorised with that authValue: a wrong PIN is an authorization failure that the
//!   TPM's dictionary-attack logic counts, and nothing in the state directory tests a candidate.
//! - File backend: the secret is sealed (AES-256-GCM) with a key that Argon2id derives from the
//!   [`PinAuth`]: a candidate costs one Argon2id evaluation (the parameters are in the verifier).
//!
//! `pin.state` (sealed with the state key like the state slots) holds the verifier and the
//! retry accounting:
//!
//! ```text
//! version (1) | kind (1 = Argon2id, 2 = TPM) | u16 len | verifier |
//!     accounting: 0 | retries left (u8)                      counted in this file
//!               | 1 | base (u64) | seen (u64)              counted by a TPM NV counter
//! Argon2id verifier: m KiB (u32) | t (u32) | p (u32) | salt (16) | nonce (12) |
//!     AES-256-GCM(Argon2id(PinAuth, salt), PinSecret) (32 + 16)
//! ```
//!
//! With an NV counter, the counter counts every PIN try that was not a match, and never goes
//! back: retries left = MAX - (counter - base), where `base` is the counter's value at the
//! last right PIN (or when the PIN was set). `seen` is the value this file was written for;
//! a file whose `seen` is below the counter was restored from an older copy.

use std::fmt;

use argon2::{Algorithm, Argon2, Params, Version};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use protocol::env::{CredProtect, CredentialExtras};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::backend::KeyAuth;
use crate::crypto::{self, NONCE_LEN};

/// How much work one Argon2id evaluation of the file backend's verifier costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinHashCost {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over the memory.
    pub iterations: u32,
    /// Lanes (computed one after the other here: the `argon2` crate without `parallel`).
    pub parallelism: u32,
}

impl PinHashCost {
    /// 128 MiB, 8 passes, 1 lane: about 0.55 s per verification on the machine this was
    /// measured on (see PIN_AND_COUNTERS.md), the time a person waits once per PIN entry.
    pub const DEFAULT: PinHashCost = PinHashCost {
        memory_kib: 128 * 1024,
        iterations: 8,
        parallelism: 1,
    };

    /// For tests and fuzzers only: the smallest parameters Argon2id allows.
    pub const INSECURE_FAST: PinHashCost = PinHashCost {
        memory_kib: 8,
        iterations: 1,
        parallelism: 1,
    };
}

impl Default for PinHashCost {
    fn default() -> Self {
        PinHashCost::DEFAULT
    }
}

/// The authorization a PIN gives: HMAC-SHA256(a subkey of the master secret, PIN hash). The
/// TPM's authValue of the verifier; the file backend's Argon2id input.
pub struct PinAuth(pub(crate) Zeroizing<[u8; 32]>);

impl PinAuth {
    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for PinAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PinAuth(<redacted>)")
    }
}

/// The secret only the right PIN gets back.
#[derive(Clone)]
pub struct PinSecret(pub(crate) Zeroizing<[u8; 32]>);

impl PinSecret {
    pub(crate) fn generate(fill: impl FnOnce(&mut [u8])) -> Self {
        let mut secret = Zeroizing::new([0u8; 32]);
        fill(secret.as_mut_slice());
        PinSecret(secret)
    }

    pub(crate) fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let mut secret = Zeroizing::new([0u8; 32]);
        secret.copy_from_slice(bytes.get(..32).filter(|_| bytes.len() == 32)?);
        Some(PinSecret(secret))
    }

    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for PinSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PinSecret(<redacted>)")
    }
}

/// What binds a credential's UV-only secrets to the PIN: keys from the [`PinSecret`], which
/// only the right PIN gets back (from the TPM, or from Argon2id).
///
/// - hmac-secret's CredRandomWithUV of every credential made while the secret was known, and,
///   for credProtect level 3, CredRandomWithoutUV, credBlob and largeBlobKey too, are stored
///   XORed with pads HKDF derives from the mask key and the credential ID's nonce;
/// - a credProtect level 3 credential's TPM key has an authValue from [`UvKeys::key_auth`]
///   instead of the master secret's: without the PIN the TPM does not sign with it.
pub(crate) struct UvKeys {
    mask: Zeroizing<[u8; 32]>,
    key_auth: Zeroizing<[u8; 32]>,
}

const LABEL_UV_MASK: &[u8] = b"fido2d/v1/uv-mask";
const LABEL_UV_KEY_AUTH: &[u8] = b"fido2d/v1/uv-key-auth";

impl UvKeys {
    pub(crate) fn derive(secret: &PinSecret) -> Self {
        let hkdf = Hkdf::<Sha256>::new(None, secret.as_bytes());
        let mut mask = Zeroizing::new([0u8; 32]);
        let mut key_auth = Zeroizing::new([0u8; 32]);
        hkdf.expand(LABEL_UV_MASK, mask.as_mut_slice())
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        hkdf.expand(LABEL_UV_KEY_AUTH, key_auth.as_mut_slice())
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        UvKeys { mask, key_auth }
    }

    fn xor(&self, nonce: &[u8], label: &[u8], bytes: &mut [u8]) {
        let mut pad = Zeroizing::new(vec![0u8; bytes.len()]);
        Hkdf::<Sha256>::new(Some(nonce), self.mask.as_slice())
            .expand(label, &mut pad)
            .expect("at most 255 * 32 bytes");
        for (byte, p) in bytes.iter_mut().zip(pad.iter()) {
            *byte ^= p;
        }
    }

    /// Binds the UV-only secrets of `extras` (of the credential whose ID has `nonce`), or,
    /// applied to bound ones, frees them.
    pub(crate) fn toggle(&self, nonce: &[u8], extras: &mut CredentialExtras) {
        let level_3 = extras.cred_protect == CredProtect::UserVerificationRequired;
        if let Some(secret) = &mut extras.hmac_secret {
            self.xor(nonce, b"cred-random-with-uv", secret.with_uv.as_mut_slice());
            if level_3 {
                self.xor(
                    nonce,
                    b"cred-random-without-uv",
                    secret.without_uv.as_mut_slice(),
                );
            }
        }
        if level_3 {
            if let Some(blob) = &mut extras.cred_blob {
                self.xor(nonce, b"cred-blob", blob);
            }
            if let Some(key) = &mut extras.large_blob_key {
                self.xor(nonce, b"large-blob-key", key.as_mut_slice());
            }
        }
    }

    /// The authorization of a credProtect level 3 credential's key for `rp_id_hash`.
    pub(crate) fn key_auth(&self, rp_id_hash: &[u8; 32]) -> KeyAuth {
        let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(self.key_auth.as_slice())
            .expect("HMAC takes a key of any length");
        mac.update(rp_id_hash);
        let mut auth = Zeroizing::new([0u8; 32]);
        auth.copy_from_slice(&mac.finalize().into_bytes());
        KeyAuth(auth)
    }
}

/// What is left of bound `extras` without the PIN's secret: the UV-only secrets are dropped
/// (CredRandomWithUV zeroed: the protocol asks for the PIN before it would use it).
pub(crate) fn locked_view(extras: &CredentialExtras) -> CredentialExtras {
    let mut view = extras.clone();
    if view.cred_protect == CredProtect::UserVerificationRequired {
        view.hmac_secret = None;
        view.cred_blob = None;
        view.large_blob_key = None;
    } else if let Some(secret) = &mut view.hmac_secret {
        secret.with_uv = Zeroizing::new([0u8; 32]);
    }
    view
}

/// What a backend found when asked to open a verifier with a PIN's authorization.
#[derive(Debug)]
pub enum PinUnseal {
    /// The PIN is right.
    Secret(PinSecret),
    /// The PIN is wrong.
    Wrong,
    /// The backend checks no PIN now (a TPM in dictionary-attack lockout): nothing was tried.
    LockedOut,
}

/// Which kind of verifier a backend makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifierKind {
    Argon2id = 1,
    Tpm = 2,
}

impl VerifierKind {
    fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(VerifierKind::Argon2id),
            2 => Some(VerifierKind::Tpm),
            _ => None,
        }
    }
}

/// How the tries are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Accounting {
    /// In `pin.state` itself: a restored older copy brings retries back (no TPM NV counter).
    InFile { retries: u8 },
    /// By a TPM NV counter of failed tries: retries = MAX - (counter - base).
    Nv { base: u64, seen: u64 },
}

/// The contents of `pin.state`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct PinRecord {
    pub(crate) kind: VerifierKind,
    pub(crate) verifier: Vec<u8>,
    pub(crate) accounting: Accounting,
}

impl fmt::Debug for PinRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PinRecord")
            .field("kind", &self.kind)
            .field("verifier_len", &self.verifier.len())
            .field("accounting", &self.accounting)
            .finish()
    }
}

const RECORD_VERSION: u8 = 1;
const ACCOUNTING_IN_FILE: u8 = 0;
const ACCOUNTING_NV: u8 = 1;

impl PinRecord {
    pub(crate) fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(4 + self.verifier.len() + 17));
        out.push(RECORD_VERSION);
        out.push(self.kind as u8);
        let len = u16::try_from(self.verifier.len()).expect("a verifier is a few hundred bytes");
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&self.verifier);
        match self.accounting {
            Accounting::InFile { retries } => {
                out.push(ACCOUNTING_IN_FILE);
                out.push(retries);
            }
            Accounting::Nv { base, seen } => {
                out.push(ACCOUNTING_NV);
                out.extend_from_slice(&base.to_be_bytes());
                out.extend_from_slice(&seen.to_be_bytes());
            }
        }
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, &'static str> {
        let (&version, rest) = bytes.split_first().ok_or("truncated")?;
        if version != RECORD_VERSION {
            return Err("unsupported version");
        }
        let (&kind, rest) = rest.split_first().ok_or("truncated")?;
        let kind = VerifierKind::from_byte(kind).ok_or("unknown verifier kind")?;
        let len = usize::from(u16::from_be_bytes(
            rest.get(..2)
                .ok_or("truncated")?
                .try_into()
                .expect("2 bytes"),
        ));
        let verifier = rest.get(2..2 + len).ok_or("truncated")?.to_vec();
        let rest = &rest[2 + len..];
        let accounting = match rest {
            [ACCOUNTING_IN_FILE, retries] => Accounting::InFile { retries: *retries },
            [ACCOUNTING_NV, numbers @ ..] if numbers.len() == 16 => Accounting::Nv {
                base: u64::from_be_bytes(numbers[..8].try_into().expect("8 bytes")),
                seen: u64::from_be_bytes(numbers[8..].try_into().expect("8 bytes")),
            },
            _ => return Err("malformed retry accounting"),
        };
        Ok(PinRecord {
            kind,
            verifier,
            accounting,
        })
    }
}

const ARGON2_SALT_LEN: usize = 16;
/// The most a stored verifier may ask for: 1 GiB, 64 passes, 16 lanes.
const MAX_MEMORY_KIB: u32 = 1024 * 1024;
const MAX_ITERATIONS: u32 = 64;
const MAX_PARALLELISM: u32 = 16;
const ARGON2_HEADER_LEN: usize = 12 + ARGON2_SALT_LEN + NONCE_LEN;
const ARGON2_AAD: &[u8] = b"fido2d/v1/pin-verifier/argon2id";

fn argon2_key(
    auth: &PinAuth,
    salt: &[u8],
    cost: PinHashCost,
) -> Result<Zeroizing<[u8; 32]>, String> {
    let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, Some(32))
        .map_err(|err| format!("Argon2id parameters {cost:?}: {err}"))?;
    let mut key = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(auth.as_bytes(), salt, key.as_mut_slice())
        .map_err(|err| format!("Argon2id: {err}"))?;
    Ok(key)
}

/// The file backend's verifier of `secret` under `auth`.
pub(crate) fn argon2_seal(
    auth: &PinAuth,
    secret: &PinSecret,
    cost: PinHashCost,
    fill_random: &mut dyn FnMut(&mut [u8]),
) -> Result<Vec<u8>, String> {
    let mut salt = [0u8; ARGON2_SALT_LEN];
    fill_random(&mut salt);
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce);
    let key = argon2_key(auth, &salt, cost)?;
    let cipher = <aes_gcm::Aes256Gcm as aes_gcm::KeyInit>::new_from_slice(key.as_slice())
        .expect("AES-256 takes a 32-byte key");
    let mut out = Vec::with_capacity(ARGON2_HEADER_LEN + 32 + crypto::TAG_LEN);
    for n in [cost.memory_kib, cost.iterations, cost.parallelism] {
        out.extend_from_slice(&n.to_be_bytes());
    }
    out.extend_from_slice(&salt);
    out.extend_from_slice(&nonce);
    crypto::seal_into(&cipher, &nonce, ARGON2_AAD, secret.as_bytes(), &mut out);
    Ok(out)
}

/// Opens the file backend's verifier with `auth`: `Ok(None)` for a wrong PIN.
pub(crate) fn argon2_open(verifier: &[u8], auth: &PinAuth) -> Result<Option<PinSecret>, String> {
    if verifier.len() != ARGON2_HEADER_LEN + 32 + crypto::TAG_LEN {
        return Err(format!(
            "an Argon2id PIN verifier of {} bytes",
            verifier.len()
        ));
    }
    let number = |i: usize| u32::from_be_bytes(verifier[4 * i..4 * i + 4].try_into().expect("4"));
    let cost = PinHashCost {
        memory_kib: number(0),
        iterations: number(1),
        parallelism: number(2),
    };
    // A damaged (or forged) file must not make the daemon allocate gigabytes or spin.
    if cost.memory_kib > MAX_MEMORY_KIB
        || cost.iterations > MAX_ITERATIONS
        || cost.parallelism > MAX_PARALLELISM
    {
        return Err(format!("Argon2id parameters out of range: {cost:?}"));
    }
    let salt = &verifier[12..12 + ARGON2_SALT_LEN];
    let nonce: &[u8; NONCE_LEN] = verifier[12 + ARGON2_SALT_LEN..ARGON2_HEADER_LEN]
        .try_into()
        .expect("12 bytes");
    let key = argon2_key(auth, salt, cost)?;
    let cipher = <aes_gcm::Aes256Gcm as aes_gcm::KeyInit>::new_from_slice(key.as_slice())
        .expect("AES-256 takes a 32-byte key");
    Ok(
        crypto::open(&cipher, nonce, ARGON2_AAD, &verifier[ARGON2_HEADER_LEN..])
            .and_then(|secret| PinSecret::from_bytes(&secret)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(byte: u8) -> PinAuth {
        PinAuth(Zeroizing::new([byte; 32]))
    }

    fn counter_fill() -> impl FnMut(&mut [u8]) {
        let mut n = 0u8;
        move |bytes: &mut [u8]| {
            for b in bytes {
                n = n.wrapping_add(1);
                *b = n;
            }
        }
    }

    #[test]
    fn an_argon2id_verifier_opens_with_the_right_auth_only() {
        let secret = PinSecret::generate(|b| b.fill(0x5a));
        let verifier = argon2_seal(
            &auth(1),
            &secret,
            PinHashCost::INSECURE_FAST,
            &mut counter_fill(),
        )
        .unwrap();

        let right = argon2_open(&verifier, &auth(1)).unwrap();
        let wrong = argon2_open(&verifier, &auth(2)).unwrap();

        assert_eq!(right.unwrap().as_bytes(), &[0x5a; 32]);
        assert!(wrong.is_none());
        assert!(!verifier.windows(32).any(|w| w == [0x5a; 32]));
        assert!(!verifier.windows(32).any(|w| w == [1; 32]));
        assert_eq!(&verifier[..12], &[0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 1]);
    }

    #[test]
    fn a_damaged_argon2id_verifier_is_an_error_or_a_mismatch_never_a_match() {
        let secret = PinSecret::generate(|b| b.fill(7));
        let verifier = argon2_seal(
            &auth(1),
            &secret,
            PinHashCost::INSECURE_FAST,
            &mut counter_fill(),
        )
        .unwrap();
        for i in 0..verifier.len() {
            let mut flipped = verifier.clone();
            flipped[i] ^= 0x01;
            assert!(
                !matches!(argon2_open(&flipped, &auth(1)), Ok(Some(_))),
                "byte {i}"
            );
        }
        assert!(argon2_open(&verifier[1..], &auth(1)).is_err());
    }

    #[test]
    fn records_round_trip_and_refuse_anything_else() {
        for accounting in [
            Accounting::InFile { retries: 5 },
            Accounting::Nv {
                base: 7,
                seen: u64::MAX - 1,
            },
        ] {
            let record = PinRecord {
                kind: VerifierKind::Tpm,
                verifier: vec![9; 300],
                accounting,
            };
            let bytes = record.encode();
            assert_eq!(PinRecord::decode(&bytes), Ok(record.clone()));
            for len in 0..bytes.len() {
                assert!(PinRecord::decode(&bytes[..len]).is_err(), "length {len}");
            }
            let mut longer = bytes.to_vec();
            longer.push(0);
            assert!(PinRecord::decode(&longer).is_err());
        }
        assert_eq!(
            format!(
                "{:?}",
                PinRecord {
                    kind: VerifierKind::Argon2id,
                    verifier: vec![0xab; 4],
                    accounting: Accounting::InFile { retries: 8 },
                }
            ),
            "PinRecord { kind: Argon2id, verifier_len: 4, accounting: InFile { retries: 8 } }"
        );
    }
}
