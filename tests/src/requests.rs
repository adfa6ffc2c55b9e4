//! CTAP2 requests the end-to-end tests send themselves, as the command byte and its CBOR.

use ciborium::Value;
use protocol::cbor;

/// authenticatorMakeCredential for `rp` and the user handle `user`: ES256, a fixed
/// clientDataHash, discoverable when `rk`.
pub fn make_credential_es256(rp: &str, user: &[u8], rk: bool) -> Vec<u8> {
    let text = |s: &str| Value::Text(s.into());
    let params = cbor::int_map(vec![
        (1, Value::Bytes(vec![0xcd; 32])),
        (2, cbor::text_map(vec![("id", text(rp))])),
        (3, cbor::text_map(vec![("id", Value::Bytes(user.to_vec()))])),
        (
            4,
            Value::Array(vec![cbor::text_map(vec![
                ("alg", Value::Integer((-7).into())),
                ("type", text("public-key")),
            ])]),
        ),
        (7, cbor::text_map(vec![("rk", Value::Bool(rk))])),
    ]);
    [vec![0x01], cbor::encode(&params)].concat()
}

/// authenticatorGetAssertion for `rp` without an allowList (a discovery), presence asked.
pub fn get_assertion_discovery(rp: &str) -> Vec<u8> {
    let params = cbor::int_map(vec![
        (1, Value::Text(rp.into())),
        (2, Value::Bytes(vec![0xcd; 32])),
    ]);
    [vec![0x02], cbor::encode(&params)].concat()
}
