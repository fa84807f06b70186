//! What a portal request that fails shows: an HTML page in the portal's own look, never the
//! API's JSON, with a status a browser and a test can tell apart.

use actix_web::{http::StatusCode, HttpResponse, ResponseError};
use askama::Template;

use super::views::{html, MessagePage};
use crate::error::ApiError;

#[derive(Debug)]
pub enum PortalError {
    /// No live session: the sign-in page (401).
    SignIn,
    /// A form without this session's CSRF token (403).
    Csrf,
    /// A sign-in link that is unknown, used or expired (403).
    BadLink,
    /// Nothing of this brand at this address (404). Another brand's webhook or event is the
    /// same 404 as a missing one.
    NotFound,
    /// What the shared API code refused or failed with, shown with its message.
    Api(ApiError),
}

impl From<ApiError> for PortalError {
    fn from(e: ApiError) -> Self {
        PortalError::Api(e)
    }
}

impl From<hookline_store::StoreError> for PortalError {
    fn from(e: hookline_store::StoreError) -> Self {
        PortalError::Api(e.into())
    }
}

impl std::fmt::Display for PortalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PortalError::SignIn => f.write_str("not signed in"),
            PortalError::Csrf => f.write_str("missing or wrong CSRF token"),
            PortalError::BadLink => f.write_str("sign-in link unknown, used or expired"),
            PortalError::NotFound => f.write_str("not found"),
            PortalError::Api(e) => e.fmt(f),
        }
    }
}

impl ResponseError for PortalError {
    fn status_code(&self) -> StatusCode {
        match self {
            PortalError::SignIn => StatusCode::UNAUTHORIZED,
            PortalError::Csrf | PortalError::BadLink => StatusCode::FORBIDDEN,
            PortalError::NotFound => StatusCode::NOT_FOUND,
            PortalError::Api(e) => e.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (title, text): (&str, String) = match self {
            PortalError::SignIn => (
                "Sign in to continue",
                "Your session has ended or you have not signed in. Ask for a new sign-in link \
                 (`hookline-api portal-link --brand <brand>`, or your platform's dashboard)."
                    .into(),
            ),
            PortalError::Csrf => (
                "This form has expired",
                "The form was not sent from this session's page. Go back, reload the page and \
                 try again."
                    .into(),
            ),
            PortalError::BadLink => (
                "This sign-in link cannot be used",
                "The link was already used or expired, or it is not a link Hookline made. Sign-in \
                 links work once; ask for a new one."
                    .into(),
            ),
            PortalError::NotFound => (
                "Not found",
                "There is nothing at this address for your brand.".into(),
            ),
            PortalError::Api(e) => ("Something went wrong", e.description().to_owned()),
        };
        let page = MessagePage::new(title, &text);
        let body = page.render().unwrap_or_else(|_| text.clone());
        let mut res = html(self.status_code(), body);
        if let PortalError::Api(e) = self {
            if let Some(secs) = e.retry_after() {
                if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&secs.to_string()) {
                    res.headers_mut()
                        .insert(actix_web::http::header::RETRY_AFTER, v);
                }
            }
        }
        res
    }
}
