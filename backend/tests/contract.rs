//! Contract tests: a real simulator on a loopback port, reached through the signed wire
//! format, with virtual cards of the population. Every refusal reason of the contract is
//! provoked here, and the transport attacks (replay, tampering, stale timestamps, foreign
//! keys, forged certificates, wrong-person signatures) are refused.

use std::net::SocketAddr;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use uketsuke_backend::contract::signing::{self, HEADER_TIMESTAMP, RequestSigner, ResponseError};
use uketsuke_backend::contract::*;
use uketsuke_backend::simulator::client::{ClientError, SignedClient};
use uketsuke_backend::simulator::keys::{self, BACKEND_KEY_ID, DEMO_CLINIC, OTHER_CLINIC};
use uketsuke_backend::simulator::population::{self, CertificateCase};
use uketsuke_backend::simulator::{FaultConfig, Running, SimClock, SimOptions, spawn_with};
use uketsuke_card::test_ca::{TestCa, UserCertificateRequest};
use uketsuke_card::{Pin, authenticate};
use uketsuke_domain::eligibility::{EligibilityOutcome, EligibilityWarning, NoEligibilityReason};
use uketsuke_domain::{InstitutionCode, ReceptionKind, Window};

const ORIGIN: &str = "https://uketsuke.example.jp";

/// 2026-11-21 10:00 JST.
fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 1, 0, 0)
        .single()
        .expect("valid instant")
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 21).expect("date")
}

struct Env {
    sim: Running,
    demo: SignedClient,
    other: SignedClient,
}

fn client_for(sim: &Running, institution: keys::DemoInstitution) -> SignedClient {
    SignedClient::new(
        sim.base_url(),
        keys::institution_signer(institution).expect("signer"),
        keys::backend_verifying_key(),
        BACKEND_KEY_ID,
    )
    .expect("client")
}

async fn env() -> Env {
    let options = SimOptions {
        clock: SimClock::frozen(start()),
        ..Default::default()
    };
    let sim = spawn_with(SocketAddr::from(([127, 0, 0, 1], 0)), options)
        .await
        .expect("simulator starts");
    let demo = client_for(&sim, DEMO_CLINIC);
    let other = client_for(&sim, OTHER_CLINIC);
    Env { sim, demo, other }
}

fn demo_code() -> InstitutionCode {
    keys::institution_code(DEMO_CLINIC)
}

fn challenge(n: u8) -> String {
    b64_encode(&[n; 32])
}

fn request(kind: ReceptionKind, idem: &str) -> RegistrationRequest {
    RegistrationRequest {
        institution_code: demo_code(),
        kind,
        visit_date: today(),
        consent: ConsentChoices {
            clinical_medication: kind.offers_medical_information(),
            checkups: kind.offers_medical_information(),
        },
        prescription_method: kind
            .asks_prescription_method()
            .then_some(PrescriptionMethod::Electronic),
        identity: IdentityProof::VisualCheck {
            certificate: String::new(),
            staff_account: "kato01".into(),
        },
        idempotency_key: idem.into(),
    }
}

fn certificate_of(no: u32, case: CertificateCase) -> String {
    let card = population::virtual_card(no, case).expect("card");
    b64_encode(card.certificate_der())
}

/// Signs the request's binding with person `no`'s card and PIN, as the browser would.
async fn sign_with_card(req: &mut RegistrationRequest, no: u32, case: CertificateCase, n: u8) {
    let mut card = population::virtual_card(no, case).expect("card");
    let challenge = challenge(n);
    let message = binding::ChallengeBinding::of_request(req, ORIGIN, &challenge).message();
    let pin = Pin::new(&population::pin_of(no)).expect("pin");
    let auth = authenticate(&mut card, &pin, &message)
        .await
        .expect("card signs");
    req.identity = IdentityProof::Card {
        certificate: b64_encode(&auth.certificate_der),
        signature: b64_encode(&auth.signature),
        origin: ORIGIN.into(),
        challenge,
    };
}

fn visual(req: &mut RegistrationRequest, no: u32) {
    req.identity = IdentityProof::VisualCheck {
        certificate: certificate_of(no, CertificateCase::Valid),
        staff_account: "kato01".into(),
    };
}

fn refused<T: std::fmt::Debug>(result: Result<T, ClientError>) -> ErrorCode {
    match result {
        Err(ClientError::Response(ResponseError::Refused(body))) => body.code,
        other => panic!("expected a signed refusal, got {other:?}"),
    }
}

async fn register(
    client: &SignedClient,
    req: &RegistrationRequest,
) -> Result<RegistrationAccepted, ClientError> {
    client.call(REGISTRATIONS_PATH, req).await
}

/// Registers person `no` by visual check for `kind` and returns the id.
async fn registered(env: &Env, no: u32, kind: ReceptionKind) -> String {
    let mut req = request(kind, &format!("idem-{no}-{}", kind.code()));
    visual(&mut req, no);
    register(&env.demo, &req)
        .await
        .expect("registered")
        .registration_id
}

async fn eligibility(
    client: &SignedClient,
    id: &str,
    welfare: bool,
) -> Result<EligibilityAnswer, ClientError> {
    client
        .call(
            &eligibility_path(id),
            &EligibilityRequest {
                use_welfare_information: welfare,
            },
        )
        .await
}

async fn medical(
    client: &SignedClient,
    id: &str,
    category: MedicalCategory,
) -> Result<MedicalInformationAnswer, ClientError> {
    client
        .call(
            &medical_information_path(id),
            &MedicalInformationRequest { category },
        )
        .await
}

#[tokio::test]
async fn health_is_unsigned_and_speaks_contract_1() {
    let env = env().await;
    let health: Health = reqwest::get(format!("{}{HEALTH_PATH}", env.sim.base_url()))
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    assert_eq!(
        health,
        Health {
            status: "ok".into(),
            contract: 1
        }
    );
}

