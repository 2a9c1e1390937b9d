//! Section 7, the patient's half ("Staff, tokens and audit"), each against a running server:
//! - withdrawal never depends on the clinic: through a link the institution revoked, a
//!   per-appointment link that expired and a link whose kind it switched off, the patient still
//!   starts 同意照会・取消, proves the card, sees the list and withdraws; granting anything
//!   through such a link is refused (`link_closed_withdraw_only`), the reception steps stay
//!   closed, and an unknown link stays 404;
//! - a change of consent, a cancel with the done screen's token and a withdrawal from 同意照会
//!   each leave exactly one audit row by `-patient`; a refused or repeated act leaves none; and
//!   when the audit row cannot be written the withdrawal does not happen either (one
//!   transaction);
//! - a withdrawal that commits while the backend is answering a read of medical information
//!   leaves nothing cached (the backend's answer is held by a proxy in front of the simulator
//!   until the withdrawal has committed — no timing involved);
//! - CSV cells starting with full-width ＝＋－＠ are defused; names, labels, booking
//!   references and 照会番号 with a bidi control or a zero-width character are refused with
//!   `text_bidi_control` / `text_zero_width`, while variation selectors (異体字) pass;
//! - production refuses a plain-http backend URL (loopback excepted).

use std::sync::Arc;

use axum::{body::Bytes, extract::State, http::Request, response::IntoResponse};
use serde_json::{Value, json};
use sqlx::Row;
use tokio::sync::Notify;
use uketsuke_backend::contract::MedicalCategory;
use uketsuke_backend::simulator::{self, SimOptions, population::CertificateCase};
use uketsuke_domain::ReceptionKind;
use uketsuke_server::{
    config::Config,
    console,
    gate::{self, GateError, GateRefusal, Reader, Role},
    storage::{self, links::NewLink},
};

use crate::common::patient::{Patient, card_sign, register};
use crate::common::stack::{Stack, server, stack};

const HOUR_MS: i64 = 3600 * 1000;
/// A well-formed id that no link has.
const UNKNOWN: &str = "0000000000000000000000000z";

