//! authenticatorGetInfo (CTAP 2.1 §6.4).

use ciborium::Value;

use crate::authenticator::Authenticator;
use crate::cbor;
use crate::ctap2::built_in_uv::PREFERRED_PLATFORM_UV_ATTEMPTS;
use crate::ctap2::pin_protocol::PinProtocol;
use crate::ctap2::{config, extensions, large_blobs, StatusCode};
use crate::env::{Algorithm, Clock, Keystore, Presence, Rng};

const VERSIONS: i64 = 0x01;
const EXTENSIONS: i64 = 0x02;
const AAGUID: i64 = 0x03;
const OPTIONS: i64 = 0x04;
const MAX_MSG_SIZE: i64 = 0x05;
const PIN_UV_AUTH_PROTOCOLS: i64 = 0x06;
const KEY_MAX_CREDENTIAL_COUNT_IN_LIST: i64 = 0x07;
const MAX_CREDENTIAL_ID_LENGTH: i64 = 0x08;
const TRANSPORTS: i64 = 0x09;
const ALGORITHMS: i64 = 0x0A;
const MAX_SERIALIZED_LARGE_BLOB_ARRAY: i64 = 0x0B;
const FORCE_PIN_CHANGE: i64 = 0x0C;
const MIN_PIN_LENGTH: i64 = 0x0D;
const FIRMWARE_VERSION: i64 = 0x0E;
const MAX_CRED_BLOB_LENGTH: i64 = 0x0F;
const MAX_RP_IDS_FOR_SET_MIN_PIN_LENGTH: i64 = 0x10;
const PREFERRED_PLATFORM_UV_ATTEMPTS_KEY: i64 = 0x11;
const UV_MODALITY: i64 = 0x12;
const REMAINING_DISCOVERABLE_CREDENTIALS: i64 = 0x14;

/// The getInfo options a hybrid peer is told: its ceremonies' own, and built-in UV.
const HYBRID_OPTIONS: [&str; 5] = ["rk", "up", "plat", "uv", "makeCredUvNotRqd"];
/// The getInfo fields about what a hybrid peer is not served (the PIN and its policy, large
/// blobs). pinUvAuthProtocols stays: hmac-secret's key agreement uses it.
const NOT_FOR_HYBRID: [i64; 4] = [
    MAX_SERIALIZED_LARGE_BLOB_ARRAY,
    FORCE_PIN_CHANGE,
    MIN_PIN_LENGTH,
    MAX_RP_IDS_FOR_SET_MIN_PIN_LENGTH,
];

/// How many allowList/excludeList entries a platform may send at once.
pub const MAX_CREDENTIAL_COUNT_IN_LIST: u64 = 64;

