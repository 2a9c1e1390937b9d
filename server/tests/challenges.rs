//! One-time challenges on every engine: single use, five minutes, bound to the session and to
//! the exact binding; concurrent consumers cannot both win.

mod common;

use chrono::NaiveDate;
use uketsuke_backend::contract::{ConsentChoices, PrescriptionMethod, binding::ChallengeBinding};
use uketsuke_domain::{InstitutionCode, ReceptionKind};
use uketsuke_server::storage::{
    self,
    challenges::{self, CHALLENGE_TTL_MS, ChallengeError, Purpose, Refusal},
    now_millis, seed,
};

fn binding(challenge: &str, consent: ConsentChoices) -> Vec<u8> {
    let institution: InstitutionCode = uketsuke_domain::codes::DEMO_INSTITUTION_CODE
        .parse()
        .expect("demo code");
    ChallengeBinding {
        origin: "https://uketsuke.example.jp",
        challenge,
        institution: &institution,
        kind: ReceptionKind::OnlineCare,
        visit_date: NaiveDate::from_ymd_opt(2026, 11, 22).expect("date"),
        consent,
        prescription_method: Some(PrescriptionMethod::Electronic),
    }
    .message()
}

const BOTH: ConsentChoices = ConsentChoices {
    clinical_medication: true,
    checkups: true,
};

