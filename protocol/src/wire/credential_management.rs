//! authenticatorCredentialManagement (CTAP 2.1 §6.8): subCommand, subCommandParams and the
//! pinUvAuthToken's MAC over both; the answer's fields 0x01..0x0C.
//!
//! subCommandParams is kept as the map that was sent, because the MAC covers its encoding
//! (§6.8.2 step 4: authenticate(token, subCommand || subCommandParams)), and a typed copy
//! would drop what it does not know. [`CredentialManagementParams`] reads it.

use std::fmt;

use ciborium::Value;
use zeroize::Zeroizing;

use super::command::Command;
use super::entities::{
    PublicKeyCredentialDescriptor, PublicKeyCredentialRpEntity, PublicKeyCredentialUserEntity,
};
use super::fields::{byte_enum, int_key_map, into_count};
use super::message::Response;
use super::subcommand::{Subcommand, SubcommandRequest};
use crate::cbor::{self, RequestMap};
use crate::status::StatusCode;

const PARAM_RP_ID_HASH: i128 = 0x01;
const PARAM_CREDENTIAL_ID: i128 = 0x02;
const PARAM_USER: i128 = 0x03;

const RESPONSE_EXISTING_COUNT: i128 = 0x01;
const RESPONSE_REMAINING_COUNT: i128 = 0x02;
const RESPONSE_RP: i128 = 0x03;
const RESPONSE_RP_ID_HASH: i128 = 0x04;
const RESPONSE_TOTAL_RPS: i128 = 0x05;
const RESPONSE_USER: i128 = 0x06;
const RESPONSE_CREDENTIAL_ID: i128 = 0x07;
const RESPONSE_PUBLIC_KEY: i128 = 0x08;
const RESPONSE_TOTAL_CREDENTIALS: i128 = 0x09;
const RESPONSE_CRED_PROTECT: i128 = 0x0A;
const RESPONSE_LARGE_BLOB_KEY: i128 = 0x0B;
const RESPONSE_THIRD_PARTY_PAYMENT: i128 = 0x0C;

byte_enum! {
    /// The credential management subcommands (CTAP 2.1 §6.8, table "subCommand").
    pub enum CredentialManagementSubcommand {
        GetCredsMetadata = 0x01,
        EnumerateRpsBegin = 0x02,
        EnumerateRpsGetNextRp = 0x03,
        EnumerateCredentialsBegin = 0x04,
        EnumerateCredentialsGetNextCredential = 0x05,
        DeleteCredential = 0x06,
        UpdateUserInformation = 0x07,
    }
}

impl Subcommand for CredentialManagementSubcommand {
    const COMMAND: Command = Command::CredentialManagement;
    /// §6.8 step 2: "If subCommand is not supported, return CTAP2_ERR_INVALID_SUBCOMMAND".
    const UNKNOWN: StatusCode = StatusCode::InvalidSubcommand;
    /// §6.8.2 step 4: the MAC covers subCommand || subCommandParams alone.
    const AUTHENTICATED_PREFIX: &'static [u8] = &[];

    fn as_byte(self) -> u8 {
        self.as_byte()
    }

    fn from_number(number: i128) -> Option<Self> {
        Self::from_number(number)
    }
}

/// An authenticatorCredentialManagement request.
pub type CredentialManagementRequest = SubcommandRequest<CredentialManagementSubcommand>;

impl CredentialManagementRequest {
    /// A subcommand with its parameters, to be authorized with [`Self::authorized`].
    pub fn with_params(
        sub_command: CredentialManagementSubcommand,
        params: &CredentialManagementParams,
    ) -> Self {
        SubcommandRequest {
            sub_command_params: Some(params.to_cbor()),
            ..Self::new(sub_command)
        }
    }
}

/// subCommandParams (CTAP 2.1 §6.8).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CredentialManagementParams {
    /// 0x01 rpIDHash.
    pub rp_id_hash: Option<Vec<u8>>,
    /// 0x02 credentialID: the descriptor as sent, whatever its type (the authenticator
    /// knows only "public-key" ones).
    pub credential_id: Option<PublicKeyCredentialDescriptor>,
    /// 0x03 user: the user entity as sent (names not yet truncated for storage).
    pub user: Option<PublicKeyCredentialUserEntity>,
}

