//! Target `credential_id`: unwrapping credential IDs in the file keystore
//! (`Keystore::find_credential` of fido2d-storage's real `Store` over memory).
//!
//! The store is opened over a `master.key` the harness knows, so besides raw bytes the fuzzer
//! can hand it IDs that are properly sealed (AES-GCM, bound to an RP ID hash) yet malformed
//! inside, through fido2d-storage's `fuzzing` feature.
//!
//! Input: `op*`, each op a byte (mod 5) and its arguments, see [`step`].
//!
//! Invariants (beyond "never panics"):
//! - an ID is found only for the RP ID hash it was sealed for: a genuine ID of one RP never
//!   unwraps for another, a sealed one only for the hash in its associated data;
//! - raw bytes, a genuine ID with any byte changed, cut or extended, and IDs sealed under
//!   another master key or with another version byte are never found;
//! - a found non-discoverable credential holds exactly the key and algorithm sealed in it;
//!   a sealed discoverable ID without its record is not found;
//! - a signature made with a found key verifies under the public key the store reports for it.

use std::sync::{Mutex, OnceLock};

use protocol::env::{
    Algorithm, Credential, CredentialExtras, Keystore, NewCredential, RelyingParty, UserEntity,
};
use protocol::testing::SeededRng;
use sha2::{Digest, Sha256};
use storage::fuzzing::SealingKeys;
use storage::{FileKeystore, KeystoreOptions, MemoryPersistence, Persistence, SoftwareKeys, Store};

use crate::input::Input;
use crate::verify::PublicKey;

pub const MASTER: [u8; 32] = [0x4d; 32];
const OTHER_MASTER: [u8; 32] = [0x6f; 32];
const RP_IDS: [&str; 2] = ["example.com", "example.org"];
const VERSION_SOFTWARE: u8 = 0x01;

struct Fixture {
    store: FileKeystore<SeededRng>,
    keys: SealingKeys,
    other: SealingKeys,
    rp_hashes: [[u8; 32]; 2],
    /// (RP index, credential) of every credential the store made.
    genuine: Vec<(usize, Credential)>,
}

fn fixture() -> &'static Mutex<Fixture> {
    static FIXTURE: OnceLock<Mutex<Fixture>> = OnceLock::new();
    FIXTURE.get_or_init(|| Mutex::new(make_fixture()))
}

fn make_fixture() -> Fixture {
    let keys = SealingKeys::new(MASTER);
    let mut persistence = MemoryPersistence::new();
    persistence
        .write("master.key", &keys.master_key_file())
        .expect("memory write");
    let mut store = Store::with_persistence(
        Box::new(persistence),
        SoftwareKeys,
        SeededRng::new(7),
        KeystoreOptions::default(),
    )
    .expect("the fixture store opens");
    let rp_hashes = RP_IDS.map(|id| Sha256::digest(id.as_bytes()).into());
    let mut genuine = Vec::new();
    for (rp, discoverable, algorithm) in [
        (0, false, Algorithm::Es256),
        (0, true, Algorithm::Es256),
        (1, false, Algorithm::EdDsa),
        (1, true, Algorithm::EdDsa),
    ] {
        let rp_entity = RelyingParty {
            id: RP_IDS[rp].into(),
            name: None,
        };
        let user = UserEntity {
            id: vec![rp as u8, discoverable as u8],
            name: Some("user".into()),
            display_name: None,
        };
        let (credential, _) = store
            .create_credential(&NewCredential {
                rp: &rp_entity,
                rp_id_hash: &rp_hashes[rp],
                user: &user,
                algorithm,
                discoverable,
                extras: &CredentialExtras::default(),
            })
            .expect("the fixture credentials are made");
        genuine.push((rp, credential));
    }
    Fixture {
        store,
        keys,
        other: SealingKeys::new(OTHER_MASTER),
        rp_hashes,
        genuine,
    }
}

pub fn run(data: &[u8]) {
    let mut fixture = fixture().lock().unwrap_or_else(|e| e.into_inner());
    let mut input = Input::new(data);
    for _ in 0..32 {
        if input.is_empty() {
            break;
        }
        step(&mut fixture, &mut input);
    }
}

