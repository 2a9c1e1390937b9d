//! The relay is woken, not left to find rows on a timer; the console's live list is fed by one
//! change feed per instance. Every relay test here sets the relay's safety poll to an hour, so
//! a row is sent only if something woke a worker for it: the writer's in-process wake-up, the
//! due time of a retry, or (across instances, on PostgreSQL) `LISTEN/NOTIFY`. The bounded waits
//! below are there so that a broken wake-up fails the test instead of hanging it; they are not
//! timing assertions.

mod common;

use std::time::Duration;

use sqlx::Row;
use uketsuke_backend::simulator::faults::FaultConfig;
use uketsuke_server::{
    AppState, Background, Options,
    console::{cli, session},
    relay,
    storage::{self, ids::new_id, receptions},
};

use common::{
    engines,
    patient::{self, Patient},
    stack::{Stack, server_with, stack_with},
};

/// Longer than any test runs: a row found by the poll would fail the test.
const NEVER: Duration = Duration::from_secs(3600);
/// How long a test waits for something that a wake-up brings at once.
const PATIENCE: Duration = Duration::from_secs(30);

fn woken_only() -> Options {
    Options {
        relay_safety_poll: Some(NEVER),
        ..Options::default()
    }
}

async fn reception_status(state: &AppState, id: &str) -> String {
    sqlx::query("SELECT status FROM receptions WHERE id = $1")
        .bind(id)
        .fetch_one(&state.db)
        .await
        .expect("reception")
        .try_get("status")
        .expect("status")
}