#[tokio::test]
async fn card_registration_then_eligibility_and_medical_information() {
    let env = env().await;
    let mut req = request(ReceptionKind::OnlineCare, "happy-1");
    req.visit_date = today().succ_opt().expect("tomorrow");
    sign_with_card(&mut req, 1, CertificateCase::Valid, 1).await;
    let accepted = register(&env.demo, &req).await.expect("accepted");
    assert_eq!(accepted.reception_number.len(), 8);
    let Window::Interval { end, .. } = accepted.window else {
        panic!("open window")
    };
    // 23:59:59 JST on the day after the visit (2026-11-22) → 2026-11-24 00:00 JST.
    assert_eq!(
        end,
        Utc.with_ymd_and_hms(2026, 11, 23, 15, 0, 0)
            .single()
            .expect("instant")
    );

    // Idempotent retry: same key, same body, same answer.
    let again = register(&env.demo, &req).await.expect("retry");
    assert_eq!(again, accepted);

    let answer = eligibility(&env.demo, &accepted.registration_id, true)
        .await
        .expect("eligibility");
    let EligibilityOutcome::Found { record } = answer.outcome else {
        panic!("found")
    };
    assert_eq!(record.name, "厚労 太郎");
    assert_eq!(
        record.insurance.as_ref().and_then(|q| q.burden_percent),
        Some(30)
    );

    let info = medical(
        &env.demo,
        &accepted.registration_id,
        MedicalCategory::ClinicalMedication,
    )
    .await
    .expect("medical information");
    let MedicalInformation::ClinicalMedication {
        clinical,
        medications,
    } = info.information
    else {
        panic!("category")
    };
    assert!(!clinical.is_empty() && !medications.is_empty());
    // Another institution cannot see this registration at all.
    assert_eq!(
        refused(
            medical(
                &env.other,
                &accepted.registration_id,
                MedicalCategory::Checkups
            )
            .await
        ),
        ErrorCode::RegistrationNotFound
    );
}

#[tokio::test]
async fn transport_attacks_are_refused() {
    let env = env().await;
    let body = serde_json::to_vec(&EligibilityRequest {
        use_welfare_information: true,
    })
    .expect("json");
    let path = eligibility_path("reg-00000001");

    // Replay: the same signed request twice.
    let (headers, ctx) = env.demo.sign(&path, &body).expect("sign");
    let first = env
        .demo
        .send_raw(&path, &headers.pairs(), body.clone())
        .await
        .expect("send");
    assert!(
        matches!(env.demo.decode::<EligibilityAnswer>(&ctx, &first), Err(ResponseError::Refused(b)) if b.code == ErrorCode::RegistrationNotFound)
    );
    let replay = env
        .demo
        .send_raw(&path, &headers.pairs(), body.clone())
        .await
        .expect("send");
    assert!(
        matches!(env.demo.decode::<EligibilityAnswer>(&ctx, &replay), Err(ResponseError::Refused(b)) if b.code == ErrorCode::ReplayedNonce)
    );

    let code_of = |answer: &uketsuke_backend::simulator::client::RawAnswer,
                   ctx: &signing::RequestContext| {
        match env.demo.decode::<EligibilityAnswer>(ctx, answer) {
            Err(ResponseError::Refused(b)) => b.code,
            other => panic!("{other:?}"),
        }
    };

    // Tampered body.
    let (headers, ctx) = env.demo.sign(&path, &body).expect("sign");
    let tampered = br#"{"use_welfare_information":false}"#.to_vec();
    let answer = env
        .demo
        .send_raw(&path, &headers.pairs(), tampered)
        .await
        .expect("send");
    assert_eq!(code_of(&answer, &ctx), ErrorCode::BadSignature);

    // Stale timestamp (signed correctly, six minutes ago).
    let signer = keys::institution_signer(DEMO_CLINIC).expect("signer");
    let (headers, ctx) = signer
        .sign(
            "POST",
            &path,
            &body,
            SignedClient::now_unix() - 360,
            &env.demo.nonce(),
        )
        .expect("sign");
    let answer = env
        .demo
        .send_raw(&path, &headers.pairs(), body.clone())
        .await
        .expect("send");
    assert_eq!(code_of(&answer, &ctx), ErrorCode::StaleTimestamp);

    // Foreign key: an unknown key id, and a known id signed with another key.
    for signer in [
        RequestSigner::new("stranger-1", keys::p256_key_from_seed("stranger", 1)).expect("signer"),
        RequestSigner::new(DEMO_CLINIC.key_id, keys::p256_key_from_seed("stranger", 1))
            .expect("signer"),
    ] {
        let expected = if signer.key_id() == DEMO_CLINIC.key_id {
            ErrorCode::BadSignature
        } else {
            ErrorCode::UnknownKey
        };
        let (headers, ctx) = signer
            .sign(
                "POST",
                &path,
                &body,
                SignedClient::now_unix(),
                &env.demo.nonce(),
            )
            .expect("sign");
        let answer = env
            .demo
            .send_raw(&path, &headers.pairs(), body.clone())
            .await
            .expect("send");
        assert_eq!(code_of(&answer, &ctx), expected);
    }

    // Missing or malformed headers.
    let (headers, ctx) = env.demo.sign(&path, &body).expect("sign");
    let partial: Vec<_> = headers
        .pairs()
        .into_iter()
        .filter(|(n, _)| *n != HEADER_TIMESTAMP)
        .collect();
    let answer = env
        .demo
        .send_raw(&path, &partial, body.clone())
        .await
        .expect("send");
    assert_eq!(code_of(&answer, &ctx), ErrorCode::MissingAuthentication);

    // Too large, malformed JSON, unknown path.
    let big = vec![b' '; 70 * 1024];
    let (headers, ctx) = env.demo.sign(&path, &big).expect("sign");
    let answer = env
        .demo
        .send_raw(&path, &headers.pairs(), big)
        .await
        .expect("send");
    assert_eq!(code_of(&answer, &ctx), ErrorCode::BodyTooLarge);
    let junk = b"{not json".to_vec();
    let (headers, ctx) = env.demo.sign(&path, &junk).expect("sign");
    let answer = env
        .demo
        .send_raw(&path, &headers.pairs(), junk)
        .await
        .expect("send");
    assert_eq!(code_of(&answer, &ctx), ErrorCode::MalformedRequest);
    assert_eq!(
        refused(env.demo.call::<_, Health>("/v1/nowhere", &()).await),
        ErrorCode::NotFound
    );

    // An answer is bound to its request: verifying it against another request's context fails.
    let (headers, _) = env.demo.sign(&path, &body).expect("sign");
    let (_, other_ctx) = env.demo.sign(&path, &body).expect("sign");
    let answer = env
        .demo
        .send_raw(&path, &headers.pairs(), body)
        .await
        .expect("send");
    assert_eq!(
        env.demo
            .decode::<EligibilityAnswer>(&other_ctx, &answer)
            .err(),
        Some(ResponseError::BadSignature)
    );
}

