//! The `FIDO:/` QR code: the initiator's request to be served.
//!
//! The digits decode to a CBOR map with integer keys:
//! 0 = the initiator's compressed P-256 identity key, 1 = the 16-byte QR secret, 2 = how many
//! assigned tunnel domains the initiator knows, 3 = when the code was made (unix seconds),
//! 4 = whether it supports linking (absent in caBLE 2.0), 5 = the request type ("mc" or "ga"),
//! 6 = a bool (older initiators: "non-discoverable makeCredential is fine") or, since CTAP 2.3,
//! an array of the transports it offers. Unknown keys are ignored: newer initiators add some.

use std::fmt;

use ciborium::Value;
use p256::PublicKey;
use zeroize::Zeroizing;

use super::{digits, HybridError};

/// The QR secret's length.
pub const QR_SECRET_LEN: usize = 16;
const PREFIX: &str = "FIDO:/";

/// What the initiator wants done over the tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestType {
    /// "mc": register a new credential.
    MakeCredential,
    /// "ga": sign in (also what an initiator that names no type wants).
    GetAssertion,
}

/// QR key 6 in either of its forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QrKey6 {
    /// caBLE 2.x: the initiator accepts a non-discoverable credential for "mc".
    NonDiscoverableMakeCredential(bool),
    /// CTAP 2.3: the transports the initiator offers (0 = tunnel / websocket, 1 = BLE).
    Transports(Vec<u64>),
}

/// A decoded QR code.
pub struct QrRequest {
    /// The initiator's long-term identity key (the "K" of KNpsk0).
    pub identity_key: PublicKey,
    qr_secret: Zeroizing<[u8; QR_SECRET_LEN]>,
    /// Number of assigned tunnel server domains the initiator knows (key 2; 0 when absent).
    pub known_domains: u64,
    /// When the QR code was made, in unix seconds (key 3).
    pub created_at: Option<u64>,
    /// Key 4: `None` is a caBLE 2.0 initiator.
    pub supports_linking: Option<bool>,
    pub request_type: RequestType,
    pub key6: Option<QrKey6>,
}

impl fmt::Debug for QrRequest {
    // The QR secret stays out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QrRequest")
            .field("request_type", &self.request_type)
            .field("known_domains", &self.known_domains)
            .field("created_at", &self.created_at)
            .field("supports_linking", &self.supports_linking)
            .field("key6", &self.key6)
            .finish_non_exhaustive()
    }
}

impl QrRequest {
    /// Decodes the text of a QR code. `now` is the current unix time; a code made more than
    /// `max_age_secs` before it has expired.
    pub fn parse(text: &str, now: u64, max_age_secs: u64) -> Result<Self, HybridError> {
        let text = text.trim();
        let has_prefix = text
            .get(..PREFIX.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(PREFIX));
        if !has_prefix {
            return Err(HybridError::NotFidoCode);
        }
        let bytes = digits::decode(&text[PREFIX.len()..])?;
        let request = Self::from_cbor(&bytes)?;
        if let Some(created_at) = request.created_at {
            let age_secs = now.saturating_sub(created_at);
            if age_secs > max_age_secs {
                return Err(HybridError::QrExpired { age_secs });
            }
        }
        Ok(request)
    }

    /// Decodes the CBOR map of a QR code (no expiry check).
    pub fn from_cbor(bytes: &[u8]) -> Result<Self, HybridError> {
        let unreadable = HybridError::QrUnreadable;
        let value = crate::cbor::decode(bytes).map_err(|_| unreadable("it holds no valid CBOR"))?;
        let Value::Map(entries) = value else {
            return Err(unreadable("it holds no CBOR map"));
        };
        let mut identity_key = None;
        let mut qr_secret = None;
        let mut fields = OptionalFields {
            known_domains: 0,
            created_at: None,
            supports_linking: None,
            request_type: RequestType::GetAssertion,
            key6: None,
        };
        for (key, value) in entries {
            // Text keys or negative keys belong to no version we know: ignore them too.
            let Some(key) = key.as_integer().and_then(|k| u64::try_from(k).ok()) else {
                continue;
            };
            match key {
                0 => {
                    let bytes = value
                        .as_bytes()
                        .ok_or(unreadable("the identity key is not a byte string"))?;
                    let key = PublicKey::from_sec1_bytes(bytes)
                        .map_err(|_| unreadable("the identity key is not a P-256 point"))?;
                    identity_key = Some(key);
                }
                1 => {
                    let bytes = value
                        .as_bytes()
                        .ok_or(unreadable("the QR secret is not a byte string"))?;
                    let secret: [u8; QR_SECRET_LEN] = bytes
                        .as_slice()
                        .try_into()
                        .map_err(|_| unreadable("the QR secret is not 16 bytes"))?;
                    qr_secret = Some(Zeroizing::new(secret));
                }
                2 => fields.known_domains = uint(&value, "the domain count is not a number")?,
                3 => fields.created_at = Some(uint(&value, "the timestamp is not a number")?),
                4 => {
                    let linking = value
                        .as_bool()
                        .ok_or(unreadable("the linking flag is not a boolean"))?;
                    fields.supports_linking = Some(linking);
                }
                5 => {
                    let text = value
                        .as_text()
                        .ok_or(unreadable("the request type is not text"))?;
                    fields.request_type = match text {
                        "mc" => RequestType::MakeCredential,
                        "ga" => RequestType::GetAssertion,
                        // e.g. "dc" (digital credentials): we cannot serve it, so say so
                        // rather than answer something else.
                        other => return Err(HybridError::WrongRequestType(other.to_owned())),
                    };
                }
                6 => fields.key6 = Some(key6(&value)?),
                _ => {}
            }
        }
        Ok(QrRequest {
            identity_key: identity_key.ok_or(unreadable("it has no identity key"))?,
            qr_secret: qr_secret.ok_or(unreadable("it has no QR secret"))?,
            known_domains: fields.known_domains,
            created_at: fields.created_at,
            supports_linking: fields.supports_linking,
            request_type: fields.request_type,
            key6: fields.key6,
        })
    }