impl<K: Keystore, P: Presence, C: Clock, R: Rng> Authenticator<K, P, C, R> {
    pub(crate) fn get_info(&mut self, _params: &[u8]) -> Result<Value, StatusCode> {
        let text = |s: &str| Value::Text(s.to_owned());
        let uint = |n: u64| Value::Integer(n.into());
        let state = self.state()?.clone();
        let pin_set = self.pin_is_set()?;
        // With alwaysUv on, U2F (which cannot verify the user) is off (CTAP 2.1 §9.2).
        let versions = ["U2F_V2", "FIDO_2_0", "FIDO_2_1_PRE", "FIDO_2_1"]
            .into_iter()
            .filter(|v| !(state.always_uv && *v == "U2F_V2"))
            .map(text)
            .collect();
        let mut options = vec![
            ("rk", Value::Bool(true)),
            ("up", Value::Bool(true)),
            ("plat", Value::Bool(false)),
            // clientPin: present means supported; its value says whether a PIN is set.
            ("clientPin", Value::Bool(pin_set)),
            ("pinUvAuthToken", Value::Bool(true)),
            ("credMgmt", Value::Bool(true)),
            // The FIDO_2_1_PRE name of credMgmt (command 0x41), for older platforms.
            ("credentialMgmtPreview", Value::Bool(true)),
            ("authnrCfg", Value::Bool(true)),
            ("largeBlobs", Value::Bool(true)),
            ("setMinPINLength", Value::Bool(true)),
            // Non-discoverable credentials without UV, unless alwaysUv forbids any.
            ("makeCredUvNotRqd", Value::Bool(!state.always_uv)),
            ("alwaysUv", Value::Bool(state.always_uv)),
        ];
        // "uv" only exists with built-in user verification; its value says whether it is
        // configured (it is, whenever the environment offers it). clientPin stays as it is:
        // the PIN is the fallback when UV fails. A UV token may carry acfg too ("uvAcfg").
        let built_in_uv = self.presence.built_in_uv();
        if built_in_uv {
            options.push(("uv", Value::Bool(true)));
            options.push(("uvAcfg", Value::Bool(true)));
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
            .map(|alg| {
                cbor::text_map(vec![
                    ("alg", Value::Integer(alg.cose_id().into())),
                    ("type", text("public-key")),
                ])
            })
            .collect();
        let transports = self.config.transports.iter().map(|t| text(t)).collect();
        let pin_protocols = PinProtocol::SUPPORTED
            .iter()
            .map(|p| uint(p.number().into()))
            .collect();
        let mut info = vec![
            (VERSIONS, Value::Array(versions)),
            (
                EXTENSIONS,
                Value::Array(extensions::SUPPORTED.map(text).to_vec()),
            ),
            (AAGUID, Value::Bytes(self.config.aaguid.to_vec())),
            (OPTIONS, cbor::text_map(options)),
            (MAX_MSG_SIZE, uint(self.config.max_msg_size as u64)),
            (PIN_UV_AUTH_PROTOCOLS, Value::Array(pin_protocols)),
            (
                KEY_MAX_CREDENTIAL_COUNT_IN_LIST,
                uint(MAX_CREDENTIAL_COUNT_IN_LIST),
            ),
            (
                MAX_CREDENTIAL_ID_LENGTH,
                uint(self.config.max_credential_id_length as u64),
            ),
            (TRANSPORTS, Value::Array(transports)),
            (ALGORITHMS, Value::Array(algorithms)),
            (
                MAX_SERIALIZED_LARGE_BLOB_ARRAY,
                uint(large_blobs::MAX_SERIALIZED_LARGE_BLOB_ARRAY as u64),
            ),
            (FORCE_PIN_CHANGE, Value::Bool(state.force_pin_change)),
            (MIN_PIN_LENGTH, uint(state.min_pin_length.into())),
            (FIRMWARE_VERSION, uint(self.config.firmware_version)),
            (
                MAX_CRED_BLOB_LENGTH,
                uint(extensions::MAX_CRED_BLOB_LENGTH as u64),
            ),
            (
                MAX_RP_IDS_FOR_SET_MIN_PIN_LENGTH,
                uint(config::MAX_RP_IDS_FOR_SET_MIN_PIN_LENGTH as u64),
            ),
            (
                REMAINING_DISCOVERABLE_CREDENTIALS,
                uint(self.keystore.remaining_discoverable_credentials() as u64),
            ),
        ];
        if hybrid {
            info.retain(|(key, _)| !NOT_FOR_HYBRID.contains(key));
        }
        if built_in_uv {
            info.extend([
                (
                    PREFERRED_PLATFORM_UV_ATTEMPTS_KEY,
                    uint(PREFERRED_PLATFORM_UV_ATTEMPTS.into()),
                ),
                (UV_MODALITY, uint(self.presence.uv_modality().into())),
            ]);
        }
        Ok(cbor::int_map(info))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctap2::test_support::*;

    fn info(a: &mut TestAuthenticator) -> Value {
        call(a, 0x04, vec![]).unwrap()
    }

    fn option(info: &Value, name: &str) -> Option<Value> {
        text_field(field(info, OPTIONS).unwrap(), name).cloned()
    }

    fn texts(list: &[&str]) -> Value {
        Value::Array(list.iter().map(|t| text(t)).collect())
    }

    #[test]
    fn versions_aaguid_transports_firmware_and_limits() {
        let (mut a, _) = authenticator();
        let info = info(&mut a);
        assert_eq!(
            field(&info, VERSIONS),
            Some(&texts(&["U2F_V2", "FIDO_2_0", "FIDO_2_1_PRE", "FIDO_2_1"]))
        );
        assert_eq!(
            field(&info, AAGUID),
            Some(&bytes(&crate::authenticator::FIDO2D_AAGUID))
        );
        assert_eq!(field(&info, MAX_MSG_SIZE), Some(&int(7609)));
        assert_eq!(
            field(&info, KEY_MAX_CREDENTIAL_COUNT_IN_LIST),
            Some(&int(64))
        );
        assert_eq!(field(&info, MAX_CREDENTIAL_ID_LENGTH), Some(&int(256)));
        assert_eq!(field(&info, TRANSPORTS), Some(&texts(&["usb"])));
        assert_eq!(
            field(&info, FIRMWARE_VERSION),
            Some(&int(a.config().firmware_version as i64))
        );
        assert_eq!(
            field(&info, PIN_UV_AUTH_PROTOCOLS),
            Some(&Value::Array(vec![int(2), int(1)]))
        );
        assert_eq!(
            field(&info, MAX_SERIALIZED_LARGE_BLOB_ARRAY),
            Some(&int(4096))
        );
        assert_eq!(field(&info, MAX_CRED_BLOB_LENGTH), Some(&int(32)));
        assert_eq!(
            field(&info, MAX_RP_IDS_FOR_SET_MIN_PIN_LENGTH),
            Some(&int(8))
        );
        assert_eq!(
            field(&info, EXTENSIONS),
            Some(&texts(&[
                "credProtect",
                "hmac-secret",
                "largeBlobKey",
                "credBlob",
                "minPinLength",
                "hmac-secret-mc",
                "thirdPartyPayment"
            ]))
        );
        for absent in [0x11, 0x12, 0x13, 0x15] {
            assert!(
                field(&info, absent).is_none(),
                "no UV attempts/modality, certifications or vendor commands ({absent:#x})"
            );
        }
    }

    #[test]
    fn algorithms_follow_the_keystore() {
        let (mut a, _) = authenticator();
        let Some(Value::Array(algorithms)) = field(&info(&mut a), ALGORITHMS).cloned() else {
            panic!()
        };
        assert_eq!(algorithms.len(), 2);
        assert_eq!(text_field(&algorithms[0], "alg"), Some(&int(-7)));
        assert_eq!(
            text_field(&algorithms[0], "type"),
            Some(&text("public-key"))
        );
        assert_eq!(text_field(&algorithms[1], "alg"), Some(&int(-8)));
        a.keystore_mut().algorithms = vec![crate::env::Algorithm::Es256];
        let Some(Value::Array(algorithms)) = field(&info(&mut a), ALGORITHMS).cloned() else {
            panic!()
        };
        assert_eq!(algorithms.len(), 1, "a TPM-like keystore without Ed25519");
    }

    #[test]
    fn options_of_a_key_without_and_with_a_pin() {
        let (mut a, _) = authenticator();
        let before = info(&mut a);
        for (name, value) in [
            ("rk", true),
            ("up", true),
            ("plat", false),
            ("clientPin", false),
            ("pinUvAuthToken", true),
            ("credMgmt", true),
            ("credentialMgmtPreview", true),
            ("authnrCfg", true),
            ("largeBlobs", true),
            ("setMinPINLength", true),
            ("makeCredUvNotRqd", true),
            ("alwaysUv", false),
        ] {
            assert_eq!(option(&before, name), Some(Value::Bool(value)), "{name}");
        }
        assert_eq!(option(&before, "uv"), None, "no built-in user verification");
        assert_eq!(option(&before, "uvAcfg"), None);
        assert_eq!(option(&before, "bioEnroll"), None);
        assert_eq!(option(&before, "ep"), None, "no enterprise attestation");

        set_pin(&mut a, "1234");
        assert_eq!(option(&info(&mut a), "clientPin"), Some(Value::Bool(true)));
    }

    #[test]
    fn pin_policy_fields_follow_the_state() {
        let (mut a, _) = authenticator();
        let info0 = info(&mut a);
        assert_eq!(field(&info0, MIN_PIN_LENGTH), Some(&int(4)));
        assert_eq!(field(&info0, FORCE_PIN_CHANGE), Some(&Value::Bool(false)));
        a.update_state(|s| {
            s.min_pin_length = 6;
            s.force_pin_change = true;
            s.always_uv = true;
        })
        .unwrap();
        let info1 = info(&mut a);
        assert_eq!(field(&info1, MIN_PIN_LENGTH), Some(&int(6)));
        assert_eq!(field(&info1, FORCE_PIN_CHANGE), Some(&Value::Bool(true)));
        assert_eq!(option(&info1, "alwaysUv"), Some(Value::Bool(true)));
        assert_eq!(option(&info1, "makeCredUvNotRqd"), Some(Value::Bool(false)));
        assert_eq!(
            field(&info1, VERSIONS),
            Some(&texts(&["FIDO_2_0", "FIDO_2_1_PRE", "FIDO_2_1"])),
            "no U2F under alwaysUv"
        );
    }

    #[test]
    fn remaining_discoverable_credentials_counts_down() {
        let (mut a, _) = authenticator();
        assert_eq!(
            field(&info(&mut a), REMAINING_DISCOVERABLE_CREDENTIALS),
            Some(&int(100))
        );
        register(&mut a, "x.org", b"alice", -7, true);
        assert_eq!(
            field(&info(&mut a), REMAINING_DISCOVERABLE_CREDENTIALS),
            Some(&int(99))
        );
    }

    #[test]
    fn get_info_is_canonical_cbor() {
        let (mut a, _) = authenticator();
        let raw = a.process_cbor(TEST_ORIGIN, &[0x04]);
        assert_eq!(raw[0], 0);
        assert_eq!(
            crate::cbor::encode(&crate::cbor::decode(&raw[1..]).unwrap()),
            raw[1..].to_vec()
        );
        // Map of 17 entries whose first key is 0x01 (versions).
        assert_eq!(&raw[1..3], &[0xb1, 0x01]);
    }

    #[test]
    fn unknown_commands_and_empty_messages_are_rejected() {
        let (mut a, _) = authenticator();
        assert_eq!(a.process_cbor(TEST_ORIGIN, &[0x42]), vec![0x01]);
        assert_eq!(
            a.process_cbor(TEST_ORIGIN, &[0x06]),
            vec![0x14],
            "clientPIN without a subCommand"
        );
        assert_eq!(a.process_cbor(TEST_ORIGIN, &[]), vec![0x03]);
    }
}