/// An RP ID hash: one of the two RPs' (0, 1) or 32 bytes of input.
fn rp_hash(f: &Fixture, input: &mut Input) -> [u8; 32] {
    match input.byte() % 3 {
        i @ (0 | 1) => f.rp_hashes[usize::from(i)],
        _ => input.array(),
    }
}

/// The plaintext of an ID: structured (flags, algorithm, key, extras) or raw.
fn plaintext(input: &mut Input) -> Vec<u8> {
    let shape = input.byte();
    if shape & 0x80 != 0 {
        return input.bytes().to_vec();
    }
    let mut p = vec![shape & 0x03, input.byte() % 4];
    let key = match input.byte() % 3 {
        0 => input.array::<32>().to_vec(),
        1 => vec![0x5a; 32],
        _ => input.bytes().to_vec(),
    };
    let declared = if shape & 0x40 != 0 {
        input.u16()
    } else {
        key.len() as u16
    };
    p.extend_from_slice(&declared.to_be_bytes());
    p.extend_from_slice(&key);
    if shape & 0x20 != 0 {
        p.extend_from_slice(input.bytes());
    } else {
        p.extend_from_slice(&CredentialExtras::default().encode());
    }
    p
}

fn step(f: &mut Fixture, input: &mut Input) {
    match input.byte() % 5 {
        // Raw bytes.
        0 => {
            let rp = rp_hash(f, input);
            let id = input.bytes().to_vec();
            let found = find(f, &rp, &id);
            check_genuine_only(f, &rp, &id, found.as_ref());
        }
        // Sealed with the store's master key, for one RP, looked up for one.
        1 | 2 => {
            let other_key = input.byte() & 1 == 1;
            let version = match input.byte() {
                v if v & 0x80 == 0 => VERSION_SOFTWARE,
                v => v & 0x7f,
            };
            let nonce = input.array::<12>();
            let sealed_for = rp_hash(f, input);
            let asked_for = if input.byte() & 1 == 0 {
                sealed_for
            } else {
                rp_hash(f, input)
            };
            let plaintext = plaintext(input);
            let keys = if other_key { &f.other } else { &f.keys };
            let id = keys.credential_id(version, &nonce, &sealed_for, &plaintext);
            let found = find(f, &asked_for, &id);
            if f.genuine.iter().any(|(_, c)| c.id == id) {
                check_genuine_only(f, &asked_for, &id, found.as_ref());
                return;
            }
            let Some(credential) = found else { return };
            assert!(
                !other_key,
                "an ID sealed under another master key unwrapped"
            );
            assert_eq!(
                version, VERSION_SOFTWARE,
                "an ID of version {version} unwrapped"
            );
            assert_eq!(asked_for, sealed_for, "an ID unwrapped for another RP");
            assert!(
                !credential.discoverable,
                "a discoverable ID without a record was found"
            );
            assert_eq!(credential.id, id);
            assert_eq!(credential.rp_id_hash, asked_for);
            assert_eq!(plaintext[0] & 1, 0);
            assert_eq!(
                Some(credential.algorithm),
                Algorithm::from_byte(plaintext[1])
            );
            let len = usize::from(u16::from_be_bytes([plaintext[2], plaintext[3]]));
            assert_eq!(credential.key.as_bytes(), &plaintext[4..4 + len]);
            check_signature(f, &credential, input);
        }
        // A genuine ID, changed.
        3 => {
            let Some((rp, credential)) = pick(f, input) else {
                return;
            };
            let mut id = credential.id.clone();
            match input.byte() % 3 {
                0 => {
                    let at = usize::from(input.u16()) % id.len();
                    let mask = input.byte().max(1);
                    id[at] ^= mask;
                }
                1 => id.truncate(usize::from(input.u16()) % id.len()),
                _ => {
                    let extra = input.bytes();
                    id.extend_from_slice(if extra.is_empty() { &[0] } else { extra });
                }
            }
            let rp_hash = f.rp_hashes[rp];
            let found = find(f, &rp_hash, &id);
            assert!(found.is_none(), "a changed genuine ID unwrapped");
        }
        // A genuine ID, for its own RP or another.
        _ => {
            let Some((rp, credential)) = pick(f, input) else {
                return;
            };
            let asked_for = rp_hash(f, input);
            let found = find(f, &asked_for, &credential.id);
            if asked_for == f.rp_hashes[rp] {
                let found = found.expect("a genuine ID is found for its RP");
                assert_eq!(found.id, credential.id);
                assert_eq!(found.key.as_bytes(), credential.key.as_bytes());
                check_signature(f, &found, input);
            } else {
                assert!(
                    found.is_none(),
                    "a genuine ID of one RP unwrapped for another"
                );
            }
        }
    }
}

