//! 閲覧履歴 (issue 15 §1): on 同意照会, after proving their card again, the patient sees every
//! read of each reception's information — when (JST, to the minute), what, and who by role and
//! staff ID — from the audit log's own rows; refusals are not listed, another patient sees
//! none of it, and the history outlives the consent window until the institution's retention
//! ends. Through HTTP against the real server and the simulator, on SQLite and PostgreSQL.

mod common;

use common::console::{demo_staff, signin};
use common::patient::{Patient, card_sign};
use common::stack::Stack;
use reqwest::Method;
use serde_json::{Value, json};
use uketsuke_backend::simulator::population::CertificateCase;
use uketsuke_domain::window::to_jst;

/// Two ordinary people of the simulator's population.
const PATIENT: u32 = 44;
const OTHER: u32 = 45;

const MINUTE_MS: i64 = 60 * 1000;
const DAY_MS: i64 = 24 * 3600 * 1000;

/// A confirmed online-care reception (both categories consented) by person `no`, with its
/// eligibility; returns its id.
async fn reception(stack: &Stack, no: u32) -> String {
    stack.confirmed_reception("online_care", no).await
}

/// 同意照会 for person `no`: a new session on the online-care link, the card's proof; returns
/// the list the server answers.
async fn managed(stack: &Stack, no: u32) -> Value {
    let patient = Patient::new(&stack.base);
    let started = patient
        .http
        .post(format!(
            "{}/api/r/{}/manage/session",
            patient.base,
            stack.link("online_care")
        ))
        .send()
        .await
        .expect("answer");
    assert_eq!(started.status().as_u16(), 201);
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
    let (certificate, signature) = card_sign(no, CertificateCase::Valid, message).await;
    let answer = patient
        .http
        .post(format!("{}/api/session/manage/proof", patient.base))
        .json(&json!({
            "challenge": challenge["challenge"],
            "origin": stack.origin(),
            "certificate": certificate,
            "signature": signature,
        }))
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status().as_u16(), 200);
    answer.json().await.expect("json")
}

/// The reads listed for reception `id` in a 同意照会 answer (`None`: the reception is not in it).
fn reads_of(list: &Value, id: &str) -> Option<Vec<Value>> {
    list["receptions"]
        .as_array()
        .expect("receptions")
        .iter()
        .find(|r| r["id"] == id)
        .map(|r| r["reads"].as_array().expect("reads").clone())
}

