//! authenticatorMakeCredential (CTAP 2.1 §6.1): the request parameters (§6.1.1) and the
//! attestation object the authenticator answers with (§6.1.2).

use ciborium::Value;
use zeroize::Zeroizing;

use super::command::Command;
use super::entities::{
    Options, PublicKeyCredentialDescriptor, PublicKeyCredentialParameters,
    PublicKeyCredentialRpEntity, PublicKeyCredentialUserEntity,
};
use super::extensions::MakeCredentialExtensionsInput;
use super::fields::{int_key_map, integer};
use super::message::{Request, Response};
use crate::cbor::{self, RequestMap};
use crate::status::StatusCode;

const CLIENT_DATA_HASH: i128 = 0x01;
const RP: i128 = 0x02;
const USER: i128 = 0x03;
const PUB_KEY_CRED_PARAMS: i128 = 0x04;
const EXCLUDE_LIST: i128 = 0x05;
const EXTENSIONS: i128 = 0x06;
const OPTIONS: i128 = 0x07;
const PIN_UV_AUTH_PARAM: i128 = 0x08;
const PIN_UV_AUTH_PROTOCOL: i128 = 0x09;
const ENTERPRISE_ATTESTATION: i128 = 0x0A;
const ATTESTATION_FORMATS_PREFERENCE: i128 = 0x0B;

/// The makeCredential parameters. Absent lists and maps decode as empty ones (which is how
/// the command treats them) and empty ones are not sent.
#[derive(Debug, Clone, PartialEq)]
pub struct MakeCredentialRequest {
    pub client_data_hash: Vec<u8>,
    pub rp: PublicKeyCredentialRpEntity,
    pub user: PublicKeyCredentialUserEntity,
    /// In the relying party's order of preference.
    pub pub_key_cred_params: Vec<PublicKeyCredentialParameters>,
    pub exclude_list: Vec<PublicKeyCredentialDescriptor>,
    pub extensions: MakeCredentialExtensionsInput,
    pub options: Options,
    pub pin_uv_auth_param: Option<Vec<u8>>,
    /// As sent: the command answers an unknown number with its status.
    pub pin_uv_auth_protocol: Option<i128>,
    pub enterprise_attestation: Option<i128>,
    /// attestationFormatsPreference (CTAP 2.2), most preferred first.
    pub attestation_formats_preference: Option<Vec<String>>,
}

impl MakeCredentialRequest {
    /// A request with the four required parameters and nothing else.
    pub fn new(
        client_data_hash: Vec<u8>,
        rp: PublicKeyCredentialRpEntity,
        user: PublicKeyCredentialUserEntity,
        pub_key_cred_params: Vec<PublicKeyCredentialParameters>,
    ) -> Self {
        MakeCredentialRequest {
            client_data_hash,
            rp,
            user,
            pub_key_cred_params,
            exclude_list: Vec::new(),
            extensions: MakeCredentialExtensionsInput::default(),
            options: Options::default(),
            pin_uv_auth_param: None,
            pin_uv_auth_protocol: None,
            enterprise_attestation: None,
            attestation_formats_preference: None,
        }
    }
}

impl Request for MakeCredentialRequest {
    const COMMAND: Command = Command::MakeCredential;