#[tokio::test]
async fn certificate_and_card_signature_refusals() {
    let env = env().await;
    let base = |idem: &str| request(ReceptionKind::SeparateRoute, idem);

    // Forged: same issuer name, another CA key.
    let forger = TestCa::from_seed(99).expect("forger CA");
    let key = population::card_key(population::card_seed(1)).expect("key");
    let forged = forger
        .issue_user_certificate(
            &UserCertificateRequest {
                serial: population::card_seed(1),
                subject_common_name: "UKETSUKE TEST CARD 10001".into(),
                not_before_unix: 1_735_689_600,
                not_after_unix: 1_893_456_000,
            },
            &key.to_public_key(),
        )
        .expect("forged certificate");
    let mut req = base("forged");
    req.identity = IdentityProof::VisualCheck {
        certificate: b64_encode(&forged),
        staff_account: "kato01".into(),
    };
    assert_eq!(
        refused(register(&env.demo, &req).await),
        ErrorCode::CertificateUntrusted
    );

    // Not a certificate at all.
    req.identity = IdentityProof::VisualCheck {
        certificate: b64_encode(b"hello"),
        staff_account: "kato01".into(),
    };
    req.idempotency_key = "garbage".into();
    assert_eq!(
        refused(register(&env.demo, &req).await),
        ErrorCode::CertificateMalformed
    );

    // A genuine certificate of nobody in the population.
    let ca = population::ca().expect("ca");
    let stranger = ca
        .issue_user_certificate(
            &UserCertificateRequest {
                serial: 999_999,
                subject_common_name: "UKETSUKE TEST CARD 999999".into(),
                not_before_unix: 1_735_689_600,
                not_after_unix: 1_893_456_000,
            },
            &key.to_public_key(),
        )
        .expect("certificate");
    req.identity = IdentityProof::VisualCheck {
        certificate: b64_encode(&stranger),
        staff_account: "kato01".into(),
    };
    req.idempotency_key = "stranger".into();
    assert_eq!(
        refused(register(&env.demo, &req).await),
        ErrorCode::PersonNotFound
    );

    // Revoked, expired, not yet valid: refused with the card's own signature.
    for (no, case, code) in [
        (26, CertificateCase::Revoked, ErrorCode::CertificateRevoked),
        (27, CertificateCase::Expired, ErrorCode::CertificateExpired),
        (
            28,
            CertificateCase::NotYetValid,
            ErrorCode::CertificateNotYetValid,
        ),
    ] {
        let mut req = base(&format!("cert-{no}"));
        sign_with_card(&mut req, no, case, no as u8).await;
        assert_eq!(
            refused(register(&env.demo, &req).await),
            code,
            "person {no}"
        );
    }

    // Wrong person: person 2's certificate with person 1's signature.
    let mut req = base("wrong-person");
    sign_with_card(&mut req, 1, CertificateCase::Valid, 40).await;
    if let IdentityProof::Card { certificate, .. } = &mut req.identity {
        *certificate = certificate_of(2, CertificateCase::Valid);
    }
    assert_eq!(
        refused(register(&env.demo, &req).await),
        ErrorCode::CardSignatureInvalid
    );

    // The binding covers the consent: changing it after signing breaks the signature.
    let mut req = base("changed-consent");
    req.consent.checkups = false;
    sign_with_card(&mut req, 1, CertificateCase::Valid, 41).await;
    req.consent.checkups = true;
    assert_eq!(
        refused(register(&env.demo, &req).await),
        ErrorCode::CardSignatureInvalid
    );

    // Challenge reuse and format.
    let mut req = base("challenge-a");
    sign_with_card(&mut req, 1, CertificateCase::Valid, 42).await;
    register(&env.demo, &req).await.expect("first use");
    req.idempotency_key = "challenge-b".into();
    assert_eq!(
        refused(register(&env.demo, &req).await),
        ErrorCode::ChallengeReused
    );
    if let IdentityProof::Card { challenge, .. } = &mut req.identity {
        *challenge = b64_encode(&[1; 8]);
    }
    req.idempotency_key = "challenge-c".into();
    assert_eq!(
        refused(register(&env.demo, &req).await),
        ErrorCode::ChallengeInvalid
    );
}

#[tokio::test]
async fn registration_request_refusals() {
    let env = env().await;
    let cases: Vec<(RegistrationRequest, ErrorCode)> = {
        let mut v = Vec::new();
        let mut r = request(ReceptionKind::OnlineCare, "r1");
        r.prescription_method = None;
        v.push((r, ErrorCode::PrescriptionMethodInvalid));
        let mut r = request(ReceptionKind::HouseCall, "r2");
        r.prescription_method = Some(PrescriptionMethod::Paper);
        v.push((r, ErrorCode::PrescriptionMethodInvalid));
        let mut r = request(ReceptionKind::EligibilityOnly, "r3");
        r.consent.clinical_medication = true;
        v.push((r, ErrorCode::ConsentNotOffered));
        v.push((
            request(ReceptionKind::OnlineCare, "r4"),
            ErrorCode::VisualCheckNotAllowed,
        ));
        let mut r = request(ReceptionKind::DeviceFailure, "r5");
        r.identity = IdentityProof::VisualCheck {
            certificate: String::new(),
            staff_account: "x".into(),
        };
        v.push((r, ErrorCode::StaffAccountInvalid));
        let mut r = request(ReceptionKind::SeparateRoute, "r6");
        r.visit_date = today().succ_opt().expect("tomorrow");
        v.push((r, ErrorCode::VisitDateInvalid));
        let mut r = request(ReceptionKind::OnlineCare, "r7");
        r.visit_date = today().pred_opt().expect("yesterday");
        v.push((r, ErrorCode::VisitDateInvalid));
        let mut r = request(ReceptionKind::HouseCall, "r8");
        r.institution_code = keys::institution_code(OTHER_CLINIC);
        v.push((r, ErrorCode::InstitutionMismatch));
        let mut r = request(ReceptionKind::HouseCall, "bad key!");
        r.idempotency_key = "bad key!".into();
        v.push((r, ErrorCode::MalformedRequest));
        v
    };
    for (req, code) in cases {
        assert_eq!(
            refused(register(&env.demo, &req).await),
            code,
            "{}",
            req.idempotency_key
        );
    }
    // Same idempotency key, different body.
    let mut req = request(ReceptionKind::HouseCall, "idem-x");
    visual(&mut req, 3);
    register(&env.demo, &req).await.expect("first");
    req.consent.checkups = false;
    assert_eq!(
        refused(register(&env.demo, &req).await),
        ErrorCode::IdempotencyConflict
    );
}

