//! Signatures on the wire (PROTOCOL.md §3–§4): the relay signs every request with the
//! institution's ECDSA P-256 key, the backend signs every answer with its own, and each side
//! verifies the other. Both sides use these functions, so the canonical strings cannot drift.
//!
//! Sans-IO: nothing here reads a clock, draws randomness or touches the network. The caller
//! passes the time and a fresh random nonce, and looks headers up with a closure, so the same
//! code serves axum, reqwest or any other HTTP stack.

use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::{ErrorBody, ErrorCode, b64_decode, b64_encode};

/// Key id of the signer (request: the institution's key; answer: the backend's key).
pub const HEADER_KEY_ID: &str = "uketsuke-key-id";
/// Unix time in seconds, decimal ASCII.
pub const HEADER_TIMESTAMP: &str = "uketsuke-timestamp";
/// Request only: 16–64 random bytes, base64url without padding, never reused with a key.
pub const HEADER_NONCE: &str = "uketsuke-nonce";
/// 64-byte `r || s` ECDSA P-256 / SHA-256 signature, base64url without padding.
pub const HEADER_SIGNATURE: &str = "uketsuke-signature";
/// First line of the canonical request.
pub const REQUEST_TAG: &str = "UKETSUKE-REQUEST-V1";
/// First line of the canonical answer.
pub const RESPONSE_TAG: &str = "UKETSUKE-RESPONSE-V1";
/// Largest accepted difference between a timestamp and the verifier's clock, both ways.
pub const MAX_CLOCK_SKEW_SECS: i64 = 300;
/// Largest request body the backend reads.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Nonce length bounds (decoded bytes).
pub const MIN_NONCE_BYTES: usize = 16;
pub const MAX_NONCE_BYTES: usize = 64;

