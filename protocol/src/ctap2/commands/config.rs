//! authenticatorConfig (CTAP 2.1 §6.11): toggleAlwaysUv and setMinPINLength. Enterprise
//! attestation is not something this key offers, so enableEnterpriseAttestation is an
//! unsupported subcommand, as on a key without it.

use crate::ctap2::authenticator::Authenticator;
use crate::ctap2::pin::token::permission;
use crate::env::Env;
use crate::status::StatusCode;
use crate::wire::{ConfigRequest, ConfigSubcommand, NoBody, SetMinPinLengthParams};

/// getInfo maxRPIDsForSetMinPINLength.
pub const MAX_RP_IDS_FOR_SET_MIN_PIN_LENGTH: usize = 8;
/// The longest minimum we accept: a longer one could never be met by a 63-byte PIN.
const MAX_MIN_PIN_LENGTH: i128 = 63;

/// getInfo authenticatorConfigCommands (CTAP 2.3 §6.4 0x1F): the subcommands served.
pub const SUPPORTED_SUBCOMMANDS: [u8; 2] = [
    ConfigSubcommand::ToggleAlwaysUv as u8,
    ConfigSubcommand::SetMinPinLength as u8,
];

impl<E: Env> Authenticator<E> {
    /// §6.11 steps 2-6 (step 1, subCommand present, is the request's decoding).
    pub(crate) fn authenticator_config(
        &mut self,
        mut request: ConfigRequest,
    ) -> Result<NoBody, StatusCode> {
        // 2. Only the subcommands this key has (enableEnterpriseAttestation and
        //    vendorPrototype are not).
        let sub_command = request.sub_command;
        if !matches!(
            sub_command,
            ConfigSubcommand::ToggleAlwaysUv | ConfigSubcommand::SetMinPinLength
        ) {
            return Err(StatusCode::InvalidParameter);
        }
        // 3-4. On a key protected by UV, or with alwaysUv on, a token with acfg over
        //    32×0xff || 0x0d || subCommand || subCommandParams. The exception: alwaysUv may
        //    be switched off on a key that has nothing to verify the user with.
        let protected = self.is_protected()?;
        let always_uv = self.state()?.always_uv;
        let bypass = sub_command == ConfigSubcommand::ToggleAlwaysUv && !protected && always_uv;
        if !bypass && (protected || always_uv) {
            let message = request.message_to_authenticate();
            self.authorize_management(
                request.pin_uv_auth_param.take(),
                request.pin_uv_auth_protocol,
                &message,
                permission::AUTHENTICATOR_CONFIG,
            )?;
        }
        // 5-6. The subcommand.
        if sub_command == ConfigSubcommand::ToggleAlwaysUv {
            self.update_state(|state| state.always_uv = !state.always_uv)?;
            return Ok(NoBody);
        }
        let params = SetMinPinLengthParams::from_cbor(request.sub_command_params.as_ref())?;
        self.set_min_pin_length(params)
    }

    /// §6.11.4 setMinPINLength: raise (never lower) the minimum PIN length, name the RPs that
    /// may read it, make the PIN expire, and/or (CTAP 2.3) turn the PIN complexity policy on.
    fn set_min_pin_length(&mut self, params: SetMinPinLengthParams) -> Result<NoBody, StatusCode> {
        let new_min = params.new_min_pin_length;
        let rp_ids = params.min_pin_length_rp_ids;
        let force_change = params.force_change_pin.unwrap_or(false);
        let complexity = params.pin_complexity_policy.unwrap_or(false);

        let state = self.state()?.clone();
        // 1-2. Absent means "keep"; smaller than now is a policy violation.
        let new_min = new_min.unwrap_or(state.min_pin_length.into());
        if new_min < i128::from(state.min_pin_length) {
            return Err(StatusCode::PinPolicyViolation);
        }
        if new_min > MAX_MIN_PIN_LENGTH {
            return Err(StatusCode::PinPolicyViolation);
        }
        // 3. No more RP IDs than getInfo promises.
        if rp_ids
            .as_ref()
            .is_some_and(|ids| ids.len() > MAX_RP_IDS_FOR_SET_MIN_PIN_LENGTH)
        {
            return Err(StatusCode::InvalidParameter);
        }
        // 4. Expiring a PIN that does not exist makes no sense.
        let pin_set = self.pin_is_set()?;
        if force_change && !pin_set {
            return Err(StatusCode::PinNotSet);
        }
        // 5-7. A PIN shorter than the new minimum must be changed before it is used again (a
        //    PIN of unknown length too: a crash came between setting it and noting its length).
        let too_short = pin_set
            && state
                .pin_code_points
                .is_none_or(|code_points| i128::from(code_points) < new_min);
        self.update_state(|s| {
            s.min_pin_length = new_min as u8;
            if let Some(ids) = rp_ids {
                s.min_pin_length_rp_ids = ids;
            }
            if force_change || too_short {
                s.force_pin_change = true;
                // The PIN must change: the persistent token granted with it ends now, as
                // every token does (no token is handed out until the change).
                s.persistent_token = None;
            }
            // Like the minimum length, the policy only ever gets stricter (a reset clears it).
            // It applies to the next PIN set or changed; the current one is unknown here.
            if complexity {
                s.pin_complexity_policy = true;
            }
        })?;
        Ok(NoBody)
    }
}

#[cfg(test)]
mod tests;
