//! Section 4, "Revocation fails closed" (the servers here trust the simulator's test CA from
//! files, as production trusts J-LIS's CAs, with CRL files signed by it):
//! - a revocation list past its nextUpdate: registrations are refused with
//!   `revocation_list_stale` and `/readyz` answers 503 naming the CA, until a current list is
//!   loaded;
//! - an older list replayed on reload: refused, the newer list stays in force; so is a list
//!   with a critical extension this server does not process (list or entry), a delta list and
//!   a partial list;
//! - a patient certificate with an unknown critical extension: refused;
//! - a CA certificate, and a signature-only certificate (like a 署名用電子証明書), signed by the
//!   trusted CA and presented as the user's: refused as `certificate_wrong_type`.
//!
//! The crafted certificates keep the card's own key, so the card's signature over the challenge
//! is genuine: without the checks each attack would be accepted (202).

use std::path::{Path, PathBuf};

use crate::common::patient::{Answer, Patient, choices_for};
use serde_json::json;
use uketsuke_backend::contract::b64_encode;
use uketsuke_backend::simulator::{keys, population};
use uketsuke_card::certs::TrustAnchor;
use uketsuke_card::test_ca::{CrlRequest, Deviation};
use uketsuke_card::{jpki::authenticate, pin::Pin};
use uketsuke_domain::window::jst_date;
use uketsuke_server::clock::Clock;
use uketsuke_server::config::Config;
use uketsuke_server::{AppState, Background, Options, Server};

const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;
/// The demo reception kind the attacks register on.
const KIND: &str = "separate_route";
/// A person of the simulator's population with a valid card; its serial is its card seed.
const PERSON: u32 = 1;

/// A server in demo mode whose trust comes from files: the test CA's certificate and one CRL.
struct Served {
    base: String,
    link: String,
    state: AppState,
    clock: Clock,
    dir: tempfile::TempDir,
}

impl Served {
    fn now(&self) -> i64 {
        self.clock.now_ms().div_euclid(1000)
    }

    /// Writes `der` as a CRL file of this server's directory.
    fn crl_file(&self, name: &str, der: &[u8]) -> PathBuf {
        write(self.dir.path(), name, der)
    }

    async fn readyz(&self) -> (u16, serde_json::Value) {
        let response = reqwest::get(format!("{}/readyz", self.base))
            .await
            .expect("server answers");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON body"))
    }

