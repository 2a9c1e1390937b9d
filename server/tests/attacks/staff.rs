//! Section 7, "Staff, tokens and audit" (the staff half), each attack against a running server
//! (demo mode, a `localhost` origin for WebAuthn, the software passkey of
//! `tests/common/console.rs`):
//! - 目視確認 by a 一般利用者 (受付) account: refused (403 `visual_check_role_refused`) until an
//!   administrator allows the role in the institution's settings;
//! - 目視確認 over the per-staff hourly limit: the 31st in an hour is refused (429), nothing
//!   registered;
//! - a failure between the reception and its audit row (an audit insert made to fail): no
//!   reception is left without its row, and the patient's session can still be used;
//! - a removed passkey: the sessions it opened answer 401, the account's others stay;
//! - an administrator's enrolment code for another account: the passkey names who enrolled it,
//!   and so does the audit row;
//! - institution API tokens: a scope the token lacks (403), an expired token and a revoked one
//!   (401), a token revoking another token's link (403, the link stays open), and an audit row
//!   for every action naming the token id, never the secret;
//! - a database writer who edits an audit row and recomputes the unkeyed SHA-256 chain, or
//!   strips the key's record and rewrites the whole chain unkeyed: found by `audit verify`.

use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uketsuke_backend::simulator::population::{self, CertificateCase};
use uketsuke_card::jpki::{EF_USER_AUTH_CERT, JpkiAp};
use uketsuke_server::{
    console::{
        audit::{self, Actor, AuditKey},
        cli,
    },
    storage::{self, tokens::Scope},
};

use crate::common::{
    self,
    console::{Answer, Console, b64, demo_code, demo_staff, enrol, signin},
    stack::Stack,
};

/// WebAuthn refuses IP addresses as relying party ids: the console runs on `localhost`.
const ORIGIN: &str = "http://localhost:0";

async fn stack() -> Stack {
    common::stack::stack(None, Some(ORIGIN)).await
}

async fn card_certificate(no: u32, case: CertificateCase) -> String {
    let card = population::virtual_card(no, case).expect("virtual card");
    let mut ap = JpkiAp::new(card);
    ap.select_ap().await.expect("select");
    let der = ap
        .read_certificate(EF_USER_AUTH_CERT)
        .await
        .expect("certificate");
    b64(&der)
}

/// A patient session on `kind`'s demo link with choices made; returns its cookie value.
async fn patient_session(stack: &Stack, kind: &str) -> String {
    let http = reqwest::Client::new();
    let started = http
        .post(format!("{}/api/r/{}/session", stack.base, stack.link(kind)))
        .header("x-uketsuke-csrf", "1")
        .send()
        .await
        .expect("server answers");
    assert_eq!(started.status().as_u16(), 201);
    let cookie = started
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("uk_session="))
        .and_then(|v| v.split(';').next())
        .expect("session cookie")
        .to_owned();
    let chosen = http
        .put(format!("{}/api/session/choices", stack.base))
        .header("x-uketsuke-csrf", "1")
        .header("cookie", format!("uk_session={cookie}"))
        .json(&crate::common::patient::choices_for(kind, stack.today()))
        .send()
        .await
        .expect("server answers");
    assert_eq!(chosen.status().as_u16(), 200);
    cookie
}

/// `POST /api/console/visual-check` from the browser holding both sessions.
async fn visual_check(console: &Console, session: &str, body: Value) -> Answer {
    let token = console.token().expect("signed in");
    let request = console
        .http
        .post(format!("{}/api/console/visual-check", console.base))
        .header("origin", &console.origin)
        .header("x-uketsuke-csrf", "1")
        .header(
            "cookie",
            format!("uk_session={session}; uk_console={token}"),
        );
    console.send(request.json(&body)).await
}

async fn count(stack: &Stack, sql: &str, bind: &str) -> i64 {
    sqlx::query_scalar(sql)
        .bind(bind)
        .fetch_one(&stack.state.db)
        .await
        .expect("count")
}

