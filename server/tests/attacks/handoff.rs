//! Section 1, "The origin in the signed text must protect against a relaying site": a phishing
//! site opens a real reception link in its own session (B), takes the challenge and the text
//! to sign, and has the patient's card sign it elsewhere (A is the patient's own session):
//! - a challenge issued to one session and signed correctly is refused from any other session,
//!   for a reception (`challenge_unknown`) and for 同意照会 (the other session stays unproven),
//!   while the session it was issued to can still use it;
//! - a signature over a text naming another origin is refused (`signature_invalid`), and so is
//!   a proof claiming another origin (`foreign_origin`);
//! - the texts the server issues read back through the signer's parser, field for field, and
//!   the signer's rule refuses them for any origin but the server's own
//!   (`uketsuke_backend::contract::binding::check_signing_request`, as the card-reading app and
//!   the practice app apply it).
//!
//! The defence against the relay itself is the signer's (the attacker's own session holds the
//! challenge); the browser test `e2e/tests/attacks.test.mjs` performs it with the practice app.

use crate::common::patient::{Answer, Patient, card_sign, choices_for};
use crate::common::stack::{Stack, stack};
use serde_json::{Value, json};
use uketsuke_backend::contract::binding::{
    SignedText, SigningRefusal, check_signing_request, parse_signed_text,
};
use uketsuke_backend::simulator::{keys, population::CertificateCase};

const KIND: &str = "separate_route";
/// A person of the simulator's population with a valid card.
const PERSON: u32 = 1;
const EVIL: &str = "https://evil.example";

fn proof(challenge: &str, origin: &str, signed: &(String, String)) -> Value {
    json!({
        "challenge": challenge,
        "origin": origin,
        "certificate": signed.0,
        "signature": signed.1,
    })
}

/// `(challenge, message)` of an answer that issued one.
fn issued(answer: &Answer) -> (String, String) {
    assert_eq!(answer.status, 200, "challenge: {:?}", answer.body);
    let field = |name: &str| {
        answer.body[name]
            .as_str()
            .unwrap_or_else(|| panic!("{name} in {:?}", answer.body))
            .to_owned()
    };
    (field("challenge"), field("message"))
}