#[tokio::test]
async fn eligibility_applies_the_information_control_rules() {
    let env = env().await;
    let found = |answer: EligibilityAnswer| match answer.outcome {
        EligibilityOutcome::Found { record } => *record,
        other => panic!("{other:?}"),
    };
    let reason = |answer: EligibilityAnswer| match answer.outcome {
        EligibilityOutcome::NotAvailable { reason } => reason,
        other => panic!("{other:?}"),
    };
    let id = |no| registered(&env, no, ReceptionKind::SeparateRoute);

    // 医療扶助 only, contracted: numbers shown.
    let r = found(
        eligibility(&env.demo, &id(15).await, true)
            .await
            .expect("answer"),
    );
    let welfare = r.welfare.expect("welfare");
    assert!(welfare.public_payer_number.is_some() && welfare.recipient_number.is_some());
    assert!(r.insurance.is_none() && r.warnings.is_empty());
    // 併用 with 利用しない: welfare dropped.
    let r = found(
        eligibility(&env.demo, &id(16).await, false)
            .await
            .expect("answer"),
    );
    assert!(r.welfare.is_none() && r.insurance.is_some());
    // 未委託: no payer / recipient number.
    let welfare = found(
        eligibility(&env.demo, &id(17).await, true)
            .await
            .expect("answer"),
    )
    .welfare
    .expect("welfare");
    assert_eq!(
        (welfare.public_payer_number, welfare.recipient_number),
        (None, None)
    );
    // 不開示: card confirmation keeps the address (seed 003, domain).
    let r = found(
        eligibility(&env.demo, &id(18).await, true)
            .await
            .expect("answer"),
    );
    assert!(r.address.is_some() && r.postcode.is_some());
    // 自己情報提供不可: no welfare block with the card.
    let r = found(
        eligibility(&env.demo, &id(19).await, true)
            .await
            .expect("answer"),
    );
    assert!(r.welfare.is_none() && r.insurance.is_some());
    // J-LIS, not registered, no qualification.
    assert_eq!(
        reason(
            eligibility(&env.demo, &id(20).await, true)
                .await
                .expect("answer")
        ),
        NoEligibilityReason::UnderJlisReview
    );
    assert_eq!(
        reason(
            eligibility(&env.demo, &id(21).await, true)
                .await
                .expect("answer")
        ),
        NoEligibilityReason::CardNotRegisteredForInsurance
    );
    assert_eq!(
        reason(
            eligibility(&env.demo, &id(23).await, true)
                .await
                .expect("answer")
        ),
        NoEligibilityReason::NoQualification
    );
    // Insurance ended last month: returned, with its end date.
    let r = found(
        eligibility(&env.demo, &id(22).await, true)
            .await
            .expect("answer"),
    );
    assert_eq!(
        r.insurance.and_then(|q| q.valid_until),
        NaiveDate::from_ymd_opt(2026, 10, 31)
    );
    // 社会保険状況 mismatch both ways.
    let r = found(
        eligibility(&env.demo, &id(24).await, true)
            .await
            .expect("answer"),
    );
    assert_eq!(
        r.warnings,
        vec![EligibilityWarning::SocialInsuranceMismatch { ticket_says: true }]
    );
    let r = found(
        eligibility(&env.demo, &id(25).await, true)
            .await
            .expect("answer"),
    );
    assert_eq!(
        r.warnings,
        vec![EligibilityWarning::SocialInsuranceMismatch { ticket_says: false }]
    );
    // Unknown registration.
    assert_eq!(
        refused(eligibility(&env.demo, "reg-99999999", true).await),
        ErrorCode::RegistrationNotFound
    );
}

#[tokio::test]
async fn medical_information_follows_consent_and_windows() {
    let env = env().await;
    // Eligibility only: nothing.
    let id = registered(&env, 3, ReceptionKind::EligibilityOnly).await;
    assert_eq!(
        refused(medical(&env.demo, &id, MedicalCategory::ClinicalMedication).await),
        ErrorCode::NoMedicalInformation
    );
    // Consent to clinical only.
    let mut req = request(ReceptionKind::SeparateRoute, "clinical-only");
    req.consent.checkups = false;
    visual(&mut req, 5);
    let id = register(&env.demo, &req)
        .await
        .expect("registered")
        .registration_id;
    assert_eq!(
        refused(medical(&env.demo, &id, MedicalCategory::Checkups).await),
        ErrorCode::ConsentNotGiven
    );
    medical(&env.demo, &id, MedicalCategory::ClinicalMedication)
        .await
        .expect("consented");
    // J-LIS review: no medical information either.
    let id20 = registered(&env, 20, ReceptionKind::SeparateRoute).await;
    assert_eq!(
        refused(medical(&env.demo, &id20, MedicalCategory::ClinicalMedication).await),
        ErrorCode::PersonUnderReview
    );
    // House call: open for 24 hours, closed after.
    let house = registered(&env, 8, ReceptionKind::HouseCall).await;
    let checkups = medical(&env.demo, &house, MedicalCategory::Checkups)
        .await
        .expect("open");
    assert!(
        matches!(checkups.information, MedicalInformation::Checkups { ref checkups } if !checkups.is_empty())
    );
    env.sim.clock.advance(chrono::Duration::hours(24));
    assert_eq!(
        refused(medical(&env.demo, &house, MedicalCategory::Checkups).await),
        ErrorCode::WindowClosed
    );
    // Separate route registered "today" (11-21) is still open on 11-22, closed on 11-23.
    medical(&env.demo, &id, MedicalCategory::ClinicalMedication)
        .await
        .expect("day after");
    env.sim.clock.advance(chrono::Duration::hours(24));
    assert_eq!(
        refused(medical(&env.demo, &id, MedicalCategory::ClinicalMedication).await),
        ErrorCode::WindowClosed
    );
}

