//! authenticatorClientPIN (CTAP 2.1 §6.5): PIN retries, key agreement, setPIN, changePIN and
//! the pinUvAuthToken subcommands, and, with built-in user verification, getUVRetries and
//! getPinUvAuthTokenUsingUvWithPermissions.
//!
//! The retry counters are written to the keystore before the PIN is compared (or the person is
//! verified) and before any answer leaves, so pulling the plug mid-guess never gives a free try.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::ctap2::authenticator::Authenticator;
use crate::ctap2::pin::built_in_uv::UvResult;
use crate::ctap2::pin::protocol::{PinProtocol, PlatformKey, SharedSecret};
use crate::ctap2::pin::token::{permission, MAX_CONSECUTIVE_MISMATCHES};
use crate::ctap2::state::persistent::{MAX_PIN_RETRIES, MAX_UV_RETRIES};
use crate::env::{Clock, Env, Keystore, Operation, PinCheck, Presence, PresenceRequest, Rng};
use crate::status::StatusCode;
use crate::wire::{
    ClientPinRequest, ClientPinResponse, ClientPinSubcommand, KeyAgreementPublicKey,
};

/// A new PIN arrives padded with zeros to 64 bytes (§6.5.5.5), so at most 63 bytes long.
const PADDED_PIN_LEN: usize = 64;
pub const MAX_PIN_BYTES: usize = PADDED_PIN_LEN - 1;

/// §6.5.5.7.2/§6.5.5.7.3 steps 3-4: at least one permission (INVALID_PARAMETER), only ones
/// this key grants (UNAUTHORIZED_PERMISSION: no bio enrollment, nothing unknown), and mc and
/// ga always for one RP (§6.5.5.7 "permissions RP ID": MISSING_PARAMETER without it).
///
/// CTAP 2.2: pcmr is granted only alone (it names a different token, the persistent one):
/// with any other permission it is UNAUTHORIZED_PERMISSION, as on pico-fido and YubiKey 5.8;
/// its RP ID, if sent, is ignored (libfido2's documentation: "The rpid is ignored").
fn token_permissions(permissions: i128, rp_id: Option<&str>) -> Result<u8, StatusCode> {
    if permissions == 0 {
        return Err(StatusCode::InvalidParameter);
    }
    let permissions = u8::try_from(permissions)
        .ok()
        .filter(|p| p & !permission::SUPPORTED == 0)
        .ok_or(StatusCode::UnauthorizedPermission)?;
    let pcmr = permission::PERSISTENT_CREDENTIAL_MANAGEMENT_READ_ONLY;
    if permissions & pcmr != 0 && permissions != pcmr {
        return Err(StatusCode::UnauthorizedPermission);
    }
    if permissions & (permission::MAKE_CREDENTIAL | permission::GET_ASSERTION) != 0
        && rp_id.is_none()
    {
        return Err(StatusCode::MissingParameter);
    }
    Ok(permissions)
}

/// fido2d's PIN complexity policy (getInfo pinComplexityPolicy, CTAP 2.3 §6.4 0x1B: the
/// policy is the authenticator's to define): once setMinPINLength turned it on, a new PIN may
/// not be a single repeated character ("0000", "aaaaaa") nor a run of consecutive characters,
/// up or down ("1234", "987654", "abcdef"): the PINs a guesser tries first.
pub(crate) fn meets_complexity_policy(pin: &str) -> bool {
    let points: Vec<u32> = pin.chars().map(u32::from).collect();
    if points.len() < 2 {
        return true;
    }
    let steps: Vec<i64> = points
        .windows(2)
        .map(|w| i64::from(w[1]) - i64::from(w[0]))
        .collect();
    let uniform = |step: i64| steps.iter().all(|&s| s == step);
    !(uniform(0) || uniform(1) || uniform(-1))
}

/// A new PIN, as the keystore gets it: LEFT(SHA-256(PIN), 16), and its length in code points.
struct NewPin {
    hash: Zeroizing<[u8; 16]>,
    code_points: u8,
}