impl CredentialManagementParams {
    /// Reads subCommandParams, absent or a map: a key that is not an integer is
    /// CBOR_UNEXPECTED_TYPE, a repeated one INVALID_CBOR, rpIDHash not bytes
    /// CBOR_UNEXPECTED_TYPE; then the descriptor and the user entity, in that order, with the
    /// statuses of [`PublicKeyCredentialDescriptor::decode`] and
    /// [`PublicKeyCredentialUserEntity::decode`].
    pub fn from_cbor(params: Option<&Value>) -> Result<Self, StatusCode> {
        let Some(params) = params else {
            return Ok(Self::default());
        };
        let mut map = RequestMap::parse(&cbor::encode(params))?;
        Ok(CredentialManagementParams {
            rp_id_hash: map
                .take(PARAM_RP_ID_HASH)
                .map(cbor::into_bytes)
                .transpose()?,
            credential_id: map
                .take(PARAM_CREDENTIAL_ID)
                .map(PublicKeyCredentialDescriptor::decode)
                .transpose()?,
            user: map
                .take(PARAM_USER)
                .map(PublicKeyCredentialUserEntity::decode)
                .transpose()?,
        })
    }

    pub fn to_cbor(&self) -> Value {
        let mut entries = Vec::new();
        if let Some(hash) = &self.rp_id_hash {
            entries.push((PARAM_RP_ID_HASH, Value::Bytes(hash.clone())));
        }
        if let Some(descriptor) = &self.credential_id {
            entries.push((PARAM_CREDENTIAL_ID, descriptor.to_cbor()));
        }
        if let Some(user) = &self.user {
            entries.push((PARAM_USER, user.to_cbor()));
        }
        int_key_map(entries)
    }
}

/// An authenticatorCredentialManagement answer (CTAP 2.1 §6.8, response table; 0x0C from
/// CTAP 2.2). The COSE public key stays CBOR: the platform hands it on as it came.
#[derive(Clone, Default, PartialEq)]
pub struct CredentialManagementResponse {
    /// 0x01 existingResidentCredentialsCount.
    pub existing_resident_credentials_count: Option<u64>,
    /// 0x02 maxPossibleRemainingResidentCredentialsCount.
    pub max_possible_remaining_resident_credentials_count: Option<u64>,
    /// 0x03 rp.
    pub rp: Option<PublicKeyCredentialRpEntity>,
    /// 0x04 rpIDHash.
    pub rp_id_hash: Option<Vec<u8>>,
    /// 0x05 totalRPs.
    pub total_rps: Option<u64>,
    /// 0x06 user.
    pub user: Option<PublicKeyCredentialUserEntity>,
    /// 0x07 credentialID.
    pub credential_id: Option<PublicKeyCredentialDescriptor>,
    /// 0x08 publicKey: a COSE_Key.
    pub public_key: Option<Value>,
    /// 0x09 totalCredentials.
    pub total_credentials: Option<u64>,
    /// 0x0A credProtect.
    pub cred_protect: Option<u64>,
    /// 0x0B largeBlobKey: a secret, never printed.
    pub large_blob_key: Option<Zeroizing<Vec<u8>>>,
    /// 0x0C thirdPartyPayment.
    pub third_party_payment: Option<bool>,
}

impl fmt::Debug for CredentialManagementResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialManagementResponse")
            .field(
                "existing_resident_credentials_count",
                &self.existing_resident_credentials_count,
            )
            .field(
                "max_possible_remaining_resident_credentials_count",
                &self.max_possible_remaining_resident_credentials_count,
            )
            .field("rp", &self.rp)
            .field("rp_id_hash", &self.rp_id_hash)
            .field("total_rps", &self.total_rps)
            .field("user", &self.user)
            .field("credential_id", &self.credential_id)
            .field("public_key", &self.public_key)
            .field("total_credentials", &self.total_credentials)
            .field("cred_protect", &self.cred_protect)
            .field(
                "large_blob_key",
                &self.large_blob_key.as_ref().map(|_| "<redacted>"),
            )
            .field("third_party_payment", &self.third_party_payment)
            .finish()
    }
}