/// Lowercase hex SHA-256 of a body (the empty body included).
pub fn body_digest_hex(body: &[u8]) -> String {
    Sha256::digest(body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The string a request signature covers: seven lines joined by LF, no trailing LF.
pub fn canonical_request(
    method: &str,
    path: &str,
    key_id: &str,
    timestamp: i64,
    nonce: &str,
    body: &[u8],
) -> String {
    format!(
        "{REQUEST_TAG}\n{}\n{path}\n{key_id}\n{timestamp}\n{nonce}\n{}",
        method.to_ascii_uppercase(),
        body_digest_hex(body)
    )
}

/// The string an answer signature covers: it repeats the request's method, path and nonce, so
/// an answer cannot be replayed for another request.
pub fn canonical_response(
    status: u16,
    request: &RequestContext,
    key_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    format!(
        "{RESPONSE_TAG}\n{status}\n{}\n{}\n{}\n{key_id}\n{timestamp}\n{}",
        request.method.to_ascii_uppercase(),
        request.path,
        request.nonce,
        body_digest_hex(body)
    )
}

/// Key ids: 1–64 characters `[A-Za-z0-9._-]`.
pub fn key_id_is_well_formed(key_id: &str) -> bool {
    (1..=64).contains(&key_id.len())
        && key_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Paths: ASCII, start with `/`, no whitespace or control characters (they would break lines).
pub fn path_is_well_formed(path: &str) -> bool {
    path.starts_with('/') && path.bytes().all(|b| b.is_ascii_graphic())
}

fn nonce_is_well_formed(nonce: &str) -> bool {
    b64_decode(nonce).is_some_and(|n| (MIN_NONCE_BYTES..=MAX_NONCE_BYTES).contains(&n.len()))
}

/// Strict decimal: digits only (an optional leading `-` for instants before 1970), ≤ 12 digits.
fn parse_timestamp(text: &str) -> Option<i64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || digits.len() > 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn sign_text(key: &SigningKey, text: &str) -> String {
    let signature: Signature = key.sign(text.as_bytes());
    b64_encode(&signature.to_bytes())
}

fn verify_text(key: &VerifyingKey, text: &str, signature_b64: &str) -> bool {
    let Some(bytes) = b64_decode(signature_b64) else {
        return false;
    };
    let Ok(signature) = Signature::from_slice(&bytes) else {
        return false;
    };
    key.verify(text.as_bytes(), &signature).is_ok()
}

/// A verifying key as base64url (no padding) of its uncompressed SEC1 point (65 bytes).
pub fn encode_verifying_key(key: &VerifyingKey) -> String {
    b64_encode(key.to_encoded_point(false).as_bytes())
}

/// Reads a key written by [`encode_verifying_key`] (compressed points are accepted too).
pub fn decode_verifying_key(text: &str) -> Option<VerifyingKey> {
    VerifyingKey::from_sec1_bytes(&b64_decode(text)?).ok()
}

/// What the client keeps of a request to check the answer: method, path and nonce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    pub method: String,
    pub path: String,
    pub nonce: String,
}

/// The four headers of a signed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequestHeaders {
    pub key_id: String,
    pub timestamp: String,
    pub nonce: String,
    pub signature: String,
}

impl SignedRequestHeaders {
    /// `(name, value)` pairs to put on the request.
    pub fn pairs(&self) -> [(&'static str, &str); 4] {
        [
            (HEADER_KEY_ID, &self.key_id),
            (HEADER_TIMESTAMP, &self.timestamp),
            (HEADER_NONCE, &self.nonce),
            (HEADER_SIGNATURE, &self.signature),
        ]
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningError {
    #[error("key id must be 1–64 characters [A-Za-z0-9._-]")]
    KeyId,
    #[error("path must be ASCII starting with '/' without spaces")]
    Path,
    #[error("nonce must be 16–64 bytes")]
    Nonce,
}

/// The institution side: signs requests with the institution's key.
#[derive(Clone)]
pub struct RequestSigner {
    key_id: String,
    key: SigningKey,
}

impl std::fmt::Debug for RequestSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the private key.
        f.debug_struct("RequestSigner")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl RequestSigner {
    pub fn new(key_id: impl Into<String>, key: SigningKey) -> Result<Self, SigningError> {
        let key_id = key_id.into();
        if !key_id_is_well_formed(&key_id) {
            return Err(SigningError::KeyId);
        }
        Ok(RequestSigner { key_id, key })
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        *self.key.verifying_key()
    }

    /// Signs one request. `nonce` must be fresh random bytes (16–64; 32 recommended) never used
    /// before with this key; `now_unix` is the relay's clock.
    pub fn sign(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
        now_unix: i64,
        nonce: &[u8],
    ) -> Result<(SignedRequestHeaders, RequestContext), SigningError> {
        if !path_is_well_formed(path) {
            return Err(SigningError::Path);
        }
        if !(MIN_NONCE_BYTES..=MAX_NONCE_BYTES).contains(&nonce.len()) {
            return Err(SigningError::Nonce);
        }
        let nonce = b64_encode(nonce);
        let text = canonical_request(method, path, &self.key_id, now_unix, &nonce, body);
        let headers = SignedRequestHeaders {
            key_id: self.key_id.clone(),
            timestamp: now_unix.to_string(),
            nonce: nonce.clone(),
            signature: sign_text(&self.key, &text),
        };
        let context = RequestContext {
            method: method.to_ascii_uppercase(),
            path: path.to_owned(),
            nonce,
        };
        Ok((headers, context))
    }
}

/// The signature headers of a request as received, checked for format only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedRequestAuth {
    pub key_id: String,
    pub timestamp: i64,
    pub nonce: String,
    pub signature: String,
}

/// The backend side, step 1: reads the four headers. Any missing or malformed one is
/// [`ErrorCode::MissingAuthentication`].
pub fn read_request_auth<'h>(
    header: impl Fn(&str) -> Option<&'h str>,
) -> Result<ReceivedRequestAuth, ErrorCode> {
    let get = |name| header(name).ok_or(ErrorCode::MissingAuthentication);
    let key_id = get(HEADER_KEY_ID)?;
    let timestamp =
        parse_timestamp(get(HEADER_TIMESTAMP)?).ok_or(ErrorCode::MissingAuthentication)?;
    let nonce = get(HEADER_NONCE)?;
    let signature = get(HEADER_SIGNATURE)?;
    if !key_id_is_well_formed(key_id) || !nonce_is_well_formed(nonce) {
        return Err(ErrorCode::MissingAuthentication);
    }
    Ok(ReceivedRequestAuth {
        key_id: key_id.to_owned(),
        timestamp,
        nonce: nonce.to_owned(),
        signature: signature.to_owned(),
    })
}

/// The backend side, step 2 (after looking up the key by id): timestamp within
/// [`MAX_CLOCK_SKEW_SECS`] of `now_unix`, then the signature. The nonce's freshness is the
/// caller's store's job, and must be recorded only after this returns `Ok`, so that unsigned
/// traffic cannot burn nonces.
pub fn verify_request(
    auth: &ReceivedRequestAuth,
    key: &VerifyingKey,
    method: &str,
    path: &str,
    body: &[u8],
    now_unix: i64,
) -> Result<(), ErrorCode> {
    if auth.timestamp.abs_diff(now_unix) > MAX_CLOCK_SKEW_SECS.unsigned_abs() {
        return Err(ErrorCode::StaleTimestamp);
    }
    if !path_is_well_formed(path) {
        return Err(ErrorCode::BadSignature);
    }
    let text = canonical_request(
        method,
        path,
        &auth.key_id,
        auth.timestamp,
        &auth.nonce,
        body,
    );
    if verify_text(key, &text, &auth.signature) {
        Ok(())
    } else {
        Err(ErrorCode::BadSignature)
    }
}

/// The three headers of a signed answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedResponseHeaders {
    pub key_id: String,
    pub timestamp: String,
    pub signature: String,
}

impl SignedResponseHeaders {
    pub fn pairs(&self) -> [(&'static str, &str); 3] {
        [
            (HEADER_KEY_ID, &self.key_id),
            (HEADER_TIMESTAMP, &self.timestamp),
            (HEADER_SIGNATURE, &self.signature),
        ]
    }
}

/// The backend signs an answer to `request` (whose nonce may be empty when the request had
/// none readable).
pub fn sign_response(
    key: &SigningKey,
    key_id: &str,
    status: u16,
    request: &RequestContext,
    body: &[u8],
    now_unix: i64,
) -> SignedResponseHeaders {
    let text = canonical_response(status, request, key_id, now_unix, body);
    SignedResponseHeaders {
        key_id: key_id.to_owned(),
        timestamp: now_unix.to_string(),
        signature: sign_text(key, &text),
    }
}

/// Why an answer was not accepted by the relay.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("answer has no signature headers")]
    Unsigned,
    #[error("answer is signed by key {0:?}, not the backend's")]
    UnknownKey(String),
    #[error("answer timestamp is more than five minutes off")]
    StaleTimestamp,
    #[error("answer signature does not verify")]
    BadSignature,
    #[error("answer body is not the expected JSON: {0}")]
    Malformed(String),
    #[error("backend refused: {} ({})", .0.code.as_str(), .0.message)]
    Refused(ErrorBody),
}

/// The relay side: checks an answer's signature against the backend's key. Call it before
/// looking at the body; [`decode_answer`] does both.
pub fn verify_response<'h>(
    backend_key: &VerifyingKey,
    backend_key_id: &str,
    request: &RequestContext,
    status: u16,
    header: impl Fn(&str) -> Option<&'h str>,
    body: &[u8],
    now_unix: i64,
) -> Result<(), ResponseError> {
    let (Some(key_id), Some(timestamp), Some(signature)) = (
        header(HEADER_KEY_ID),
        header(HEADER_TIMESTAMP),
        header(HEADER_SIGNATURE),
    ) else {
        return Err(ResponseError::Unsigned);
    };
    if key_id != backend_key_id {
        return Err(ResponseError::UnknownKey(key_id.to_owned()));
    }
    let timestamp = parse_timestamp(timestamp).ok_or(ResponseError::Unsigned)?;
    if timestamp.abs_diff(now_unix) > MAX_CLOCK_SKEW_SECS.unsigned_abs() {
        return Err(ResponseError::StaleTimestamp);
    }
    let text = canonical_response(status, request, key_id, timestamp, body);
    if verify_text(backend_key, &text, signature) {
        Ok(())
    } else {
        Err(ResponseError::BadSignature)
    }
}