    fn decode(params: &[u8]) -> Result<Self, StatusCode> {
        let mut map = RequestMap::parse(params)?;
        let client_data_hash = cbor::into_bytes(map.required(CLIENT_DATA_HASH)?)?;
        let rp = PublicKeyCredentialRpEntity::decode(map.required(RP)?)?;
        let user = PublicKeyCredentialUserEntity::decode(map.required(USER)?)?;
        let pub_key_cred_params = map.required(PUB_KEY_CRED_PARAMS)?;
        let exclude_list = map
            .take(EXCLUDE_LIST)
            .map(PublicKeyCredentialDescriptor::decode_list)
            .transpose()?
            .unwrap_or_default();
        let extensions = map
            .take(EXTENSIONS)
            .map(MakeCredentialExtensionsInput::decode)
            .transpose()?
            .unwrap_or_default();
        let options = map
            .take(OPTIONS)
            .map(Options::decode)
            .transpose()?
            .unwrap_or_default();
        let pin_uv_auth_param = map
            .take(PIN_UV_AUTH_PARAM)
            .map(cbor::into_bytes)
            .transpose()?;
        let pin_uv_auth_protocol = map
            .take(PIN_UV_AUTH_PROTOCOL)
            .map(cbor::into_int)
            .transpose()?;
        let enterprise_attestation = map
            .take(ENTERPRISE_ATTESTATION)
            .map(cbor::into_int)
            .transpose()?;
        let attestation_formats_preference = map
            .take(ATTESTATION_FORMATS_PREFERENCE)
            .map(|list| {
                cbor::into_array(list)?
                    .into_iter()
                    .map(cbor::into_text)
                    .collect()
            })
            .transpose()?;
        // The entries of pubKeyCredParams are checked last, as fido2d always has: a malformed
        // entry is reported after the types of all other parameters.
        let pub_key_cred_params = PublicKeyCredentialParameters::decode_list(pub_key_cred_params)?;
        Ok(MakeCredentialRequest {
            client_data_hash,
            rp,
            user,
            pub_key_cred_params,
            exclude_list,
            extensions,
            options,
            pin_uv_auth_param,
            pin_uv_auth_protocol,
            enterprise_attestation,
            attestation_formats_preference,
        })
    }

    fn to_cbor(&self) -> Option<Value> {
        let mut entries = vec![
            (
                CLIENT_DATA_HASH,
                Value::Bytes(self.client_data_hash.clone()),
            ),
            (RP, self.rp.to_cbor()),
            (USER, self.user.to_cbor()),
            (
                PUB_KEY_CRED_PARAMS,
                Value::Array(
                    self.pub_key_cred_params
                        .iter()
                        .map(|p| p.to_cbor())
                        .collect(),
                ),
            ),
        ];
        if !self.exclude_list.is_empty() {
            let list = self.exclude_list.iter().map(|d| d.to_cbor()).collect();
            entries.push((EXCLUDE_LIST, Value::Array(list)));
        }
        if !self.extensions.is_empty() {
            entries.push((EXTENSIONS, self.extensions.to_cbor()));
        }
        if !self.options.is_empty() {
            entries.push((OPTIONS, self.options.to_cbor()));
        }
        if let Some(param) = &self.pin_uv_auth_param {
            entries.push((PIN_UV_AUTH_PARAM, Value::Bytes(param.clone())));
        }
        if let Some(protocol) = self.pin_uv_auth_protocol {
            entries.push((PIN_UV_AUTH_PROTOCOL, integer(protocol)));
        }
        if let Some(ea) = self.enterprise_attestation {
            entries.push((ENTERPRISE_ATTESTATION, integer(ea)));
        }
        if let Some(formats) = &self.attestation_formats_preference {
            let list = formats.iter().map(|f| Value::Text(f.clone())).collect();
            entries.push((ATTESTATION_FORMATS_PREFERENCE, Value::Array(list)));
        }
        Some(int_key_map(entries))
    }
}

const FMT: i128 = 0x01;
const AUTH_DATA: i128 = 0x02;
const ATT_STMT: i128 = 0x03;
const LARGE_BLOB_KEY: i128 = 0x05;

/// The attestation object (§6.1.2): format, authenticatorData with the attested credential
/// data, the attestation statement; the largeBlobKey when one was asked for.
#[derive(Clone, PartialEq)]
pub struct MakeCredentialResponse {
    pub fmt: String,
    pub auth_data: Vec<u8>,
    /// The statement, a map whose shape `fmt` defines (`packed`: alg and sig; `none`: empty).
    pub att_stmt: Value,
    /// A secret: it decrypts the credential's large blob.
    pub large_blob_key: Option<Zeroizing<Vec<u8>>>,
}

