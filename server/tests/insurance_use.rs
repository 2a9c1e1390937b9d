//! 健康保険証利用登録 from the flow (issue 15 §2), through HTTP against the real server and the
//! simulator, on SQLite and PostgreSQL. Person 21 of the simulator's population is insured but
//! their card is not registered for insurance use: the reception is confirmed and eligibility
//! answers `card_not_registered_for_insurance`. The session that submitted the reception then
//! registers the card (terms, card and PIN again, a challenge of its own purpose), and the
//! eligibility fetched again is found; every other way in is refused.

mod common;

use common::patient::{Answer, Patient, card_sign};
use common::stack::Stack;
use serde_json::{Value, json};
use sqlx::Row;
use uketsuke_backend::contract::{INSURANCE_USE_TERMS_VERSION, binding::InsuranceUseBinding};
use uketsuke_backend::simulator::population::CertificateCase;
use uketsuke_server::relay::StoredEligibility;

/// 「未登録 良子」: insured, card not registered for insurance use.
const UNREGISTERED: u32 = 21;
/// An ordinary person of the population.
const OTHER: u32 = 44;
const KIND: &str = "online_care";

/// A confirmed reception of person `no` with its eligibility stored; the patient's browser
/// (the session that submitted it) and the reception's id.
async fn confirmed(stack: &Stack, no: u32) -> (Patient, String) {
    stack.confirmed_reception_by(KIND, no).await
}

