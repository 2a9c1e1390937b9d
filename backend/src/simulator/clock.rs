//! The simulator's business clock: real time by default, settable (frozen at an instant, or
//! shifted) so tests can walk through consent windows and certificate validity. Request
//! timestamps are checked against the real clock instead, because the relay signs with its own
//! real time whatever the simulated date is.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

#[derive(Debug, Clone, Copy)]
enum Mode {
    Offset(Duration),
    Frozen(DateTime<Utc>),
}

/// A shared, settable clock; clones see the same time.
#[derive(Debug, Clone)]
pub struct SimClock(Arc<Mutex<Mode>>);

impl Default for SimClock {
    fn default() -> Self {
        SimClock(Arc::new(Mutex::new(Mode::Offset(Duration::zero()))))
    }
}

impl SimClock {
    /// Real time.
    pub fn system() -> Self {
        Self::default()
    }

    /// Frozen at `at` until changed.
    pub fn frozen(at: DateTime<Utc>) -> Self {
        SimClock(Arc::new(Mutex::new(Mode::Frozen(at))))
    }

    fn with<T>(&self, f: impl FnOnce(&mut Mode) -> T) -> T {
        // A poisoned lock only means another thread panicked while setting the time; the
        // mode is a plain value, still usable.
        let mut guard = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.with(|mode| match *mode {
            Mode::Offset(offset) => Utc::now() + offset,
            Mode::Frozen(at) => at,
        })
    }

    /// Freezes the clock at `at`.
    pub fn set(&self, at: DateTime<Utc>) {
        self.with(|mode| *mode = Mode::Frozen(at));
    }

    /// Moves the clock by `by` (frozen or running).
    pub fn advance(&self, by: Duration) {
        self.with(|mode| {
            *mode = match *mode {
                Mode::Offset(offset) => Mode::Offset(offset + by),
                Mode::Frozen(at) => Mode::Frozen(at + by),
            }
        });
    }

    /// Back to real time.
    pub fn reset(&self) {
        self.with(|mode| *mode = Mode::Offset(Duration::zero()));
    }
}
