//! The [`Principal`] extractor: who is calling, checked before any handler runs.

use std::future::{ready, Ready};

use actix_web::{dev::Payload, web, FromRequest, HttpRequest};

use hookline_domain::BrandId;
use serde::Deserialize;

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
    pub fn authorize(&self, scope: &str, brand: &str) -> Result<BrandId, ApiError> {
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
        // The brand's own rules (`BrandId`) come after the token's: a caller learns nothing
        // about ids it may not use.
        BrandId::parse(brand).map_err(|e| {
            ApiError::validation(std::collections::BTreeMap::from([(
                "brandId".to_owned(),
                e.to_string(),
            )]))
            .on(self.surface)
        })
    }

    /// The brand of an FDX request, which has no brand in its path: the token's only brand, or
    /// the `X-Hookline-Brand` header for a token that covers several.
    pub fn fdx_brand(&self, req: &HttpRequest) -> Result<String, ApiError> {
        let header = req
            .headers()
            .get("X-Hookline-Brand")
            .and_then(|v| v.to_str().ok())
            // An empty header names no brand (found by schemathesis: it was a 400 the FDX
            // routes do not document); the token's own brand, or a 403 asking for one, follows.
            .filter(|v| !v.trim().is_empty())
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

/// `{brandId}` of a route's path, percent-decoded as `web::Path` decodes it (other segments of
/// the path are the handler's).
#[derive(Deserialize)]
struct BrandPath {
    #[serde(rename = "brandId")]
    brand_id: String,
}

/// Authenticates, authorises `scope` on the path's brand and takes one token of its rate
/// limit: the start of every route under `/v1/{brandId}/`, from the request line and headers.
fn admit_path(req: &HttpRequest, scope: &str) -> Result<(Principal, BrandId), ApiError> {
    let surface = Surface::of(req);
    let principal = Principal::authenticate(req, surface)?;
    let raw = web::Path::<BrandPath>::extract(req)
        .into_inner()
        .map_err(|_| ApiError::internal("route without {brandId}"))?
        .into_inner()
        .brand_id;
    let brand = principal.authorize(scope, &raw)?;
    state_of(req)?.rate_limit(&brand)?;
    Ok((principal, brand))
}

fn state_of(req: &HttpRequest) -> Result<&web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::internal("AppState missing"))
}

/// A caller admitted to the brand of the path (`{brandId}`) with the scope `SCOPE` names
/// ([`Publisher`], [`Manager`]), within that brand's rate limit. Everything is decided from the
/// request line and headers: put it before the body's extractor and an unauthenticated,
/// unauthorised or rate-limited request is refused before a byte of its body is read (actix
/// polls a handler's extractors in order, and this one is ready at once).
#[derive(Debug, Clone)]
pub struct Admitted<const SCOPE: u8> {
    pub principal: Principal,
    pub brand: BrandId,
}

const PUBLISH: u8 = 0;
const WEBHOOKS: u8 = 1;

/// May publish events to the path's brand.
pub type Publisher = Admitted<PUBLISH>;
/// May manage the path's brand's webhooks (and its recoveries and event logs).
pub type Manager = Admitted<WEBHOOKS>;

impl<const SCOPE: u8> FromRequest for Admitted<SCOPE> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let scope = if SCOPE == PUBLISH {
            super::SCOPE_PUBLISH
        } else {
            super::SCOPE_WEBHOOKS
        };
        ready(
            admit_path(req, scope)
                .map(|(principal, brand)| Admitted { principal, brand })
                .map_err(|e| e.on(Surface::of(req))),
        )
    }
}

/// A caller allowed to manage the webhooks of an FDX request's brand, which is not in the path
/// ([`Principal::fdx_brand`]), within its rate limit; decided before the body is read.
#[derive(Debug, Clone)]
pub struct FdxManager {
    pub principal: Principal,
    pub brand: BrandId,
}

impl FromRequest for FdxManager {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let surface = Surface::of(req);
        let result = (|| {
            let principal = Principal::authenticate(req, surface)?;
            let raw = principal.fdx_brand(req)?;
            let brand = principal.authorize(super::SCOPE_WEBHOOKS, &raw)?;
            state_of(req)?.rate_limit(&brand)?;
            Ok(FdxManager { principal, brand })
        })();
        ready(result.map_err(|e: ApiError| e.on(surface)))
    }
}

fn to_api(err: AuthError) -> ApiError {
    tracing::debug!(error = %err, "token refused");
    ApiError::unauthenticated(&err.to_string())
}
