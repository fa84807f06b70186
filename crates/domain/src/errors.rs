//! The error-code catalogue: the FDX spec's `ERR-*` codes plus Hookline's `ERR-HKL-*`
//! additions, and the HTTP status each API surface gives them.
//!
//! Codes are stable: clients match on them, so a code is never renumbered or reused. Every
//! mapping below is an exhaustive `match`, so a new variant does not compile until it has a
//! code, a description and a status on both surfaces. The API crate turns an [`ErrorCode`] into
//! a response in one `ResponseError` impl per surface; domain errors say which code they are
//! (`EventTypeError::error_code` and friends).
//!
//! # Which code to use where
//!
//! | code | use it when |
//! |---|---|
//! | `ERR-SYS-0001` [`Sys0001`](ErrorCode::Sys0001) | anything unexpected (a bug, a database error that is not a known conflict). The body stays opaque; the cause is logged. |
//! | `ERR-CMR-0001` [`Cmr0001`](ErrorCode::Cmr0001) | a field is present but invalid and no more specific code fits: malformed JSON, a bad endpoint URL, secret, brand id, page size or date. |
//! | `ERR-CMR-0002` [`Cmr0002`](ErrorCode::Cmr0002) | no bearer token, or one that is malformed, expired or badly signed (401). |
//! | `ERR-CMR-0003` [`Cmr0003`](ErrorCode::Cmr0003) | a required field is absent and has no code of its own (e.g. `enabled` in a PATCH). |
//! | `ERR-WHK-0001` [`Whk0001`](ErrorCode::Whk0001) | `eventName` / `events` is missing or empty. |
//! | `ERR-WHK-0002` [`Whk0002`](ErrorCode::Whk0002) | an event name is not in the event-type tree. |
//! | `ERR-WHK-0003` [`Whk0003`](ErrorCode::Whk0003) | `url` / `endpoint` is missing or empty. |
//! | `ERR-WHK-0004` [`Whk0004`](ErrorCode::Whk0004) | the webhook id is not a UUID or no webhook of this brand has it (404). |
//! | `ERR-WHK-0005` [`Whk0005`](ErrorCode::Whk0005) | a status value (enabled / `status`) is not one of the allowed values. |
//! | `ERR-WHK-0006` [`Whk0006`](ErrorCode::Whk0006) | a request to activate a webhook that is already active, where the surface treats that as an error. |
//! | `ERR-WHK-0007` [`Whk0007`](ErrorCode::Whk0007) | a request to deactivate a webhook that is already inactive, likewise. |
//! | `ERR-WHK-0008` [`Whk0008`](ErrorCode::Whk0008) | the operation needs an active webhook (e.g. retrying an event of a disabled one). |
//! | `ERR-WHK-0009` [`Whk0009`](ErrorCode::Whk0009) | the brand already has a webhook with this endpoint and these event types (the unique index). |
//! | `ERR-HKL-0001` [`Forbidden`](ErrorCode::Forbidden) | the token is valid but lacks the scope, or is for another brand (403). |
//! | `ERR-HKL-0002` [`NotFound`](ErrorCode::NotFound) | no such route, brand or event (404); a missing webhook is `ERR-WHK-0004`. |
//! | `ERR-HKL-0003` [`Conflict`](ErrorCode::Conflict) | any other state conflict, e.g. an idempotency key reused with a different body. |
//! | `ERR-HKL-0004` [`RateLimited`](ErrorCode::RateLimited) | the caller exceeded a rate limit; send `Retry-After`. |
//! | `ERR-HKL-0005` [`PayloadTooLarge`](ErrorCode::PayloadTooLarge) | the request body exceeds the configured bound. |
//! | `ERR-HKL-0006` [`UnsupportedMediaType`](ErrorCode::UnsupportedMediaType) | the body is not `application/json`. |
//! | `ERR-HKL-0007` [`Unavailable`](ErrorCode::Unavailable) | a dependency (Postgres pool, lock timeout) is unavailable; send `Retry-After`. |
//! | `ERR-HKL-0008` [`MethodNotAllowed`](ErrorCode::MethodNotAllowed) | the route exists but not with this method. |
//!
//! # Statuses
//!
//! The FDX surface keeps to the statuses its spec lists (200, 400, 403, 404, 500) wherever it
//! can, so validation-like codes, including the state conflicts, are 400 there; the flexEngage
//! surface follows its spec (422 for request errors, 409 for conflicts). Hookline's additions
//! use the plain HTTP status on both surfaces, since neither spec has a code for them.

use std::fmt;

use serde::{Serialize, Serializer};