/// `(status, JSON body)` of a request.
async fn answer(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("server answers");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// `POST /api/r/{link}/manage/session`.
async fn manage_start(patient: &Patient, link: &str) -> (u16, Value) {
    answer(
        patient
            .http
            .post(format!("{}/api/r/{link}/manage/session", patient.base)),
    )
    .await
}

/// The card of person `no` proves itself for 同意照会 in the patient's session.
async fn prove(patient: &Patient, origin: &str, no: u32) -> (u16, Value) {
    let (status, challenge) = answer(
        patient
            .http
            .post(format!("{}/api/session/manage/challenge", patient.base)),
    )
    .await;
    assert_eq!(status, 200, "challenge: {challenge}");
    let message = challenge["message"].as_str().expect("message");
    let (certificate, signature) = card_sign(no, CertificateCase::Valid, message).await;
    answer(
        patient
            .http
            .post(format!("{}/api/session/manage/proof", patient.base))
            .json(&json!({
                "challenge": challenge["challenge"],
                "origin": origin,
                "certificate": certificate,
                "signature": signature,
            })),
    )
    .await
}

async fn put_consent(patient: &Patient, id: &str, clinical: bool, checkups: bool) -> (u16, Value) {
    answer(
        patient
            .http
            .put(format!(
                "{}/api/session/manage/receptions/{id}/consent",
                patient.base
            ))
            .json(&json!({ "clinical_medication": clinical, "checkups": checkups })),
    )
    .await
}

async fn withdraw_all(patient: &Patient) -> (u16, Value) {
    answer(
        patient
            .http
            .post(format!("{}/api/session/manage/withdraw-all", patient.base)),
    )
    .await
}

/// The patient's audit rows, oldest first: (action, target).
async fn patient_audit(stack: &Stack) -> Vec<(String, String)> {
    sqlx::query(
        "SELECT action, target FROM audit_log WHERE account = '-patient' \
         ORDER BY institution_id, seq",
    )
    .fetch_all(&stack.state.db)
    .await
    .expect("audit rows")
    .iter()
    .map(|r| (r.get("action"), r.get("target")))
    .collect()
}

/// Person `no` registers on `link` (separate route: 診療・薬剤 consented, 特定健診 not) and the
/// backend confirms; returns the submission's answer (reception id, cancel token).
async fn confirmed_on(stack: &Stack, link: &str, no: u32) -> Value {
    let patient = Patient::new(&stack.base);
    let accepted = register(
        &patient,
        link,
        "separate_route",
        no,
        &stack.origin(),
        stack.today(),
    )
    .await;
    assert_eq!(accepted.status, 202, "{:?}", accepted.body);
    assert_eq!(patient.settled(200).await.body["status"], "confirmed");
    accepted.body
}

/// The demo institution's id.
async fn institution(stack: &Stack) -> String {
    storage::links::resolve(
        &stack.state.db,
        &stack.link("separate_route"),
        stack.state.clock.now_ms(),
    )
    .await
    .expect("read")
    .expect("demo link open")
    .institution_id
}

#[derive(Debug, Clone, Copy)]
enum Closure {
    Revoked,
    Expired,
    SwitchedOff,
}

async fn withdrawal_through_a_closed_link(closure: Closure) {
    let stack = stack(None, None).await;
    let state = &stack.state;
    let institution = institution(&stack).await;
    let now = state.clock.now_ms();
    // A per-appointment link for today that ends in an hour.
    let link = storage::links::create(
        &state.db,
        &NewLink {
            institution_id: &institution,
            kind: ReceptionKind::SeparateRoute,
            visit_date: Some(stack.today()),
            booking_ref: Some("A-1"),
            label: None,
            expires_at: Some(now + HOUR_MS),
        },
        now,
    )
    .await
    .expect("link");
    let accepted = confirmed_on(&stack, &link, 1).await;
    let id = accepted["reception_id"].as_str().expect("id").to_owned();
    match closure {
        Closure::Revoked => {
            assert!(
                storage::links::revoke(&state.db, &institution, &link, now)
                    .await
                    .expect("revoke")
            );
        }
        Closure::Expired => state.clock.advance_ms(2 * HOUR_MS),
        Closure::SwitchedOff => {
            sqlx::query("UPDATE institutions SET accepts_remote = 0 WHERE id = $1")
                .bind(&institution)
                .execute(&state.db)
                .await
                .expect("switch off");
        }
    }
    // The reception steps stay closed.
    let newcomer = Patient::new(&stack.base);
    let refused = newcomer.start(&link).await;
    assert!(
        matches!(refused.status, 403 | 410),
        "{closure:?}: a new reception: {refused:?}"
    );
    // An unknown link stays unknown.
    assert_eq!(manage_start(&newcomer, UNKNOWN).await.0, 404);
    // 同意照会・取消 is reachable: the page, the session, the proof, the list.
    let page = reqwest::get(format!("{}/r/{link}/manage", stack.base))
        .await
        .expect("page");
    assert_eq!(page.status().as_u16(), 200, "{closure:?}: the manage page");
    let unknown_page = reqwest::get(format!("{}/r/{UNKNOWN}/manage", stack.base))
        .await
        .expect("page");
    assert_eq!(unknown_page.status().as_u16(), 404);
    let patient = Patient::new(&stack.base);
    let (status, started) = manage_start(&patient, &link).await;
    assert_eq!(status, 201, "{closure:?}: {started}");
    assert_eq!(started["link_closed"], true);
    // The session opened for management does not open the reception steps.
    let choose = patient
        .choose(json!({ "clinical_medication": true, "checkups": true }))
        .await;
    assert!(
        matches!(choose.status, 403 | 410),
        "{closure:?}: {choose:?}"
    );
    let (status, listed) = prove(&patient, &stack.origin(), 1).await;
    assert_eq!(status, 200, "{closure:?}: {listed}");
    assert_eq!(listed["link_closed"], true);
    let items = listed["receptions"].as_array().expect("list");
    assert!(items.iter().any(|r| r["id"] == id.as_str()), "{listed}");
    // Granting through a closed link is refused, and leaves no audit row.
    let (status, refusal) = put_consent(&patient, &id, true, true).await;
    assert_eq!(status, 403, "{closure:?}: {refusal}");
    assert_eq!(refusal["error"], "link_closed_withdraw_only");
    assert!(patient_audit(&stack).await.is_empty());
    // Taking a category back is a withdrawal, and allowed.
    let (status, after) = put_consent(&patient, &id, false, false).await;
    assert_eq!(status, 200, "{closure:?}: {after}");
    // So is すべての同意を取消す.
    let (status, after) = withdraw_all(&patient).await;
    assert_eq!(status, 200, "{closure:?}: {after}");
    let mine = after["receptions"]
        .as_array()
        .expect("list")
        .iter()
        .find(|r| r["id"] == id.as_str())
        .cloned()
        .expect("listed");
    assert_eq!(mine["withdrawn"], true, "{closure:?}: {after}");
    let stored = storage::receptions::get(&state.db, &id)
        .await
        .expect("read")
        .expect("reception");
    assert!(stored.withdrawn_at.is_some());
    assert_eq!(
        patient_audit(&stack).await,
        vec![
            ("consent.update".to_owned(), id.clone()),
            ("consent.withdraw".to_owned(), id.clone()),
        ]
    );
    // The no-script path: the start form goes to 同意照会・取消, not back to a closed link.
    let form = Patient::new(&stack.base);
    let response = form
        .http
        .post(format!("{}/r/{link}/start", stack.base))
        .form(&[("next", "manage")])
        .send()
        .await
        .expect("answer");
    assert_eq!(
        response.url().path(),
        format!("/r/{link}/manage"),
        "{closure:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withdrawal_works_through_a_revoked_link_and_grants_are_refused() {
    withdrawal_through_a_closed_link(Closure::Revoked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withdrawal_works_through_an_expired_per_appointment_link() {
    withdrawal_through_a_closed_link(Closure::Expired).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withdrawal_works_when_the_clinic_switched_the_kind_off() {
    withdrawal_through_a_closed_link(Closure::SwitchedOff).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_change_cancel_and_withdrawal_are_audited_atomically() {
    let stack = stack(None, None).await;
    let state = &stack.state;
    let link = stack.link("separate_route");
    // 同意の更新 through an open link (a grant is allowed there): one row.
    let a = confirmed_on(&stack, &link, 1).await;
    let a_id = a["reception_id"].as_str().expect("id").to_owned();
    let manager = Patient::new(&stack.base);
    assert_eq!(manage_start(&manager, &link).await.0, 201);
    assert_eq!(prove(&manager, &stack.origin(), 1).await.0, 200);
    let (status, body) = put_consent(&manager, &a_id, true, true).await;
    assert_eq!(status, 200, "{body}");
    // The same consents again change nothing and write nothing.
    assert_eq!(put_consent(&manager, &a_id, true, true).await.0, 409);
    // The cancel token: one row; a second cancel none.
    let b = confirmed_on(&stack, &link, 2).await;
    let b_id = b["reception_id"].as_str().expect("id").to_owned();
    let canceller = Patient::new(&stack.base);
    let token = b["cancel_token"].as_str().expect("token");
    assert_eq!(canceller.cancel(token).await.status, 200);
    assert_eq!(canceller.cancel(token).await.status, 200);
    // すべての同意を取消す: one row per reception withdrawn.
    assert_eq!(withdraw_all(&manager).await.0, 200);
    assert_eq!(
        patient_audit(&stack).await,
        vec![
            ("consent.update".to_owned(), a_id.clone()),
            ("consent.cancel".to_owned(), b_id.clone()),
            ("consent.withdraw".to_owned(), a_id.clone()),
        ]
    );
    // Atomicity: while the audit log refuses every row, a cancel fails and the reception stays
    // as it was (no withdrawal, nothing queued for the backend); once the log takes rows
    // again, the cancel goes through with its row.
    let c = confirmed_on(&stack, &link, 3).await;
    let c_id = c["reception_id"].as_str().expect("id").to_owned();
    let c_token = c["cancel_token"].as_str().expect("token");
    let pending_before = storage::outbox::pending(&state.db).await.expect("pending");
    sqlx::query(
        "CREATE TRIGGER audit_refuses BEFORE INSERT ON audit_log \
         BEGIN SELECT RAISE(ABORT, 'audit log refuses rows'); END",
    )
    .execute(&state.db)
    .await
    .expect("trigger");
    let failed = Patient::new(&stack.base).cancel(c_token).await;
    assert_eq!(failed.status, 503, "{failed:?}");
    let stored = storage::receptions::get(&state.db, &c_id)
        .await
        .expect("read")
        .expect("reception");
    assert!(
        stored.withdrawn_at.is_none(),
        "withdrawn without its audit row"
    );
    assert!(storage::outbox::pending(&state.db).await.expect("pending") <= pending_before);
    sqlx::query("DROP TRIGGER audit_refuses")
        .execute(&state.db)
        .await
        .expect("drop trigger");
    let done = Patient::new(&stack.base).cancel(c_token).await;
    assert_eq!(done.status, 200);
    assert_eq!(done.body["withdrawn"], true);
    let rows = patient_audit(&stack).await;
    assert_eq!(rows.last(), Some(&("consent.cancel".to_owned(), c_id)));
    assert_eq!(rows.len(), 4);
    // The chain still verifies with the patient's rows in it.
    assert!(
        console::audit::verify(&state.db, None)
            .await
            .expect("verify")
            .is_ok()
    );
}

/// A proxy in front of the simulator that, while armed, holds the answer to a read of medical
/// information: it tells the test the answer is in hand, then waits to be released.
#[derive(Clone)]
struct HoldingProxy {
    target: String,
    http: reqwest::Client,
    armed: Arc<std::sync::atomic::AtomicBool>,
    arrived: Arc<Notify>,
    release: Arc<Notify>,
}

async fn forward(
    State(proxy): State<HoldingProxy>,
    request: Request<axum::body::Body>,
) -> axum::response::Response {
    let (parts, body) = request.into_parts();
    let body: Bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let mut outgoing = proxy
        .http
        .request(parts.method.clone(), format!("{}{path}", proxy.target))
        .body(body);
    for (name, value) in &parts.headers {
        if name != http::header::HOST && name != http::header::CONTENT_LENGTH {
            outgoing = outgoing.header(name, value);
        }
    }
    let Ok(answer) = outgoing.send().await else {
        return http::StatusCode::BAD_GATEWAY.into_response();
    };
    let status = answer.status();
    let headers = answer.headers().clone();
    let bytes = answer.bytes().await.unwrap_or_default();
    if path.ends_with("/medical-information")
        && proxy.armed.swap(false, std::sync::atomic::Ordering::SeqCst)
    {
        proxy.arrived.notify_one();
        proxy.release.notified().await;
    }
    let mut response = (status, bytes).into_response();
    for (name, value) in &headers {
        if name != http::header::CONTENT_LENGTH && name != http::header::TRANSFER_ENCODING {
            response.headers_mut().insert(name, value.clone());
        }
    }
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawal_during_the_backend_call_leaves_no_medical_data() {
    // SQLite always; PostgreSQL too when the test cluster is there (row lock instead of the
    // database's write lock).
    for db in crate::common::engines().await {
        eprintln!("engine: {}", db.engine);
        withdrawal_during_the_backend_call(&db.url).await;
    }
}

async fn withdrawal_during_the_backend_call(url: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let sim_path = dir.path().join("sim.db");
    let sim = simulator::spawn_with(
        "127.0.0.1:0".parse().expect("addr"),
        SimOptions {
            database_path: Some(sim_path.display().to_string()),
            ..Default::default()
        },
    )
    .await
    .expect("simulator starts");
    let proxy = HoldingProxy {
        target: sim.base_url().trim_end_matches('/').to_owned(),
        http: reqwest::Client::builder()
            .no_gzip()
            .no_brotli()
            .build()
            .expect("client"),
        armed: Arc::default(),
        arrived: Arc::default(),
        release: Arc::default(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let proxy_base = format!("http://{}", listener.local_addr().expect("addr"));
    let app = axum::Router::new()
        .fallback(forward)
        .with_state(proxy.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let (base, links, state) = server(url, &proxy_base, dir.path(), None).await;
    let stack = Stack {
        base,
        links,
        state,
        sim,
        sim_db: format!("sqlite://{}", sim_path.display()),
        dir,
    };
    let state = &stack.state;
    let institution = institution(&stack).await;
    let viewer = Reader {
        institution_id: &institution,
        role: Role::MedicalViewer,
    };
    let cached = || async {
        sqlx::query("SELECT COUNT(*) AS n FROM medical_data")
            .fetch_one(&state.db)
            .await
            .expect("count")
            .get::<i64, _>("n")
    };
    let read = |id: String| {
        let state = state.clone();
        let institution = institution.clone();
        tokio::spawn(async move {
            let viewer = Reader {
                institution_id: &institution,
                role: Role::MedicalViewer,
            };
            gate::medical_information(
                &state.db,
                &state.backend,
                &state.clock,
                viewer,
                &id,
                MedicalCategory::ClinicalMedication,
            )
            .await
        })
    };
    // Control: a held answer released with the consent intact is kept.
    let kept = confirmed_on(&stack, &stack.link("separate_route"), 1).await;
    let kept_id = kept["reception_id"].as_str().expect("id").to_owned();
    proxy.armed.store(true, std::sync::atomic::Ordering::SeqCst);
    let reading = read(kept_id.clone());
    proxy.arrived.notified().await;
    proxy.release.notify_one();
    reading.await.expect("task").expect("read while consented");
    assert_eq!(cached().await, 1);
    // The attack's race: the answer is in hand, the patient withdraws, then it is released.
    let racing = confirmed_on(&stack, &stack.link("separate_route"), 2).await;
    let racing_id = racing["reception_id"].as_str().expect("id").to_owned();
    proxy.armed.store(true, std::sync::atomic::Ordering::SeqCst);
    let reading = read(racing_id.clone());
    proxy.arrived.notified().await;
    let patient = Patient::new(&stack.base);
    let cancelled = patient
        .cancel(racing["cancel_token"].as_str().expect("token"))
        .await;
    assert_eq!(cancelled.status, 200);
    assert_eq!(cancelled.body["withdrawn"], true);
    proxy.release.notify_one();
    match reading.await.expect("task") {
        Err(GateError::Refused(GateRefusal::WindowClosed)) => {}
        other => panic!("a read across a withdrawal must be refused, got {other:?}"),
    }
    let left: i64 = sqlx::query("SELECT COUNT(*) AS n FROM medical_data WHERE reception_id = $1")
        .bind(&racing_id)
        .fetch_one(&state.db)
        .await
        .expect("count")
        .get("n");
    assert_eq!(left, 0, "medical data cached after the withdrawal");
    // The other reception's copy is untouched.
    assert_eq!(cached().await, 1);
    let _ = viewer;
}

/// A console client signed in as the demo administrator (session made in storage, as a
/// passkey sign-in would): cookie, our origin and the CSRF header on every request.
async fn admin_console(stack: &Stack) -> reqwest::Client {
    let state = &stack.state;
    let institution = institution(stack).await;
    let account = console::accounts::by_login(&state.db, &institution, "admin")
        .await
        .expect("read")
        .expect("demo administrator");
    let mut tx = state.db.begin().await.expect("tx");
    let token = console::session::create_in(
        &mut tx,
        &account.internal_id,
        "test-passkey",
        state.clock.now_ms(),
    )
    .await
    .expect("session");
    tx.commit().await.expect("commit");
    let mut headers = reqwest::header::HeaderMap::new();
    let cookie = format!("{}={token}", console::session::COOKIE);
    headers.insert(
        reqwest::header::COOKIE,
        cookie.parse().expect("cookie header"),
    );
    headers.insert(
        reqwest::header::ORIGIN,
        stack.origin().parse().expect("origin header"),
    );
    headers.insert(console::CSRF_HEADER, "1".parse().expect("csrf header"));
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invisible_characters_are_refused_in_every_staff_text_and_csv_cells_are_defused() {
    let stack = stack(None, None).await;
    let admin = admin_console(&stack).await;
    let base = &stack.base;
    let accepted = confirmed_on(&stack, &stack.link("separate_route"), 1).await;
    let id = accepted["reception_id"].as_str().expect("id").to_owned();
    let today = stack.today().format("%Y-%m-%d").to_string();
    let settings = |name_ja: &str, name_en: &str| {
        json!({
            "name_ja": name_ja,
            "name_en": name_en,
            "code": uketsuke_backend::simulator::keys::institution_code(
                uketsuke_backend::simulator::keys::DEMO_CLINIC
            ).as_str(),
            "accepts_remote": true,
            "uses_welfare_info": true,
            "eligibility_retention_days": 90,
        })
    };
    let invisible = [
        ('\u{202E}', "text_bidi_control"),
        ('\u{202A}', "text_bidi_control"),
        ('\u{2067}', "text_bidi_control"),
        ('\u{200F}', "text_bidi_control"),
        ('\u{061C}', "text_bidi_control"),
        ('\u{200B}', "text_zero_width"),
        ('\u{200D}', "text_zero_width"),
        ('\u{2060}', "text_zero_width"),
        ('\u{FEFF}', "text_zero_width"),
    ];
    let mut refusals = 0;
    for (n, (c, code)) in invisible.iter().enumerate() {
        let text = format!("さくら{c}内科");
        let fields: Vec<(&str, reqwest::RequestBuilder)> = vec![
            (
                "name_ja",
                admin
                    .put(format!("{base}/api/console/settings"))
                    .json(&settings(&text, "Sakura Clinic")),
            ),
            (
                "name_en",
                admin
                    .put(format!("{base}/api/console/settings"))
                    .json(&settings("さくら内科", &format!("Sakura{c} Clinic"))),
            ),
            (
                "account name",
                admin.post(format!("{base}/api/console/accounts")).json(&json!({
                    "id": format!("nurse{n}"), "name": text, "kana": "カンゴ",
                    "role": "general", "start_date": today,
                })),
            ),
            (
                "account kana",
                admin.post(format!("{base}/api/console/accounts")).json(&json!({
                    "id": format!("nurse{n}"), "name": "看護 花子", "kana": format!("カンゴ{c}"),
                    "role": "general", "start_date": today,
                })),
            ),
            (
                "link label",
                admin
                    .post(format!("{base}/api/console/links"))
                    .json(&json!({ "kind": "separate_route", "label": text })),
            ),
            (
                "booking reference",
                admin.post(format!("{base}/api/console/links")).json(
                    &json!({ "kind": "separate_route", "booking_ref": format!("A{c}1") }),
                ),
            ),
            (
                "照会番号",
                admin
                    .put(format!("{base}/api/console/receptions/{id}/patient-ref"))
                    .json(&json!({ "patient_ref": format!("P{c}42") })),
            ),
        ];
        for (field, request) in fields {
            let (status, body) = answer(request).await;
            assert_eq!(status, 422, "{field} with U+{:04X}: {body}", u32::from(*c));
            assert_eq!(body["error"], *code, "{field} with U+{:04X}", u32::from(*c));
            refusals += 1;
        }
    }
    assert_eq!(refusals, 63);
    // Variation selectors are part of names (異体字) and pass.
    let (status, body) = answer(
        admin
            .post(format!("{base}/api/console/accounts"))
            .json(&json!({
                "id": "ivs1", "name": "葛\u{E0100}飾 花子", "kana": "カツシカ ハナコ",
                "role": "general", "start_date": today,
            })),
    )
    .await;
    assert!((200..300).contains(&status), "{status}: {body}");
    // Full-width formula starters in 照会番号 reach the CSV defused.
    for (n, starter) in ["＝", "＋", "－", "＠"].iter().enumerate() {
        // 照会番号 holds at most 32 characters.
        let value = format!("{starter}HYPERLINK(\"http://e.x/{n}\")");
        let (status, body) = answer(
            admin
                .put(format!("{base}/api/console/receptions/{id}/patient-ref"))
                .json(&json!({ "patient_ref": value })),
        )
        .await;
        assert!((200..300).contains(&status), "{status}: {body}");
        let mut csv = String::new();
        for _ in 0..200 {
            let response = admin
                .get(format!(
                    "{base}/api/console/receptions/{id}/eligibility.csv"
                ))
                .send()
                .await
                .expect("answer");
            if response.status().as_u16() == 200 {
                csv = response.text().await.expect("body");
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        let quoted = value.replace('"', "\"\"");
        assert!(
            csv.contains(&format!("\"'{quoted}\"")),
            "{starter}: the cell is not defused: {csv}"
        );
        assert!(!csv.contains(&format!(",\"{quoted}")), "{csv}");
    }
}

#[test]
fn production_refuses_a_plain_http_backend() {
    let key = uketsuke_backend::contract::signing::encode_verifying_key(
        &uketsuke_backend::simulator::keys::backend_verifying_key(),
    );
    let config = |backend: &str| {
        let env: Vec<(String, String)> = [
            ("UKETSUKE_MODE", "production"),
            ("UKETSUKE_PUBLIC_ORIGIN", "https://uketsuke.example.jp"),
            ("UKETSUKE_BACKEND", backend),
            ("UKETSUKE_BACKEND_KEY", key.as_str()),
            ("UKETSUKE_BACKEND_KEY_ID", "oqs-1"),
            ("UKETSUKE_JPKI_CA", "/etc/uketsuke/jpki-ca.pem"),
            ("UKETSUKE_JPKI_CRL", "/etc/uketsuke/jpki.crl"),
            ("UKETSUKE_AUDIT_KEY_FILE", "/etc/uketsuke/audit.key"),
            (
                "UKETSUKE_KEY_ENCRYPTION_KEY_FILE",
                "/etc/uketsuke/key-encryption.key",
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        Config::from_sources(None, &env)
    };
    let refused = config("http://oqs.example.jp/api")
        .expect_err("plain http to another host")
        .to_string();
    assert!(
        refused.contains("UKETSUKE_BACKEND")
            && refused.contains("production mode needs an https:// backend URL"),
        "{refused}"
    );
    assert!(config("https://oqs.example.jp/api").is_ok());
    // The simulator on the same machine, over loopback, is allowed.
    assert!(config("http://127.0.0.1:8081").is_ok());
    assert!(config("http://[::1]:8081").is_ok());
}
