//! The TPM backend: every credential key is created by a TPM 2.0 and never leaves it; the
//! master secret that seals the metadata is sealed by the TPM too.
//!
//! - A storage primary key (ECC P-256, fixed template, owner hierarchy) is recreated at start
//!   and kept loaded; or, when the owner hierarchy has a password, a persistent storage key the
//!   owner made is used as the parent.
//! - Each credential is a P-256 signing key created under it with `noDA` and an authValue
//!   derived from the master secret and the RP ID hash ([`KeyAuth`]). Its blob (the private
//!   area, encrypted by the TPM, and the public area) is all we keep.
//! - Signing loads the blob, signs the SHA-256 digest in the TPM and flushes the key.
//! - One HMAC session, salted with the parent key, authorizes every command, so authValues
//!   never cross the bus in the clear; the sealed data and the master secret are encrypted
//!   on the bus too (session parameter encryption).
//!
//! A `tss_esapi::Context` is a blocking C library handle: the store that owns it must stay
//! on one thread (the daemon's authenticator thread).

mod blob;
mod error;
pub mod templates;

use std::path::Path;
use std::str::FromStr as _;
use std::time::Duration;

use protocol::env::{Algorithm, KeyMaterial, KeystoreError, PublicKey, Rng};
use sha2::{Digest as _, Sha256};
use tss_esapi::attributes::SessionAttributesBuilder;
use tss_esapi::constants::tss::{TPM2_RH_NULL, TPM2_ST_HASHCHECK};
use tss_esapi::constants::{PropertyTag, SessionType};
use tss_esapi::handles::{KeyHandle, PersistentTpmHandle, TpmHandle};
use tss_esapi::interface_types::algorithm::HashingAlgorithm;
use tss_esapi::interface_types::resource_handles::Hierarchy;
use tss_esapi::interface_types::session_handles::AuthSession;
use tss_esapi::structures::{
    Auth, Digest, EccParameter, HashcheckTicket, Public, SensitiveData, Signature, SignatureScheme,
    SymmetricDefinition,
};
use tss_esapi::tcti_ldr::TctiNameConf;
use tss_esapi::tss2_esys::TPMT_TK_HASHCHECK;
use tss_esapi::Context;
use zeroize::Zeroizing;

use self::blob::Blob;
pub use self::error::TpmError;
use crate::backend::{
    sealed, BackendKind, KeyAuth, KeyBackend, TpmInfo, UnsealError, TPM_MASTER_FILE,
};
use crate::credential_id;
use crate::crypto::MasterKey;
use crate::store::{KeystoreOptions, Store};
use crate::StorageError;

/// The keystore whose keys live in the TPM.
pub type TpmKeystore<R> = Store<TpmKeys, R>;

/// A credential key's blob (both areas with their length prefixes) is 218 bytes on swtpm; this
/// bound leaves room for TPMs whose private areas carry more (a longer IV or integrity value).
const MAX_BLOB_LEN: usize = 320;

/// How often, and after how long, a busy or self-testing TPM is asked again at start.
const START_RETRIES: [Duration; 5] = [
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_millis(1000),
];

/// Where the TPM is and which parent key to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpmConfig {
    /// The TCTI: `device:/dev/tpmrm0` (the kernel's resource manager), `swtpm:host=..,port=..`.
    pub tcti: String,
    /// A persistent storage key (e.g. 0x81000001) to create keys under, instead of a primary
    /// key in the owner hierarchy: for TPMs whose owner hierarchy has a password.
    pub parent: Option<u32>,
}

impl TpmConfig {
    /// The kernel's resource manager: it flushes what a crashed daemon left loaded.
    pub const DEFAULT_TCTI: &'static str = "device:/dev/tpmrm0";
}

impl Default for TpmConfig {
    fn default() -> Self {
        TpmConfig {
            tcti: Self::DEFAULT_TCTI.into(),
            parent: None,
        }
    }
}

/// A TPM that answered: the first step of opening the TPM backend. Answering shows a TPM is
/// there; from here on every failure is an error, never a reason to use the file backend.
pub struct TpmConnection {
    context: Context,
    info: TpmInfo,
}

