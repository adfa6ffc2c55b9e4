//! ISO 7816-4 command APDUs, in the short and extended length encodings U2F allows.

/// A parsed command APDU. `Le` is accepted and ignored: responses always carry all their data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Apdu<'a> {
    pub ins: u8,
    pub p1: u8,
    pub p2: u8,
    pub data: &'a [u8],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApduError {
    /// CLA is not 0x00 (SW_CLA_NOT_SUPPORTED).
    ClassNotSupported,
    /// The length fields do not match the bytes (SW_WRONG_LENGTH).
    WrongLength,
}

impl<'a> Apdu<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ApduError> {
        let [cla, ins, p1, p2, body @ ..] = bytes else {
            return Err(ApduError::WrongLength);
        };
        if *cla != 0 {
            return Err(ApduError::ClassNotSupported);
        }
        let data = match body {
            // Case 1: no data, no Le. Case 2S: Le only.
            [] | [_] => &[][..],
            // Case 2E: 00 Le(2), no data.
            [0, _, _] => &[][..],
            // Case 3E/4E: 00 Lc(2) data [Le(2)].
            [0, lc_hi, lc_lo, rest @ ..] => {
                // Lc = 0 is not valid ISO, but U2F clients (python-fido2) send 00 0000 for "no
                // data" before an extended Le: read it as exactly that.
                let lc = usize::from(u16::from_be_bytes([*lc_hi, *lc_lo]));
                match rest.len().checked_sub(lc) {
                    Some(0) | Some(2) => &rest[..lc],
                    _ => return Err(ApduError::WrongLength),
                }
            }
            // Case 3S/4S: Lc(1) data [Le(1)].
            [lc, rest @ ..] => {
                let lc = usize::from(*lc);
                match rest.len().checked_sub(lc) {
                    Some(0) | Some(1) => &rest[..lc],
                    _ => return Err(ApduError::WrongLength),
                }
            }
        };
        Ok(Apdu {
            ins: *ins,
            p1: *p1,
            p2: *p2,
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_iso_cases_parse() {
        assert_eq!(Apdu::parse(&[0, 3, 0, 0]).unwrap().data, &[] as &[u8]);
        assert_eq!(Apdu::parse(&[0, 3, 0, 0, 0]).unwrap().data, &[] as &[u8]);
        assert_eq!(
            Apdu::parse(&[0, 3, 0, 0, 0, 0, 0]).unwrap().data,
            &[] as &[u8]
        );
        assert_eq!(Apdu::parse(&[0, 1, 3, 0, 2, 9, 8]).unwrap().data, &[9, 8]);
        assert_eq!(
            Apdu::parse(&[0, 1, 3, 0, 2, 9, 8, 0]).unwrap().data,
            &[9, 8]
        );
        assert_eq!(
            Apdu::parse(&[0, 1, 3, 0, 0, 0, 2, 9, 8]).unwrap().data,
            &[9, 8]
        );
        let apdu = Apdu::parse(&[0, 2, 7, 1, 0, 0, 2, 9, 8, 0, 0]).unwrap();
        assert_eq!(
            (apdu.ins, apdu.p1, apdu.p2, apdu.data),
            (2, 7, 1, &[9u8, 8][..])
        );
    }

    #[test]
    fn length_mismatches_are_wrong_length() {
        assert_eq!(Apdu::parse(&[0, 1, 0]), Err(ApduError::WrongLength));
        assert_eq!(
            Apdu::parse(&[0, 1, 0, 0, 3, 9, 8]),
            Err(ApduError::WrongLength)
        );
        assert_eq!(
            Apdu::parse(&[0, 1, 0, 0, 1, 9, 8, 7]),
            Err(ApduError::WrongLength)
        );
        assert_eq!(
            Apdu::parse(&[0, 1, 0, 0, 0, 0, 3, 9, 8]),
            Err(ApduError::WrongLength)
        );
        assert_eq!(
            Apdu::parse(&[0, 1, 0, 0, 0, 0, 0, 9]),
            Err(ApduError::WrongLength)
        );
    }

    #[test]
    fn only_class_zero_is_supported() {
        assert_eq!(
            Apdu::parse(&[0x80, 3, 0, 0]),
            Err(ApduError::ClassNotSupported)
        );
    }
}
