//! The crypto ceiling of one registration: what the run's cores could do if they did nothing
//! but the signatures and verifications a registration needs, measured in the same process
//! and the same run as the load, so that the ratio achieved / ceiling is read on one machine
//! state.
//!
//! One registration, as `examples/load` drives it, costs:
//!
//! | where | operation | crate | count |
//! |---|---|---|---|
//! | server | card proof: X.509 parse, chain (RSA-2048 verify), CRL look-up, card signature (RSA-2048 verify) | `uketsuke_card::certs` over `rsa` | 1 (2 RSA verifies) |
//! | server | request signature (P-256 ECDSA sign), registration and eligibility | `p256` | 2 |
//! | simulator | request signature verify (P-256) | `p256` | 2 |
//! | simulator | certificate chain + card signature (RSA-2048 verify ×2) | `rsa` | 1 |
//! | simulator | answer signature (P-256 sign) | `p256` | 2 |
//! | server | answer signature verify (P-256) | `p256` | 2 |
//! | card (the patient's) | RSA-2048 PKCS#1 v1.5 sign | `rsa` (virtual card) | 1 |
//!
//! The card's signature is the patient's card's work, not the pipeline's; it runs in this
//! process only because the virtual cards stand in for real ones, so the ceiling is printed
//! with it (what this run's cores can reach) and without it (the pipeline alone).

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use uketsuke_backend::{
    contract::signing::{self, RequestContext},
    simulator::{
        certs as sim_certs,
        keys::{self, BACKEND_KEY_ID, DEMO_CLINIC},
        population::{self, CertificateCase},
    },
};
use uketsuke_card::{Pin, VirtualCard, authenticate, certs::verify_card_signature};
use uketsuke_server::trust::Trust;

use super::BoxError;

/// What one registration's crypto works on, prepared once.
pub struct Material {
    trust: Trust,
    anchor: sim_certs::TrustAnchor,
    /// The person's card, issued once (as the load's cards are): the card's figure is its
    /// signature, not the test CA's issuing of a certificate.
    card: VirtualCard,
    pin: String,
    certificate: Vec<u8>,
    message: Vec<u8>,
    signature: Vec<u8>,
    signer: signing::RequestSigner,
    backend: p256::ecdsa::SigningKey,
    backend_verifying: p256::ecdsa::VerifyingKey,
    register_body: Vec<u8>,
    eligibility_body: Vec<u8>,
    now_unix: i64,
}

/// One operation's single-thread cost and how often a registration needs it.
pub struct Cost {
    pub label: &'static str,
    pub per_registration: u32,
    pub each: Duration,
    /// Part of the pipeline (server + simulator); false for the card's own signature.
    pub pipeline: bool,
}

impl Material {
    pub async fn prepare(trust: Trust, person: u32) -> Result<Material, BoxError> {
        let now_unix = chrono::Utc::now().timestamp();
        let ca = keys::test_ca()?;
        let anchor = sim_certs::TrustAnchor::from_der(ca.certificate_der())?;
        let message = b"uketsuke-consent-binding-v1\norigin=http://127.0.0.1\nceiling".to_vec();
        let card = population::virtual_card(person, CertificateCase::Valid)?;
        let pin = population::pin_of(person);
        let auth = authenticate(&mut card.clone(), &Pin::new(&pin)?, &message).await?;
        // A registration body is about this size: the certificate and signature in base64url
        // plus the choices; an eligibility request is a few bytes.
        Ok(Material {
            trust,
            anchor,
            card,
            pin,
            certificate: auth.certificate_der,
            message,
            signature: auth.signature,
            signer: keys::institution_signer(DEMO_CLINIC)?,
            backend: keys::backend_signing_key(),
            backend_verifying: keys::backend_verifying_key(),
            register_body: vec![b'x'; 3 * 1024],
            eligibility_body: br#"{"use_welfare_information":false}"#.to_vec(),
            now_unix,
        })
    }

    fn server_card_proof(&self, rt: &tokio::runtime::Runtime) -> bool {
        rt.block_on(self.trust.verify(
            &self.certificate,
            &self.message,
            &self.signature,
            self.now_unix,
        ))
        .is_ok()
    }

    fn simulator_card_proof(&self) -> bool {
        sim_certs::verify_certificate(&self.certificate, &self.anchor, self.now_unix).is_ok_and(
            |cert| verify_card_signature(&cert.public_key, &self.message, &self.signature),
        )
    }

    fn request_sign(&self, body: &[u8]) -> Option<(signing::SignedRequestHeaders, RequestContext)> {
        self.signer
            .sign("POST", "/v1/registrations", body, self.now_unix, &[7; 32])
            .ok()
    }