impl std::fmt::Debug for TpmConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TpmConnection")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl TpmConnection {
    /// Connects to the TPM at `tcti` and reads what it is.
    ///
    /// Blocks for as long as the TPM takes to answer, which is forever for an endpoint that
    /// accepts a connection and never answers: call it on a thread and give up after a
    /// timeout where that matters.
    pub fn connect(tcti: &str) -> Result<Self, TpmError> {
        let name =
            TctiNameConf::from_str(tcti).map_err(|_| TpmError::BadTcti { tcti: tcti.into() })?;
        let mut context = Context::new(name).map_err(|err| connect_error(tcti, &err))?;
        let info = read_info(tcti, &mut context)?;
        Ok(TpmConnection { context, info })
    }

    pub fn info(&self) -> &TpmInfo {
        &self.info
    }
}

/// Why `Context::new` failed: the transport (no TPM there) or the TPM.
fn connect_error(tcti: &str, err: &tss_esapi::Error) -> TpmError {
    if !error::is_tcti_failure(err) {
        return TpmError::command("connection", *err);
    }
    // A device node that exists is a TPM: not being able to open it is an error to fix, not
    // an absent TPM.
    if let Some(path) = device_path(tcti) {
        if Path::new(path).exists() {
            let reason = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .err()
                .map_or_else(|| error::describe(err), |io| io.to_string());
            return TpmError::Inaccessible {
                tcti: tcti.into(),
                reason,
            };
        }
        return TpmError::Absent {
            tcti: tcti.into(),
            reason: format!("{path} does not exist"),
        };
    }
    TpmError::Absent {
        tcti: tcti.into(),
        reason: format!("the connection failed: {}", error::describe(err)),
    }
}

/// The device path of a `device:` TCTI (tpm2-tss's default is /dev/tpm0).
fn device_path(tcti: &str) -> Option<&str> {
    match tcti.strip_prefix("device")? {
        "" | ":" => Some("/dev/tpm0"),
        config => config.strip_prefix(':'),
    }
}

/// Reads the TPM's identity, asking again while it is busy or testing itself (at boot).
fn read_info(tcti: &str, context: &mut Context) -> Result<TpmInfo, TpmError> {
    let mut property = |tag: PropertyTag| -> Result<u32, TpmError> {
        let mut retries = START_RETRIES.iter();
        loop {
            match context.get_tpm_property(tag) {
                Ok(value) => return Ok(value.unwrap_or(0)),
                Err(err) if error::is_transient(&err) => match retries.next() {
                    Some(pause) => std::thread::sleep(*pause),
                    None => return Err(TpmError::command("GetCapability", err)),
                },
                Err(err) => return Err(TpmError::command("GetCapability", err)),
            }
        }
    };
    let manufacturer = ascii(&[property(PropertyTag::Manufacturer)?]);
    let vendor = ascii(&[
        property(PropertyTag::VendorString1)?,
        property(PropertyTag::VendorString2)?,
        property(PropertyTag::VendorString3)?,
        property(PropertyTag::VendorString4)?,
    ]);
    let (v1, v2) = (
        property(PropertyTag::FirmwareVersion1)?,
        property(PropertyTag::FirmwareVersion2)?,
    );
    let revision = property(PropertyTag::Revision)?;
    Ok(TpmInfo {
        tcti: tcti.into(),
        manufacturer,
        vendor,
        firmware_version: format!("{}.{}.{}.{}", v1 >> 16, v1 & 0xffff, v2 >> 16, v2 & 0xffff),
        spec_revision: format!("{}.{:02}", revision / 100, revision % 100),
    })
}

