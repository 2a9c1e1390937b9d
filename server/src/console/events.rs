//! `GET /api/console/events`: server-sent events that name the receptions of the signed-in
//! account's institution that changed (new, confirmed, refused, eligibility in, withdrawn,
//! 照会番号 set …), so that the day's list refreshes itself. Each connection polls
//! `receptions.updated_at` once a second; that works the same whichever server instance wrote
//! the change. Events carry ids only — the page fetches what it shows, and that fetch is
//! authorised and logged like any other.
//!
//! The session is checked on every poll without counting as activity: an open page alone
//! does not keep a session alive, and the stream ends when the session does.
//!
//! Each open stream holds a database poll a second, so a session may hold only a few at once
//! (`event_streams_per_session`, default 4: a few tabs); one more is refused with 429
//! `too_many_event_streams` until one of them closes. The count is per server instance.

use std::{
    collections::{HashMap, HashSet},
    convert::Infallible,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    extract::State,
    response::sse::{Event, KeepAlive, Sse},
};
use futures_util::{Stream, stream};
use serde::Serialize;
use sqlx::Row;

use super::{Staff, session};
use crate::{
    AppState,
    storage::{Db, StorageError},
};

const POLL: Duration = Duration::from_secs(1);
/// Ids per event at most; a burst larger than this comes in several events.
const BATCH: i64 = 200;

#[derive(Debug, Serialize)]
struct Changed {
    ids: Vec<String>,
}

/// Where a connection is in the stream of changes: everything up to `at` was announced, and of
/// the rows changed exactly at `at`, those in `seen_at` (the next poll looks at `>= at`, since
/// two writes may share a millisecond and land on either side of a poll).
struct Cursor {
    at: i64,
    seen_at: HashSet<String>,
}

enum Step {
    Start,
    Poll,
    End,
}

/// The open event streams of each console session (keyed by the session's SHA-256, as stored),
/// at most `per_session` each.
#[derive(Clone)]
pub struct StreamSlots {
    per_session: usize,
    open: Arc<Mutex<HashMap<String, usize>>>,
}

/// One open stream's place; freed when the stream is dropped (the client went away, or the
/// session ended).
pub struct StreamSlot {
    open: Arc<Mutex<HashMap<String, usize>>>,
    session: String,
}

impl StreamSlots {
    pub fn new(per_session: usize) -> Self {
        StreamSlots {
            per_session: per_session.max(1),
            open: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// A place for one more stream of `session`, if it has fewer than the cap open.
    pub fn take(&self, session: &str) -> Option<StreamSlot> {
        // A poisoned lock only means a panic elsewhere mid-update of a counter map.
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(session.to_owned()).or_insert(0);
        if *count >= self.per_session {
            return None;
        }
        *count += 1;
        Some(StreamSlot {
            open: self.open.clone(),
            session: session.to_owned(),
        })
    }

    /// Streams of `session` open now.
    pub fn open(&self, session: &str) -> usize {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(session).copied().unwrap_or(0)
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.session) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.session);
            }
        }
    }
}

struct Connection {
    /// Held for as long as the stream is open.
    _slot: StreamSlot,
    db: Db,
    state: AppState,
    institution_id: String,
    session: String,
    cursor: Cursor,
    step: Step,
}

async fn changes(
    db: &Db,
    institution_id: &str,
    cursor: &mut Cursor,
) -> Result<Vec<String>, StorageError> {
    let rows = sqlx::query(
        "SELECT id, updated_at FROM receptions WHERE institution_id = $1 AND updated_at >= $2 \
         ORDER BY updated_at, id LIMIT $3",
    )
    .bind(institution_id)
    .bind(cursor.at)
    .bind(BATCH + cursor.seen_at.len() as i64)
    .fetch_all(db)
    .await?;
    let mut ids = Vec::new();
    for row in rows {
        let id: String = row.try_get("id")?;
        let at: i64 = row.try_get("updated_at")?;
        if at == cursor.at && cursor.seen_at.contains(&id) {
            continue;
        }
        if at > cursor.at {
            cursor.at = at;
            cursor.seen_at.clear();
        }
        cursor.seen_at.insert(id.clone());
        ids.push(id);
    }
    Ok(ids)
}

async fn next(mut c: Connection) -> Option<(Result<Event, Infallible>, Connection)> {
    loop {
        match c.step {
            Step::End => return None,
            Step::Start => {
                c.step = Step::Poll;
                return Some((Ok(Event::default().event("ready").data("{}")), c));
            }
            Step::Poll => {
                tokio::time::sleep(POLL).await;
                let live = session::lookup(&c.db, &c.session, c.state.clock.now_ms(), false).await;
                match live {
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        c.step = Step::End;
                        return Some((Ok(Event::default().event("signed_out").data("{}")), c));
                    }
                    Err(error) => {
                        tracing::warn!(%error, "event stream cannot check its session");
                        continue;
                    }
                }
                match changes(&c.db, &c.institution_id, &mut c.cursor).await {
                    Ok(ids) if ids.is_empty() => {}
                    Ok(ids) => {
                        let data = serde_json::to_string(&Changed { ids })
                            .unwrap_or_else(|_| "{\"ids\":[]}".to_owned());
                        return Some((Ok(Event::default().event("receptions").data(data)), c));
                    }
                    Err(error) => tracing::warn!(%error, "event stream cannot poll"),
                }
            }
        }
    }
}

/// `GET /api/console/events`.
pub async fn stream(
    State(state): State<AppState>,
    staff: Staff,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, crate::http::error::ApiError> {
    let Some(slot) = state.limits.event_streams.take(&staff.session) else {
        return Err(crate::http::error::ApiError::new(
            http::StatusCode::TOO_MANY_REQUESTS,
            "too_many_event_streams",
        ));
    };
    // Start from now: the page loaded the list just before it opened the stream.
    let start = state.clock.now_ms();
    let connection = Connection {
        _slot: slot,
        db: state.db.clone(),
        institution_id: staff.institution_id.clone(),
        session: staff.session.clone(),
        cursor: Cursor {
            at: start,
            seen_at: HashSet::new(),
        },
        step: Step::Start,
        state,
    };
    Ok(Sse::new(stream::unfold(connection, next)).keep_alive(KeepAlive::default()))
}

#[cfg(test)]
mod tests {
    use super::StreamSlots;

    #[test]
    fn a_session_holds_at_most_its_cap_and_closing_frees_a_place() {
        let slots = StreamSlots::new(2);
        let a = slots.take("s1").expect("first");
        let _b = slots.take("s1").expect("second");
        assert!(slots.take("s1").is_none(), "third refused");
        // Another session is counted on its own.
        assert!(slots.take("s2").is_some());
        drop(a);
        assert_eq!(slots.open("s1"), 1);
        assert!(slots.take("s1").is_some(), "a place is free again");
    }
}
