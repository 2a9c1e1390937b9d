//! Storage on every engine: migrations, the demo seed, and reception link states.

mod common;

use uketsuke_app::api::{InvalidLink, LinkState};
use uketsuke_domain::ReceptionKind;
use uketsuke_server::storage::{self, links, now_millis, seed};

/// Opens the database with a key-encryption key installed, as the server does before seeding
/// (the demo institution's key is stored sealed).
async fn open(url: &str) -> storage::Db {
    let pool = storage::open(url).await.expect("opens");
    let kek = storage::sealing::KeyEncryptionKey::from_bytes(&[7; 32]).expect("key");
    storage::institutions::install_key_encryption(&pool, &kek, now_millis())
        .await
        .expect("key-encryption key");
    pool
}

#[tokio::test]
async fn migrations_apply_once_and_reopening_keeps_data() {
    for db in common::engines().await {
        let pool = open(&db.url).await;
        storage::ping(&pool).await.expect(db.engine);
        let first = seed::ensure_demo(&pool).await.expect(db.engine);
        pool.close().await;
        let pool = open(&db.url).await;
        let again = seed::ensure_demo(&pool).await.expect(db.engine);
        let ids = |l: &[seed::DemoLink]| l.iter().map(|l| l.id.clone()).collect::<Vec<_>>();
        assert_eq!(
            ids(&first),
            ids(&again),
            "{}: the seed is created once",
            db.engine
        );
        let kinds: Vec<_> = again.iter().map(|l| l.kind).collect();
        assert_eq!(kinds, ReceptionKind::ALL.to_vec(), "{}", db.engine);
    }
}

#[tokio::test]
async fn link_states_on_every_engine() {
    for db in common::engines().await {
        let pool = open(&db.url).await;
        let demo = seed::ensure_demo(&pool).await.expect(db.engine);
        let now = now_millis();
        let id_of = |kind| {
            demo.iter()
                .find(|l| l.kind == kind)
                .map(|l| l.id.clone())
                .expect("kind")
        };

        match links::landing(&pool, &id_of(ReceptionKind::OnlineCare), now)
            .await
            .expect(db.engine)
        {
            LinkState::Open(view) => {
                assert_eq!(view.kind, ReceptionKind::OnlineCare);
                assert!(view.accepting && view.demo, "{}", db.engine);
                assert_eq!(view.institution_name_ja, "うけつけ内科クリニック（デモ）");
            }
            other => panic!("{}: {other:?}", db.engine),
        }
        let unknown = links::landing(&pool, "00000000000000000000000000", now)
            .await
            .expect(db.engine);
        assert_eq!(
            unknown,
            LinkState::Invalid(InvalidLink::Unknown),
            "{}",
            db.engine
        );
        let junk = links::landing(&pool, "'; DROP TABLE reception_links; --", now)
            .await
            .expect(db.engine);
        assert_eq!(
            junk,
            LinkState::Invalid(InvalidLink::Unknown),
            "{}",
            db.engine
        );

        let revoked = id_of(ReceptionKind::HouseCall);
        sqlx::query("UPDATE reception_links SET revoked_at = $1 WHERE id = $2")
            .bind(now - 1)
            .bind(&revoked)
            .execute(&pool)
            .await
            .expect(db.engine);
        let state = links::landing(&pool, &revoked, now).await.expect(db.engine);
        assert_eq!(
            state,
            LinkState::Invalid(InvalidLink::Revoked),
            "{}",
            db.engine
        );

        // An expiry in the future leaves the link open; in the past closes it.
        let expiring = id_of(ReceptionKind::HomeVisit);
        for (expires_at, open) in [(now + 60_000, true), (now, false)] {
            sqlx::query("UPDATE reception_links SET expires_at = $1 WHERE id = $2")
                .bind(expires_at)
                .bind(&expiring)
                .execute(&pool)
                .await
                .expect(db.engine);
            let state = links::landing(&pool, &expiring, now)
                .await
                .expect(db.engine);
            assert_eq!(
                matches!(state, LinkState::Open(_)),
                open,
                "{}: {state:?}",
                db.engine
            );
            if !open {
                assert_eq!(state, LinkState::Invalid(InvalidLink::Expired));
            }
        }

        sqlx::query("UPDATE institutions SET accepts_remote = 0")
            .execute(&pool)
            .await
            .expect(db.engine);
        for (kind, accepting) in [
            (ReceptionKind::OnlineCare, false),
            (ReceptionKind::SeparateRoute, false),
            (ReceptionKind::DeviceFailure, true),
        ] {
            match links::landing(&pool, &id_of(kind), now)
                .await
                .expect(db.engine)
            {
                LinkState::Open(view) => {
                    assert_eq!(view.accepting, accepting, "{}: {kind:?}", db.engine)
                }
                other => panic!("{}: {other:?}", db.engine),
            }
        }
    }
}
