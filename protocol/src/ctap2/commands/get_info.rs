//! authenticatorGetInfo (CTAP 2.1 §6.4, with the members CTAP 2.2 and 2.3 added: see
//! `protocol/CTAP23.md` for which of them fido2d has, and why the others do not apply).
//!
//! **encIdentifier and encCredStoreState** (CTAP 2.3 §6.4, 0x19 and 0x1E) are 16-byte values
//! encrypted to whoever holds the persistentPinUvAuthToken (pcmr): with
//! key = HKDF-SHA-256(salt = 32 zero bytes, IKM = persistent token, info = "encIdentifier" or
//! "encCredStoreState", L = 16), the member is IV (16 random bytes) || AES-128-CBC(key, IV,
//! value). The token, the identifier and the state are drawn at the first getInfo (or pcmr
//! grant) and kept sealed (see `persistent_state`), so both members are always there, as on
//! hardware keys and as conformance tools expect (encIdentifier must not disappear after a
//! reset); only a platform the person granted pcmr can read them. Not over hybrid.

use aes::cipher::{BlockModeEncrypt, KeyIvInit};
use sha2::Sha256;

use crate::ctap2::authenticator::Authenticator;
use crate::ctap2::commands::{config, large_blobs};
use crate::ctap2::extensions;
use crate::ctap2::pin::built_in_uv::PREFERRED_PLATFORM_UV_ATTEMPTS;
use crate::ctap2::pin::client_pin::MAX_PIN_BYTES;
use crate::ctap2::pin::protocol::PinProtocol;
use crate::ctap2::state::persistent::{IDENTIFIER_LEN, PERSISTENT_TOKEN_LEN};
use crate::env::{Algorithm, Env, Keystore, Presence, Rng};
use crate::status::StatusCode;
use crate::wire::{GetInfoRequest, GetInfoResponse, PublicKeyCredentialParameters};

/// getInfo attestationFormats: the formats makeCredential can produce besides "none", which
/// every authenticator can return and which CTAP 2.3 §6.4 says must not be listed.
/// attestationFormatsPreference chooses among these and "none".
pub const ATTESTATION_FORMAT_NAMES: [&str; 1] = ["packed"];

/// The versions: CTAP 2.3 names its own "FIDO_2_3" (it defines no "FIDO_2_2"); its mandatory
/// features (hmac-secret; rk with clientPin or uv, and credMgmt; credProtect with user
/// verification; pinUvAuthToken; PIN/UV auth protocol two) are the ones FIDO_2_1 asks, all
/// here. See `protocol/CTAP23.md`.
const VERSION_NAMES: [&str; 5] = ["U2F_V2", "FIDO_2_0", "FIDO_2_1_PRE", "FIDO_2_1", "FIDO_2_3"];

/// The getInfo options a hybrid peer is told: its ceremonies' own, and built-in UV.
const HYBRID_OPTIONS: [&str; 5] = ["rk", "up", "plat", "uv", "makeCredUvNotRqd"];
/// encIdentifier / encCredStoreState (CTAP 2.3 §6.4): `value` encrypted to the holder of the
/// persistent token, under a fresh IV.
pub(crate) fn encrypt_to_persistent_token(
    token: &[u8; PERSISTENT_TOKEN_LEN],
    info: &str,
    value: &[u8; IDENTIFIER_LEN],
    iv: [u8; 16],
) -> Vec<u8> {
    let mut key = zeroize::Zeroizing::new([0u8; 16]);
    hkdf::Hkdf::<Sha256>::new(Some(&[0u8; 32]), token)
        .expand(info.as_bytes(), key.as_mut_slice())
        .expect("16 bytes is a valid HKDF-SHA-256 length");
    let mut block = aes::Block::from(*value);
    cbc::Encryptor::<aes::Aes128>::new_from_slices(key.as_slice(), &iv)
        .expect("16-byte key and IV")
        .encrypt_block(&mut block);
    [&iv[..], &block[..]].concat()
}

/// How many allowList/excludeList entries a platform may send at once.
pub const MAX_CREDENTIAL_COUNT_IN_LIST: u64 = 64;