    /// The whole flow for the population's person `no`; the certificate the card returns is
    /// passed through `present` before it is submitted (the signature stays the card's).
    async fn register(&self, no: u32, present: impl FnOnce(Vec<u8>) -> Vec<u8>) -> Answer {
        let patient = Patient::new(&self.base);
        let started = patient.start(&self.link).await;
        assert_eq!(started.status, 201, "session: {:?}", started.body);
        let today = jst_date(self.clock.now());
        let review = patient.choose(choices_for(KIND, today)).await;
        assert_eq!(review.status, 200, "choices: {:?}", review.body);
        let challenge = patient.challenge().await;
        assert_eq!(challenge.status, 200, "challenge: {:?}", challenge.body);
        let message = challenge.body["message"].as_str().expect("message");
        let mut card =
            population::virtual_card(no, population::CertificateCase::Valid).expect("virtual card");
        let pin = Pin::new(&population::pin_of(no)).expect("pin");
        let auth = authenticate(&mut card, &pin, message.as_bytes())
            .await
            .expect("card signs");
        patient
            .submit(json!({
                "challenge": challenge.body["challenge"],
                "origin": self.state.config.origin_string(),
                "certificate": b64_encode(&present(auth.certificate_der)),
                "signature": b64_encode(&auth.signature),
            }))
            .await
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write");
    path
}

/// A CRL of the test CA issued at `this_update`, current for `valid_for` seconds, numbered by
/// `number`, revoking `revoked`.
fn crl(revoked: &[u64], this_update: i64, valid_for: i64, number: u64) -> Vec<u8> {
    keys::test_ca()
        .expect("test CA")
        .issue_crl_with(&CrlRequest {
            revoked_serials: revoked,
            this_update_unix: this_update,
            next_update_unix: Some(this_update + valid_for),
            crl_number: Some(number),
            deviation: None,
        })
        .expect("CRL")
}

/// The test CA's key identifier as `/readyz` and the log name it.
fn test_ca_ski() -> String {
    TrustAnchor::from_der(keys::test_ca().expect("test CA").certificate_der())
        .expect("anchor")
        .key_id_hex()
}

/// Starts a server trusting the test CA with `crl` (DER) as its list, on the system clock
/// (which the test may move). Background work is off: the CRL reload is driven by the test
/// through `Trust::reload_crls`, the function the ten-minute reload calls.
async fn served(crl_der: &[u8]) -> Served {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = write(
        dir.path(),
        "ca.der",
        keys::test_ca().expect("test CA").certificate_der(),
    );
    let crl = write(dir.path(), "start.crl", crl_der);
    let env: Vec<(String, String)> = [
        ("UKETSUKE_LISTEN", "127.0.0.1:0".to_owned()),
        ("UKETSUKE_MODE", "demo".to_owned()),
        (
            "UKETSUKE_DATABASE_URL",
            format!("sqlite://{}/server.db", dir.path().display()),
        ),
        ("UKETSUKE_RATE_LIMITS", "off".to_owned()),
        (
            "UKETSUKE_SITE_ROOT",
            dir.path().join("site").display().to_string(),
        ),
        ("UKETSUKE_JPKI_CA", ca.display().to_string()),
        ("UKETSUKE_JPKI_CRL", crl.display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let config = Config::from_sources(None, &env).expect("valid configuration");
    let clock = Clock::system();
    let server = Server::build_with(
        config,
        Options {
            clock: clock.clone(),
            background: Background::Off,
            ..Options::default()
        },
    )
    .await
    .expect("server starts");
    let base = server.base_url();
    let link = server
        .demo_links()
        .iter()
        .find(|l| l.kind.code() == KIND)
        .map(|l| l.id.clone())
        .expect("demo link");
    let state = server.state().clone();
    tokio::spawn(server.run(std::future::pending()));
    Served {
        base,
        link,
        state,
        clock,
        dir,
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_revocation_list_refuses_cards_and_readiness_until_a_current_one_loads() {
    let start = now();
    let served = served(&crl(&[], start - HOUR, DAY, 1)).await;
    let (status, body) = served.readyz().await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["revocation"], "ok");

    // Two days later nobody has replaced the list: it is past its nextUpdate.
    served.clock.advance_ms(2 * DAY * 1000);
    let refused = served.register(PERSON, |cert| cert).await;
    assert_eq!(refused.status, 422, "{:?}", refused.body);
    assert_eq!(refused.error(), Some("revocation_list_stale"));
    let (status, body) = served.readyz().await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["revocation"], "stale");
    let stale = body["stale_revocation_lists"].to_string();
    assert!(stale.contains(&format!("SKI {}", test_ca_ski())), "{stale}");

    // A current list arrives and is reloaded: ready again, and the card is accepted.
    let fresh = served.crl_file("fresh.crl", &crl(&[], served.now() - HOUR, DAY, 2));
    served
        .state
        .trust
        .reload_crls(&[fresh], served.now())
        .await
        .expect("a current list reloads");
    let (status, body) = served.readyz().await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("stale_revocation_lists").is_none(), "{body}");
    let accepted = served.register(PERSON, |cert| cert).await;
    assert_eq!(accepted.status, 202, "{:?}", accepted.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_revocation_list_on_reload_is_refused_and_the_newer_stays() {
    let start = now();
    let serial = population::card_seed(PERSON);
    // The list in force revokes the card; an older list, from before the revocation, does not.
    let served = served(&crl(&[serial], start - HOUR, 3 * DAY, 200)).await;
    let revoked = served.register(PERSON, |cert| cert).await;
    assert_eq!(revoked.error(), Some("certificate_revoked"), "{revoked:?}");

    let replays = [
        // The earlier list as it was: earlier thisUpdate, lower number.
        ("older.crl", crl(&[], start - DAY, 3 * DAY, 199)),
        // A lower number dated later.
        ("renumbered.crl", crl(&[], start - HOUR + 60, 3 * DAY, 199)),
        // A higher number dated earlier.
        ("backdated.crl", crl(&[], start - DAY, 3 * DAY, 201)),
    ];
    for (name, der) in replays {
        let path = served.crl_file(name, &der);
        let error = served
            .state
            .trust
            .reload_crls(&[path], served.now())
            .await
            .expect_err("an older list is refused");
        let message = error.to_string();
        assert!(
            message.contains("older than the list in force") && message.contains(name),
            "{message}"
        );
        let still = served.register(PERSON, |cert| cert).await;
        assert_eq!(
            still.error(),
            Some("certificate_revoked"),
            "{name}: {still:?}"
        );
    }
    // The next list in order is taken.
    let next = served.crl_file("next.crl", &crl(&[serial], start, 3 * DAY, 201));
    served
        .state
        .trust
        .reload_crls(&[next], served.now())
        .await
        .expect("a newer list reloads");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_with_an_unknown_critical_extension_is_refused() {
    let served = served(&crl(&[], now() - HOUR, DAY, 1)).await;
    let ca = keys::test_ca().expect("test CA");
    let refused = served
        .register(PERSON, |cert| {
            ca.reissue_user_certificate(&cert, Deviation::UnknownCriticalExtension)
                .expect("re-issued")
        })
        .await;
    assert_eq!(refused.status, 422, "{:?}", refused.body);
    assert_eq!(refused.error(), Some("certificate_untrusted"));
    // The same extension, not critical, is ignored: the card is accepted.
    let accepted = served
        .register(PERSON, |cert| {
            ca.reissue_user_certificate(&cert, Deviation::UnknownNonCriticalExtension)
                .expect("re-issued")
        })
        .await;
    assert_eq!(accepted.status, 202, "{:?}", accepted.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_certificate_or_a_signature_certificate_presented_as_the_users_is_refused() {
    let served = served(&crl(&[], now() - HOUR, DAY, 1)).await;
    let ca = keys::test_ca().expect("test CA");
    for deviation in [
        Deviation::CaCertificate,
        Deviation::SignatureCertificate,
        Deviation::KeyEnciphermentOnly,
    ] {
        let refused = served
            .register(PERSON, |cert| {
                ca.reissue_user_certificate(&cert, deviation)
                    .expect("re-issued")
            })
            .await;
        assert_eq!(refused.status, 422, "{deviation:?}: {:?}", refused.body);
        assert_eq!(
            refused.error(),
            Some("certificate_wrong_type"),
            "{deviation:?}"
        );
    }
    // The card's own certificate, re-signed the same way but unchanged in kind, is accepted:
    // the refusals above are the certificates' type, not the re-signing.
    let accepted = served
        .register(PERSON, |cert| {
            ca.reissue_user_certificate(&cert, Deviation::ClientAuth)
                .expect("re-issued")
        })
        .await;
    assert_eq!(accepted.status, 202, "{:?}", accepted.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_list_with_a_critical_extension_nobody_processes_is_refused_on_reload() {
    use uketsuke_card::test_ca::CrlDeviation;
    let start = now();
    let serial = population::card_seed(PERSON);
    let served = served(&crl(&[serial], start - HOUR, 3 * DAY, 10)).await;
    // Newer lists that un-revoke the card, each with something that makes them unusable: a
    // critical list extension, a critical entry extension, a delta list, a partial list.
    for (name, deviation) in [
        ("critical.crl", CrlDeviation::UnknownCriticalExtension),
        ("entry.crl", CrlDeviation::UnknownCriticalEntryExtension),
        ("delta.crl", CrlDeviation::DeltaCrl),
        ("partial.crl", CrlDeviation::OnlySomeReasons),
    ] {
        let der = keys::test_ca()
            .expect("test CA")
            .issue_crl_with(&CrlRequest {
                revoked_serials: &[serial + 1],
                this_update_unix: start,
                next_update_unix: Some(start + 3 * DAY),
                crl_number: Some(11),
                deviation: Some(deviation),
            })
            .expect("CRL");
        let path = served.crl_file(name, &der);
        let error = served
            .state
            .trust
            .reload_crls(&[path], served.now())
            .await
            .expect_err("refused");
        assert!(error.to_string().contains(name), "{error}");
        let still = served.register(PERSON, |cert| cert).await;
        assert_eq!(
            still.error(),
            Some("certificate_revoked"),
            "{name}: {still:?}"
        );
    }
}