    /// The shared secret every session key derives from.
    pub fn qr_secret(&self) -> &[u8; QR_SECRET_LEN] {
        &self.qr_secret
    }
}

/// The keys a QR code may leave out, with their defaults.
struct OptionalFields {
    known_domains: u64,
    created_at: Option<u64>,
    supports_linking: Option<bool>,
    request_type: RequestType,
    key6: Option<QrKey6>,
}

fn uint(value: &Value, what: &'static str) -> Result<u64, HybridError> {
    value
        .as_integer()
        .and_then(|i| u64::try_from(i).ok())
        .ok_or(HybridError::QrUnreadable(what))
}

fn key6(value: &Value) -> Result<QrKey6, HybridError> {
    const WHAT: &str = "key 6 is neither a boolean nor a list of transports";
    match value {
        Value::Bool(b) => Ok(QrKey6::NonDiscoverableMakeCredential(*b)),
        Value::Array(items) => items
            .iter()
            .map(|item| uint(item, WHAT))
            .collect::<Result<_, _>>()
            .map(QrKey6::Transports),
        _ => Err(HybridError::QrUnreadable(WHAT)),
    }
}

#[cfg(test)]
mod tests {
    use p256::elliptic_curve::sec1::ToSec1Point;

    use super::*;
    use crate::cbor::encode;

    /// Made by Chrome (desktop) and published with webauthn-authenticator-rs' tests.
    const CHROME_QR: &str = "FIDO:/162870791865632382552704231438327900152302540348097243854039966655366469794954476199158014113179232779520163209900691930075274801398564434658077048963842109321447142660";
    /// Made by Safari on iOS, same source.
    const SAFARI_QR: &str = "FIDO:/089962132878132862898875319509818655951233947060166026934941652203853844930597225184066237811614893181300344014421205790072080843938838513707157859599106109321447142404";

    fn identity() -> PublicKey {
        let scalar = p256::NonZeroScalar::try_from(&[7u8; 32][..]).unwrap();
        PublicKey::from_secret_scalar(&scalar)
    }

    fn qr_map(extra: Vec<(Value, Value)>) -> Vec<(Value, Value)> {
        let mut entries = vec![
            (
                Value::from(0),
                Value::Bytes(identity().to_sec1_point(true).as_bytes().to_vec()),
            ),
            (Value::from(1), Value::Bytes(vec![0x11; 16])),
            (Value::from(2), Value::from(2)),
            (Value::from(3), Value::from(1_700_000_000u64)),
        ];
        entries.extend(extra);
        entries
    }

    fn qr_text(entries: Vec<(Value, Value)>) -> String {
        format!("FIDO:/{}", digits::encode(&encode(&Value::Map(entries))))
    }

    const NOW: u64 = 1_700_000_060;

    #[test]
    fn decodes_a_qr_code_made_by_chrome() {
        let request = QrRequest::parse(CHROME_QR, 0, u64::MAX).unwrap();
        assert_eq!(request.request_type, RequestType::MakeCredential);
        assert_eq!(request.known_domains, 2);
        assert!(request.created_at.is_some());
    }

    #[test]
    fn decodes_a_qr_code_made_by_safari() {
        let request = QrRequest::parse(SAFARI_QR, 0, u64::MAX).unwrap();
        assert_eq!(request.supports_linking, Some(false));
        assert!(request.created_at.is_some());
    }

    #[test]
    fn reads_every_field() {
        let text = qr_text(qr_map(vec![
            (Value::from(4), Value::Bool(false)),
            (Value::from(5), Value::Text("mc".into())),
            (Value::from(6), Value::Bool(true)),
        ]));
        let request = QrRequest::parse(&text, NOW, 600).unwrap();
        assert_eq!(request.identity_key, identity());
        assert_eq!(request.qr_secret(), &[0x11; 16]);
        assert_eq!(request.known_domains, 2);
        assert_eq!(request.created_at, Some(1_700_000_000));
        assert_eq!(request.supports_linking, Some(false));
        assert_eq!(request.request_type, RequestType::MakeCredential);
        assert_eq!(
            request.key6,
            Some(QrKey6::NonDiscoverableMakeCredential(true))
        );
    }

