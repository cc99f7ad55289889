//! The clock seam: the only way code reads the time.
//!
//! The run loop reads [`Clock::now`] once per turn and hands that instant
//! down; the HTTP API and the reloaders ask the same clock. Monotonic time
//! (lease deadlines, back-off) is tokio's [`Instant`], so a test that pauses
//! tokio's time drives both halves of a [`TestClock`] at once.

use std::sync::Mutex;

use jiff::{SignedDuration, Timestamp};
use tokio::time::Instant;

/// Wall-clock and monotonic time.
pub trait Clock: Send + Sync {
    /// The wall-clock time.
    fn now(&self) -> Timestamp;
    /// The monotonic time.
    fn instant(&self) -> Instant {
        Instant::now()
    }
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock for tests: wall time is a start instant plus the monotonic time
/// elapsed since the clock was made (tokio's, so `tokio::time::pause`
/// controls it), plus any [`step`](TestClock::step) applied since.
#[derive(Debug)]
pub struct TestClock {
    start: Timestamp,
    origin: Instant,
    offset: Mutex<SignedDuration>,
}

impl TestClock {
    /// A clock reading `start` now.
    pub fn new(start: Timestamp) -> TestClock {
        TestClock {
            start,
            origin: Instant::now(),
            offset: Mutex::new(SignedDuration::ZERO),
        }
    }

    /// Steps the wall clock by `by` (negative: back), as an NTP step or a
    /// manual change would; monotonic time is unaffected.
    pub fn step(&self, by: SignedDuration) {
        *self.offset.lock().expect("clock lock") += by;
    }
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        let elapsed =
            SignedDuration::try_from(Instant::now() - self.origin).expect("elapsed time fits");
        self.start + elapsed + *self.offset.lock().expect("clock lock")
    }
}