/// One entry of the error-code catalogue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// `ERR-SYS-0001`: system error.
    Sys0001,
    /// `ERR-CMR-0001`: input data validation failed.
    Cmr0001,
    /// `ERR-CMR-0002`: authentication failed.
    Cmr0002,
    /// `ERR-CMR-0003`: missing mandatory fields.
    Cmr0003,
    /// `ERR-WHK-0001`: event name missing.
    Whk0001,
    /// `ERR-WHK-0002`: invalid event name.
    Whk0002,
    /// `ERR-WHK-0003`: callback URL missing.
    Whk0003,
    /// `ERR-WHK-0004`: invalid webhook id.
    Whk0004,
    /// `ERR-WHK-0005`: invalid status.
    Whk0005,
    /// `ERR-WHK-0006`: webhook already active.
    Whk0006,
    /// `ERR-WHK-0007`: webhook already inactive.
    Whk0007,
    /// `ERR-WHK-0008`: webhook not active.
    Whk0008,
    /// `ERR-WHK-0009`: webhook already exists for the event.
    Whk0009,
    /// `ERR-HKL-0001`: token valid but lacks the scope or brand.
    Forbidden,
    /// `ERR-HKL-0002`: no such resource or route.
    NotFound,
    /// `ERR-HKL-0003`: generic state conflict.
    Conflict,
    /// `ERR-HKL-0004`: rate limited.
    RateLimited,
    /// `ERR-HKL-0005`: request body too large.
    PayloadTooLarge,
    /// `ERR-HKL-0006`: request body is not JSON.
    UnsupportedMediaType,
    /// `ERR-HKL-0007`: a dependency is down; retry later.
    Unavailable,
    /// `ERR-HKL-0008`: method not allowed on this route.
    MethodNotAllowed,
}

