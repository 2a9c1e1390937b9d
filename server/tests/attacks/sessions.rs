//! Issue 12 §6 (and the session part of §5): sessions on shared devices and cookies. Each test
//! performs the attack against a running server, as a browser or a thief with a copy of the
//! database would, and shows it refused:
//!
//! - the database holds no session id or cancel token in clear, and a session's stored key
//!   (the hash) used as a cookie opens nothing;
//! - on an institution device the done screen ends the patient's session (server and cookie);
//! - the cancel token is shown once;
//! - a proven 同意照会 session lapses after five idle minutes (the server's test clock);
//! - two session cookies are refused; production names the cookie `__Host-uk_session`;
//! - the JSON patient API needs its header and refuses `Origin: null`;
//! - the no-JS forms need the session's form token;
//! - the page data has no HTTP endpoint (Leptos server functions were one): a post to their
//!   former address is refused and redirects nowhere, whatever its `Referer`.
//!
//! The attacks that read or change stored sessions run on SQLite and, when
//! `UKETSUKE_TEST_POSTGRES_URL` is set, on PostgreSQL as well.

use reqwest::{StatusCode, header};
use serde_json::{Value, json};
use sqlx::Row;
use uketsuke_backend::simulator::population::CertificateCase;
use uketsuke_server::storage::challenges::session_key;

use crate::common::{
    engines,
    patient::{card_sign, choices_for},
    stack::{Stack, stack},
};

const API_HEADER: &str = "x-uketsuke-csrf";

/// A browser without a cookie jar: every cookie is sent by hand, and redirects are not followed.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// The value of cookie `name` set by `response`.
fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{name}="))?.split(';').next())
        .map(str::to_owned)
}

async fn json_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A session on `link`, started through the API as the app does; returns the cookie's value.
async fn start(stack: &Stack, link: &str, cookie_name: &str) -> String {
    let response = client()
        .post(format!("{}/api/r/{link}/session", stack.base))
        .header(API_HEADER, "1")
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::CREATED);
    set_cookie(&response, cookie_name).expect("session cookie")
}

/// Sends `request` with the API header and the session cookie `uk_session=<token>`.
async fn api(request: reqwest::RequestBuilder, token: &str) -> (u16, Value) {
    json_of(
        request
            .header(API_HEADER, "1")
            .header(header::COOKIE, format!("uk_session={token}"))
            .send()
            .await
            .expect("answers"),
    )
    .await
}

