//! Refusals that retrying cannot cure (issue 17, "Running"): the real simulator, told that the
//! demo institution's key is unknown, or holding another key for it, or sent a body that is not
//! of its contract, answers `unknown_key`, `bad_signature` or `malformed_request`. The relay
//! stops sending that row (no further attempts), the console shows why in Japanese and English,
//! the log names the cause once with institution and key id, `/readyz` stays 200 and says so,
//! `/status` lists it, and `relay resume` sends the rows once the cause is fixed. A backend
//! outage, by contrast, keeps being retried and holds nothing. On SQLite and PostgreSQL.

mod common;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use common::{
    console::demo_staff,
    patient::{Patient, register},
    stack::{Stack, stack},
};
use sqlx::{Row, SqlitePool};
use uketsuke_backend::{contract::signing::encode_verifying_key, simulator::FaultConfig};
use uketsuke_server::{
    console::cli::relay_resume,
    storage::{self, ids::new_id, outbox},
};

/// Every log line of this test process, for counting what the relay logged.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Captured {
    fn take(&self) -> String {
        String::from_utf8(std::mem::take(&mut *self.0.lock().expect("lock"))).expect("utf-8")
    }
}

fn capture_logs() -> Captured {
    let captured = Captured::default();
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter("warn")
        .with_writer(captured.clone())
        .try_init();
    captured
}

/// The demo institution's code and key id in the server's database.
async fn demo_institution(stack: &Stack) -> (String, String, String) {
    let row = sqlx::query("SELECT id, code, key_id FROM institutions WHERE is_demo = 1")
        .fetch_one(&stack.state.db)
        .await
        .expect("demo institution");
    (
        row.get("id"),
        row.get("code"),
        row.get::<Option<String>, _>("key_id").expect("key id"),
    )
}

async fn sim_pool(stack: &Stack) -> SqlitePool {
    SqlitePool::connect(&stack.sim_db).await.expect("sim db")
}

/// The outbox row of `operation` for the newest reception: (id, held code, attempts).
async fn newest_row(stack: &Stack, operation: &str) -> (String, Option<String>, i64) {
    let row = sqlx::query(
        "SELECT o.id, o.held_code, o.attempts FROM outbox o \
         JOIN receptions r ON r.id = o.reception_id \
         WHERE o.operation = $1 ORDER BY r.submitted_at DESC, o.created_at DESC LIMIT 1",
    )
    .bind(operation)
    .fetch_one(&stack.state.db)
    .await
    .expect("outbox row");
    (row.get("id"), row.get("held_code"), row.get("attempts"))
}