impl ErrorCode {
    /// Every variant, in catalogue order.
    pub const ALL: &'static [ErrorCode] = &[
        Self::Sys0001,
        Self::Cmr0001,
        Self::Cmr0002,
        Self::Cmr0003,
        Self::Whk0001,
        Self::Whk0002,
        Self::Whk0003,
        Self::Whk0004,
        Self::Whk0005,
        Self::Whk0006,
        Self::Whk0007,
        Self::Whk0008,
        Self::Whk0009,
        Self::Forbidden,
        Self::NotFound,
        Self::Conflict,
        Self::RateLimited,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::Unavailable,
        Self::MethodNotAllowed,
    ];

    /// The stable code clients match on.
    ///
    /// The FDX spec spells the sixth webhook code `ERR_WHK-0006`; that is a typo in the source,
    /// and Hookline uses the pattern of every other code, `ERR-WHK-0006`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Sys0001 => "ERR-SYS-0001",
            Self::Cmr0001 => "ERR-CMR-0001",
            Self::Cmr0002 => "ERR-CMR-0002",
            Self::Cmr0003 => "ERR-CMR-0003",
            Self::Whk0001 => "ERR-WHK-0001",
            Self::Whk0002 => "ERR-WHK-0002",
            Self::Whk0003 => "ERR-WHK-0003",
            Self::Whk0004 => "ERR-WHK-0004",
            Self::Whk0005 => "ERR-WHK-0005",
            Self::Whk0006 => "ERR-WHK-0006",
            Self::Whk0007 => "ERR-WHK-0007",
            Self::Whk0008 => "ERR-WHK-0008",
            Self::Whk0009 => "ERR-WHK-0009",
            Self::Forbidden => "ERR-HKL-0001",
            Self::NotFound => "ERR-HKL-0002",
            Self::Conflict => "ERR-HKL-0003",
            Self::RateLimited => "ERR-HKL-0004",
            Self::PayloadTooLarge => "ERR-HKL-0005",
            Self::UnsupportedMediaType => "ERR-HKL-0006",
            Self::Unavailable => "ERR-HKL-0007",
            Self::MethodNotAllowed => "ERR-HKL-0008",
        }
    }

    /// The code for a code string (`"ERR-WHK-0002"`), e.g. for tests that read responses.
    pub fn from_code(code: &str) -> Option<ErrorCode> {
        Self::ALL.iter().copied().find(|c| c.code() == code)
    }

    /// The description: the FDX spec's text verbatim, `<webhookId>` placeholder included
    /// (see [`describe`](Self::describe)), or Hookline's own for its additions.
    pub fn description(&self) -> &'static str {
        match self {
            Self::Sys0001 => "Your request cannot be processed due to a system error.",
            Self::Cmr0001 => "Input data validation failed.",
            Self::Cmr0002 => "Authentication Failed. Invalid Access Token.",
            Self::Cmr0003 => "Missing mandatory fields.",
            Self::Whk0001 => "Event Name missing",
            Self::Whk0002 => "Invalid Event Name",
            Self::Whk0003 => "Callback URL missing",
            Self::Whk0004 => "Invalid Webhook ID",
            Self::Whk0005 => "Invalid status",
            Self::Whk0006 => "Webhook <webhookId> is already active",
            Self::Whk0007 => "Webhook <webhookId> is already inactive",
            Self::Whk0008 => "Webhook <webhookId> is not active.",
            Self::Whk0009 => "Webhook already exists for the event.",
            Self::Forbidden => "The access token does not grant access to this resource.",
            Self::NotFound => "The requested resource was not found.",
            Self::Conflict => "The request conflicts with the current state of the resource.",
            Self::RateLimited => "Too many requests. Retry after the time in Retry-After.",
            Self::PayloadTooLarge => "The request body is too large.",
            Self::UnsupportedMediaType => "The request body must be application/json.",
            Self::Unavailable => {
                "The service is temporarily unavailable. Retry after the time in Retry-After."
            }
            Self::MethodNotAllowed => "The method is not allowed for this resource.",
        }
    }

    /// The description with `<webhookId>` replaced by the id; without an id the placeholder is
    /// dropped ("Webhook is already active") rather than shown to a client.
    pub fn describe(&self, webhook_id: Option<&str>) -> String {
        let text = self.description();
        match webhook_id {
            Some(id) => text.replace("<webhookId>", id),
            None => text.replace("<webhookId> ", "").replace("<webhookId>", ""),
        }
    }

    /// The HTTP status on the FDX surface (`/v1/services/webhook`), within the FDX spec's
    /// statuses where one fits (see the module docs).
    pub fn fdx_status(&self) -> u16 {
        match self {
            Self::Cmr0001
            | Self::Cmr0003
            | Self::Whk0001
            | Self::Whk0002
            | Self::Whk0003
            | Self::Whk0005
            | Self::Whk0006
            | Self::Whk0007
            | Self::Whk0008
            | Self::Whk0009 => 400,
            Self::Cmr0002 => 401,
            Self::Whk0004 => 404,
            Self::Sys0001 => 500,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::Conflict => 409,
            Self::RateLimited => 429,
            Self::PayloadTooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::Unavailable => 503,
            Self::MethodNotAllowed => 405,
        }
    }

    /// The HTTP status on the flexEngage surface (`/v1/{brandId}/webhooks…`): 422 for request
    /// errors and 409 for conflicts, as the flexEngage spec's examples show.
    pub fn flexengage_status(&self) -> u16 {
        match self {
            Self::Cmr0001
            | Self::Cmr0003
            | Self::Whk0001
            | Self::Whk0002
            | Self::Whk0003
            | Self::Whk0005 => 422,
            Self::Cmr0002 => 401,
            Self::Whk0004 => 404,
            Self::Whk0006 | Self::Whk0007 | Self::Whk0008 | Self::Whk0009 => 409,
            Self::Sys0001 => 500,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::Conflict => 409,
            Self::RateLimited => 429,
            Self::PayloadTooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::Unavailable => 503,
            Self::MethodNotAllowed => 405,
        }
    }

    /// The flexEngage `APIErrorResponse.message`: the status phrase in upper case, as in the
    /// spec's examples (`UNPROCESSABLE ENTITY`, `CONFLICT`, `NOT FOUND`), except for 500, which
    /// the spec's example writes `Internal Server Error`.
    pub fn flexengage_message(&self) -> &'static str {
        flexengage_status_message(self.flexengage_status())
    }
}

