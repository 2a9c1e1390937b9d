//! Receptions end to end through HTTP: a patient's client with virtual cards, the server with
//! its relay, and a simulator reached over the signed wire format. Every reception kind on
//! SQLite and PostgreSQL; every attack on the card proof refused with its reason; a backend
//! outage that keeps receptions queued without losing them; the gate and the sweeper with the
//! clock moved; withdrawal; the institution API.

mod common;

use std::time::Duration;

use chrono::NaiveDate;
use common::patient::{Patient, card_sign, choices_for, register};
use common::stack::{Stack, server};
use serde_json::{Value, json};
use sqlx::Row;
use uketsuke_backend::contract::{MedicalCategory, b64_encode};
use uketsuke_backend::simulator::{
    FaultConfig,
    population::{self, CertificateCase},
};
use uketsuke_card::{jpki::authenticate, pin::Pin, test_ca::TestCa, virtual_card::VirtualCard};
use uketsuke_server::{
    gate::{self, GateError, GateRefusal, Reader, Role},
    relay, storage, sweeper,
};

const DAY_MS: i64 = 24 * 3600 * 1000;

/// The stack with the server's default origin.
async fn stack(database_url: Option<&str>) -> Stack {
    common::stack::stack(database_url, None).await
}

/// A person of the population with this certificate case (and otherwise ordinary).
fn person_with(case: CertificateCase) -> u32 {
    population::population(NaiveDate::from_ymd_opt(2026, 11, 21).expect("date"))
        .iter()
        .find(|p| p.certificate == case)
        .map(|p| p.no)
        .expect("population covers the case")
}

