//! A patient's browser, in Rust: opens a link, chooses, gets a challenge, signs it with a
//! virtual My Number card of the simulator's population (PIN entered on the card only), and
//! submits. Used by the integration tests and the load generator (`examples/load.rs`).

#![allow(dead_code)]

use chrono::NaiveDate;
use serde_json::{Value, json};
use uketsuke_backend::contract::b64_encode;
use uketsuke_backend::simulator::population::{self, CertificateCase};
use uketsuke_card::{jpki::authenticate, pin::Pin};

/// One browser: a cookie jar of its own. Every request carries the patient API's header
/// (`x-uketsuke-csrf: 1`), as the app's own calls do.
pub struct Patient {
    pub http: reqwest::Client,
    pub base: String,
}

/// A refusal or an answer, with its status.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    pub fn error(&self) -> Option<&str> {
        self.body.get("error").and_then(Value::as_str)
    }
}

impl Patient {
    pub fn new(base: &str) -> Patient {
        Patient {
            // Below the server's 5 s idle close (see common/console.rs).
            http: reqwest::Client::builder()
                .pool_idle_timeout(std::time::Duration::from_secs(2))
                .cookie_store(true)
                .default_headers(reqwest::header::HeaderMap::from_iter([(
                    reqwest::header::HeaderName::from_static("x-uketsuke-csrf"),
                    reqwest::header::HeaderValue::from_static("1"),
                )]))
                .build()
                .expect("client"),
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.expect("server answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        Answer {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        }
    }

    pub async fn start(&self, link: &str) -> Answer {
        self.send(
            self.http
                .post(format!("{}/api/r/{link}/session", self.base)),
        )
        .await
    }

    pub async fn choose(&self, choices: Value) -> Answer {
        self.send(
            self.http
                .put(format!("{}/api/session/choices", self.base))
                .json(&choices),
        )
        .await
    }

    pub async fn challenge(&self) -> Answer {
        self.send(
            self.http
                .post(format!("{}/api/session/challenge", self.base)),
        )
        .await
    }

    pub async fn submit(&self, body: Value) -> Answer {
        self.send(
            self.http
                .post(format!("{}/api/session/registration", self.base))
                .json(&body),
        )
        .await
    }

    pub async fn reception(&self) -> Answer {
        self.send(
            self.http
                .get(format!("{}/api/session/reception", self.base)),
        )
        .await
    }

    pub async fn cancel(&self, token: &str) -> Answer {
        self.send(
            self.http
                .post(format!("{}/api/cancel", self.base))
                .json(&json!({ "token": token })),
        )
        .await
    }

    /// Polls the reception until it leaves `queued` (or `tries` polls of 50 ms pass).
    pub async fn settled(&self, tries: u32) -> Answer {
        let mut last = self.reception().await;
        for _ in 0..tries {
            if last.body["status"] != "queued" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            last = self.reception().await;
        }
        last
    }
}

/// The card of person `no` signs `message` after the PIN; returns (certificate, signature) as
/// base64url.
pub async fn card_sign(no: u32, case: CertificateCase, message: &str) -> (String, String) {
    let mut card = population::virtual_card(no, case).expect("virtual card");
    let pin = Pin::new(&population::pin_of(no)).expect("pin");
    let auth = authenticate(&mut card, &pin, message.as_bytes())
        .await
        .expect("card signs");
    (
        b64_encode(&auth.certificate_der),
        b64_encode(&auth.signature),
    )
}

/// Choices that fit a kind: online care gets a visit date and a prescription method.
pub fn choices_for(kind: &str, today: NaiveDate) -> Value {
    match kind {
        "online_care" => json!({
            "visit_date": today.format("%Y-%m-%d").to_string(),
            "clinical_medication": true,
            "checkups": true,
            "prescription_method": "electronic",
        }),
        "eligibility_only" => json!({ "clinical_medication": false, "checkups": false }),
        _ => json!({ "clinical_medication": true, "checkups": false }),
    }
}

/// The whole flow for person `no` on `link` up to the 202; returns the submit answer.
pub async fn register(
    patient: &Patient,
    link: &str,
    kind: &str,
    no: u32,
    origin: &str,
    today: NaiveDate,
) -> Answer {
    let started = patient.start(link).await;
    assert_eq!(started.status, 201, "session: {:?}", started.body);
    let review = patient.choose(choices_for(kind, today)).await;
    assert_eq!(review.status, 200, "choices: {:?}", review.body);
    let challenge = patient.challenge().await;
    assert_eq!(challenge.status, 200, "challenge: {:?}", challenge.body);
    let message = challenge.body["message"].as_str().expect("message");
    let (certificate, signature) = card_sign(no, CertificateCase::Valid, message).await;
    patient
        .submit(json!({
            "challenge": challenge.body["challenge"],
            "origin": origin,
            "certificate": certificate,
            "signature": signature,
        }))
        .await
}
