//! The server's business clock: what "now" is for challenges, sessions and consent windows.
//! It reads the system clock plus an offset that tests (and only tests) move, so that a window
//! can be seen closing without waiting two days. Request signing to the backend always uses the
//! real system time, since the backend checks timestamps against its own.

use std::sync::{
    Arc,
    atomic::{AtomicI64, Ordering},
};

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
    /// Rung when the clock is moved, so that whoever sleeps until a business time (the relay's
    /// next due row) looks again.
    moved: Arc<Notify>,
}

impl Clock {
    pub fn system() -> Self {
        Clock::default()
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        crate::storage::now_millis().saturating_add(self.offset_ms.load(Ordering::Relaxed))
    }

    pub fn now(&self) -> DateTime<Utc> {
        from_ms(self.now_ms())
    }

    /// Moves this clock (and every clone of it) forward by `ms`.
    pub fn advance_ms(&self, ms: i64) {
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
        self.moved.notify_waiters();
    }

    /// Completes the next time this clock (or a clone) is moved.
    pub async fn moved(&self) {
        self.moved.notified().await;
    }
}

/// An instant stored as milliseconds, back as a `DateTime`; out-of-range values clamp.
pub fn from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or(if ms < 0 {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    })
}

pub fn to_ms(instant: DateTime<Utc>) -> i64 {
    instant.timestamp_millis()
}
