//! The institution API (`/api/v1/…`) as a booking system uses it, on SQLite and PostgreSQL:
//! `Idempotency-Key` on create (per token, 24 hours, concurrent retries), 409 for a kind the
//! clinic switched off, refusals that name the field and say why, listing and finding links by
//! booking reference, and the reception ids a レセコン records home visits with. The document
//! itself is checked against a live server by `scripts/contract-test.sh` (Schemathesis).

mod common;

use common::patient::{Patient, register};
use common::stack::Stack;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uketsuke_server::storage::{self, tokens::Scope};

const DAY_MS: i64 = 24 * 3600 * 1000;

/// The demo clinic's 医療機関等コード (the simulator's demo key).
fn demo_code() -> String {
    uketsuke_backend::simulator::keys::institution_code(
        uketsuke_backend::simulator::keys::DEMO_CLINIC,
    )
    .as_str()
    .to_owned()
}

struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

struct Answer {
    status: StatusCode,
    replayed: bool,
    body: Value,
}

impl Answer {
    fn error(&self) -> Option<&str> {
        self.body["error"].as_str()
    }
    fn field(&self) -> Option<&str> {
        self.body["field"].as_str()
    }
    fn message(&self) -> &str {
        self.body["message"].as_str().unwrap_or_default()
    }
}

impl Api {
    async fn new(stack: &Stack, scopes: &[Scope]) -> Api {
        let state = &stack.state;
        let demo = storage::institutions::id_by_code(&state.db, &demo_code())
            .await
            .expect("read")
            .expect("demo institution");
        let now = state.clock.now_ms();
        let (_, token) = storage::tokens::create_with(
            &state.db,
            &demo,
            "booking",
            scopes,
            now + storage::tokens::DEFAULT_LIFETIME_MS,
            now,
        )
        .await
        .expect("token");
        Api {
            http: reqwest::Client::new(),
            base: stack.base.clone(),
            token,
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let answer = request
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("answer");
        let status = answer.status();
        let replayed = answer
            .headers()
            .get("idempotent-replayed")
            .is_some_and(|v| v == "true");
        let text = answer.text().await.expect("body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON body, got {text:?}"))
        };
        Answer {
            status,
            replayed,
            body,
        }
    }

    async fn create(&self, key: Option<&str>, body: Value) -> Answer {
        let mut request = self
            .http
            .post(format!("{}/api/v1/links", self.base))
            .json(&body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        self.send(request).await
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(self.http.get(format!("{}/api/v1{path}", self.base)))
            .await
    }

    async fn post(&self, path: &str, body: Value) -> Answer {
        self.send(
            self.http
                .post(format!("{}/api/v1{path}", self.base))
                .json(&body),
        )
        .await
    }
}

/// A stack on each engine (SQLite, and PostgreSQL when the cluster is given), with the
/// database's handle kept alive beside it.
async fn stacks() -> Vec<(common::TestDb, Stack)> {
    let mut out = Vec::new();
    for db in common::engines().await {
        let stack = common::stack::stack(Some(&db.url), None).await;
        out.push((db, stack));
    }
    out
}

