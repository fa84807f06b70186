//! The API's one error type and its two response shapes.
//!
//! Every handler, extractor and middleware fails with [`ApiError`]: an error code from the
//! domain catalogue (`hookline_domain::ErrorCode`), a description for the caller, optional
//! per-field `validations` and an optional `Retry-After`. How it is rendered depends on the API
//! surface the request came in on:
//!
//! - flexEngage routes: `APIErrorResponse` of the flexEngage spec — `message`, `description`,
//!   `status`, `validations` — plus Hookline's `code` field;
//! - FDX routes (`/v1/services/…`): `{"status":"error","errors":[{code, description}]}` as the
//!   FDX Create Webhook spec shows, one entry per problem.
//!
//! The HTTP status comes from the code (`ErrorCode::flexengage_status` / `fdx_status`), so a
//! new code cannot be rendered until the catalogue gives it a status on both surfaces.
//! Store errors are mapped in one place ([`From<StoreError>`]): unavailability becomes 503 with
//! `Retry-After`; anything unexpected becomes an opaque 500 whose cause is logged, never sent.

use std::collections::BTreeMap;

use actix_web::{http::StatusCode, HttpRequest, HttpResponse, ResponseError};
use hookline_domain::ErrorCode;
use hookline_store::StoreError;
use serde::Serialize;

/// Seconds a client is asked to wait when a dependency (Postgres, RabbitMQ) is down.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 2;

/// Which contract a response must follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    FlexEngage,
    Fdx,
}

impl Surface {
    /// FDX routes live under `/v1/services/`; everything else answers in the flexEngage shape.
    pub fn of(req: &HttpRequest) -> Surface {
        if req.path().starts_with("/v1/services/") {
            Surface::Fdx
        } else {
            Surface::FlexEngage
        }
    }
}

/// One problem in an FDX error list.
#[derive(Debug, Clone)]
struct Problem {
    code: ErrorCode,
    description: String,
}

#[derive(Debug, Clone)]
pub struct ApiError {
    surface: Surface,
    /// The first problem decides the status; FDX lists them all.
    problems: Vec<Problem>,
    validations: BTreeMap<String, String>,
    retry_after: Option<u64>,
    /// The methods the path does answer, sent as `Allow` with a 405 (RFC 9110 §15.5.6).
    allow: Option<String>,
}