/// TPM strings come as big-endian u32s of four ASCII characters, padded with NULs or spaces.
fn ascii(words: &[u32]) -> String {
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
    bytes
        .iter()
        .filter(|b| b.is_ascii_graphic() || **b == b' ')
        .map(|&b| char::from(b))
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The TPM backend: a connection with the parent key loaded and a session open.
pub struct TpmKeys {
    context: Context,
    parent: KeyHandle,
    info: TpmInfo,
}

impl std::fmt::Debug for TpmKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TpmKeys")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl TpmKeys {
    /// Connects and starts: see [`TpmConnection::connect`] and [`TpmKeys::start`].
    pub fn open(config: &TpmConfig) -> Result<Self, TpmError> {
        TpmKeys::start(TpmConnection::connect(&config.tcti)?, config.parent)
    }

    /// Recreates the storage primary key (or takes the persistent `parent`) and opens the
    /// session that authorizes every later command.
    pub fn start(connection: TpmConnection, parent: Option<u32>) -> Result<Self, TpmError> {
        let TpmConnection { mut context, info } = connection;
        let parent = match parent {
            None => create_primary(&mut context)?,
            Some(handle) => persistent_parent(&mut context, handle)?,
        };
        let session = context
            .start_auth_session(
                Some(parent),
                None,
                None,
                SessionType::Hmac,
                SymmetricDefinition::AES_128_CFB,
                HashingAlgorithm::Sha256,
            )
            .map_err(|err| TpmError::command("StartAuthSession", err))?
            .ok_or_else(|| TpmError::Command {
                action: "StartAuthSession",
                reason: "no session handle returned".into(),
            })?;
        context.set_sessions((Some(session), None, None));
        Ok(TpmKeys {
            context,
            parent,
            info,
        })
    }

    pub fn info(&self) -> &TpmInfo {
        &self.info
    }

    /// Sets the session's parameter encryption for the next command: `decrypt` encrypts its
    /// first parameter on the way in, `encrypt` its first response parameter on the way out.
    /// ESAPI refuses either for a command whose parameter cannot be encrypted.
    fn encrypt_parameters(&mut self, decrypt: bool, encrypt: bool) -> tss_esapi::Result<()> {
        let (Some(session), _, _) = self.context.sessions() else {
            return Ok(());
        };
        let (attributes, mask) = SessionAttributesBuilder::new()
            .with_continue_session(true)
            .with_decrypt(decrypt)
            .with_encrypt(encrypt)
            .build();
        self.context
            .tr_sess_set_attributes(session, attributes, mask)
    }

    /// TPM2_Create under the parent: a credential key, or a sealed object holding `data`.
    fn create(
        &mut self,
        template: Public,
        auth: Option<Auth>,
        data: Option<SensitiveData>,
    ) -> tss_esapi::Result<Blob> {
        // Encrypt the sensitive part (the authValue, the sealed data) on the bus.
        self.encrypt_parameters(true, false)?;
        let created = self
            .context
            .create(self.parent, template, auth, data, None, None)?;
        Ok(Blob {
            private: created.out_private,
            public: created.out_public,
        })
    }

    /// Loads `blob`, runs `f` (the command `action`) with it, and flushes it whatever `f`
    /// returned. The error names the command that failed.
    fn with_loaded<T>(
        &mut self,
        blob: Blob,
        auth: Option<Auth>,
        action: &'static str,
        f: impl FnOnce(&mut Self, KeyHandle) -> tss_esapi::Result<T>,
    ) -> Result<T, (&'static str, tss_esapi::Error)> {
        self.encrypt_parameters(false, false)
            .map_err(|err| ("Load", err))?;
        let handle = self
            .context
            .load(self.parent, blob.private, blob.public)
            .map_err(|err| ("Load", err))?;
        let result = match auth {
            Some(auth) => self.context.tr_set_auth(handle.into(), auth),
            None => Ok(()),
        }
        .and_then(|()| f(self, handle))
        .map_err(|err| (action, err));
        let flushed = self.context.flush_context(handle.into());
        let value = result?;
        flushed.map_err(|err| ("FlushContext", err))?;
        Ok(value)
    }
}

fn create_primary(context: &mut Context) -> Result<KeyHandle, TpmError> {
    let template =
        templates::storage_primary().map_err(|err| TpmError::command("template", err))?;
    // The owner hierarchy's authorization is its (empty) password.
    context
        .execute_with_session(Some(AuthSession::Password), |ctx| {
            ctx.create_primary(Hierarchy::Owner, template, None, None, None, None)
        })
        .map(|created| created.key_handle)
        .map_err(|err| {
            if error::is_auth_failure(&err) {
                TpmError::OwnerAuthSet
            } else {
                TpmError::command("CreatePrimary", err)
            }
        })
}

fn persistent_parent(context: &mut Context, handle: u32) -> Result<KeyHandle, TpmError> {
    let no_parent = |reason: String| TpmError::NoParent { handle, reason };
    let tpm_handle = PersistentTpmHandle::new(handle)
        .map_err(|_| no_parent("not a persistent handle (0x81000000..0x81ffffff)".into()))?;
    let object = context
        .execute_without_session(|ctx| ctx.tr_from_tpm_public(TpmHandle::Persistent(tpm_handle)))
        .map_err(|err| no_parent(error::describe(&err)))?;
    let key = KeyHandle::from(object);
    let (public, _, _) = context
        .execute_without_session(|ctx| ctx.read_public(key))
        .map_err(|err| no_parent(error::describe(&err)))?;
    let attributes = public.object_attributes();
    if !(attributes.restricted() && attributes.decrypt()) || attributes.sign_encrypt() {
        return Err(no_parent(
            "it is not a storage key (a restricted decryption key)".into(),
        ));
    }
    Ok(key)
}