fn jst_minute(ms: i64) -> String {
    to_jst(uketsuke_server::clock::from_ms(ms))
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_patient_sees_every_read_and_nothing_else() {
    for db in common::engines().await {
        eprintln!("engine: {}", db.engine);
        the_patient_sees_every_read_on(&db.url).await;
    }
}

async fn the_patient_sees_every_read_on(url: &str) {
    let stack = common::stack::stack(Some(url), Some("http://localhost:0")).await;
    let id = reception(&stack, PATIENT).await;
    let other_id = reception(&stack, OTHER).await;
    let (doctor, _) = demo_staff(&stack, "doctor").await;
    let (general, _) = demo_staff(&stack, "staff").await;
    let (_, mut admin_key) = demo_staff(&stack, "admin").await;
    let clock = &stack.state.clock;
    let r = format!("/api/console/receptions/{id}");

    // The doctor reads both categories, a minute apart; general staff read the eligibility.
    clock.advance_ms(MINUTE_MS);
    let first = clock.now_ms();
    let clinical = doctor
        .get(&format!("{r}/medical/clinical_medication"))
        .await;
    assert_eq!(clinical.status, 200, "{clinical:?}");
    clock.advance_ms(MINUTE_MS);
    let second = clock.now_ms();
    let checkups = doctor.get(&format!("{r}/medical/checkups")).await;
    assert_eq!(checkups.status, 200, "{checkups:?}");
    clock.advance_ms(MINUTE_MS);
    let third = clock.now_ms();
    let detail = general.get(&r).await;
    assert_eq!(detail.status, 200, "{detail:?}");
    // A refused read is not a read: general staff may not see medical information.
    let refused = general.get(&format!("{r}/medical/checkups")).await;
    assert_eq!(
        (refused.status, refused.error()),
        (403, Some("role_not_permitted"))
    );
    // The day's list shows names only and is not a read of one reception.
    assert_eq!(general.get("/api/console/receptions").await.status, 200);

    let list = managed(&stack, PATIENT).await;
    let reads = reads_of(&list, &id).expect("the patient's reception");
    let expected = [
        (first, "clinical_medication", "medical_viewer", "doctor"),
        (second, "checkups", "medical_viewer", "doctor"),
        (third, "eligibility", "general", "staff"),
    ];
    assert_eq!(reads.len(), expected.len(), "{reads:?}");
    for (read, (at, category, role, staff)) in reads.iter().zip(expected) {
        assert_eq!(read["at"], jst_minute(at), "{read}");
        assert_eq!(read["category"], category, "{read}");
        assert_eq!(read["role"], role, "{read}");
        assert_eq!(read["staff_id"], staff, "{read}");
        // Never the staff member's name.
        assert!(read.get("name").is_none(), "{read}");
    }
    assert!(
        reads_of(&list, &other_id).is_none(),
        "another patient's reception is not listed"
    );

    // Another patient sees none of it: their own reception was never read.
    let others = managed(&stack, OTHER).await;
    assert_eq!(reads_of(&others, &other_id), Some(vec![]));
    assert!(reads_of(&others, &id).is_none());

    // Two days on the window has closed (the gate refuses), and the history is still there.
    clock.advance_ms(2 * DAY_MS);
    let doctor = signin(&stack, &mut demo_key(&stack, "doctor").await).await;
    let closed = doctor
        .get(&format!("{r}/medical/clinical_medication"))
        .await;
    assert_eq!(
        (closed.status, closed.error()),
        (403, Some("window_closed"))
    );
    let later = managed(&stack, PATIENT).await;
    let item = later["receptions"]
        .as_array()
        .expect("receptions")
        .iter()
        .find(|r| r["id"] == id.as_str())
        .expect("listed")
        .clone();
    assert_eq!(item["changeable"], false, "window closed: {item}");
    assert_eq!(item["reads"].as_array().expect("reads").len(), 3, "{item}");

    // Until the institution's retention ends: with one day of retention, reads two days old
    // are no longer shown.
    let admin = signin(&stack, &mut admin_key).await;
    let settings = admin.get("/api/console/settings").await;
    let mut body = settings.body.clone();
    body["eligibility_retention_days"] = json!(1);
    let put = admin
        .call(Method::PUT, "/api/console/settings", Some(body))
        .await;
    assert_eq!(put.status, 200, "{put:?}");
    let expired = managed(&stack, PATIENT).await;
    assert_eq!(reads_of(&expired, &id), Some(vec![]));
}

/// A fresh passkey for demo account `account` (the first one's session went idle with the
/// clock).
async fn demo_key(stack: &Stack, account: &str) -> common::console::SoftPasskey {
    let code = common::console::demo_code(stack, account).await;
    common::console::enrol(stack, &code).await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_is_a_read_of_eligibility() {
    let stack = common::stack::stack(None, Some("http://localhost:0")).await;
    let id = reception(&stack, PATIENT).await;
    let (general, _) = demo_staff(&stack, "staff").await;
    let csv = general
        .get(&format!("/api/console/receptions/{id}/eligibility.csv"))
        .await;
    assert_eq!(csv.status, 200);
    let list = managed(&stack, PATIENT).await;
    let reads = reads_of(&list, &id).expect("listed");
    assert_eq!(reads.len(), 1, "{reads:?}");
    assert_eq!(reads[0]["category"], "eligibility");
    assert_eq!(reads[0]["staff_id"], "staff");
    // The audit row and the history row are one record.
    let rows: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_reads r JOIN audit_log l \
           ON l.institution_id = r.institution_id AND l.seq = r.seq \
         WHERE r.reception_id = $1 AND l.action = 'eligibility.export'",
    )
    .bind(&id)
    .fetch_one(&stack.state.db)
    .await
    .expect("count");
    assert_eq!(rows, 1);
}