impl std::fmt::Debug for MakeCredentialResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MakeCredentialResponse")
            .field("fmt", &self.fmt)
            .field("auth_data", &self.auth_data)
            .field("att_stmt", &self.att_stmt)
            .field(
                "large_blob_key",
                &self.large_blob_key.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl MakeCredentialResponse {
    /// The new credential's ID, read from the attested credential data of authData (WebAuthn
    /// §6.5.1: rpIdHash 32, flags 1, signCount 4, AAGUID 16, length 2, ID).
    pub fn credential_id(&self) -> Option<&[u8]> {
        let length = self.auth_data.get(53..55)?;
        let length = usize::from(u16::from_be_bytes([length[0], length[1]]));
        self.auth_data.get(55..55 + length)
    }
}

impl Response for MakeCredentialResponse {
    fn to_cbor(&self) -> Option<Value> {
        let mut entries = vec![
            (FMT, Value::Text(self.fmt.clone())),
            (AUTH_DATA, Value::Bytes(self.auth_data.clone())),
            (ATT_STMT, self.att_stmt.clone()),
        ];
        if let Some(key) = &self.large_blob_key {
            entries.push((LARGE_BLOB_KEY, Value::Bytes(key.to_vec())));
        }
        Some(int_key_map(entries))
    }

    fn decode(body: &[u8]) -> Result<Self, StatusCode> {
        let mut map = RequestMap::parse(body)?;
        let fmt = cbor::into_text(map.required(FMT)?)?;
        let auth_data = cbor::into_bytes(map.required(AUTH_DATA)?)?;
        let att_stmt = map.required(ATT_STMT)?;
        if !matches!(att_stmt, Value::Map(_)) {
            return Err(StatusCode::CborUnexpectedType);
        }
        let large_blob_key = map
            .take(LARGE_BLOB_KEY)
            .map(cbor::into_bytes)
            .transpose()?
            .map(Zeroizing::new);
        Ok(MakeCredentialResponse {
            fmt,
            auth_data,
            att_stmt,
            large_blob_key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::extensions::CRED_PROTECT;

    fn request() -> MakeCredentialRequest {
        MakeCredentialRequest::new(
            vec![0xcd; 32],
            PublicKeyCredentialRpEntity {
                id: "example.com".into(),
                name: Some("Example".into()),
            },
            PublicKeyCredentialUserEntity {
                id: vec![1; 16],
                name: Some("alice".into()),
                display_name: Some("Alice".into()),
            },
            vec![
                PublicKeyCredentialParameters::public_key(-7),
                PublicKeyCredentialParameters::public_key(-8),
            ],
        )
    }

    #[test]
    fn a_request_round_trips_with_every_parameter() {
        let mut full = request();
        full.exclude_list = vec![PublicKeyCredentialDescriptor::public_key(vec![5; 32])];
        full.extensions.cred_protect = Some(3);
        full.options.rk = Some(true);
        full.pin_uv_auth_param = Some(vec![6; 32]);
        full.pin_uv_auth_protocol = Some(2);
        full.enterprise_attestation = Some(1);
        full.attestation_formats_preference = Some(vec!["none".into()]);
        for request in [request(), full] {
            let encoded = request.encode();
            assert_eq!(encoded[0], 0x01);
            assert_eq!(MakeCredentialRequest::decode(&encoded[1..]), Ok(request));
        }
    }

    /// The encoding CTAP 2.1 §6.1 and §8 ask for: the command byte, a definite-length map,
    /// the keys in canonical order (01 58 20 <clientDataHash>, then 02 and the rp map, whose
    /// keys "id" and "name" sort shortest first).
    #[test]
    fn the_encoding_is_canonical_ctap2_cbor() {
        let encoded = request().encode();
        assert_eq!(&encoded[..4], &[0x01, 0xa4, 0x01, 0x58]);
        assert_eq!(encoded[4], 32);
        // rp: {"id": "example.com", "name": "Example"}, keys sorted by length.
        assert_eq!(&encoded[37..41], &[0x02, 0xa2, 0x62, b'i']);
    }

    #[test]
    fn each_missing_required_parameter_is_missing_parameter() {
        for drop in [CLIENT_DATA_HASH, RP, USER, PUB_KEY_CRED_PARAMS] {
            let Some(Value::Map(mut entries)) = request().to_cbor() else {
                unreachable!()
            };
            entries.retain(|(key, _)| *key != integer(drop));
            assert_eq!(
                MakeCredentialRequest::decode(&cbor::encode(&Value::Map(entries))),
                Err(StatusCode::MissingParameter),
                "{drop}"
            );
        }
    }

    #[test]
    fn malformed_fields_keep_their_status() {
        let with = |key: i128, value: Value| {
            let Some(Value::Map(mut entries)) = request().to_cbor() else {
                unreachable!()
            };
            entries.retain(|(k, _)| *k != integer(key));
            entries.push((integer(key), value));
            MakeCredentialRequest::decode(&cbor::encode(&Value::Map(entries)))
        };
        let text = |s: &str| Value::Text(s.into());
        for (key, bad) in [
            (CLIENT_DATA_HASH, text("hash")),
            (RP, text("example.com")),
            (USER, Value::Bytes(vec![1])),
            (PUB_KEY_CRED_PARAMS, cbor::text_map(vec![])),
            (EXCLUDE_LIST, cbor::text_map(vec![])),
            (EXTENSIONS, Value::Array(vec![])),
            (OPTIONS, Value::Bool(true)),
            (PIN_UV_AUTH_PARAM, text("param")),
            (PIN_UV_AUTH_PROTOCOL, text("2")),
            (ENTERPRISE_ATTESTATION, Value::Bool(true)),
            (
                ATTESTATION_FORMATS_PREFERENCE,
                Value::Array(vec![Value::Integer(1.into())]),
            ),
        ] {
            assert_eq!(with(key, bad), Err(StatusCode::CborUnexpectedType), "{key}");
        }
        let bad_level = cbor::text_map(vec![(CRED_PROTECT, Value::Integer(4.into()))]);
        assert_eq!(
            with(EXTENSIONS, bad_level),
            Err(StatusCode::InvalidParameter)
        );
        assert_eq!(
            MakeCredentialRequest::decode(&[0xa1, 0x01]),
            Err(StatusCode::InvalidCbor)
        );
        assert_eq!(
            MakeCredentialRequest::decode(&[0x80]),
            Err(StatusCode::CborUnexpectedType)
        );
    }

    #[test]
    fn a_response_round_trips_and_names_its_credential() {
        let mut auth_data = vec![0u8; 53];
        auth_data.extend([0, 3, 7, 8, 9, 0xa5]);
        let response = MakeCredentialResponse {
            fmt: "packed".into(),
            auth_data,
            att_stmt: cbor::text_map(vec![("alg", Value::Integer((-7).into()))]),
            large_blob_key: Some(Zeroizing::new(vec![4; 32])),
        };
        let encoded = response.encode();
        assert_eq!(encoded[0], 0x00);
        let decoded = MakeCredentialResponse::decode(&encoded[1..]).unwrap();
        assert_eq!(decoded, response);
        assert_eq!(decoded.credential_id(), Some(&[7, 8, 9][..]));
        assert!(
            !format!("{decoded:?}").contains("[4, 4"),
            "the largeBlobKey is not printed"
        );
    }

    #[test]
    fn the_large_blob_key_stays_out_of_debug_output() {
        let response = MakeCredentialResponse {
            fmt: "none".into(),
            auth_data: vec![2; 37],
            att_stmt: Value::Map(vec![]),
            large_blob_key: Some(Zeroizing::new(vec![0xE7; 32])),
        };
        let printed = format!("{response:?}");
        assert!(!printed.contains("231"), "{printed}");
        assert!(printed.contains("<redacted>"), "{printed}");
    }
}