/// A parameter the subcommand needs: absent is CTAP2_ERR_MISSING_PARAMETER.
fn required<T>(value: Option<T>) -> Result<T, StatusCode> {
    value.ok_or(StatusCode::MissingParameter)
}

impl<E: Env> Authenticator<E> {
    pub(crate) fn client_pin(
        &mut self,
        request: ClientPinRequest,
    ) -> Result<ClientPinResponse, StatusCode> {
        use ClientPinSubcommand as Sub;
        match request.sub_command {
            Sub::GetPinRetries => self.get_pin_retries(),
            Sub::GetKeyAgreement => self.get_key_agreement(&request),
            Sub::SetPin => self.set_pin(request),
            Sub::ChangePin => self.change_pin(request),
            Sub::GetPinToken => self.get_pin_token(request),
            Sub::GetPinUvAuthTokenUsingPinWithPermissions => self.get_token_with_pin(request),
            // Built-in UV is what these two need; without it they are not supported, as on a
            // security key without a fingerprint reader.
            Sub::GetPinUvAuthTokenUsingUvWithPermissions if self.presence.built_in_uv() => {
                self.get_token_with_uv(request)
            }
            Sub::GetUvRetries if self.presence.built_in_uv() => self.get_uv_retries(),
            Sub::GetPinUvAuthTokenUsingUvWithPermissions | Sub::GetUvRetries => {
                Err(StatusCode::InvalidSubcommand)
            }
        }
    }

    /// §6.5.5.1 getPinRetries: the counter, and whether a power cycle is needed first.
    fn get_pin_retries(&mut self) -> Result<ClientPinResponse, StatusCode> {
        let retries = self.pin_retries()?;
        let power_cycle = self.pin.consecutive_mismatches >= MAX_CONSECUTIVE_MISMATCHES;
        Ok(ClientPinResponse {
            pin_retries: Some(retries.into()),
            power_cycle_state: Some(power_cycle),
            ..ClientPinResponse::default()
        })
    }

    /// §6.5.5.3 getUVRetries: the built-in UV attempts left.
    fn get_uv_retries(&mut self) -> Result<ClientPinResponse, StatusCode> {
        let retries = self.state()?.uv_retries;
        Ok(ClientPinResponse {
            uv_retries: Some(retries.into()),
            ..ClientPinResponse::default()
        })
    }

    /// §6.5.5.2 getKeyAgreement: the public key of the protocol's key agreement key.
    fn get_key_agreement(
        &mut self,
        request: &ClientPinRequest,
    ) -> Result<ClientPinResponse, StatusCode> {
        let protocol = PinProtocol::from_param(required(request.pin_uv_auth_protocol)?)?;
        let rng = &mut self.rng;
        let key = self.pin.key_agreement(protocol, |b| rng.fill_bytes(b));
        Ok(ClientPinResponse {
            key_agreement: Some(key.public_key()),
            ..ClientPinResponse::default()
        })
    }

    /// The shared secret with the platform's keyAgreement key (decapsulate).
    pub(crate) fn shared_secret(
        &mut self,
        protocol: PinProtocol,
        platform_key: &KeyAgreementPublicKey,
    ) -> Result<SharedSecret, StatusCode> {
        let platform_key = PlatformKey::from_wire(platform_key)?;
        let rng = &mut self.rng;
        let key = self.pin.key_agreement(protocol, |b| rng.fill_bytes(b));
        Ok(key.decapsulate(protocol, &platform_key))
    }

