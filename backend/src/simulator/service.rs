//! The simulator's request handling: authenticate the signed request (key, timestamp,
//! signature, nonce), decode the body, run the operation, and sign the answer. Operations apply
//! the national rules: certificate checks and the challenge binding at registration,
//! information control on eligibility (domain::eligibility), consent windows on medical
//! information (domain::window), with a typed [`ErrorCode`] for every refusal.

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Datelike, Utc};
use p256::ecdsa::SigningKey;
use serde::Serialize;
use serde::de::DeserializeOwned;
use uketsuke_domain::eligibility::{
    ConfirmationMethod, EligibilityOutcome, InstitutionContext, NoEligibilityReason,
    apply_information_control,
};
use uketsuke_domain::window::{WindowEnd, jst_date};
use uketsuke_domain::{ReceptionKind, Window, WindowInput, is_open, window};

use super::certs::{TrustAnchor, verify_card_signature, verify_certificate};
use super::clock::SimClock;
use super::faults::Faults;
use super::keys::{self, BACKEND_KEY_ID};
use super::store::{
    NewInsuranceUse, NewRegistration, Revocation, Store, StoreError, StoredRegistration,
};
use crate::contract::binding::{
    ChallengeBinding, InsuranceUseBinding, challenge_is_well_formed, origin_is_well_formed,
};
use crate::contract::signing::{
    self, MAX_BODY_BYTES, MAX_CLOCK_SKEW_SECS, RequestContext, body_digest_hex,
    decode_verifying_key,
};
use crate::contract::*;

/// A refusal with its detail for logs.
#[derive(Debug)]
pub struct Refusal(pub ErrorCode, pub String);

impl Refusal {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Refusal(code, message.into())
    }
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        Refusal(ErrorCode::Internal, e.to_string())
    }
}

fn refuse<T>(code: ErrorCode, message: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal::new(code, message))
}

/// Which operation a route stands for.
#[derive(Debug, Clone)]
pub enum Operation {
    Register,
    Eligibility(String),
    MedicalInformation(String),
    Withdraw(String),
    ConsentUpdate(String),
    HomeVisit(String),
    /// 健康保険証利用登録 of the registration's patient.
    InsuranceUse(String),
    /// `POST /v1/person-references`.
    PersonReference,
    /// Any other path: refused after authentication, so probes learn nothing unsigned.
    NotFound,
}

/// The signing institution, once its request has been verified.
struct Institution {
    key_id: String,
    code: String,
}

/// Shared state of one simulator.
pub struct Sim {
    pub store: Store,
    pub clock: SimClock,
    pub faults: Faults,
    pub backend_key: SigningKey,
    /// The test CA every population card chains to.
    pub trust_anchor: TrustAnchor,
}

fn system_unix() -> i64 {
    Utc::now().timestamp()
}

fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, Refusal> {
    serde_json::to_vec(value).map_err(|e| Refusal::new(ErrorCode::Internal, e.to_string()))
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, Refusal> {
    serde_json::from_slice(body)
        .map_err(|e| Refusal::new(ErrorCode::MalformedRequest, e.to_string()))
}

fn staff_account_ok(account: &str) -> bool {
    (2..=8).contains(&account.len()) && account.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn idempotency_key_ok(key: &str) -> bool {
    (1..=64).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl Sim {
    /// Handles one signed request from the socket to the signed answer.
    pub async fn serve(
        &self,
        op: Operation,
        method: &str,
        path: &str,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Response {
        let plan = self.faults.plan();
        if !plan.delay.is_zero() {
            tokio::time::sleep(plan.delay).await;
        }
        if plan.outage {
            return outage();
        }
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let context = RequestContext {
            method: method.to_ascii_uppercase(),
            path: path.to_owned(),
            // The answer repeats the nonce as received, so the client can match it even on a
            // refusal of its signature.
            nonce: header(signing::HEADER_NONCE).unwrap_or("").to_owned(),
        };
        let result = if plan.error {
            Err(Refusal::new(ErrorCode::Unavailable, "injected fault"))
        } else {
            self.authenticated(op, method, path, &header, &body).await
        };
        let (status, mut body) = match result {
            Ok(body) => (200, body),
            Err(Refusal(code, message)) => {
                let body = ErrorBody { code, message };
                (
                    code.http_status(),
                    serde_json::to_vec(&body).unwrap_or_default(),
                )
            }
        };
        if plan.malformed {
            // Cut the body short and sign what is sent: the client must survive a signed
            // answer it cannot decode.
            body.truncate(body.len() / 2);
        }
        let mut signed = signing::sign_response(
            &self.backend_key,
            BACKEND_KEY_ID,
            status,
            &context,
            &body,
            system_unix(),
        );
        if plan.bad_signature {
            signed.signature = b64_encode(&[0u8; 64]);
        }
        respond(status, signed.pairs(), body)
    }

    async fn authenticated<'h>(
        &self,
        op: Operation,
        method: &str,
        path: &str,
        header: &impl Fn(&str) -> Option<&'h str>,
        body: &[u8],
    ) -> Result<Vec<u8>, Refusal> {
        if body.len() > MAX_BODY_BYTES {
            return refuse(ErrorCode::BodyTooLarge, "body larger than 64 KiB");
        }
        let auth =
            signing::read_request_auth(header).map_err(|c| Refusal::new(c, "signature headers"))?;
        let Some((code, key_text)) = self.store.institution(&auth.key_id).await? else {
            return refuse(ErrorCode::UnknownKey, format!("key id {:?}", auth.key_id));
        };
        let key = decode_verifying_key(&key_text)
            .ok_or_else(|| Refusal::new(ErrorCode::Internal, "stored key unreadable"))?;
        let now = system_unix();
        signing::verify_request(&auth, &key, method, path, body, now)
            .map_err(|c| Refusal::new(c, "request signature"))?;
        // Nonces are kept for twice the skew: any older request fails on its timestamp.
        if !self
            .store
            .record_nonce(&auth.key_id, &auth.nonce, now, 2 * MAX_CLOCK_SKEW_SECS)
            .await?
        {
            return refuse(ErrorCode::ReplayedNonce, "nonce already used");
        }
        let institution = Institution {
            key_id: auth.key_id,
            code,
        };
        match op {
            Operation::Register => {
                self.register(&institution, parse(body)?, &body_digest_hex(body))
                    .await
            }
            Operation::Eligibility(id) => {
                to_json(&self.eligibility(&institution, &id, parse(body)?).await?)
            }
            Operation::MedicalInformation(id) => {
                to_json(&self.medical(&institution, &id, parse(body)?).await?)
            }
            Operation::Withdraw(id) => {
                to_json(&self.withdraw(&institution, &id, parse(body)?).await?)
            }
            Operation::ConsentUpdate(id) => {
                to_json(&self.update_consent(&institution, &id, parse(body)?).await?)
            }
            Operation::HomeVisit(id) => {
                to_json(&self.home_visit(&institution, &id, parse(body)?).await?)
            }
            Operation::InsuranceUse(id) => {
                self.insurance_use(&institution, &id, parse(body)?, &body_digest_hex(body))
                    .await
            }
            Operation::PersonReference => {
                to_json(&self.person_reference(&institution, parse(body)?).await?)
            }
            Operation::NotFound => refuse(ErrorCode::NotFound, path.to_owned()),
        }
    }

    /// A request whose idempotency key was seen before (`stored` = its request hash and
    /// answer): the same body gets the stored answer again, another body
    /// `idempotency_conflict`; either is recorded as a resend.
    async fn answer_again(
        &self,
        inst: &Institution,
        idempotency_key: &str,
        request_hash: &str,
        (hash, answer): (String, String),
    ) -> Result<Vec<u8>, Refusal> {
        let replay = hash == request_hash;
        let kind = if replay {
            "idempotent_replay"
        } else {
            "idempotency_conflict"
        };
        self.store
            .record_resend(kind, &inst.key_id, idempotency_key, self.clock.now())
            .await?;
        if replay {
            Ok(answer.into_bytes())
        } else {
            refuse(
                ErrorCode::IdempotencyConflict,
                "idempotency key used with another body",
            )
        }
    }

    /// `POST /v1/registrations`. Returns the stored answer bytes (so a retry gets them again).
    async fn register(
        &self,
        inst: &Institution,
        req: RegistrationRequest,
        request_hash: &str,
    ) -> Result<Vec<u8>, Refusal> {
        if !idempotency_key_ok(&req.idempotency_key) {
            return refuse(ErrorCode::MalformedRequest, "idempotency_key");
        }
        if let Some(stored) = self
            .store
            .idempotent_answer(&inst.key_id, &req.idempotency_key)
            .await?
        {
            return self
                .answer_again(inst, &req.idempotency_key, request_hash, stored)
                .await;
        }
        if req.institution_code.as_str() != inst.code {
            return refuse(
                ErrorCode::InstitutionMismatch,
                "institution code is not the signer's",
            );
        }
        self.check_kind_rules(&req)?;
        let now = self.clock.now();
        let (certificate, challenge) = match &req.identity {
            IdentityProof::Card {
                certificate,
                signature,
                origin,
                challenge,
            } => {
                if !origin_is_well_formed(origin) || !challenge_is_well_formed(challenge) {
                    return refuse(ErrorCode::ChallengeInvalid, "origin or challenge format");
                }
                let cert = self.verified_certificate(certificate, now).await?;
                let signature = b64_decode(signature).ok_or_else(|| {
                    Refusal::new(ErrorCode::CardSignatureInvalid, "signature encoding")
                })?;
                let message = ChallengeBinding::of_request(&req, origin, challenge).message();
                if !verify_card_signature(&cert.public_key, &message, &signature) {
                    return refuse(
                        ErrorCode::CardSignatureInvalid,
                        "card signature over the binding",
                    );
                }
                if self.store.challenge_used(challenge).await? {
                    self.store
                        .record_resend("challenge_reused", &inst.key_id, &req.idempotency_key, now)
                        .await?;
                    return refuse(ErrorCode::ChallengeReused, "challenge already registered");
                }
                (cert, Some(challenge.as_str()))
            }
            IdentityProof::VisualCheck {
                certificate,
                staff_account,
            } => {
                if !req.kind.allows_visual_check() {
                    return refuse(
                        ErrorCode::VisualCheckNotAllowed,
                        "visual check for online care",
                    );
                }
                if !staff_account_ok(staff_account) {
                    return refuse(ErrorCode::StaffAccountInvalid, "staff account format");
                }
                (self.verified_certificate(certificate, now).await?, None)
            }
        };
        let Some(person) = self.store.person_by_serial(certificate.serial).await? else {
            return refuse(
                ErrorCode::PersonNotFound,
                "no person holds this certificate",
            );
        };
        let new = NewRegistration {
            institution_code: &inst.code,
            key_id: &inst.key_id,
            idempotency_key: &req.idempotency_key,
            request_hash,
            person_no: person.no,
            kind: req.kind,
            visit_date: req.visit_date,
            clinical_medication: req.consent.clinical_medication,
            checkups: req.consent.checkups,
            challenge,
            registered_at: now,
        };
        let window = window(&WindowInput {
            kind: req.kind,
            registered_at: now,
            visit_date: Some(req.visit_date),
            home_visits: Vec::new(),
            withdrawn_at: None,
        });
        let text = self
            .store
            .insert_registration(&new, |id, seq| {
                serde_json::to_string(&RegistrationAccepted {
                    registration_id: id.to_owned(),
                    reception_number: format!("{:08}", 20_000_000 + seq % 80_000_000),
                    registered_at: now,
                    kind: req.kind,
                    visit_date: req.visit_date,
                    consent: req.consent,
                    window,
                    person_reference: Some(keys::person_reference(inst.code.as_str(), person.no)),
                })
                .map_err(|e| e.to_string())
            })
            .await?;
        Ok(text.into_bytes())
    }

    /// `POST /v1/registrations/{id}/insurance-use` (健康保険証利用登録). Returns the stored
    /// answer bytes, so a retry with the same key gets them again.
    ///
    /// Sources: the national service lets a patient register the card for insurance use from
    /// the consent flow itself (the マイナ資格確認アプリ offers 健康保険証利用登録: seed
    /// `../shared/seeds/002_8bf0bd7d71425ecf.txt`), and an institution's 顔認証付きカードリーダー
    /// does the 初回登録 (seed `003_e2dd02392a3e1a6d.txt`, 運用整理 26). The refusals reuse the
    /// national rules the simulator already applies at registration (certificate checks,
    /// J-LIS review). The wire form (one signed request per registration, the signed text, the
    /// terms version) is Uketsuke's contract, not a published national API: no recorded trace
    /// of the real operation exists to replay.
    ///
    /// The order of the checks: the request's form, the registration, then the card's proof
    /// (certificate, signature over the text, one-time challenge), and only then anything about
    /// the person, so an unproven request learns nothing of them.
    async fn insurance_use(
        &self,
        inst: &Institution,
        id: &str,
        req: InsuranceUseRequest,
        request_hash: &str,
    ) -> Result<Vec<u8>, Refusal> {
        if !idempotency_key_ok(&req.idempotency_key) {
            return refuse(ErrorCode::MalformedRequest, "idempotency_key");
        }
        if let Some(stored) = self
            .store
            .insurance_use_answer(&inst.key_id, &req.idempotency_key)
            .await?
        {
            return self
                .answer_again(inst, &req.idempotency_key, request_hash, stored)
                .await;
        }
        let reg = self.registration(inst, id).await?;
        if req.terms_version != INSURANCE_USE_TERMS_VERSION {
            return refuse(
                ErrorCode::TermsVersionUnknown,
                format!("terms {:?}", req.terms_version),
            );
        }
        if !origin_is_well_formed(&req.origin) || !challenge_is_well_formed(&req.challenge) {
            return refuse(ErrorCode::ChallengeInvalid, "origin or challenge format");
        }
        let now = self.clock.now();
        let certificate = self.verified_certificate(&req.certificate, now).await?;
        let signature = b64_decode(&req.signature)
            .ok_or_else(|| Refusal::new(ErrorCode::CardSignatureInvalid, "signature encoding"))?;
        let institution: uketsuke_domain::InstitutionCode = inst
            .code
            .parse()
            .map_err(|_| Refusal::new(ErrorCode::Internal, "stored institution code"))?;
        let message = InsuranceUseBinding {
            origin: &req.origin,
            challenge: &req.challenge,
            institution: &institution,
            terms: &req.terms_version,
        }
        .message();
        if !verify_card_signature(&certificate.public_key, &message, &signature) {
            return refuse(
                ErrorCode::CardSignatureInvalid,
                "card signature over the insurance-use text",
            );
        }
        if self.store.challenge_used(&req.challenge).await? {
            self.store
                .record_resend("challenge_reused", &inst.key_id, &req.idempotency_key, now)
                .await?;
            return refuse(ErrorCode::ChallengeReused, "challenge already used");
        }
        let Some(person) = self.store.person_by_serial(certificate.serial).await? else {
            return refuse(
                ErrorCode::PersonNotFound,
                "no person holds this certificate",
            );
        };
        if person.no != reg.person_no {
            return refuse(
                ErrorCode::PersonMismatch,
                "the card is not the registration's patient's",
            );
        }
        if reg.withdrawn_at.is_some() {
            return refuse(ErrorCode::ConsentWithdrawn, "registration withdrawn");
        }
        if person.jlis_review {
            return refuse(ErrorCode::PersonUnderReview, "J-LIS review");
        }
        let new = NewInsuranceUse {
            key_id: &inst.key_id,
            idempotency_key: &req.idempotency_key,
            request_hash,
            registration_id: &reg.id,
            person_no: person.no,
            challenge: &req.challenge,
        };
        let text = self
            .store
            .register_insurance_use(&new, now, |registered_at, already_registered| {
                serde_json::to_string(&InsuranceUseRegistered {
                    registration_id: reg.id.clone(),
                    registered_at,
                    already_registered,
                })
                .map_err(|e| e.to_string())
            })
            .await?;
        Ok(text.into_bytes())
    }

    fn check_kind_rules(&self, req: &RegistrationRequest) -> Result<(), Refusal> {
        if req.kind.asks_prescription_method() != req.prescription_method.is_some() {
            return refuse(
                ErrorCode::PrescriptionMethodInvalid,
                "prescription method is for online care only, and required there",
            );
        }
        if !req.kind.offers_medical_information()
            && (req.consent.clinical_medication || req.consent.checkups)
        {
            return refuse(
                ErrorCode::ConsentNotOffered,
                "eligibility-only reception takes no consent",
            );
        }
        let today = jst_date(self.clock.now());
        let date_ok = if req.kind.asks_visit_date() {
            req.visit_date >= today
        } else {
            req.visit_date == today
        };
        if !date_ok {
            return refuse(
                ErrorCode::VisitDateInvalid,
                format!("visit date {} (today {today})", req.visit_date),
            );
        }
        Ok(())
    }

    async fn verified_certificate(
        &self,
        certificate_b64: &str,
        now: DateTime<Utc>,
    ) -> Result<super::certs::VerifiedCertificate, Refusal> {
        let der = b64_decode(certificate_b64)
            .ok_or_else(|| Refusal::new(ErrorCode::CertificateMalformed, "certificate encoding"))?;
        let cert = verify_certificate(&der, &self.trust_anchor, now.timestamp())
            .map_err(|c| Refusal::new(c, "certificate"))?;
        match self.store.revocation(cert.serial).await? {
            Some(Revocation::Listed) => refuse(
                ErrorCode::CertificateRevoked,
                format!("serial {}", cert.serial),
            ),
            // The old certificate of a renewal proves nothing any more, though the person is
            // known: only the new one names them.
            Some(Revocation::Superseded) => refuse(
                ErrorCode::CertificateRevoked,
                format!(
                    "serial {} was replaced by a renewed certificate",
                    cert.serial
                ),
            ),
            None => Ok(cert),
        }
    }

    /// `POST /v1/person-references`: the person who holds a valid certificate, as this
    /// institution knows them. The relay verified the card's proof (PIN, challenge) itself;
    /// the backend checks the certificate as at registration — chain, validity, revocation
    /// (a certificate revoked by its renewal included) — and maps it to the person. The answer
    /// is the same for every request about the same person here, so a retry is harmless.
    async fn person_reference(
        &self,
        inst: &Institution,
        req: PersonReferenceRequest,
    ) -> Result<PersonReferenceAnswer, Refusal> {
        if req.institution_code.as_str() != inst.code {
            return refuse(
                ErrorCode::InstitutionMismatch,
                "institution code is not the signer's",
            );
        }
        let certificate = self
            .verified_certificate(&req.certificate, self.clock.now())
            .await?;
        let Some(person) = self.store.person_by_serial(certificate.serial).await? else {
            return refuse(
                ErrorCode::PersonNotFound,
                "no person holds this certificate",
            );
        };
        Ok(PersonReferenceAnswer {
            person_reference: keys::person_reference(inst.code.as_str(), person.no),
        })
    }

    async fn registration(
        &self,
        inst: &Institution,
        id: &str,
    ) -> Result<StoredRegistration, Refusal> {
        self.store
            .registration(id, &inst.code)
            .await?
            .ok_or_else(|| Refusal::new(ErrorCode::RegistrationNotFound, id.to_owned()))
    }

    async fn current_window(&self, reg: &StoredRegistration) -> Result<Window, Refusal> {
        let today = jst_date(self.clock.now());
        let visits = self.store.home_visits(&reg.id).await?;
        Ok(window(&WindowInput {
            kind: reg.kind,
            registered_at: reg.registered_at,
            visit_date: Some(reg.visit_date),
            // Only visits that have happened count (domain::window's contract).
            home_visits: visits.into_iter().filter(|d| *d <= today).collect(),
            withdrawn_at: reg.withdrawn_at,
        }))
    }

    async fn eligibility(
        &self,
        inst: &Institution,
        id: &str,
        req: EligibilityRequest,
    ) -> Result<EligibilityAnswer, Refusal> {
        let reg = self.registration(inst, id).await?;
        let person = self
            .store
            .person(reg.person_no)
            .await?
            .ok_or_else(|| Refusal::new(ErrorCode::Internal, "registration without person"))?;
        let today = jst_date(self.clock.now());
        let not_available = |reason| EligibilityOutcome::NotAvailable { reason };
        let outcome = if person.jlis_review {
            not_available(NoEligibilityReason::UnderJlisReview)
        } else if !person.insurance_registered {
            not_available(NoEligibilityReason::CardNotRegisteredForInsurance)
        } else if person.record.insurance.is_none() && person.record.welfare.is_none() {
            not_available(NoEligibilityReason::NoQualification)
        } else {
            let ctx = InstitutionContext {
                // Every flow of this portal uses the card (PIN or visual check).
                method: ConfirmationMethod::MyNumberCard,
                contracted_for_welfare: self
                    .store
                    .welfare_contracted(person.no, &inst.code)
                    .await?,
                use_welfare_information: req.use_welfare_information,
                confirmed_on: today,
            };
            EligibilityOutcome::Found {
                record: Box::new(apply_information_control(person.record, person.flags, &ctx)),
            }
        };
        Ok(EligibilityAnswer {
            registration_id: reg.id,
            confirmed_on: today,
            outcome,
        })
    }

    async fn medical(
        &self,
        inst: &Institution,
        id: &str,
        req: MedicalInformationRequest,
    ) -> Result<MedicalInformationAnswer, Refusal> {
        let reg = self.registration(inst, id).await?;
        if !reg.kind.offers_medical_information() {
            return refuse(
                ErrorCode::NoMedicalInformation,
                "eligibility-only reception",
            );
        }
        let person = self
            .store
            .person(reg.person_no)
            .await?
            .ok_or_else(|| Refusal::new(ErrorCode::Internal, "registration without person"))?;
        if person.jlis_review {
            return refuse(ErrorCode::PersonUnderReview, "J-LIS mismatch");
        }
        let consented = match req.category {
            MedicalCategory::ClinicalMedication => reg.clinical_medication,
            MedicalCategory::Checkups => reg.checkups,
        };
        if !consented {
            return refuse(ErrorCode::ConsentNotGiven, "category not consented");
        }
        let now = self.clock.now();
        let window = self.current_window(&reg).await?;
        if !is_open(&window, now) {
            let withdrawn = matches!(
                window,
                Window::Interval {
                    ends_by: WindowEnd::Withdrawn,
                    ..
                } | Window::Empty {
                    ends_by: WindowEnd::Withdrawn,
                    ..
                }
            );
            return if withdrawn {
                refuse(ErrorCode::ConsentWithdrawn, "consent withdrawn")
            } else {
                refuse(
                    ErrorCode::WindowClosed,
                    format!("window {window:?} at {now}"),
                )
            };
        }
        let window_end = window
            .end()
            .ok_or_else(|| Refusal::new(ErrorCode::Internal, "open window without end"))?;
        let history = person.medical;
        let information = match req.category {
            MedicalCategory::ClinicalMedication => MedicalInformation::ClinicalMedication {
                clinical: history.clinical,
                medications: history.medications,
            },
            MedicalCategory::Checkups => MedicalInformation::Checkups {
                checkups: history.checkups,
            },
        };
        Ok(MedicalInformationAnswer {
            registration_id: reg.id,
            window_end,
            information,
        })
    }

    async fn withdraw(
        &self,
        inst: &Institution,
        id: &str,
        req: WithdrawalRequest,
    ) -> Result<WithdrawalAccepted, Refusal> {
        if let WithdrawnBy::Staff { staff_account } = &req.requested
            && !staff_account_ok(staff_account)
        {
            return refuse(ErrorCode::StaffAccountInvalid, "staff account format");
        }
        let reg = self.registration(inst, id).await?;
        // Withdrawing twice answers with the first withdrawal: the relay may retry safely.
        if reg.withdrawn_at.is_none() {
            self.store.withdraw(&reg.id, self.clock.now()).await?;
        }
        let reg = self.registration(inst, id).await?;
        let withdrawn_at = reg
            .withdrawn_at
            .ok_or_else(|| Refusal::new(ErrorCode::Internal, "withdrawal not stored"))?;
        let window = self.current_window(&reg).await?;
        Ok(WithdrawalAccepted {
            registration_id: reg.id,
            withdrawn_at,
            window,
        })
    }

    /// 同意の更新: only while the consents stand (not withdrawn, window open), and only for
    /// kinds that offer medical information at all. The same consents again answer the same,
    /// so the relay may retry safely.
    async fn update_consent(
        &self,
        inst: &Institution,
        id: &str,
        req: ConsentUpdateRequest,
    ) -> Result<ConsentUpdated, Refusal> {
        let reg = self.registration(inst, id).await?;
        if !reg.kind.offers_medical_information() {
            return refuse(
                ErrorCode::NoMedicalInformation,
                "eligibility-only reception takes no consent",
            );
        }
        if reg.withdrawn_at.is_some() {
            return refuse(ErrorCode::ConsentWithdrawn, "consent withdrawn");
        }
        let now = self.clock.now();
        if !is_open(&self.current_window(&reg).await?, now) {
            return refuse(ErrorCode::WindowClosed, "window closed; register again");
        }
        self.store
            .update_consent(
                &reg.id,
                req.consent.clinical_medication,
                req.consent.checkups,
            )
            .await?;
        let reg = self.registration(inst, id).await?;
        let window = self.current_window(&reg).await?;
        Ok(ConsentUpdated {
            registration_id: reg.id,
            consent: ConsentChoices {
                clinical_medication: reg.clinical_medication,
                checkups: reg.checkups,
            },
            window,
        })
    }

    async fn home_visit(
        &self,
        inst: &Institution,
        id: &str,
        req: HomeVisitRequest,
    ) -> Result<HomeVisitRecorded, Refusal> {
        let reg = self.registration(inst, id).await?;
        if reg.kind != ReceptionKind::HomeVisit {
            return refuse(ErrorCode::NotHomeVisit, reg.kind.code());
        }
        let now = self.clock.now();
        let today = jst_date(now);
        let registered = jst_date(reg.registered_at);
        let first_of_month = registered.with_day(1).unwrap_or(registered);
        if req.visit_date > today || req.visit_date < first_of_month {
            return refuse(
                ErrorCode::HomeVisitDateInvalid,
                format!("{} (today {today})", req.visit_date),
            );
        }
        if reg.withdrawn_at.is_some() {
            return refuse(ErrorCode::ConsentWithdrawn, "consent withdrawn");
        }
        // A visit after the window ended does not reopen it (domain::window): refuse it so the
        // institution knows a new registration is needed.
        if !is_open(&self.current_window(&reg).await?, now) {
            return refuse(
                ErrorCode::WindowClosed,
                "window already ended; register again",
            );
        }
        self.store.add_home_visit(&reg.id, req.visit_date).await?;
        let window = self.current_window(&reg).await?;
        let visits = self.store.home_visits(&reg.id).await?;
        Ok(HomeVisitRecorded {
            registration_id: reg.id,
            visits,
            window,
        })
    }
}

fn respond<'a>(
    status: u16,
    headers: impl IntoIterator<Item = (&'static str, &'a str)>,
    body: Vec<u8>,
) -> Response {
    let mut response = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        body,
    )
        .into_response();
    let map = response.headers_mut();
    map.insert("content-type", HeaderValue::from_static("application/json"));
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(value) {
            map.insert(name, value);
        }
    }
    response
}

/// The unsigned answer of a backend that is down.
pub fn outage() -> Response {
    let body = serde_json::to_vec(&ErrorBody {
        code: ErrorCode::Unavailable,
        message: "outage".into(),
    })
    .unwrap_or_default();
    respond(503, [], body)
}
