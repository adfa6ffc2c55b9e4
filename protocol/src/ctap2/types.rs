//! What the authenticator makes of the WebAuthn structures a request carries (decoded by
//! [`crate::wire::entities`]): names truncated for storage, the algorithm chosen.

use crate::env::{Algorithm, RelyingParty, UserEntity};
use crate::status::StatusCode;
use crate::wire::{
    PublicKeyCredentialParameters, PublicKeyCredentialRpEntity, PublicKeyCredentialUserEntity,
};

/// Stored user and RP names are truncated to 64 bytes (CTAP 2.1 §6.1 "maximum size" note),
/// at a UTF-8 character boundary.
pub const MAX_STORED_NAME_LEN: usize = 64;

/// The relying party as it is stored: its name truncated.
pub fn stored_rp(rp: PublicKeyCredentialRpEntity) -> RelyingParty {
    RelyingParty {
        id: rp.id,
        name: rp.name.map(truncate_name),
    }
}

/// The user as it is stored: names truncated.
pub fn stored_user(user: PublicKeyCredentialUserEntity) -> UserEntity {
    UserEntity {
        id: user.id,
        name: user.name.map(truncate_name),
        display_name: user.display_name.map(truncate_name),
    }
}

fn truncate_name(mut name: String) -> String {
    if name.len() > MAX_STORED_NAME_LEN {
        let mut end = MAX_STORED_NAME_LEN;
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        name.truncate(end);
    }
    name
}

/// pubKeyCredParams: the first entry of type "public-key" whose algorithm we know and the
/// keystore `supports`. Entries of other types are skipped (they may come from a future
/// WebAuthn).
pub fn choose_algorithm(
    params: &[PublicKeyCredentialParameters],
    supports: impl Fn(Algorithm) -> bool,
) -> Result<Algorithm, StatusCode> {
    params
        .iter()
        .filter(|param| param.kind == crate::wire::entities::PUBLIC_KEY_TYPE)
        .filter_map(|param| Algorithm::from_cose_id(param.alg))
        .find(|alg| supports(*alg))
        .ok_or(StatusCode::UnsupportedAlgorithm)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(alg: i64, kind: &str) -> PublicKeyCredentialParameters {
        PublicKeyCredentialParameters {
            kind: kind.into(),
            alg,
        }
    }

    #[test]
    fn first_supported_algorithm_in_rp_order_wins() {
        let list = [
            param(-257, "public-key"),
            param(-8, "public-key"),
            param(-7, "public-key"),
        ];
        assert_eq!(choose_algorithm(&list, |_| true), Ok(Algorithm::EdDsa));
        assert_eq!(
            choose_algorithm(&list, |alg| alg == Algorithm::Es256),
            Ok(Algorithm::Es256),
            "an algorithm the keystore cannot make is skipped"
        );
    }

    #[test]
    fn unsupported_algorithms_only_is_unsupported_algorithm() {
        let list = [param(-257, "public-key"), param(-7, "future-type")];
        assert_eq!(
            choose_algorithm(&list, |_| true),
            Err(StatusCode::UnsupportedAlgorithm)
        );
        assert_eq!(
            choose_algorithm(&[], |_| true),
            Err(StatusCode::UnsupportedAlgorithm)
        );
    }

    #[test]
    fn long_names_are_truncated_at_a_character_boundary() {
        let long = "é".repeat(40); // 80 bytes
        let user = PublicKeyCredentialUserEntity {
            id: vec![1],
            name: Some(long.clone()),
            display_name: None,
        };
        let name = stored_user(user).name.unwrap();
        assert_eq!(name.len(), 64);
        assert!(long.starts_with(&name));
    }
}