fn refused(result: Result<(), ChallengeError>) -> Refusal {
    match result {
        Err(ChallengeError::Refused(reason)) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn session(db: &storage::Db, now: i64) -> String {
    // The demo institution's key is stored sealed: the server installs this key before seeding.
    let kek = storage::sealing::KeyEncryptionKey::from_bytes(&[7; 32]).expect("key");
    storage::institutions::install_key_encryption(db, &kek, now)
        .await
        .expect("key-encryption key");
    let links = seed::ensure_demo(db).await.expect("seed");
    challenges::start_session(db, &links[0].id, now)
        .await
        .expect("session")
        .id
}

#[tokio::test]
async fn a_challenge_is_spent_once_within_five_minutes() {
    for db in common::engines().await {
        let pool = storage::open(&db.url).await.expect(db.engine);
        let now = now_millis();
        let session = session(&pool, now).await;
        let issued = challenges::issue(
            &pool,
            &session,
            Purpose::Reception,
            |c| binding(c, BOTH),
            now,
        )
        .await
        .expect(db.engine);
        assert_eq!(issued.expires_at, now + CHALLENGE_TTL_MS);
        let decoded = base64_len(&issued.value);
        assert!(
            decoded >= 32,
            "{}: at least 256 bits, got {decoded} bytes",
            db.engine
        );

        let message = binding(&issued.value, BOTH);
        challenges::consume(
            &pool,
            &session,
            Purpose::Reception,
            &issued.value,
            &message,
            now + 1_000,
        )
        .await
        .expect(db.engine);
        // A replay of the same signed binding is refused.
        let replay = challenges::consume(
            &pool,
            &session,
            Purpose::Reception,
            &issued.value,
            &message,
            now + 2_000,
        )
        .await;
        assert_eq!(refused(replay), Refusal::AlreadyUsed, "{}", db.engine);

        // Five minutes later a fresh challenge is no longer accepted.
        let late = challenges::issue(
            &pool,
            &session,
            Purpose::Reception,
            |c| binding(c, BOTH),
            now,
        )
        .await
        .expect(db.engine);
        let message = binding(&late.value, BOTH);
        let result = challenges::consume(
            &pool,
            &session,
            Purpose::Reception,
            &late.value,
            &message,
            now + CHALLENGE_TTL_MS,
        )
        .await;
        assert_eq!(refused(result), Refusal::Expired, "{}", db.engine);
    }
}

#[tokio::test]
async fn other_sessions_other_choices_and_unknown_values_are_refused() {
    for db in common::engines().await {
        let pool = storage::open(&db.url).await.expect(db.engine);
        let now = now_millis();
        let mine = session(&pool, now).await;
        let theirs = session(&pool, now).await;
        let issued = challenges::issue(&pool, &mine, Purpose::Reception, |c| binding(c, BOTH), now)
            .await
            .expect(db.engine);

        // Presented from another session (a stolen challenge): unknown there, and still live here.
        let message = binding(&issued.value, BOTH);
        let stolen = challenges::consume(
            &pool,
            &theirs,
            Purpose::Reception,
            &issued.value,
            &message,
            now,
        )
        .await;
        assert_eq!(refused(stolen), Refusal::Unknown, "{}", db.engine);

        // Signed over other consent choices than those reviewed: refused, and the challenge is spent.
        let other = binding(
            &issued.value,
            ConsentChoices {
                clinical_medication: true,
                checkups: false,
            },
        );
        let mismatch =
            challenges::consume(&pool, &mine, Purpose::Reception, &issued.value, &other, now).await;
        assert_eq!(refused(mismatch), Refusal::BindingMismatch, "{}", db.engine);
        let retry = challenges::consume(
            &pool,
            &mine,
            Purpose::Reception,
            &issued.value,
            &message,
            now,
        )
        .await;
        assert_eq!(refused(retry), Refusal::AlreadyUsed, "{}", db.engine);

        let unknown =
            challenges::consume(&pool, &mine, Purpose::Reception, "AAAA", &message, now).await;
        assert_eq!(refused(unknown), Refusal::Unknown, "{}", db.engine);

        // A challenge of another purpose verifies nothing here, and stays unspent.
        let other_purpose =
            challenges::issue(&pool, &mine, Purpose::Manage, |c| binding(c, BOTH), now)
                .await
                .expect(db.engine);
        let message = binding(&other_purpose.value, BOTH);
        for purpose in [Purpose::Reception, Purpose::InsuranceUse] {
            let refusal =
                challenges::consume(&pool, &mine, purpose, &other_purpose.value, &message, now)
                    .await;
            assert_eq!(refused(refusal), Refusal::OtherPurpose, "{}", db.engine);
        }
        challenges::consume(
            &pool,
            &mine,
            Purpose::Manage,
            &other_purpose.value,
            &message,
            now,
        )
        .await
        .expect(db.engine);

        // No challenges for a session that has ended or never existed.
        let ended = challenges::issue(
            &pool,
            &mine,
            Purpose::Reception,
            |c| binding(c, BOTH),
            now + 31 * 60 * 1000,
        )
        .await;
        assert!(
            matches!(ended, Err(ChallengeError::Refused(Refusal::SessionExpired))),
            "{}",
            db.engine
        );
        let nobody = challenges::issue(
            &pool,
            "nobody",
            Purpose::Reception,
            |c| binding(c, BOTH),
            now,
        )
        .await;
        assert!(
            matches!(nobody, Err(ChallengeError::Refused(Refusal::Unknown))),
            "{}",
            db.engine
        );
    }
}

#[tokio::test]
async fn concurrent_consumers_cannot_both_win() {
    for db in common::engines().await {
        let pool = storage::open(&db.url).await.expect(db.engine);
        let now = now_millis();
        let session = session(&pool, now).await;
        for round in 0..10 {
            let issued = challenges::issue(
                &pool,
                &session,
                Purpose::Reception,
                |c| binding(c, BOTH),
                now,
            )
            .await
            .expect(db.engine);
            let message = binding(&issued.value, BOTH);
            let tasks: Vec<_> = (0..8)
                .map(|_| {
                    let (pool, session, value, message) = (
                        pool.clone(),
                        session.clone(),
                        issued.value.clone(),
                        message.clone(),
                    );
                    tokio::spawn(async move {
                        challenges::consume(
                            &pool,
                            &session,
                            Purpose::Reception,
                            &value,
                            &message,
                            now,
                        )
                        .await
                    })
                })
                .collect();
            let mut wins = 0;
            for task in tasks {
                match task.await.expect("task") {
                    Ok(()) => wins += 1,
                    Err(ChallengeError::Refused(Refusal::AlreadyUsed)) => {}
                    Err(other) => panic!("{}: round {round}: {other:?}", db.engine),
                }
            }
            assert_eq!(wins, 1, "{}: round {round}", db.engine);
        }
    }
}

fn base64_len(text: &str) -> usize {
    text.len() * 6 / 8
}
