//! Small readers and writers the message types share: integer-keyed maps and counts.

use ciborium::Value;

use crate::cbor;
use crate::status::StatusCode;

/// A count in an answer: a negative or oversized one is not a count.
pub(crate) fn into_count(value: Value) -> Result<u64, StatusCode> {
    u64::try_from(cbor::into_int(value)?).map_err(|_| StatusCode::CborUnexpectedType)
}

/// A number a message keeps as sent (an `i128` holds every CBOR integer, -2^64..2^64-1), as
/// CBOR again. One outside that range never came from a decode; it is written as the nearest
/// CBOR integer rather than panicking.
pub(crate) fn integer(number: i128) -> Value {
    const MIN: i128 = -(1 << 64);
    const MAX: i128 = (1 << 64) - 1;
    let integer = ciborium::value::Integer::try_from(number.clamp(MIN, MAX));
    Value::Integer(integer.unwrap_or_else(|_| 0.into()))
}

/// A map with integer keys, from the key constants (all small).
pub(crate) fn int_key_map(entries: Vec<(i128, Value)>) -> Value {
    Value::Map(entries.into_iter().map(|(k, v)| (integer(k), v)).collect())
}

/// An enum of the numbers one field of a message takes (a command, a subcommand): each
/// variant is its byte, `as_byte` gives it, `from_number` reads a decoded number back (`None`
/// for one the spec does not define).
macro_rules! byte_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $($(#[$variant_meta:meta])* $variant:ident = $value:expr,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum $name {
            $($(#[$variant_meta])* $variant = $value,)+
        }

        impl $name {
            /// Every value, in the spec's order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            pub fn as_byte(self) -> u8 {
                self as u8
            }

            /// The value a decoded number stands for; `None` for one the spec does not define.
            pub fn from_number(number: i128) -> Option<Self> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|value| i128::from(value.as_byte()) == number)
            }
        }
    };
}
pub(crate) use byte_enum;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_beyond_cbor_are_written_as_the_nearest_cbor_integer() {
        assert_eq!(integer(1 << 70), Value::Integer(u64::MAX.into()));
        let min = ciborium::value::Integer::try_from(-(1i128 << 64)).unwrap();
        assert_eq!(integer(-(1 << 70)), Value::Integer(min));
        assert_eq!(integer(-25), Value::Integer((-25).into()));
    }

    #[test]
    fn counts_are_non_negative_integers() {
        assert_eq!(into_count(Value::Integer(8.into())), Ok(8));
        assert_eq!(
            into_count(Value::Integer((-1).into())),
            Err(StatusCode::CborUnexpectedType)
        );
        assert_eq!(
            into_count(Value::Bool(true)),
            Err(StatusCode::CborUnexpectedType)
        );
    }
}
