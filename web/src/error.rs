//! The portal's one error type: [`WebError`], a status, a stable code and a
//! message. Under `/api` it is `{"error": {"code", "message"}}`; elsewhere
//! [`crate::app`] renders the same error as an HTML page. A 5xx is logged
//! with its detail and says only "internal error" to the client.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::store::DbError;

/// An error answered to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebError {
    pub status: StatusCode,
    /// A stable, machine-readable reason (`untrusted_key`, `not_found`, …).
    pub code: &'static str,
    pub message: String,
    /// Seconds to wait before trying again (`Retry-After`), for 429 and 503.
    pub retry_after: Option<u64>,
}

/// The body of an error, and the response extension that tells the HTML
/// layer to render it as a page.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorBody {
    pub code: &'static str,
    pub message: String,
}

impl WebError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> WebError {
        WebError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The same error with a `Retry-After` of `secs`.
    pub fn with_retry_after(mut self, secs: u64) -> WebError {
        self.retry_after = Some(secs);
        self
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> WebError {
        WebError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> WebError {
        WebError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> WebError {
        WebError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(message: impl Into<String>) -> WebError {
        WebError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn conflict(message: impl Into<String>) -> WebError {
        WebError::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub fn rejected(code: &'static str, message: impl Into<String>) -> WebError {
        WebError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// A failure of the portal itself: logged here with `detail`, generic to the client.
    pub fn internal(detail: impl std::fmt::Display) -> WebError {
        tracing::error!(error = %detail, "internal error");
        WebError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }
}

impl std::fmt::Display for WebError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for WebError {}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            code: self.code,
            message: self.message,
        };
        let mut response = (
            self.status,
            axum::Json(serde_json::json!({ "error": &body })),
        )
            .into_response();
        response.extensions_mut().insert(body);
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}

/// Store errors: missing rows 404, duplicates and refused changes 409,
/// invalid values 422, the rest 500.
impl From<DbError> for WebError {
    fn from(e: DbError) -> WebError {
        match &e {
            DbError::NotFound { .. } => WebError::not_found(e.to_string()),
            DbError::Duplicate { .. } => WebError::conflict(e.to_string()),
            DbError::Conflict { .. } => WebError::conflict(e.to_string()),
            DbError::Invalid { .. } => WebError::rejected("invalid", e.to_string()),
            _ => WebError::internal(&e),
        }
    }
}

/// Lab store errors: missing runs 404, refused changes and duplicates 409,
/// invalid values 422, the rest 500.
impl From<certlab_harness::StoreError> for WebError {
    fn from(e: certlab_harness::StoreError) -> WebError {
        use certlab_harness::StoreError as E;
        match &e {
            E::NotFound { .. } => WebError::not_found(e.to_string()),
            E::Duplicate { .. } | E::Conflict { .. } | E::State { .. } => {
                WebError::conflict(e.to_string())
            }
            E::Invalid { .. } => WebError::rejected("invalid", e.to_string()),
            _ => {
                let mut detail = e.to_string();
                let mut cause = std::error::Error::source(&e);
                while let Some(c) = cause {
                    detail.push_str(&format!(": {c}"));
                    cause = c.source();
                }
                WebError::internal(detail)
            }
        }
    }
}