async fn demo_institution(stack: &Stack) -> String {
    sqlx::query_scalar("SELECT institution_id FROM reception_links WHERE id = $1")
        .bind(stack.link("house_call"))
        .fetch_one(&stack.state.db)
        .await
        .expect("demo institution")
}

// ---------------------------------------------------------------------------------------------
// 目視確認.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn general_staff_are_refused_visual_check_until_the_administrator_allows_it() {
    let stack = stack().await;
    let (staff, _) = demo_staff(&stack, "staff").await;
    let (admin, _) = demo_staff(&stack, "admin").await;
    let body = json!({
        "certificate": card_certificate(1, CertificateCase::Valid).await,
        "face_matches": true,
    });
    let session = patient_session(&stack, "house_call").await;
    let refused = visual_check(&staff, &session, body.clone()).await;
    assert_eq!(refused.status, 403, "{refused:?}");
    assert_eq!(refused.error(), Some("visual_check_role_refused"));
    assert_eq!(stack.backend_registrations().await, 0);

    // The default, as the settings show it: 医療情報閲覧 and 管理者.
    let settings = admin.get("/api/console/settings").await;
    let mut roles: Vec<&str> = settings.body["visual_check_roles"]
        .as_array()
        .expect("roles")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    roles.sort_unstable();
    assert_eq!(roles, ["administrator", "medical_viewer"]);
    // A PUT that leaves the field out keeps it.
    let mut unchanged = settings.body.clone();
    unchanged
        .as_object_mut()
        .expect("object")
        .remove("visual_check_roles");
    unchanged["eligibility_retention_days"] = json!(60);
    let put = admin
        .call(Method::PUT, "/api/console/settings", Some(unchanged))
        .await;
    assert_eq!(put.status, 200, "{put:?}");
    assert_eq!(
        visual_check(&staff, &session, body.clone()).await.status,
        403
    );

    // The administrator allows 一般利用者: the same request is accepted, and the change logged.
    let mut allow = put.body.clone();
    allow["visual_check_roles"] = json!(["general", "medical_viewer", "administrator"]);
    let put = admin
        .call(Method::PUT, "/api/console/settings", Some(allow))
        .await;
    assert_eq!(put.status, 200, "{put:?}");
    let accepted = visual_check(&staff, &session, body).await;
    assert_eq!(accepted.status, 202, "{accepted:?}");
    assert_eq!(
        count(
            &stack,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'settings.update' AND target = $1",
            "visual_check_roles",
        )
        .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_visual_check_limit_refuses_the_thirty_first_in_an_hour() {
    let stack = stack().await;
    let (doctor, _) = demo_staff(&stack, "doctor").await;
    let certificate = card_certificate(1, CertificateCase::Valid).await;
    let body = json!({ "certificate": certificate, "face_matches": true });
    // 29 confirmations in the last hour, as the log holds them (written the way the server
    // writes them), then the 30th through the API: accepted.
    let institution_id = demo_institution(&stack).await;
    let actor = Actor {
        institution_id,
        account: "doctor".to_owned(),
        ip: None,
    };
    let now = stack.state.clock.now_ms();
    for i in 0..(uketsuke_server::console::visual_check::PER_HOUR - 1) {
        audit::record(
            &stack.state.db,
            &actor,
            "reception.visual_check",
            Some(&format!("earlier{i}")),
            now - 1000 * i,
        )
        .await
        .expect("row");
    }
    let session = patient_session(&stack, "house_call").await;
    let thirtieth = visual_check(&doctor, &session, body.clone()).await;
    assert_eq!(thirtieth.status, 202, "{thirtieth:?}");
    // The 31st: refused, nothing registered, no row written for it.
    let session = patient_session(&stack, "house_call").await;
    let refused = visual_check(&doctor, &session, body.clone()).await;
    assert_eq!(refused.status, 429, "{refused:?}");
    assert_eq!(refused.error(), Some("visual_check_rate_limited"));
    let rows = "SELECT COUNT(*) FROM audit_log WHERE action = 'reception.visual_check' \
                AND account = $1";
    assert_eq!(
        count(&stack, rows, "doctor").await,
        uketsuke_server::console::visual_check::PER_HOUR
    );
    assert_eq!(
        count(
            &stack,
            "SELECT COUNT(*) FROM receptions WHERE staff_account = $1",
            "doctor"
        )
        .await,
        1
    );
    // Another staff member has a budget of their own.
    let (admin, _) = demo_staff(&stack, "admin").await;
    assert_eq!(visual_check(&admin, &session, body).await.status, 202);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reception_is_never_left_without_its_audit_row() {
    let stack = stack().await;
    let (doctor, _) = demo_staff(&stack, "doctor").await;
    let body = json!({
        "certificate": card_certificate(1, CertificateCase::Valid).await,
        "face_matches": true,
    });
    let session = patient_session(&stack, "house_call").await;
    // A crash between the two writes, made reproducible: the audit insert fails.
    sqlx::query(
        "CREATE TRIGGER refuse_visual_check_audit BEFORE INSERT ON audit_log \
         WHEN NEW.action = 'reception.visual_check' \
         BEGIN SELECT RAISE(ABORT, 'audit insert fails'); END",
    )
    .execute(&stack.state.db)
    .await
    .expect("trigger");
    let failed = visual_check(&doctor, &session, body.clone()).await;
    assert_eq!(failed.status, 503, "{failed:?}");
    let receptions = "SELECT COUNT(*) FROM receptions WHERE staff_account = $1";
    assert_eq!(count(&stack, receptions, "doctor").await, 0);
    assert_eq!(
        count(
            &stack,
            "SELECT COUNT(*) FROM outbox WHERE operation <> $1",
            "-"
        )
        .await,
        0
    );
    assert_eq!(stack.backend_registrations().await, 0);
    // Back to normal: the same session goes through once, with exactly one row.
    sqlx::query("DROP TRIGGER refuse_visual_check_audit")
        .execute(&stack.state.db)
        .await
        .expect("drop trigger");
    let accepted = visual_check(&doctor, &session, body).await;
    assert_eq!(accepted.status, 202, "{accepted:?}");
    let id = accepted.body["reception_id"].as_str().expect("id");
    assert_eq!(count(&stack, receptions, "doctor").await, 1);
    assert_eq!(
        count(
            &stack,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'reception.visual_check' \
             AND target = $1",
            id
        )
        .await,
        1
    );
}

// ---------------------------------------------------------------------------------------------
// Passkeys.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_passkey_ends_the_sessions_it_opened() {
    let stack = stack().await;
    let (admin, _) = demo_staff(&stack, "admin").await;
    let (mut lost, lost_id) = enrol(&stack, &demo_code(&stack, "staff").await).await;
    let (mut kept, _) = enrol(&stack, &demo_code(&stack, "staff").await).await;
    let on_lost = signin(&stack, &mut lost).await;
    let on_lost_too = signin(&stack, &mut lost).await;
    let on_kept = signin(&stack, &mut kept).await;
    for console in [&on_lost, &on_lost_too, &on_kept] {
        assert_eq!(console.get("/api/console/me").await.status, 200);
    }
    let removed = admin
        .call(
            Method::DELETE,
            &format!("/api/console/accounts/staff/passkeys/{lost_id}"),
            None,
        )
        .await;
    assert_eq!(removed.status, 204, "{removed:?}");
    for console in [&on_lost, &on_lost_too] {
        let me = console.get("/api/console/me").await;
        assert_eq!(me.status, 401, "{me:?}");
    }
    assert_eq!(on_kept.get("/api/console/me").await.status, 200);
    assert_eq!(admin.get("/api/console/me").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passkey_an_administrator_enrolled_for_another_account_says_so() {
    let stack = stack().await;
    let (admin, _) = demo_staff(&stack, "admin").await;
    let issued = admin
        .post("/api/console/accounts/staff/enrolment-code", json!({}))
        .await;
    assert_eq!(issued.status, 201, "{issued:?}");
    let code = issued.body["code"].as_str().expect("code");
    let (_, passkey_id) = enrol(&stack, code).await;
    let keys = admin.get("/api/console/accounts/staff/passkeys").await;
    let key = keys
        .body
        .as_array()
        .expect("list")
        .iter()
        .find(|k| k["id"] == passkey_id.as_str())
        .expect("the new passkey")
        .clone();
    assert_eq!(key["enrolled_by"], "admin");
    let target = format!("staff/{passkey_id} enrolled_by=admin");
    assert_eq!(
        count(
            &stack,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'passkey.register' AND target = $1",
            &target
        )
        .await,
        1
    );
    // The administrator's own passkey (from the demo helper's code) names the helper.
    let admin_keys = admin.get("/api/console/accounts/admin/passkeys").await;
    assert_eq!(admin_keys.body[0]["enrolled_by"], "-demo");
}

// ---------------------------------------------------------------------------------------------
// Institution API tokens.

async fn api(
    stack: &Stack,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}/api/v1{path}", stack.base))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("server answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_tokens_keep_to_their_scopes_life_and_links() {
    let stack = stack().await;
    let db = &stack.state.db;
    let code: String = sqlx::query_scalar("SELECT code FROM institutions WHERE is_demo = 1")
        .fetch_one(db)
        .await
        .expect("demo code");
    let now = stack.state.clock.now_ms();
    let appointment = json!({ "kind": "separate_route", "visit_date": stack.today().to_string() });

    // The default token: per-appointment links only.
    let booking = cli::api_token_create_with(db, &code, "予約", None, None, now)
        .await
        .expect("token");
    assert_eq!(booking.scopes, [Scope::LinksAppointment]);
    assert!(booking.expires_at > now + 364 * 24 * 3600 * 1000);
    let (status, made) = api(
        &stack,
        Method::POST,
        "/links",
        &booking.token,
        Some(appointment.clone()),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let link = made["id"].as_str().expect("id").to_owned();
    for (method, path, body) in [
        (
            Method::POST,
            "/links".to_owned(),
            Some(json!({ "kind": "house_call" })),
        ),
        (Method::DELETE, format!("/links/{link}"), None),
        (
            Method::POST,
            "/receptions/00000000000000000000000000/home-visits".to_owned(),
            Some(json!({ "visit_date": stack.today().to_string() })),
        ),
    ] {
        let (status, answer) = api(&stack, method, &path, &booking.token, body).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (403, Some("scope_missing")),
            "{path}"
        );
    }

    // Another token of the same institution, allowed to revoke: not another token's link.
    let other = cli::api_token_create_with(
        db,
        &code,
        "other",
        Some("links:appointment,links:revoke"),
        Some("30"),
        now,
    )
    .await
    .expect("token");
    assert!(other.expires_at <= now + 30 * 24 * 3600 * 1000);
    let (status, answer) = api(
        &stack,
        Method::DELETE,
        &format!("/links/{link}"),
        &other.token,
        None,
    )
    .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (403, Some("link_other_token"))
    );
    let (status, answer) = api(
        &stack,
        Method::GET,
        &format!("/links/{link}"),
        &other.token,
        None,
    )
    .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (403, Some("link_other_token"))
    );
    let (status, read) = api(
        &stack,
        Method::GET,
        &format!("/links/{link}"),
        &booking.token,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(read["revoked_at"].is_null(), "{read}");
    // Its own link it may revoke.
    let (_, own) = api(
        &stack,
        Method::POST,
        "/links",
        &other.token,
        Some(appointment.clone()),
    )
    .await;
    let own = own["id"].as_str().expect("id").to_owned();
    let (status, _) = api(
        &stack,
        Method::DELETE,
        &format!("/links/{own}"),
        &other.token,
        None,
    )
    .await;
    assert_eq!(status, 204);

    // An expired token.
    let (_, expired) = storage::tokens::create_with(
        db,
        &demo_institution(&stack).await,
        "old",
        &Scope::ALL,
        now - 1,
        now - 2,
    )
    .await
    .expect("token");
    let (status, answer) = api(
        &stack,
        Method::POST,
        "/links",
        &expired,
        Some(appointment.clone()),
    )
    .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (401, Some("token_expired"))
    );

    // A revoked token, revoked by id on the command line; the list shows ids, never secrets.
    let listed = cli::api_token_list(db, &code, now).await.expect("list");
    assert!(
        listed.contains(&other.id) && listed.contains(&booking.id),
        "{listed}"
    );
    assert!(
        !listed.contains(&other.token) && !listed.contains("ukt_"),
        "{listed}"
    );
    cli::api_token_revoke(db, &code, &other.id, now)
        .await
        .expect("revoked");
    assert!(
        cli::api_token_revoke(db, &code, &other.id, now)
            .await
            .is_err()
    );
    let (status, answer) = api(
        &stack,
        Method::POST,
        "/links",
        &other.token,
        Some(appointment),
    )
    .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (401, Some("token_invalid"))
    );
    let listed = cli::api_token_list(db, &code, now).await.expect("list");
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(&other.id) && l.contains("\trevoked\t")),
        "{listed}"
    );

    // Stored hashed: no column holds a secret.
    let stored: Vec<String> = sqlx::query_scalar("SELECT token_sha256 FROM api_tokens")
        .fetch_all(db)
        .await
        .expect("hashes");
    assert!(
        stored
            .iter()
            .all(|h| h.len() == 64 && !h.starts_with("ukt_"))
    );

    // Every action the API performed is in the log under the token's id, and nothing else is.
    async fn actions(db: &storage::Db, id: &str) -> Vec<(String, Option<String>)> {
        sqlx::query_as("SELECT action, target FROM audit_log WHERE account = $1 ORDER BY seq")
            .bind(format!("-api:{id}"))
            .fetch_all(db)
            .await
            .expect("rows")
    }
    assert_eq!(
        actions(db, &booking.id).await,
        [
            ("api.link.create".to_owned(), Some(link.clone())),
            ("api.link.read".to_owned(), Some(link.clone())),
        ]
    );
    assert_eq!(
        actions(db, &other.id).await,
        [
            ("api.link.create".to_owned(), Some(own.clone())),
            ("api.link.revoke".to_owned(), Some(own.clone())),
        ]
    );
    let secret_logged: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE account LIKE '%ukt_%' OR target LIKE '%ukt_%'",
    )
    .fetch_one(db)
    .await
    .expect("count");
    assert_eq!(secret_logged, 0);
    for (action, id) in [
        ("api_token.create", &other.id),
        ("api_token.revoke", &other.id),
    ] {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM audit_log WHERE action = $1 AND account = '-cli' \
             AND target LIKE $2",
        )
        .bind(action)
        .bind(format!("{id}%"))
        .fetch_one(db)
        .await
        .expect("count");
        assert_eq!(n, 1, "{action}");
    }
}

