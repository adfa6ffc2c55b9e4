/// A monotonic clock, in milliseconds since an arbitrary origin (the daemon's start).
///
/// Only differences matter: the reset window after power-up, the getNextAssertion timer and
/// CTAPHID message timeouts are all measured against it.
pub trait Clock {
    fn now_ms(&self) -> u64;
}
