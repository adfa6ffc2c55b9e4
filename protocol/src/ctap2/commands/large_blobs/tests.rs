use super::*;
use crate::cbor;
use crate::ctap2::test_support::*;
use crate::origin::Origin;
use crate::wire::Command;
use ciborium::Value;

const LB: u8 = Command::LargeBlobs as u8;
const P2: PinProtocol = PinProtocol::Two;

/// A serialized array: CBOR array of the given byte strings, then the truncated hash.
fn serialized(items: &[&[u8]]) -> Vec<u8> {
    let mut array = cbor::encode(&Value::Array(items.iter().map(|i| bytes(i)).collect()));
    let hash = Sha256::digest(&array);
    array.extend_from_slice(&hash[..16]);
    array
}

fn read_all(a: &mut TestAuthenticator) -> Vec<u8> {
    let r: LargeBlobsResponse = send(a, &LargeBlobsRequest::get(7000, 0)).unwrap();
    r.config.expect("a slice")
}

fn set(
    a: &mut TestAuthenticator,
    fragment: &[u8],
    offset: usize,
    length: Option<usize>,
    token: Option<&[u8]>,
) -> Result<Value, StatusCode> {
    let mut request = LargeBlobsRequest {
        set: Some(fragment.to_vec()),
        offset: Some(offset as i128),
        length: length.map(|length| length as i128),
        ..LargeBlobsRequest::default()
    };
    if let Some(token) = token {
        let fragment_hash = Sha256::digest(fragment).into();
        let message = LargeBlobsRequest::message_to_authenticate(offset as u32, &fragment_hash);
        request.pin_uv_auth_param = Some(P2.authenticate(token, &message));
        request.pin_uv_auth_protocol = Some(2);
    }
    send_value(a, &request)
}

#[test]
fn a_new_key_holds_the_empty_array() {
    let (mut a, _) = authenticator();
    assert_eq!(read_all(&mut a), INITIAL_ARRAY.to_vec());
    assert_eq!(serialized(&[]), INITIAL_ARRAY.to_vec());
}

#[test]
fn reads_take_slices() {
    let (mut a, _) = authenticator();
    let r = call(&mut a, LB, vec![(1, int(5)), (3, int(2))]).unwrap();
    assert_eq!(as_bytes(field(&r, 1).unwrap()), &INITIAL_ARRAY[2..7]);
    let r = call(&mut a, LB, vec![(1, int(5)), (3, int(17))]).unwrap();
    assert_eq!(as_bytes(field(&r, 1).unwrap()), b"", "at the end");
    assert_eq!(
        call(&mut a, LB, vec![(1, int(5)), (3, int(18))]),
        Err(StatusCode::InvalidParameter),
        "past the end"
    );
    assert_eq!(
        call(&mut a, LB, vec![(1, int(7546)), (3, int(0))]),
        Err(StatusCode::InvalidLength),
        "over maxFragmentLength"
    );
    // §6.10.2: "If offset is not present in the input map, return
    // CTAP1_ERR_INVALID_PARAMETER."
    assert_eq!(
        call(&mut a, LB, vec![(1, int(5))]),
        Err(StatusCode::InvalidParameter),
        "no offset"
    );
    assert_eq!(
        call(&mut a, LB, vec![(2, bytes(b"x")), (4, int(17))]),
        Err(StatusCode::InvalidParameter),
        "a set without offset"
    );
    assert_eq!(
        call(&mut a, LB, vec![(1, int(5)), (3, int(0)), (4, int(5))]),
        Err(StatusCode::InvalidParameter)
    );
    assert_eq!(
        call(&mut a, LB, vec![(1, int(5)), (3, int(0)), (6, int(2))]),
        Err(StatusCode::InvalidParameter)
    );
    assert_eq!(
        call(&mut a, LB, vec![(3, int(0))]),
        Err(StatusCode::InvalidParameter),
        "neither get nor set"
    );
    assert_eq!(
        call(&mut a, LB, vec![(1, int(5)), (2, bytes(b"x")), (3, int(0))]),
        Err(StatusCode::InvalidParameter),
        "both"
    );
    assert_eq!(
        call(&mut a, LB, vec![(1, text("5")), (3, int(0))]),
        Err(StatusCode::CborUnexpectedType)
    );
}

#[test]
fn a_write_in_fragments_replaces_the_array_when_complete() {
    let (mut a, _) = authenticator();
    let array = serialized(&[&[7; 100], &[8; 200]]);
    let (first, rest) = array.split_at(150);
    assert_eq!(
        set(&mut a, first, 0, Some(array.len()), None),
        Ok(Value::Null)
    );
    assert_eq!(
        a.keystore_mut().read_state(StateSlot::LargeBlobs).unwrap(),
        None,
        "not yet committed"
    );
    assert_eq!(set(&mut a, rest, 150, None, None), Ok(Value::Null));
    assert_eq!(read_all(&mut a), array);
}