    /// §6.5.5.5 setPIN: only on a key without a PIN.
    fn set_pin(&mut self, request: ClientPinRequest) -> Result<ClientPinResponse, StatusCode> {
        // 1-2. Mandatory parameters, known protocol.
        let key_agreement = required(request.key_agreement)?;
        let new_pin_enc = required(request.new_pin_enc)?;
        let pin_uv_auth_param = required(request.pin_uv_auth_param)?;
        let protocol = PinProtocol::from_param(required(request.pin_uv_auth_protocol)?)?;
        // 3. A PIN already set is changed with changePIN, never overwritten.
        if self.pin_is_set()? {
            return Err(StatusCode::PinAuthInvalid);
        }
        // 4-5. Shared secret; the platform proves it holds it by a MAC over newPinEnc.
        let shared = self.shared_secret(protocol, &key_agreement?)?;
        if !shared.verify(&new_pin_enc, &pin_uv_auth_param) {
            return Err(StatusCode::PinAuthInvalid);
        }
        // 6-8. Decrypt, check against the policy, give it to the keystore with full retries
        //    (it keeps a verifier, not the hash), then note its length.
        let pin = self.decrypt_new_pin(&shared, &new_pin_enc)?;
        self.keystore.set_pin(&pin.hash, MAX_PIN_RETRIES)?;
        self.update_state(|state| {
            state.pin_code_points = Some(pin.code_points);
            // No persistent token outlives the PIN it was granted with (a new one is drawn
            // when next needed).
            state.persistent_token = None;
        })?;
        Ok(ClientPinResponse::default())
    }

    /// §6.5.5.6 changePIN.
    fn change_pin(&mut self, request: ClientPinRequest) -> Result<ClientPinResponse, StatusCode> {
        // 1-2. Mandatory parameters, known protocol.
        let key_agreement = required(request.key_agreement)?;
        let pin_hash_enc = required(request.pin_hash_enc)?;
        let new_pin_enc = required(request.new_pin_enc)?;
        let pin_uv_auth_param = required(request.pin_uv_auth_param)?;
        let protocol = PinProtocol::from_param(required(request.pin_uv_auth_protocol)?)?;
        // 3. No retries left, or three wrong in a row since power-up.
        self.check_pin_usable()?;
        // 4-5. Shared secret; the MAC covers newPinEnc || pinHashEnc.
        let shared = self.shared_secret(protocol, &key_agreement?)?;
        let message = [&new_pin_enc[..], &pin_hash_enc[..]].concat();
        if !shared.verify(&message, &pin_uv_auth_param) {
            return Err(StatusCode::PinAuthInvalid);
        }
        // 6-7. The current PIN (retries spent first, restored on a match).
        let current = self.check_pin_hash(protocol, &shared, &pin_hash_enc)?;
        // 8. The new PIN against the policy; under forcePINChange it must differ from the
        //    current one, which was just verified to be `current`.
        let pin = self.decrypt_new_pin(&shared, &new_pin_enc)?;
        if self.state()?.force_pin_change && bool::from(current.ct_eq(pin.hash.as_slice())) {
            return Err(StatusCode::PinPolicyViolation);
        }
        // 9-10. Store it; every token handed out under the old PIN stops working.
        self.keystore.set_pin(&pin.hash, MAX_PIN_RETRIES)?;
        self.update_state(|state| {
            state.pin_code_points = Some(pin.code_points);
            state.force_pin_change = false;
            // CTAP 2.2: a PIN change ends the persistentPinUvAuthToken (pcmr) too: a new one
            // is drawn when next needed.
            state.persistent_token = None;
        })?;
        let rng = &mut self.rng;
        self.pin.reset_tokens(|b| rng.fill_bytes(b));
        Ok(ClientPinResponse::default())
    }

    /// §6.5.5.7.1 getPinToken (the CTAP 2.0 way): a token with the default mc and ga
    /// permissions, for any RP.
    fn get_pin_token(
        &mut self,
        request: ClientPinRequest,
    ) -> Result<ClientPinResponse, StatusCode> {
        // 1-2. Mandatory parameters, known protocol.
        let key_agreement = required(request.key_agreement)?;
        let pin_hash_enc = required(request.pin_hash_enc)?;
        let protocol = PinProtocol::from_param(required(request.pin_uv_auth_protocol)?)?;
        // 3-4. Permissions belong to the 2.1 subcommand.
        if request.permissions.is_some() || request.rp_id.is_some() {
            return Err(StatusCode::InvalidParameter);
        }
        self.issue_token_for_pin(
            protocol,
            key_agreement,
            &pin_hash_enc,
            permission::MAKE_CREDENTIAL | permission::GET_ASSERTION,
            None,
            // forcePINChange: getPinToken answers PIN_INVALID (§6.5.5.7.1 step 11).
            StatusCode::PinInvalid,
        )
    }