/// Waits (bounded) until the reception leaves `queued`; returns its status.
async fn settled(state: &AppState, id: &str) -> String {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let status = reception_status(state, id).await;
        if status != "queued" || tokio::time::Instant::now() > deadline {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn eligibility_arrives(state: &AppState, id: &str) -> bool {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while tokio::time::Instant::now() < deadline {
        if relay::eligibility(&state.db, id)
            .await
            .expect("read")
            .is_some()
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// One card registration through the patient API of the server at `base`; its reception id.
async fn register(base: &str, link: &str, stack: &Stack) -> String {
    let patient = Patient::new(base);
    let answer = patient::register(
        &patient,
        link,
        "separate_route",
        1,
        &stack.origin(),
        stack.today(),
    )
    .await;
    assert_eq!(answer.status, 202, "{:?}", answer.body);
    answer.body["reception_id"]
        .as_str()
        .expect("reception id")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_and_eligibility_go_out_on_a_wake_up_with_the_poll_an_hour_away() {
    for db in engines().await {
        let stack = stack_with(Some(&db.url), None, woken_only()).await;
        let id = register(&stack.base, &stack.link("separate_route"), &stack).await;
        assert_eq!(
            settled(&stack.state, &id).await,
            "confirmed",
            "{}",
            db.engine
        );
        // The eligibility fetch is queued by the relay itself, in the confirming transaction.
        assert!(
            eligibility_arrives(&stack.state, &id).await,
            "{}",
            db.engine
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_goes_out_at_its_due_time_with_the_poll_an_hour_away() {
    for db in engines().await {
        let stack = stack_with(Some(&db.url), None, woken_only()).await;
        // Every call fails (signed 503, to be retried) until the first attempt is recorded.
        stack.sim.faults.set(FaultConfig {
            error_rate: 1.0,
            ..FaultConfig::default()
        });
        let id = register(&stack.base, &stack.link("separate_route"), &stack).await;
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let attempts: i64 = sqlx::query(
                "SELECT attempts FROM outbox WHERE reception_id = $1 AND operation = 'register'",
            )
            .bind(&id)
            .fetch_one(&stack.state.db)
            .await
            .expect("outbox row")
            .try_get("attempts")
            .expect("attempts");
            if attempts >= 1 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{}: never tried",
                db.engine
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        stack.sim.faults.set(FaultConfig::default());
        // Nothing rings now: only the retry's due time (about half a second on) wakes a worker.
        assert_eq!(
            settled(&stack.state, &id).await,
            "confirmed",
            "{}",
            db.engine
        );
    }
}

/// Two instances on one PostgreSQL database: the first has no relay workers at all, so a row it
/// writes reaches the second instance's workers only through `LISTEN/NOTIFY`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_notify_wakes_the_relay_of_another_instance() {
    let Some(db) = engines().await.into_iter().find(|d| d.engine == "postgres") else {
        eprintln!("note: PostgreSQL not configured, cross-instance wake-up not tested");
        return;
    };
    let relaying = stack_with(Some(&db.url), None, woken_only()).await;
    let (writer_base, writer_links, writer) = server_with(
        &db.url,
        &relaying.sim.base_url(),
        relaying.dir.path(),
        None,
        Options {
            background: Background::Off,
            ..Options::default()
        },
    )
    .await;
    let link = writer_links
        .iter()
        .find(|(kind, _)| kind == "separate_route")
        .map(|(_, id)| id.clone())
        .expect("link");
    // The writer's origin: the challenge is bound to the instance the patient talks to.
    let patient = Patient::new(&writer_base);
    let answer = patient::register(
        &patient,
        &link,
        "separate_route",
        1,
        &writer.config.origin_string(),
        relaying.today(),
    )
    .await;
    assert_eq!(answer.status, 202, "{:?}", answer.body);
    let id = answer.body["reception_id"].as_str().expect("id").to_owned();
    assert_eq!(settled(&relaying.state, &id).await, "confirmed");
    assert!(eligibility_arrives(&relaying.state, &id).await);
}

// ---------------------------------------------------------------------------------------------
// The console's change feed.

/// A console session for account `login_id` of `institution_id`, as a sign-in writes it;
/// returns the cookie value.
async fn console_session(state: &AppState, institution_id: &str, login_id: &str) -> String {
    let account: String =
        sqlx::query("SELECT id FROM staff_accounts WHERE institution_id = $1 AND login_id = $2")
            .bind(institution_id)
            .bind(login_id)
            .fetch_one(&state.db)
            .await
            .expect("account")
            .try_get("id")
            .expect("id");
    let mut tx = state.db.begin().await.expect("tx");
    let token = session::create_in(&mut tx, &account, "feed-test", state.clock.now_ms())
        .await
        .expect("session");
    tx.commit().await.expect("commit");
    token
}

/// An open event stream, read as it comes.
struct Events {
    response: reqwest::Response,
    seen: String,
}

impl Events {
    async fn open(base: &str, token: &str) -> Events {
        let response = reqwest::Client::new()
            .get(format!("{base}/api/console/events"))
            .header("cookie", format!("{}={token}", session::COOKIE))
            .send()
            .await
            .expect("stream opens");
        assert_eq!(response.status().as_u16(), 200);
        let mut events = Events {
            response,
            seen: String::new(),
        };
        events.until("event: ready").await;
        events
    }

    /// Reads until `needle` has been seen (bounded); everything read so far.
    async fn until(&mut self, needle: &str) -> &str {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while !self.seen.contains(needle) {
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .unwrap_or_else(|_| panic!("no {needle:?} in the stream: {}", self.seen))
                .expect("stream readable")
                .expect("stream open");
            self.seen.push_str(&String::from_utf8_lossy(&chunk));
        }
        &self.seen
    }
}

/// A reception of another institution, stored as the patient API stores one.
async fn other_institution_reception(state: &AppState, institution_id: &str) -> String {
    let mut tx = state.db.begin().await.expect("tx");
    let outbox_id = new_id();
    let submitted = receptions::submit_in(
        &mut tx,
        &receptions::NewReception {
            institution_id,
            link_id: None,
            session_id: None,
            session_token: None,
            kind: uketsuke_domain::ReceptionKind::SeparateRoute,
            choices: receptions::Choices {
                visit_date: uketsuke_domain::window::jst_date(state.clock.now()),
                consent: uketsuke_backend::contract::ConsentChoices {
                    clinical_medication: true,
                    checkups: false,
                },
                prescription: None,
            },
            identity: receptions::Identity::Card,
            card_ref: Some("feed-test"),
            outbox_id: &outbox_id,
            payload: "{}",
        },
        state.clock.now_ms(),
    )
    .await
    .expect("submit")
    .expect("stored");
    tx.commit().await.expect("commit");
    submitted.reception_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_feed_gives_each_stream_its_own_institutions_changes_only() {
    for db in engines().await {
        let stack = stack_with(Some(&db.url), None, Options::default()).await;
        let state = &stack.state;
        let clinic: String =
            sqlx::query("SELECT institution_id FROM reception_links WHERE id = $1")
                .bind(stack.link("separate_route"))
                .fetch_one(&state.db)
                .await
                .expect("link")
                .try_get("institution_id")
                .expect("institution");
        let other = cli::admin_create(
            &state.db,
            &stack.origin(),
            &cli::AdminCreate {
                institution_code: "1319999996".to_owned(),
                name: "他院 管理者".to_owned(),
                kana: "タイン カンリシャ".to_owned(),
                login_id: "other".to_owned(),
                institution_name: Some("他院".to_owned()),
            },
            state.clock.now_ms(),
        )
        .await
        .expect("other institution");
        let staff = console_session(state, &clinic, "staff").await;
        let doctor = console_session(state, &clinic, "doctor").await;
        let admin_elsewhere = console_session(state, &other.institution_id, "other").await;
        let mut clinic_a = Events::open(&stack.base, &staff).await;
        let mut clinic_b = Events::open(&stack.base, &doctor).await;
        let mut elsewhere = Events::open(&stack.base, &admin_elsewhere).await;
        assert_eq!(state.events.open_streams(), 3);
        assert_eq!(state.events.sessions_followed(), 3);

        // The other institution's change first, then the clinic's: a stream that passed on
        // the first would show it before the second.
        let theirs = other_institution_reception(state, &other.institution_id).await;
        let ours = register(&stack.base, &stack.link("separate_route"), &stack).await;
        for stream in [&mut clinic_a, &mut clinic_b] {
            let seen = stream.until(&ours).await;
            assert!(!seen.contains(&theirs), "{}: {seen}", db.engine);
        }
        let seen = elsewhere.until(&theirs).await;
        assert!(!seen.contains(&ours), "{}: {seen}", db.engine);

        // A signed-out session's stream ends; the others stay.
        sqlx::query("DELETE FROM console_sessions WHERE id_sha256 = $1")
            .bind(storage::receptions::sha256_hex(doctor.as_bytes()))
            .execute(&state.db)
            .await
            .expect("sign out");
        clinic_b.until("event: signed_out").await;
        assert!(
            !clinic_a.seen.contains("signed_out") && !elsewhere.seen.contains("signed_out"),
            "{}",
            db.engine
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_streams_give_back_their_places_and_the_feed_stops_reading() {
    for db in engines().await {
        let stack = stack_with(Some(&db.url), None, Options::default()).await;
        let state = &stack.state;
        let clinic: String =
            sqlx::query("SELECT institution_id FROM reception_links WHERE id = $1")
                .bind(stack.link("separate_route"))
                .fetch_one(&state.db)
                .await
                .expect("link")
                .try_get("institution_id")
                .expect("institution");
        let token = console_session(state, &clinic, "staff").await;
        let session = storage::receptions::sha256_hex(token.as_bytes());
        let mut streams = Vec::new();
        for _ in 0..3 {
            streams.push(Events::open(&stack.base, &token).await);
        }
        assert_eq!(state.events.open_streams(), 3, "{}", db.engine);
        assert_eq!(state.events.receivers(), 3, "{}", db.engine);
        assert_eq!(state.limits.event_streams.open(&session), 3);
        drop(streams);
        // The server notices a closed connection at its next write: a change gives every
        // stream one.
        register(&stack.base, &stack.link("separate_route"), &stack).await;
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while (state.events.open_streams(), state.events.receivers()) != (0, 0) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{}: {} streams, {} receivers still held",
                db.engine,
                state.events.open_streams(),
                state.events.receivers()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(state.events.sessions_followed(), 0, "{}", db.engine);
        assert_eq!(
            state.limits.event_streams.open(&session),
            0,
            "{}",
            db.engine
        );
    }
}