impl<E: Env> Authenticator<E> {
    pub(crate) fn get_info(
        &mut self,
        _request: GetInfoRequest,
    ) -> Result<GetInfoResponse, StatusCode> {
        let texts = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let state = self.state()?.clone();
        let pin_set = self.pin_is_set()?;
        // With alwaysUv on, U2F (which cannot verify the user) is off (CTAP 2.1 §9.2).
        let versions = VERSION_NAMES
            .into_iter()
            .filter(|v| !(state.always_uv && *v == "U2F_V2"))
            .map(String::from)
            .collect();
        let mut options = vec![
            ("rk", true),
            ("up", true),
            ("plat", false),
            // clientPin: present means supported; its value says whether a PIN is set.
            ("clientPin", pin_set),
            ("pinUvAuthToken", true),
            ("credMgmt", true),
            // The FIDO_2_1_PRE name of credMgmt (command 0x41), for older platforms.
            ("credentialMgmtPreview", true),
            ("authnrCfg", true),
            ("largeBlobs", true),
            ("setMinPINLength", true),
            // Non-discoverable credentials without UV, unless alwaysUv forbids any.
            ("makeCredUvNotRqd", !state.always_uv),
            ("alwaysUv", state.always_uv),
            // CTAP 2.2: the pcmr permission and its persistent token are supported.
            ("perCredMgmtRO", true),
        ];
        // "uv" only exists with built-in user verification; its value says whether it is
        // configured (it is, whenever the environment offers it). clientPin stays as it is:
        // the PIN is the fallback when UV fails. A UV token may carry acfg too ("uvAcfg").
        let built_in_uv = self.presence.built_in_uv();
        if built_in_uv {
            options.push(("uv", true));
            options.push(("uvAcfg", true));
        }
        // A hybrid peer is told what it is served (see `hybrid_policy`): what a phone offers,
        // without the PIN, management, configuration and large blobs.
        let hybrid = self.command.origin.is_hybrid();
        if hybrid {
            options.retain(|(name, _)| HYBRID_OPTIONS.contains(name));
        }
        let algorithms = [Algorithm::Es256, Algorithm::EdDsa]
            .into_iter()
            .filter(|alg| self.keystore.supports(*alg))
            .map(|alg| PublicKeyCredentialParameters::public_key(alg.cose_id()))
            .collect();
        let transports = self.config.transports.clone();
        let pin_protocols = PinProtocol::SUPPORTED
            .iter()
            .map(|p| p.number().into())
            .collect();
        let mut info = GetInfoResponse {
            versions,
            extensions: Some(texts(&extensions::SUPPORTED)),
            aaguid: self.config.aaguid,
            options: Some(
                options
                    .into_iter()
                    .map(|(name, on)| (name.to_owned(), on))
                    .collect(),
            ),
            max_msg_size: Some(self.config.max_msg_size as u64),
            pin_uv_auth_protocols: Some(pin_protocols),
            max_credential_count_in_list: Some(MAX_CREDENTIAL_COUNT_IN_LIST),
            max_credential_id_length: Some(self.config.max_credential_id_length as u64),
            // Reset is served where the person can touch the key: not over hybrid.
            transports_for_reset: Some(
                transports
                    .iter()
                    .filter(|t| *t != "hybrid")
                    .cloned()
                    .collect(),
            ),
            transports: Some(transports),
            algorithms: Some(algorithms),
            max_serialized_large_blob_array: Some(
                large_blobs::MAX_SERIALIZED_LARGE_BLOB_ARRAY as u64,
            ),
            force_pin_change: Some(state.force_pin_change),
            min_pin_length: Some(state.min_pin_length.into()),
            firmware_version: Some(self.config.firmware_version),
            max_cred_blob_length: Some(extensions::MAX_CRED_BLOB_LENGTH as u64),
            max_rp_ids_for_set_min_pin_length: Some(
                config::MAX_RP_IDS_FOR_SET_MIN_PIN_LENGTH as u64,
            ),
            remaining_discoverable_credentials: Some(
                self.keystore.remaining_discoverable_credentials() as u64,
            ),
            attestation_formats: Some(texts(&ATTESTATION_FORMAT_NAMES)),
            // Present: the policy exists; its value: whether setMinPINLength turned it on.
            pin_complexity_policy: Some(state.pin_complexity_policy),
            // In code points; a PIN is at most 63 bytes (§6.5.5.5), so 63 ASCII characters.
            max_pin_length: Some(MAX_PIN_BYTES as u64),
            // toggleAlwaysUv and setMinPINLength (no enterprise attestation, no vendor command).
            authenticator_config_commands: Some(
                config::SUPPORTED_SUBCOMMANDS.map(u64::from).to_vec(),
            ),
            ..GetInfoResponse::default()
        };
        // A state that cannot be written now (a full disk) costs these two members, not the
        // getInfo every platform starts with.
        let token = if hybrid {
            None
        } else {
            self.persistent_token().ok()
        };
        if let Some(token) = token {
            let state = self.state()?.clone();
            let members = [
                (
                    &mut info.enc_identifier,
                    "encIdentifier",
                    &state.device_identifier,
                ),
                (
                    &mut info.enc_cred_store_state,
                    "encCredStoreState",
                    &state.cred_store_state,
                ),
            ];
            for (member, label, value) in members {
                if let Some(value) = value {
                    let mut iv = [0u8; 16];
                    self.rng.fill_bytes(&mut iv);
                    *member = Some(encrypt_to_persistent_token(
                        token.bytes(),
                        label,
                        value.bytes(),
                        iv,
                    ));
                }
            }
        }
        // The members about what a hybrid peer is not served (the PIN and its policy, large
        // blobs, reset, configuration, the persistent token's members). pinUvAuthProtocols
        // stays: hmac-secret's key agreement uses it.
        if hybrid {
            info.max_serialized_large_blob_array = None;
            info.force_pin_change = None;
            info.min_pin_length = None;
            info.max_rp_ids_for_set_min_pin_length = None;
            info.enc_identifier = None;
            info.transports_for_reset = None;
            info.pin_complexity_policy = None;
            info.max_pin_length = None;
            info.enc_cred_store_state = None;
            info.authenticator_config_commands = None;
        }
        if built_in_uv {
            info.preferred_platform_uv_attempts = Some(PREFERRED_PLATFORM_UV_ATTEMPTS.into());
            info.uv_modality = Some(self.presence.uv_modality().into());
            info.uv_count_since_last_pin_entry = Some(state.uv_count_since_pin.into());
        }
        Ok(info)
    }
}

#[cfg(test)]
mod tests;