    /// §6.5.5.7.2 getPinUvAuthTokenUsingPinWithPermissions.
    fn get_token_with_pin(
        &mut self,
        request: ClientPinRequest,
    ) -> Result<ClientPinResponse, StatusCode> {
        // 1-2. Mandatory parameters, known protocol.
        let key_agreement = required(request.key_agreement)?;
        let pin_hash_enc = required(request.pin_hash_enc)?;
        let permissions = required(request.permissions)?;
        let protocol = PinProtocol::from_param(required(request.pin_uv_auth_protocol)?)?;
        // 3-4. Permissions this key grants, with an RP ID where they need one.
        let permissions = token_permissions(permissions, request.rp_id.as_deref())?;
        self.issue_token_for_pin(
            protocol,
            key_agreement,
            &pin_hash_enc,
            permissions,
            request.rp_id,
            StatusCode::PinPolicyViolation,
        )
    }

    /// The shared steps of both PIN token subcommands: check the PIN, then hand out a fresh
    /// token, encrypted to the platform.
    fn issue_token_for_pin(
        &mut self,
        protocol: PinProtocol,
        key_agreement: Result<KeyAgreementPublicKey, StatusCode>,
        pin_hash_enc: &[u8],
        permissions: u8,
        rp_id: Option<String>,
        force_pin_change_status: StatusCode,
    ) -> Result<ClientPinResponse, StatusCode> {
        // 5. PIN set, retries left, no power cycle needed.
        self.check_pin_usable()?;
        // 6. Shared secret.
        let shared = self.shared_secret(protocol, &key_agreement?)?;
        // 7-10. Spend a retry, compare, restore the retries on a match.
        self.check_pin_hash(protocol, &shared, pin_hash_enc)?;
        // 11. A PIN that must be changed first gives no token.
        if self.state()?.force_pin_change {
            return Err(force_pin_change_status);
        }
        // 12-15. A PIN is no gesture: the token's user present flag starts false.
        self.hand_out_token(protocol, &shared, permissions, rp_id, false)
    }

    /// §6.5.5.7.3 getPinUvAuthTokenUsingUvWithPermissions (only with built-in UV).
    fn get_token_with_uv(
        &mut self,
        request: ClientPinRequest,
    ) -> Result<ClientPinResponse, StatusCode> {
        // 1-2. Mandatory parameters, known protocol.
        let key_agreement = required(request.key_agreement)?;
        let permissions = required(request.permissions)?;
        let protocol = PinProtocol::from_param(required(request.pin_uv_auth_protocol)?)?;
        // 3-4. Permissions this key grants (uvAcfg: acfg included), with an RP ID where they
        //    need one.
        let permissions = token_permissions(permissions, request.rp_id.as_deref())?;
        // 5. Built-in UV is configured: the dispatcher only comes here with it.
        // 6. preferredPlatformUvAttempts > 1: the platform retries, so internalRetry is false.
        // 7. No attempt left: UV_BLOCKED, without asking anyone.
        if self.state()?.uv_retries == 0 {
            return Err(StatusCode::UvBlocked);
        }
        // The shared secret before the person is asked: a bad keyAgreement costs no attempt.
        let shared = self.shared_secret(protocol, &key_agreement?)?;
        // 8-9. The prompt (our "display": the person may refuse) and the verification, for the
        //    operation the permissions are for.
        let operation = if permissions & permission::MAKE_CREDENTIAL != 0 {
            Operation::Register
        } else if permissions & permission::GET_ASSERTION != 0 {
            Operation::Authenticate
        } else {
            Operation::ManageKey
        };
        let uv_request = PresenceRequest {
            operation,
            rp_id: request.rp_id.as_deref(),
            user_name: None,
        };
        match self.perform_built_in_uv(&uv_request, false)? {
            UvResult::Verified => {}
            // 8. Not approved.
            UvResult::Denied => return Err(StatusCode::OperationDenied),
            // 10.1. A user action timeout.
            UvResult::TimedOut => return Err(StatusCode::UserActionTimeout),
            UvResult::Cancelled => return Err(StatusCode::KeepaliveCancel),
            // 10.2-10.3. No attempt left, or a wrong secret.
            UvResult::Failed { blocked: true } => return Err(StatusCode::UvBlocked),
            UvResult::Failed { blocked: false } => return Err(StatusCode::UvInvalid),
            // The verifier is broken: like a method that is not configured (step 5), and no
            //  attempt is spent.
            UvResult::Unavailable => return Err(StatusCode::NotAllowed),
        }
        // 11-15. The person acted to be verified: the token's user present flag starts true.
        self.hand_out_token(protocol, &shared, permissions, request.rp_id, true)
    }