    fn request_verify(&self, headers: &signing::SignedRequestHeaders, body: &[u8]) -> bool {
        let pairs = headers.pairs();
        signing::read_request_auth(|n| pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| *v))
            .is_ok_and(|auth| {
                signing::verify_request(
                    &auth,
                    &self.signer.verifying_key(),
                    "POST",
                    "/v1/registrations",
                    body,
                    self.now_unix,
                )
                .is_ok()
            })
    }

    fn answer_sign(&self, context: &RequestContext, body: &[u8]) -> signing::SignedResponseHeaders {
        signing::sign_response(
            &self.backend,
            BACKEND_KEY_ID,
            200,
            context,
            body,
            self.now_unix,
        )
    }

    fn answer_verify(
        &self,
        context: &RequestContext,
        headers: &signing::SignedResponseHeaders,
        body: &[u8],
    ) -> bool {
        let pairs = headers.pairs();
        signing::verify_response(
            &self.backend_verifying,
            BACKEND_KEY_ID,
            context,
            200,
            |n| pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| *v),
            body,
            self.now_unix,
        )
        .is_ok()
    }

    fn card_sign(&self, rt: &tokio::runtime::Runtime) -> bool {
        let mut card = self.card.clone();
        let Ok(pin) = Pin::new(&self.pin) else {
            return false;
        };
        rt.block_on(authenticate(&mut card, &pin, &self.message))
            .is_ok()
    }

    /// One registration's crypto, every operation of the table above; false if any failed
    /// (the material is wrong, and the figures would mean nothing).
    fn one_registration(&self, rt: &tokio::runtime::Runtime, with_card: bool) -> bool {
        let mut ok = !with_card || self.card_sign(rt);
        ok &= self.server_card_proof(rt);
        for body in [&self.register_body, &self.eligibility_body] {
            let Some((headers, context)) = self.request_sign(body) else {
                return false;
            };
            ok &= self.request_verify(&headers, body);
            if body == &self.register_body {
                ok &= self.simulator_card_proof();
            }
            let answer = b"{\"registration_id\":\"r\"}";
            let signed = self.answer_sign(&context, answer);
            ok &= self.answer_verify(&context, &signed, answer);
        }
        ok
    }

    /// Each operation's single-thread cost (mean of `n` runs).
    pub fn costs(&self, n: u32) -> Result<Vec<Cost>, BoxError> {
        let rt = current_thread()?;
        let time = |f: &mut dyn FnMut() -> bool| -> Result<Duration, BoxError> {
            if !f() {
                return Err("an operation of the crypto ceiling failed".into());
            }
            let started = Instant::now();
            for _ in 0..n {
                f();
            }
            Ok(started.elapsed() / n)
        };
        let (headers, context) = self
            .request_sign(&self.register_body)
            .ok_or("cannot sign a request")?;
        let answer = b"{\"registration_id\":\"r\"}";
        let signed = self.answer_sign(&context, answer);
        Ok(vec![
            Cost {
                label: "server: card proof (chain + CRL + signature, 2 RSA verifies)",
                per_registration: 1,
                each: time(&mut || self.server_card_proof(&rt))?,
                pipeline: true,
            },
            Cost {
                label: "server: request sign (P-256)",
                per_registration: 2,
                each: time(&mut || self.request_sign(&self.register_body).is_some())?,
                pipeline: true,
            },
            Cost {
                label: "simulator: request verify (P-256)",
                per_registration: 2,
                each: time(&mut || self.request_verify(&headers, &self.register_body))?,
                pipeline: true,
            },
            Cost {
                label: "simulator: card proof (chain + signature, 2 RSA verifies)",
                per_registration: 1,
                each: time(&mut || self.simulator_card_proof())?,
                pipeline: true,
            },
            Cost {
                label: "simulator: answer sign (P-256)",
                per_registration: 2,
                each: time(&mut || {
                    self.answer_sign(&context, answer);
                    true
                })?,
                pipeline: true,
            },
            Cost {
                label: "server: answer verify (P-256)",
                per_registration: 2,
                each: time(&mut || self.answer_verify(&context, &signed, answer))?,
                pipeline: true,
            },
            Cost {
                label: "card: signature (RSA-2048 sign, virtual card)",
                per_registration: 1,
                each: time(&mut || self.card_sign(&rt))?,
                pipeline: false,
            },
        ])
    }

    /// Registrations' worth of crypto per second on `threads` threads for `run`: the ceiling
    /// as the machine is now (other work on it included), not a sum of single-thread costs.
    pub fn throughput(
        self: &Arc<Self>,
        threads: usize,
        run: Duration,
        with_card: bool,
    ) -> Result<f64, BoxError> {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let handles: Vec<_> = (0..threads.max(1))
            .map(|_| {
                let (me, stop, done, failed) =
                    (self.clone(), stop.clone(), done.clone(), failed.clone());
                std::thread::spawn(move || {
                    let Ok(rt) = current_thread() else {
                        failed.store(true, Ordering::Relaxed);
                        return;
                    };
                    while !stop.load(Ordering::Relaxed) {
                        if !me.one_registration(&rt, with_card) {
                            failed.store(true, Ordering::Relaxed);
                            return;
                        }
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        std::thread::sleep(run);
        stop.store(true, Ordering::Relaxed);
        for handle in handles {
            handle.join().map_err(|_| "a ceiling thread panicked")?;
        }
        if failed.load(Ordering::Relaxed) {
            return Err("an operation of the crypto ceiling failed".into());
        }
        Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
    }
}

fn current_thread() -> Result<tokio::runtime::Runtime, BoxError> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}