#[tokio::test]
async fn withdrawal_ends_access() {
    let env = env().await;
    let id = registered(&env, 1, ReceptionKind::DeviceFailure).await;
    medical(&env.demo, &id, MedicalCategory::ClinicalMedication)
        .await
        .expect("open");
    let bad = WithdrawalRequest {
        requested: WithdrawnBy::Staff {
            staff_account: "!".into(),
        },
    };
    assert_eq!(
        refused(
            env.demo
                .call::<_, WithdrawalAccepted>(&withdrawal_path(&id), &bad)
                .await
        ),
        ErrorCode::StaffAccountInvalid
    );
    let req = WithdrawalRequest {
        requested: WithdrawnBy::Patient,
    };
    let first: WithdrawalAccepted = env
        .demo
        .call(&withdrawal_path(&id), &req)
        .await
        .expect("withdrawn");
    env.sim.clock.advance(chrono::Duration::minutes(1));
    let second: WithdrawalAccepted = env
        .demo
        .call(&withdrawal_path(&id), &req)
        .await
        .expect("idempotent");
    assert_eq!(first.withdrawn_at, second.withdrawn_at);
    assert_eq!(
        refused(medical(&env.demo, &id, MedicalCategory::ClinicalMedication).await),
        ErrorCode::ConsentWithdrawn
    );
}

async fn update_consent(
    client: &SignedClient,
    id: &str,
    clinical_medication: bool,
    checkups: bool,
) -> Result<ConsentUpdated, ClientError> {
    let consent = ConsentChoices {
        clinical_medication,
        checkups,
    };
    client
        .call(&consent_path(id), &ConsentUpdateRequest { consent })
        .await
}

/// 同意の更新: both ways while the window is open, refused once withdrawn or closed, never
/// for eligibility-only registrations or another institution's.
#[tokio::test]
async fn consent_updates_follow_the_rules() {
    let env = env().await;
    let id = registered(&env, 1, ReceptionKind::DeviceFailure).await;
    let revoked = update_consent(&env.demo, &id, false, true)
        .await
        .expect("revoked");
    assert_eq!(revoked.registration_id, id);
    assert!(!revoked.consent.clinical_medication && revoked.consent.checkups);
    assert_eq!(
        refused(medical(&env.demo, &id, MedicalCategory::ClinicalMedication).await),
        ErrorCode::ConsentNotGiven
    );
    medical(&env.demo, &id, MedicalCategory::Checkups)
        .await
        .expect("checkups still open");
    // Granting again is allowed, and the same body twice answers the same.
    let granted = update_consent(&env.demo, &id, true, true)
        .await
        .expect("granted");
    let again = update_consent(&env.demo, &id, true, true)
        .await
        .expect("again");
    assert_eq!(granted, again);
    medical(&env.demo, &id, MedicalCategory::ClinicalMedication)
        .await
        .expect("open again");
    assert_eq!(
        refused(update_consent(&env.other, &id, false, false).await),
        ErrorCode::RegistrationNotFound
    );
    let limited = registered(&env, 2, ReceptionKind::EligibilityOnly).await;
    assert_eq!(
        refused(update_consent(&env.demo, &limited, true, false).await),
        ErrorCode::NoMedicalInformation
    );
    env.demo
        .call::<_, WithdrawalAccepted>(
            &withdrawal_path(&id),
            &WithdrawalRequest {
                requested: WithdrawnBy::Patient,
            },
        )
        .await
        .expect("withdrawn");
    assert_eq!(
        refused(update_consent(&env.demo, &id, true, true).await),
        ErrorCode::ConsentWithdrawn
    );
    let house_call = registered(&env, 3, ReceptionKind::HouseCall).await;
    env.sim.clock.advance(chrono::Duration::hours(25));
    assert_eq!(
        refused(update_consent(&env.demo, &house_call, false, false).await),
        ErrorCode::WindowClosed
    );
}

#[tokio::test]
async fn home_visits_extend_the_window() {
    let env = env().await;
    let id = registered(&env, 9, ReceptionKind::HomeVisit).await;
    let record = |date: NaiveDate| {
        let path = home_visits_path(&id);
        let client = &env.demo;
        async move {
            client
                .call::<_, HomeVisitRecorded>(&path, &HomeVisitRequest { visit_date: date })
                .await
        }
    };
    // Not a home visit / future / before the registration month.
    let other = registered(&env, 10, ReceptionKind::HouseCall).await;
    assert_eq!(
        refused(
            env.demo
                .call::<_, HomeVisitRecorded>(
                    &home_visits_path(&other),
                    &HomeVisitRequest {
                        visit_date: today()
                    }
                )
                .await
        ),
        ErrorCode::NotHomeVisit
    );
    assert_eq!(
        refused(record(today().succ_opt().expect("tomorrow")).await),
        ErrorCode::HomeVisitDateInvalid
    );
    assert_eq!(
        refused(record(NaiveDate::from_ymd_opt(2026, 10, 31).expect("date")).await),
        ErrorCode::HomeVisitDateInvalid
    );
    // Registered in November with no later visit: open until the end of December.
    let dec_20 = Utc
        .with_ymd_and_hms(2026, 12, 20, 1, 0, 0)
        .single()
        .expect("instant");
    env.sim.clock.set(dec_20);
    let recorded = record(NaiveDate::from_ymd_opt(2026, 12, 20).expect("date"))
        .await
        .expect("recorded");
    let Window::Interval { end, .. } = recorded.window else {
        panic!("open")
    };
    // A December visit carries the window to the end of January (JST).
    assert_eq!(
        end,
        Utc.with_ymd_and_hms(2027, 1, 31, 15, 0, 0)
            .single()
            .expect("instant")
    );
    env.sim.clock.set(
        Utc.with_ymd_and_hms(2027, 2, 2, 1, 0, 0)
            .single()
            .expect("instant"),
    );
    assert_eq!(
        refused(medical(&env.demo, &id, MedicalCategory::Checkups).await),
        ErrorCode::WindowClosed
    );
    assert_eq!(
        refused(record(NaiveDate::from_ymd_opt(2027, 2, 1).expect("date")).await),
        ErrorCode::WindowClosed
    );
}

