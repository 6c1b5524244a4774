//! The one error shape of the API: a status and `{"error": "...", "field": "..."}`, where
//! `field` names the body field, query parameter, path segment or header at fault.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An API error.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status (4xx for the client's fault).
    pub status: StatusCode,
    /// What is wrong.
    pub error: String,
    /// The field at fault, if one is.
    pub field: Option<String>,
}

impl ApiError {
    /// A 400 naming `field`.
    pub fn bad(field: impl Into<String>, error: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::BAD_REQUEST, error: error.into(), field: Some(field.into()) }
    }

    /// A 404 naming `field` (the path segment that matched nothing).
    pub fn not_found(field: impl Into<String>, error: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::NOT_FOUND, error: error.into(), field: Some(field.into()) }
    }

    /// Any status, no field.
    pub fn status(status: StatusCode, error: impl Into<String>) -> ApiError {
        ApiError { status, error: error.into(), field: None }
    }

    /// A 500 for a failure of the server's own (I/O, a task that died); logged.
    pub fn internal(error: impl std::fmt::Display) -> ApiError {
        tracing::error!(%error, "internal error");
        ApiError { status: StatusCode::INTERNAL_SERVER_ERROR, error: error.to_string(), field: None }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": cut(&self.error, 500), "field": self.field });
        (self.status, axum::Json(body)).into_response()
    }
}

/// `s` cut to at most `n` characters (values quoted back to the client stay short).
pub use crate::error::cut;

/// Parses a JSON body into `T`, naming the field at fault (unknown fields, wrong types,
/// malformed JSON).
pub fn parse_body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let text = std::str::from_utf8(bytes).map_err(|e| ApiError::bad("body", format!("not UTF-8: {e}")))?;
    let text = if text.trim().is_empty() { "{}" } else { text };
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        ApiError::bad(field_of(&path, &message), message)
    })
}

/// The field a deserialisation error names: its path, or the field a "missing field `x`"
/// message names, else `body`.
pub fn field_of(path: &str, message: &str) -> String {
    if path != "." && path != "?" && path != "-" && !path.is_empty() {
        return path.to_string();
    }
    message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
        .map_or_else(|| "body".to_string(), str::to_string)
}