fn auth_value(auth: &KeyAuth) -> Result<Auth, KeystoreError> {
    Auth::try_from(auth.as_bytes().to_vec())
        .map_err(|err| KeystoreError::Failure(format!("TPM authValue: {err}")))
}

fn failure(action: &'static str, err: tss_esapi::Error) -> KeystoreError {
    KeystoreError::Failure(TpmError::command(action, err).to_string())
}

/// A TPM ECDSA signature as ASN.1 DER (what WebAuthn wants).
fn der_signature(signature: Signature) -> Result<Vec<u8>, KeystoreError> {
    let Signature::EcDsa(ecdsa) = signature else {
        return Err(KeystoreError::Failure(
            "the TPM returned another kind of signature than ECDSA".into(),
        ));
    };
    let (r, s) = (
        field_bytes(ecdsa.signature_r()),
        field_bytes(ecdsa.signature_s()),
    );
    let signature = r
        .zip(s)
        .and_then(|(r, s)| p256::ecdsa::Signature::from_scalars(r, s).ok())
        .ok_or_else(|| KeystoreError::Failure("the TPM returned a malformed signature".into()))?;
    Ok(signature.to_der().as_bytes().to_vec())
}

/// A P-256 field element or scalar, left-padded to 32 bytes.
fn field_bytes(value: &EccParameter) -> Option<p256::FieldBytes> {
    let value = value.value();
    let start = 32usize.checked_sub(value.len())?;
    let mut out = p256::FieldBytes::default();
    out[start..].copy_from_slice(value);
    Some(out)
}

/// The SEC1 uncompressed point of a credential key's public area.
fn public_key(public: &Public) -> Option<PublicKey> {
    let Public::Ecc { unique, .. } = public else {
        return None;
    };
    let (x, y) = (field_bytes(unique.x())?, field_bytes(unique.y())?);
    let mut raw = Vec::with_capacity(65);
    raw.push(0x04);
    raw.extend_from_slice(&x);
    raw.extend_from_slice(&y);
    // The TPM made it, but a point off the curve must never reach a relying party.
    p256::PublicKey::from_sec1_bytes(&raw).ok()?;
    Some(PublicKey {
        algorithm: Algorithm::Es256,
        raw,
    })
}

fn null_ticket() -> tss_esapi::Result<HashcheckTicket> {
    HashcheckTicket::try_from(TPMT_TK_HASHCHECK {
        tag: TPM2_ST_HASHCHECK,
        hierarchy: TPM2_RH_NULL,
        digest: Default::default(),
    })
}

impl sealed::Sealed for TpmKeys {}

impl KeyBackend for TpmKeys {
    fn kind(&self) -> BackendKind {
        BackendKind::Tpm
    }

    fn tpm_info(&self) -> Option<&TpmInfo> {
        Some(&self.info)
    }

    /// ES256 only: TPM 2.0 has no Ed25519 in the TPMs that ship (nor in tss-esapi 7), and
    /// making EdDSA keys in software would break the promise that keys never leave the TPM.
    fn supports(&self, algorithm: Algorithm) -> bool {
        algorithm == Algorithm::Es256
    }

    fn id_version(&self) -> u8 {
        credential_id::VERSION_TPM
    }

    fn max_key_material_len(&self) -> usize {
        MAX_BLOB_LEN
    }

    /// The TPM draws the key: `rng` is not used.
    fn generate(
        &mut self,
        algorithm: Algorithm,
        auth: &KeyAuth,
        _rng: &mut dyn Rng,
    ) -> Result<(KeyMaterial, PublicKey), KeystoreError> {
        if algorithm != Algorithm::Es256 {
            return Err(KeystoreError::Failure(format!(
                "the TPM keystore cannot create {algorithm:?} keys"
            )));
        }
        let template = templates::credential_key().map_err(|err| failure("key template", err))?;
        let blob = self
            .create(template, Some(auth_value(auth)?), None)
            .map_err(|err| failure("Create", err))?;
        let public = public_key(&blob.public).ok_or_else(|| {
            KeystoreError::Failure("the TPM returned a key that is not a P-256 point".into())
        })?;
        let bytes = blob
            .encode()
            .map_err(KeystoreError::Failure)
            .and_then(|bytes| {
                if bytes.len() <= MAX_BLOB_LEN {
                    Ok(bytes)
                } else {
                    Err(KeystoreError::Failure(format!(
                        "the TPM's key blob is {} bytes, more than the {MAX_BLOB_LEN} allowed",
                        bytes.len()
                    )))
                }
            })?;
        Ok((KeyMaterial::new(bytes), public))
    }