/// Links made through the API so far.
async fn links_made(stack: &Stack) -> i64 {
    let row: (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM reception_links WHERE created_by_token IS NOT NULL")
            .fetch_one(&stack.state.db)
            .await
            .expect("count");
    row.0
}

/// A retried create with the same key and request gets the same link; with another request, a
/// refusal naming the header; another token's same key is its own; a key lives 24 hours;
/// concurrent retries make one link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_with_an_idempotency_key_makes_one_link() {
    for (db, stack) in stacks().await {
        eprintln!("engine: {}", db.engine);
        let api = Api::new(&stack, &[Scope::LinksStanding, Scope::LinksAppointment]).await;
        let other = Api::new(&stack, &[Scope::LinksStanding]).await;
        let body = json!({ "kind": "home_visit", "booking_ref": "K-1", "label": "田中様" });

        let first = api.create(Some("booking-1/attempt"), body.clone()).await;
        assert_eq!(first.status, 201, "{:?}", first.body);
        assert!(!first.replayed);
        let id = first.body["id"].as_str().expect("id").to_owned();
        // The same request spelled differently is the same request.
        let again = api
            .create(
                Some("booking-1/attempt"),
                json!({ "label": "田中様", "booking_ref": "K-1", "kind": "home_visit", "visit_date": null }),
            )
            .await;
        assert_eq!(again.status, 201, "{:?}", again.body);
        assert!(again.replayed);
        assert_eq!(again.body["id"], id.as_str());
        assert_eq!(again.body, first.body);
        assert_eq!(links_made(&stack).await, 1);

        let changed = api
            .create(
                Some("booking-1/attempt"),
                json!({ "kind": "home_visit", "booking_ref": "K-2" }),
            )
            .await;
        assert_eq!(changed.status, 422);
        assert_eq!(changed.error(), Some("idempotency_key_reused"));
        assert_eq!(changed.field(), Some("Idempotency-Key"));
        assert_eq!(links_made(&stack).await, 1);

        // Keys belong to their token.
        let theirs = other.create(Some("booking-1/attempt"), body.clone()).await;
        assert_eq!(theirs.status, 201);
        assert!(!theirs.replayed);
        assert_ne!(theirs.body["id"], id.as_str());
        // Without a key, every create makes a link.
        assert_eq!(api.create(None, body.clone()).await.status, 201);
        assert_eq!(links_made(&stack).await, 3);

        for bad in ["with space", "予約", &"k".repeat(256)] {
            let answer = api
                .send(
                    api.http
                        .post(format!("{}/api/v1/links", api.base))
                        .header(
                            "Idempotency-Key",
                            reqwest::header::HeaderValue::from_bytes(bad.as_bytes())
                                .expect("header"),
                        )
                        .json(&body),
                )
                .await;
            assert_eq!(answer.status, 422, "{bad:?}");
            assert_eq!(answer.error(), Some("idempotency_key_invalid"));
            assert_eq!(answer.field(), Some("Idempotency-Key"));
        }

        // Concurrent retries of one request: one link, every answer names it.
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let http = api.http.clone();
            let url = format!("{}/api/v1/links", api.base);
            let token = api.token.clone();
            tasks.push(tokio::spawn(async move {
                let answer = http
                    .post(url)
                    .bearer_auth(token)
                    .header("Idempotency-Key", "race")
                    .json(&json!({ "kind": "house_call" }))
                    .send()
                    .await
                    .expect("answer");
                assert_eq!(answer.status(), 201);
                let body: Value = answer.json().await.expect("json");
                body["id"].as_str().expect("id").to_owned()
            }));
        }
        let mut ids = Vec::new();
        for task in tasks {
            ids.push(task.await.expect("task"));
        }
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 1, "{ids:?}");
        assert_eq!(links_made(&stack).await, 4);

        // After 24 hours the key is forgotten (and swept): the same request makes a new link.
        stack.state.clock.advance_ms(DAY_MS + 1);
        let later = api.create(Some("booking-1/attempt"), body.clone()).await;
        assert_eq!(later.status, 201);
        assert!(!later.replayed);
        assert_ne!(later.body["id"], id.as_str());
        uketsuke_server::sweeper::sweep(&stack.state.db, stack.state.clock.now_ms())
            .await
            .expect("sweep");
        // The other token's key and "race" expired and are gone; the renewed key lives on.
        let kept: Vec<(String,)> =
            sqlx::query_as("SELECT idempotency_key FROM api_idempotency_keys")
                .fetch_all(&stack.state.db)
                .await
                .expect("keys");
        assert_eq!(kept, [("booking-1/attempt".to_owned(),)]);
    }
}

/// A kind the institution switched off (オンライン診療等・外来診療等（通常とは異なる動線）機能)
/// is 409 `kind_switched_off` naming `kind`; other kinds are still made; on again, it is made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switched_off_kind_is_409() {
    for (db, stack) in stacks().await {
        eprintln!("engine: {}", db.engine);
        let api = Api::new(&stack, &[Scope::LinksStanding, Scope::LinksAppointment]).await;
        let switch = |on: bool| {
            sqlx::query("UPDATE institutions SET accepts_remote = $1 WHERE code = $2")
                .bind(i64::from(on))
                .bind(demo_code())
                .execute(&stack.state.db)
        };
        switch(false).await.expect("switch off");
        let today = stack.today().to_string();
        for kind in ["online_care", "separate_route"] {
            let refused = api
                .create(Some(kind), json!({ "kind": kind, "visit_date": today }))
                .await;
            assert_eq!(refused.status, 409, "{kind}: {:?}", refused.body);
            assert_eq!(refused.error(), Some("kind_switched_off"));
            assert_eq!(refused.field(), Some("kind"));
            assert!(refused.message().contains("switched"));
        }
        assert_eq!(links_made(&stack).await, 0);
        for kind in [
            "device_failure",
            "home_visit",
            "house_call",
            "eligibility_only",
        ] {
            assert_eq!(api.create(None, json!({ "kind": kind })).await.status, 201);
        }
        switch(true).await.expect("switch on");
        // The refused key made nothing: the same key now makes the link.
        let made = api
            .create(
                Some("online_care"),
                json!({ "kind": "online_care", "visit_date": today }),
            )
            .await;
        assert_eq!(made.status, 201, "{:?}", made.body);
    }
}