fn pick(f: &Fixture, input: &mut Input) -> Option<(usize, Credential)> {
    let n = f.genuine.len();
    f.genuine
        .get(usize::from(input.byte()) % n)
        .map(|(rp, c)| (*rp, c.clone()))
}

fn find(f: &mut Fixture, rp: &[u8; 32], id: &[u8]) -> Option<Credential> {
    f.store
        .find_credential(rp, id)
        .expect("find_credential never fails for an ID that is not ours")
}

/// Raw bytes are found only if they are a genuine ID, and then only for its RP.
fn check_genuine_only(f: &Fixture, rp: &[u8; 32], id: &[u8], found: Option<&Credential>) {
    let Some(found) = found else { return };
    let genuine = f
        .genuine
        .iter()
        .find(|(_, c)| c.id == id)
        .expect("bytes that are no genuine ID unwrapped");
    assert_eq!(
        &f.rp_hashes[genuine.0], rp,
        "a genuine ID unwrapped for another RP"
    );
    assert_eq!(found.rp_id_hash, *rp);
}

/// Signing with a found key either fails cleanly or makes a signature its public key verifies.
fn check_signature(f: &mut Fixture, credential: &Credential, input: &mut Input) {
    let message = input.bytes().to_vec();
    let signature = f.store.sign(credential, &message);
    let public = f.store.public_key(credential);
    match (signature, public) {
        (Ok(signature), Ok(public)) => {
            let key = match public.algorithm {
                Algorithm::Es256 => PublicKey::from_sec1(&public.raw),
                Algorithm::EdDsa => <[u8; 32]>::try_from(public.raw.as_slice())
                    .ok()
                    .and_then(|raw| ed25519_dalek::VerifyingKey::from_bytes(&raw).ok())
                    .map(PublicKey::Ed25519),
            }
            .expect("the store reports a valid public key");
            assert!(
                key.verifies(&message, &signature),
                "a signature does not verify under the credential's public key"
            );
        }
        (Ok(_), Err(e)) => panic!("signed but has no public key: {e}"),
        (Err(_), _) => {}
    }
}

/// Seeds: each genuine ID found for its RP and for the other, a sealed ID of each shape.
pub fn typed_programs() -> Vec<(&'static str, Vec<u8>)> {
    let mut programs = Vec::new();
    let mut p = Vec::new();
    for i in 0..4u8 {
        p.extend([4, i, 0, 0, 0, 4, i, 1, 0, 0]);
    }
    programs.push(("typed-genuine", p));
    // Op 1, this master key, version 0x01, nonce, sealed for and asked for RP 0, structured
    // plaintext (flags 0, ES256, the 0x5a.. key, no extras), signing "hi".
    let mut p = vec![1, 0, 0];
    p.extend([0x11; 12]);
    p.extend([0, 0, 0x00, 1, 1, 0, 2, b'h', b'i']);
    programs.push(("typed-sealed", p));
    let mut p = vec![3, 0, 0, 0, 5, 0xff, 3, 1, 1, 0, 0, 20, 3, 2, 2, 0, 1, 0xaa];
    p.extend([0, 0, 0, 65]);
    p.extend([0x01; 65]);
    programs.push(("typed-tampered", p));
    programs
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
        crate::committed_seeds::assert_committed("credential_id", programs);
    }

    #[test]
    fn a_sealed_id_for_its_rp_is_found_and_signs() {
        let mut f = make_fixture();
        let mut plaintext = vec![0, 1, 0, 32];
        plaintext.extend([0x5a; 32]);
        plaintext.extend_from_slice(&CredentialExtras::default().encode());
        let id = f
            .keys
            .credential_id(1, &[3; 12], &f.rp_hashes[0], &plaintext);
        let rp = f.rp_hashes[0];
        let found = find(&mut f, &rp, &id).expect("found for its RP");
        assert_eq!(found.key.as_bytes(), &[0x5a; 32]);
        let rp = f.rp_hashes[1];
        assert!(find(&mut f, &rp, &id).is_none());
    }
}