// ---------------------------------------------------------------------------------------------
// The keyed audit chain.

/// The unkeyed rule, as a database writer would recompute it.
fn unkeyed_hash(prev: &str, institution_id: &str, row: &AuditRow) -> String {
    let canonical = serde_json::to_vec(&json!([
        "uketsuke-audit-v1",
        institution_id,
        row.seq,
        row.at,
        row.account,
        row.action,
        row.target,
        row.ip,
    ]))
    .expect("json");
    let mut hasher = Sha256::new();
    hasher.update(prev.as_bytes());
    hasher.update(canonical);
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct AuditRow {
    seq: i64,
    at: i64,
    account: String,
    action: String,
    target: Option<String>,
    ip: Option<String>,
}

/// Rewrites the whole chain of `institution_id` from `from` on with the unkeyed rule, the rows
/// passed through `edit`, and moves the head: everything a writer without the key can do.
async fn rewrite_unkeyed(db: &storage::Db, institution_id: &str, edit: impl Fn(&mut AuditRow)) {
    let rows: Vec<AuditRow> = sqlx::query_as(
        "SELECT seq, at, account, action, target, ip FROM audit_log \
         WHERE institution_id = $1 ORDER BY seq",
    )
    .bind(institution_id)
    .fetch_all(db)
    .await
    .expect("rows");
    let mut prev = audit::GENESIS.to_owned();
    for mut row in rows {
        edit(&mut row);
        let hash = unkeyed_hash(&prev, institution_id, &row);
        sqlx::query(
            "UPDATE audit_log SET account = $1, prev_hash = $2, hash = $3 \
             WHERE institution_id = $4 AND seq = $5",
        )
        .bind(&row.account)
        .bind(&prev)
        .bind(&hash)
        .bind(institution_id)
        .bind(row.seq)
        .execute(db)
        .await
        .expect("rewrite");
        prev = hash;
    }
    sqlx::query("UPDATE audit_heads SET hash = $1 WHERE institution_id = $2")
        .bind(&prev)
        .bind(institution_id)
        .execute(db)
        .await
        .expect("head");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_writer_cannot_rewrite_the_audit_chain() {
    let stack = stack().await;
    let (doctor, _) = demo_staff(&stack, "doctor").await;
    assert_eq!(doctor.get("/api/console/me").await.status, 200);
    let db = &stack.state.db;
    let institution_id = demo_institution(&stack).await;
    // The key demo mode made beside the database, as `audit verify` reads it.
    let key = AuditKey::load(&stack.dir.path().join("audit.key"), false).expect("key file");
    let ok = audit::verify_with(db, None, Some(&key))
        .await
        .expect("read")
        .expect("verifies");
    assert!(
        ok.iter()
            .any(|(id, rows)| *id == institution_id && *rows > 2)
    );

    // The sign-in made as someone else, the unkeyed chain recomputed from there to the head.
    let signin: i64 = sqlx::query_scalar(
        "SELECT MAX(seq) FROM audit_log WHERE institution_id = $1 AND action = 'signin'",
    )
    .bind(&institution_id)
    .fetch_one(db)
    .await
    .expect("seq");
    rewrite_unkeyed(db, &institution_id, |row| {
        if row.seq == signin {
            row.account = "admin".to_owned();
        }
    })
    .await;
    let broken = audit::verify(db, Some(&institution_id))
        .await
        .expect("read")
        .expect_err("found");
    assert_eq!(broken.reason, "row altered");
    let keyed_from: i64 =
        sqlx::query_scalar("SELECT keyed_from FROM audit_heads WHERE institution_id = $1")
            .bind(&institution_id)
            .fetch_one(db)
            .await
            .expect("switch point");
    // The first row the writer could not recompute: the chain's first keyed row.
    assert_eq!(broken.seq, keyed_from);
    let report = cli::audit_verify_with(db, None, Some(&key))
        .await
        .expect("runs")
        .expect_err("broken");
    assert!(report.contains(&format!("row {keyed_from}")), "{report}");

    // The writer also strips the key's record and the switch point: still found with the key.
    sqlx::query("DELETE FROM audit_keying")
        .execute(db)
        .await
        .expect("strip");
    sqlx::query("UPDATE audit_heads SET keyed_from = NULL")
        .execute(db)
        .await
        .expect("strip");
    let broken = audit::verify_with(db, Some(&institution_id), Some(&key))
        .await
        .expect("read")
        .expect_err("found");
    assert_eq!(broken.reason, "chain not keyed");
}

/// On every engine (SQLite always; PostgreSQL when `UKETSUKE_TEST_POSTGRES_URL` is set).
#[tokio::test]
async fn rows_from_before_the_key_keep_verifying_and_are_protected_by_it() {
    for engine in common::engines().await {
        legacy_rows_on(&engine.url).await;
    }
}

async fn legacy_rows_on(url: &str) {
    let db = storage::open(url).await.expect("database");
    sqlx::query(
        "INSERT INTO institutions (id, code, name_ja, name_en, created_at) \
         VALUES ('legacyinstitution00000000', '1312345670', 'x', 'x', 0)",
    )
    .execute(&db)
    .await
    .expect("institution");
    let actor = Actor::cli("legacyinstitution00000000");
    // A database from before the key: unkeyed rows.
    for i in 0..3 {
        audit::record(&db, &actor, "account.create", Some(&format!("A{i}")), i)
            .await
            .expect("row");
    }
    let key = AuditKey::from_bytes(&[7u8; 32]).expect("key");
    audit::install(&db, &key, 10).await.expect("keyed");
    audit::record(&db, &actor, "signin", None, 11)
        .await
        .expect("row");
    let checked = audit::verify_with(&db, None, Some(&key))
        .await
        .expect("read")
        .expect("verifies");
    assert_eq!(checked, [("legacyinstitution00000000".to_owned(), 5)]);
    let marker: (String, Option<String>) =
        sqlx::query_as("SELECT action, target FROM audit_log WHERE seq = 4")
            .fetch_one(&db)
            .await
            .expect("marker");
    assert_eq!(
        marker,
        ("audit.keyed".to_owned(), Some(key.id().to_owned()))
    );
    // Another key for the same database is refused.
    let other = AuditKey::from_bytes(&[8u8; 32]).expect("key");
    assert!(audit::install(&db, &other, 12).await.is_err());
    assert!(AuditKey::from_bytes(&[1u8; 31]).is_err());
    // An old, unkeyed row rewritten with the unkeyed rule: found at the switch row.
    rewrite_unkeyed(&db, "legacyinstitution00000000", |row| {
        if row.seq == 2 {
            row.account = "-demo".to_owned();
        }
    })
    .await;
    let broken = audit::verify_with(&db, None, Some(&key))
        .await
        .expect("read")
        .expect_err("found");
    assert_eq!((broken.seq, broken.reason), (4, "row altered"));

    // Token storage on this engine: scopes, expiry, list and revocation by id.
    let (id, token) = storage::tokens::create_with(
        &db,
        "legacyinstitution00000000",
        "x",
        &[Scope::LinksRevoke, Scope::LinksAppointment],
        100,
        50,
    )
    .await
    .expect("token");
    let bearer = storage::tokens::bearer(&db, &token, 99)
        .await
        .expect("read")
        .expect("live");
    assert_eq!(bearer.scopes, [Scope::LinksAppointment, Scope::LinksRevoke]);
    assert_eq!(
        storage::tokens::bearer(&db, &token, 100)
            .await
            .expect("read"),
        Err(storage::tokens::Refusal::Expired)
    );
    let list = storage::tokens::list(&db, "legacyinstitution00000000")
        .await
        .expect("list");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].id, id);
    let mut tx = db.begin().await.expect("tx");
    assert!(
        storage::tokens::revoke_by_id_in(&mut tx, "legacyinstitution00000000", &id, 60)
            .await
            .expect("revoke")
    );
    tx.commit().await.expect("commit");
    assert_eq!(
        storage::tokens::bearer(&db, &token, 61)
            .await
            .expect("read"),
        Err(storage::tokens::Refusal::Invalid)
    );
    let roles: String =
        sqlx::query_scalar("SELECT visual_check_roles FROM institutions WHERE id = $1")
            .bind("legacyinstitution00000000")
            .fetch_one(&db)
            .await
            .expect("roles");
    assert_eq!(roles, "medical_viewer,administrator");
}
