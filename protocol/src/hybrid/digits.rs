//! The digits after `FIDO:/`: bytes written as decimal so that a QR code can use its compact
//! numeric mode.
//!
//! Bytes go in chunks of 7; each chunk is a little-endian integer written as 17 zero-padded
//! digits. A final chunk of 1 to 6 bytes takes as many digits as its largest value needs.

use super::HybridError;

const CHUNK_BYTES: usize = 7;
const CHUNK_DIGITS: usize = 17;
/// Digits for a final partial chunk of 1..=6 bytes (index = bytes - 1).
const PARTIAL_DIGITS: [usize; 6] = [3, 5, 8, 10, 13, 15];

/// Writes bytes as `FIDO:/` digits (the inverse of [`decode`]; used by tests and tools).
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(CHUNK_BYTES) * CHUNK_DIGITS);
    for chunk in bytes.chunks(CHUNK_BYTES) {
        let mut le = [0u8; 8];
        le[..chunk.len()].copy_from_slice(chunk);
        let width = digits_for(chunk.len());
        out.push_str(&format!("{:0width$}", u64::from_le_bytes(le)));
    }
    out
}

/// Reads `FIDO:/` digits back into bytes.
pub fn decode(digits: &str) -> Result<Vec<u8>, HybridError> {
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HybridError::QrUnreadable(
            "it contains characters other than digits",
        ));
    }
    let full_chunks = digits.len() / CHUNK_DIGITS;
    let rest = digits.len() % CHUNK_DIGITS;
    let partial_bytes = match rest {
        0 => 0,
        _ => match PARTIAL_DIGITS.iter().position(|&d| d == rest) {
            Some(index) => index + 1,
            None => return Err(HybridError::QrUnreadable("it has a wrong number of digits")),
        },
    };
    let mut out = Vec::with_capacity(full_chunks * CHUNK_BYTES + partial_bytes);
    let chunks = digits.as_bytes().chunks(CHUNK_DIGITS);
    for chunk in chunks {
        let bytes = if chunk.len() == CHUNK_DIGITS {
            CHUNK_BYTES
        } else {
            partial_bytes
        };
        // At most 17 ASCII digits: always fits a u64 (10^17 < 2^64).
        let value = chunk
            .iter()
            .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0'));
        if value >> (8 * bytes) != 0 {
            return Err(HybridError::QrUnreadable(
                "a group of digits is out of range",
            ));
        }
        out.extend_from_slice(&value.to_le_bytes()[..bytes]);
    }
    Ok(out)
}

/// Decimal digits of the largest integer of `bytes` bytes (2^(8*bytes) - 1).
fn digits_for(bytes: usize) -> usize {
    match bytes {
        CHUNK_BYTES => CHUNK_DIGITS,
        1..=6 => PARTIAL_DIGITS[bytes - 1],
        _ => unreachable!("chunks are 1..=7 bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fact_sheet_vectors() {
        assert_eq!(encode(b"hello world"), "335311851610699281684828783");
        assert_eq!(
            decode("335311851610699281684828783").unwrap(),
            b"hello world"
        );
        assert_eq!(encode(b"ab\xff"), "16736865");
        assert_eq!(decode("16736865").unwrap(), b"ab\xff");
    }

    #[test]
    fn partial_chunk_widths_are_the_digits_of_the_largest_value() {
        for bytes in 1..=7usize {
            let max = u64::MAX >> (64 - 8 * bytes);
            assert_eq!(digits_for(bytes), max.to_string().len(), "{bytes} bytes");
        }
    }

    #[test]
    fn round_trips_every_length() {
        for len in 0..40usize {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 255) as u8).collect();
            let digits = encode(&bytes);
            assert_eq!(decode(&digits).unwrap(), bytes, "length {len}");
            let ones = vec![0xffu8; len];
            assert_eq!(
                decode(&encode(&ones)).unwrap(),
                ones,
                "length {len}, all 0xff"
            );
        }
    }

    #[test]
    fn empty_is_empty() {
        assert_eq!(decode("").unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn wrong_lengths_are_rejected() {
        for len in [1, 2, 4, 6, 7, 9, 11, 12, 14, 16, 18, 19] {
            let digits = "0".repeat(len);
            assert!(
                matches!(decode(&digits), Err(HybridError::QrUnreadable(_))),
                "{len} digits"
            );
        }
    }

    #[test]
    fn out_of_range_groups_are_rejected() {
        // 3 digits hold one byte: 255 is the largest.
        assert!(decode("255").is_ok());
        assert!(matches!(decode("256"), Err(HybridError::QrUnreadable(_))));
        assert!(matches!(decode("999"), Err(HybridError::QrUnreadable(_))));
        // 17 digits hold 7 bytes: 2^56 - 1 = 72057594037927935.
        assert!(decode("72057594037927935").is_ok());
        assert!(matches!(
            decode("72057594037927936"),
            Err(HybridError::QrUnreadable(_))
        ));
        assert!(matches!(
            decode("99999999999999999"),
            Err(HybridError::QrUnreadable(_))
        ));
    }

    #[test]
    fn non_digits_are_rejected() {
        for text in ["12a", "/16736865", "1673 865", "１２３", "-12"] {
            assert!(
                matches!(decode(text), Err(HybridError::QrUnreadable(_))),
                "{text:?}"
            );
        }
    }
}
