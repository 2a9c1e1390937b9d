//! The server's side of the confirmation backend: where it is, whether it answers, and one
//! signed call. Every request is signed with the institution's key (fresh CSPRNG nonce, the real
//! system time), and every answer is checked against the backend's key before its body is read:
//! an answer that does not verify is treated like no answer at all.

use std::time::Duration;

use p256::ecdsa::VerifyingKey;
use rand::RngCore;
use serde::de::DeserializeOwned;
use uketsuke_backend::contract::{
    CONTRACT_VERSION, ErrorBody, ErrorCode, HEALTH_PATH, Health, InsuranceUseRegistered,
    PERSON_REFERENCES_PATH, PersonReferenceAnswer, PersonReferenceRequest, b64_encode,
    insurance_use_path, person_reference_is_well_formed,
    signing::{RequestSigner, ResponseError, decode_answer},
};
use uketsuke_domain::InstitutionCode;
use url::Url;

/// How to reach the backend and how to know its answers.
#[derive(Clone)]
pub struct BackendClient {
    base: Url,
    http: reqwest::Client,
    backend_key: VerifyingKey,
    backend_key_id: String,
}

/// Why a signed call did not give an answer to act on.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// A verified refusal from the backend.
    #[error("backend refused: {}", .0.code.as_str())]
    Refused(ErrorBody),
    /// No verified answer: network error, timeout, unsigned or forged answer, unreadable body.
    /// Safe to retry with the same idempotency key.
    #[error("no verified answer: {0}")]
    NoAnswer(String),
}

impl CallError {
    /// Refusals that will not change on retry and belong to the request itself; the others
    /// (our signature, our clock, the backend's health) are ours to fix, so the request waits.
    pub fn is_final(&self) -> bool {
        match self {
            CallError::NoAnswer(_) => false,
            CallError::Refused(body) => !matches!(
                body.code,
                ErrorCode::MissingAuthentication
                    | ErrorCode::UnknownKey
                    | ErrorCode::StaleTimestamp
                    | ErrorCode::BadSignature
                    | ErrorCode::ReplayedNonce
                    | ErrorCode::BodyTooLarge
                    | ErrorCode::MalformedRequest
                    | ErrorCode::NotFound
                    | ErrorCode::Unavailable
                    | ErrorCode::Internal
            ),
        }
    }
}

impl CallError {
    /// Refusals that no retry can cure and that belong to how this server or its institution
    /// is set up, not to one request: the request key is not registered (`unknown_key`), the
    /// signature does not verify against the key the backend holds (`bad_signature`,
    /// `missing_authentication`), or the request is not of the backend's contract
    /// (`malformed_request`, `body_too_large`, `not_found`: another contract version).
    /// The relay holds such a row for an operator instead of retrying it forever. Transient
    /// failures (no answer, `unavailable`, `internal`, `replayed_nonce`, and `stale_timestamp`,
    /// which fixing the clock cures by itself) are not among them.
    pub fn needs_operator(&self) -> bool {
        match self {
            CallError::NoAnswer(_) => false,
            CallError::Refused(body) => matches!(
                body.code,
                ErrorCode::UnknownKey
                    | ErrorCode::BadSignature
                    | ErrorCode::MissingAuthentication
                    | ErrorCode::MalformedRequest
                    | ErrorCode::BodyTooLarge
                    | ErrorCode::NotFound
            ),
        }
    }