    /// New tokens for every protocol (resetPinUvAuthToken), this one in use
    /// (beginUsingPinUvAuthToken) with its permissions and permissions RP ID, encrypted to the
    /// platform.
    fn hand_out_token(
        &mut self,
        protocol: PinProtocol,
        shared: &SharedSecret,
        permissions: u8,
        rp_id: Option<String>,
        user_present: bool,
    ) -> Result<ClientPinResponse, StatusCode> {
        if permissions == permission::PERSISTENT_CREDENTIAL_MANAGEMENT_READ_ONLY {
            return self.hand_out_persistent_token(shared);
        }
        let rng = &mut self.rng;
        self.pin.reset_tokens(|b| rng.fill_bytes(b));
        let now = self.clock.now_ms();
        self.pin
            .token
            .begin_using(user_present, permissions, rp_id, now);
        // The token in use belongs to the channel it was handed to (see `state`).
        self.runtime.token_handed_to(self.command.origin);
        let token = Zeroizing::new(
            *self
                .pin
                .token_bytes(protocol)
                .expect("tokens were just reset"),
        );
        let rng = &mut self.rng;
        let encrypted = shared.encrypt(token.as_slice(), |iv| rng.fill_bytes(iv));
        Ok(ClientPinResponse {
            pin_uv_auth_token: Some(Zeroizing::new(encrypted)),
            ..ClientPinResponse::default()
        })
    }

    /// pcmr (CTAP 2.2 §6.5.5.7): the persistentPinUvAuthToken, encrypted to the platform.
    /// The same token is handed out again until a PIN change, forcePINChange or a reset
    /// replaces it (see [`Self::persistent_token`]), so every platform the person gave the
    /// PIN to can keep using it across restarts. The ephemeral token in use is left as it is.
    fn hand_out_persistent_token(
        &mut self,
        shared: &SharedSecret,
    ) -> Result<ClientPinResponse, StatusCode> {
        let token = self.persistent_token()?;
        let rng = &mut self.rng;
        let encrypted = shared.encrypt(token.bytes(), |iv| rng.fill_bytes(iv));
        Ok(ClientPinResponse {
            pin_uv_auth_token: Some(Zeroizing::new(encrypted)),
            ..ClientPinResponse::default()
        })
    }

    /// May a PIN be tried now? PIN_NOT_SET, PIN_BLOCKED (no retries left, until reset) or
    /// PIN_AUTH_BLOCKED (three wrong in a row, until a power cycle).
    fn check_pin_usable(&mut self) -> Result<(), StatusCode> {
        self.state()?;
        let Some(retries) = self.keystore.pin_retries()? else {
            return Err(StatusCode::PinNotSet);
        };
        if retries == 0 {
            return Err(StatusCode::PinBlocked);
        }
        if self.pin.consecutive_mismatches >= MAX_CONSECUTIVE_MISMATCHES {
            return Err(StatusCode::PinAuthBlocked);
        }
        Ok(())
    }

