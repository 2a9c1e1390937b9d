//! The HTTP layer's one error type: a refusal with its status and a stable code, answered as
//! `{"error": "<code>", "message": "<English sentence>"}` plus `"field"` when the refusal is
//! about one field of the request. Every JSON handler (patient, console, institution API)
//! returns it; the pages turn codes into words. Storage failures become 503
//! `temporarily_unavailable` (logged, never shown).
//!
//! `error` is the stable code clients branch on; `message` is for the people reading logs and
//! may change between versions. `field` names the request part at fault: a JSON body's field
//! path (`kind`, `visit_date`), a query parameter, or a header (`Idempotency-Key`).

use std::borrow::Cow;

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};

use crate::storage::StorageError;

/// A refusal with its code.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    field: Option<Cow<'static, str>>,
    detail: Option<String>,
}

impl ApiError {
    pub const fn new(status: StatusCode, code: &'static str) -> Self {
        ApiError {
            status,
            code,
            field: None,
            detail: None,
        }
    }

    /// The same refusal, naming the request part at fault (a body field path, a query
    /// parameter or a header).
    pub fn with_field(mut self, field: impl Into<Cow<'static, str>>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// The same refusal with its own message instead of the code's usual one.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.detail = Some(message.into());
        self
    }

    pub const fn status(&self) -> StatusCode {
        self.status
    }

    pub const fn code(&self) -> &'static str {
        self.code
    }

    /// The field at fault, if the refusal names one.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// The message the body carries.
    pub fn message(&self) -> Cow<'_, str> {
        match &self.detail {
            Some(detail) => Cow::Borrowed(detail),
            None => Cow::Borrowed(message_of(self.code, self.status)),
        }
    }
}

/// The usual message of `code`, else a sentence for the status.
pub fn message_of(code: &str, status: StatusCode) -> &'static str {
    match code {
        "token_missing" => "An institution API token is required: Authorization: Bearer ukt_….",
        "token_invalid" => "The API token is unknown or was revoked.",
        "token_expired" => {
            "The API token has expired; ask the server's administrator for a new one."
        }
        "scope_missing" => "The API token lacks the scope this request needs.",
        "link_unknown" => "No such reception link for this institution.",
        "link_other_token" => "Another API token made this reception link.",
        "reception_unknown" => "No such reception for this institution.",
        "body_invalid" => "The request body is not the JSON this route takes.",
        "query_invalid" => "A query parameter is not valid.",
        "text_invalid" => {
            "The text is too long or holds control characters (at most 100 characters)."
        }
        "text_bidi_control" => "The text holds a bidirectional control character.",
        "text_zero_width" => "The text holds a zero-width character.",
        "body_too_large" => "The request body is larger than 64 KiB.",
        "visit_date_past" => "The visit date is before today (JST).",
        "visit_date_too_far" => "The visit date is more than 90 days ahead (JST).",
        "visit_date_not_yet" => "The link's visit date cannot be registered for yet (JST).",
        "visit_date_passed" => "The link's visit date has passed (JST).",
        "choices_stale" => "The date changed since the choices were made; start again (JST).",
        "expires_at_past" => "The expiry is not in the future.",
        "visit_date_invalid" => {
            "The visit date is in the future or before the month of the reception."
        }
        "not_home_visit" => "The reception is not of the kind home_visit (訪問診療等).",
        "kind_switched_off" => {
            "The institution has switched this reception kind off in its settings \
             (オンライン診療等・外来診療等（通常とは異なる動線）機能)."
        }
        "idempotency_key_invalid" => {
            "The Idempotency-Key header must be 1 to 255 visible ASCII characters."
        }
        "idempotency_key_reused" => {
            "This Idempotency-Key was already used with a different request body."
        }
        "rate_limited" => "Too many requests; retry after the seconds in Retry-After.",
        "temporarily_unavailable" => "The service is temporarily unavailable; retry later.",
        _ => match status {
            StatusCode::BAD_REQUEST => "The request is malformed.",
            StatusCode::UNAUTHORIZED => "Authentication is required.",
            StatusCode::FORBIDDEN => "This request is not allowed.",
            StatusCode::NOT_FOUND => "Not found.",
            StatusCode::CONFLICT => "The request conflicts with the current state.",
            StatusCode::GONE => "No longer available.",
            StatusCode::UNPROCESSABLE_ENTITY => "The request's content is not valid.",
            StatusCode::TOO_MANY_REQUESTS => "Too many requests; retry later.",
            StatusCode::SERVICE_UNAVAILABLE => "Temporarily unavailable; retry later.",
            _ => "The request was refused.",
        },
    }
}

/// The JSON body of a refusal.
pub fn error_body(code: &str, message: &str, field: Option<&str>) -> serde_json::Value {
    let mut body = serde_json::json!({ "error": code, "message": message });
    if let (Some(field), Some(map)) = (field, body.as_object_mut()) {
        map.insert("field".to_owned(), serde_json::Value::from(field));
    }
    body
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = error_body(self.code, &self.message(), self.field());
        (self.status, Json(body)).into_response()
    }
}

impl From<StorageError> for ApiError {
    fn from(error: StorageError) -> Self {
        tracing::error!(%error, "storage error");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable")
    }
}

/// What a handler returns.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_carry_code_message_and_field() {
        let body = error_body("visit_date_past", "m", Some("visit_date"));
        assert_eq!(
            body,
            serde_json::json!({ "error": "visit_date_past", "message": "m", "field": "visit_date" })
        );
        let plain = ApiError::new(StatusCode::NOT_FOUND, "unheard_of");
        assert_eq!(plain.message(), "Not found.");
        assert_eq!(plain.field(), None);
        let named = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "body_invalid")
            .with_field("kind")
            .with_message("kind: unknown variant");
        assert_eq!(named.field(), Some("kind"));
        assert_eq!(named.message(), "kind: unknown variant");
    }
}