impl ApiError {
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            surface: Surface::FlexEngage,
            problems: vec![Problem {
                code,
                description: description.into(),
            }],
            validations: BTreeMap::new(),
            retry_after: None,
            allow: None,
        }
    }

    /// An error whose description is the catalogue's own text.
    pub fn code(code: ErrorCode) -> Self {
        Self::new(code, code.description())
    }

    pub fn unauthenticated(reason: &str) -> Self {
        Self::new(
            ErrorCode::Cmr0002,
            format!("{} {reason}", ErrorCode::Cmr0002.description()),
        )
    }

    pub fn forbidden(reason: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, reason)
    }

    pub fn not_found(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, description)
    }

    pub fn unavailable() -> Self {
        let mut err = Self::code(ErrorCode::Unavailable);
        err.retry_after = Some(UNAVAILABLE_RETRY_AFTER_SECS);
        err
    }

    /// A 405 for a path that answers only the methods in `allow` (comma-separated).
    pub fn method_not_allowed(method: &str, path: &str, allow: &str) -> Self {
        let mut err = Self::new(
            ErrorCode::MethodNotAllowed,
            format!("{method} is not allowed on {path}; it answers {allow}"),
        );
        err.allow = Some(allow.to_owned());
        err
    }

    pub fn rate_limited(retry_after_secs: u64) -> Self {
        let mut err = Self::code(ErrorCode::RateLimited);
        err.retry_after = Some(retry_after_secs.max(1));
        err
    }

    /// An unexpected failure: the cause is logged here and the caller sees only ERR-SYS-0001.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::code(ErrorCode::Sys0001)
    }

    /// Per-field validation failures (flexEngage `validations`); each field also becomes one
    /// FDX problem with `field_code`'s code when rendered on the FDX surface.
    pub fn validation(validations: BTreeMap<String, String>) -> Self {
        let mut err = Self::new(ErrorCode::Cmr0001, "There are errors in the request");
        err.validations = validations;
        err
    }

    /// The first problem's description (what the portal shows).
    pub fn description(&self) -> &str {
        self.problems.first().map_or("", |p| p.description.as_str())
    }

    /// Seconds a client should wait before trying again, when the error says.
    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }

    /// The per-field problems (field → message).
    pub fn validations(&self) -> &BTreeMap<String, String> {
        &self.validations
    }

    /// Names the invalid field in `validations`, keeping this error's code.
    pub fn with_validation(mut self, field: &str, message: impl Into<String>) -> Self {
        self.validations.insert(field.to_owned(), message.into());
        self
    }

    /// Adds another problem (FDX lists every one; flexEngage shows the first).
    pub fn and(mut self, code: ErrorCode, description: impl Into<String>) -> Self {
        self.problems.push(Problem {
            code,
            description: description.into(),
        });
        self
    }

    pub fn on(mut self, surface: Surface) -> Self {
        self.surface = surface;
        self
    }

    pub fn error_code(&self) -> ErrorCode {
        self.problems.first().map_or(ErrorCode::Sys0001, |p| p.code)
    }

    fn status_on(&self, surface: Surface) -> StatusCode {
        let code = self.error_code();
        let status = match surface {
            Surface::FlexEngage => code.flexengage_status(),
            Surface::Fdx => code.fdx_status(),
        };
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn render(&self, surface: Surface) -> HttpResponse {
        let status = self.status_on(surface);
        let mut builder = HttpResponse::build(status);
        if let Some(secs) = self.retry_after {
            builder.insert_header(("Retry-After", secs.to_string()));
        }
        if let Some(methods) = &self.allow {
            builder.insert_header((actix_web::http::header::ALLOW, methods.as_str()));
        }
        if self.error_code() == ErrorCode::Cmr0002 {
            // RFC 6750 §3: a 401 names the scheme the client must use.
            builder.insert_header(("WWW-Authenticate", "Bearer"));
        }
        match surface {
            Surface::FlexEngage => {
                let first = self.problems.first();
                builder.json(FlexBody {
                    message: self.error_code().flexengage_message(),
                    description: first.map_or("", |p| p.description.as_str()),
                    status: status.as_u16(),
                    validations: (!self.validations.is_empty()).then_some(&self.validations),
                    code: self.error_code().code(),
                })
            }
            Surface::Fdx => {
                let errors = self
                    .problems
                    .iter()
                    .map(|p| FdxProblem {
                        code: p.code.code(),
                        description: &p.description,
                    })
                    .collect();
                builder.json(FdxBody {
                    status: "error",
                    errors,
                })
            }
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let first = self.problems.first();
        write!(
            f,
            "{}: {}",
            self.error_code().code(),
            first.map_or("", |p| p.description.as_str())
        )
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status_on(self.surface)
    }

    fn error_response(&self) -> HttpResponse {
        self.render(self.surface)
    }
}

/// The error of FDX handlers: the same [`ApiError`], always rendered in the FDX shape.
#[derive(Debug)]
pub struct FdxError(pub ApiError);

impl std::fmt::Display for FdxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl ResponseError for FdxError {
    fn status_code(&self) -> StatusCode {
        self.0.status_on(Surface::Fdx)
    }

    fn error_response(&self) -> HttpResponse {
        self.0.render(Surface::Fdx)
    }
}

impl From<ApiError> for FdxError {
    fn from(err: ApiError) -> Self {
        FdxError(err)
    }
}

impl From<StoreError> for FdxError {
    fn from(err: StoreError) -> Self {
        FdxError(err.into())
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        if err.is_unavailable() {
            tracing::warn!(error = %err, "database unavailable");
            return ApiError::unavailable();
        }
        match err {
            StoreError::NotFound => ApiError::not_found("The resource was not found"),
            other => ApiError::internal(other),
        }
    }
}

#[derive(Serialize)]
struct FlexBody<'a> {
    message: &'a str,
    description: &'a str,
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    validations: Option<&'a BTreeMap<String, String>>,
    code: &'a str,
}

#[derive(Serialize)]
struct FdxBody<'a> {
    status: &'static str,
    errors: Vec<FdxProblem<'a>>,
}

#[derive(Serialize)]
struct FdxProblem<'a> {
    code: &'a str,
    description: &'a str,
}