async fn held_within(stack: &Stack, operation: &str, code: &str) -> (String, i64) {
    for _ in 0..200 {
        let (id, held, attempts) = newest_row(stack, operation).await;
        if held.as_deref() == Some(code) {
            return (id, attempts);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "the {operation} row was not held for {code}: {:?}",
        newest_row(stack, operation).await
    );
}

/// Waits until the outbox has nothing left to send (a confirmed reception's eligibility fetch
/// follows its registration), so that a change of the backend's keys meets only new rows.
async fn drained(stack: &Stack) {
    for _ in 0..400 {
        let waiting: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE done_at IS NULL")
            .fetch_one(&stack.state.db)
            .await
            .expect("count");
        if waiting == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the outbox did not drain");
}

async fn get_json(url: &str, forwarded: bool) -> (u16, serde_json::Value) {
    let mut request = reqwest::Client::new().get(url);
    if forwarded {
        request = request.header("x-forwarded-for", "203.0.113.9");
    }
    let response = request.send().await.expect("answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json"))
}

async fn newest_reception(stack: &Stack) -> String {
    sqlx::query("SELECT id FROM receptions ORDER BY submitted_at DESC LIMIT 1")
        .fetch_one(&stack.state.db)
        .await
        .expect("reception")
        .get("id")
}

async fn holds_on(database_url: &str, engine: &str, logs: &Captured) {
    let stack = stack(Some(database_url), None).await;
    let (institution_id, code, key_id) = demo_institution(&stack).await;
    let sim = sim_pool(&stack).await;
    let registered_key: String =
        sqlx::query("SELECT public_key FROM institutions WHERE key_id = ?")
            .bind(&key_id)
            .fetch_one(&sim)
            .await
            .expect("the simulator knows the demo key")
            .get("public_key");
    let (console, _) = demo_staff(&stack, "admin").await;
    logs.take();

    // 1. The backend does not know the key: unknown_key. Two receptions meet it; the cause is
    // logged once.
    sqlx::query("DELETE FROM institutions WHERE key_id = ?")
        .bind(&key_id)
        .execute(&sim)
        .await
        .expect("forget the key");
    let first = Patient::new(&stack.base);
    let link = stack.link("separate_route");
    let accepted = register(
        &first,
        &link,
        "separate_route",
        1,
        &stack.origin(),
        stack.today(),
    )
    .await;
    assert_eq!(accepted.status, 202, "{engine}");
    let (_, attempts) = held_within(&stack, "register", "unknown_key").await;
    assert_eq!(attempts, 1, "{engine}: sent once");
    let second = Patient::new(&stack.base);
    let accepted = register(
        &second,
        &link,
        "separate_route",
        2,
        &stack.origin(),
        stack.today(),
    )
    .await;
    assert_eq!(accepted.status, 202, "{engine}");
    held_within(&stack, "register", "unknown_key").await;
    // Backoff would have tried again after 0.5 s, 1 s and 2 s: a held row is not tried again.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let attempts: Vec<i64> = sqlx::query("SELECT attempts FROM outbox WHERE held_code IS NOT NULL")
        .fetch_all(&stack.state.db)
        .await
        .expect("held rows")
        .iter()
        .map(|r| r.get("attempts"))
        .collect();
    assert_eq!(attempts, vec![1, 1], "{engine}: no retries of held rows");
    // Nor do held rows make an idle worker wake at once again and again: only rows that can be
    // claimed have a due time.
    let waiting: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM outbox WHERE done_at IS NULL AND held_code IS NULL",
    )
    .fetch_one(&stack.state.db)
    .await
    .expect("count");
    if waiting == 0 {
        assert_eq!(
            storage::outbox::next_due(&stack.state.db)
                .await
                .expect("due"),
            None,
            "{engine}: a held row is not due"
        );
    }
    let reception = newest_reception(&stack).await;
    assert_eq!(
        storage::outbox::held_code(&stack.state.db, &reception)
            .await
            .expect("read")
            .as_deref(),
        Some("unknown_key")
    );
    // The patient's reception is kept and waits; the patient is not told to do anything.
    assert_eq!(first.reception().await.body["status"], "queued", "{engine}");

    let log = logs.take();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("retrying cannot cure"))
        .collect();
    assert_eq!(lines.len(), 1, "{engine}: logged once:\n{log}");
    let line: serde_json::Value = serde_json::from_str(lines[0]).expect("json log line");
    assert_eq!(line["fields"]["institution"], code.as_str(), "{line}");
    assert_eq!(line["fields"]["key_id"], key_id.as_str(), "{line}");
    assert_eq!(line["fields"]["code"], "unknown_key", "{line}");
    assert_eq!(line["level"], "ERROR");
    // Nothing about the patient or the request.
    let certificate_like = ["certificate", "signature\":\"", "person", "reception_id"];
    for word in certificate_like {
        assert!(!lines[0].contains(word), "{word} in {}", lines[0]);
    }

    // The console shows the reason, in both languages.
    let list = console.get("/api/console/receptions").await;
    assert_eq!(list.status, 200, "{list:?}");
    let held: Vec<&serde_json::Value> = list.body["receptions"]
        .as_array()
        .expect("list")
        .iter()
        .filter(|r| r["relay_held"] == "unknown_key")
        .collect();
    assert_eq!(held.len(), 2, "{engine}: {}", list.body);
    assert!(held.iter().all(|r| r["status"] == "queued"));
    let detail = console
        .get(&format!("/api/console/receptions/{reception}"))
        .await;
    assert_eq!(
        detail.body["relay_held"], "unknown_key",
        "{:?}",
        detail.body
    );
    for (lang, words) in [
        (
            "ja",
            "送信停止中：医療機関の要求署名鍵がオンライン資格確認等システムに登録されていません",
        ),
        (
            "en",
            "Sending stopped: the institution's request key is not registered with the backend",
        ),
    ] {
        let page = console.get(&format!("/console?lang={lang}")).await;
        assert_eq!(page.status, 200);
        assert!(page.text.contains("data-testid=\"relay-held\""), "{lang}");
        let text = page.text.replace("&#x27;", "'").replace("&#39;", "'");
        assert!(text.contains(words), "{lang}: {words} not in the list page");
        let page = console
            .get(&format!("/console/receptions/{reception}?lang={lang}"))
            .await;
        let text = page.text.replace("&#x27;", "'").replace("&#39;", "'");
        assert!(
            text.contains(words),
            "{lang}: {words} not in the detail page"
        );
    }

    // /readyz stays 200 and says why; /status names institution and key, locally only.
    let (status, body) = get_json(&format!("{}/readyz", stack.base), false).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["relay"], "held");
    assert_eq!(body["relay_held"], serde_json::json!(["unknown_key"]));
    assert_eq!(body["backend"], "ok");
    let (status, body) = get_json(&format!("{}/status", stack.base), false).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["outbox"]["held"], 2, "{body}");
    let hold = &body["outbox"]["holds"][0];
    assert_eq!(hold["institution_code"], code.as_str());
    assert_eq!(hold["key_id"], key_id.as_str());
    assert_eq!(hold["code"], "unknown_key");
    assert_eq!(hold["rows"], 2);
    assert_eq!(body["backend"]["health"], "ok");
    assert_eq!(body["database_kind"], engine);
    let (status, body) = get_json(&format!("{}/status", stack.base), true).await;
    assert_eq!(status, 403, "a forwarded request is refused: {body}");

    // Fixed at the backend, resumed: both go through and nothing is held any more.
    sqlx::query("INSERT INTO institutions (key_id, code, public_key) VALUES (?, ?, ?)")
        .bind(&key_id)
        .bind(&code)
        .bind(&registered_key)
        .execute(&sim)
        .await
        .expect("register the key again");
    let resumed = relay_resume(&stack.state.db, &code, stack.state.clock.now_ms())
        .await
        .expect("resume");
    assert_eq!(resumed, 2);
    assert_eq!(
        first.settled(400).await.body["status"],
        "confirmed",
        "{engine}"
    );
    assert_eq!(
        second.settled(400).await.body["status"],
        "confirmed",
        "{engine}"
    );
    assert!(
        outbox::holds(&stack.state.db)
            .await
            .expect("holds")
            .is_empty()
    );
    let (_, body) = get_json(&format!("{}/readyz", stack.base), false).await;
    assert_eq!(body["relay"], "ok");
    assert!(body.get("relay_held").is_none(), "{body}");

    // 2. The backend holds another key for the key id: bad_signature.
    drained(&stack).await;
    let other = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).expect("key");
    sqlx::query("UPDATE institutions SET public_key = ? WHERE key_id = ?")
        .bind(encode_verifying_key(other.verifying_key()))
        .bind(&key_id)
        .execute(&sim)
        .await
        .expect("another key");
    let third = Patient::new(&stack.base);
    let accepted = register(
        &third,
        &link,
        "separate_route",
        3,
        &stack.origin(),
        stack.today(),
    )
    .await;
    assert_eq!(accepted.status, 202);
    held_within(&stack, "register", "bad_signature").await;
    let log = logs.take();
    assert_eq!(
        log.lines()
            .filter(|l| l.contains("retrying cannot cure"))
            .count(),
        1,
        "{engine}: the new cause is logged once (again after a resume):\n{log}"
    );
    sqlx::query("UPDATE institutions SET public_key = ? WHERE key_id = ?")
        .bind(&registered_key)
        .bind(&key_id)
        .execute(&sim)
        .await
        .expect("the right key");
    assert_eq!(
        relay_resume(&stack.state.db, &code, stack.state.clock.now_ms())
            .await
            .expect("resume"),
        1
    );
    assert_eq!(
        third.settled(400).await.body["status"],
        "confirmed",
        "{engine}"
    );

    // 3. A request not of the backend's contract (a stored consent update of another
    // version): malformed_request holds it; the reception stays confirmed.
    let confirmed = newest_reception(&stack).await;
    let mut tx = storage::begin(&stack.state.db).await.expect("tx");
    outbox::enqueue(
        &mut tx,
        &new_id(),
        &confirmed,
        outbox::Operation::ConsentUpdate,
        r#"{"consent":"all","version":2}"#,
        stack.state.clock.now_ms(),
    )
    .await
    .expect("enqueue");
    tx.commit().await.expect("commit");
    held_within(&stack, "consent_update", "malformed_request").await;
    let detail = console
        .get(&format!("/api/console/receptions/{confirmed}"))
        .await;
    assert_eq!(detail.body["status"], "confirmed");
    assert_eq!(detail.body["relay_held"], "malformed_request");
    let page = console
        .get(&format!("/console/receptions/{confirmed}?lang=ja"))
        .await;
    assert!(
        page.text.contains("仕様のバージョンが合いません"),
        "ja contract mismatch"
    );

    // 4. An outage is transient: retried, never held, and /readyz stays 200.
    stack.sim.faults.set(FaultConfig {
        outage: true,
        ..Default::default()
    });
    let fourth = Patient::new(&stack.base);
    let accepted = register(
        &fourth,
        &link,
        "separate_route",
        4,
        &stack.origin(),
        stack.today(),
    )
    .await;
    assert_eq!(accepted.status, 202);
    let mut retried = false;
    for _ in 0..200 {
        let (_, held, attempts) = newest_row(&stack, "register").await;
        assert_eq!(held, None, "{engine}: an outage holds nothing");
        if attempts >= 2 {
            retried = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(retried, "{engine}: an outage is retried");
    // The probes' view of the backend is at most a second old.
    tokio::time::sleep(uketsuke_server::http::health::BACKEND_HEALTH_TTL).await;
    let (status, body) = get_json(&format!("{}/readyz", stack.base), false).await;
    assert_eq!(
        status, 200,
        "the backend's outage does not make the instance unready: {body}"
    );
    assert_eq!(body["backend"], "unavailable");
    assert_eq!(body["database"], "ok");
    stack.sim.faults.set(FaultConfig::default());
    assert_eq!(
        fourth.settled(400).await.body["status"],
        "confirmed",
        "{engine}"
    );
    let _ = institution_id;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_retrying_cannot_cure_hold_the_row_until_resumed() {
    let logs = capture_logs();
    for db in common::engines().await {
        holds_on(&db.url, db.engine, &logs).await;
    }
}
