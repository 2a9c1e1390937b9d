//! The institution console's API over HTTP, with a software passkey authenticator written here
//! (P-256, "none" attestation, discoverable, user verification claimed) in place of a browser:
//! enrolment and sign-in ceremonies, session rotation and timeouts on the server's clock, the
//! CSRF rule, role and institution boundaries on every route, medical information through the
//! gate inside and outside the window, exports, links, settings, accounts, the server-sent
//! events, the audit log's hash chain (and a tampered row found), and the command line.

mod common;

use std::time::Duration;

use chrono::NaiveDate;
use common::console::{
    Answer, Console, ConsoleClient, SoftPasskey, b64, b64d, demo_code, demo_staff, enrol, signin,
    try_signin,
};
use common::patient::Patient;
use common::stack::Stack;
use reqwest::Method;
use serde_json::{Value, json};
use uketsuke_backend::simulator::population::{self, CertificateCase};
use uketsuke_card::jpki::{EF_USER_AUTH_CERT, JpkiAp};
use uketsuke_domain::InstitutionCode;
use uketsuke_server::{
    AppState,
    console::{
        self,
        cli::{AdminCreate, admin_create},
    },
    storage,
};

const MINUTE_MS: i64 = 60 * 1000;
const DAY_MS: i64 = 24 * 3600 * 1000;

// ---------------------------------------------------------------------------------------------
// The stack: a simulator and a server in demo mode on a `localhost` origin (WebAuthn refuses IP
// addresses as relying party ids).

/// WebAuthn refuses IP addresses as relying party ids: the console runs on `localhost`.
const ORIGIN: &str = "http://localhost:0";

async fn stack() -> Stack {
    stack_on(None).await
}

async fn stack_on(database_url: Option<&str>) -> Stack {
    common::stack::stack(database_url, Some(ORIGIN)).await
}

async fn server(
    url: &str,
    sim_base: &str,
    dir: &std::path::Path,
    origin: &str,
) -> (String, Vec<(String, String)>, AppState) {
    common::stack::server(url, sim_base, dir, Some(origin)).await
}

/// A second institution with its administrator, signed in.
async fn other_institution(stack: &Stack) -> (Console, String) {
    let code = InstitutionCode::with_check_digit("271234567").expect("code");
    let created = admin_create(
        &stack.state.db,
        &stack.origin(),
        &AdminCreate {
            institution_code: code.as_str().to_owned(),
            name: "他院 管理者".to_owned(),
            kana: "タイン カンリシャ".to_owned(),
            login_id: "ADMIN1".to_owned(),
            institution_name: Some("よそのクリニック".to_owned()),
        },
        stack.state.clock.now_ms(),
    )
    .await
    .expect("admin created");
    assert!(created.institution_created);
    let (mut passkey, _) = enrol(stack, &created.code).await;
    (signin(stack, &mut passkey).await, created.institution_id)
}

/// A confirmed reception of `kind` at the demo institution (person 1), with its eligibility.
async fn reception(stack: &Stack, kind: &str) -> String {
    reception_of(stack, kind, 1).await
}

/// A confirmed reception of `kind` at the demo institution by person `no`, with its
/// eligibility.
async fn reception_of(stack: &Stack, kind: &str, no: u32) -> String {
    stack.confirmed_reception(kind, no).await
}

// ---------------------------------------------------------------------------------------------
// The routes, with who may use them.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    AnyStaff,
    Administrator,
    MedicalViewer,
}

struct Route {
    method: Method,
    path: String,
    body: Option<Value>,
    access: Access,
}

fn route(method: Method, path: String, body: Option<Value>, access: Access) -> Route {
    Route {
        method,
        path,
        body,
        access,
    }
}

fn settings_body() -> Value {
    json!({
        "name_ja": "うけつけ内科クリニック（デモ）",
        "name_en": "Uketsuke Internal Medicine Clinic (demo)",
        "code": uketsuke_backend::simulator::keys::institution_code(
            uketsuke_backend::simulator::keys::DEMO_CLINIC
        ).as_str(),
        "accepts_remote": true,
        "uses_welfare_info": true,
        "eligibility_retention_days": 90,
    })
}

/// Every signed-in console route, for a reception and a link id.
fn routes(reception: &str, link: &str, today: NaiveDate) -> Vec<Route> {
    use Access::*;
    let r = format!("/api/console/receptions/{reception}");
    let l = format!("/api/console/links/{link}");
    let a = "/api/console/accounts/staff";
    let day = today.format("%Y-%m-%d").to_string();
    vec![
        route(Method::GET, "/api/console/me".into(), None, AnyStaff),
        route(
            Method::GET,
            "/api/console/receptions".into(),
            None,
            AnyStaff,
        ),
        route(Method::GET, "/api/console/events".into(), None, AnyStaff),
        route(Method::GET, r.clone(), None, AnyStaff),
        route(
            Method::PUT,
            format!("{r}/patient-ref"),
            Some(json!({ "patient_ref": "P-42" })),
            AnyStaff,
        ),
        route(
            Method::POST,
            format!("{r}/home-visits"),
            Some(json!({ "visit_date": day })),
            AnyStaff,
        ),
        route(
            Method::GET,
            format!("{r}/medical/clinical_medication"),
            None,
            MedicalViewer,
        ),
        route(
            Method::GET,
            format!("{r}/medical/checkups"),
            None,
            MedicalViewer,
        ),
        route(Method::GET, format!("{r}/eligibility.csv"), None, AnyStaff),
        route(Method::GET, format!("{r}/eligibility.json"), None, AnyStaff),
        route(Method::GET, "/api/console/links".into(), None, AnyStaff),
        route(
            Method::POST,
            "/api/console/links".into(),
            Some(json!({ "kind": "separate_route", "label": "受付" })),
            Administrator,
        ),
        route(Method::GET, format!("{l}/qr.svg"), None, AnyStaff),
        route(Method::DELETE, l.clone(), None, Administrator),
        route(
            Method::GET,
            "/api/console/settings".into(),
            None,
            Administrator,
        ),
        route(
            Method::PUT,
            "/api/console/settings".into(),
            Some(settings_body()),
            Administrator,
        ),
        route(
            Method::GET,
            "/api/console/accounts".into(),
            None,
            Administrator,
        ),
        route(
            Method::POST,
            "/api/console/accounts".into(),
            Some(json!({
                "id": "nurse1", "name": "看護 花子", "kana": "カンゴ ハナコ",
                "role": "general", "start_date": day,
            })),
            Administrator,
        ),
        route(
            Method::POST,
            format!("{a}/enrolment-code"),
            Some(json!({})),
            Administrator,
        ),
        route(Method::GET, format!("{a}/passkeys"), None, Administrator),
        route(
            Method::DELETE,
            format!("{a}/passkeys/0000000000000000000000000z"),
            None,
            Administrator,
        ),
        route(
            Method::POST,
            format!("{a}/disable"),
            Some(json!({})),
            Administrator,
        ),
        route(
            Method::POST,
            format!("{a}/enable"),
            Some(json!({})),
            Administrator,
        ),
        route(
            Method::GET,
            "/api/console/audit".into(),
            None,
            Administrator,
        ),
        route(
            Method::GET,
            "/api/console/audit.csv".into(),
            None,
            Administrator,
        ),
        route(
            Method::POST,
            format!("{r}/withdrawal"),
            Some(json!({})),
            AnyStaff,
        ),
        route(
            Method::POST,
            "/api/console/signout-everywhere".into(),
            Some(json!({})),
            AnyStaff,
        ),
        route(
            Method::POST,
            "/api/console/signout".into(),
            Some(json!({})),
            AnyStaff,
        ),
    ]
}

