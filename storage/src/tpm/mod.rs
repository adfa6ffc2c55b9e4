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

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr as _;
use std::time::Duration;

use protocol::env::{Algorithm, KeyMaterial, KeystoreError, PublicKey, Rng};
use sha2::{Digest as _, Sha256};
use tss_esapi::attributes::SessionAttributesBuilder;
use tss_esapi::constants::tss::{TPM2_RH_NULL, TPM2_ST_HASHCHECK};
use tss_esapi::constants::{CapabilityType, NvIndexType, PropertyTag, SessionType};
use tss_esapi::handles::{
    KeyHandle, NvIndexHandle, NvIndexTpmHandle, PersistentTpmHandle, TpmHandle,
};
use tss_esapi::interface_types::algorithm::HashingAlgorithm;
use tss_esapi::interface_types::resource_handles::{Hierarchy, NvAuth, Provision};
use tss_esapi::interface_types::session_handles::AuthSession;
use tss_esapi::structures::{
    Auth, CapabilityData, Digest, EccParameter, HashcheckTicket, Public, SensitiveData, Signature,
    SignatureScheme, SymmetricDefinition,
};
use tss_esapi::tcti_ldr::TctiNameConf;
use tss_esapi::tss2_esys::TPMT_TK_HASHCHECK;
use tss_esapi::Context;
use zeroize::Zeroizing;

