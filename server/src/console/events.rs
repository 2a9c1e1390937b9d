//! `GET /api/console/events`: server-sent events that name the receptions of the signed-in
//! account's institution that changed (new, confirmed, refused, eligibility in, withdrawn,
//! 照会番号 set …), so that the day's list refreshes itself. Events carry ids only — the page
//! fetches what it shows, and that fetch is authorised and logged like any other.
//!
//! One change feed per server instance ([`ChangeFeed`]), not one poll per stream: while any
//! stream is open, the feed reads `receptions.updated_at` once a second (one query, whichever
//! server instance wrote the change) and checks the sessions of every open stream (one query
//! per 500 sessions), then broadcasts what it found to the instance's streams. Each stream
//! keeps its own authorisation: it passes on only the rows of its own institution, from the
//! moment it opened, and ends (`signed_out`) when its session does — the session is checked
//! every second without counting as activity, so an open page alone does not keep a session
//! alive. A stream that falls behind the broadcast (a client that stopped reading) catches up
//! from the database with its own cursor, so no change is lost.
//!
//! A session may hold only a few streams at once (`event_streams_per_session`, default 4: a
//! few tabs); one more is refused with 429 `too_many_event_streams` until one of them closes.
//! The count is per server instance.

use std::{
    collections::{HashMap, HashSet, VecDeque},
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
use tokio::sync::broadcast;

use super::{Staff, roles::role_from_code, session};
use crate::{
    AppState,
    clock::Clock,
    storage::{Db, StorageError},
};

/// How often the feed reads the database while streams are open.
const POLL: Duration = Duration::from_secs(1);
/// Ids per event at most; a burst larger than this comes in several events.
const BATCH: usize = 200;
/// Rows per feed query; a tick reads at most [`PAGES`] of them (more wait for the next tick).
const PAGE: usize = 1000;
const PAGES: usize = 10;
/// Sessions per liveness query.
const SESSIONS_PER_QUERY: usize = 500;
/// Ticks a stream may fall behind before it catches up from the database instead.
const BACKLOG: usize = 64;

#[derive(Debug, Serialize)]
struct Changed {
    ids: Vec<String>,
}

/// Where a reader is in the stream of changes: the newest change seen (`at`) and the rows seen
/// in the last [`OVERLAP`] before it. Each read looks again from `at - OVERLAP`, since two
/// writes may share a millisecond, and a row stamped earlier may commit later than a row the
/// last read already saw; a row is announced once per `updated_at`.
#[derive(Debug, Clone)]
struct Cursor {
    /// The newest `updated_at` admitted.
    at: i64,
    /// Nothing older than this is ever admitted (where the cursor started).
    floor: i64,
    /// The rows admitted within [`OVERLAP`] of `at`, with the `updated_at` admitted.
    seen: HashMap<String, i64>,
}

/// How far back each read looks again: a transaction that stamped `updated_at` before another
/// but committed after it (or an instance whose clock is a little behind) is still announced,
/// once, instead of falling behind the cursor.
const OVERLAP: i64 = 5_000;

impl Cursor {
    fn from(at: i64) -> Self {
        Cursor {
            at,
            floor: at,
            seen: HashMap::new(),
        }
    }

    /// The lowest `updated_at` the next read asks for (ms).
    fn since(&self) -> i64 {
        self.at.saturating_sub(OVERLAP).max(self.floor)
    }

    /// Whether the row `id` changed at `at` is new to this cursor; remembers it and moves the
    /// cursor to the newest change seen.
    fn admit(&mut self, id: &str, at: i64) -> bool {
        if at < self.floor || at < self.since() || self.seen.get(id) == Some(&at) {
            return false;
        }
        self.seen.insert(id.to_owned(), at);
        if at > self.at {
            self.at = at;
            let since = self.since();
            self.seen.retain(|_, seen_at| *seen_at >= since);
        }
        true
    }
}

/// One changed reception as the feed read it.
#[derive(Debug, Clone)]
pub struct Change {
    pub institution_id: String,
    pub id: String,
    pub updated_at: i64,
}

/// What one tick of the feed found: changed receptions of every institution (each stream
/// takes its own) and the sessions among the open streams' that have ended.
#[derive(Debug, Default)]
pub struct Tick {
    pub changes: Vec<Change>,
    pub ended: HashSet<String>,
}

/// Who is listening: open streams per session (the sessions the feed checks) and, when the
/// feed was idle, the instant the first new stream opened (the feed reads from there).
#[derive(Default)]
struct Listeners {
    sessions: HashMap<String, usize>,
    streams: usize,
    resume_at: Option<i64>,
    running: bool,
}

/// The change feed of one server instance, shared by all its event streams.
#[derive(Clone)]
pub struct ChangeFeed {
    inner: Arc<Feed>,
}

struct Feed {
    db: Db,
    clock: Clock,
    sender: broadcast::Sender<Arc<Tick>>,
    listeners: Mutex<Listeners>,
}

/// One stream's subscription: its receiver and its place in the feed's session list, both
/// given back when the stream is dropped.
struct Subscription {
    feed: Arc<Feed>,
    session: String,
    receiver: broadcast::Receiver<Arc<Tick>>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut listeners = self.feed.lock();
        listeners.streams = listeners.streams.saturating_sub(1);
        if let Some(count) = listeners.sessions.get_mut(&self.session) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                listeners.sessions.remove(&self.session);
            }
        }
    }
}