/// The write belongs to the channel that sent its first fragment (see `state`).
#[test]
fn another_channel_cannot_continue_a_write_and_ends_it() {
    let (mut a, _) = authenticator();
    let array = serialized(&[&[7; 100], &[8; 200]]);
    let (first, rest) = array.split_at(150);
    set(&mut a, first, 0, Some(array.len()), None).unwrap();
    let other = Origin::usb(2);
    let fragment = vec![(2, bytes(rest)), (3, int(150))];
    assert_eq!(
        call_from(&mut a, other, LB, fragment),
        Err(StatusCode::NotAllowed),
        "NOT_ALLOWED from another channel"
    );
    assert_eq!(
        set(&mut a, rest, 150, None, None),
        Err(StatusCode::InvalidSeq),
        "the write was cleared: INVALID_SEQ for its own channel too"
    );
    assert_eq!(read_all(&mut a), INITIAL_ARRAY.to_vec());
}

#[test]
fn any_other_command_ends_a_write() {
    let (mut a, _) = authenticator();
    let array = serialized(&[&[7; 100], &[8; 200]]);
    let (first, rest) = array.split_at(150);
    set(&mut a, first, 0, Some(array.len()), None).unwrap();
    call(&mut a, Command::GetInfo.as_byte(), vec![]).unwrap();
    assert_eq!(
        set(&mut a, rest, 150, None, None),
        Err(StatusCode::InvalidSeq)
    );
}

#[test]
fn write_error_paths() {
    let (mut a, _) = authenticator();
    let array = serialized(&[&[7; 100]]);
    // §6.10.3: "If length is not present, return CTAP1_ERR_INVALID_PARAMETER."
    assert_eq!(
        set(&mut a, &array, 0, None, None),
        Err(StatusCode::InvalidParameter),
        "first fragment without length"
    );
    assert_eq!(
        set(&mut a, &array, 0, Some(4097), None),
        Err(StatusCode::LargeBlobStorageFull),
        "over the maximum"
    );
    assert_eq!(
        set(&mut a, &array[..10], 0, Some(10), None),
        Err(StatusCode::InvalidParameter),
        "shorter than an empty array"
    );
    assert_eq!(
        set(&mut a, &array[..10], 10, None, None),
        Err(StatusCode::InvalidSeq),
        "nothing begun"
    );
    // Each failed fragment ends the write (see `state`), so each case begins one anew.
    set(&mut a, &array[..50], 0, Some(array.len()), None).unwrap();
    assert_eq!(
        set(&mut a, &array[60..], 60, None, None),
        Err(StatusCode::InvalidSeq),
        "a gap"
    );
    set(&mut a, &array[..50], 0, Some(array.len()), None).unwrap();
    assert_eq!(
        set(&mut a, &array[50..], 50, Some(array.len()), None),
        Err(StatusCode::InvalidParameter),
        "length again"
    );
    set(&mut a, &array[..50], 0, Some(array.len()), None).unwrap();
    let mut long = array[50..].to_vec();
    long.push(0);
    assert_eq!(
        set(&mut a, &long, 50, None, None),
        Err(StatusCode::InvalidParameter),
        "past the length"
    );
    assert_eq!(
        set(&mut a, &vec![0; 7546], 0, Some(4096), None),
        Err(StatusCode::InvalidLength),
        "fragment too long"
    );

    let mut corrupt = array.clone();
    corrupt[3] ^= 1;
    assert_eq!(
        set(&mut a, &corrupt, 0, Some(corrupt.len()), None),
        Err(StatusCode::IntegrityFailure),
        "hash mismatch"
    );
    assert_eq!(read_all(&mut a), INITIAL_ARRAY.to_vec(), "nothing changed");
}

#[test]
fn with_a_pin_writes_need_an_lbw_token() {
    let (mut a, _) = authenticator();
    set_pin(&mut a, "1234");
    let array = serialized(&[&[1; 40]]);
    assert_eq!(
        set(&mut a, &array, 0, Some(array.len()), None),
        Err(StatusCode::PuatRequired)
    );
    let ga = pin_token(&mut a, P2, "1234", PERM_GA, Some("x.org")).unwrap();
    assert_eq!(
        set(&mut a, &array, 0, Some(array.len()), Some(&ga)),
        Err(StatusCode::PinAuthInvalid),
        "no lbw"
    );
    let token = pin_token(&mut a, P2, "1234", PERM_LBW, None).unwrap();
    let (first, rest) = array.split_at(20);
    assert_eq!(
        set(&mut a, first, 0, Some(array.len()), Some(&token)),
        Ok(Value::Null)
    );
    assert_eq!(
        set(&mut a, rest, 20, None, Some(&[9; 32])),
        Err(StatusCode::PinAuthInvalid),
        "every fragment is signed"
    );
    assert_eq!(
        set(&mut a, rest, 20, None, Some(&token)),
        Err(StatusCode::InvalidSeq),
        "a failed fragment ends the write"
    );
    assert_eq!(
        set(&mut a, first, 0, Some(array.len()), Some(&token)),
        Ok(Value::Null)
    );
    assert_eq!(set(&mut a, rest, 20, None, Some(&token)), Ok(Value::Null));
    assert_eq!(read_all(&mut a), array, "reads need no token");
}

#[test]
fn reset_brings_back_the_empty_array() {
    let (mut a, _) = authenticator();
    let array = serialized(&[&[1; 40]]);
    set(&mut a, &array, 0, Some(array.len()), None).unwrap();
    send_value(&mut a, &crate::wire::ResetRequest).unwrap();
    assert_eq!(read_all(&mut a), INITIAL_ARRAY.to_vec());
}
