//! JSON request bodies: every handler takes its body as [`JsonBody`] and parses it with
//! [`json_body`], so that every malformed body gets the same answer.

use axum::{Json, http::StatusCode};

use super::error::ApiError;

/// A JSON request body as handlers take it: parsed, or the reason it was not.
pub type JsonBody<T> = Result<Json<T>, axum::extract::rejection::JsonRejection>;

/// The parsed body, or 422 `body_invalid` (the same answer for malformed JSON, a wrong content
/// type, unknown fields and values out of their type).
pub fn json_body<T>(body: JsonBody<T>) -> Result<T, ApiError> {
    body.map(|Json(body)| body)
        .map_err(|_| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "body_invalid"))
}