/// Every refusal is `{"error", "message"}`, and a refusal about one part of the request names
/// it in `field`, with the reason in `message`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_name_the_field_and_the_reason() {
    let stack = common::stack::stack(None, None).await;
    let api = Api::new(&stack, &Scope::ALL).await;
    let yesterday = stack.today().pred_opt().expect("date").to_string();
    let too_far = (stack.today() + chrono::Days::new(91)).to_string();
    let cases: Vec<(Value, &str, &str, &str)> = vec![
        (
            json!({ "kind": "nope" }),
            "body_invalid",
            "kind",
            "unknown variant",
        ),
        (json!({}), "body_invalid", "kind", "missing field"),
        (
            json!({ "kind": "home_visit", "colour": "red" }),
            "body_invalid",
            "colour",
            "unknown field",
        ),
        (
            json!({ "kind": "home_visit", "visit_date": "2026-13-01" }),
            "body_invalid",
            "visit_date",
            "",
        ),
        (
            json!({ "kind": "home_visit", "label": 7 }),
            "body_invalid",
            "label",
            "invalid type",
        ),
        (
            json!({ "kind": "home_visit", "visit_date": yesterday }),
            "visit_date_past",
            "visit_date",
            "before today",
        ),
        (
            json!({ "kind": "online_care", "visit_date": too_far }),
            "visit_date_too_far",
            "visit_date",
            "90 days",
        ),
        (
            json!({ "kind": "home_visit", "expires_at": "2001-01-01T00:00:00Z" }),
            "expires_at_past",
            "expires_at",
            "future",
        ),
        (
            json!({ "kind": "home_visit", "booking_ref": "x".repeat(101) }),
            "text_invalid",
            "booking_ref",
            "100",
        ),
        (
            json!({ "kind": "home_visit", "label": "a\u{202e}b" }),
            "text_bidi_control",
            "label",
            "bidirectional",
        ),
    ];
    for (body, code, field, reason) in cases {
        let answer = api.create(None, body.clone()).await;
        assert_eq!(answer.status, 422, "{body}");
        assert_eq!(answer.error(), Some(code), "{body}: {:?}", answer.body);
        assert_eq!(answer.field(), Some(field), "{body}: {:?}", answer.body);
        assert!(
            answer.message().contains(reason) && !answer.message().is_empty(),
            "{body}: {:?}",
            answer.body
        );
    }
    let not_json = api
        .send(
            api.http
                .post(format!("{}/api/v1/links", api.base))
                .header("content-type", "text/plain")
                .body(r#"{"kind":"home_visit"}"#),
        )
        .await;
    assert_eq!(not_json.status, 422);
    assert_eq!(not_json.field(), Some("Content-Type"));
    let broken = api
        .send(
            api.http
                .post(format!("{}/api/v1/links", api.base))
                .header("content-type", "application/json")
                .body(r#"{"kind":"home_visit""#),
        )
        .await;
    assert_eq!(broken.status, 422);
    assert_eq!(broken.error(), Some("body_invalid"));
    assert!(broken.message().contains("EOF"), "{:?}", broken.body);

    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("cursor=junk", "cursor"),
        ("limit=5&limit=6", "limit"),
    ] {
        let answer = api.get(&format!("/links?{query}")).await;
        assert_eq!(answer.status, 422, "{query}");
        assert_eq!(answer.error(), Some("query_invalid"));
        assert_eq!(answer.field(), Some(field), "{query}");
        assert!(answer.message().starts_with(field), "{:?}", answer.body);
    }

    let visit = api
        .post(
            "/receptions/0000000000000000000000000a/home-visits",
            json!({ "visit_date": "soon" }),
        )
        .await;
    assert_eq!(visit.status, 422);
    assert_eq!(visit.field(), Some("visit_date"));

    // Refusals without a field still carry a message.
    let unknown = api.get("/links/0000000000000000000000000a").await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.error(), Some("link_unknown"));
    assert!(!unknown.message().is_empty());
    assert_eq!(unknown.field(), None);
    let anonymous = reqwest::get(format!("{}/api/v1/links", stack.base))
        .await
        .expect("answer");
    assert_eq!(anonymous.status(), 401);
    let body: Value = anonymous.json().await.expect("json");
    assert_eq!(body["error"], "token_missing");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("Bearer"))
    );
}

