//! Body extraction errors in the API's error shapes, never actix's plain-text defaults.

use actix_web::{error::JsonPayloadError, web, HttpRequest};
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