impl Response for CredentialManagementResponse {
    fn to_cbor(&self) -> Option<Value> {
        let count = |n: u64| Value::Integer(n.into());
        let mut entries = Vec::new();
        let mut put = |key: i128, value: Option<Value>| {
            if let Some(value) = value {
                entries.push((key, value));
            }
        };
        put(
            RESPONSE_EXISTING_COUNT,
            self.existing_resident_credentials_count.map(count),
        );
        put(
            RESPONSE_REMAINING_COUNT,
            self.max_possible_remaining_resident_credentials_count
                .map(count),
        );
        put(RESPONSE_RP, self.rp.as_ref().map(|rp| rp.to_cbor()));
        put(
            RESPONSE_RP_ID_HASH,
            self.rp_id_hash.clone().map(Value::Bytes),
        );
        put(RESPONSE_TOTAL_RPS, self.total_rps.map(count));
        put(RESPONSE_USER, self.user.as_ref().map(|user| user.to_cbor()));
        put(
            RESPONSE_CREDENTIAL_ID,
            self.credential_id.as_ref().map(|d| d.to_cbor()),
        );
        put(RESPONSE_PUBLIC_KEY, self.public_key.clone());
        put(
            RESPONSE_TOTAL_CREDENTIALS,
            self.total_credentials.map(count),
        );
        put(RESPONSE_CRED_PROTECT, self.cred_protect.map(count));
        put(
            RESPONSE_LARGE_BLOB_KEY,
            self.large_blob_key
                .as_ref()
                .map(|key| Value::Bytes(key.to_vec())),
        );
        put(
            RESPONSE_THIRD_PARTY_PAYMENT,
            self.third_party_payment.map(Value::Bool),
        );
        (!entries.is_empty()).then(|| int_key_map(entries))
    }