/// The whole reception of person `no` on the `kind` link with session `token`, until the backend
/// answered; returns the cancel token of the registration's answer.
async fn register_settled(stack: &Stack, kind: &str, token: &str, no: u32) -> String {
    let http = client();
    let (status, body) = api(
        http.put(format!("{}/api/session/choices", stack.base))
            .json(&choices_for(kind, stack.today())),
        token,
    )
    .await;
    assert_eq!(status, 200, "{body:?}");
    let (status, challenge) = api(
        http.post(format!("{}/api/session/challenge", stack.base)),
        token,
    )
    .await;
    assert_eq!(status, 200, "{challenge:?}");
    let message = challenge["message"].as_str().expect("message");
    let (certificate, signature) = card_sign(no, CertificateCase::Valid, message).await;
    let (status, accepted) = api(
        http.post(format!("{}/api/session/registration", stack.base))
            .json(&json!({
                "challenge": challenge["challenge"],
                "origin": stack.origin(),
                "certificate": certificate,
                "signature": signature,
            })),
        token,
    )
    .await;
    assert_eq!(status, 202, "{accepted:?}");
    for _ in 0..400 {
        let (_, reception) = api(
            http.get(format!("{}/api/session/reception", stack.base)),
            token,
        )
        .await;
        if reception["status"] != "queued" {
            assert_eq!(reception["status"], "confirmed", "{reception:?}");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    accepted["cancel_token"]
        .as_str()
        .expect("cancel token")
        .to_owned()
}

/// Every text value of `columns` in `table`, for a search of the whole row set.
async fn texts(stack: &Stack, table: &str, columns: &[&str]) -> Vec<String> {
    let rows = sqlx::query(&format!("SELECT {} FROM {table}", columns.join(", ")))
        .fetch_all(&stack.state.db)
        .await
        .expect("read");
    let mut out = Vec::new();
    for row in rows {
        for column in columns {
            if let Ok(Some(text)) = row.try_get::<Option<String>, _>(*column) {
                out.push(text);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_holds_no_session_id_or_cancel_token_and_its_hashes_open_nothing() {
    for db in engines().await {
        the_database_holds_no_session_id_or_cancel_token_and_its_hashes_open_nothing_on(&db.url)
            .await;
    }
}

async fn the_database_holds_no_session_id_or_cancel_token_and_its_hashes_open_nothing_on(
    url: &str,
) {
    let stack = stack(Some(url), None).await;
    let link = stack.link("online_care");
    let token = start(&stack, &link, "uk_session").await;
    let cancel = register_settled(&stack, "online_care", &token, 3).await;

    let stored = [
        texts(
            &stack,
            "reception_sessions",
            &["id", "link_id", "reception_id", "cancel_token_sealed"],
        )
        .await,
        texts(&stack, "challenges", &["value", "session_id"]).await,
        texts(
            &stack,
            "receptions",
            &["id", "session_id", "cancel_token_sha256", "card_ref"],
        )
        .await,
    ]
    .concat();
    assert!(stored.len() >= 6, "rows were read: {stored:?}");
    for value in &stored {
        assert!(!value.contains(&token), "the session id is stored in clear");
        assert!(
            !value.contains(&cancel),
            "the cancel token is stored in clear"
        );
    }
    let key = session_key(&token).expect("key");
    assert!(
        stored.contains(&key),
        "the session is stored under its hash"
    );

    // A thief with a copy of the database presents the stored key as the cookie.
    let http = client();
    let (status, body) = api(
        http.get(format!("{}/api/session/reception", stack.base)),
        &key,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("session_expired"))
    );
    // …or the sealed cancel token, or its hash, as a cancel token.
    let row = sqlx::query("SELECT cancel_token_sealed FROM reception_sessions WHERE id = $1")
        .bind(&key)
        .fetch_one(&stack.state.db)
        .await
        .expect("row");
    let sealed: Option<String> = row.try_get("cancel_token_sealed").expect("column");
    let hashed = uketsuke_server::storage::receptions::sha256_hex(cancel.as_bytes());
    for stolen in sealed.into_iter().chain([hashed]) {
        let (status, body) = api(
            http.post(format!("{}/api/cancel", stack.base))
                .json(&json!({ "token": stolen })),
            "",
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (404, Some("cancel_token_unknown"))
        );
    }
    // The patient's own values still work.
    let (status, _) = api(
        http.get(format!("{}/api/session/reception", stack.base)),
        &token,
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cancel_token_is_shown_once() {
    for db in engines().await {
        the_cancel_token_is_shown_once_on(&db.url).await;
    }
}

async fn the_cancel_token_is_shown_once_on(url: &str) {
    let stack = stack(Some(url), None).await;
    let link = stack.link("online_care");
    let token = start(&stack, &link, "uk_session").await;
    let cancel = register_settled(&stack, "online_care", &token, 3).await;
    let page = |token: String| {
        let url = format!("{}/r/{link}/done", stack.base);
        async move {
            let response = client()
                .get(url)
                .header(header::COOKIE, format!("uk_session={token}"))
                .send()
                .await
                .expect("page");
            assert_eq!(response.status(), StatusCode::OK);
            response.text().await.expect("html")
        }
    };
    let first = page(token.clone()).await;
    assert!(
        first.contains("data-testid=\"reception-number\""),
        "the done screen"
    );
    assert!(
        first.contains(&format!("/cancel/{cancel}")),
        "shown the first time"
    );
    let second = page(token.clone()).await;
    assert!(
        second.contains("data-testid=\"reception-number\""),
        "still the done screen"
    );
    assert!(!second.contains(&cancel), "not shown a second time");
    // The token itself still cancels.
    let (status, body) = api(
        client()
            .post(format!("{}/api/cancel", stack.base))
            .json(&json!({ "token": cancel })),
        &token,
    )
    .await;
    assert_eq!(
        (status, body["withdrawn"].as_bool()),
        (200, Some(true)),
        "{body:?}"
    );
}

/// A staff member of the demo institution signed in on this device: the console cookie's value.
async fn staff_on_device(stack: &Stack, link: &str) -> String {
    let db = &stack.state.db;
    let row = sqlx::query("SELECT institution_id FROM reception_links WHERE id = $1")
        .bind(link)
        .fetch_one(db)
        .await
        .expect("link");
    let institution: String = row.try_get("institution_id").expect("institution");
    let now = stack.state.clock.now_ms();
    sqlx::query(
        "INSERT INTO staff_accounts (id, institution_id, login_id, name, kana, role, start_date, \
                                     user_handle, created_at, updated_at) \
         VALUES ('attack-staff', $1, 'desk9', '受付 花子', 'ウケツケ ハナコ', 'general', \
                 '2000-01-01', 'attack-staff-handle', $2, $2)",
    )
    .bind(&institution)
    .bind(now)
    .execute(db)
    .await
    .expect("staff account");
    let mut tx = db.begin().await.expect("tx");
    let token =
        uketsuke_server::console::session::create_in(&mut tx, "attack-staff", "test-passkey", now)
            .await
            .expect("console session");
    tx.commit().await.expect("commit");
    token
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_done_screen_on_an_institution_device_ends_the_patients_session() {
    for db in engines().await {
        the_done_screen_on_an_institution_device_ends_the_patients_session_on(&db.url).await;
    }
}

async fn the_done_screen_on_an_institution_device_ends_the_patients_session_on(url: &str) {
    let stack = stack(Some(url), None).await;
    let link = stack.link("online_care");
    let staff = staff_on_device(&stack, &link).await;
    let token = start(&stack, &link, "uk_session").await;
    register_settled(&stack, "online_care", &token, 3).await;

    // The done screen reloads itself while the eligibility that follows the confirmation is
    // on its way (a busy machine); the session ends with the first showing after it is settled.
    let mut cleared = false;
    let mut html = String::new();
    for _ in 0..400 {
        let response = client()
            .get(format!("{}/r/{link}/done", stack.base))
            .header(
                header::COOKIE,
                format!("uk_session={token}; uk_console={staff}"),
            )
            .send()
            .await
            .expect("page");
        assert_eq!(response.status(), StatusCode::OK);
        cleared = response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.starts_with("uk_session=;") && v.contains("Max-Age=0"));
        html = response.text().await.expect("html");
        if cleared {
            break;
        }
        assert!(
            html.contains("http-equiv=\"refresh\""),
            "a done screen that keeps the session reloads itself"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(cleared, "the response drops the session cookie");
    assert!(
        html.contains("data-testid=\"reception-number\""),
        "the done screen was shown"
    );

    // The next person at the device, with the old cookie (a browser that kept it, the back
    // button), finds nothing: the server ended the session.
    let (status, body) = api(
        client().get(format!("{}/api/session/reception", stack.base)),
        &token,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("session_expired"))
    );
    let left = sqlx::query("SELECT COUNT(*) AS n FROM reception_sessions WHERE id = $1")
        .bind(session_key(&token).expect("key"))
        .fetch_one(&stack.state.db)
        .await
        .expect("count");
    assert_eq!(left.try_get::<i64, _>("n").expect("n"), 0);
    let again = client()
        .get(format!("{}/r/{link}/done", stack.base))
        .header(header::COOKIE, format!("uk_session={token}"))
        .send()
        .await
        .expect("page");
    assert_eq!(
        again.status(),
        StatusCode::GONE,
        "the page says the session is gone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_proof_of_the_card_lapses_after_five_minutes() {
    for db in engines().await {
        an_idle_proof_of_the_card_lapses_after_five_minutes_on(&db.url).await;
    }
}

async fn an_idle_proof_of_the_card_lapses_after_five_minutes_on(url: &str) {
    let stack = stack(Some(url), None).await;
    let link = stack.link("online_care");
    let token = start(&stack, &link, "uk_session").await;
    let http = client();
    let (status, challenge) = api(
        http.post(format!("{}/api/session/manage/challenge", stack.base)),
        &token,
    )
    .await;
    assert_eq!(status, 200, "{challenge:?}");
    let message = challenge["message"].as_str().expect("message");
    let (certificate, signature) = card_sign(3, CertificateCase::Valid, message).await;
    let (status, body) = api(
        http.post(format!("{}/api/session/manage/proof", stack.base))
            .json(&json!({
                "challenge": challenge["challenge"],
                "origin": stack.origin(),
                "certificate": certificate,
                "signature": signature,
            })),
        &token,
    )
    .await;
    assert_eq!(status, 200, "{body:?}");
    let list = || {
        api(
            http.get(format!("{}/api/session/manage", stack.base)),
            &token,
        )
    };
    // Used every four minutes, the proof stays (eight minutes after it was made).
    for _ in 0..2 {
        stack.state.clock.advance_ms(4 * 60 * 1000);
        let (status, body) = list().await;
        assert_eq!(status, 200, "{body:?}");
    }
    // Left for five minutes, it lapses: the list is refused, and stays refused.
    stack.state.clock.advance_ms(5 * 60 * 1000);
    let (status, body) = list().await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("card_proof_idle"))
    );
    let (status, body) = list().await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("card_not_proven"))
    );
    let (status, body) = api(
        http.post(format!("{}/api/session/manage/withdraw-all", stack.base)),
        &token,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("card_not_proven"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_session_cookies_are_refused() {
    let stack = stack(None, None).await;
    let link = stack.link("online_care");
    let mine = start(&stack, &link, "uk_session").await;
    let planted = start(&stack, &link, "uk_session").await;
    for cookies in [
        format!("uk_session={planted}; uk_session={mine}"),
        format!("uk_session={mine}; __Host-uk_session={planted}"),
    ] {
        for path in [
            "/api/session/reception".to_owned(),
            format!("/r/{link}/consent"),
        ] {
            let response = client()
                .get(format!("{}{path}", stack.base))
                .header(API_HEADER, "1")
                .header(header::COOKIE, &cookies)
                .send()
                .await
                .expect("answers");
            let drops = response
                .headers()
                .get_all(header::SET_COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .any(|v| v.starts_with("uk_session=;") && v.contains("Max-Age=0"));
            let (status, body) = json_of(response).await;
            assert_eq!(
                (status, body["error"].as_str()),
                (400, Some("session_cookie_duplicate")),
                "{path} with {cookies}"
            );
            assert!(drops, "the browser is told to drop them");
        }
    }
    // The same cookie sent in two `Cookie` headers counts twice as well.
    let response = client()
        .get(format!("{}/api/session/reception", stack.base))
        .header(API_HEADER, "1")
        .header(header::COOKIE, format!("uk_session={mine}"))
        .header(header::COOKIE, format!("uk_session={planted}"))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_https_the_session_cookie_is_host_prefixed_and_the_plain_name_is_ignored() {
    let stack = stack(None, Some("https://clinic.example")).await;
    let link = stack.link("online_care");
    let response = client()
        .post(format!("{}/api/r/{link}/session", stack.base))
        .header(API_HEADER, "1")
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::CREATED);
    let set = response
        .headers()
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .expect("set-cookie")
        .to_owned();
    assert!(set.starts_with("__Host-uk_session="), "{set}");
    for attribute in ["; Secure", "; Path=/", "; HttpOnly", "; SameSite=Strict"] {
        assert!(set.contains(attribute), "{set}");
    }
    assert!(!set.to_ascii_lowercase().contains("domain="), "{set}");
    let token = set_cookie(&response, "__Host-uk_session").expect("value");
    let read = |cookie: String| {
        let url = format!("{}/api/session/reception", stack.base);
        async move {
            json_of(
                client()
                    .get(url)
                    .header(API_HEADER, "1")
                    .header(header::COOKIE, cookie)
                    .send()
                    .await
                    .expect("answers"),
            )
            .await
        }
    };
    // The prefixed cookie opens the session (nothing submitted yet)…
    let (status, body) = read(format!("__Host-uk_session={token}")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("not_submitted"))
    );
    // …the same value under the plain name (which a sibling subdomain could plant) does not.
    let (status, body) = read(format!("uk_session={token}")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("session_missing"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_patient_api_needs_its_header_and_refuses_origin_null() {
    let stack = stack(None, None).await;
    let link = stack.link("online_care");
    let token = start(&stack, &link, "uk_session").await;
    let http = client();
    let calls = || {
        [
            http.post(format!("{}/api/r/{link}/session", stack.base)),
            http.put(format!("{}/api/session/choices", stack.base))
                .json(&choices_for("online_care", stack.today())),
            http.post(format!("{}/api/session/challenge", stack.base)),
            http.get(format!("{}/api/session/reception", stack.base)),
            http.post(format!("{}/api/cancel", stack.base))
                .json(&json!({ "token": "0123456789abcdefghjkmnpqrs" })),
            http.post(format!("{}/api/session/manage/challenge", stack.base)),
            http.get(format!("{}/api/session/manage", stack.base)),
            http.post(format!("{}/api/session/manage/withdraw-all", stack.base)),
        ]
    };
    // A form or a link of another site cannot add a header: without it, nothing happens.
    for request in calls() {
        let (status, body) = json_of(
            request
                .header(header::COOKIE, format!("uk_session={token}"))
                .send()
                .await
                .expect("answers"),
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (403, Some("api_header_missing"))
        );
    }
    // A sandboxed frame or a `data:` page sends `Origin: null`: refused even with the header.
    for request in calls() {
        let (status, body) = json_of(
            request
                .header(API_HEADER, "1")
                .header(header::ORIGIN, "null")
                .header(header::COOKIE, format!("uk_session={token}"))
                .send()
                .await
                .expect("answers"),
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (403, Some("foreign_origin"))
        );
    }
    // Our own origin with the header is served.
    let (status, body) = json_of(
        http.put(format!("{}/api/session/choices", stack.base))
            .json(&choices_for("online_care", stack.today()))
            .header(API_HEADER, "1")
            .header(header::ORIGIN, stack.origin())
            .header(header::COOKIE, format!("uk_session={token}"))
            .send()
            .await
            .expect("answers"),
    )
    .await;
    assert_eq!(status, 200, "{body:?}");
}

/// The form token the consent page of session `token` writes into its form.
async fn page_form_token(stack: &Stack, link: &str, token: &str) -> String {
    let html = client()
        .get(format!("{}/r/{link}/consent", stack.base))
        .header(header::COOKIE, format!("uk_session={token}"))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    let marker = "name=\"form_token\" value=\"";
    let at = html.find(marker).expect("the form carries its token") + marker.len();
    html[at..].split('"').next().expect("value").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_post_needs_the_sessions_form_token() {
    for db in engines().await {
        a_form_post_needs_the_sessions_form_token_on(&db.url).await;
    }
}

async fn a_form_post_needs_the_sessions_form_token_on(url: &str) {
    let stack = stack(Some(url), None).await;
    let link = stack.link("online_care");
    let victim = start(&stack, &link, "uk_session").await;
    let attacker = start(&stack, &link, "uk_session").await;
    let right = page_form_token(&stack, &link, &victim).await;
    let wrong = page_form_token(&stack, &link, &attacker).await;
    assert_ne!(right, wrong);
    let today = stack.today().format("%Y-%m-%d").to_string();
    let post = |token: Option<&str>, origin: Option<&str>| {
        let mut form = vec![
            ("visit_date", today.clone()),
            ("clinical_medication", "yes".to_owned()),
            ("checkups", "yes".to_owned()),
            ("prescription_method", "electronic".to_owned()),
        ];
        if let Some(token) = token {
            form.push(("form_token", token.to_owned()));
        }
        let mut request = client()
            .post(format!("{}/r/{link}/consent", stack.base))
            .header(header::COOKIE, format!("uk_session={victim}"))
            .form(&form);
        if let Some(origin) = origin {
            request = request.header(header::ORIGIN, origin);
        }
        request.send()
    };
    let stored = || async {
        sqlx::query("SELECT visit_date FROM reception_sessions WHERE id = $1")
            .bind(session_key(&victim).expect("key"))
            .fetch_one(&stack.state.db)
            .await
            .expect("row")
            .try_get::<Option<String>, _>("visit_date")
            .expect("column")
    };
    for (token, origin) in [
        (None, None),
        (Some(wrong.as_str()), None),
        (Some(""), None),
        (Some(right.as_str()), Some("null")),
    ] {
        let response = post(token, origin).await.expect("answers");
        assert_eq!(
            response.status(),
            StatusCode::FORBIDDEN,
            "{token:?} {origin:?}"
        );
        assert_eq!(stored().await, None, "nothing was recorded");
    }
    let response = post(Some(&right), Some(&stack.origin()))
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        response
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok()),
        Some(format!("/r/{link}/review").as_str())
    );
    assert_eq!(stored().await, Some(today));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_to_a_former_server_function_is_refused_and_redirects_nowhere() {
    let stack = stack(None, None).await;
    let link = stack.link("online_care");
    let post = |path: &'static str, referer: String| {
        client()
            .post(format!("{}{path}", stack.base))
            .header(header::ACCEPT, "text/html")
            .header(header::REFERER, referer)
            .form(&[("link_id", link.clone())])
            .send()
    };
    for path in [
        "/api/landing",
        "/api/flow",
        "/api/manage-flow",
        "/api/cancel-view",
    ] {
        for referer in [
            format!("{}/r/{link}", stack.origin()),
            "https://evil.example/phish".to_owned(),
            "//evil.example/".to_owned(),
            format!("{}.evil.example/", stack.origin()),
        ] {
            let response = post(path, referer.clone()).await.expect("answers");
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path} {referer}");
            assert_eq!(response.headers().get(header::LOCATION), None, "{path}");
            let body = response.text().await.expect("body");
            assert!(!body.contains("online_care"), "{path}: {body}");
        }
    }
}

/// The staff console's cookie follows the patient's: over https only `__Host-uk_console` opens
/// the session (a plain `uk_console`, which a sibling subdomain could plant, is ignored), and a
/// request carrying two is refused, so a planted second session cannot turn a ward laptop into
/// another institution's device.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_https_the_console_cookie_is_host_prefixed_and_one_only() {
    let stack = stack(None, Some("https://clinic.example")).await;
    let token = staff_on_device(&stack, &stack.link("online_care")).await;
    let me = |cookie: String| {
        let url = format!("{}/api/console/me", stack.base);
        async move {
            client()
                .get(url)
                .header(header::COOKIE, cookie)
                .send()
                .await
                .expect("answers")
                .status()
        }
    };
    assert_eq!(
        me(format!("__Host-uk_console={token}")).await,
        StatusCode::OK
    );
    assert_eq!(
        me(format!("uk_console={token}")).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        me(format!(
            "__Host-uk_console={token}; __Host-uk_console={token}"
        ))
        .await,
        StatusCode::UNAUTHORIZED
    );
}

/// The console's state-changing routes refuse `Origin: null` (a sandboxed frame or a `data:`
/// page of another site) even with the custom header; our own origin is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_refuses_origin_null() {
    let stack = stack(None, None).await;
    let token = staff_on_device(&stack, &stack.link("online_care")).await;
    let signout = |origin: String| {
        let url = format!("{}/api/console/signout", stack.base);
        let cookie = format!("uk_console={token}");
        async move {
            json_of(
                client()
                    .post(url)
                    .header(API_HEADER, "1")
                    .header(header::ORIGIN, origin)
                    .header(header::COOKIE, cookie)
                    .json(&json!({}))
                    .send()
                    .await
                    .expect("answers"),
            )
            .await
        }
    };
    let (status, body) = signout("null".to_owned()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("origin_refused"))
    );
    let (status, _) = signout(stack.origin()).await;
    assert!((200..300).contains(&status), "our own origin: {status}");
}

/// Two `Origin` headers (ours first, then another site's) are refused by the patient API and
/// the console alike: only the first was read before, and no browser sends two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_origin_headers_are_refused() {
    let stack = stack(None, None).await;
    let link = stack.link("online_care");
    let token = staff_on_device(&stack, &link).await;
    let twice = |request: reqwest::RequestBuilder| {
        request
            .header(API_HEADER, "1")
            .header(header::ORIGIN, stack.origin())
            .header(header::ORIGIN, "https://evil.example")
    };
    let (status, body) = json_of(
        twice(client().post(format!("{}/api/r/{link}/session", stack.base)))
            .send()
            .await
            .expect("answers"),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("foreign_origin"))
    );
    let (status, body) = json_of(
        twice(client().post(format!("{}/api/console/signout", stack.base)))
            .header(header::COOKIE, format!("uk_console={token}"))
            .json(&json!({}))
            .send()
            .await
            .expect("answers"),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("origin_refused"))
    );
}
