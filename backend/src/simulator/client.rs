//! A signed HTTP client of the contract, used by the simulator's tests and the benchmark, and a
//! worked example for the server's relay: sign the body, send, verify the answer, decode.
//! Nonces here come from a per-process counter mixed into SHA-256, enough for uniqueness in
//! tests; a production relay must draw them from a CSPRNG.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use p256::ecdsa::VerifyingKey;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::contract::signing::{
    RequestContext, RequestSigner, ResponseError, SignedRequestHeaders, decode_answer,
};

/// What came back, before any verification.
#[derive(Debug, Clone)]
pub struct RawAnswer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl RawAnswer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("HTTP: {0}")]
    Http(#[from] reqwest::Error),
    #[error("{0}")]
    Response(#[from] ResponseError),
    #[error("signing: {0}")]
    Signing(#[from] crate::contract::signing::SigningError),
    #[error("encoding: {0}")]
    Encode(#[from] serde_json::Error),
}

/// A client bound to one institution key and one backend key.
pub struct SignedClient {
    base: String,
    http: reqwest::Client,
    signer: RequestSigner,
    backend_key: VerifyingKey,
    backend_key_id: String,
    counter: AtomicU64,
    salt: u64,
}

impl SignedClient {
    pub fn new(
        base: impl Into<String>,
        signer: RequestSigner,
        backend_key: VerifyingKey,
        backend_key_id: impl Into<String>,
    ) -> Result<Self, ClientError> {
        Self::with_timeout(
            base,
            signer,
            backend_key,
            backend_key_id,
            Duration::from_secs(5),
        )
    }

    /// With a request timeout (the relay's own is 5 s).
    pub fn with_timeout(
        base: impl Into<String>,
        signer: RequestSigner,
        backend_key: VerifyingKey,
        backend_key_id: impl Into<String>,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder().timeout(timeout).build()?;
        let salt = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Ok(SignedClient {
            base: base.into(),
            http,
            signer,
            backend_key,
            backend_key_id: backend_key_id.into(),
            counter: AtomicU64::new(0),
            salt,
        })
    }

    /// A fresh 32-byte nonce (unique per client instance and call).
    pub fn nonce(&self) -> [u8; 32] {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut hasher = Sha256::new();
        hasher.update(self.salt.to_be_bytes());
        hasher.update(self.signer.key_id().as_bytes());
        hasher.update(n.to_be_bytes());
        hasher.finalize().into()
    }

    pub fn now_unix() -> i64 {
        chrono::Utc::now().timestamp()
    }

    /// Signs `body` for `path` now with a fresh nonce.
    pub fn sign(
        &self,
        path: &str,
        body: &[u8],
    ) -> Result<(SignedRequestHeaders, RequestContext), ClientError> {
        Ok(self
            .signer
            .sign("POST", path, body, Self::now_unix(), &self.nonce())?)
    }

    /// Sends exactly these bytes and headers (tests tamper with them).
    pub async fn send_raw(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<RawAnswer, ClientError> {
        let mut request = self
            .http
            .post(format!("{}{}", self.base, path))
            .header("content-type", "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.body(body).send().await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await?.to_vec();
        Ok(RawAnswer {
            status,
            headers,
            body,
        })
    }

    /// Verifies and decodes an answer to the request of `context`.
    pub fn decode<T: DeserializeOwned>(
        &self,
        context: &RequestContext,
        answer: &RawAnswer,
    ) -> Result<T, ResponseError> {
        decode_answer(
            &self.backend_key,
            &self.backend_key_id,
            context,
            answer.status,
            |n| answer.header(n),
            &answer.body,
            Self::now_unix(),
        )
    }

    /// Sign, send, verify, decode.
    pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        path: &str,
        request: &Req,
    ) -> Result<Resp, ClientError> {
        let body = serde_json::to_vec(request)?;
        let (headers, context) = self.sign(path, &body)?;
        let answer = self.send_raw(path, &headers.pairs(), body).await?;
        Ok(self.decode(&context, &answer)?)
    }
}