/// The relay side in one call: verify the signature, then decode a 2xx body as `T` or a
/// refusal as [`ErrorBody`].
#[allow(clippy::too_many_arguments)]
pub fn decode_answer<'h, T: DeserializeOwned>(
    backend_key: &VerifyingKey,
    backend_key_id: &str,
    request: &RequestContext,
    status: u16,
    header: impl Fn(&str) -> Option<&'h str>,
    body: &[u8],
    now_unix: i64,
) -> Result<T, ResponseError> {
    verify_response(
        backend_key,
        backend_key_id,
        request,
        status,
        header,
        body,
        now_unix,
    )?;
    if (200..300).contains(&status) {
        serde_json::from_slice(body).map_err(|e| ResponseError::Malformed(e.to_string()))
    } else {
        match serde_json::from_slice::<ErrorBody>(body) {
            Ok(refusal) => Err(ResponseError::Refused(refusal)),
            Err(e) => Err(ResponseError::Malformed(format!("status {status}: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        let mut bytes = [seed; 32];
        bytes[0] = 1; // keep the scalar below the group order
        SigningKey::from_slice(&bytes).expect("valid scalar")
    }

    fn lookup<'a>(pairs: &'a [(&'static str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> {
        move |name| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }

    const NOW: i64 = 1_795_000_000;

    fn signed(body: &[u8]) -> (SignedRequestHeaders, RequestContext) {
        RequestSigner::new("clinic-1", key(3))
            .expect("key id")
            .sign("post", "/v1/registrations", body, NOW, &[9; 32])
            .expect("sign")
    }

    #[test]
    fn canonical_request_layout() {
        let text = canonical_request("post", "/v1/x", "k", 12, "bm9uY2U", b"");
        assert_eq!(
            text,
            "UKETSUKE-REQUEST-V1\nPOST\n/v1/x\nk\n12\nbm9uY2U\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn request_round_trip_and_every_tamper_fails() {
        let body = br#"{"a":1}"#;
        let (headers, _) = signed(body);
        let pairs = headers.pairs();
        let auth = read_request_auth(lookup(&pairs)).expect("headers");
        let vk = *key(3).verifying_key();
        assert_eq!(
            verify_request(&auth, &vk, "POST", "/v1/registrations", body, NOW),
            Ok(())
        );
        // Body, path, method, foreign key: bad signature.
        let bad = Err(ErrorCode::BadSignature);
        assert_eq!(
            verify_request(&auth, &vk, "POST", "/v1/registrations", br#"{"a":2}"#, NOW),
            bad
        );
        assert_eq!(
            verify_request(&auth, &vk, "POST", "/v1/registrationz", body, NOW),
            bad
        );
        assert_eq!(
            verify_request(&auth, &vk, "PUT", "/v1/registrations", body, NOW),
            bad
        );
        assert_eq!(
            verify_request(
                &auth,
                key(4).verifying_key(),
                "POST",
                "/v1/registrations",
                body,
                NOW
            ),
            bad
        );
        // Timestamps: exactly five minutes is fine, one second more is not.
        assert_eq!(
            verify_request(&auth, &vk, "POST", "/v1/registrations", body, NOW + 300),
            Ok(())
        );
        assert_eq!(
            verify_request(&auth, &vk, "POST", "/v1/registrations", body, NOW - 301),
            Err(ErrorCode::StaleTimestamp)
        );
    }

    #[test]
    fn malformed_headers_are_missing_authentication() {
        let (headers, _) = signed(b"");
        for (drop, bad_value) in [
            (HEADER_NONCE, "short"),
            (HEADER_TIMESTAMP, "+12"),
            (HEADER_KEY_ID, "a b"),
        ] {
            let pairs: Vec<_> = headers
                .pairs()
                .into_iter()
                .filter(|(n, _)| *n != drop)
                .collect();
            assert_eq!(
                read_request_auth(lookup(&pairs)),
                Err(ErrorCode::MissingAuthentication)
            );
            let mut pairs = headers.pairs().to_vec();
            pairs.retain(|(n, _)| *n != drop);
            pairs.push((drop, bad_value));
            assert_eq!(
                read_request_auth(lookup(&pairs)),
                Err(ErrorCode::MissingAuthentication)
            );
        }
    }

    #[test]
    fn response_is_bound_to_the_request() {
        let backend = key(7);
        let (_, ctx) = signed(b"{}");
        let body = br#"{"status":"ok","contract":1}"#;
        let headers = sign_response(&backend, "backend-1", 200, &ctx, body, NOW);
        let pairs = headers.pairs();
        let vk = *backend.verifying_key();
        let health: super::super::Health =
            decode_answer(&vk, "backend-1", &ctx, 200, lookup(&pairs), body, NOW).expect("valid");
        assert_eq!(health.contract, 1);
        // Another status, another request's nonce, a changed body, another key id: refused.
        assert_eq!(
            verify_response(&vk, "backend-1", &ctx, 201, lookup(&pairs), body, NOW),
            Err(ResponseError::BadSignature)
        );
        let mut other = ctx.clone();
        other.nonce = b64_encode(&[1; 32]);
        assert_eq!(
            verify_response(&vk, "backend-1", &other, 200, lookup(&pairs), body, NOW),
            Err(ResponseError::BadSignature)
        );
        assert_eq!(
            verify_response(&vk, "backend-1", &ctx, 200, lookup(&pairs), b"{}", NOW),
            Err(ResponseError::BadSignature)
        );
        assert_eq!(
            verify_response(&vk, "backend-2", &ctx, 200, lookup(&pairs), body, NOW),
            Err(ResponseError::UnknownKey("backend-1".into()))
        );
        assert_eq!(
            verify_response(&vk, "backend-1", &ctx, 200, lookup(&pairs), body, NOW + 400),
            Err(ResponseError::StaleTimestamp)
        );
        assert_eq!(
            verify_response(&vk, "backend-1", &ctx, 200, |_| None, body, NOW),
            Err(ResponseError::Unsigned)
        );
    }

    #[test]
    fn verifying_key_text_round_trip() {
        let vk = *key(5).verifying_key();
        assert_eq!(decode_verifying_key(&encode_verifying_key(&vk)), Some(vk));
        assert_eq!(decode_verifying_key("AAAA"), None);
    }
}