async fn post(patient: &Patient, path: &str, body: Option<Value>) -> Answer {
    let mut request = patient.http.post(format!("{}{path}", patient.base));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("server answers");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    Answer {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

async fn challenge(patient: &Patient) -> Answer {
    post(patient, "/api/session/insurance-use/challenge", None).await
}

/// The card of person `card` signs `message` after the PIN; the submission's body.
async fn proof(stack: &Stack, card: u32, challenge: &Value, message: &str) -> Value {
    let (certificate, signature) = card_sign(card, CertificateCase::Valid, message).await;
    json!({
        "challenge": challenge,
        "origin": stack.origin(),
        "certificate": certificate,
        "signature": signature,
        "terms_version": INSURANCE_USE_TERMS_VERSION,
    })
}

/// A new insurance-use challenge, signed by the card of person `card`, submitted.
async fn register_with(stack: &Stack, patient: &Patient, card: u32) -> Answer {
    let issued = challenge(patient).await;
    assert_eq!(issued.status, 200, "challenge: {:?}", issued.body);
    let message = issued.body["message"].as_str().expect("message");
    assert!(message.starts_with("uketsuke-insurance-use-binding-v1\n"));
    assert!(message.contains(&format!("\nterms={INSURANCE_USE_TERMS_VERSION}\n")));
    let body = proof(stack, card, &issued.body["challenge"], message).await;
    post(patient, "/api/session/insurance-use", Some(body)).await
}

/// Polls the reception until its 健康保険証利用登録 is no longer under way (not pending, and
/// no eligibility still on its way after a registration).
async fn use_settled(patient: &Patient) -> Value {
    let mut last = patient.reception().await.body;
    for _ in 0..400 {
        let state = &last["insurance_use"]["state"];
        if state != "pending" && last["insurance_use"]["eligibility_pending"] != true {
            return last;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        last = patient.reception().await.body;
    }
    panic!("insurance use still under way: {last:?}");
}

/// The outcome's tag of a stored answer, as the console's JSON writes it.
fn after_outcome_status(stored: &StoredEligibility) -> Value {
    serde_json::to_value(stored).expect("json")["outcome"]["result"].clone()
}

async fn audit_actions(stack: &Stack, id: &str) -> Vec<(String, String)> {
    sqlx::query("SELECT account, action FROM audit_log WHERE target = $1 ORDER BY seq")
        .bind(id)
        .fetch_all(&stack.state.db)
        .await
        .expect("audit")
        .into_iter()
        .map(|row| (row.get("account"), row.get("action")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn person_21_registers_the_card_and_eligibility_is_then_found() {
    for db in common::engines().await {
        eprintln!("engine: {}", db.engine);
        registers_on(&db.url).await;
    }
}

async fn registers_on(url: &str) {
    let stack = common::stack::stack(Some(url), None).await;
    let (patient, id) = confirmed(&stack, UNREGISTERED).await;
    let before = patient.reception().await.body;
    assert_eq!(
        before["eligibility_problem"], "card_not_registered_for_insurance",
        "{before:?}"
    );
    assert_eq!(before["insurance_use"]["state"], "offered");
    assert_eq!(before["insurance_use"]["refusal"], Value::Null);

    // Another session of the same link (another browser) gets nothing; no session neither.
    let stranger = Patient::new(&stack.base);
    assert_eq!(stranger.start(&stack.link(KIND)).await.status, 201);
    let refused = challenge(&stranger).await;
    assert_eq!(
        (refused.status, refused.error()),
        (404, Some("not_submitted"))
    );
    let body = proof(&stack, UNREGISTERED, &json!("A".repeat(43)), "x").await;
    let refused = post(&stranger, "/api/session/insurance-use", Some(body)).await;
    assert_eq!(
        (refused.status, refused.error()),
        (404, Some("not_submitted"))
    );
    let nobody = Patient::new(&stack.base);
    assert_eq!(challenge(&nobody).await.status, 401);
    // Without the API header: refused at the door.
    let bare = reqwest::Client::new()
        .post(format!(
            "{}/api/session/insurance-use/challenge",
            stack.base
        ))
        .send()
        .await
        .expect("answer");
    assert_eq!(bare.status().as_u16(), 403);
    // From another site's page: refused, whatever the cookie.
    let foreign = patient
        .http
        .post(format!(
            "{}/api/session/insurance-use/challenge",
            stack.base
        ))
        .header("origin", "https://evil.example")
        .send()
        .await
        .expect("answer");
    assert_eq!(foreign.status().as_u16(), 403);

    // A challenge of another purpose (同意照会) never verifies an insurance-use text.
    let manage = post(&patient, "/api/session/manage/challenge", None).await;
    assert_eq!(manage.status, 200, "{:?}", manage.body);
    let origin = stack.origin();
    let institution = uketsuke_server::storage::links::resolve(
        &stack.state.db,
        &stack.link(KIND),
        stack.state.clock.now_ms(),
    )
    .await
    .expect("read")
    .expect("open link")
    .institution_code
    .parse()
    .expect("code");
    let challenge_text = manage.body["challenge"].as_str().expect("challenge");
    let text = InsuranceUseBinding {
        origin: &origin,
        challenge: challenge_text,
        institution: &institution,
        terms: INSURANCE_USE_TERMS_VERSION,
    }
    .message();
    let body = proof(
        &stack,
        UNREGISTERED,
        &manage.body["challenge"],
        &String::from_utf8(text).expect("utf-8"),
    )
    .await;
    let refused = post(&patient, "/api/session/insurance-use", Some(body)).await;
    assert_eq!(
        (refused.status, refused.error()),
        (422, Some("challenge_other_purpose"))
    );
    // …nor the other way round: an insurance-use challenge does not prove 同意照会.
    let issued = challenge(&patient).await;
    assert_eq!(issued.status, 200);
    let message = issued.body["message"].as_str().expect("message");
    let (certificate, signature) = card_sign(UNREGISTERED, CertificateCase::Valid, message).await;
    let refused = post(
        &patient,
        "/api/session/manage/proof",
        Some(json!({
            "challenge": issued.body["challenge"],
            "origin": stack.origin(),
            "certificate": certificate,
            "signature": signature,
        })),
    )
    .await;
    assert_eq!(refused.status, 422, "{:?}", refused.body);
    assert_eq!(
        refused.body["error"], "challenge_other_purpose",
        "{:?}",
        refused.body
    );

    // Terms other than those shown are refused.
    let issued = challenge(&patient).await;
    let message = issued.body["message"].as_str().expect("message");
    let mut body = proof(&stack, UNREGISTERED, &issued.body["challenge"], message).await;
    body["terms_version"] = json!("2020-01");
    let refused = post(&patient, "/api/session/insurance-use", Some(body)).await;
    assert_eq!(
        (refused.status, refused.error()),
        (422, Some("terms_version_unknown"))
    );

    // Another person's card, however valid, is not the reception's.
    let refused = register_with(&stack, &patient, OTHER).await;
    assert_eq!(
        (refused.status, refused.error()),
        (422, Some("card_mismatch")),
    );
    assert_eq!(
        patient.reception().await.body["insurance_use"]["state"],
        "offered"
    );

    // The patient's own card: queued, and one request at a time.
    let accepted = register_with(&stack, &patient, UNREGISTERED).await;
    assert_eq!(accepted.status, 202, "{:?}", accepted.body);
    assert_eq!(accepted.body["status"], "queued");
    let again = challenge(&patient).await;
    assert_eq!(again.status, 409);
    assert!(
        matches!(
            again.error(),
            Some("insurance_use_pending" | "insurance_use_already_registered")
        ),
        "{:?}",
        again.body
    );

    let after = use_settled(&patient).await;
    assert_eq!(after["insurance_use"]["state"], "registered", "{after:?}");
    assert!(after["insurance_use"]["registered_at"].is_string());
    assert_eq!(after["eligibility_problem"], Value::Null, "{after:?}");
    let stored = uketsuke_server::relay::eligibility(&stack.state.db, &id)
        .await
        .expect("read")
        .expect("eligibility");
    assert!(
        matches!(&stored, StoredEligibility::Answer { .. }) && stored.problem().is_none(),
        "{stored:?}"
    );

    // A second attempt: already registered, nothing to offer.
    let second = challenge(&patient).await;
    assert_eq!(
        (second.status, second.error()),
        (409, Some("insurance_use_already_registered"))
    );

    // Audited: the patient's request, then the server's record of the backend's answer.
    let actions = audit_actions(&stack, &id).await;
    assert!(
        actions.contains(&("-patient".to_owned(), "insurance_use.request".to_owned())),
        "{actions:?}"
    );
    assert!(
        actions.contains(&("-server".to_owned(), "insurance_use.registered".to_owned())),
        "{actions:?}"
    );

    // Staff see it on the reception: registered through it, and the eligibility that followed.
    let (staff, _) = common::console::demo_staff(&stack, "staff").await;
    let detail = staff.get(&format!("/api/console/receptions/{id}")).await;
    assert_eq!(detail.status, 200, "{:?}", detail.body);
    assert_eq!(detail.body["insurance_use"]["state"], "registered");
    assert!(detail.body["insurance_use"]["registered_at"].is_string());
    assert_ne!(after_outcome_status(&stored), Value::Null);
    assert_eq!(
        detail.body["eligibility"]["outcome"]["result"],
        after_outcome_status(&stored)
    );
    let page = staff.get(&format!("/console/receptions/{id}")).await;
    assert!(
        page.text.contains("この受付で登録しました"),
        "{}",
        page.text
    );

    // Another person's reception is never offered it (their card is registered).
    let (other, _) = confirmed(&stack, OTHER).await;
    let refused = challenge(&other).await;
    assert_eq!(
        (refused.status, refused.error()),
        (409, Some("insurance_use_not_offered"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_revoked_since_the_reception_is_refused_and_shown() {
    for db in common::engines().await {
        eprintln!("engine: {}", db.engine);
        revoked_on(&db.url).await;
    }
}

/// The certificate was renewed after the reception: the backend refuses the old one.
async fn revoked_on(url: &str) {
    let stack = common::stack::stack(Some(url), None).await;
    let (patient, id) = confirmed(&stack, UNREGISTERED).await;
    stack
        .sim
        .renew_certificate(UNREGISTERED)
        .await
        .expect("renewed");
    let accepted = register_with(&stack, &patient, UNREGISTERED).await;
    assert_eq!(accepted.status, 202, "{:?}", accepted.body);
    let after = use_settled(&patient).await;
    assert_eq!(after["insurance_use"]["state"], "offered", "{after:?}");
    assert_eq!(after["insurance_use"]["refusal"], "certificate_revoked");
    assert_eq!(
        after["eligibility_problem"],
        "card_not_registered_for_insurance"
    );
    let actions = audit_actions(&stack, &id).await;
    assert!(
        actions.contains(&("-server".to_owned(), "insurance_use.refused".to_owned())),
        "{actions:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_under_review_is_refused_then_registers_once_it_ends() {
    for db in common::engines().await {
        eprintln!("engine: {}", db.engine);
        review_on(&db.url).await;
    }
}

/// Under J-LIS review: refused; once the review ends, a new attempt registers.
async fn review_on(url: &str) {
    let stack = common::stack::stack(Some(url), None).await;
    let (patient, _) = confirmed(&stack, UNREGISTERED).await;
    stack
        .sim
        .set_jlis_review(UNREGISTERED, true)
        .await
        .expect("review");
    let accepted = register_with(&stack, &patient, UNREGISTERED).await;
    assert_eq!(accepted.status, 202, "{:?}", accepted.body);
    let after = use_settled(&patient).await;
    assert_eq!(after["insurance_use"]["refusal"], "person_under_review");
    stack
        .sim
        .set_jlis_review(UNREGISTERED, false)
        .await
        .expect("review ends");
    // The backend is away: the request waits, and after a few tries the patient is told (and
    // what to do meanwhile); it is sent once the backend is back.
    stack
        .sim
        .faults
        .set(uketsuke_backend::simulator::FaultConfig {
            outage: true,
            ..Default::default()
        });
    let accepted = register_with(&stack, &patient, UNREGISTERED).await;
    assert_eq!(accepted.status, 202, "{:?}", accepted.body);
    let mut busy = patient.reception().await.body;
    assert_eq!(busy["insurance_use"]["backend_busy"], false, "{busy:?}");
    for _ in 0..600 {
        if busy["insurance_use"]["backend_busy"] == true {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        busy = patient.reception().await.body;
    }
    assert_eq!(busy["insurance_use"]["state"], "pending", "{busy:?}");
    assert_eq!(busy["insurance_use"]["backend_busy"], true, "{busy:?}");
    stack.sim.faults.set(Default::default());
    let after = use_settled(&patient).await;
    assert_eq!(after["insurance_use"]["state"], "registered", "{after:?}");
    assert_eq!(after["eligibility_problem"], Value::Null);
}