    #[test]
    fn key6_may_be_a_transport_list() {
        let text = qr_text(qr_map(vec![(
            Value::from(6),
            Value::Array(vec![Value::from(0), Value::from(1)]),
        )]));
        let request = QrRequest::parse(&text, NOW, 600).unwrap();
        assert_eq!(request.key6, Some(QrKey6::Transports(vec![0, 1])));
        assert_eq!(request.request_type, RequestType::GetAssertion);
        assert_eq!(request.supports_linking, None);
    }

    #[test]
    fn unknown_keys_are_ignored() {
        let text = qr_text(qr_map(vec![
            (Value::from(7), Value::Text("future".into())),
            (Value::from(100), Value::Map(vec![])),
            (Value::Text("x".into()), Value::Null),
            (Value::from(-1), Value::from(5)),
        ]));
        assert!(QrRequest::parse(&text, NOW, 600).is_ok());
    }

    #[test]
    fn prefix_is_case_insensitive_and_whitespace_is_trimmed() {
        let text = qr_text(qr_map(vec![]));
        let lower = format!("  fido:/{}\n", &text[6..]);
        assert!(QrRequest::parse(&lower, NOW, 600).is_ok());
    }

    #[test]
    fn other_text_is_not_a_fido_code() {
        for text in ["", "FIDO:", "https://example.com", "FIDO/123", "ＦIDO:/1"] {
            assert_eq!(
                QrRequest::parse(text, NOW, 600).unwrap_err(),
                HybridError::NotFidoCode,
                "{text:?}"
            );
        }
    }

    #[test]
    fn bad_digits_and_bad_cbor_are_unreadable() {
        for text in [
            "FIDO:/",
            "FIDO://",
            "FIDO:/0",
            "FIDO:/999",
            "FIDO:/000",
            "FIDO:/12x",
        ] {
            assert!(
                matches!(
                    QrRequest::parse(text, NOW, 600),
                    Err(HybridError::QrUnreadable(_))
                ),
                "{text:?}"
            );
        }
        // A CBOR array rather than a map.
        let text = format!("FIDO:/{}", digits::encode(&encode(&Value::Array(vec![]))));
        assert!(matches!(
            QrRequest::parse(&text, NOW, 600),
            Err(HybridError::QrUnreadable(_))
        ));
    }

    #[test]
    fn missing_or_malformed_fields_are_unreadable() {
        let cases: Vec<Vec<(Value, Value)>> = vec![
            // no identity key
            qr_map(vec![])
                .into_iter()
                .filter(|(k, _)| *k != Value::from(0))
                .collect(),
            // no secret
            qr_map(vec![])
                .into_iter()
                .filter(|(k, _)| *k != Value::from(1))
                .collect(),
            // secret of 15 bytes
            vec![
                (
                    Value::from(0),
                    Value::Bytes(identity().to_sec1_point(true).as_bytes().to_vec()),
                ),
                (Value::from(1), Value::Bytes(vec![0; 15])),
            ],
            // identity not on the curve
            vec![
                (
                    Value::from(0),
                    Value::Bytes([vec![2], vec![0xff; 32]].concat()),
                ),
                (Value::from(1), Value::Bytes(vec![0; 16])),
            ],
            qr_map(vec![(Value::from(2), Value::Text("2".into()))]),
            qr_map(vec![(Value::from(4), Value::from(1))]),
            qr_map(vec![(Value::from(5), Value::from(1))]),
            qr_map(vec![(Value::from(6), Value::Text("ble".into()))]),
            qr_map(vec![(
                Value::from(6),
                Value::Array(vec![Value::Bool(true)]),
            )]),
        ];
        for (i, entries) in cases.into_iter().enumerate() {
            let result = QrRequest::parse(&qr_text(entries), NOW, 600);
            assert!(
                matches!(result, Err(HybridError::QrUnreadable(_))),
                "case {i}: {result:?}"
            );
        }
    }

    #[test]
    fn an_unknown_request_type_is_refused() {
        let text = qr_text(qr_map(vec![(Value::from(5), Value::Text("dc".into()))]));
        assert_eq!(
            QrRequest::parse(&text, NOW, 600).unwrap_err(),
            HybridError::WrongRequestType("dc".into())
        );
    }

    #[test]
    fn an_old_code_has_expired() {
        let text = qr_text(qr_map(vec![]));
        assert!(QrRequest::parse(&text, 1_700_000_600, 600).is_ok());
        assert_eq!(
            QrRequest::parse(&text, 1_700_000_601, 600).unwrap_err(),
            HybridError::QrExpired { age_secs: 601 }
        );
        // A code from a clock slightly ahead of ours is not expired.
        assert!(QrRequest::parse(&text, 1_699_999_000, 600).is_ok());
    }

    #[test]
    fn debug_does_not_show_the_secret() {
        let text = qr_text(qr_map(vec![]));
        let request = QrRequest::parse(&text, NOW, 600).unwrap();
        let shown = format!("{request:?}");
        assert!(!shown.contains("17, 17"), "{shown}");
        assert!(!shown.to_lowercase().contains("secret"), "{shown}");
    }
}
