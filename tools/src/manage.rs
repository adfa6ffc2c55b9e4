//! fido2ctl's key management commands: PIN, credentials, reset, config. Each is a CTAP
//! conversation with the key (see `ctap::client`), so they work with hardware keys too.

use crate::ctap::{self, client, Key};
use crate::exit::Failure;
use crate::{info, secret_input};

/// A key and the PIN protocol it prefers.
fn open(device: Option<&str>) -> Result<(Key, serde_json::Value), Failure> {
    let mut key = ctap::open(device)?;
    let info = info::fetch(&mut key)?;
    Ok((key, info))
}

fn has_pin(info: &serde_json::Value) -> bool {
    info["options"]["clientPin"] == true
}

pub fn pin_set(device: Option<&str>) -> Result<String, Failure> {
    let (mut key, info) = open(device)?;
    if info["options"].get("clientPin").is_none() {
        return Err(Failure::failed("this key has no PIN support"));
    }
    if has_pin(&info) {
        return Err(Failure::failed(
            "the key has a PIN already: use `fido2ctl pin change`",
        ));
    }
    let pin = secret_input::read_new("New PIN")?;
    client::set_pin(&mut key, client::pin_protocol(&info), &pin)?;
    Ok("PIN set.".into())
}

pub fn pin_change(device: Option<&str>) -> Result<String, Failure> {
    let (mut key, info) = open(device)?;
    if !has_pin(&info) {
        return Err(Failure::failed(
            "the key has no PIN yet: use `fido2ctl pin set`",
        ));
    }
    let current = secret_input::read("Current PIN: ")?;
    let new_pin = secret_input::read_new("New PIN")?;
    client::change_pin(&mut key, client::pin_protocol(&info), &current, &new_pin)?;
    Ok("PIN changed.".into())
}

pub fn pin_status(device: Option<&str>) -> Result<serde_json::Value, Failure> {
    let (mut key, info) = open(device)?;
    let set = has_pin(&info);
    let retries = if set {
        Some(client::pin_retries(&mut key, client::pin_protocol(&info))?)
    } else {
        None
    };
    Ok(serde_json::json!({
        "pin_set": set,
        "retries": retries,
        "min_pin_length": info["minPINLength"],
        "force_pin_change": info["forcePINChange"],
    }))
}

/// A token for `permissions`, the PIN read from the person.
fn authorize(
    key: &mut Key,
    info: &serde_json::Value,
    permissions: u8,
) -> Result<client::Token, Failure> {
    if !has_pin(info) {
        return Err(Failure::failed(
            "this needs the key's PIN, and it has none: set one with `fido2ctl pin set`",
        ));
    }
    let pin = secret_input::read("PIN: ")?;
    client::token(key, client::pin_protocol(info), &pin, permissions)
}

/// `credentials list` only reads. On a key that offers the read-only persistent token (CTAP
/// 2.2 option perCredMgmtRO) it asks for that (permission pcmr) rather than cm: the token it
/// then holds can list, never delete or rename. The PIN is asked for all the same: fido2ctl
/// keeps no token between runs, since a persistent token saved on disk would let anyone who
/// reads the file list the key's accounts without the PIN, for as long as the PIN stays.
pub fn credentials_list(device: Option<&str>) -> Result<Vec<client::StoredCredential>, Failure> {
    let (mut key, info) = open(device)?;
    let token = authorize(&mut key, &info, list_permission(&info))?;
    client::list_credentials(&mut key, &token)
}

/// The permission `credentials list` asks for: pcmr where the key offers it, else cm.
fn list_permission(info: &serde_json::Value) -> u8 {
    if info["options"]["perCredMgmtRO"] == true {
        client::PERMISSION_PERSISTENT_CREDENTIAL_MANAGEMENT_READ_ONLY
    } else {
        client::PERMISSION_CREDENTIAL_MANAGEMENT
    }
}

pub fn credentials_delete(device: Option<&str>, credential_id: &str) -> Result<String, Failure> {
    let id = hex::decode(credential_id).map_err(|_| {
        Failure::failed("the credential ID must be hex, as `credentials list` shows it")
    })?;
    let (mut key, info) = open(device)?;
    let token = authorize(&mut key, &info, client::PERMISSION_CREDENTIAL_MANAGEMENT)?;
    client::delete_credential(&mut key, &token, &id)?;
    Ok("Credential deleted.".into())
}