    /// Read from the blob's public area: no TPM command.
    fn public_key(
        &self,
        algorithm: Algorithm,
        key: &KeyMaterial,
    ) -> Result<PublicKey, KeystoreError> {
        Blob::decode(key.as_bytes())
            .filter(|_| algorithm == Algorithm::Es256)
            .and_then(|blob| public_key(&blob.public))
            .ok_or_else(|| KeystoreError::Failure("the key material is not a TPM blob".into()))
    }

    fn sign(
        &mut self,
        algorithm: Algorithm,
        key: &KeyMaterial,
        auth: &KeyAuth,
        message: &[u8],
    ) -> Result<Vec<u8>, KeystoreError> {
        if algorithm != Algorithm::Es256 {
            return Err(KeystoreError::Failure(format!(
                "the TPM keystore holds no {algorithm:?} keys"
            )));
        }
        let blob = Blob::decode(key.as_bytes())
            .ok_or_else(|| KeystoreError::Failure("the key material is not a TPM blob".into()))?;
        let digest = Digest::try_from(Sha256::digest(message).to_vec())
            .map_err(|err| failure("digest", err))?;
        let ticket = null_ticket().map_err(|err| failure("hashcheck ticket", err))?;
        let signature = self
            .with_loaded(blob, Some(auth_value(auth)?), "Sign", |tpm, handle| {
                tpm.context
                    .sign(handle, digest, SignatureScheme::Null, ticket)
            })
            .map_err(|(action, err)| failure(action, err))?;
        der_signature(signature)
    }

    fn master_file(&self) -> &'static str {
        TPM_MASTER_FILE
    }

    fn seal_master(&mut self, master: &MasterKey) -> Result<Zeroizing<Vec<u8>>, StorageError> {
        let seal_error = |err| StorageError::Tpm(TpmError::command("Create (seal)", err));
        let template = templates::sealed_secret().map_err(seal_error)?;
        let data = SensitiveData::try_from(master.as_bytes().to_vec()).map_err(seal_error)?;
        let blob = self
            .create(template, None, Some(data))
            .map_err(seal_error)?;
        let file = blob.to_master_file().map_err(|reason| {
            StorageError::Tpm(TpmError::Command {
                action: "seal",
                reason,
            })
        })?;
        Ok(Zeroizing::new(file))
    }

    fn unseal_master(&mut self, sealed: &[u8]) -> Result<MasterKey, UnsealError> {
        let blob = Blob::from_master_file(sealed).map_err(UnsealError::Corrupt)?;
        let lost = |reason: String| {
            UnsealError::Refused(StorageError::Tpm(TpmError::MasterSecretLost {
                file: TPM_MASTER_FILE,
                reason,
            }))
        };
        let unsealed = self
            .with_loaded(blob, None, "Unseal", |tpm, handle| {
                // Encrypt the secret on its way out.
                tpm.encrypt_parameters(false, true)?;
                tpm.context.unseal(handle.into())
            })
            .map_err(|(action, err)| {
                // Only a blob the TPM finds foreign means the secret is gone; anything else
                // (a full TPM, a busy one) is an error to fix, with the secret still there.
                if action == "Load" && error::is_foreign_blob(&err) {
                    lost(error::describe(&err))
                } else {
                    UnsealError::Refused(StorageError::Tpm(TpmError::command(action, err)))
                }
            })?;
        MasterKey::from_bytes(unsealed.value())
            .ok_or_else(|| lost("the sealed object does not hold a 32-byte secret".into()))
    }
}

impl<R: Rng> Store<TpmKeys, R> {
    /// Opens (or creates) the TPM keystore in `state_dir`.
    pub fn open(
        state_dir: &Path,
        tpm: TpmKeys,
        rng: R,
        options: KeystoreOptions,
    ) -> Result<Self, StorageError> {
        Store::open_dir(state_dir, tpm, rng, options)
    }
}
