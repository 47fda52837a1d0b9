//! A clock that moves with tokio's.

use frontdesk_core::{Clock, Timestamp};
use tokio::time::Instant;

/// Wall-clock time read through tokio's clock: the wall time at creation plus the tokio
/// time elapsed since. In production that is the wall clock; under
/// `tokio::time::pause()` it stands still and jumps with `advance`, so a test can check
/// that a retry waits its full delay without waiting itself.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    wall_at_start: Timestamp,
    start: Instant,
}

impl TokioClock {
    pub fn new() -> Self {
        Self {
            wall_at_start: Timestamp::now(),
            start: Instant::now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Timestamp {
        self.wall_at_start.plus(self.start.elapsed())
    }
}