#[tokio::test]
async fn injected_faults() {
    let env = env().await;
    let body = EligibilityRequest {
        use_welfare_information: true,
    };
    let path = eligibility_path("reg-1");
    let call = || env.demo.call::<_, EligibilityAnswer>(&path, &body);

    env.sim.faults.set(FaultConfig {
        error_rate: 1.0,
        ..Default::default()
    });
    assert_eq!(refused(call().await), ErrorCode::Unavailable);

    env.sim.faults.set(FaultConfig {
        bad_signature_rate: 1.0,
        ..Default::default()
    });
    assert!(matches!(
        call().await,
        Err(ClientError::Response(ResponseError::BadSignature))
    ));

    env.sim.faults.set(FaultConfig {
        malformed_rate: 1.0,
        ..Default::default()
    });
    assert!(matches!(
        call().await,
        Err(ClientError::Response(ResponseError::Malformed(_)))
    ));

    env.sim.faults.set(FaultConfig {
        outage: true,
        ..Default::default()
    });
    assert!(matches!(
        call().await,
        Err(ClientError::Response(ResponseError::Unsigned))
    ));
    let health = reqwest::get(format!("{}{HEALTH_PATH}", env.sim.base_url()))
        .await
        .expect("answer");
    assert_eq!(health.status().as_u16(), 503);

    env.sim.faults.set(FaultConfig {
        slow_rate: 1.0,
        slow_delay: Duration::from_millis(800),
        ..Default::default()
    });
    let impatient = SignedClient::with_timeout(
        env.sim.base_url(),
        keys::institution_signer(DEMO_CLINIC).expect("signer"),
        keys::backend_verifying_key(),
        BACKEND_KEY_ID,
        Duration::from_millis(200),
    )
    .expect("client");
    let result = impatient.call::<_, EligibilityAnswer>(&path, &body).await;
    assert!(
        matches!(result, Err(ClientError::Http(ref e)) if e.is_timeout()),
        "{result:?}"
    );

    env.sim.faults.set(FaultConfig {
        latency: Duration::from_millis(50),
        ..Default::default()
    });
    let started = std::time::Instant::now();
    assert_eq!(refused(call().await), ErrorCode::RegistrationNotFound);
    assert!(started.elapsed() >= Duration::from_millis(50));
}

// --- person references (PROTOCOL.md §6.7) --------------------------------------------------

async fn reference_of(
    client: &SignedClient,
    institution_code: InstitutionCode,
    certificate: String,
) -> Result<PersonReferenceAnswer, ClientError> {
    client
        .call(
            PERSON_REFERENCES_PATH,
            &PersonReferenceRequest {
                institution_code,
                certificate,
            },
        )
        .await
}

fn generation_certificate(no: u32, generation: u32) -> String {
    let card = population::virtual_card_of_generation(no, generation).expect("card");
    b64_encode(card.certificate_der())
}

#[tokio::test]
async fn person_reference_is_stable_per_person_and_different_per_institution() {
    let env = env().await;
    let other_code = keys::institution_code(OTHER_CLINIC);
    let here = reference_of(
        &env.demo,
        demo_code(),
        certificate_of(61, CertificateCase::Valid),
    )
    .await
    .expect("reference")
    .person_reference;
    assert!(person_reference_is_well_formed(&here), "{here}");
    // Asking again (a retry, a new nonce) answers the same: the operation changes nothing.
    let again = reference_of(
        &env.demo,
        demo_code(),
        certificate_of(61, CertificateCase::Valid),
    )
    .await
    .expect("again");
    assert_eq!(again.person_reference, here);
    // Another institution gets another reference for the same person; another person another.
    let there = reference_of(
        &env.other,
        other_code,
        certificate_of(61, CertificateCase::Valid),
    )
    .await
    .expect("other institution")
    .person_reference;
    assert_ne!(there, here);
    let someone = reference_of(
        &env.demo,
        demo_code(),
        certificate_of(1, CertificateCase::Valid),
    )
    .await
    .expect("person 1")
    .person_reference;
    assert_ne!(someone, here);

    // The registration's answer carries the same reference as the person-reference operation.
    let mut req = request(ReceptionKind::HomeVisit, "renewed-61");
    visual(&mut req, 61);
    let accepted = register(&env.demo, &req).await.expect("registered");
    assert_eq!(accepted.person_reference.as_deref(), Some(here.as_str()));
    // An idempotent retry repeats it.
    let retry = register(&env.demo, &req).await.expect("retry");
    assert_eq!(retry.person_reference, accepted.person_reference);
}

