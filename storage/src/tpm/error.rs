//! Why the TPM cannot serve as the keystore, told so a person knows what to do.
//!
//! tss-esapi 7.7 reports many failures (all of the TCTI layer's) as "response code not
//! recognized", so they are classified by the raw TSS2 response code: its layer (bits 16..23)
//! says who answered, the TPM's own codes say why.

use bitfield::BitRange as _;
use tss_esapi::constants::response_code::Tss2ResponseCode;

/// The TCTI layer: the transport to the TPM failed (no device node, nothing listening).
const LAYER_TCTI: u32 = 10;
/// A TPM 2.0 format-one code: the error number is in bits 0..5 plus the format bit 7; bits
/// 6 and 8..11 name the parameter, handle or session it concerns.
const RC_FMT1: u32 = 0x080;
const RC_FMT1_MASK: u32 = 0x0bf;
/// TPM 2.0 response codes (TPM 2.0 Part 2, 6.6).
pub(crate) const TPM_RC_INITIALIZE: u32 = 0x100;
pub(crate) const TPM_RC_FAILURE: u32 = 0x101;
pub(crate) const TPM_RC_AUTH_FAIL: u32 = RC_FMT1 + 0x00e;
pub(crate) const TPM_RC_BAD_AUTH: u32 = RC_FMT1 + 0x022;
const TPM_RC_VALUE: u32 = RC_FMT1 + 0x004;
const TPM_RC_SIZE: u32 = RC_FMT1 + 0x015;
const TPM_RC_KEY: u32 = RC_FMT1 + 0x01c;
pub(crate) const TPM_RC_HANDLE: u32 = RC_FMT1 + 0x00b;
const TPM_RC_BINDING: u32 = RC_FMT1 + 0x025;
const TPM_RC_INTEGRITY: u32 = RC_FMT1 + 0x01f;
pub(crate) const TPM_RC_OBJECT_MEMORY: u32 = 0x902;
pub(crate) const TPM_RC_SESSION_MEMORY: u32 = 0x903;
pub(crate) const TPM_RC_LOCKOUT: u32 = 0x921;
/// Warnings (bit 11 with format zero): the TPM is busy or still testing itself; try again.
const TPM_RC_YIELDED: u32 = 0x908;
const TPM_RC_TESTING: u32 = 0x90a;
const TPM_RC_RETRY: u32 = 0x922;
pub(crate) const TPM_RC_NV_RATE: u32 = 0x920;

/// Why the TPM backend could not start or go on. Messages hold no secret.
#[derive(Debug, thiserror::Error)]
pub enum TpmError {
    /// Nothing answers at the TCTI: no device node, nothing listening.
    #[error("no TPM at {tcti}: {reason}")]
    Absent { tcti: String, reason: String },

    /// The TCTI string is not one tss-esapi understands.
    #[error(
        "\"{tcti}\" is not a TCTI fido2d understands (device:/dev/tpmrm0, \
         swtpm:host=127.0.0.1,port=2321, mssim:host=...,port=..., tabrmd:)"
    )]
    BadTcti { tcti: String },

    /// The device node exists but cannot be opened (permissions, busy).
    #[error(
        "cannot open the TPM at {tcti}: {reason} (the daemon needs read-write access to \
         the device, e.g. membership of group tss for /dev/tpmrm0)"
    )]
    Inaccessible { tcti: String, reason: String },

    /// The owner hierarchy has a password: fido2d cannot create its storage key there.
    #[error(
        "the TPM's owner hierarchy has a password, so fido2d cannot create its storage key \
         under it: have the owner create a persistent storage key (tpm2_createprimary -C o \
         -c primary.ctx; tpm2_evictcontrol -C o -c primary.ctx 0x81000001) and start with \
         --tpm-parent 0x81000001"
    )]
    OwnerAuthSet,

    /// The configured persistent parent key is not there or not a storage key.
    #[error("the TPM has no usable storage key at persistent handle {handle:#010x}: {reason}")]
    NoParent { handle: u32, reason: String },

    /// The TPM refuses authorizations because of dictionary-attack lockout.
    #[error(
        "the TPM is in dictionary-attack lockout; it recovers by itself after its lockout \
         interval, or the owner can reset it (tpm2_dictionarylockout -c)"
    )]
    Lockout,

    /// The NV index handle fido2d derived for one of its counters holds another program's index.
    #[error(
        "the TPM's NV index {handle:#010x}, which fido2d would use as a monotonic counter, \
         belongs to another program (it is not an 8-byte counter with fido2d's attributes); \
         see it with tpm2_nvreadpublic"
    )]
    NvIndexTaken { handle: u32 },

    /// TPM2_Startup has not been run (no firmware or kernel started the TPM).
    #[error("the TPM has not been started (TPM2_Startup was not run)")]
    NotStarted,

    /// No room for another loaded object or session: another program holds them.
    #[error(
        "the TPM has no room for another {what} (another program holds them); use the \
         kernel's resource manager (device:/dev/tpmrm0)"
    )]
    OutOfMemory { what: &'static str },

    /// The sealed master secret does not load: the TPM was cleared or is another one.
    #[error(
        "the TPM cannot unseal the master secret in {file} ({reason}): the TPM was cleared or \
         replaced, or the state directory comes from another machine. Every credential made \
         with it is gone; move the state directory aside to start afresh, and register the \
         key again with your accounts"
    )]
    MasterSecretLost { file: &'static str, reason: String },

    /// Any other failure of a TPM command.
    #[error("TPM {action} failed: {reason}")]
    Command {
        action: &'static str,
        reason: String,
    },
}

