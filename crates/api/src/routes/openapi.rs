//! `GET /openapi.yaml`: the OpenAPI document of everything this server serves
//! (`openapi/hookline.yaml`). It is compiled in, so a binary always serves the contract it was
//! built with; the contract test (`tests/it/contract.rs`) keeps the two in step.

use actix_web::HttpResponse;

/// The document, embedded at build time.
pub const DOCUMENT: &str = include_str!("../../../../openapi/hookline.yaml");

/// No auth: clients and tools fetch the contract before they hold a token.
pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        // RFC 9512 registers `application/yaml`.
        .content_type("application/yaml")
        .body(DOCUMENT)
}
