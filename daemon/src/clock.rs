//! The monotonic clock the authenticator and the CTAPHID engine measure time with.

use std::time::Instant;

/// Milliseconds since the daemon started ("power-up" for the reset window).
#[derive(Debug, Clone, Copy)]
pub struct MonotonicClock {
    origin: Instant,
}

impl MonotonicClock {
    pub fn start() -> Self {
        MonotonicClock {
            origin: Instant::now(),
        }
    }
}

impl protocol::env::Clock for MonotonicClock {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}