    /// The backend's refusal code, or `unavailable` when there was no verified answer.
    pub fn code(&self) -> String {
        match self {
            CallError::Refused(body) => body.code.as_str(),
            CallError::NoAnswer(_) => ErrorCode::Unavailable.as_str(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("backend URL cannot be joined with {0}")]
    Url(&'static str),
    #[error("backend did not answer: {0}")]
    Unreachable(reqwest::Error),
    #[error("backend answered {0}")]
    Status(u16),
    #[error("backend answer is not understood: {0}")]
    Malformed(String),
    #[error("backend speaks contract version {0}, this server {CONTRACT_VERSION}")]
    ContractMismatch(u32),
}

impl BackendClient {
    pub fn new(
        mut base: Url,
        backend_key: VerifyingKey,
        backend_key_id: String,
    ) -> Result<Self, reqwest::Error> {
        // Paths are joined relative to the base, so it must end in a slash.
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(5))
            .build()?;
        Ok(BackendClient {
            base,
            http,
            backend_key,
            backend_key_id,
        })
    }

    pub fn base(&self) -> &Url {
        &self.base
    }

    /// POSTs `body` to `path` signed by `signer`, verifies the answer and decodes it.
    pub async fn call<T: DeserializeOwned>(
        &self,
        signer: &RequestSigner,
        path: &str,
        body: &[u8],
    ) -> Result<T, CallError> {
        let mut nonce = [0u8; 32];
        rand::rng().fill_bytes(&mut nonce);
        let (headers, context) = signer
            .sign("POST", path, body, unix_now(), &nonce)
            .map_err(|e| CallError::NoAnswer(format!("cannot sign: {e}")))?;
        let url = self
            .base
            .join(path.trim_start_matches('/'))
            .map_err(|_| CallError::NoAnswer("bad path".to_owned()))?;
        let mut request = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_vec());
        for (name, value) in headers.pairs() {
            request = request.header(name, value);
        }
        let response = request
            .send()
            .await
            .map_err(|e| CallError::NoAnswer(format!("unreachable: {}", without_url(&e))))?;
        let status = response.status().as_u16();
        let answer_headers = response.headers().clone();
        let answer = response
            .bytes()
            .await
            .map_err(|e| CallError::NoAnswer(format!("answer cut: {}", without_url(&e))))?;
        decode_answer(
            &self.backend_key,
            &self.backend_key_id,
            &context,
            status,
            |name| answer_headers.get(name).and_then(|v| v.to_str().ok()),
            &answer,
            unix_now(),
        )
        .map_err(|e| match e {
            ResponseError::Refused(body) => CallError::Refused(body),
            other => {
                tracing::warn!(error = %other, "backend answer not accepted");
                CallError::NoAnswer(other.to_string())
            }
        })
    }
}

/// Asks the backend who holds `certificate_der`, as `signer`'s institution knows them
/// (PROTOCOL.md §6.7), once the server verified the card's proof itself. The answer is the
/// opaque per-institution person reference; an answer not in its form counts as no answer.
pub async fn person_reference(
    client: &BackendClient,
    signer: &RequestSigner,
    institution_code: &InstitutionCode,
    certificate_der: &[u8],
) -> Result<String, CallError> {
    let body = serde_json::to_vec(&PersonReferenceRequest {
        institution_code: institution_code.clone(),
        certificate: b64_encode(certificate_der),
    })
    .map_err(|e| CallError::NoAnswer(format!("cannot encode: {e}")))?;
    let answer: PersonReferenceAnswer = client.call(signer, PERSON_REFERENCES_PATH, &body).await?;
    if person_reference_is_well_formed(&answer.person_reference) {
        Ok(answer.person_reference)
    } else {
        Err(CallError::NoAnswer(
            "person reference not in its form".to_owned(),
        ))
    }
}

/// 健康保険証利用登録 of the card of `registration_id`'s patient: `body` is the
/// [`uketsuke_backend::contract::InsuranceUseRequest`] as queued in the outbox (its idempotency
/// key is the outbox row's id, so a resend registers once). Signed and verified like every call;
/// an answer naming another registration counts as no answer.
pub async fn insurance_use(
    client: &BackendClient,
    signer: &RequestSigner,
    registration_id: &str,
    body: &[u8],
) -> Result<InsuranceUseRegistered, CallError> {
    let answer: InsuranceUseRegistered = client
        .call(signer, &insurance_use_path(registration_id), body)
        .await?;
    if answer.registration_id == registration_id {
        Ok(answer)
    } else {
        tracing::error!("backend answered insurance use for another registration");
        Err(CallError::NoAnswer(
            "answer names another registration".to_owned(),
        ))
    }
}

/// Real time for signatures, whatever the business clock says.
fn unix_now() -> i64 {
    crate::storage::now_millis() / 1000
}

/// reqwest errors name the URL, whose path holds registration ids: keep them out of logs.
fn without_url(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connection refused or failed"
    } else if error.is_body() || error.is_decode() {
        "body"
    } else {
        "request failed"
    };
    kind.to_owned()
}

/// Asks the backend whether it is up and speaks our contract version.
pub async fn check(client: &BackendClient) -> Result<(), BackendError> {
    let url = client
        .base
        .join(HEALTH_PATH.trim_start_matches('/'))
        .map_err(|_| BackendError::Url(HEALTH_PATH))?;
    let response = client
        .http
        .get(url)
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .map_err(BackendError::Unreachable)?;
    if !response.status().is_success() {
        return Err(BackendError::Status(response.status().as_u16()));
    }
    let health: Health = response
        .json()
        .await
        .map_err(|e| BackendError::Malformed(e.to_string()))?;
    if health.contract != CONTRACT_VERSION {
        return Err(BackendError::ContractMismatch(health.contract));
    }
    if health.status != "ok" {
        return Err(BackendError::Malformed(format!(
            "status {:?}, contract {}",
            health.status, health.contract
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(code: ErrorCode) -> CallError {
        CallError::Refused(ErrorBody {
            code,
            message: String::new(),
        })
    }

    #[test]
    fn refusals_are_final_held_for_an_operator_or_retried() {
        use ErrorCode::*;
        for code in [
            UnknownKey,
            BadSignature,
            MissingAuthentication,
            MalformedRequest,
            BodyTooLarge,
            NotFound,
        ] {
            let error = refused(code);
            assert!(error.needs_operator() && !error.is_final(), "{code:?}");
        }
        for code in [Unavailable, Internal, ReplayedNonce, StaleTimestamp] {
            let error = refused(code);
            assert!(
                !error.needs_operator() && !error.is_final(),
                "{code:?} is retried"
            );
        }
        for code in [
            PersonNotFound,
            CertificateRevoked,
            InstitutionMismatch,
            ConsentWithdrawn,
        ] {
            let error = refused(code);
            assert!(error.is_final() && !error.needs_operator(), "{code:?}");
        }
        let none = CallError::NoAnswer("timeout".to_owned());
        assert!(!none.needs_operator() && !none.is_final());
        assert_eq!(refused(UnknownKey).code(), "unknown_key");
        assert_eq!(none.code(), "unavailable");
    }
}
