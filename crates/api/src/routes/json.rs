//! Body extraction errors in the API's error shapes, never actix's plain-text defaults.

use actix_web::{
    error::{JsonPayloadError, PayloadError},
    web, HttpRequest,
};
use hookline_domain::ErrorCode;

use crate::error::{ApiError, Surface};

/// The JSON extractor configuration for management routes: a size bound and errors that
/// follow the surface's contract (413 too large, 415 wrong content type, 4xx unparsable).
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(|err, req| json_error(err, req).into())
}

pub fn json_error(err: JsonPayloadError, req: &HttpRequest) -> ApiError {
    let surface = Surface::of(req);
    let api = match &err {
        JsonPayloadError::Overflow { limit }
        | JsonPayloadError::OverflowKnownLength { limit, .. } => ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("The request body is larger than {limit} bytes"),
        ),
        JsonPayloadError::ContentType => ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "The request body must be JSON (Content-Type: application/json)",
        ),
        JsonPayloadError::Deserialize(e) => ApiError::new(
            ErrorCode::Cmr0001,
            format!("The request body is not valid JSON: {e}"),
        ),
        _ => ApiError::new(ErrorCode::Cmr0001, "The request body could not be read"),
    };
    api.on(surface)
}

/// The raw-body (`web::Bytes`) extractor configuration: the same bound as JSON bodies.
pub fn payload_config(limit: usize) -> web::PayloadConfig {
    web::PayloadConfig::new(limit)
}

/// A raw body that could not be read (too large, cut short), in the API's shape: a handler
/// that reads `Result<web::Bytes, actix_web::Error>` maps its error with this.
pub fn payload_error(err: &actix_web::Error) -> ApiError {
    match err.as_error::<PayloadError>() {
        Some(PayloadError::Overflow) => ApiError::new(
            ErrorCode::PayloadTooLarge,
            "The request body is larger than this route accepts (http.max_json_bytes)",
        ),
        _ => ApiError::new(ErrorCode::Cmr0001, "The request body could not be read"),
    }
}

/// Query-string errors (e.g. invalid percent-encoding) in the API's shape, not actix's text.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, req| {
        ApiError::new(
            ErrorCode::Cmr0001,
            format!("The query string is invalid: {err}"),
        )
        .on(Surface::of(req))
        .into()
    })
}