/// A booking system lists the links it made, finds them by its own reference, pages through
/// them, and finds the reception made through a link, whose id records home visits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_are_listed_and_found_by_booking_reference() {
    for (db, stack) in stacks().await {
        eprintln!("engine: {}", db.engine);
        let api = Api::new(
            &stack,
            &[
                Scope::LinksAppointment,
                Scope::LinksStanding,
                Scope::HomeVisitsWrite,
            ],
        )
        .await;
        let other = Api::new(&stack, &[Scope::LinksStanding]).await;
        let today = stack.today().to_string();
        let mut made = Vec::new();
        for reference in ["P-100", "P-200", "P-100"] {
            let answer = api
                .create(
                    None,
                    json!({ "kind": "home_visit", "visit_date": today, "booking_ref": reference }),
                )
                .await;
            assert_eq!(answer.status, 201);
            made.push(answer.body["id"].as_str().expect("id").to_owned());
            // Distinct instants keep the order "newest first" unambiguous.
            stack.state.clock.advance_ms(1);
        }
        assert_eq!(
            other
                .create(
                    None,
                    json!({ "kind": "home_visit", "booking_ref": "P-100" })
                )
                .await
                .status,
            201
        );

        let found = api.get("/links?booking_ref=P-100").await;
        assert_eq!(found.status, 200, "{:?}", found.body);
        let ids: Vec<&str> = found.body["links"]
            .as_array()
            .expect("links")
            .iter()
            .map(|l| l["id"].as_str().expect("id"))
            .collect();
        assert_eq!(
            ids,
            [made[2].as_str(), made[0].as_str()],
            "own links, newest first"
        );
        assert_eq!(found.body["next_cursor"], Value::Null);
        assert_eq!(
            api.get("/links?booking_ref=P-999").await.body["links"],
            json!([])
        );
        let first_page = api.get("/links?limit=2").await;
        assert_eq!(first_page.body["links"].as_array().expect("links").len(), 2);
        let cursor = first_page.body["next_cursor"].as_str().expect("more");
        let rest = api.get(&format!("/links?limit=2&cursor={cursor}")).await;
        assert_eq!(rest.status, 200);
        assert_eq!(rest.body["links"][0]["id"], made[0].as_str());
        assert_eq!(rest.body["next_cursor"], Value::Null);

        // The patient registers through the P-200 link on the clinic's device.
        let patient = Patient::new(&stack.base);
        let accepted = register(
            &patient,
            &made[1],
            "home_visit",
            1,
            &stack.origin(),
            stack.today(),
        )
        .await;
        assert_eq!(accepted.status, 202, "{:?}", accepted.body);
        let reception_id = accepted.body["reception_id"].as_str().expect("id");
        let link = api.get("/links?booking_ref=P-200").await;
        let link_id = link.body["links"][0]["id"].as_str().expect("link");
        let receptions = api.get(&format!("/links/{link_id}/receptions")).await;
        assert_eq!(receptions.status, 200, "{:?}", receptions.body);
        assert_eq!(receptions.body["receptions"][0]["id"], reception_id);
        assert_eq!(receptions.body["receptions"][0]["kind"], "home_visit");
        assert_eq!(receptions.body["receptions"][0]["home_visits"], json!([]));
        // That id records the visit.
        let recorded = api
            .post(
                &format!("/receptions/{reception_id}/home-visits"),
                json!({ "visit_date": today }),
            )
            .await;
        assert_eq!(recorded.status, 201, "{:?}", recorded.body);
        let receptions = api.get(&format!("/links/{link_id}/receptions")).await;
        assert_eq!(
            receptions.body["receptions"][0]["home_visits"],
            json!([today])
        );
        // Other links' and other tokens' receptions are not shown.
        let empty = api.get(&format!("/links/{}/receptions", made[0])).await;
        assert_eq!(empty.body["receptions"], json!([]));
        let theirs = other.get(&format!("/links/{link_id}/receptions")).await;
        assert_eq!(theirs.status, 403);
        assert_eq!(theirs.error(), Some("link_other_token"));
        let theirs = other.get("/links?booking_ref=P-200").await;
        assert_eq!(theirs.body["links"], json!([]));
        // Listing needs a links scope.
        let writer = Api::new(&stack, &[Scope::HomeVisitsWrite]).await;
        let refused = writer.get("/links").await;
        assert_eq!(refused.status, 403);
        assert_eq!(refused.error(), Some("scope_missing"));
    }
}