#[tokio::test]
async fn a_certificate_revoked_by_renewal_proves_nothing_and_the_new_one_names_the_same_person() {
    let env = env().await;
    // Person 62 renewed twice: generations 0 and 1 are revoked by renewal, 2 is current.
    for generation in [0, 1] {
        assert_eq!(
            refused(
                reference_of(
                    &env.demo,
                    demo_code(),
                    generation_certificate(62, generation)
                )
                .await
            ),
            ErrorCode::CertificateRevoked,
            "generation {generation}"
        );
        let mut req = request(
            ReceptionKind::SeparateRoute,
            &format!("old-62-{generation}"),
        );
        req.identity = IdentityProof::VisualCheck {
            certificate: generation_certificate(62, generation),
            staff_account: "kato01".into(),
        };
        assert_eq!(
            refused(register(&env.demo, &req).await),
            ErrorCode::CertificateRevoked
        );
    }
    assert!(
        reference_of(&env.demo, demo_code(), generation_certificate(62, 2))
            .await
            .is_ok()
    );

    // Renewal while the simulator runs: person 5 registers with the first certificate, J-LIS
    // renews it, and only the new one proves the person — who is the same person.
    let mut req = request(ReceptionKind::HomeVisit, "before-renewal");
    sign_with_card(&mut req, 5, CertificateCase::Valid, 60).await;
    let before = register(&env.demo, &req).await.expect("registered");
    let (old, new) = env.sim.renew_certificate(5).await.expect("renewed");
    assert_eq!(
        (old, new),
        (
            population::card_seed_of(5, 0),
            population::card_seed_of(5, 1)
        )
    );
    assert_eq!(
        refused(reference_of(&env.demo, demo_code(), generation_certificate(5, 0)).await),
        ErrorCode::CertificateRevoked
    );
    let after = reference_of(&env.demo, demo_code(), generation_certificate(5, 1))
        .await
        .expect("new certificate");
    assert_eq!(Some(after.person_reference), before.person_reference);
    // A second renewal moves on to the next generation.
    assert_eq!(
        env.sim.renew_certificate(5).await.expect("renewed again"),
        (
            population::card_seed_of(5, 1),
            population::card_seed_of(5, 2)
        )
    );
    assert!(env.sim.renew_certificate(999).await.is_err());
}

#[tokio::test]
async fn person_reference_refusals() {
    let env = env().await;
    // Another institution's code in the body.
    assert_eq!(
        refused(
            reference_of(
                &env.demo,
                keys::institution_code(OTHER_CLINIC),
                certificate_of(1, CertificateCase::Valid)
            )
            .await
        ),
        ErrorCode::InstitutionMismatch
    );
    // The certificate's own troubles.
    for (certificate, code) in [
        (b64_encode(b"hello"), ErrorCode::CertificateMalformed),
        ("not base64url!".to_owned(), ErrorCode::CertificateMalformed),
        (
            certificate_of(26, CertificateCase::Revoked),
            ErrorCode::CertificateRevoked,
        ),
        (
            certificate_of(27, CertificateCase::Expired),
            ErrorCode::CertificateExpired,
        ),
        (
            certificate_of(28, CertificateCase::NotYetValid),
            ErrorCode::CertificateNotYetValid,
        ),
    ] {
        assert_eq!(
            refused(reference_of(&env.demo, demo_code(), certificate).await),
            code
        );
    }
    // Forged by another CA, and genuine but of nobody.
    let key = population::card_key(population::card_seed(1)).expect("key");
    let certificate = |ca: &TestCa, serial: u64| {
        b64_encode(
            &ca.issue_user_certificate(
                &UserCertificateRequest {
                    serial,
                    subject_common_name: format!("UKETSUKE TEST CARD {serial}"),
                    not_before_unix: 1_735_689_600,
                    not_after_unix: 1_893_456_000,
                },
                &key.to_public_key(),
            )
            .expect("certificate"),
        )
    };
    let forger = TestCa::from_seed(99).expect("forger CA");
    assert_eq!(
        refused(reference_of(&env.demo, demo_code(), certificate(&forger, 10_001)).await),
        ErrorCode::CertificateUntrusted
    );
    let ca = population::ca().expect("ca");
    assert_eq!(
        refused(reference_of(&env.demo, demo_code(), certificate(ca, 999_998)).await),
        ErrorCode::PersonNotFound
    );
    // Signed like every operation: a replayed request and a tampered body are refused.
    let body = serde_json::to_vec(&PersonReferenceRequest {
        institution_code: demo_code(),
        certificate: certificate_of(1, CertificateCase::Valid),
    })
    .expect("json");
    let (headers, ctx) = env.demo.sign(PERSON_REFERENCES_PATH, &body).expect("sign");
    let first = env
        .demo
        .send_raw(PERSON_REFERENCES_PATH, &headers.pairs(), body.clone())
        .await
        .expect("send");
    assert!(
        env.demo
            .decode::<PersonReferenceAnswer>(&ctx, &first)
            .is_ok()
    );
    let replay = env
        .demo
        .send_raw(PERSON_REFERENCES_PATH, &headers.pairs(), body.clone())
        .await
        .expect("send");
    assert!(matches!(
        env.demo.decode::<PersonReferenceAnswer>(&ctx, &replay),
        Err(ResponseError::Refused(b)) if b.code == ErrorCode::ReplayedNonce
    ));
    let (headers, ctx) = env.demo.sign(PERSON_REFERENCES_PATH, &body).expect("sign");
    let mut tampered = body;
    tampered.extend_from_slice(b" ");
    let answer = env
        .demo
        .send_raw(PERSON_REFERENCES_PATH, &headers.pairs(), tampered)
        .await
        .expect("send");
    assert!(matches!(
        env.demo.decode::<PersonReferenceAnswer>(&ctx, &answer),
        Err(ResponseError::Refused(b)) if b.code == ErrorCode::BadSignature
    ));
    // Unsigned: refused before anything is looked up.
    let unsigned = reqwest::Client::new()
        .post(format!("{}{PERSON_REFERENCES_PATH}", env.sim.base_url()))
        .body("{}")
        .send()
        .await
        .expect("answer");
    assert_eq!(unsigned.status().as_u16(), 401);
}

/// A 健康保険証利用登録 request signed with person `no`'s card (generation-0 certificate) over
/// the insurance-use text with challenge `n` and `terms`.
async fn insurance_use_request(no: u32, n: u8, terms: &str, idem: &str) -> InsuranceUseRequest {
    let mut card = population::virtual_card(no, CertificateCase::Valid).expect("card");
    let challenge = challenge(n);
    let message = binding::InsuranceUseBinding {
        origin: ORIGIN,
        challenge: &challenge,
        institution: &demo_code(),
        terms,
    }
    .message();
    let pin = Pin::new(&population::pin_of(no)).expect("pin");
    let auth = authenticate(&mut card, &pin, &message)
        .await
        .expect("card signs");
    InsuranceUseRequest {
        certificate: b64_encode(&auth.certificate_der),
        signature: b64_encode(&auth.signature),
        origin: ORIGIN.into(),
        challenge,
        terms_version: terms.into(),
        idempotency_key: idem.into(),
    }
}

