//! A renewed certificate is the same patient (issue 11 §4). The 利用者証明用電子証明書 is renewed
//! every five years and with a reissued card, and its serial changes; 同意照会・更新・取消 finds
//! the patient's receptions by the backend's person reference (PROTOCOL.md §6.7), and rows
//! without one (made before migration 0005) by the hash of the serial. Through HTTP against the
//! real server and the simulator, on SQLite and PostgreSQL.

mod common;

use std::time::Duration;

use chrono::NaiveDate;
use common::patient::{Patient, choices_for};
use common::stack::Stack;
use serde_json::{Value, json};
use sqlx::Row;
use uketsuke_backend::contract::b64_encode;
use uketsuke_backend::simulator::FaultConfig;
use uketsuke_backend::simulator::keys::{self, OTHER_CLINIC};
use uketsuke_backend::simulator::population::{self, virtual_card_of_generation};
use uketsuke_card::{jpki::authenticate, pin::Pin};
use uketsuke_server::storage::{self, receptions::ProvenPatient};

/// An ordinary person of the population who renews during the test.
const RENEWING: u32 = 40;
/// Another ordinary person, who must never see the first one's receptions.
const STRANGER: u32 = 41;

/// Person `no`'s card of certificate `generation` signs `message` after the PIN; returns
/// (certificate, signature) as base64url.
async fn sign(no: u32, generation: u32, message: &str) -> (String, String) {
    let mut card = virtual_card_of_generation(no, generation).expect("virtual card");
    let pin = Pin::new(&population::pin_of(no)).expect("pin");
    let auth = authenticate(&mut card, &pin, message.as_bytes())
        .await
        .expect("card signs");
    (
        b64_encode(&auth.certificate_der),
        b64_encode(&auth.signature),
    )
}

fn proof(challenge: &Value, origin: &str, signed: &(String, String)) -> Value {
    json!({
        "challenge": challenge["challenge"],
        "origin": origin,
        "certificate": signed.0,
        "signature": signed.1,
    })
}

/// The whole reception flow on `link` with person `no`'s card of `generation`, until the
/// backend confirmed it; returns the reception id.
async fn registered(stack: &Stack, link: &str, kind: &str, no: u32, generation: u32) -> String {
    let patient = Patient::new(&stack.base);
    assert_eq!(patient.start(link).await.status, 201);
    let review = patient.choose(choices_for(kind, stack.today())).await;
    assert_eq!(review.status, 200, "{:?}", review.body);
    let challenge = patient.challenge().await;
    let message = challenge.body["message"].as_str().expect("message");
    let signed = sign(no, generation, message).await;
    let accepted = patient
        .submit(proof(&challenge.body, &stack.origin(), &signed))
        .await;
    assert_eq!(accepted.status, 202, "{:?}", accepted.body);
    let done = patient.settled(200).await;
    assert_eq!(done.body["status"], "confirmed", "{:?}", done.body);
    accepted.body["reception_id"]
        .as_str()
        .expect("id")
        .to_owned()
}

/// A session on `link` in which person `no`'s card of `generation` proved itself on the
/// management page; returns the patient, the status and the answer.
async fn manage(stack: &Stack, link: &str, no: u32, generation: u32) -> (Patient, u16, Value) {
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
    let signed = sign(no, generation, message).await;
    let answer = patient
        .http
        .post(format!("{}/api/session/manage/proof", patient.base))
        .json(&proof(&challenge, &stack.origin(), &signed))
        .send()
        .await
        .expect("answer");
    let status = answer.status().as_u16();
    (patient, status, answer.json().await.unwrap_or(Value::Null))
}