use self::blob::Blob;
pub use self::error::TpmError;
use crate::backend::{
    sealed, BackendKind, DictionaryAttack, KeyAuth, KeyBackend, MonotonicCounters, PinAuth,
    PinHashCost, PinSecret, PinUnseal, TpmInfo, UnsealError, VerifierKind, TPM_MASTER_FILE,
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

/// How long NV commands wait out a TPM that rate-limits NV writes, and in which steps.
const NV_RATE_PATIENCE: Duration = Duration::from_secs(30);
const NV_RATE_PAUSE: Duration = Duration::from_millis(500);

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
    /// Why fido2d cannot define NV counters on this TPM (its owner hierarchy has a password);
    /// `None` when it can.
    no_counters: Option<String>,
    /// The ESAPI handles of the NV counters met so far, by NV index handle.
    nv_handles: HashMap<u32, NvIndexHandle>,
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
        // Defining an NV index needs the owner hierarchy's authorization, which is its
        // password: with one set, trying the empty one would only feed the lockout counter.
        let no_counters = match read_permanent(&mut context)? & PERMANENT_OWNER_AUTH_SET {
            0 => None,
            _ => Some(
                "the TPM's owner hierarchy has a password, so fido2d cannot define its NV \
                 counters: the signature counter and the PIN retries are kept in the state \
                 directory only, and a restored older copy of it goes unnoticed"
                    .to_owned(),
            ),
        };
        Ok(TpmKeys {
            context,
            parent,
            info,
            no_counters,
            nv_handles: HashMap::new(),
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

/// TPMA_PERMANENT bits (TPM 2.0 Part 2, 8.6).
const PERMANENT_OWNER_AUTH_SET: u32 = 1 << 0;
const PERMANENT_LOCKOUT_AUTH_SET: u32 = 1 << 2;
const PERMANENT_IN_LOCKOUT: u32 = 1 << 9;

/// The variable TPM properties from TPM_PT_PERMANENT on, read now (tss-esapi's
/// `get_tpm_property` caches what it read once, which suits only the fixed ones).
fn variable_properties(context: &mut Context) -> Result<HashMap<PropertyTag, u32>, TpmError> {
    let first: u32 = PropertyTag::Permanent.into();
    let mut retries = START_RETRIES.iter();
    let data = loop {
        match context.execute_without_session(|ctx| {
            ctx.get_capability(CapabilityType::TpmProperties, first, 0x20)
        }) {
            Ok((data, _)) => break data,
            Err(err) if error::is_transient(&err) => match retries.next() {
                Some(pause) => std::thread::sleep(*pause),
                None => return Err(TpmError::command("GetCapability", err)),
            },
            Err(err) => return Err(TpmError::command("GetCapability", err)),
        }
    };
    let CapabilityData::TpmProperties(list) = data else {
        return Err(TpmError::Command {
            action: "GetCapability",
            reason: "the TPM answered with another capability".into(),
        });
    };
    Ok(list
        .iter()
        .map(|property| (property.property(), property.value()))
        .collect())
}

fn read_permanent(context: &mut Context) -> Result<u32, TpmError> {
    Ok(variable_properties(context)?
        .get(&PropertyTag::Permanent)
        .copied()
        .unwrap_or(0))
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

    fn pin_verifier_kind(&self) -> VerifierKind {
        VerifierKind::Tpm
    }

    /// A sealed object holding `secret`, with `auth` as its authValue and without `noDA`: the
    /// TPM counts every wrong PIN. The TPM draws nothing from `rng`; `cost` is the file
    /// backend's.
    fn seal_pin_secret(
        &mut self,
        auth: &PinAuth,
        secret: &PinSecret,
        _cost: PinHashCost,
        _rng: &mut dyn Rng,
    ) -> Result<Vec<u8>, StorageError> {
        let seal_error = |err| StorageError::Tpm(TpmError::command("Create (PIN verifier)", err));
        let template = templates::pin_verifier().map_err(seal_error)?;
        let data = SensitiveData::try_from(secret.as_bytes().to_vec()).map_err(seal_error)?;
        let auth = Auth::try_from(auth.as_bytes().to_vec()).map_err(seal_error)?;
        let blob = self
            .create(template, Some(auth), Some(data))
            .map_err(seal_error)?;
        blob.encode().map_err(|reason| {
            StorageError::Tpm(TpmError::Command {
                action: "Create (PIN verifier)",
                reason,
            })
        })
    }

    /// TPM2_Unseal of the verifier, authorised by `auth` in the HMAC session: a wrong PIN is an
    /// authorization failure of a DA-protected object, which raises TPM_PT_LOCKOUT_COUNTER.
    fn unseal_pin_secret(
        &mut self,
        verifier: &[u8],
        auth: &PinAuth,
    ) -> Result<PinUnseal, StorageError> {
        let blob = Blob::decode(verifier).ok_or_else(|| StorageError::Corrupt {
            kind: "PIN verifier",
            path: "pin.state".into(),
            reason: "not a TPM object".into(),
        })?;
        let auth = Auth::try_from(auth.as_bytes().to_vec())
            .map_err(|err| StorageError::Tpm(TpmError::command("Unseal (PIN)", err)))?;
        let unsealed = self.with_loaded(blob, Some(auth), "Unseal (PIN)", |tpm, handle| {
            // The secret is encrypted on its way out.
            tpm.encrypt_parameters(false, true)?;
            tpm.context.unseal(handle.into())
        });
        match unsealed {
            Ok(data) => PinSecret::from_bytes(data.value())
                .map(PinUnseal::Secret)
                .ok_or_else(|| StorageError::Corrupt {
                    kind: "PIN verifier",
                    path: "pin.state".into(),
                    reason: "the sealed object does not hold a 32-byte secret".into(),
                }),
            Err((_, err)) if error::tpm_code(&err) == Some(error::TPM_RC_LOCKOUT) => {
                Ok(PinUnseal::LockedOut)
            }
            Err(("Unseal (PIN)", err)) if error::is_auth_failure(&err) => Ok(PinUnseal::Wrong),
            Err((action, err)) => Err(StorageError::Tpm(TpmError::command(action, err))),
        }
    }

    fn dictionary_attack(&mut self) -> Result<Option<DictionaryAttack>, StorageError> {
        let properties = variable_properties(&mut self.context)?;
        let get = |tag| properties.get(&tag).copied().unwrap_or(0);
        let permanent = get(PropertyTag::Permanent);
        Ok(Some(DictionaryAttack {
            failures: get(PropertyTag::LockoutCounter),
            max_failures: get(PropertyTag::MaxAuthFail),
            recovery_seconds: get(PropertyTag::LockoutInterval),
            lockout_recovery_seconds: get(PropertyTag::LockoutRecovery),
            in_lockout: permanent & PERMANENT_IN_LOCKOUT != 0,
            lockout_auth_set: permanent & PERMANENT_LOCKOUT_AUTH_SET != 0,
        }))
    }

    fn monotonic_counters(&mut self) -> Option<&mut dyn MonotonicCounters> {
        match self.no_counters {
            None => Some(self),
            Some(_) => None,
        }
    }

    fn no_counters_reason(&self) -> Option<&str> {
        self.no_counters.as_deref()
    }
}

impl TpmKeys {
    /// The ESAPI handle of the NV counter at `handle`; `None` if there is no index there. An
    /// index that is not a counter like ours is an error: another program uses that handle.
    fn nv_index(&mut self, handle: u32) -> Result<Option<NvIndexHandle>, TpmError> {
        if let Some(nv) = self.nv_handles.get(&handle) {
            return Ok(Some(*nv));
        }
        let tpm_handle = NvIndexTpmHandle::new(handle)
            .map_err(|err| TpmError::command("NV index handle", err))?;
        let object = match self
            .context
            .execute_without_session(|ctx| ctx.tr_from_tpm_public(TpmHandle::NvIndex(tpm_handle)))
        {
            Ok(object) => object,
            Err(err) if error::tpm_code(&err) == Some(error::TPM_RC_HANDLE) => return Ok(None),
            Err(err) => return Err(TpmError::command("NV_ReadPublic", err)),
        };
        let nv = NvIndexHandle::from(object);
        let (public, _) = self
            .context
            .execute_without_session(|ctx| ctx.nv_read_public(nv))
            .map_err(|err| TpmError::command("NV_ReadPublic", err))?;
        let attributes = public.attributes();
        let ours = attributes.index_type().ok() == Some(NvIndexType::Counter)
            && attributes.auth_read()
            && attributes.auth_write()
            && attributes.no_da()
            && !attributes.policy_write()
            && !attributes.owner_write()
            && !attributes.platform_create()
            && public.data_size() == 8
            && public.authorization_policy().is_empty();
        if !ours {
            let mut object = object;
            let _ = self.context.tr_close(&mut object);
            return Err(TpmError::NvIndexTaken { handle });
        }
        self.nv_handles.insert(handle, nv);
        Ok(Some(nv))
    }

    /// Runs an NV command, asking again while the TPM is busy, and for up to
    /// [`NV_RATE_PATIENCE`] while it rate-limits NV writes (TPM_RC_NV_RATE, which a burst of
    /// increments can cause: moving an old counter file's values over takes one per 1024).
    fn nv_command<T>(
        &mut self,
        action: &'static str,
        mut f: impl FnMut(&mut Context) -> tss_esapi::Result<T>,
    ) -> Result<T, TpmError> {
        self.encrypt_parameters(false, false)
            .map_err(|err| TpmError::command(action, err))?;
        let mut retries = START_RETRIES.iter();
        let mut rate_limited = Duration::ZERO;
        loop {
            match f(&mut self.context) {
                Ok(value) => return Ok(value),
                Err(err)
                    if error::tpm_code(&err) == Some(error::TPM_RC_NV_RATE)
                        && rate_limited < NV_RATE_PATIENCE =>
                {
                    std::thread::sleep(NV_RATE_PAUSE);
                    rate_limited += NV_RATE_PAUSE;
                }
                Err(err) if error::is_transient(&err) => match retries.next() {
                    Some(pause) => std::thread::sleep(*pause),
                    None => return Err(TpmError::command(action, err)),
                },
                Err(err) => return Err(TpmError::command(action, err)),
            }
        }
    }
}

impl MonotonicCounters for TpmKeys {
    fn read(&mut self, handle: u32) -> Result<Option<u64>, StorageError> {
        let Some(nv) = self.nv_index(handle)? else {
            return Ok(None);
        };
        let read = self.nv_command("NV_Read", |ctx| ctx.nv_read(NvAuth::NvIndex(nv), nv, 8, 0));
        match read {
            Ok(data) => {
                let bytes: [u8; 8] = data.value().try_into().map_err(|_| {
                    StorageError::Tpm(TpmError::Command {
                        action: "NV_Read",
                        reason: format!("{} bytes instead of 8", data.value().len()),
                    })
                })?;
                Ok(Some(u64::from_be_bytes(bytes)))
            }
            // Defined but never incremented.
            Err(TpmError::Command { .. }) if !self.nv_written(nv)? => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    fn increment(&mut self, handle: u32) -> Result<u64, StorageError> {
        let nv = match self.nv_index(handle)? {
            Some(nv) => nv,
            None => {
                let public = templates::nv_counter(handle)
                    .map_err(|err| TpmError::command("NV counter template", err))?;
                let nv = self.nv_command("NV_DefineSpace", |ctx| {
                    ctx.nv_define_space(Provision::Owner, None, public.clone())
                })?;
                self.nv_handles.insert(handle, nv);
                nv
            }
        };
        self.nv_command("NV_Increment", |ctx| {
            ctx.nv_increment(NvAuth::NvIndex(nv), nv)
        })?;
        self.read(handle)?.ok_or_else(|| {
            StorageError::Tpm(TpmError::Command {
                action: "NV_Read",
                reason: "the counter reads as unwritten right after NV_Increment".into(),
            })
        })
    }

    fn remove(&mut self, handle: u32) -> Result<(), StorageError> {
        let Some(nv) = self.nv_index(handle)? else {
            return Ok(());
        };
        self.nv_command("NV_UndefineSpace", |ctx| {
            ctx.nv_undefine_space(Provision::Owner, nv)
        })?;
        self.nv_handles.remove(&handle);
        Ok(())
    }
}

impl TpmKeys {
    fn nv_written(&mut self, nv: NvIndexHandle) -> Result<bool, TpmError> {
        let (public, _) = self
            .context
            .execute_without_session(|ctx| ctx.nv_read_public(nv))
            .map_err(|err| TpmError::command("NV_ReadPublic", err))?;
        Ok(public.attributes().written())
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