    fn decode(body: &[u8]) -> Result<Self, StatusCode> {
        let mut map = RequestMap::parse(body)?;
        let mut count = |key| map.take(key).map(into_count).transpose();
        let existing_resident_credentials_count = count(RESPONSE_EXISTING_COUNT)?;
        let max_possible_remaining_resident_credentials_count = count(RESPONSE_REMAINING_COUNT)?;
        let total_rps = count(RESPONSE_TOTAL_RPS)?;
        let total_credentials = count(RESPONSE_TOTAL_CREDENTIALS)?;
        let cred_protect = count(RESPONSE_CRED_PROTECT)?;
        Ok(CredentialManagementResponse {
            existing_resident_credentials_count,
            max_possible_remaining_resident_credentials_count,
            rp: map
                .take(RESPONSE_RP)
                .map(PublicKeyCredentialRpEntity::decode)
                .transpose()?,
            rp_id_hash: map
                .take(RESPONSE_RP_ID_HASH)
                .map(cbor::into_bytes)
                .transpose()?,
            total_rps,
            user: map
                .take(RESPONSE_USER)
                .map(PublicKeyCredentialUserEntity::decode)
                .transpose()?,
            credential_id: map
                .take(RESPONSE_CREDENTIAL_ID)
                .map(PublicKeyCredentialDescriptor::decode)
                .transpose()?,
            public_key: map.take(RESPONSE_PUBLIC_KEY),
            total_credentials,
            cred_protect,
            large_blob_key: map
                .take(RESPONSE_LARGE_BLOB_KEY)
                .map(cbor::into_bytes)
                .transpose()?
                .map(Zeroizing::new),
            third_party_payment: map
                .take(RESPONSE_THIRD_PARTY_PAYMENT)
                .map(cbor::into_bool)
                .transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::message::Request;

    #[test]
    fn requests_round_trip_with_their_mac() {
        let params = CredentialManagementParams {
            rp_id_hash: Some(vec![1; 32]),
            ..Default::default()
        };
        let request = CredentialManagementRequest::with_params(
            CredentialManagementSubcommand::EnumerateCredentialsBegin,
            &params,
        )
        .authorized(2, |message| message.to_vec());
        let mac = request.pin_uv_auth_param.clone().unwrap();
        assert_eq!(mac[0], 0x04);
        assert_eq!(&mac[1..], cbor::encode(&params.to_cbor()));
        let message = request.encode();
        assert_eq!(message[0], 0x0A);
        let decoded = CredentialManagementRequest::decode(&message[1..]).unwrap();
        assert_eq!(decoded, request);
        assert_eq!(
            CredentialManagementParams::from_cbor(decoded.sub_command_params.as_ref()),
            Ok(params)
        );
        let update = CredentialManagementParams {
            credential_id: Some(PublicKeyCredentialDescriptor::public_key(vec![7; 16])),
            user: Some(PublicKeyCredentialUserEntity {
                id: vec![9],
                name: Some("bob".into()),
                display_name: Some("Bob".into()),
            }),
            ..Default::default()
        };
        assert_eq!(
            CredentialManagementParams::from_cbor(Some(&update.to_cbor())),
            Ok(update)
        );
        let next =
            CredentialManagementRequest::new(CredentialManagementSubcommand::EnumerateRpsGetNextRp);
        assert_eq!(
            CredentialManagementRequest::decode(&next.encode()[1..]),
            Ok(next)
        );
    }

    #[test]
    fn malformed_requests_keep_their_statuses() {
        let int = |i: i64| Value::Integer(i.into());
        let decode = |entries: Vec<(i64, Value)>| {
            CredentialManagementRequest::decode(&cbor::encode(&cbor::int_map(entries)))
        };
        assert_eq!(decode(vec![]), Err(StatusCode::MissingParameter));
        assert_eq!(
            decode(vec![(1, Value::Bool(true))]),
            Err(StatusCode::CborUnexpectedType)
        );
        assert_eq!(
            decode(vec![(1, int(1)), (2, int(1))]),
            Err(StatusCode::CborUnexpectedType)
        );
        assert_eq!(
            decode(vec![(1, int(1)), (4, int(1))]),
            Err(StatusCode::CborUnexpectedType)
        );
        assert_eq!(
            decode(vec![(1, int(8))]),
            Err(StatusCode::InvalidSubcommand)
        );
        assert_eq!(
            decode(vec![(1, int(256))]),
            Err(StatusCode::InvalidSubcommand)
        );
        let text_key = Value::Map(vec![(Value::Text("a".into()), int(1))]);
        assert_eq!(
            CredentialManagementParams::from_cbor(Some(&text_key)),
            Err(StatusCode::CborUnexpectedType)
        );
        let descriptor_without_type = cbor::int_map(vec![(
            2,
            cbor::text_map(vec![("id", Value::Bytes(vec![1]))]),
        )]);
        assert_eq!(
            CredentialManagementParams::from_cbor(Some(&descriptor_without_type)),
            Err(StatusCode::MissingParameter)
        );
        let user_as_bytes = cbor::int_map(vec![(3, Value::Bytes(vec![1]))]);
        assert_eq!(
            CredentialManagementParams::from_cbor(Some(&user_as_bytes)),
            Err(StatusCode::CborUnexpectedType)
        );
        let hash_as_text = cbor::int_map(vec![(1, Value::Text("h".into()))]);
        assert_eq!(
            CredentialManagementParams::from_cbor(Some(&hash_as_text)),
            Err(StatusCode::CborUnexpectedType)
        );
    }

    #[test]
    fn responses_round_trip() {
        let response = CredentialManagementResponse {
            rp: Some(PublicKeyCredentialRpEntity {
                id: "example.com".into(),
                name: None,
            }),
            user: Some(PublicKeyCredentialUserEntity {
                id: vec![1],
                name: Some("alice".into()),
                display_name: None,
            }),
            credential_id: Some(PublicKeyCredentialDescriptor::public_key(vec![2])),
            public_key: Some(cbor::int_map(vec![(1, Value::Integer(2.into()))])),
            total_credentials: Some(2),
            cred_protect: Some(1),
            large_blob_key: Some(Zeroizing::new(vec![0x5A; 32])),
            third_party_payment: Some(false),
            ..Default::default()
        };
        let answer = response.encode();
        assert_eq!(
            CredentialManagementResponse::decode(&answer[1..]),
            Ok(response.clone())
        );
        assert!(
            !format!("{response:?}").contains("90"),
            "the large blob key is redacted"
        );
        let metadata = CredentialManagementResponse {
            existing_resident_credentials_count: Some(3),
            max_possible_remaining_resident_credentials_count: Some(97),
            ..Default::default()
        };
        assert_eq!(
            CredentialManagementResponse::decode(&metadata.encode()[1..]),
            Ok(metadata)
        );
        assert_eq!(CredentialManagementResponse::default().encode(), vec![0x00]);
    }

    #[test]
    fn the_large_blob_key_stays_out_of_debug_output() {
        let response = CredentialManagementResponse {
            large_blob_key: Some(Zeroizing::new(vec![0xE7; 32])),
            ..Default::default()
        };
        let printed = format!("{response:?}");
        assert!(!printed.contains("231"), "{printed}");
        assert!(printed.contains("<redacted>"), "{printed}");
    }
}
