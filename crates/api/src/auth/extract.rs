//! The [`Principal`] extractor: who is calling, checked before any handler runs.

use std::future::{ready, Ready};

use actix_web::{dev::Payload, web, FromRequest, HttpRequest};

use super::{AuthError, Claims};
use crate::{
    error::{ApiError, Surface},
    state::AppState,
};

/// The verified caller of a request.
#[derive(Debug, Clone)]
pub struct Principal {
    pub claims: Claims,
    surface: Surface,
}

impl Principal {
    /// Checks scope, then brand. Both failures are 403: the caller is known but not allowed.
    /// A brand the token does not cover gets the same answer whether or not it exists, so a
    /// brand never learns about another brand's resources.
    pub fn authorize(&self, scope: &str, brand: &str) -> Result<(), ApiError> {
        if !self.claims.has_scope(scope) {
            return Err(
                ApiError::forbidden(format!("The token lacks the scope `{scope}`"))
                    .on(self.surface),
            );
        }
        if !self.claims.brands.allows(brand) {
            return Err(
                ApiError::forbidden("The token does not grant access to this brand")
                    .on(self.surface),
            );
        }
        // A brand id is stored as Postgres text, which cannot hold U+0000; a `%00` in the path
        // was a 500 from the query (found by the schemathesis fuzzer), so it is refused here.
        if brand.contains('\0') {
            return Err(ApiError::validation(std::collections::BTreeMap::from([(
                "brandId".to_owned(),
                "brandId must not contain the NUL character".to_owned(),
            )]))
            .on(self.surface));
        }
        Ok(())
    }

    /// The brand of an FDX request, which has no brand in its path: the token's only brand, or
    /// the `X-Hookline-Brand` header for a token that covers several.
    pub fn fdx_brand(&self, req: &HttpRequest) -> Result<String, ApiError> {
        let header = req
            .headers()
            .get("X-Hookline-Brand")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        match (&self.claims.brands, header) {
            (brands, Some(brand)) if brands.allows(&brand) => Ok(brand),
            (_, Some(_)) => Err(ApiError::forbidden(
                "The token does not grant access to this brand",
            )),
            (super::Brands::List(list), None) if list.len() == 1 => Ok(list[0].clone()),
            _ => Err(ApiError::forbidden(
                "The token covers several brands: name one in the X-Hookline-Brand header",
            )),
        }
        .map_err(|e| e.on(self.surface))
    }
}

fn bearer(req: &HttpRequest, surface: Surface) -> Option<&str> {
    let headers = req.headers();
    if let Some(value) = headers.get("Authorization").and_then(|v| v.to_str().ok()) {
        let (scheme, token) = value.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim());
    }
    // The FDX spec sends the token in an `AccessToken` header.
    if surface == Surface::Fdx {
        return headers
            .get("AccessToken")
            .and_then(|v| v.to_str().ok())
            .map(str::trim);
    }
    None
}

impl Principal {
    /// Authenticates from the headers alone (never the body). An IP over its failed-auth
    /// limit is refused before its token is looked at; each refusal counts against it.
    fn authenticate(req: &HttpRequest, surface: Surface) -> Result<Principal, ApiError> {
        let state = req
            .app_data::<web::Data<AppState>>()
            .ok_or_else(|| ApiError::internal("AppState missing"))?;
        let ip = state.client_ip(req);
        state.check_auth_blocked(ip)?;
        let claims = bearer(req, surface)
            .ok_or(AuthError::Missing)
            .and_then(|token| state.auth.verify(token))
            .map_err(|e| state.auth_failed(ip, to_api(e)))?;
        Ok(Principal { claims, surface })
    }
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let surface = Surface::of(req);
        ready(Principal::authenticate(req, surface).map_err(|e| e.on(surface)))
    }
}

/// A caller allowed to publish to the brand of the path (`{brandId}`), within that brand's
/// rate limit. Everything is decided from the request line and headers: put it before the
/// body's extractor and an unauthenticated, unauthorised or rate-limited request is refused
/// before a byte of its body is read (actix polls a handler's extractors in order, and this
/// one is ready at once).
#[derive(Debug, Clone)]
pub struct Publisher {
    pub principal: Principal,
    pub brand: String,
}

impl FromRequest for Publisher {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let surface = Surface::of(req);
        let result = (|| {
            let principal = Principal::authenticate(req, surface)?;
            // The same percent-decoding as `web::Path<String>` in the handlers.
            let brand = web::Path::<String>::from_request(req, payload)
                .into_inner()
                .map_err(|_| ApiError::internal("route without {brandId}"))?
                .into_inner();
            principal.authorize(super::SCOPE_PUBLISH, &brand)?;
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or_else(|| ApiError::internal("AppState missing"))?;
            // One token now for the request; a batch pays for its other events once counted.
            state.rate_limit(&brand)?;
            Ok(Publisher { principal, brand })
        })();
        ready(result.map_err(|e: ApiError| e.on(surface)))
    }
}

fn to_api(err: AuthError) -> ApiError {
    tracing::debug!(error = %err, "token refused");
    ApiError::unauthenticated(&err.to_string())
}