impl Feed {
    fn lock(&self) -> std::sync::MutexGuard<'_, Listeners> {
        // A poisoned lock only means a panic elsewhere mid-update of the counters.
        self.listeners.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ChangeFeed {
    /// A feed reading `db` once a second while streams are open; its task starts with the
    /// first stream.
    pub fn new(db: Db, clock: Clock) -> Self {
        let (sender, _) = broadcast::channel(BACKLOG);
        ChangeFeed {
            inner: Arc::new(Feed {
                db,
                clock,
                sender,
                listeners: Mutex::new(Listeners::default()),
            }),
        }
    }

    /// Streams open on this instance now.
    pub fn open_streams(&self) -> usize {
        self.inner.lock().streams
    }

    /// Sessions the feed checks now (those with a stream open).
    pub fn sessions_followed(&self) -> usize {
        self.inner.lock().sessions.len()
    }

    /// Receivers of the broadcast now (one per open stream).
    pub fn receivers(&self) -> usize {
        self.inner.sender.receiver_count()
    }

    fn subscribe(&self, session: &str, start: i64) -> Subscription {
        let mut listeners = self.inner.lock();
        if listeners.streams == 0 {
            listeners.resume_at = Some(start);
        }
        listeners.streams += 1;
        *listeners.sessions.entry(session.to_owned()).or_insert(0) += 1;
        let receiver = self.inner.sender.subscribe();
        if !listeners.running {
            listeners.running = true;
            let feed = self.inner.clone();
            tokio::spawn(async move { feed.run().await });
        }
        Subscription {
            feed: self.inner.clone(),
            session: session.to_owned(),
            receiver,
        }
    }
}

impl Feed {
    /// Runs as long as the instance does; reads nothing while no stream is open.
    async fn run(self: Arc<Self>) {
        let mut cursor = Cursor::from(self.clock.now_ms());
        loop {
            tokio::time::sleep(POLL).await;
            let sessions: Vec<String> = {
                let mut listeners = self.lock();
                if listeners.streams == 0 {
                    continue;
                }
                if let Some(at) = listeners.resume_at.take() {
                    cursor = Cursor::from(at);
                }
                listeners.sessions.keys().cloned().collect()
            };
            let mut tick = Tick::default();
            match self.ended_sessions(&sessions).await {
                Ok(ended) => tick.ended = ended,
                Err(error) => tracing::warn!(%error, "event feed cannot check sessions"),
            }
            match self.changes(&mut cursor).await {
                Ok(changes) => tick.changes = changes,
                Err(error) => tracing::warn!(%error, "event feed cannot poll"),
            }
            if !tick.changes.is_empty() || !tick.ended.is_empty() {
                // No receiver left is not an error: the next tick finds the feed idle.
                let _ = self.sender.send(Arc::new(tick));
            }
        }
    }

    /// Receptions of every institution changed since `cursor`, in order.
    async fn changes(&self, cursor: &mut Cursor) -> Result<Vec<Change>, StorageError> {
        let mut changes = Vec::new();
        for _ in 0..PAGES {
            let limit = PAGE + cursor.seen.len();
            let rows = sqlx::query(
                "SELECT id, institution_id, updated_at FROM receptions WHERE updated_at >= $1 \
                 ORDER BY updated_at, id LIMIT $2",
            )
            .bind(cursor.since())
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.db)
            .await?;
            let full = rows.len() == limit;
            for row in rows {
                let id: String = row.try_get("id")?;
                let updated_at: i64 = row.try_get("updated_at")?;
                if cursor.admit(&id, updated_at) {
                    changes.push(Change {
                        institution_id: row.try_get("institution_id")?,
                        id,
                        updated_at,
                    });
                }
            }
            if !full {
                break;
            }
        }
        Ok(changes)
    }