    /// Checks pinHashEnc against the PIN, through the keystore: it spends a retry durably
    /// before the comparison and restores the retries on a match. A mismatch (or a pinHashEnc
    /// that does not even decrypt to 16 bytes) regenerates the key agreement key, so the
    /// platform must start over. Returns the PIN hash that matched.
    ///
    /// A keystore that checks no PIN for now (a TPM in dictionary-attack lockout) spends no
    /// retry: that is CTAP2_ERR_PIN_AUTH_BLOCKED, "try again later" to a platform, which
    /// neither counts it as a wrong PIN nor suggests a reset; the keystore says why in its log.
    fn check_pin_hash(
        &mut self,
        protocol: PinProtocol,
        shared: &SharedSecret,
        pin_hash_enc: &[u8],
    ) -> Result<Zeroizing<[u8; 16]>, StatusCode> {
        let given = shared.decrypt(pin_hash_enc);
        let given: &[u8] = given.as_deref().map_or(&[], |given| given.as_slice());
        match self.keystore.verify_pin(given)? {
            PinCheck::Match => {}
            PinCheck::Mismatch { retries } => {
                self.pin.regenerate(protocol);
                self.pin.consecutive_mismatches = self.pin.consecutive_mismatches.saturating_add(1);
                return Err(if retries == 0 {
                    StatusCode::PinBlocked
                } else if self.pin.consecutive_mismatches >= MAX_CONSECUTIVE_MISMATCHES {
                    StatusCode::PinAuthBlocked
                } else {
                    StatusCode::PinInvalid
                });
            }
            PinCheck::Blocked => return Err(StatusCode::PinBlocked),
            PinCheck::LockedOut => return Err(StatusCode::PinAuthBlocked),
        }
        let mut hash = Zeroizing::new([0u8; 16]);
        hash.copy_from_slice(given);
        // The right PIN also unblocks built-in UV, as on a YubiKey Bio: the PIN is the
        // fallback that proves the person when UV has failed too often.
        self.pin.consecutive_mismatches = 0;
        // The PIN was entered: uvCountSinceLastPinEntry starts over (CTAP 2.2 §6.4 0x17).
        let state = self.state()?;
        if state.uv_retries != MAX_UV_RETRIES || state.uv_count_since_pin != 0 {
            self.update_state(|state| {
                state.uv_retries = MAX_UV_RETRIES;
                state.uv_count_since_pin = 0;
            })?;
        }
        Ok(hash)
    }

    /// Decrypts newPinEnc and checks it against the PIN policy: 64 padded bytes, the PIN
    /// itself UTF-8 of at least minPINLength code points and at most 63 bytes.
    fn decrypt_new_pin(
        &mut self,
        shared: &SharedSecret,
        new_pin_enc: &[u8],
    ) -> Result<NewPin, StatusCode> {
        let padded = shared
            .decrypt(new_pin_enc)
            .ok_or(StatusCode::InvalidParameter)?;
        if padded.len() != PADDED_PIN_LEN {
            return Err(StatusCode::InvalidParameter);
        }
        // The PIN is what comes before the zero padding; the last byte must be padding.
        let len = padded
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(PADDED_PIN_LEN);
        if len > MAX_PIN_BYTES || padded[len..].iter().any(|&b| b != 0) {
            return Err(StatusCode::PinPolicyViolation);
        }
        let pin = &padded[..len];
        let code_points = std::str::from_utf8(pin)
            .map_err(|_| StatusCode::PinPolicyViolation)?
            .chars()
            .count();
        if code_points < usize::from(self.state()?.min_pin_length) {
            return Err(StatusCode::PinPolicyViolation);
        }
        let text = std::str::from_utf8(pin).map_err(|_| StatusCode::PinPolicyViolation)?;
        if self.state()?.pin_complexity_policy && !meets_complexity_policy(text) {
            return Err(StatusCode::PinPolicyViolation);
        }
        let digest = Zeroizing::new(Sha256::digest(pin));
        let mut hash = Zeroizing::new([0u8; 16]);
        hash.copy_from_slice(&digest[..16]);
        Ok(NewPin {
            hash,
            // At most 63 code points, so it fits.
            code_points: code_points as u8,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests;