impl TpmError {
    /// Whether the failure means there is no TPM (so `--keystore auto` may use the file).
    pub fn is_absent(&self) -> bool {
        matches!(self, TpmError::Absent { .. })
    }

    /// A failed TPM command: named after its cause where the cause has a clearer message.
    pub(crate) fn command(action: &'static str, err: tss_esapi::Error) -> Self {
        match tpm_code(&err) {
            Some(TPM_RC_LOCKOUT) => TpmError::Lockout,
            Some(TPM_RC_INITIALIZE) => TpmError::NotStarted,
            Some(TPM_RC_OBJECT_MEMORY) => TpmError::OutOfMemory { what: "object" },
            Some(TPM_RC_SESSION_MEMORY) => TpmError::OutOfMemory { what: "session" },
            _ => TpmError::Command {
                action,
                reason: describe(&err),
            },
        }
    }
}

/// The raw TSS2 response code of a TSS failure; `None` for the wrapper's own errors.
pub(crate) fn raw_code(err: &tss_esapi::Error) -> Option<u32> {
    match err {
        tss_esapi::Error::Tss2Error(Tss2ResponseCode::FormatZero(rc)) => Some(rc.bit_range(31, 0)),
        tss_esapi::Error::Tss2Error(Tss2ResponseCode::FormatOne(rc)) => Some(rc.bit_range(31, 0)),
        _ => None,
    }
}

/// The code of an answer from the TPM itself (layer 0), without the parameter, handle or
/// session number of format-one codes.
pub(crate) fn tpm_code(err: &tss_esapi::Error) -> Option<u32> {
    let rc = raw_code(err)?;
    if rc >> 16 != 0 {
        return None;
    }
    Some(if rc & RC_FMT1 != 0 {
        rc & RC_FMT1_MASK
    } else {
        rc & 0xfff
    })
}

/// Whether the transport failed (no TPM there), rather than the TPM answering.
pub(crate) fn is_tcti_failure(err: &tss_esapi::Error) -> bool {
    raw_code(err).is_some_and(|rc| (rc >> 16) & 0xff == LAYER_TCTI)
}

/// Whether the TPM asked to be asked again (busy, self-testing).
pub(crate) fn is_transient(err: &tss_esapi::Error) -> bool {
    matches!(
        tpm_code(err),
        Some(TPM_RC_YIELDED | TPM_RC_TESTING | TPM_RC_RETRY | TPM_RC_NV_RATE)
    )
}

/// Whether TPM2_Load refused a blob as not made under this parent on this TPM: its integrity
/// value does not verify (another storage key, which is what a cleared TPM has) or its
/// contents do not unmarshal.
pub(crate) fn is_foreign_blob(err: &tss_esapi::Error) -> bool {
    matches!(
        tpm_code(err),
        Some(TPM_RC_INTEGRITY | TPM_RC_SIZE | TPM_RC_VALUE | TPM_RC_KEY | TPM_RC_BINDING)
    )
}

/// Whether the TPM refused an authorization value (a wrong auth or a foreign key).
pub(crate) fn is_auth_failure(err: &tss_esapi::Error) -> bool {
    matches!(tpm_code(err), Some(TPM_RC_AUTH_FAIL | TPM_RC_BAD_AUTH))
}

/// tss-esapi's message, with the raw code it often leaves out; the TSS's own layers (whose
/// codes tss-esapi 7.7 does not know) by name.
pub(crate) fn describe(err: &tss_esapi::Error) -> String {
    let Some(rc) = raw_code(err) else {
        return err.to_string();
    };
    let layer = (rc >> 16) & 0xff;
    if layer != 0 {
        let layer_name = match layer {
            6 => "feature API",
            7 => "ESAPI",
            8 => "SAPI",
            9 => "marshaling",
            LAYER_TCTI => "TCTI (transport)",
            11 | 12 => "resource manager",
            _ => "TSS",
        };
        return format!("{layer_name} error: {} ({rc:#x})", base_error(rc & 0xffff));
    }
    if rc & 0xfff == TPM_RC_FAILURE {
        return format!("the TPM is in failure mode (response code {rc:#x})");
    }
    format!("{err} (TPM response code {rc:#x})")
}

/// The TSS2 base response codes (tss2_common.h), shared by every TSS layer.
fn base_error(code: u32) -> &'static str {
    match code {
        1 => "general failure",
        2 => "not implemented",
        3 => "bad context",
        4 => "ABI mismatch",
        5 => "bad reference",
        6 => "insufficient buffer",
        7 => "bad sequence",
        8 => "no connection",
        9 => "try again",
        10 => "input/output error (nothing answers there?)",
        11 => "bad value",
        12 => "not permitted",
        13 => "invalid sessions",
        14 => "no decrypt parameter",
        15 => "no encrypt parameter",
        16 => "bad size",
        17 => "malformed response",
        18 => "insufficient context",
        19 => "insufficient response",
        20 => "incompatible TCTI",
        21 => "not supported",
        22 => "bad TCTI structure",
        23 => "out of memory",
        24 => "bad ESYS_TR handle",
        25 => "multiple decrypt sessions",
        26 => "multiple encrypt sessions",
        27 => "response authorization failed",
        _ => "unknown error",
    }
}