/// A session on the reception link with its choices made, ready for a challenge.
async fn reception_session(stack: &Stack) -> Patient {
    let patient = Patient::new(&stack.base);
    assert_eq!(patient.start(&stack.link(KIND)).await.status, 201);
    let review = patient.choose(choices_for(KIND, stack.today())).await;
    assert_eq!(review.status, 200, "{:?}", review.body);
    patient
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

/// A session on the reception link, asking for 同意照会.
async fn manage_session(stack: &Stack) -> (Patient, String, String) {
    let patient = Patient::new(&stack.base);
    assert_eq!(patient.start(&stack.link(KIND)).await.status, 201);
    let (challenge, message) = issued(&post(&patient, "/api/session/manage/challenge", None).await);
    (patient, challenge, message)
}

async fn manage_list_status(patient: &Patient) -> u16 {
    patient
        .http
        .get(format!("{}/api/session/manage", patient.base))
        .send()
        .await
        .expect("server answers")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relayed_reception_challenge_is_refused_in_another_session() {
    let stack = stack(None, None).await;
    let origin = stack.origin();
    // The attacker's session B holds the challenge; the patient's session A is elsewhere.
    let attacker = reception_session(&stack).await;
    let (challenge, message) = issued(&attacker.challenge().await);
    let patient = reception_session(&stack).await;
    let signed = card_sign(PERSON, CertificateCase::Valid, &message).await;

    // The signature, genuine and over the real text, submitted from the patient's session
    // (where the relay would land it on the real origin): not this session's challenge.
    let answer = patient.submit(proof(&challenge, &origin, &signed)).await;
    assert_eq!(
        answer.error(),
        Some("challenge_unknown"),
        "{:?}",
        answer.body
    );
    // From a third session too.
    let other = reception_session(&stack).await;
    let answer = other.submit(proof(&challenge, &origin, &signed)).await;
    assert_eq!(
        answer.error(),
        Some("challenge_unknown"),
        "{:?}",
        answer.body
    );
    assert_eq!(stack.backend_registrations().await, 0);

    // The session it was issued to can still use it: the refusals above were the session's.
    let answer = attacker.submit(proof(&challenge, &origin, &signed)).await;
    assert_eq!(answer.status, 202, "{:?}", answer.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relayed_manage_challenge_does_not_prove_another_session() {
    let stack = stack(None, None).await;
    let origin = stack.origin();
    let (attacker, challenge, message) = manage_session(&stack).await;
    let (patient, _, _) = manage_session(&stack).await;
    let signed = card_sign(PERSON, CertificateCase::Valid, &message).await;

    let answer = post(
        &patient,
        "/api/session/manage/proof",
        Some(proof(&challenge, &origin, &signed)),
    )
    .await;
    assert_eq!(
        answer.error(),
        Some("challenge_unknown"),
        "{:?}",
        answer.body
    );
    // Nothing of the card's is listed to, or can be withdrawn from, that session.
    assert_eq!(manage_list_status(&patient).await, 401);
    let withdraw = post(&patient, "/api/session/manage/withdraw-all", None).await;
    assert_eq!(withdraw.status, 401, "{:?}", withdraw.body);

    // The session it was issued to is proven by the same signature.
    assert_eq!(manage_list_status(&attacker).await, 401);
    let answer = post(
        &attacker,
        "/api/session/manage/proof",
        Some(proof(&challenge, &origin, &signed)),
    )
    .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(manage_list_status(&attacker).await, 200);
}

/// The relaying site's own origin, signed into the text or claimed in the proof, in the session
/// that holds the challenge: refused for a reception and for 同意照会.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signature_for_another_origin_is_refused() {
    let stack = stack(None, None).await;
    let origin = stack.origin();
    let real_line = format!("\norigin={origin}\n");
    let evil_line = format!("\norigin={EVIL}\n");

    // Reception: the text with the attacker's origin, signed by the real card.
    let session = reception_session(&stack).await;
    let (challenge, message) = issued(&session.challenge().await);
    let phished = message.replace(&real_line, &evil_line);
    assert_ne!(phished, message);
    let signed = card_sign(PERSON, CertificateCase::Valid, &phished).await;
    let answer = session.submit(proof(&challenge, &origin, &signed)).await;
    assert_eq!(
        answer.error(),
        Some("signature_invalid"),
        "{:?}",
        answer.body
    );
    let session = reception_session(&stack).await;
    let (challenge, message) = issued(&session.challenge().await);
    let signed = card_sign(PERSON, CertificateCase::Valid, &message).await;
    let answer = session.submit(proof(&challenge, EVIL, &signed)).await;
    assert_eq!(answer.error(), Some("foreign_origin"), "{:?}", answer.body);

    // 同意照会: the same two.
    let (session, challenge, message) = manage_session(&stack).await;
    let phished = message.replace(&real_line, &evil_line);
    assert_ne!(phished, message);
    let signed = card_sign(PERSON, CertificateCase::Valid, &phished).await;
    let answer = post(
        &session,
        "/api/session/manage/proof",
        Some(proof(&challenge, &origin, &signed)),
    )
    .await;
    assert_eq!(
        answer.error(),
        Some("signature_invalid"),
        "{:?}",
        answer.body
    );
    assert_eq!(manage_list_status(&session).await, 401);
    let (session, challenge, message) = manage_session(&stack).await;
    let signed = card_sign(PERSON, CertificateCase::Valid, &message).await;
    let answer = post(
        &session,
        "/api/session/manage/proof",
        Some(proof(&challenge, EVIL, &signed)),
    )
    .await;
    assert_eq!(answer.error(), Some("foreign_origin"), "{:?}", answer.body);
    assert_eq!(manage_list_status(&session).await, 401);
    assert_eq!(stack.backend_registrations().await, 0);
}

/// The server's texts are exactly what the signer's parser reads, and the signer refuses them
/// to every origin but the server's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_signer_reads_the_servers_texts_and_refuses_a_relay() {
    let stack = stack(None, None).await;
    let origin = stack.origin();
    let clinic = keys::institution_code(keys::DEMO_CLINIC);

    let session = reception_session(&stack).await;
    let (challenge, message) = issued(&session.challenge().await);
    match parse_signed_text(message.as_bytes()) {
        Ok(SignedText::Consent(text)) => {
            assert_eq!(text.origin, origin);
            assert_eq!(text.challenge, challenge);
            assert_eq!(text.institution, clinic);
            assert_eq!(text.kind.code(), KIND);
            assert_eq!(text.visit_date, stack.today());
            assert!(text.consent.clinical_medication && !text.consent.checkups);
            assert_eq!(text.prescription_method, None);
        }
        other => panic!("{other:?} for {message:?}"),
    }
    let (manage_session, manage_challenge, manage_text) = manage_session(&stack).await;
    match parse_signed_text(manage_text.as_bytes()) {
        Ok(SignedText::Manage(text)) => {
            assert_eq!(text.origin, origin);
            assert_eq!(text.challenge, manage_challenge);
            assert_eq!(text.institution, clinic);
        }
        other => panic!("{other:?} for {manage_text:?}"),
    }

    let back = |on: &str| format!("{on}/r/{}/eid-return", stack.link(KIND));
    // What the practice app and a real app accept: the real page's request.
    assert!(check_signing_request(&origin, &challenge, &message, &back(&origin)).is_ok());
    // The relaying site's request: its origin and return address, the real text.
    let loopback_alias = origin.replace("localhost", "127.0.0.1");
    assert_ne!(loopback_alias, origin);
    for relay in [EVIL, loopback_alias.as_str()] {
        assert_eq!(
            check_signing_request(relay, &challenge, &message, &back(relay)),
            Err(SigningRefusal::OriginMismatch),
            "{relay}"
        );
        assert_eq!(
            check_signing_request(&origin, &challenge, &message, &back(relay)),
            Err(SigningRefusal::ReturnElsewhere),
            "{relay}"
        );
        assert_eq!(
            check_signing_request(relay, &manage_challenge, &manage_text, &back(relay)),
            Err(SigningRefusal::OriginMismatch),
            "{relay}"
        );
    }
    // Nothing was signed or used: both sessions can still go on.
    let signed = card_sign(PERSON, CertificateCase::Valid, &manage_text).await;
    let answer = post(
        &manage_session,
        "/api/session/manage/proof",
        Some(proof(&manage_challenge, &origin, &signed)),
    )
    .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
}
