//! The one clock of a node. Intervals and timeouts (bans, sync deadlines,
//! backoffs, timers) run on the monotonic clock, so a wall-clock step
//! neither freezes nor mass-expires them; wall time is read only where the
//! chain needs it (block timestamps, tx nonces).

use protoblock_node::Now;
use web_time::{Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin: Instant,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    pub fn new() -> Self {
        Self { origin: Instant::now() }
    }

    /// Monotonic milliseconds since this clock was made.
    pub fn mono_ms(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }

    pub fn now(&self) -> Now {
        Now { mono_ms: self.mono_ms(), unix_ms: now_ms() }
    }

    /// How long until monotonic time `at`.
    pub fn until(&self, at: u64) -> std::time::Duration {
        std::time::Duration::from_millis(at.saturating_sub(self.mono_ms()))
    }
}

/// Wall time in Unix milliseconds: block timestamps and tx nonces only.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}