async fn eligibility_arrives(stack: &Stack, reception_id: &str) -> relay::StoredEligibility {
    for _ in 0..200 {
        if let Some(stored) = relay::eligibility(&stack.state.db, reception_id)
            .await
            .expect("read")
        {
            return stored;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("eligibility never arrived");
}

async fn every_kind_on(database_url: Option<&str>, engine: &str) {
    let stack = stack(database_url).await;
    let kinds = [
        "online_care",
        "separate_route",
        "device_failure",
        "home_visit",
        "house_call",
        "eligibility_only",
    ];
    for kind in kinds {
        let patient = Patient::new(&stack.base);
        let accepted = register(
            &patient,
            &stack.link(kind),
            kind,
            1,
            &stack.origin(),
            stack.today(),
        )
        .await;
        assert_eq!(accepted.status, 202, "{engine} {kind}: {:?}", accepted.body);
        let done = patient.settled(200).await;
        assert_eq!(
            done.body["status"], "confirmed",
            "{engine} {kind}: {:?}",
            done.body
        );
        let number = done.body["reception_number"].as_str().expect("受付番号");
        assert!(number.len() == 8 && number.bytes().all(|b| b.is_ascii_digit()));
        if kind == "eligibility_only" {
            assert!(done.body["window_end_display"].is_null());
        } else {
            let end = done.body["window_end_display"]
                .as_str()
                .expect("window end");
            assert!(end.ends_with("JST"), "{end}");
        }
        if kind == "online_care" || kind == "separate_route" {
            // Day after the visit, 23:59 JST.
            let day_after = stack.today().succ_opt().expect("date");
            assert_eq!(
                done.body["window_end_display"],
                format!("{} 23:59 JST", day_after.format("%Y-%m-%d"))
            );
        }
        let id = accepted.body["reception_id"].as_str().expect("id");
        match eligibility_arrives(&stack, id).await {
            relay::StoredEligibility::Answer { .. } => {}
            other => panic!("{engine} {kind}: eligibility {other:?}"),
        }
        // A second submission of the same session is refused, not registered twice.
        let again = patient.challenge().await;
        assert_eq!(again.error(), Some("already_submitted"));
    }
    assert_eq!(stack.backend_registrations().await, kinds.len() as i64);
    let uses = sqlx::query("SELECT CAST(SUM(use_count) AS BIGINT) AS n FROM reception_links")
        .fetch_one(&stack.state.db)
        .await
        .expect("uses");
    assert_eq!(uses.get::<i64, _>("n"), kinds.len() as i64);
}

/// The simulator's demo clinic's 医療機関等コード, as the server seeds it.
fn demo_clinic_code() -> uketsuke_domain::InstitutionCode {
    uketsuke_backend::simulator::keys::institution_code(
        uketsuke_backend::simulator::keys::DEMO_CLINIC,
    )
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_registers_on_every_engine() {
    for db in common::engines().await {
        let url = (db.engine == "postgres").then_some(db.url.as_str());
        every_kind_on(url, db.engine).await;
    }
}

/// Choices made at 23:55 JST no longer hold after midnight: the card is not asked to sign for
/// yesterday, and a challenge issued before midnight does not register after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn choices_made_before_midnight_are_stale_after_it() {
    let stack = stack(None).await;
    let clock = &stack.state.clock;
    let midnight =
        uketsuke_domain::window::jst_start_of_day(stack.today().succ_opt().expect("tomorrow"));
    let five_to = (midnight - clock.now()).num_milliseconds() - 5 * 60_000;
    clock.advance_ms(five_to);
    // One patient chooses and stops; another gets as far as the challenge.
    let late = Patient::new(&stack.base);
    assert_eq!(late.start(&stack.link("separate_route")).await.status, 201);
    let review = late
        .choose(choices_for("separate_route", stack.today()))
        .await;
    assert_eq!(review.status, 200, "{:?}", review.body);
    let (signer, challenge, message) = ready(&stack).await;
    clock.advance_ms(10 * 60_000);
    assert_eq!(late.challenge().await.error(), Some("choices_stale"));
    let (certificate, signature) = card_sign(1, CertificateCase::Valid, &message).await;
    let refused = signer
        .submit(json!({
            "challenge": challenge,
            "origin": stack.origin(),
            "certificate": certificate,
            "signature": signature,
        }))
        .await;
    assert_eq!(refused.error(), Some("choices_stale"), "{:?}", refused.body);
    assert_eq!(stack.backend_registrations().await, 0);
}

/// Session, choices and challenge for the separate-route link; returns (patient, challenge, message).
async fn ready(stack: &Stack) -> (Patient, String, String) {
    let patient = Patient::new(&stack.base);
    assert_eq!(
        patient.start(&stack.link("separate_route")).await.status,
        201
    );
    let review = patient
        .choose(choices_for("separate_route", stack.today()))
        .await;
    assert_eq!(review.status, 200, "{:?}", review.body);
    let challenge = patient.challenge().await;
    (
        patient,
        challenge.body["challenge"]
            .as_str()
            .expect("challenge")
            .to_owned(),
        challenge.body["message"]
            .as_str()
            .expect("message")
            .to_owned(),
    )
}

fn proof(challenge: &str, origin: &str, signed: &(String, String)) -> Value {
    json!({
        "challenge": challenge,
        "origin": origin,
        "certificate": signed.0,
        "signature": signed.1,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_forgery_is_refused_with_its_reason() {
    let stack = stack(None).await;
    let origin = stack.origin();

    // Replay: a used challenge, and a challenge stolen into another session.
    let (patient, challenge, message) = ready(&stack).await;
    let signed = card_sign(1, CertificateCase::Valid, &message).await;
    let thief = Patient::new(&stack.base);
    thief.start(&stack.link("separate_route")).await;
    thief
        .choose(choices_for("separate_route", stack.today()))
        .await;
    let stolen = thief.submit(proof(&challenge, &origin, &signed)).await;
    assert_eq!(
        stolen.error(),
        Some("challenge_unknown"),
        "{:?}",
        stolen.body
    );
    let bad = (signed.0.clone(), b64_encode(&[0u8; 256]));
    let first = patient.submit(proof(&challenge, &origin, &bad)).await;
    assert_eq!(first.error(), Some("signature_invalid"));
    let replay = patient.submit(proof(&challenge, &origin, &signed)).await;
    assert_eq!(replay.error(), Some("challenge_used"));

    // Expired: five minutes later.
    let (patient, challenge, message) = ready(&stack).await;
    let signed = card_sign(1, CertificateCase::Valid, &message).await;
    stack.state.clock.advance_ms(5 * 60 * 1000 + 1);
    // The backend's clock moves with ours: in the last minutes before midnight JST the two
    // would otherwise disagree on the date, and the backend would refuse the later receptions
    // as visit_date_invalid.
    stack
        .sim
        .clock
        .advance(chrono::Duration::milliseconds(5 * 60 * 1000 + 1));
    let late = patient.submit(proof(&challenge, &origin, &signed)).await;
    assert_eq!(late.error(), Some("challenge_expired"));

    // A signature over other choices than the reviewed ones.
    let (patient, challenge, message) = ready(&stack).await;
    let other = message.replace("checkups=0", "checkups=1");
    assert_ne!(other, message);
    let signed = card_sign(1, CertificateCase::Valid, &other).await;
    let answer = patient.submit(proof(&challenge, &origin, &signed)).await;
    assert_eq!(answer.error(), Some("signature_invalid"));

    // Choices changed after the challenge: the challenge no longer binds them.
    let (patient, challenge, message) = ready(&stack).await;
    patient
        .choose(json!({ "clinical_medication": false, "checkups": true }))
        .await;
    let signed = card_sign(1, CertificateCase::Valid, &message).await;
    let answer = patient.submit(proof(&challenge, &origin, &signed)).await;
    assert_eq!(answer.error(), Some("binding_mismatch"));

    // A foreign origin: claimed, or signed into the binding.
    let (patient, challenge, message) = ready(&stack).await;
    let signed = card_sign(1, CertificateCase::Valid, &message).await;
    let answer = patient
        .submit(proof(&challenge, "https://evil.example", &signed))
        .await;
    assert_eq!(answer.error(), Some("foreign_origin"));
    let (patient, challenge, message) = ready(&stack).await;
    let phished = message.replace(&format!("origin={origin}"), "origin=https://evil.example");
    let signed = card_sign(1, CertificateCase::Valid, &phished).await;
    let answer = patient.submit(proof(&challenge, &origin, &signed)).await;
    assert_eq!(answer.error(), Some("signature_invalid"));

    // Revoked and expired certificates never reach the backend.
    for (case, code) in [
        (CertificateCase::Revoked, "certificate_revoked"),
        (CertificateCase::Expired, "certificate_expired"),
        (CertificateCase::NotYetValid, "certificate_not_yet_valid"),
    ] {
        let (patient, challenge, message) = ready(&stack).await;
        let signed = card_sign(person_with(case), case, &message).await;
        let answer = patient.submit(proof(&challenge, &origin, &signed)).await;
        assert_eq!(answer.error(), Some(code), "{case:?}");
    }

    // The wrong person: one card's certificate, another card's signature.
    let (patient, challenge, message) = ready(&stack).await;
    let mine = card_sign(1, CertificateCase::Valid, &message).await;
    let theirs = card_sign(2, CertificateCase::Valid, &message).await;
    let answer = patient
        .submit(proof(&challenge, &origin, &(mine.0, theirs.1)))
        .await;
    assert_eq!(answer.error(), Some("signature_invalid"));

    // A certificate from another CA.
    let (patient, challenge, message) = ready(&stack).await;
    let rogue_ca = TestCa::from_seed(777).expect("rogue CA");
    let pin = Pin::new("1234").expect("pin");
    let mut rogue = VirtualCard::from_seed(424_242, &rogue_ca, &pin).expect("rogue card");
    let auth = authenticate(&mut rogue, &pin, message.as_bytes())
        .await
        .expect("signs");
    let answer = patient
        .submit(proof(
            &challenge,
            &origin,
            &(
                b64_encode(&auth.certificate_der),
                b64_encode(&auth.signature),
            ),
        ))
        .await;
    assert_eq!(answer.error(), Some("certificate_untrusted"));

    // Garbage never panics: not base64, not DER.
    let (patient, challenge, _) = ready(&stack).await;
    let answer = patient
        .submit(proof(&challenge, &origin, &("@@".into(), "AA".into())))
        .await;
    assert_eq!(answer.error(), Some("certificate_malformed"));
    let answer = patient
        .submit(json!({ "challenge": 1, "origin": [], "certificate": null }))
        .await;
    assert_eq!(answer.error(), Some("body_invalid"));

    // Nothing above reached the backend.
    assert_eq!(stack.backend_registrations().await, 0);

    // A valid card of nobody the backend knows: the server relays, the backend refuses.
    let (patient, challenge, message) = ready(&stack).await;
    let ca = population::ca().expect("test CA");
    let mut stranger = VirtualCard::from_seed(999_999, ca, &pin).expect("stranger card");
    let auth = authenticate(&mut stranger, &pin, message.as_bytes())
        .await
        .expect("signs");
    let answer = patient
        .submit(proof(
            &challenge,
            &origin,
            &(
                b64_encode(&auth.certificate_der),
                b64_encode(&auth.signature),
            ),
        ))
        .await;
    assert_eq!(answer.status, 202, "{:?}", answer.body);
    let done = patient.settled(200).await;
    assert_eq!(done.body["status"], "refused");
    assert_eq!(done.body["refusal"], "person_not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_need_their_cookie_and_our_origin() {
    let stack = stack(None).await;
    // The patient API's header, as the app sends it (issue 12 §6).
    let http = reqwest::Client::builder()
        .default_headers(reqwest::header::HeaderMap::from_iter([(
            reqwest::header::HeaderName::from_static("x-uketsuke-csrf"),
            reqwest::header::HeaderValue::from_static("1"),
        )]))
        .build()
        .expect("client");
    let answer = http
        .post(format!("{}/api/session/challenge", stack.base))
        .send()
        .await
        .expect("answers");
    assert_eq!(answer.status(), 401);
    let answer = http
        .post(format!(
            "{}/api/r/{}/session",
            stack.base,
            stack.link("online_care")
        ))
        .header("origin", "https://evil.example")
        .send()
        .await
        .expect("answers");
    assert_eq!(answer.status(), 403);
    let answer = http
        .post(format!(
            "{}/api/r/{}/session",
            stack.base,
            stack.link("online_care")
        ))
        .send()
        .await
        .expect("answers");
    assert_eq!(answer.status(), 201);
    let cookie = answer
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("cookie")
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    // Choices a kind does not allow.
    let patient = Patient::new(&stack.base);
    patient.start(&stack.link("online_care")).await;
    let today = stack.today();
    for (choices, code) in [
        (
            json!({ "clinical_medication": true, "checkups": true }),
            "visit_date_required",
        ),
        (
            json!({ "visit_date": today.pred_opt().map(|d| d.to_string()), "clinical_medication": true, "checkups": true, "prescription_method": "paper" }),
            "visit_date_invalid",
        ),
        (
            json!({ "visit_date": today.to_string(), "clinical_medication": true, "checkups": true }),
            "prescription_method_required",
        ),
    ] {
        assert_eq!(patient.choose(choices).await.error(), Some(code));
    }
    let patient = Patient::new(&stack.base);
    patient.start(&stack.link("eligibility_only")).await;
    let answer = patient
        .choose(json!({ "clinical_medication": true, "checkups": false }))
        .await;
    assert_eq!(answer.error(), Some("consent_not_offered"));
    assert_eq!(patient.challenge().await.error(), Some("choices_missing"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_outage_keeps_receptions_queued_and_loses_none() {
    let stack = stack(None).await;
    stack.sim.faults.set(FaultConfig {
        outage: true,
        ..Default::default()
    });
    let patient = Patient::new(&stack.base);
    let accepted = register(
        &patient,
        &stack.link("separate_route"),
        "separate_route",
        1,
        &stack.origin(),
        stack.today(),
    )
    .await;
    assert_eq!(accepted.status, 202);
    // 0.5 + 1 + 2 s of backoff: three failed sends, and the patient is told it waits.
    let mut busy = false;
    for _ in 0..100 {
        let now = patient.reception().await;
        assert_eq!(now.body["status"], "queued");
        if now.body["backend_busy"] == true {
            busy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(busy, "the patient learns the backend is busy");
    stack.sim.faults.set(FaultConfig::default());
    let done = patient.settled(400).await;
    assert_eq!(done.body["status"], "confirmed", "{:?}", done.body);
    assert_eq!(stack.backend_registrations().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_cut_answers_are_not_believed() {
    let stack = stack(None).await;
    stack.sim.faults.set(FaultConfig {
        bad_signature_rate: 0.5,
        malformed_rate: 0.3,
        seed: 7,
        ..Default::default()
    });
    let mut patients = Vec::new();
    for no in 1..=4 {
        let patient = Patient::new(&stack.base);
        let accepted = register(
            &patient,
            &stack.link("separate_route"),
            "separate_route",
            no,
            &stack.origin(),
            stack.today(),
        )
        .await;
        assert_eq!(accepted.status, 202);
        patients.push(patient);
    }
    for patient in &patients {
        let done = patient.settled(600).await;
        assert_eq!(done.body["status"], "confirmed", "{:?}", done.body);
    }
    // Retried until a verified answer came, each registered once (idempotency key).
    assert_eq!(stack.backend_registrations().await, 4);
}

/// A reception of `kind` by person 1, confirmed by the backend: the patient's client, the
/// submission's answer (reception id, cancel token) and the reception's institution.
async fn confirmed(stack: &Stack, kind: &str) -> (Patient, Value, String) {
    let patient = Patient::new(&stack.base);
    let accepted = register(
        &patient,
        &stack.link(kind),
        kind,
        1,
        &stack.origin(),
        stack.today(),
    )
    .await;
    assert_eq!(accepted.status, 202, "{:?}", accepted.body);
    assert_eq!(patient.settled(200).await.body["status"], "confirmed");
    let id = accepted.body["reception_id"].as_str().expect("id");
    let institution = storage::receptions::get(&stack.state.db, id)
        .await
        .expect("read")
        .expect("reception")
        .institution_id;
    (patient, accepted.body, institution)
}

async fn read_medical(
    state: &uketsuke_server::AppState,
    reader: Reader<'_>,
    id: &str,
    category: MedicalCategory,
) -> Result<uketsuke_backend::contract::MedicalInformation, GateError> {
    gate::medical_information(
        &state.db,
        &state.backend,
        &state.clock,
        reader,
        id,
        category,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gate_opens_only_inside_the_window_and_the_sweeper_deletes() {
    let stack = stack(None).await;
    let (_, accepted, institution) = confirmed(&stack, "separate_route").await;
    let id = accepted["reception_id"].as_str().expect("id").to_owned();
    let state = &stack.state;
    let viewer = Reader {
        institution_id: &institution,
        role: Role::MedicalViewer,
    };
    let read = |reader, category| read_medical(state, reader, &id, category);
    read(viewer, MedicalCategory::ClinicalMedication)
        .await
        .expect("inside the window, consented, medical viewer");
    let refusal = |r: Result<_, GateError>| match r {
        Err(GateError::Refused(why)) => why,
        other => panic!("expected a refusal, got {other:?}"),
    };
    for role in [Role::General, Role::Administrator] {
        let reader = Reader {
            institution_id: &institution,
            role,
        };
        assert_eq!(
            refusal(read(reader, MedicalCategory::ClinicalMedication).await),
            GateRefusal::Role
        );
    }
    let stranger = Reader {
        institution_id: "someone-else",
        role: Role::MedicalViewer,
    };
    assert_eq!(
        refusal(read(stranger, MedicalCategory::ClinicalMedication).await),
        GateRefusal::NotFound
    );
    assert_eq!(
        refusal(read(viewer, MedicalCategory::Checkups).await),
        GateRefusal::NotConsented
    );
    let stored = || async {
        sqlx::query("SELECT COUNT(*) AS n FROM medical_data")
            .fetch_one(&state.db)
            .await
            .expect("count")
            .get::<i64, _>("n")
    };
    assert_eq!(stored().await, 1);
    // Still open tomorrow; closed two days on (the day after the visit has ended).
    state.clock.advance_ms(DAY_MS);
    let swept = sweeper::sweep(&state.db, state.clock.now_ms())
        .await
        .expect("sweep");
    assert_eq!(swept.medical_receptions, 0);
    read(viewer, MedicalCategory::ClinicalMedication)
        .await
        .expect("tomorrow is inside the window");
    state.clock.advance_ms(DAY_MS);
    assert_eq!(
        refusal(read(viewer, MedicalCategory::ClinicalMedication).await),
        GateRefusal::WindowClosed
    );
    let swept = sweeper::sweep(&state.db, state.clock.now_ms())
        .await
        .expect("sweep");
    assert_eq!(swept.medical_receptions, 1);
    assert_eq!(stored().await, 0);
    // Eligibility stays until the retention (90 days), then goes.
    eligibility_arrives(&stack, &id).await;
    state.clock.advance_ms(88 * DAY_MS);
    let swept = sweeper::sweep(&state.db, state.clock.now_ms())
        .await
        .expect("sweep");
    assert_eq!(swept.eligibility_answers, 1);
    assert!(
        relay::eligibility(&state.db, &id)
            .await
            .expect("read")
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_reception_closes_at_once_and_reaches_the_backend() {
    let stack = stack(None).await;
    let (patient, accepted, institution) = confirmed(&stack, "online_care").await;
    let id = accepted["reception_id"].as_str().expect("id").to_owned();
    let token = accepted["cancel_token"].as_str().expect("token").to_owned();
    let state = &stack.state;
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
        MedicalCategory::Checkups,
    )
    .await
    .expect("open before the cancel");
    assert_eq!(
        patient.cancel("0000000000000000000000000z").await.status,
        404
    );
    let cancelled = patient.cancel(&token).await;
    assert_eq!(cancelled.status, 200);
    assert_eq!(cancelled.body["withdrawn"], true);
    state.clock.advance_ms(1);
    match gate::medical_information(
        &state.db,
        &state.backend,
        &state.clock,
        viewer,
        &id,
        MedicalCategory::Checkups,
    )
    .await
    {
        Err(GateError::Refused(GateRefusal::WindowClosed)) => {}
        other => panic!("closed after the cancel, got {other:?}"),
    }
    // The withdrawal is delivered: nothing left in the outbox.
    for _ in 0..200 {
        if storage::outbox::pending(&state.db).await.expect("pending") == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the withdrawal was never delivered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_institution_api_makes_per_appointment_links() {
    let stack = stack(None).await;
    let state = &stack.state;
    let now = state.clock.now_ms();
    let demo = storage::institutions::id_by_code(&state.db, demo_clinic_code().as_str())
        .await
        .expect("read")
        .expect("demo institution");
    // Per-appointment links and revoking its own (issue 12 §7: scopes).
    let (_, token) = storage::tokens::create_with(
        &state.db,
        &demo,
        "booking",
        &[
            storage::tokens::Scope::LinksAppointment,
            storage::tokens::Scope::LinksRevoke,
        ],
        now + storage::tokens::DEFAULT_LIFETIME_MS,
        now,
    )
    .await
    .expect("token");
    let http = reqwest::Client::new();
    let api = |path: &str| format!("{}/api/v1{path}", stack.base);

    let spec = http.get(api("/openapi.yaml")).send().await.expect("spec");
    assert_eq!(spec.status(), 200);
    assert!(spec.text().await.expect("text").starts_with("openapi: 3"));

    let body = json!({ "kind": "separate_route", "visit_date": stack.today().to_string(), "booking_ref": "A-123" });
    let unauth = http
        .post(api("/links"))
        .json(&body)
        .send()
        .await
        .expect("answer");
    assert_eq!(unauth.status(), 401);
    let forged = http
        .post(api("/links"))
        // The last character changed (to one it is not: a token ending in `x` stayed valid).
        .bearer_auth(format!(
            "{}{}",
            &token[..token.len() - 1],
            if token.ends_with('x') { 'y' } else { 'x' }
        ))
        .json(&body)
        .send()
        .await
        .expect("answer");
    assert_eq!(forged.status(), 401);
    let created = http
        .post(api("/links"))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .expect("answer");
    assert_eq!(created.status(), 201);
    let link: Value = created.json().await.expect("json");
    let link_id = link["id"].as_str().expect("id").to_owned();
    assert!(
        link["url"]
            .as_str()
            .expect("url")
            .ends_with(&format!("/r/{link_id}"))
    );
    assert!(link["expires_at"].is_string(), "ends with its window");

    // A patient uses it; the visit date is fixed.
    let patient = Patient::new(&stack.base);
    patient.start(&link_id).await;
    let moved = patient
        .choose(json!({ "visit_date": stack.today().succ_opt().map(|d| d.to_string()), "clinical_medication": true, "checkups": true }))
        .await;
    assert_eq!(moved.error(), Some("visit_date_fixed"));
    let accepted = register(
        &patient,
        &link_id,
        "separate_route",
        1,
        &stack.origin(),
        stack.today(),
    )
    .await;
    assert_eq!(accepted.status, 202, "{:?}", accepted.body);
    let read: Value = http
        .get(api(&format!("/links/{link_id}")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    assert_eq!(read["use_count"], 1);

    // A link for tomorrow's house call cannot be used today: the landing page says from when,
    // and the patient's choices are refused with a code that says so (not "choose a date").
    // 90 days ahead is the furthest a link may be for.
    let tomorrow = stack.today().succ_opt().expect("date");
    let mut ids = Vec::new();
    for (kind, date) in [
        ("house_call", tomorrow),
        ("online_care", stack.today() + chrono::Days::new(90)),
    ] {
        let created = http
            .post(api("/links"))
            .bearer_auth(&token)
            .json(&json!({ "kind": kind, "visit_date": date.to_string() }))
            .send()
            .await
            .expect("answer");
        assert_eq!(created.status(), 201, "{kind} on {date}");
        let link: Value = created.json().await.expect("json");
        ids.push(link["id"].as_str().expect("id").to_owned());
    }
    let landing = http
        .get(format!("{}/r/{}", stack.base, ids[0]))
        .send()
        .await
        .expect("landing")
        .text()
        .await
        .expect("html");
    assert!(landing.contains("data-testid=\"usable-from\""), "{landing}");
    assert!(
        !landing.contains("data-testid=\"start\""),
        "no start button"
    );
    let early = Patient::new(&stack.base);
    early.start(&ids[0]).await;
    let refused = early
        .choose(json!({ "clinical_medication": true, "checkups": false }))
        .await;
    assert_eq!(refused.error(), Some("visit_date_not_yet"));
    // The online-care visit 90 days ahead can be registered for today.
    let ahead = Patient::new(&stack.base);
    ahead.start(&ids[1]).await;
    let review = ahead
        .choose(json!({ "clinical_medication": true, "checkups": false, "prescription_method": "electronic" }))
        .await;
    assert_eq!(review.status, 200, "{:?}", review.body);

    // Another institution's token sees nothing of it.
    let other = storage::institutions::id_by_code(&state.db, demo_clinic_code().as_str())
        .await
        .expect("read")
        .expect("demo");
    sqlx::query(
        "INSERT INTO institutions (id, code, name_ja, name_en, created_at) \
         VALUES ('otherinstitution000000000', '2716543210', 'x', 'x', 0)",
    )
    .execute(&state.db)
    .await
    .expect("other institution");
    assert_ne!(other, "otherinstitution000000000");
    let (_, other_token) = storage::tokens::create_with(
        &state.db,
        "otherinstitution000000000",
        "x",
        &storage::tokens::Scope::ALL,
        now + storage::tokens::DEFAULT_LIFETIME_MS,
        now,
    )
    .await
    .expect("token");
    for request in [
        http.get(api(&format!("/links/{link_id}"))),
        http.delete(api(&format!("/links/{link_id}"))),
    ] {
        let answer = request
            .bearer_auth(&other_token)
            .send()
            .await
            .expect("answer");
        assert_eq!(answer.status(), 404);
    }

    // Revoked: patients are told so.
    let revoked = http
        .delete(api(&format!("/links/{link_id}")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("answer");
    assert_eq!(revoked.status(), 204);
    let late = Patient::new(&stack.base).start(&link_id).await;
    assert_eq!(late.status, 410);
    assert_eq!(late.error(), Some("link_revoked"));

    // A revoked token stops working.
    assert!(
        storage::tokens::revoke(&state.db, &token, now)
            .await
            .expect("revoke")
    );
    let answer = http
        .get(api(&format!("/links/{link_id}")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn home_visits_keep_the_window_open_month_by_month() {
    let stack = stack(None).await;
    let patient = Patient::new(&stack.base);
    let accepted = register(
        &patient,
        &stack.link("home_visit"),
        "home_visit",
        1,
        &stack.origin(),
        stack.today(),
    )
    .await;
    let id = accepted.body["reception_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let first = patient.settled(200).await;
    assert_eq!(first.body["status"], "confirmed");
    let state = &stack.state;
    let demo = storage::institutions::id_by_code(&state.db, demo_clinic_code().as_str())
        .await
        .expect("read")
        .expect("demo");
    let now = state.clock.now_ms();
    let (_, token) = storage::tokens::create_with(
        &state.db,
        &demo,
        "レセコン",
        &[storage::tokens::Scope::HomeVisitsWrite],
        now + storage::tokens::DEFAULT_LIFETIME_MS,
        now,
    )
    .await
    .expect("token");
    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/receptions/{id}/home-visits", stack.base);
    let visit = |date: String| {
        http.post(&url)
            .bearer_auth(&token)
            .json(&json!({ "visit_date": date }))
            .send()
    };
    let tomorrow = stack.today().succ_opt().expect("date").to_string();
    assert_eq!(visit(tomorrow).await.expect("answer").status(), 422);
    assert_eq!(
        visit(stack.today().to_string())
            .await
            .expect("answer")
            .status(),
        201
    );
    assert_eq!(
        visit(stack.today().to_string())
            .await
            .expect("answer")
            .status(),
        200
    );
    let before = first.body["window_end"].as_i64().expect("end");
    // With no visit next month the window ends when next month ends; it did not shrink.
    let after = storage::receptions::get(&state.db, &id)
        .await
        .expect("read")
        .expect("reception")
        .window()
        .and_then(|w| w.end())
        .expect("end")
        .timestamp_millis();
    assert_eq!(before, after);
    for _ in 0..200 {
        if storage::outbox::pending(&state.db).await.expect("pending") == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the home visit was never delivered");
}

/// Two instances on one PostgreSQL database, no sticky sessions: each step of a patient's flow
/// goes to either instance, and both relays drain one outbox. Every registration reaches the
/// backend exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_postgres_relay_each_registration_once() {
    let Some(db) = common::engines()
        .await
        .into_iter()
        .find(|db| db.engine == "postgres")
    else {
        return;
    };
    let first = stack(Some(&db.url)).await;
    let (second_base, _, second_state) =
        server(&db.url, &first.sim.base_url(), first.dir.path(), None).await;
    let bases = [first.base.clone(), second_base];
    let origins = [first.origin(), second_state.config.origin_string()];
    let link = first.link("separate_route");
    let mut tasks = Vec::new();
    for n in 0..24u32 {
        let bases = bases.clone();
        let origins = origins.clone();
        let link = link.clone();
        let today = first.today();
        tasks.push(tokio::spawn(async move {
            // Start on one instance, sign on the other: the session lives in the database.
            let on = (n % 2) as usize;
            let patient = Patient::new(&bases[on]);
            assert_eq!(patient.start(&link).await.status, 201);
            let patient = Patient {
                http: patient.http,
                base: bases[1 - on].clone(),
            };
            register_started(
                &patient,
                "separate_route",
                1 + n % 5,
                &origins[1 - on],
                today,
            )
            .await
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.expect("task"));
    }
    for _ in 0..400 {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM receptions WHERE status = 'confirmed'")
            .fetch_one(&first.state.db)
            .await
            .expect("count");
        if row.get::<i64, _>("n") == ids.len() as i64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    for id in &ids {
        let reception = storage::receptions::get(&first.state.db, id)
            .await
            .expect("read")
            .expect("reception");
        assert_eq!(reception.status, storage::receptions::Status::Confirmed);
    }
    assert_eq!(first.backend_registrations().await, ids.len() as i64);
}

/// The rest of the flow on a session already started.
async fn register_started(
    patient: &Patient,
    kind: &str,
    no: u32,
    origin: &str,
    today: NaiveDate,
) -> String {
    let review = patient.choose(choices_for(kind, today)).await;
    assert_eq!(review.status, 200, "{:?}", review.body);
    let challenge = patient.challenge().await;
    let message = challenge.body["message"].as_str().expect("message");
    let signed = card_sign(no, CertificateCase::Valid, message).await;
    let challenge = challenge.body["challenge"].as_str().expect("challenge");
    let accepted = patient.submit(proof(challenge, origin, &signed)).await;
    assert_eq!(accepted.status, 202, "{:?}", accepted.body);
    accepted.body["reception_id"]
        .as_str()
        .expect("id")
        .to_owned()
}

/// 同意照会・取消: the same card sees its receptions here and withdraws them all; another card
/// sees none; nothing is shown without the card's proof.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_patient_sees_and_withdraws_their_consents_with_the_card() {
    let stack = stack(None).await;
    let origin = stack.origin();
    for kind in ["separate_route", "online_care"] {
        let patient = Patient::new(&stack.base);
        let accepted = register(&patient, &stack.link(kind), kind, 3, &origin, stack.today()).await;
        assert_eq!(accepted.status, 202);
        assert_eq!(patient.settled(200).await.body["status"], "confirmed");
    }
    let http = |p: &Patient, path: &str| format!("{}{path}", p.base);
    let manage = |no: u32| {
        let stack = &stack;
        let origin = origin.clone();
        async move {
            let patient = Patient::new(&stack.base);
            assert_eq!(
                patient.start(&stack.link("separate_route")).await.status,
                201
            );
            let unproven = patient
                .http
                .get(http(&patient, "/api/session/manage"))
                .send()
                .await
                .expect("answer");
            assert_eq!(unproven.status(), 401);
            let challenge: Value = patient
                .http
                .post(http(&patient, "/api/session/manage/challenge"))
                .send()
                .await
                .expect("answer")
                .json()
                .await
                .expect("json");
            let message = challenge["message"].as_str().expect("message");
            assert!(message.starts_with("uketsuke-manage-binding-v1\n"));
            let signed = card_sign(no, CertificateCase::Valid, message).await;
            let listed: Value = patient
                .http
                .post(http(&patient, "/api/session/manage/proof"))
                .json(&proof(
                    challenge["challenge"].as_str().expect("c"),
                    &origin,
                    &signed,
                ))
                .send()
                .await
                .expect("answer")
                .json()
                .await
                .expect("json");
            (patient, listed)
        }
    };
    let (_, stranger) = manage(4).await;
    assert_eq!(stranger["receptions"].as_array().map(Vec::len), Some(0));
    let (patient, mine) = manage(3).await;
    let list = mine["receptions"].as_array().expect("list");
    assert_eq!(list.len(), 2, "{mine}");
    assert!(list.iter().all(|r| r["withdrawn"] == false));
    let after: Value = patient
        .http
        .post(http(&patient, "/api/session/manage/withdraw-all"))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    let list = after["receptions"].as_array().expect("list");
    assert_eq!(list.len(), 2);
    assert!(list.iter().all(|r| r["withdrawn"] == true), "{after}");
}

/// A patient's session on `link` in which the card of person `no` proved itself for 同意照会;
/// returns the patient and the list the proof answered with.
async fn proven_manager(stack: &Stack, link: &str, no: u32) -> (Patient, Value) {
    let patient = Patient::new(&stack.base);
    assert_eq!(patient.start(link).await.status, 201);
    let challenge: Value = patient
        .http
        .post(format!("{}/api/session/manage/challenge", patient.base))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    let message = challenge["message"].as_str().expect("message");
    let signed = card_sign(no, CertificateCase::Valid, message).await;
    let listed = patient
        .http
        .post(format!("{}/api/session/manage/proof", patient.base))
        .json(&proof(
            challenge["challenge"].as_str().expect("challenge"),
            &stack.origin(),
            &signed,
        ))
        .send()
        .await
        .expect("answer");
    assert_eq!(listed.status(), 200);
    (patient, listed.json().await.expect("json"))
}

/// `PUT /api/session/manage/receptions/{id}/consent` with a raw body.
async fn put_consent(patient: &Patient, id: &str, body: &str) -> (u16, Value) {
    let answer = patient
        .http
        .put(format!(
            "{}/api/session/manage/receptions/{id}/consent",
            patient.base
        ))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("answer");
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

fn consent_json(clinical_medication: bool, checkups: bool) -> String {
    json!({ "clinical_medication": clinical_medication, "checkups": checkups }).to_string()
}

fn listed<'a>(list: &'a Value, id: &str) -> &'a Value {
    list["receptions"]
        .as_array()
        .and_then(|all| all.iter().find(|r| r["id"] == id))
        .unwrap_or_else(|| panic!("{id} not in {list}"))
}

/// 同意の更新: the patient, with the card proven again, changes each category of a reception
/// that is still open, both ways; the console's gate follows at once, the live list hears of
/// it, and the backend gets it through the relay. Other cards' and institutions' receptions are
/// not found; withdrawn, closed and eligibility-only ones are refused with their reason.
async fn consent_updates_on(database_url: Option<&str>, engine: &str) {
    let stack = stack(database_url).await;
    let state = &stack.state;
    let mut ids = Vec::new();
    for kind in ["separate_route", "eligibility_only", "house_call"] {
        let patient = Patient::new(&stack.base);
        let accepted = register(
            &patient,
            &stack.link(kind),
            kind,
            3,
            &stack.origin(),
            stack.today(),
        )
        .await;
        assert_eq!(accepted.status, 202, "{engine} {kind}: {:?}", accepted.body);
        assert_eq!(patient.settled(200).await.body["status"], "confirmed");
        ids.push(
            accepted.body["reception_id"]
                .as_str()
                .expect("id")
                .to_owned(),
        );
    }
    let (open, limited, house_call) = (&ids[0], &ids[1], &ids[2]);
    let before = storage::receptions::get(&state.db, open)
        .await
        .expect("read")
        .expect("reception");
    let viewer = Reader {
        institution_id: &before.institution_id,
        role: Role::MedicalViewer,
    };
    // Registered with 診療・薬剤情報 only; staff read it once (the copy is kept).
    read_medical(state, viewer, open, MedicalCategory::ClinicalMedication)
        .await
        .expect("clinical consented");
    assert!(matches!(
        read_medical(state, viewer, open, MedicalCategory::Checkups).await,
        Err(GateError::Refused(GateRefusal::NotConsented))
    ));

    // Nothing without the card's proof in this session.
    let unproven = Patient::new(&stack.base);
    assert_eq!(
        unproven.start(&stack.link("separate_route")).await.status,
        201
    );
    let (status, body) = put_consent(&unproven, open, &consent_json(false, true)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("card_not_proven"))
    );

    let (patient, mine) = proven_manager(&stack, &stack.link("separate_route"), 3).await;
    assert_eq!(listed(&mine, open)["changeable"], true, "{mine}");
    assert_eq!(listed(&mine, limited)["changeable"], false);
    for bad in [
        "",
        "{",
        r#"{"clinical_medication": "yes", "checkups": true}"#,
        r#"{"clinical_medication": true}"#,
        r#"{"clinical_medication": true, "checkups": true, "visit_date": "2030-01-01"}"#,
    ] {
        let (status, body) = put_consent(&patient, open, bad).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (422, Some("body_invalid")),
            "{engine} {bad}"
        );
    }
    let (status, body) = put_consent(&patient, "0000000000000000000000000z", "{}").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (422, Some("body_invalid"))
    );
    let (status, body) = put_consent(
        &patient,
        "0000000000000000000000000z",
        &consent_json(true, true),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("reception_unknown"))
    );
    let (status, body) = put_consent(&patient, limited, &consent_json(true, false)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (422, Some("no_medical_information"))
    );
    let (status, body) = put_consent(&patient, open, &consent_json(true, false)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("consent_unchanged"))
    );

    // Another card at the same institution: not found, and nothing changes.
    let (stranger, theirs) = proven_manager(&stack, &stack.link("separate_route"), 4).await;
    assert_eq!(theirs["receptions"].as_array().map(Vec::len), Some(0));
    let (status, _) = put_consent(&stranger, open, &consent_json(false, false)).await;
    assert_eq!(status, 404);
    // The same card at another institution: not found either.
    sqlx::query(
        "INSERT INTO institutions (id, code, name_ja, name_en, created_at) \
         VALUES ('otherinstitution000000000', '2716543210', 'x', 'x', 0)",
    )
    .execute(&state.db)
    .await
    .expect("other institution");
    let elsewhere = storage::links::create(
        &state.db,
        &storage::links::NewLink {
            institution_id: "otherinstitution000000000",
            kind: uketsuke_domain::ReceptionKind::DeviceFailure,
            visit_date: None,
            booking_ref: None,
            label: None,
            expires_at: None,
        },
        state.clock.now_ms(),
    )
    .await
    .expect("link");
    let (there, none) = proven_manager(&stack, &elsewhere, 3).await;
    assert_eq!(none["receptions"].as_array().map(Vec::len), Some(0));
    let (status, _) = put_consent(&there, open, &consent_json(false, false)).await;
    assert_eq!(status, 404);
    let unchanged = storage::receptions::get(&state.db, open)
        .await
        .expect("read")
        .expect("reception");
    assert_eq!(unchanged.consent, before.consent);

    // Revoke 診療・薬剤情報, grant 特定健診等情報: the gate follows at once.
    let (status, after) = put_consent(&patient, open, &consent_json(false, true)).await;
    assert_eq!(status, 200, "{engine}: {after}");
    let item = listed(&after, open);
    assert_eq!(
        (
            &item["clinical_medication"],
            &item["checkups"],
            &item["changeable"]
        ),
        (&json!(false), &json!(true), &json!(true))
    );
    assert_eq!(item["visit_date"], listed(&mine, open)["visit_date"]);
    assert_eq!(item["window_end"], listed(&mine, open)["window_end"]);
    assert!(matches!(
        read_medical(state, viewer, open, MedicalCategory::ClinicalMedication).await,
        Err(GateError::Refused(GateRefusal::NotConsented))
    ));
    let kept = sqlx::query("SELECT COUNT(*) AS n FROM medical_data WHERE reception_id = $1")
        .bind(open.as_str())
        .fetch_one(&state.db)
        .await
        .expect("count");
    assert_eq!(kept.get::<i64, _>("n"), 0, "the revoked copy is gone");
    read_medical(state, viewer, open, MedicalCategory::Checkups)
        .await
        .expect("checkups readable inside the window");
    let updated = storage::receptions::get(&state.db, open)
        .await
        .expect("read")
        .expect("reception");
    assert_eq!(updated.visit_date, before.visit_date);
    assert_eq!(updated.window(), before.window());
    // The console's live list polls `updated_at`.
    let moved = sqlx::query("SELECT updated_at FROM receptions WHERE id = $1")
        .bind(open.as_str())
        .fetch_one(&state.db)
        .await
        .expect("updated_at");
    assert!(moved.get::<i64, _>("updated_at") >= state.clock.now_ms() - 60_000);
    stack.backend_consent_becomes(open, (false, true)).await;
    // And back again, twice in a row: the backend ends with the last one.
    let (status, _) = put_consent(&patient, open, &consent_json(true, true)).await;
    assert_eq!(status, 200);
    let (status, _) = put_consent(&patient, open, &consent_json(true, false)).await;
    assert_eq!(status, 200);
    stack.backend_consent_becomes(open, (true, false)).await;

    // A closed window stays closed (house call: 24 hours). The session outlives neither, so the
    // card proves itself again.
    state.clock.advance_ms(DAY_MS + 3_600_000);
    let (later, list) = proven_manager(&stack, &stack.link("separate_route"), 3).await;
    assert_eq!(listed(&list, house_call)["changeable"], false);
    let (status, body) = put_consent(&later, house_call, &consent_json(false, false)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("window_closed"))
    );

    // Withdrawn: refused.
    let withdrawn = later
        .http
        .post(format!("{}/api/session/manage/withdraw-all", later.base))
        .send()
        .await
        .expect("answer");
    assert_eq!(withdrawn.status(), 200);
    let (status, body) = put_consent(&later, open, &consent_json(false, false)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("reception_withdrawn"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_patient_updates_their_consents_on_every_engine() {
    for db in common::engines().await {
        let url = (db.engine == "postgres").then_some(db.url.as_str());
        consent_updates_on(url, db.engine).await;
    }
}
