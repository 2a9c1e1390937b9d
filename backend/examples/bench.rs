//! Benchmark of the simulator alone: card-signed registrations through the real signed wire
//! format on loopback, with registrations/s and p50/p99 latency, next to the raw cost of the
//! crypto each registration needs on the backend side. Run with `backend/bench.sh`.
//! Card signatures are prepared before the clock starts: they are the card's work, not the
//! backend's.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use uketsuke_backend::contract::signing;
use uketsuke_backend::contract::*;
use uketsuke_backend::simulator::client::SignedClient;
use uketsuke_backend::simulator::keys::{self, BACKEND_KEY_ID, DEMO_CLINIC};
use uketsuke_backend::simulator::population::{self, CertificateCase};
use uketsuke_backend::simulator::{certs, spawn};
use uketsuke_card::{Pin, authenticate};
use uketsuke_domain::ReceptionKind;
use uketsuke_domain::window::jst_date;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

fn per_op(label: &str, n: u32, mut f: impl FnMut()) {
    let started = Instant::now();
    for _ in 0..n {
        f();
    }
    let each = started.elapsed() / n;
    println!("  {label:<44} {:>9.1} µs", each.as_secs_f64() * 1e6);
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let total: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(400);
    let concurrency: usize = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(8);
    let sim = spawn(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let client = Arc::new(SignedClient::new(
        sim.base_url(),
        keys::institution_signer(DEMO_CLINIC)?,
        keys::backend_verifying_key(),
        BACKEND_KEY_ID,
    )?);

    // Prepare card-signed registrations (person 1, a fresh challenge each).
    let mut card = population::virtual_card(1, CertificateCase::Valid)?;
    let pin = Pin::new(&population::pin_of(1))?;
    let today = jst_date(chrono::Utc::now());
    let mut bodies = Vec::with_capacity(total);
    for i in 0..total {
        let mut req = RegistrationRequest {
            institution_code: keys::institution_code(DEMO_CLINIC),
            kind: ReceptionKind::SeparateRoute,
            visit_date: today,
            consent: ConsentChoices {
                clinical_medication: true,
                checkups: true,
            },
            prescription_method: None,
            identity: IdentityProof::VisualCheck {
                certificate: String::new(),
                staff_account: "bench".into(),
            },
            idempotency_key: format!("bench-{i}"),
        };
        let mut challenge_bytes = [0u8; 32];
        challenge_bytes[..8].copy_from_slice(&(i as u64).to_be_bytes());
        let challenge = b64_encode(&challenge_bytes);
        let message =
            binding::ChallengeBinding::of_request(&req, "https://bench.example", &challenge)
                .message();
        let auth = authenticate(&mut card, &pin, &message).await?;
        req.identity = IdentityProof::Card {
            certificate: b64_encode(&auth.certificate_der),
            signature: b64_encode(&auth.signature),
            origin: "https://bench.example".into(),
            challenge,
        };
        bodies.push(serde_json::to_vec(&req)?);
    }

    println!("simulator benchmark: {total} card registrations, concurrency {concurrency}");
    let queue = Arc::new(std::sync::Mutex::new(bodies));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (client, queue) = (client.clone(), queue.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0usize;
            while let Some(body) = queue.lock().ok().and_then(|mut q| q.pop()) {
                let t = Instant::now();
                let ok = match client.sign(REGISTRATIONS_PATH, &body) {
                    Ok((headers, ctx)) => match client
                        .send_raw(REGISTRATIONS_PATH, &headers.pairs(), body)
                        .await
                    {
                        Ok(answer) => client.decode::<RegistrationAccepted>(&ctx, &answer).is_ok(),
                        Err(_) => false,
                    },
                    Err(_) => false,
                };
                latencies.push(t.elapsed());
                failures += usize::from(!ok);
            }
            (latencies, failures)
        }));
    }
    let mut latencies = Vec::new();
    let mut failures = 0;
    for worker in workers {
        let (l, f) = worker.await?;
        latencies.extend(l);
        failures += f;
    }
    let elapsed = started.elapsed();
    latencies.sort();
    println!(
        "  registrations/s                              {:>9.1}",
        total as f64 / elapsed.as_secs_f64()
    );
    println!(
        "  p50 latency                                  {:>9.2} ms",
        percentile(&latencies, 0.50).as_secs_f64() * 1e3
    );
    println!(
        "  p99 latency                                  {:>9.2} ms",
        percentile(&latencies, 0.99).as_secs_f64() * 1e3
    );
    println!("  failed                                       {failures:>9}");

    // The raw per-request crypto of one registration on the backend side.
    println!("per-request crypto (one core, per operation):");
    let anchor = certs::TrustAnchor::from_der(keys::test_ca()?.certificate_der())?;
    let cert = card.certificate_der().to_vec();
    let now = chrono::Utc::now().timestamp();
    per_op("X.509 parse + chain (RSA-2048 verify)", 200, || {
        let _ = certs::verify_certificate(&cert, &anchor, now);
    });
    let verified = certs::verify_certificate(&cert, &anchor, now).map_err(|c| c.as_str())?;
    let message = b"uketsuke-consent-binding-v1\nbench";
    let auth = authenticate(&mut card, &pin, message).await?;
    per_op("card signature verify (RSA-2048 PKCS#1)", 200, || {
        let _ = certs::verify_card_signature(&verified.public_key, message, &auth.signature);
    });
    let signer = keys::institution_signer(DEMO_CLINIC)?;
    let body = vec![b'x'; 4096];
    let (headers, ctx) = signer.sign("POST", REGISTRATIONS_PATH, &body, now, &[7; 32])?;
    let pairs = headers.pairs();
    let auth_headers =
        signing::read_request_auth(|n| pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| *v))
            .map_err(|c| c.as_str())?;
    let institution_key = signer.verifying_key();
    per_op("request verify (P-256 ECDSA, 4 KiB body)", 200, || {
        let _ = signing::verify_request(
            &auth_headers,
            &institution_key,
            "POST",
            REGISTRATIONS_PATH,
            &body,
            now,
        );
    });
    let backend = keys::backend_signing_key();
    per_op("answer sign (P-256 ECDSA, 4 KiB body)", 200, || {
        let _ = signing::sign_response(&backend, BACKEND_KEY_ID, 200, &ctx, &body, now);
    });
    Ok(())
}
