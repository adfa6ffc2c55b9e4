//! The operating system's random generator.

use protocol::env::Rng;

/// [`Rng`] backed by the operating system (`getrandom(2)` on Linux).
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRng;

impl Rng for OsRng {
    /// # Panics
    /// If the operating system cannot provide random bytes: there is no safe way to go on
    /// creating keys without them.
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        if let Err(err) = getrandom::fill(dest) {
            panic!("the operating system random generator failed: {err}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_the_buffer_with_different_bytes_each_time() {
        let mut rng = OsRng;
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);

        rng.fill_bytes(&mut a);
        rng.fill_bytes(&mut b);

        assert_ne!(a, [0u8; 32]);
        assert_ne!(a, b);
    }
}