async fn call(console: &Console, route: &Route) -> Answer {
    let mut request = console.request(route.method.clone(), &route.path);
    if let Some(body) = &route.body {
        request = request.json(body);
    }
    console.send(request).await
}

const FAKE_ID: &str = "0000000000000000000000000z";

// ---------------------------------------------------------------------------------------------
// Tests.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passkey_is_enrolled_with_a_one_time_code_and_signs_in() {
    let stack = stack().await;
    let code = demo_code(&stack, "admin").await;
    let (mut passkey, _) = enrol(&stack, &code).await;

    // The code is spent.
    let again = stack
        .console()
        .post("/api/console/enrol/start", json!({ "code": code }))
        .await;
    assert_eq!((again.status, again.error()), (404, Some("code_invalid")));
    let junk = stack
        .console()
        .post("/api/console/enrol/start", json!({ "code": "short" }))
        .await;
    assert_eq!(junk.status, 404);

    // Sign-in sets the cookie as the brief says.
    let console = stack.console();
    let answer = try_signin(&console, &mut passkey).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body["id"], "admin");
    assert_eq!(answer.body["role"], "administrator");
    let cookie = answer
        .headers
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "http origin: {cookie}");
    let me = console.get("/api/console/me").await;
    assert_eq!(me.status, 200, "{me:?}");
    assert_eq!(
        me.body["institution"]["name_en"],
        "Uketsuke Internal Medicine Clinic (demo)"
    );

    // A new sign-in in the same browser rotates the id; the old one is dead.
    let first = console.token().expect("token");
    let answer = try_signin(&console, &mut passkey).await;
    assert_eq!(answer.status, 200);
    let second = console.token().expect("token");
    assert_ne!(first, second);
    let stale = console.with_token(Some(first));
    assert_eq!(stale.get("/api/console/me").await.status, 401);
    assert_eq!(console.get("/api/console/me").await.status, 200);

    // A ceremony is single use; a replayed or forged assertion is refused.
    let start = console.post("/api/console/signin/start", json!({})).await;
    let credential = passkey.get(&start.body["options"]);
    let finish = json!({ "ceremony": start.body["ceremony"], "credential": credential });
    let other = stack.console();
    assert_eq!(
        other
            .post("/api/console/signin/finish", finish.clone())
            .await
            .status,
        200
    );
    let replay = stack.console();
    let replayed = replay.post("/api/console/signin/finish", finish).await;
    assert_eq!(
        (replayed.status, replayed.error()),
        (401, Some("signin_failed"))
    );
    let mut forged = passkey.clone();
    forged.key = storage::institutions::generate_key();
    assert_eq!(try_signin(&stack.console(), &mut forged).await.status, 401);
    // Without user verification, no sign-in.
    let mut lazy = passkey.clone();
    lazy.verifies_user = false;
    assert_eq!(try_signin(&stack.console(), &mut lazy).await.status, 401);
    // An unknown passkey.
    let mut stranger = passkey.clone();
    stranger.credential_id = vec![7; 16];
    assert_eq!(
        try_signin(&stack.console(), &mut stranger).await.status,
        401
    );

    // Sign-out ends this session only; sign-out everywhere ends them all.
    let a = signin(&stack, &mut passkey).await;
    let b = signin(&stack, &mut passkey).await;
    let c = signin(&stack, &mut passkey).await;
    let out = a.post("/api/console/signout", json!({})).await;
    assert_eq!(out.status, 204);
    assert!(a.token().is_none(), "cookie cleared");
    assert_eq!(b.get("/api/console/me").await.status, 200);
    assert_eq!(
        b.post("/api/console/signout-everywhere", json!({}))
            .await
            .status,
        204
    );
    assert_eq!(c.get("/api/console/me").await.status, 401);
    assert_eq!(console.get("/api/console/me").await.status, 401);

    // A second passkey for the same account, from a new code.
    let code = demo_code(&stack, "admin").await;
    let (mut second_key, _) = enrol(&stack, &code).await;
    let admin = signin(&stack, &mut second_key).await;
    let keys = admin.get("/api/console/accounts/admin/passkeys").await;
    assert_eq!(keys.body.as_array().map(Vec::len), Some(2), "{keys:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_wants_a_live_session() {
    let stack = stack().await;
    let link = stack.link("separate_route");
    let all = routes(FAKE_ID, &link, stack.today());
    let nobody = stack.console();
    for route in &all {
        let answer = call(&nobody, route).await;
        assert_eq!(
            (answer.status, answer.error()),
            (401, Some("signin_required")),
            "{} {}",
            route.method,
            route.path
        );
    }
    let junk = nobody.with_token(Some("x".repeat(43)));
    for route in &all {
        assert_eq!(call(&junk, route).await.status, 401, "{}", route.path);
    }

    // Idle for 29 minutes: still in (and the request counts as activity); then 29 more: still
    // in; then 31 without a request: out, on every route.
    let (admin, _) = demo_staff(&stack, "admin").await;
    let clock = &stack.state.clock;
    clock.advance_ms(29 * MINUTE_MS);
    assert_eq!(admin.get("/api/console/me").await.status, 200);
    clock.advance_ms(29 * MINUTE_MS);
    assert_eq!(admin.get("/api/console/me").await.status, 200);
    clock.advance_ms(31 * MINUTE_MS);
    for route in &all {
        let answer = call(&admin, route).await;
        assert_eq!(
            answer.status, 401,
            "{} {} after 31 idle minutes",
            route.method, route.path
        );
    }

    // Active all day: out after 12 hours regardless.
    let (busy, _) = demo_staff(&stack, "staff").await;
    for _ in 0..((12 * 60) / 20 - 1) {
        clock.advance_ms(20 * MINUTE_MS);
        assert_eq!(busy.get("/api/console/me").await.status, 200);
    }
    clock.advance_ms(20 * MINUTE_MS);
    let answer = busy.get("/api/console/me").await;
    assert_eq!(
        (answer.status, answer.error()),
        (401, Some("session_expired"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_are_enforced_on_every_restricted_route() {
    let stack = stack().await;
    let id = reception(&stack, "separate_route").await;
    let link = stack.link("separate_route");
    let (general, _) = demo_staff(&stack, "staff").await;
    let (doctor, _) = demo_staff(&stack, "doctor").await;
    let (admin, _) = demo_staff(&stack, "admin").await;
    for route in routes(&id, &link, stack.today()) {
        let refused: Vec<(&str, &Console)> = match route.access {
            Access::AnyStaff => continue,
            Access::Administrator => vec![("general", &general), ("doctor", &doctor)],
            Access::MedicalViewer => vec![("general", &general), ("admin", &admin)],
        };
        for (who, console) in refused {
            let answer = call(console, &route).await;
            assert_eq!(
                (answer.status, answer.error()),
                (403, Some("role_not_permitted")),
                "{who}: {} {}",
                route.method,
                route.path
            );
        }
    }
    // Nothing was changed by the refused calls: the link is still open, no account was added.
    let links = admin.get("/api/console/links").await;
    assert!(
        links
            .body
            .as_array()
            .expect("links")
            .iter()
            .all(|l| l["state"] == "open"),
        "{links:?}"
    );
    let accounts = admin.get("/api/console/accounts").await;
    assert_eq!(accounts.body.as_array().map(Vec::len), Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_institutions_receptions_links_and_accounts_are_not_found() {
    let stack = stack().await;
    let id = reception(&stack, "separate_route").await;
    let link = stack.link("separate_route");
    let (other, _) = other_institution(&stack).await;
    // Its administrator gets a medical viewer of its own.
    let created = other
        .post(
            "/api/console/accounts",
            json!({
                "id": "doc2", "name": "他院 医師", "kana": "タイン イシ",
                "role": "medical_viewer", "start_date": stack.today(),
            }),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let code = other
        .post("/api/console/accounts/doc2/enrolment-code", json!({}))
        .await;
    assert_eq!(code.status, 201);
    let (mut key, _) = enrol(&stack, code.body["code"].as_str().expect("code")).await;
    let other_doctor = signin(&stack, &mut key).await;

    for route in routes(&id, &link, stack.today()) {
        let path_names_other = route.path.contains(&id)
            || route.path.contains(&link)
            || route.path.contains("/accounts/staff");
        if !path_names_other {
            continue;
        }
        let console = match route.access {
            Access::MedicalViewer => &other_doctor,
            _ => &other,
        };
        let answer = call(console, &route).await;
        assert_eq!(
            answer.status, 404,
            "{} {}: {answer:?}",
            route.method, route.path
        );
    }
    // The day's list does not show it either, and the demo reception is untouched.
    let list = other.get("/api/console/receptions").await;
    assert_eq!(list.status, 200);
    assert_eq!(list.body["receptions"].as_array().map(Vec::len), Some(0));
    let reception = storage::receptions::get(&stack.state.db, &id)
        .await
        .expect("read")
        .expect("reception");
    assert!(reception.withdrawn_at.is_none());
    let (demo_admin, _) = demo_staff(&stack, "admin").await;
    let links = demo_admin.get("/api/console/links").await;
    assert!(
        links
            .body
            .as_array()
            .expect("links")
            .iter()
            .all(|l| l["state"] == "open")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_changing_routes_want_our_origin_and_the_csrf_header() {
    let stack = stack().await;
    let (admin, _) = demo_staff(&stack, "admin").await;
    let link = stack.link("separate_route");
    let mut changing: Vec<(Method, String, Value)> = routes(FAKE_ID, &link, stack.today())
        .into_iter()
        .filter(|r| r.method != Method::GET)
        .map(|r| (r.method, r.path, r.body.unwrap_or(json!({}))))
        .collect();
    for path in [
        "/api/console/enrol/start",
        "/api/console/enrol/finish",
        "/api/console/signin/start",
        "/api/console/signin/finish",
        "/api/console/demo/enrolment-code",
    ] {
        changing.push((Method::POST, path.to_owned(), json!({ "account": "admin" })));
    }
    for (method, path, body) in &changing {
        let cases: [(&str, Option<&str>, Option<&str>); 4] = [
            ("no Origin", None, Some("1")),
            ("foreign Origin", Some("https://evil.example"), Some("1")),
            ("no CSRF header", Some(&admin.origin), None),
            ("wrong CSRF header", Some(&admin.origin), Some("0")),
        ];
        for (case, origin, token) in cases {
            let mut request = admin.bare(method.clone(), path).json(body);
            if let Some(origin) = origin {
                request = request.header("origin", origin);
            }
            if let Some(token) = token {
                request = request.header("x-uketsuke-csrf", token);
            }
            let answer = admin.send(request).await;
            assert_eq!(answer.status, 403, "{case}: {method} {path}: {answer:?}");
        }
    }
    // The session survived all of that (sign-out was refused too).
    assert_eq!(admin.get("/api/console/me").await.status, 200);
    // Reads need no CSRF header.
    let read = admin
        .send(admin.bare(Method::GET, "/api/console/links"))
        .await;
    assert_eq!(read.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_medical_viewer_reads_inside_the_window_only() {
    let stack = stack().await;
    let id = reception(&stack, "separate_route").await;
    let (mut doctor, mut doctor_key) = demo_staff(&stack, "doctor").await;
    let (general, _) = demo_staff(&stack, "staff").await;
    let path = format!("/api/console/receptions/{id}/medical/clinical_medication");

    let read = doctor.get(&path).await;
    assert_eq!(read.status, 200, "{read:?}");
    assert_eq!(read.body["category"], "clinical_medication");
    // Not consented: refused with its reason.
    let checkups = doctor
        .get(&format!("/api/console/receptions/{id}/medical/checkups"))
        .await;
    assert_eq!(
        (checkups.status, checkups.error()),
        (403, Some("not_consented"))
    );
    let refused = general.get(&path).await;
    assert_eq!(
        (refused.status, refused.error()),
        (403, Some("role_not_permitted"))
    );
    let unknown = doctor
        .get(&format!("/api/console/receptions/{id}/medical/surgery"))
        .await;
    assert_eq!(unknown.status, 404);

    // Two days on: the window (until 23:59 the day after the visit) has closed.
    stack.state.clock.advance_ms(2 * DAY_MS);
    assert_eq!(doctor.get(&path).await.status, 401, "session idle");
    doctor = signin(&stack, &mut doctor_key).await;
    let closed = doctor.get(&path).await;
    assert_eq!(
        (closed.status, closed.error()),
        (403, Some("window_closed")),
        "{closed:?}"
    );
    let detail = doctor.get(&format!("/api/console/receptions/{id}")).await;
    assert_eq!(detail.body["window_open"], false);

    // The one read that was answered is logged as a medical view; the refusals are not.
    let views = medical_views(&stack, &id).await;
    assert_eq!(views, 1);
}

async fn medical_views(stack: &Stack, id: &str) -> i64 {
    use sqlx::Row;
    sqlx::query("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'medical.view' AND target = $1")
        .bind(format!("{id}/clinical_medication"))
        .fetch_one(&stack.state.db)
        .await
        .expect("count")
        .try_get::<i64, _>("n")
        .expect("n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_days_list_detail_exports_and_changes() {
    let stack = stack().await;
    let (general, _) = demo_staff(&stack, "staff").await;

    // The event stream announces the new reception.
    let events = general
        .request(Method::GET, "/api/console/events")
        .await_stream()
        .await;
    let id = reception(&stack, "separate_route").await;
    let announced = events.until_contains(&id, Duration::from_secs(10)).await;
    assert!(announced.contains("event: ready"), "{announced}");
    assert!(announced.contains("event: receptions"), "{announced}");

    let list = general.get("/api/console/receptions").await;
    assert_eq!(list.status, 200, "{list:?}");
    let rows = list.body["receptions"].as_array().expect("rows");
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row["id"], id.as_str());
    assert_eq!(row["status"], "confirmed");
    assert_eq!(row["eligibility"], "found");
    assert!(row["name"].as_str().is_some_and(|n| !n.is_empty()), "{row}");
    assert_eq!(row["consent"]["clinical_medication"], true);
    assert!(
        row["window_end_display"]
            .as_str()
            .is_some_and(|d| d.ends_with("23:59 JST"))
    );
    assert_eq!(row["reception_number"].as_str().map(str::len), Some(8));
    let other_day = general.get("/api/console/receptions?date=2020-01-01").await;
    assert_eq!(
        other_day.body["receptions"].as_array().map(Vec::len),
        Some(0)
    );
    let bad_day = general.get("/api/console/receptions?date=tomorrow").await;
    assert_eq!(bad_day.status, 422);

    let detail = general.get(&format!("/api/console/receptions/{id}")).await;
    assert_eq!(detail.status, 200);
    assert_eq!(detail.body["eligibility"]["state"], "answer");
    assert_eq!(detail.body["eligibility"]["outcome"]["result"], "found");
    assert_eq!(detail.body["window_open"], true);
    assert_eq!(detail.body["identity_method"], "card");

    // 照会番号.
    let set = general
        .call(
            Method::PUT,
            &format!("/api/console/receptions/{id}/patient-ref"),
            Some(json!({ "patient_ref": "P-000123" })),
        )
        .await;
    assert_eq!(set.status, 204, "{set:?}");
    let too_long = general
        .call(
            Method::PUT,
            &format!("/api/console/receptions/{id}/patient-ref"),
            Some(json!({ "patient_ref": "x".repeat(33) })),
        )
        .await;
    assert_eq!(too_long.status, 422);
    let announced = events
        .until_contains("receptions", Duration::from_secs(10))
        .await;
    assert!(announced.contains(&id));

    // Exports.
    let csv = general
        .get(&format!("/api/console/receptions/{id}/eligibility.csv"))
        .await;
    assert_eq!(csv.status, 200);
    assert_eq!(
        csv.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/csv; charset=utf-8")
    );
    assert!(
        csv.headers
            .get("content-disposition")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|d| d.starts_with("attachment")),
    );
    assert!(csv.text.starts_with('\u{feff}'), "BOM");
    let lines: Vec<&str> = csv
        .text
        .trim_start_matches('\u{feff}')
        .split("\r\n")
        .collect();
    assert!(lines[0].starts_with("受付番号,照会番号,受付区分,診療日,資格確認日,結果,氏名"));
    assert!(lines[1].contains("P-000123"), "{}", lines[1]);
    assert!(lines[1].contains(",取得,"), "{}", lines[1]);
    assert!(lines[1].contains(row["name"].as_str().expect("name")));
    let json_export = general
        .get(&format!("/api/console/receptions/{id}/eligibility.json"))
        .await;
    assert_eq!(json_export.status, 200);
    assert_eq!(json_export.body["patient_ref"], "P-000123");
    assert_eq!(
        json_export.body["eligibility"]["outcome"]["result"],
        "found"
    );

    // Home visits only for 訪問診療等, not in the future.
    let visit = |rid: &str, day: NaiveDate| {
        let general = &general;
        let path = format!("/api/console/receptions/{rid}/home-visits");
        async move {
            general
                .post(
                    &path,
                    json!({ "visit_date": day.format("%Y-%m-%d").to_string() }),
                )
                .await
        }
    };
    assert_eq!(visit(&id, stack.today()).await.status, 422);
    let home = reception(&stack, "home_visit").await;
    assert_eq!(visit(&home, stack.today()).await.status, 201);
    assert_eq!(visit(&home, stack.today()).await.status, 200);
    let tomorrow = stack.today().succ_opt().expect("date");
    assert_eq!(visit(&home, tomorrow).await.status, 422);
    let detail = general
        .get(&format!("/api/console/receptions/{home}"))
        .await;
    assert_eq!(detail.body["home_visits"].as_array().map(Vec::len), Some(1));

    // Withdrawal on the patient's request: closed at once, queued for the backend.
    let withdrawn = general
        .post(
            &format!("/api/console/receptions/{id}/withdrawal"),
            json!({}),
        )
        .await;
    assert_eq!(withdrawn.status, 200, "{withdrawn:?}");
    assert_eq!(withdrawn.body["already"], false);
    let again = general
        .post(
            &format!("/api/console/receptions/{id}/withdrawal"),
            json!({}),
        )
        .await;
    assert_eq!(again.body["already"], true);
    stack.state.clock.advance_ms(1);
    let detail = general.get(&format!("/api/console/receptions/{id}")).await;
    assert_eq!(detail.body["window_open"], false);
    assert!(detail.body["withdrawn_at"].is_string());
    for _ in 0..200 {
        if storage::outbox::pending(&stack.state.db)
            .await
            .expect("pending")
            == 0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        storage::outbox::pending(&stack.state.db)
            .await
            .expect("pending"),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_settings_and_accounts_for_administrators() {
    let stack = stack().await;
    let (admin, _) = demo_staff(&stack, "admin").await;

    // Links: per appointment, with its QR code; revoked.
    let tomorrow = stack.today().succ_opt().expect("date");
    let created = admin
        .post(
            "/api/console/links",
            json!({ "kind": "online_care", "visit_date": tomorrow, "booking_ref": "B-7" }),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let link_id = created.body["id"].as_str().expect("id").to_owned();
    assert_eq!(
        created.body["url"],
        format!("{}/r/{link_id}", stack.origin())
    );
    assert!(created.body["expires_at"].is_string());
    let past = admin
        .post(
            "/api/console/links",
            json!({ "kind": "online_care", "visit_date": "2020-01-01" }),
        )
        .await;
    assert_eq!(past.status, 422);
    let qr = admin
        .get(&format!("/api/console/links/{link_id}/qr.svg"))
        .await;
    assert_eq!(qr.status, 200);
    assert_eq!(
        qr.headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("image/svg+xml")
    );
    assert!(qr.text.contains("<svg"));
    let revoked = admin
        .call(
            Method::DELETE,
            &format!("/api/console/links/{link_id}"),
            None,
        )
        .await;
    assert_eq!(revoked.status, 204);
    let list = admin.get("/api/console/links").await;
    let row = list
        .body
        .as_array()
        .expect("links")
        .iter()
        .find(|l| l["id"] == link_id.as_str())
        .cloned()
        .expect("listed");
    assert_eq!(row["state"], "revoked");
    let landing = Patient::new(&stack.base).start(&link_id).await;
    assert_eq!(landing.status, 410);

    // Settings: the feature switch closes the remote kinds; codes are check-digit verified.
    let settings = admin.get("/api/console/settings").await;
    assert_eq!(settings.status, 200);
    assert_eq!(settings.body["accepts_remote"], true);
    let mut body = settings.body.clone();
    body["accepts_remote"] = json!(false);
    body["eligibility_retention_days"] = json!(30);
    let put = admin
        .call(Method::PUT, "/api/console/settings", Some(body.clone()))
        .await;
    assert_eq!(put.status, 200, "{put:?}");
    assert_eq!(put.body["eligibility_retention_days"], 30);
    let closed = Patient::new(&stack.base)
        .start(&stack.link("online_care"))
        .await;
    assert_eq!(closed.status, 403, "{:?}", closed.body);
    let mut bad = body.clone();
    let code = bad["code"].as_str().expect("code").to_owned();
    let last = code.as_bytes()[9] - b'0';
    bad["code"] = json!(format!("{}{}", &code[..9], (last + 1) % 10));
    let refused = admin
        .call(Method::PUT, "/api/console/settings", Some(bad))
        .await;
    assert_eq!(
        (refused.status, refused.error()),
        (422, Some("code_invalid"))
    );
    // A corrected code: the institution's sealed signing key (the code is in its associated
    // data) is re-sealed with the change, so the relay can still sign for it.
    let institution_id: String = sqlx::query_scalar("SELECT id FROM institutions WHERE code = $1")
        .bind(&code)
        .fetch_one(&stack.state.db)
        .await
        .expect("institution");
    let corrected = uketsuke_domain::InstitutionCode::with_check_digit("131765432")
        .expect("code")
        .as_str()
        .to_owned();
    let mut renamed = body.clone();
    renamed["code"] = json!(corrected);
    let put = admin
        .call(Method::PUT, "/api/console/settings", Some(renamed))
        .await;
    assert_eq!(put.status, 200, "{put:?}");
    let identity = uketsuke_server::storage::institutions::signer(&stack.state.db, &institution_id)
        .await
        .expect("storage")
        .expect("the key still opens under the new code");
    assert_eq!(identity.code, corrected);
    let put = admin
        .call(Method::PUT, "/api/console/settings", Some(body.clone()))
        .await;
    assert_eq!(put.status, 200, "{put:?}");
    let mut bad = body.clone();
    bad["eligibility_retention_days"] = json!(3651);
    let refused = admin
        .call(Method::PUT, "/api/console/settings", Some(bad))
        .await;
    assert_eq!(refused.status, 422);

    // Accounts: create, duplicate IDs refused (case does not make a new ID), enrol, disable.
    let new = json!({
        "id": "Nurse1", "name": "看護 花子", "kana": "カンゴ ハナコ",
        "role": "general", "start_date": stack.today(),
    });
    let created = admin.post("/api/console/accounts", new.clone()).await;
    assert_eq!(created.status, 201, "{created:?}");
    let mut twin = new.clone();
    twin["id"] = json!("nurse1");
    assert_eq!(admin.post("/api/console/accounts", twin).await.status, 409);
    let mut bad = new.clone();
    bad["id"] = json!("n");
    assert_eq!(admin.post("/api/console/accounts", bad).await.status, 422);
    let code = admin
        .post("/api/console/accounts/Nurse1/enrolment-code", json!({}))
        .await;
    assert_eq!(code.status, 201);
    let (mut nurse_key, _) = enrol(&stack, code.body["code"].as_str().expect("code")).await;
    let nurse = signin(&stack, &mut nurse_key).await;
    assert_eq!(nurse.get("/api/console/me").await.body["role"], "general");
    let keys = admin.get("/api/console/accounts/Nurse1/passkeys").await;
    let key_id = keys.body[0]["id"].as_str().expect("passkey id").to_owned();
    assert!(keys.body[0]["last_used_at"].is_string());

    let disabled = admin
        .post("/api/console/accounts/Nurse1/disable", json!({}))
        .await;
    assert_eq!(disabled.status, 200);
    assert_eq!(disabled.body["disabled"], true);
    assert_eq!(
        nurse.get("/api/console/me").await.status,
        401,
        "sessions end"
    );
    assert_eq!(
        try_signin(&stack.console(), &mut nurse_key).await.status,
        401
    );
    assert_eq!(
        admin
            .post("/api/console/accounts/Nurse1/enrolment-code", json!({}))
            .await
            .status,
        404,
        "no codes for a disabled account"
    );
    let enabled = admin
        .post("/api/console/accounts/Nurse1/enable", json!({}))
        .await;
    assert_eq!(enabled.body["disabled"], false);
    signin(&stack, &mut nurse_key).await;
    let removed = admin
        .call(
            Method::DELETE,
            &format!("/api/console/accounts/Nurse1/passkeys/{key_id}"),
            None,
        )
        .await;
    assert_eq!(removed.status, 204);
    assert_eq!(
        try_signin(&stack.console(), &mut nurse_key).await.status,
        401
    );
    // An account starts on its start date: enrolment is possible before, sign-in is not.
    let later = admin
        .post(
            "/api/console/accounts",
            json!({
                "id": "later1", "name": "来月 入職", "kana": "",
                "role": "general", "start_date": tomorrow,
            }),
        )
        .await;
    assert_eq!(later.status, 201, "{later:?}");
    let code = admin
        .post("/api/console/accounts/later1/enrolment-code", json!({}))
        .await;
    let (mut later_key, _) = enrol(&stack, code.body["code"].as_str().expect("code")).await;
    assert_eq!(
        try_signin(&stack.console(), &mut later_key).await.status,
        401
    );
    let me = admin
        .post("/api/console/accounts/admin/disable", json!({}))
        .await;
    assert_eq!((me.status, me.error()), (409, Some("cannot_disable_self")));

    // An enrolment code from the console expires after 24 hours.
    let code = admin
        .post("/api/console/accounts/Nurse1/enrolment-code", json!({}))
        .await;
    stack.state.clock.advance_ms(DAY_MS);
    let late = stack
        .console()
        .post(
            "/api/console/enrol/start",
            json!({ "code": code.body["code"] }),
        )
        .await;
    assert_eq!(late.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_chain_records_who_did_what_and_shows_tampering() {
    let stack = stack().await;
    let id = reception(&stack, "separate_route").await;
    let (admin, _) = demo_staff(&stack, "admin").await;
    let (doctor, _) = demo_staff(&stack, "doctor").await;
    assert_eq!(
        doctor
            .get(&format!("/api/console/receptions/{id}"))
            .await
            .status,
        200
    );
    assert_eq!(
        doctor
            .get(&format!(
                "/api/console/receptions/{id}/medical/clinical_medication"
            ))
            .await
            .status,
        200
    );
    assert_eq!(
        doctor
            .get(&format!("/api/console/receptions/{id}/eligibility.csv"))
            .await
            .status,
        200
    );
    let mut settings = admin.get("/api/console/settings").await.body;
    settings["uses_welfare_info"] = json!(false);
    assert_eq!(
        admin
            .call(Method::PUT, "/api/console/settings", Some(settings))
            .await
            .status,
        200
    );

    let log = admin.get("/api/console/audit").await;
    assert_eq!(log.status, 200, "{log:?}");
    let entries = log.body["entries"].as_array().expect("entries").clone();
    let has = |account: &str, action: &str, target: Option<&str>| {
        entries.iter().any(|e| {
            e["account"] == account
                && e["action"] == action
                && target.is_none_or(|t| e["target"] == t)
                && e["ip"] == "127.0.0.1"
        })
    };
    assert!(has("doctor", "signin", None));
    assert!(has("doctor", "reception.view", Some(&id)));
    assert!(has(
        "doctor",
        "medical.view",
        Some(&format!("{id}/clinical_medication"))
    ));
    assert!(has(
        "doctor",
        "eligibility.export",
        Some(&format!("{id}/csv"))
    ));
    assert!(has("admin", "settings.update", Some("uses_welfare_info")));
    // The passkey registered, and who enrolled it (the demo helper issued the code).
    assert!(entries.iter().any(|e| {
        e["account"] == "admin"
            && e["action"] == "passkey.register"
            && e["target"]
                .as_str()
                .is_some_and(|t| t.starts_with("admin/") && t.ends_with(" enrolled_by=-demo"))
    }));
    assert!(
        entries
            .iter()
            .any(|e| e["account"] == "-demo" && e["action"] == "enrolment_code.issue")
    );
    // Newest first.
    let seqs: Vec<i64> = entries.iter().filter_map(|e| e["seq"].as_i64()).collect();
    assert!(seqs.windows(2).all(|w| w[0] > w[1]), "{seqs:?}");

    let filtered = admin
        .get("/api/console/audit?account=doctor&action=medical.view")
        .await;
    assert_eq!(filtered.body["entries"].as_array().map(Vec::len), Some(1));
    let today = stack.today().format("%Y-%m-%d");
    let by_day = admin
        .get(&format!("/api/console/audit?from={today}&to={today}"))
        .await;
    assert!(
        !by_day.body["entries"]
            .as_array()
            .expect("entries")
            .is_empty()
    );
    let none = admin.get("/api/console/audit?to=2020-01-01").await;
    assert_eq!(none.body["entries"].as_array().map(Vec::len), Some(0));
    let csv = admin.get("/api/console/audit.csv?account=doctor").await;
    assert!(
        csv.text
            .starts_with("\u{feff}seq,at,account,action,target,ip,hash\r\n")
    );
    assert!(csv.text.contains(",doctor,medical.view,"));

    // The chain verifies; an edited row breaks it at that row, and so does a removed last row.
    let db = &stack.state.db;
    let checked = console::audit::verify(db, None)
        .await
        .expect("read")
        .expect("chain verifies");
    assert!(checked.iter().any(|(_, rows)| *rows > 10), "{checked:?}");
    let report = console::cli::audit_verify(db, None).await.expect("runs");
    assert!(report.is_ok(), "{report:?}");

    let row: (String, i64) =
        sqlx::query_as("SELECT institution_id, seq FROM audit_log WHERE action = 'medical.view'")
            .fetch_one(db)
            .await
            .expect("row");
    sqlx::query("UPDATE audit_log SET account = 'admin' WHERE institution_id = $1 AND seq = $2")
        .bind(&row.0)
        .bind(row.1)
        .execute(db)
        .await
        .expect("tamper");
    let broken = console::audit::verify(db, None)
        .await
        .expect("read")
        .expect_err("tampering found");
    assert_eq!(broken.seq, row.1);
    assert_eq!(broken.reason, "row altered");
    let report = console::cli::audit_verify(db, None).await.expect("runs");
    let message = report.expect_err("broken");
    assert!(message.contains(&format!("row {}", row.1)), "{message}");
    assert!(message.contains("institution "), "{message}");
    // Put it back: verifies again. Then cut off the newest row.
    sqlx::query("UPDATE audit_log SET account = 'doctor' WHERE institution_id = $1 AND seq = $2")
        .bind(&row.0)
        .bind(row.1)
        .execute(db)
        .await
        .expect("restore");
    assert!(
        console::audit::verify(db, None)
            .await
            .expect("read")
            .is_ok()
    );
    sqlx::query(
        "DELETE FROM audit_log WHERE institution_id = $1 \
         AND seq = (SELECT MAX(seq) FROM audit_log WHERE institution_id = $1)",
    )
    .bind(&row.0)
    .execute(db)
    .await
    .expect("cut");
    let cut = console::audit::verify(db, Some(&row.0))
        .await
        .expect("read")
        .expect_err("cut found");
    assert_eq!(cut.reason, "rows missing at the end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_creates_the_first_administrator_and_tokens() {
    let stack = stack().await;
    let db = &stack.state.db;
    let now = stack.state.clock.now_ms();
    let good = InstitutionCode::with_check_digit("131111111").expect("code");
    let mut bad_code = good.as_str().to_owned();
    let last = bad_code.pop().and_then(|c| c.to_digit(10)).expect("digit");
    bad_code.push(char::from_digit((last + 1) % 10, 10).expect("digit"));
    let request = |code: &str, id: &str| AdminCreate {
        institution_code: code.to_owned(),
        name: "院長 太郎".to_owned(),
        kana: "インチョウ タロウ".to_owned(),
        login_id: id.to_owned(),
        institution_name: Some("新しいクリニック".to_owned()),
    };
    let refused = admin_create(db, &stack.origin(), &request(&bad_code, "ADMIN1"), now).await;
    assert!(refused.is_err_and(|e| e.contains("check digit")));
    assert!(
        admin_create(db, &stack.origin(), &request(good.as_str(), "a"), now)
            .await
            .is_err()
    );

    let created = admin_create(db, &stack.origin(), &request(good.as_str(), "ADMIN1"), now)
        .await
        .expect("created");
    assert!(created.institution_created && !created.reissued);
    let (key_id, public) = created.new_key.clone().expect("a new signing key");
    assert!(key_id.starts_with(&format!("uk-{}-", good.as_str())));
    assert_eq!(b64d(&public).len(), 65);
    assert!(
        storage::institutions::signer(db, &created.institution_id)
            .await
            .expect("read")
            .is_some()
    );
    assert_eq!(
        created.link,
        format!("{}/console/enrol#{}", stack.origin(), created.code)
    );
    // Again: the same institution and account, a new code (the old one stops working).
    let again = admin_create(db, &stack.origin(), &request(good.as_str(), "ADMIN1"), now)
        .await
        .expect("reissued");
    assert!(again.reissued && !again.institution_created && again.new_key.is_none());
    let old = stack
        .console()
        .post("/api/console/enrol/start", json!({ "code": created.code }))
        .await;
    assert_eq!(old.status, 404);
    let (mut key, _) = enrol(&stack, &again.code).await;
    let admin = signin(&stack, &mut key).await;
    let me = admin.get("/api/console/me").await;
    assert_eq!(me.body["institution"]["code"], good.as_str());
    assert_eq!(me.body["role"], "administrator");

    // A long-lived link needs the `links:standing` scope (issue 12 §7).
    let token = console::cli::api_token_create_with(
        db,
        good.as_str(),
        "レセコン",
        Some("links:standing"),
        None,
        now,
    )
    .await
    .expect("token")
    .token;
    let http = reqwest::Client::new();
    let made = http
        .post(format!("{}/api/v1/links", stack.base))
        .bearer_auth(&token)
        .json(&json!({ "kind": "house_call" }))
        .send()
        .await
        .expect("answer");
    assert_eq!(made.status().as_u16(), 201);
    let links = admin.get("/api/console/links").await;
    assert_eq!(links.body.as_array().map(Vec::len), Some(1));
    assert!(
        console::cli::api_token_create(db, "1311111110", "x", now)
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ceremonies_and_sessions_work_across_two_instances() {
    // Two instances behind one public origin, on one database.
    let dir = tempfile::tempdir().expect("temp dir");
    let sim = uketsuke_backend::simulator::spawn_with(
        "127.0.0.1:0".parse().expect("addr"),
        uketsuke_backend::simulator::SimOptions {
            database_path: Some(dir.path().join("sim.db").display().to_string()),
            ..Default::default()
        },
    )
    .await
    .expect("simulator starts");
    let url = format!("sqlite://{}/shared.db", dir.path().display());
    let origin = "http://localhost:4999";
    let (base1, _, _) = server(&url, &sim.base_url(), dir.path(), origin).await;
    let (base2, _, _) = server(&url, &sim.base_url(), dir.path(), origin).await;
    let one = Console::new(&base1, origin);
    let two = Console::new(&base2, origin);

    let code = one
        .post(
            "/api/console/demo/enrolment-code",
            json!({ "account": "admin" }),
        )
        .await;
    let code = code.body["code"].as_str().expect("code").to_owned();
    // Enrolment begun on one instance, finished on the other.
    let start = one
        .post("/api/console/enrol/start", json!({ "code": code }))
        .await;
    assert_eq!(start.status, 200, "{start:?}");
    let (mut passkey, credential) = SoftPasskey::create(origin, &start.body["options"]);
    let finish = two
        .post(
            "/api/console/enrol/finish",
            json!({ "code": code, "credential": credential }),
        )
        .await;
    assert_eq!(finish.status, 201, "{finish:?}");

    // Sign-in the other way round.
    let begun = two.post("/api/console/signin/start", json!({})).await;
    let credential = passkey.get(&begun.body["options"]);
    let done = one
        .post(
            "/api/console/signin/finish",
            json!({ "ceremony": begun.body["ceremony"], "credential": credential }),
        )
        .await;
    assert_eq!(done.status, 200, "{done:?}");
    // The session is known to both.
    let on_two = two.with_token(one.token());
    assert_eq!(on_two.get("/api/console/me").await.status, 200);
    assert_eq!(one.get("/api/console/me").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_and_audit_on_every_engine() {
    for db in common::engines().await {
        let stack = stack_on(Some(&db.url)).await;
        let id = reception(&stack, "separate_route").await;
        let (doctor, _) = demo_staff(&stack, "doctor").await;
        let (admin, _) = demo_staff(&stack, "admin").await;
        let list = doctor.get("/api/console/receptions").await;
        assert_eq!(list.status, 200, "{}: {list:?}", db.engine);
        let medical = doctor
            .get(&format!(
                "/api/console/receptions/{id}/medical/clinical_medication"
            ))
            .await;
        assert_eq!(medical.status, 200, "{}: {medical:?}", db.engine);
        let created = admin
            .post(
                "/api/console/accounts",
                json!({
                    "id": "rx1", "name": "薬剤 次郎", "kana": "",
                    "role": "general", "start_date": stack.today(),
                }),
            )
            .await;
        assert_eq!(created.status, 201, "{}: {created:?}", db.engine);
        let log = admin.get("/api/console/audit?action=medical.view").await;
        assert_eq!(
            log.body["entries"].as_array().map(Vec::len),
            Some(1),
            "{}: {log:?}",
            db.engine
        );
        assert!(
            console::audit::verify(&stack.state.db, None)
                .await
                .expect("read")
                .is_ok(),
            "{}",
            db.engine
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Reading a server-sent event stream.

struct EventStream {
    response: tokio::sync::Mutex<reqwest::Response>,
    seen: tokio::sync::Mutex<String>,
}

impl EventStream {
    /// Reads until the text received since the last call contains `needle`; returns that text.
    async fn until_contains(&self, needle: &str, limit: Duration) -> String {
        let mut response = self.response.lock().await;
        let mut seen = self.seen.lock().await;
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(at) = seen.find(needle) {
                // Keep reading from the end of the event that holds the needle.
                let end = seen[at..].find("\n\n").map_or(seen.len(), |e| at + e + 2);
                let taken: String = seen.drain(..end).collect();
                return taken;
            }
            let chunk = tokio::time::timeout_at(deadline, response.chunk())
                .await
                .unwrap_or_else(|_| panic!("no {needle:?} in the stream: {seen}"))
                .expect("stream readable")
                .expect("stream open");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

trait AwaitStream {
    async fn await_stream(self) -> EventStream;
}

impl AwaitStream for reqwest::RequestBuilder {
    async fn await_stream(self) -> EventStream {
        let response = self.send().await.expect("stream opens");
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(
            response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("text/event-stream")
        );
        EventStream {
            response: tokio::sync::Mutex::new(response),
            seen: tokio::sync::Mutex::new(String::new()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The screens: server-rendered pages over the same handlers, checked as a browser would get them.

fn contains(answer: &Answer, needle: &str) -> bool {
    answer.text.contains(needle)
}

#[tokio::test]
async fn console_screens_follow_the_same_rules_as_the_api() {
    let stack = stack().await;
    let id = reception(&stack, "separate_route").await;
    let detail_path = format!("/console/receptions/{id}");

    // Not signed in: every screen sends the browser to sign in, and back here afterwards.
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    for path in [
        "/console",
        detail_path.as_str(),
        "/console/settings",
        "/console/links",
    ] {
        let response = no_redirects
            .get(format!("{}{path}", stack.base))
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status().as_u16(), 303, "{path}");
        let location = response.headers()["location"].to_str().expect("ascii");
        assert!(
            location.starts_with("/console/signin?next=%2Fconsole"),
            "{location}"
        );
    }
    let signin_page = Console::new(&stack.base, &stack.origin())
        .get("/console/signin?next=https://evil.example/")
        .await;
    assert_eq!(signin_page.status, 200);
    assert!(contains(&signin_page, "パスキーでサインイン"));
    assert!(
        contains(&signin_page, "data-next=\"/console\""),
        "foreign next ignored"
    );
    assert!(contains(&signin_page, "data-demo-enrol=\"doctor\""));

    // A medical viewer: the list shows the reception, the detail its eligibility, and the
    // consented tab its data; the tab without consent is refused with its reason.
    let (mut doctor, mut doctor_key) = demo_staff(&stack, "doctor").await;
    let list = doctor.get("/console").await;
    assert_eq!(list.status, 200);
    assert!(contains(&list, &format!("data-reception=\"{id}\"")));
    assert!(!contains(&list, "/console/settings"), "no admin menu");
    assert_eq!(list.headers["cache-control"], "no-store");
    let detail = doctor.get(&detail_path).await;
    assert_eq!(detail.status, 200);
    assert!(contains(&detail, "data-testid=\"patient-name\""));
    let medical = doctor
        .get(&format!("{detail_path}?tab=clinical_medication"))
        .await;
    assert!(
        contains(&medical, "data-testid=\"clinical\""),
        "{}",
        medical.text
    );
    let checkups = doctor.get(&format!("{detail_path}?tab=checkups")).await;
    assert!(contains(&checkups, "data-testid=\"medical-refused\""));
    assert!(contains(&checkups, "not_consented"));
    assert!(!contains(&checkups, "data-testid=\"checkups\""));

    // A general user sees eligibility but never medical information, even by address.
    let (general, _) = demo_staff(&stack, "staff").await;
    let by_address = general
        .get(&format!("{detail_path}?tab=clinical_medication"))
        .await;
    assert_eq!(by_address.status, 200);
    assert!(contains(&by_address, "data-testid=\"patient-name\""));
    assert!(contains(&by_address, "data-testid=\"medical-role-note\""));
    assert!(!contains(&by_address, "data-testid=\"clinical\""));
    for path in ["/console/settings", "/console/accounts", "/console/audit"] {
        let refused = general.get(path).await;
        assert_eq!(refused.status, 403, "{path}");
        assert!(contains(&refused, "role_not_permitted"), "{path}");
    }

    // Administrators: every screen, the print sheet with its QR code and website snippet.
    let (admin, _) = demo_staff(&stack, "admin").await;
    for path in [
        "/console/settings",
        "/console/accounts",
        "/console/audit",
        "/console/links",
    ] {
        let page = admin.get(path).await;
        assert_eq!(page.status, 200, "{path}");
    }
    let links = admin.get("/api/console/links").await;
    let link = links.body[0]["id"]
        .as_str()
        .expect("a demo link")
        .to_owned();
    let url = links.body[0]["url"].as_str().expect("url").to_owned();
    let sheet = admin.get(&format!("/console/links/{link}/sheet")).await;
    assert_eq!(sheet.status, 200);
    assert!(contains(&sheet, "<svg"));
    assert!(contains(&sheet, &url));
    assert!(contains(&sheet, "data:image/svg+xml;base64,"));
    assert!(contains(&sheet, "How to register"));
    let english = admin.get("/console?lang=en").await;
    assert!(contains(&english, "<html lang=\"en\""));
    assert!(contains(&english, "Receptions"));

    // Another institution's administrator does not find this reception.
    let (other, _) = other_institution(&stack).await;
    assert_eq!(other.get(&detail_path).await.status, 404);
    assert_eq!(
        other
            .get(&format!("/console/links/{link}/sheet"))
            .await
            .status,
        404
    );

    // Two days on (the demo clock, administrators of the demo institution only), the window
    // has closed: the doctor signs in again and is refused.
    let hours = |h: i64| json!({ "advance_hours": h });
    assert_eq!(
        general
            .post("/api/console/demo/clock", hours(48))
            .await
            .status,
        403
    );
    assert_eq!(
        other
            .post("/api/console/demo/clock", hours(48))
            .await
            .status,
        403
    );
    assert_eq!(
        admin.post("/api/console/demo/clock", hours(0)).await.status,
        422
    );
    assert_eq!(
        admin
            .post("/api/console/demo/clock", hours(-5))
            .await
            .status,
        422
    );
    let before = stack.state.clock.now_ms();
    let moved = admin.post("/api/console/demo/clock", hours(48)).await;
    assert_eq!(moved.status, 200, "{moved:?}");
    assert!(stack.state.clock.now_ms() - before >= 2 * DAY_MS);
    doctor = signin(&stack, &mut doctor_key).await;
    let closed = doctor
        .get(&format!("{detail_path}?tab=clinical_medication"))
        .await;
    assert!(contains(&closed, "window_closed"), "{}", closed.text);
    assert!(!contains(&closed, "data-testid=\"clinical\""));
}

// ---------------------------------------------------------------------------------------------
// 目視確認 on an institution device: the patient's reception session and the staff member's
// console session on one browser.

/// The certificate of person `no`'s card, read without a PIN (base64url).
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
        .json(&common::patient::choices_for(kind, stack.today()))
        .send()
        .await
        .expect("server answers");
    assert_eq!(chosen.status().as_u16(), 200);
    cookie
}

/// `POST /api/console/visual-check` from the browser holding both sessions.
async fn visual_check(console: &Console, session: &str, body: Value) -> Answer {
    let mut request = console
        .http
        .post(format!("{}/api/console/visual-check", console.base))
        .header("origin", &console.origin)
        .header("x-uketsuke-csrf", "1");
    let cookie = match console.token() {
        Some(token) => format!("uk_session={session}; uk_console={token}"),
        None => format!("uk_session={session}"),
    };
    request = request.header("cookie", cookie);
    console.send(request.json(&body)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn visual_check_needs_a_staff_member_of_the_institution_and_a_kind_that_allows_it() {
    let stack = stack().await;
    // 医療情報閲覧 may by default (issue 12 §7; general staff only when the setting allows).
    let (staff, _) = demo_staff(&stack, "doctor").await;
    let certificate = card_certificate(1, CertificateCase::Valid).await;
    let body = json!({ "certificate": certificate, "face_matches": true });

    // No staff session: refused, nothing registered.
    let session = patient_session(&stack, "house_call").await;
    let anonymous = staff.with_token(None);
    let refused = visual_check(&anonymous, &session, body.clone()).await;
    assert_eq!(refused.status, 401, "{refused:?}");
    // Without the console's CSRF header: refused before anything else.
    let no_header = staff
        .send(
            staff
                .http
                .post(format!("{}/api/console/visual-check", staff.base))
                .header("origin", &staff.origin)
                .header(
                    "cookie",
                    format!(
                        "uk_session={session}; uk_console={}",
                        staff.token().expect("token")
                    ),
                )
                .json(&body),
        )
        .await;
    assert_eq!(no_header.status, 403);
    assert_eq!(no_header.body["error"], "csrf_header_missing");
    // The face not confirmed: refused.
    let unconfirmed = visual_check(
        &staff,
        &session,
        json!({ "certificate": certificate, "face_matches": false }),
    )
    .await;
    assert_eq!(unconfirmed.body["error"], "face_not_confirmed");
    // Another institution's staff member: refused.
    let (stranger, _) = other_institution(&stack).await;
    let foreign = visual_check(&stranger, &session, body.clone()).await;
    assert_eq!(foreign.status, 403);
    assert_eq!(foreign.body["error"], "staff_other_institution");
    // A revoked or expired card, or bytes that are no certificate: refused with the reason.
    for (no, case, code) in [
        (26, CertificateCase::Revoked, "certificate_revoked"),
        (27, CertificateCase::Expired, "certificate_expired"),
    ] {
        let bad = json!({ "certificate": card_certificate(no, case).await, "face_matches": true });
        let answer = visual_check(&staff, &session, bad).await;
        assert_eq!(answer.body["error"], code, "{answer:?}");
    }
    let garbage = json!({ "certificate": "not base64 !", "face_matches": true });
    assert_eq!(
        visual_check(&staff, &session, garbage).await.body["error"],
        "certificate_malformed"
    );
    assert_eq!(stack.backend_registrations().await, 0);

    // Online care never takes a visual check (SPEC §2).
    let online = patient_session(&stack, "online_care").await;
    let answer = visual_check(&staff, &online, body.clone()).await;
    assert_eq!(answer.body["error"], "visual_check_not_allowed");

    // The institution's staff member, a valid card: registered, with who checked the face.
    let accepted = visual_check(&staff, &session, body.clone()).await;
    assert_eq!(accepted.status, 202, "{accepted:?}");
    let id = accepted.body["reception_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let again = visual_check(&staff, &session, body).await;
    assert_eq!(again.body["error"], "already_submitted");
    let mut detail = staff.get(&format!("/api/console/receptions/{id}")).await;
    for _ in 0..400 {
        if detail.body["status"] == "confirmed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        detail = staff.get(&format!("/api/console/receptions/{id}")).await;
    }
    assert_eq!(detail.body["status"], "confirmed", "{detail:?}");
    assert_eq!(detail.body["identity_method"], "visual_check");
    assert_eq!(detail.body["staff_account"], "doctor");
    assert_eq!(stack.backend_registrations().await, 1);
    let audited: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'reception.visual_check' AND target = $1",
    )
    .bind(&id)
    .fetch_one(&stack.state.db)
    .await
    .expect("count");
    assert_eq!(audited, 1);
}

/// 外字 (髙, 﨑), characters outside the BMP (𠮷, 𩸽) and ideographic variation sequences
/// (辻 and 葛 with VS17): the name the backend answers is the name staff see in the day's list,
/// the detail screen (also its print view) and both exports, code point for code point, on
/// SQLite and PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_with_gaiji_and_variation_sequences_survive_every_path() {
    for db in common::engines().await {
        let stack = stack_on(Some(&db.url)).await;
        let (general, _) = demo_staff(&stack, "staff").await;
        let people = population::population(stack.today());
        for name in population::VARIANT_NAMES {
            let person = people
                .iter()
                .find(|p| p.record.name == name)
                .expect("the person is in the population");
            let id = reception_of(&stack, "separate_route", person.no).await;
            let engine = db.engine;
            let same = |what: &str, found: Option<&str>| {
                assert_eq!(
                    found.map(|f| f.chars().map(u32::from).collect::<Vec<_>>()),
                    Some(name.chars().map(u32::from).collect::<Vec<_>>()),
                    "{engine}: {what} of person {}",
                    person.no
                );
            };

            let list = general.get("/api/console/receptions").await;
            let row = list.body["receptions"]
                .as_array()
                .and_then(|rows| rows.iter().find(|r| r["id"] == id.as_str()))
                .cloned()
                .unwrap_or_default();
            same("list row", row["name"].as_str());
            let detail = general.get(&format!("/api/console/receptions/{id}")).await;
            same(
                "detail",
                detail.body["eligibility"]["outcome"]["record"]["name"].as_str(),
            );
            let json_export = general
                .get(&format!("/api/console/receptions/{id}/eligibility.json"))
                .await;
            same(
                "JSON export",
                json_export.body["eligibility"]["outcome"]["record"]["name"].as_str(),
            );
            let csv = general
                .get(&format!("/api/console/receptions/{id}/eligibility.csv"))
                .await;
            let lines: Vec<&str> = csv
                .text
                .trim_start_matches('\u{feff}')
                .split("\r\n")
                .collect();
            let column = lines[0].split(',').position(|h| h == "氏名").expect("氏名");
            same("CSV export", lines[1].split(',').nth(column));
            // The screens (the detail screen is also what staff print) carry the name as text,
            // neither escaped into numeric references nor replaced.
            for path in ["/console".to_owned(), format!("/console/receptions/{id}")] {
                let page = general.get(&path).await;
                assert_eq!(page.status, 200, "{engine}: {path}");
                assert!(
                    page.text.contains(name),
                    "{engine}: {path} shows the name of person {}",
                    person.no
                );
            }
        }
    }
}