/// The flexEngage `message` for an HTTP status; a status the catalogue never produces falls back
/// to the 500 text (a test checks every code has its own).
fn flexengage_status_message(status: u16) -> &'static str {
    match status {
        401 => "UNAUTHORIZED",
        403 => "FORBIDDEN",
        404 => "NOT FOUND",
        405 => "METHOD NOT ALLOWED",
        409 => "CONFLICT",
        413 => "PAYLOAD TOO LARGE",
        415 => "UNSUPPORTED MEDIA TYPE",
        422 => "UNPROCESSABLE ENTITY",
        429 => "TOO MANY REQUESTS",
        503 => "SERVICE UNAVAILABLE",
        _ => "Internal Server Error",
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Serialises as the code string, the form both surfaces put in their bodies.
impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn all_lists_every_variant_once() {
        // The exhaustive match makes a new variant fail to compile here until it is added.
        let count = |c: ErrorCode| match c {
            ErrorCode::Sys0001
            | ErrorCode::Cmr0001
            | ErrorCode::Cmr0002
            | ErrorCode::Cmr0003
            | ErrorCode::Whk0001
            | ErrorCode::Whk0002
            | ErrorCode::Whk0003
            | ErrorCode::Whk0004
            | ErrorCode::Whk0005
            | ErrorCode::Whk0006
            | ErrorCode::Whk0007
            | ErrorCode::Whk0008
            | ErrorCode::Whk0009
            | ErrorCode::Forbidden
            | ErrorCode::NotFound
            | ErrorCode::Conflict
            | ErrorCode::RateLimited
            | ErrorCode::PayloadTooLarge
            | ErrorCode::UnsupportedMediaType
            | ErrorCode::Unavailable
            | ErrorCode::MethodNotAllowed => 1,
        };
        assert_eq!(ErrorCode::ALL.iter().map(|c| count(*c)).sum::<usize>(), 21);
        let unique: HashSet<_> = ErrorCode::ALL.iter().collect();
        assert_eq!(unique.len(), ErrorCode::ALL.len());
    }

    #[test]
    fn every_code_is_unique_and_formatted_err_xxx_nnnn() {
        let mut seen = HashSet::new();
        for code in ErrorCode::ALL {
            let s = code.code();
            assert!(seen.insert(s), "duplicate {s}");
            let parts: Vec<&str> = s.split('-').collect();
            assert_eq!(parts.len(), 3, "{s}");
            assert_eq!(parts[0], "ERR", "{s}");
            assert!(
                parts[1].len() == 3 && parts[1].bytes().all(|b| b.is_ascii_uppercase()),
                "{s}"
            );
            assert!(
                parts[2].len() == 4 && parts[2].bytes().all(|b| b.is_ascii_digit()),
                "{s}"
            );
            assert_eq!(ErrorCode::from_code(s), Some(*code));
            assert_eq!(code.to_string(), s);
        }
        assert_eq!(ErrorCode::Whk0006.code(), "ERR-WHK-0006");
        assert_eq!(ErrorCode::from_code("ERR_WHK-0006"), None);
    }

    #[test]
    fn every_status_is_an_http_error_status() {
        for code in ErrorCode::ALL {
            for status in [code.fdx_status(), code.flexengage_status()] {
                assert!((400..=599).contains(&status), "{code}: {status}");
            }
        }
    }

    #[test]
    fn fdx_statuses_of_the_fdx_codes_are_those_the_fdx_spec_lists_plus_401() {
        let fdx_spec = [400, 401, 403, 404, 500];
        for code in &ErrorCode::ALL[..13] {
            assert!(fdx_spec.contains(&code.fdx_status()), "{code}");
        }
        assert_eq!(ErrorCode::Whk0009.fdx_status(), 400);
        assert_eq!(ErrorCode::Whk0009.flexengage_status(), 409);
        assert_eq!(ErrorCode::Whk0002.flexengage_status(), 422);
        assert_eq!(ErrorCode::RateLimited.fdx_status(), 429);
    }

    #[test]
    fn every_flexengage_status_has_its_own_message() {
        for code in ErrorCode::ALL {
            let message = code.flexengage_message();
            if code.flexengage_status() == 500 {
                assert_eq!(message, "Internal Server Error");
            } else {
                assert_ne!(message, "Internal Server Error", "{code}");
                assert_eq!(message, message.to_uppercase(), "{code}");
            }
        }
        assert_eq!(
            ErrorCode::Cmr0001.flexengage_message(),
            "UNPROCESSABLE ENTITY"
        );
        assert_eq!(ErrorCode::Whk0009.flexengage_message(), "CONFLICT");
        assert_eq!(ErrorCode::Whk0004.flexengage_message(), "NOT FOUND");
    }

    #[test]
    fn descriptions_are_the_fdx_text_and_non_empty() {
        assert_eq!(
            ErrorCode::Sys0001.description(),
            "Your request cannot be processed due to a system error."
        );
        assert_eq!(
            ErrorCode::Whk0009.description(),
            "Webhook already exists for the event."
        );
        for code in ErrorCode::ALL {
            assert!(!code.description().is_empty(), "{code}");
        }
    }

    #[test]
    fn describe_substitutes_the_webhook_id() {
        assert_eq!(
            ErrorCode::Whk0006.describe(Some("1111")),
            "Webhook 1111 is already active"
        );
        assert_eq!(
            ErrorCode::Whk0008.describe(Some("abc")),
            "Webhook abc is not active."
        );
        assert_eq!(
            ErrorCode::Whk0007.describe(None),
            "Webhook is already inactive"
        );
        assert_eq!(
            ErrorCode::Whk0002.describe(Some("1111")),
            "Invalid Event Name"
        );
        for code in ErrorCode::ALL {
            assert!(!code.describe(None).contains('<'), "{code}");
        }
    }

    #[test]
    fn serializes_as_the_code_string() {
        assert_eq!(
            serde_json::to_string(&ErrorCode::Cmr0002).expect("serialize"),
            "\"ERR-CMR-0002\""
        );
    }
}