fn ids(list: &Value) -> Vec<String> {
    let mut ids: Vec<String> = list["receptions"]
        .as_array()
        .unwrap_or_else(|| panic!("a list: {list}"))
        .iter()
        .filter_map(|r| r["id"].as_str().map(str::to_owned))
        .collect();
    ids.sort();
    ids
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

async fn person_ref(stack: &Stack, reception_id: &str) -> Option<String> {
    sqlx::query("SELECT person_ref FROM receptions WHERE id = $1")
        .bind(reception_id)
        .fetch_one(&stack.state.db)
        .await
        .expect("row")
        .try_get("person_ref")
        .expect("column")
}

async fn backend_withdrawn(stack: &Stack, reception_id: &str) {
    let registration = storage::receptions::get(&stack.state.db, reception_id)
        .await
        .expect("read")
        .and_then(|r| r.registration_id)
        .expect("registered");
    let pool = sqlx::SqlitePool::connect(&stack.sim_db)
        .await
        .expect("sim db");
    for _ in 0..200 {
        let withdrawn: Option<String> =
            sqlx::query_scalar("SELECT withdrawn_at FROM registrations WHERE id = ?")
                .bind(&registration)
                .fetch_one(&pool)
                .await
                .expect("registration");
        if withdrawn.is_some() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the backend never heard of the withdrawal");
}

/// The second demo institution of the simulator (its own key and code), with one link.
async fn other_institution(stack: &Stack) -> String {
    let state = &stack.state;
    let id = "otherclinic00000000000000";
    sqlx::query(
        "INSERT INTO institutions (id, code, name_ja, name_en, created_at) \
         VALUES ($1, $2, 'うけつけ第二クリニック', 'Uketsuke Second Clinic', 0)",
    )
    .bind(id)
    .bind(keys::institution_code(OTHER_CLINIC).as_str())
    .execute(&state.db)
    .await
    .expect("other institution");
    storage::institutions::set_key(
        &state.db,
        id,
        OTHER_CLINIC.key_id,
        &keys::institution_signing_key(OTHER_CLINIC),
    )
    .await
    .expect("key");
    storage::links::create(
        &state.db,
        &storage::links::NewLink {
            institution_id: id,
            kind: uketsuke_domain::ReceptionKind::SeparateRoute,
            visit_date: None,
            booking_ref: None,
            label: None,
            expires_at: None,
        },
        state.clock.now_ms(),
    )
    .await
    .expect("link")
}

async fn put_consent(patient: &Patient, id: &str, clinical: bool, checkups: bool) -> (u16, Value) {
    let answer = patient
        .http
        .put(format!(
            "{}/api/session/manage/receptions/{id}/consent",
            patient.base
        ))
        .json(&json!({ "clinical_medication": clinical, "checkups": checkups }))
        .send()
        .await
        .expect("answer");
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

async fn renewal_on(database_url: Option<&str>, engine: &str) {
    let stack = common::stack::stack(database_url, None).await;
    let here = stack.link("separate_route");

    // With the first certificate: an open 訪問診療等 consent, and a separate-route one.
    let home_visit = registered(&stack, &stack.link("home_visit"), "home_visit", RENEWING, 0).await;
    let separate = registered(&stack, &here, "separate_route", RENEWING, 0).await;
    let reference = person_ref(&stack, &home_visit)
        .await
        .unwrap_or_else(|| panic!("{engine}: the registration answer named the person"));
    assert_eq!(
        person_ref(&stack, &separate).await.as_deref(),
        Some(reference.as_str())
    );
    // A reception made before person references existed: only the serial hash.
    let old_row = registered(&stack, &here, "house_call", RENEWING, 0).await;
    sqlx::query("UPDATE receptions SET person_ref = NULL WHERE id = $1")
        .bind(&old_row)
        .execute(&stack.state.db)
        .await
        .expect("as before the migration");
    // Someone else's reception at the same place.
    let theirs = registered(&stack, &here, "separate_route", STRANGER, 0).await;

    // J-LIS renews the certificate: the old one is revoked by the renewal, at the backend at once
    // (the server's own revocation list learns of it only with its next list).
    let (old, new) = stack
        .sim
        .renew_certificate(RENEWING)
        .await
        .expect("renewed");
    assert_ne!(old, new);

    // The old certificate proves nothing any more, on the management page as elsewhere.
    let (_, status, body) = manage(&stack, &here, RENEWING, 0).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (422, Some("certificate_revoked")),
        "{engine}"
    );

    // The new one proves the person and finds what the old one registered — but not the row
    // without a reference, which only the old card's serial could find: while such a row is
    // open here, the page says that consents of an earlier card may be missing.
    let (patient, status, list) = manage(&stack, &here, RENEWING, 1).await;
    assert_eq!(status, 200, "{engine}: {list}");
    assert_eq!(list["earlier_cards_unknown"], true);
    assert_eq!(
        ids(&list),
        sorted(vec![home_visit.clone(), separate.clone()]),
        "{engine}"
    );

    // …and changes the 訪問診療等 consent: the gate's columns and the backend follow.
    let (status, after) = put_consent(&patient, &home_visit, true, true).await;
    assert_eq!(status, 200, "{engine}: {after}");
    stack
        .backend_consent_becomes(&home_visit, (true, true))
        .await;
    // The other patient's reception is not theirs to change, whoever asks.
    let (status, _) = put_consent(&patient, &theirs, false, false).await;
    assert_eq!(status, 404);

    // …and withdraws everything.
    let withdrawn: Value = patient
        .http
        .post(format!("{}/api/session/manage/withdraw-all", patient.base))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    assert_eq!(ids(&withdrawn), ids(&list));
    assert!(
        withdrawn["receptions"]
            .as_array()
            .is_some_and(|all| all.iter().all(|r| r["withdrawn"] == true)),
        "{engine}: {withdrawn}"
    );
    backend_withdrawn(&stack, &home_visit).await;
    let still = storage::receptions::get(&stack.state.db, &theirs)
        .await
        .expect("read")
        .expect("reception");
    assert!(
        still.withdrawn_at.is_none(),
        "{engine}: the stranger's stays"
    );

    // The other patient sees only their own.
    let (_, status, list) = manage(&stack, &here, STRANGER, 0).await;
    assert_eq!(status, 200);
    assert_eq!(ids(&list), vec![theirs.clone()]);

    // Another institution gets another reference for the same person, and lists only its own.
    let elsewhere = other_institution(&stack).await;
    let there = registered(&stack, &elsewhere, "separate_route", RENEWING, 1).await;
    let there_ref = person_ref(&stack, &there).await.expect("named there");
    assert_ne!(
        there_ref, reference,
        "{engine}: references are per institution"
    );
    let (_, status, list) = manage(&stack, &elsewhere, RENEWING, 1).await;
    assert_eq!(status, 200);
    assert_eq!(ids(&list), vec![there.clone()]);
    let (_, status, list) = manage(&stack, &elsewhere, STRANGER, 0).await;
    assert_eq!(status, 200);
    assert_eq!(ids(&list), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_certificate_finds_the_same_patient_on_every_engine() {
    for db in common::engines().await {
        let url = (db.engine == "postgres").then_some(db.url.as_str());
        renewal_on(url, db.engine).await;
    }
}

/// Rows from before person references are found by the serial hash with the same card; the
/// proof links them to the person, so that after a renewal the new card finds them too. With
/// the backend down, the card's own receptions are listed and the page is told that earlier
/// cards' are not.
async fn rows_without_reference_on(database_url: Option<&str>, engine: &str) {
    let stack = common::stack::stack(database_url, None).await;
    let here = stack.link("separate_route");
    let first = registered(&stack, &here, "separate_route", RENEWING, 0).await;
    let second = registered(&stack, &stack.link("home_visit"), "home_visit", RENEWING, 0).await;
    sqlx::query("UPDATE receptions SET person_ref = NULL")
        .execute(&stack.state.db)
        .await
        .expect("as before the migration");

    // The backend is down: the same card still finds both by its serial hash, and the page
    // learns that receptions of an earlier card cannot be shown.
    stack.sim.faults.set(FaultConfig {
        outage: true,
        ..Default::default()
    });
    let (_, status, list) = manage(&stack, &here, RENEWING, 0).await;
    assert_eq!(status, 200, "{engine}: {list}");
    assert_eq!(list["earlier_cards_unknown"], true);
    assert_eq!(ids(&list), sorted(vec![first.clone(), second.clone()]));
    assert_eq!(person_ref(&stack, &first).await, None);

    // The backend answers again: the same proof names the person and links the old rows.
    stack.sim.faults.set(FaultConfig::default());
    let (_, status, list) = manage(&stack, &here, RENEWING, 0).await;
    assert_eq!(status, 200);
    assert_eq!(list["earlier_cards_unknown"], false);
    assert_eq!(ids(&list), sorted(vec![first.clone(), second.clone()]));
    let linked = person_ref(&stack, &first).await.expect("linked");
    assert_eq!(
        person_ref(&stack, &second).await.as_deref(),
        Some(linked.as_str())
    );

    // So after a renewal the new card finds them.
    stack
        .sim
        .renew_certificate(RENEWING)
        .await
        .expect("renewed");
    let (_, status, list) = manage(&stack, &here, RENEWING, 1).await;
    assert_eq!(status, 200, "{engine}: {list}");
    assert_eq!(ids(&list), sorted(vec![first, second]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_without_a_reference_are_found_by_the_card_on_every_engine() {
    for db in common::engines().await {
        let url = (db.engine == "postgres").then_some(db.url.as_str());
        rows_without_reference_on(url, db.engine).await;
    }
}

/// The population's renewed people: their current card is the renewed one, and the earlier
/// cards are refused on the management page (the backend knows of the renewal).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_populations_renewed_people_prove_with_the_new_card_only() {
    let stack = common::stack::stack(None, None).await;
    let here = stack.link("separate_route");
    let people = population::population(NaiveDate::from_ymd_opt(2026, 11, 21).expect("date"));
    let renewed: Vec<_> = people
        .iter()
        .filter(|p| !p.previous_certificates.is_empty())
        .collect();
    assert!(!renewed.is_empty());
    for person in renewed {
        let current = population::renewals_of(person.no);
        let id = registered(&stack, &here, "separate_route", person.no, current).await;
        for generation in 0..current {
            let (_, status, body) = manage(&stack, &here, person.no, generation).await;
            assert_eq!(
                (status, body["error"].as_str()),
                (422, Some("certificate_revoked")),
                "person {} generation {generation}",
                person.no
            );
        }
        let (_, status, list) = manage(&stack, &here, person.no, current).await;
        assert_eq!(status, 200);
        assert_eq!(ids(&list), vec![id]);
    }
}

/// Migration 0005 on a database that has receptions: they keep only their card reference, and
/// are found by it; a person reference links them once the backend names the card's holder.
async fn migration_on(url: &str, engine: &str) {
    sqlx::any::install_default_drivers();
    let mut before = sqlx::migrate::Migrator::new(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/migrations"
    )))
    .await
    .expect("migrations");
    before.migrations = before
        .migrations
        .iter()
        .filter(|m| m.version < 5)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    let pool = sqlx::AnyPool::connect(&format!(
        "{url}{}",
        if url.starts_with("sqlite:") {
            "?mode=rwc"
        } else {
            ""
        }
    ))
    .await
    .expect("connect");
    before.run(&pool).await.expect("migrations 1–4");
    sqlx::query(
        "INSERT INTO institutions (id, code, name_ja, name_en, created_at) \
         VALUES ('nst00000000000000000000000', '1311234569', 'x', 'x', 0)",
    )
    .execute(&pool)
    .await
    .expect("institution");
    for (id, card) in [
        ("rcptn00000000000000000000a", "card-a"),
        ("rcptn00000000000000000000b", "card-b"),
    ] {
        sqlx::query(
            "INSERT INTO receptions (id, institution_id, kind, visit_date, clinical_medication, \
                checkups, identity_method, card_ref, status, submitted_at, updated_at) \
             VALUES ($1, 'nst00000000000000000000000', 'separate_route', '2026-11-21', 1, 0, \
                'card', $2, 'confirmed', 1, 1)",
        )
        .bind(id)
        .bind(card)
        .execute(&pool)
        .await
        .expect("reception before 0005");
    }
    pool.close().await;

    let db = storage::open(url).await.expect("migrates to the latest");
    let patient = ProvenPatient {
        card_ref: "card-a".to_owned(),
        person_ref: Some("pr-someone".to_owned()),
    };
    let found = storage::receptions::of_card(&db, "nst00000000000000000000000", &patient)
        .await
        .expect("query");
    assert_eq!(
        found.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["rcptn00000000000000000000a"],
        "{engine}"
    );
    let linked = storage::receptions::link_person(&db, "nst00000000000000000000000", &patient)
        .await
        .expect("link");
    assert_eq!(linked, 1);
    // With another card of the same person, the linked row is found by the person.
    let renewed = ProvenPatient {
        card_ref: "card-c".to_owned(),
        person_ref: Some("pr-someone".to_owned()),
    };
    let found = storage::receptions::of_card(&db, "nst00000000000000000000000", &renewed)
        .await
        .expect("query");
    assert_eq!(found.len(), 1, "{engine}");
    // Without a person, nothing beyond the card's own.
    let unknown = ProvenPatient {
        card_ref: "card-c".to_owned(),
        person_ref: None,
    };
    assert!(
        storage::receptions::of_card(&db, "nst00000000000000000000000", &unknown)
            .await
            .expect("query")
            .is_empty()
    );
}

#[tokio::test]
async fn migration_0005_keeps_old_rows_findable_on_every_engine() {
    for db in common::engines().await {
        migration_on(&db.url, db.engine).await;
    }
}

/// Receptions stored before the card reference named the issuing CA (v1: the serial alone) are
/// found by the same card: proving it on 同意照会 moves them to the current reference.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receptions_stored_under_the_serial_alone_are_found_by_their_card() {
    let stack = common::stack::stack(None, None).await;
    let link = stack.link("home_visit");
    let (institution_id,): (String,) =
        sqlx::query_as("SELECT institution_id FROM reception_links WHERE id = $1")
            .bind(&link)
            .fetch_one(&stack.state.db)
            .await
            .expect("link");
    let mut card = virtual_card_of_generation(RENEWING, 0).expect("virtual card");
    let pin = Pin::new(&population::pin_of(RENEWING)).expect("pin");
    let auth = authenticate(&mut card, &pin, b"x")
        .await
        .expect("card reads");
    let now = stack.state.clock.now_ms().div_euclid(1000);
    let serial = population::card_seed_of(RENEWING, 0);
    let digits = serial.to_be_bytes();
    let trimmed = &digits[digits.iter().position(|b| *b != 0).unwrap_or(7)..];
    let legacy =
        storage::receptions::sha256_hex(&[b"uketsuke-card-ref-v1:".as_slice(), trimmed].concat());
    let message = b"manage";
    let (current, from_card) = stack
        .state
        .trust
        .verify_with_legacy(
            &auth.certificate_der,
            message,
            &sign_raw(&mut card, &pin, message).await,
            now,
        )
        .await
        .expect("verified");
    assert_eq!(
        from_card, legacy,
        "the v1 reference is the tagged serial alone"
    );
    assert_ne!(current, legacy);
    sqlx::query(
        "INSERT INTO receptions (id, institution_id, kind, visit_date, clinical_medication, \
            checkups, identity_method, card_ref, status, submitted_at, updated_at) \
         VALUES ('rcptn00000000000000000000c', $1, 'home_visit', '2026-11-21', true, false, \
            'card', $2, 'confirmed', 1, 1)",
    )
    .bind(&institution_id)
    .bind(&legacy)
    .execute(&stack.state.db)
    .await
    .expect("old row");
    let patient = ProvenPatient {
        card_ref: current.clone(),
        person_ref: None,
    };
    let before = storage::receptions::of_card(&stack.state.db, &institution_id, &patient)
        .await
        .expect("read");
    assert!(before.is_empty(), "not found before the move");
    let moved =
        storage::receptions::adopt_card_ref(&stack.state.db, &institution_id, &legacy, &current)
            .await
            .expect("move");
    assert_eq!(moved, 1);
    let after = storage::receptions::of_card(&stack.state.db, &institution_id, &patient)
        .await
        .expect("read");
    assert_eq!(after.len(), 1);
}

async fn sign_raw(card: &mut uketsuke_card::VirtualCard, pin: &Pin, message: &[u8]) -> Vec<u8> {
    authenticate(card, pin, message)
        .await
        .expect("card signs")
        .signature
}