    /// Of `sessions` (SHA-256 of session ids), those that are no longer live: signed out,
    /// expired (idle or absolute), or their account disabled. Not counted as activity.
    async fn ended_sessions(&self, sessions: &[String]) -> Result<HashSet<String>, StorageError> {
        let now_ms = self.clock.now_ms();
        let mut ended: HashSet<String> = sessions.iter().cloned().collect();
        for chunk in sessions.chunks(SESSIONS_PER_QUERY) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT s.id_sha256, s.created_at, s.last_seen_at, a.role \
                 FROM console_sessions s JOIN staff_accounts a ON a.id = s.account_id \
                 WHERE a.disabled = 0 AND s.id_sha256 IN ({})",
                marks.join(", ")
            );
            let mut query = sqlx::query(&sql);
            for session in chunk {
                query = query.bind(session);
            }
            for row in query.fetch_all(&self.db).await? {
                let role: String = row.try_get("role")?;
                if session::is_live(
                    row.try_get("created_at")?,
                    row.try_get("last_seen_at")?,
                    now_ms,
                ) && role_from_code(&role).is_some()
                {
                    ended.remove(&row.try_get::<String, _>("id_sha256")?);
                }
            }
        }
        Ok(ended)
    }
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
    subscription: Subscription,
    db: Db,
    state: AppState,
    institution_id: String,
    session: String,
    cursor: Cursor,
    /// Ids to announce, in order, [`BATCH`] per event.
    pending: VecDeque<String>,
    step: Step,
}

enum Step {
    Start,
    Follow,
    End,
}

/// The stream's own catch-up after it fell behind the broadcast: its institution's rows since
/// its cursor, read until a short page.
async fn catch_up(c: &mut Connection) -> Result<(), StorageError> {
    loop {
        let limit = BATCH + c.cursor.seen.len();
        let rows = sqlx::query(
            "SELECT id, updated_at FROM receptions WHERE institution_id = $1 AND updated_at >= $2 \
             ORDER BY updated_at, id LIMIT $3",
        )
        .bind(&c.institution_id)
        .bind(c.cursor.since())
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&c.db)
        .await?;
        let full = rows.len() == limit;
        for row in rows {
            let id: String = row.try_get("id")?;
            if c.cursor.admit(&id, row.try_get("updated_at")?) {
                c.pending.push_back(id);
            }
        }
        if !full {
            return Ok(());
        }
    }
}

fn announce(c: &mut Connection) -> Event {
    let take = c.pending.len().min(BATCH);
    let ids: Vec<String> = c.pending.drain(..take).collect();
    let data =
        serde_json::to_string(&Changed { ids }).unwrap_or_else(|_| "{\"ids\":[]}".to_owned());
    Event::default().event("receptions").data(data)
}

async fn next(mut c: Connection) -> Option<(Result<Event, Infallible>, Connection)> {
    loop {
        match c.step {
            Step::End => return None,
            Step::Start => {
                c.step = Step::Follow;
                return Some((Ok(Event::default().event("ready").data("{}")), c));
            }
            Step::Follow => {
                if !c.pending.is_empty() {
                    let event = announce(&mut c);
                    return Some((Ok(event), c));
                }
                match c.subscription.receiver.recv().await {
                    Ok(tick) => {
                        if tick.ended.contains(&c.session) {
                            c.step = Step::End;
                            return Some((Ok(Event::default().event("signed_out").data("{}")), c));
                        }
                        for change in &tick.changes {
                            if change.institution_id == c.institution_id
                                && c.cursor.admit(&change.id, change.updated_at)
                            {
                                c.pending.push_back(change.id.clone());
                            }
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let live =
                            session::lookup(&c.db, &c.session, c.state.clock.now_ms(), false).await;
                        if let Ok(None) = live {
                            c.step = Step::End;
                            return Some((Ok(Event::default().event("signed_out").data("{}")), c));
                        }
                        if let Err(error) = catch_up(&mut c).await {
                            tracing::warn!(%error, "event stream cannot catch up");
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => c.step = Step::End,
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
    let subscription = state.events.subscribe(&staff.session, start);
    let connection = Connection {
        _slot: slot,
        subscription,
        db: state.db.clone(),
        institution_id: staff.institution_id.clone(),
        session: staff.session.clone(),
        cursor: Cursor::from(start),
        pending: VecDeque::new(),
        step: Step::Start,
        state,
    };
    Ok(Sse::new(stream::unfold(connection, next)).keep_alive(KeepAlive::default()))
}

#[cfg(test)]
mod tests {
    use super::{Cursor, OVERLAP, StreamSlots};

    #[test]
    fn a_row_stamped_earlier_but_committed_later_is_announced_once() {
        let mut cursor = Cursor::from(1_000);
        assert!(
            !cursor.admit("before-start", 999),
            "nothing from before the start"
        );
        assert!(cursor.admit("a", 2_000));
        assert!(!cursor.admit("a", 2_000), "the same change once");
        // "b" was stamped at 1,500 but committed after the read that saw "a": the next read
        // (from at - OVERLAP) finds it, and it is announced.
        assert!(cursor.since() <= 1_500);
        assert!(cursor.admit("b", 1_500));
        assert!(!cursor.admit("b", 1_500));
        // A later change of the same row is a new change.
        assert!(cursor.admit("a", 2_500));
        // Far behind the newest change: outside the window, and forgotten.
        assert!(cursor.admit("c", 2_000 + 3 * OVERLAP));
        assert!(!cursor.admit("late", 2_000));
        assert!(cursor.seen.len() == 1, "{:?}", cursor.seen);
    }

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
