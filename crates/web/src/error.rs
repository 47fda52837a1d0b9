//! One error shape for every JSON endpoint: a status and `{"error": "..."}`.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use frontdesk_store::StoreError;

/// An HTTP error with a message for the caller (never message text or secrets).
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// Seconds to wait, for 429.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("{what} not found"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(serde_json::json!({ "error": self.message })),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what, _) => Self::not_found(what),
            StoreError::Invalid(m) => Self::invalid(m),
            StoreError::Refused(reason) => Self::invalid(format!("refused: {reason}")),
            StoreError::Changed(m) => Self::new(StatusCode::CONFLICT, m),
            StoreError::RolledBack => ApiError {
                retry_after: Some(1),
                ..Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "nothing was stored; try again",
                )
            },
            full if full.is_disk_full() => {
                tracing::error!(error = %full, "the database's disk is full: nothing new can be stored until there is room");
                Self::new(
                    StatusCode::INSUFFICIENT_STORAGE,
                    "the server's storage is full: nothing was stored; try again later",
                )
            }
            other => {
                tracing::error!(error = %other, "a request failed in the store");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
            }
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        // axum's own words name the problem (missing content type, syntax error at
        // line and column, a field of the wrong type) without echoing the body.
        Self::new(r.status(), r.body_text())
    }
}