async fn insurance_use(
    client: &SignedClient,
    id: &str,
    req: &InsuranceUseRequest,
) -> Result<InsuranceUseRegistered, ClientError> {
    client.call(&insurance_use_path(id), req).await
}

#[tokio::test]
async fn insurance_use_registers_the_card_once_and_refuses_what_it_must() {
    let env = env().await;
    // Person 21's card is not registered for insurance use: the reception is confirmed, and
    // eligibility says why it has nothing.
    let mut req = request(ReceptionKind::SeparateRoute, "reg-21");
    sign_with_card(&mut req, 21, CertificateCase::Valid, 70).await;
    let id = register(&env.demo, &req)
        .await
        .expect("registered")
        .registration_id;
    let not_registered = EligibilityOutcome::NotAvailable {
        reason: NoEligibilityReason::CardNotRegisteredForInsurance,
    };
    assert_eq!(
        eligibility(&env.demo, &id, false)
            .await
            .expect("answer")
            .outcome,
        not_registered
    );
    let terms = INSURANCE_USE_TERMS_VERSION;

    // Refusals, none of which registers anything.
    let good = insurance_use_request(21, 71, terms, "iu-1").await;
    assert_eq!(
        refused(insurance_use(&env.demo, "reg-99999999", &good).await),
        ErrorCode::RegistrationNotFound
    );
    assert_eq!(
        refused(insurance_use(&env.other, &id, &good).await),
        ErrorCode::RegistrationNotFound,
        "another institution's registration"
    );
    let old_terms = insurance_use_request(21, 72, "2025-01", "iu-terms").await;
    assert_eq!(
        refused(insurance_use(&env.demo, &id, &old_terms).await),
        ErrorCode::TermsVersionUnknown
    );
    let mut bad_format = insurance_use_request(21, 73, terms, "iu-format").await;
    bad_format.challenge = "short".into();
    assert_eq!(
        refused(insurance_use(&env.demo, &id, &bad_format).await),
        ErrorCode::ChallengeInvalid
    );
    // A signature over another text (the terms the request names are not the signed ones).
    let mut other_text = insurance_use_request(21, 74, "2026-11", "iu-text").await;
    other_text.terms_version = terms.into();
    assert_eq!(
        refused(insurance_use(&env.demo, &id, &other_text).await),
        ErrorCode::CardSignatureInvalid
    );
    // The challenge that proved the registration proves nothing else.
    let reused = insurance_use_request(21, 70, terms, "iu-reused").await;
    assert_eq!(
        refused(insurance_use(&env.demo, &id, &reused).await),
        ErrorCode::ChallengeReused
    );
    // Another person's card, correctly signed, cannot register this patient's.
    let someone_else = insurance_use_request(5, 75, terms, "iu-5").await;
    assert_eq!(
        refused(insurance_use(&env.demo, &id, &someone_else).await),
        ErrorCode::PersonMismatch
    );
    env.sim.set_jlis_review(21, true).await.expect("review");
    let under_review = insurance_use_request(21, 76, terms, "iu-review").await;
    assert_eq!(
        refused(insurance_use(&env.demo, &id, &under_review).await),
        ErrorCode::PersonUnderReview
    );
    env.sim
        .set_jlis_review(21, false)
        .await
        .expect("review ends");
    assert!(env.sim.set_jlis_review(999, true).await.is_err());
    assert_eq!(
        eligibility(&env.demo, &id, false)
            .await
            .expect("answer")
            .outcome,
        not_registered,
        "nothing was registered by a refusal"
    );

    // Registered; a retry gets the same answer; the same key with another body is refused.
    let first = insurance_use(&env.demo, &id, &good)
        .await
        .expect("registered");
    assert_eq!(first.registration_id, id);
    assert_eq!(first.registered_at, start());
    assert!(!first.already_registered);
    assert_eq!(
        insurance_use(&env.demo, &id, &good).await.expect("replay"),
        first
    );
    let conflicting = insurance_use_request(21, 77, terms, "iu-1").await;
    assert_eq!(
        refused(insurance_use(&env.demo, &id, &conflicting).await),
        ErrorCode::IdempotencyConflict
    );
    // Eligibility is now found, for this registration and the patient's others.
    for registration in [
        id.clone(),
        registered(&env, 21, ReceptionKind::HomeVisit).await,
    ] {
        let answer = eligibility(&env.demo, &registration, false)
            .await
            .expect("answer");
        assert!(
            matches!(answer.outcome, EligibilityOutcome::Found { .. }),
            "{:?}",
            answer.outcome
        );
    }
    // Registering again changes nothing and says since when.
    env.sim.clock.advance(chrono::Duration::hours(1));
    let again = insurance_use(
        &env.demo,
        &id,
        &insurance_use_request(21, 78, terms, "iu-again").await,
    )
    .await
    .expect("again");
    assert!(again.already_registered);
    assert_eq!(again.registered_at, start());
    // A person registered before the simulator's time began.
    let five = registered(&env, 5, ReceptionKind::HomeVisit).await;
    let since_ever = insurance_use(
        &env.demo,
        &five,
        &insurance_use_request(5, 79, terms, "iu-five").await,
    )
    .await
    .expect("registered already");
    assert!(since_ever.already_registered);
    assert_eq!(
        since_ever.registered_at.to_rfc3339(),
        "2024-01-01T00:00:00+00:00"
    );

    // A card whose certificate was renewed since (e.g. a reissued card) proves nothing.
    env.sim.renew_certificate(21).await.expect("renewed");
    assert_eq!(
        refused(
            insurance_use(
                &env.demo,
                &id,
                &insurance_use_request(21, 80, terms, "iu-renewed").await
            )
            .await
        ),
        ErrorCode::CertificateRevoked
    );
}
