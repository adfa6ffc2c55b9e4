//! Reading a fuzzer's bytes as a program of operations. Every read succeeds: past the end it
//! yields zeros and empty slices, so any input is a valid program and the fuzzer never wastes
//! runs on "too short" inputs.

pub struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Input(data)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }

    /// Up to `n` bytes (fewer at the end of the input).
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, tail) = self.0.split_at(n.min(self.0.len()));
        self.0 = tail;
        head
    }

    /// A length-prefixed (u16) byte string.
    pub fn bytes(&mut self) -> &'a [u8] {
        let len = usize::from(self.u16());
        self.take(len)
    }

    pub fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let got = self.take(N);
        out[..got.len()].copy_from_slice(got);
        out
    }

    pub fn rest(&mut self) -> &'a [u8] {
        self.take(self.0.len())
    }
}

/// Writes the same layout, for seed generators and tests.
#[derive(Default)]
pub struct Program(pub Vec<u8>);

impl Program {
    pub fn byte(&mut self, b: u8) -> &mut Self {
        self.0.push(b);
        self
    }

    pub fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        let len = u16::try_from(bytes.len()).expect("a program string fits in 64 KiB");
        self.0.extend_from_slice(&len.to_be_bytes());
        self.0.extend_from_slice(bytes);
        self
    }

    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.extend_from_slice(bytes);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_past_the_end_are_zero_and_empty() {
        let mut input = Input::new(&[1, 0, 3, 9]);
        assert_eq!(input.byte(), 1);
        assert_eq!(input.bytes(), &[9][..]);
        assert!(input.is_empty());
        assert_eq!(input.byte(), 0);
        assert_eq!(input.array::<2>(), [0, 0]);
    }

    #[test]
    fn programs_read_back() {
        let mut p = Program::default();
        p.byte(7).bytes(b"abc").raw(&[1, 2]);
        let mut input = Input::new(&p.0);
        assert_eq!(input.byte(), 7);
        assert_eq!(input.bytes(), b"abc");
        assert_eq!(input.array::<2>(), [1, 2]);
    }
}