/// Renames a credential's account: updateUserInformation keeps what is not given (the key
/// replaces both names, so the current ones are read first).
pub fn credentials_update(
    device: Option<&str>,
    credential_id: &str,
    name: Option<&str>,
    display_name: Option<&str>,
) -> Result<String, Failure> {
    let id = hex::decode(credential_id).map_err(|_| {
        Failure::failed("the credential ID must be hex, as `credentials list` shows it")
    })?;
    if name.is_none() && display_name.is_none() {
        return Err(Failure::failed("give --name and/or --display-name"));
    }
    let (mut key, info) = open(device)?;
    let token = authorize(&mut key, &info, client::PERMISSION_CREDENTIAL_MANAGEMENT)?;
    let stored = client::list_credentials(&mut key, &token)?
        .into_iter()
        .find(|c| c.credential_id == credential_id)
        .ok_or_else(|| Failure::failed("no discoverable credential with this ID on the key"))?;
    let user_id = hex::decode(&stored.user_id)
        .map_err(|_| Failure::failed("the key sent a user handle that is not hex"))?;
    let name = name.or(stored.user_name.as_deref());
    let display_name = display_name.or(stored.display_name.as_deref());
    client::update_user(&mut key, &token, &id, &user_id, name, display_name)?;
    Ok("Credential updated.".into())
}

/// Checks the PIN by asking the key for a token with it (a wrong PIN costs a try).
pub fn pin_verify(device: Option<&str>) -> Result<String, Failure> {
    let (mut key, info) = open(device)?;
    authorize(&mut key, &info, client::PERMISSION_CREDENTIAL_MANAGEMENT)?;
    Ok("The PIN is right.".into())
}

/// Asks the person to type "erase" (unless `yes`).
pub fn confirm_reset(yes: bool) -> Result<(), Failure> {
    if !yes {
        eprintln!(
            "Reset ERASES EVERY CREDENTIAL on the key and its PIN: every account that uses it \
             loses this sign-in method. Type \"erase\" to go on:"
        );
        let answer = crate::secret_input::read_line()
            .map_err(|err| Failure::failed(format!("cannot read the answer: {err}")))?
            .unwrap_or_default();
        if answer.trim() != "erase" {
            return Err(Failure::failed("not confirmed: nothing was erased"));
        }
    }
    Ok(())
}

/// authenticatorReset (after [`confirm_reset`], and a replug where fido2d can do one).
pub fn reset(device: Option<&str>) -> Result<String, Failure> {
    let mut key = ctap::open(device)?;
    eprintln!("fido2ctl: confirm the reset on the key (touch it, or allow the prompt)");
    client::reset(&mut key)?;
    Ok("The key is reset: every credential and the PIN are gone.".into())
}

pub fn config_always_uv(device: Option<&str>) -> Result<String, Failure> {
    let (mut key, info) = open(device)?;
    let token = authorize(&mut key, &info, client::PERMISSION_AUTHENTICATOR_CONFIG)?;
    client::toggle_always_uv(&mut key, &token)?;
    let now = info::fetch(&mut key)?;
    Ok(format!("alwaysUv is now {}.", now["options"]["alwaysUv"]))
}

pub fn config_min_pin_length(
    device: Option<&str>,
    length: Option<u8>,
    rp_ids: &[String],
    force_change: bool,
) -> Result<String, Failure> {
    let (mut key, info) = open(device)?;
    let token = authorize(&mut key, &info, client::PERMISSION_AUTHENTICATOR_CONFIG)?;
    client::set_min_pin_length(&mut key, &token, length, rp_ids, force_change)?;
    Ok("Minimum PIN length updated.".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CTAP 2.2 §6.4 option perCredMgmtRO: present and true, the key grants pcmr (0x40), and
    /// listing needs nothing more; absent or false (a CTAP 2.1 key), cm (0x04).
    #[test]
    fn listing_asks_for_pcmr_only_where_the_key_offers_it() {
        let offered = serde_json::json!({"options": {"perCredMgmtRO": true}});
        let refused = serde_json::json!({"options": {"perCredMgmtRO": false}});
        let older = serde_json::json!({"options": {"credMgmt": true}});
        assert_eq!(list_permission(&offered), 0x40);
        assert_eq!(list_permission(&refused), 0x04);
        assert_eq!(list_permission(&older), 0x04);
    }
}
