//! The HTTP layer's one error type: a refusal with its status and a stable code, answered as
//! `{"error": "<code>"}`. Every JSON handler (patient, console, institution API) returns it; the
//! pages turn codes into words. Storage failures become 503 `temporarily_unavailable` (logged,
//! never shown).

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
}

impl ApiError {
    pub const fn new(status: StatusCode, code: &'static str) -> Self {
        ApiError { status, code }
    }

    pub const fn status(&self) -> StatusCode {
        self.status
    }

    pub const fn code(&self) -> &'static str {
        self.code
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(serde_json::json!({ "error": self.code }))).into_response()
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
