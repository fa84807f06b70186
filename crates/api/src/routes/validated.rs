//! Request bodies validated into typed inputs by an extractor, as Svix's `ValidatedJson` does:
//! a handler takes `Valid<T>` and receives a `T` whose every field has been checked, or never
//! runs. The JSON is read with the route's bound and errors in the surface's shape (see
//! `json.rs`); `T`'s own checks name every problem at once, in the same messages on every
//! route that takes the same field.
//!
//! Put `Valid<T>` after the admission extractor ([`crate::auth::Manager`],
//! [`crate::auth::Publisher`], [`crate::auth::FdxManager`]): actix runs extractors in order,
//! so a caller without access gets its 401/403/429 before its body is read or judged.

use actix_web::{dev::Payload, web, FromRequest, HttpRequest};
use futures::future::LocalBoxFuture;
use serde_json::Value;

use crate::{
    error::{ApiError, Surface},
    state::AppState,
};

/// A request body's validated form.
pub trait FromBody: Sized {
    /// Checks `body` (already parsed JSON) into `Self`; the error names every problem.
    fn from_body(body: Value, state: &AppState) -> Result<Self, ApiError>;
}

/// The body of a request as a `T` that passed its checks.
#[derive(Debug)]
pub struct Valid<T>(pub T);

impl<T> Valid<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: FromBody + 'static> FromRequest for Valid<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        // Reads with the route's `JsonConfig`: its size bound and its error shapes.
        let json = web::Json::<Value>::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move {
            let body = json.await?.into_inner();
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or_else(|| ApiError::internal("AppState missing"))?;
            T::from_body(body, state)
                .map(Valid)
                .map_err(|e| e.on(Surface::of(&req)).into())
        })
    }
}
