//! Liveness and readiness, unauthenticated so orchestrators can probe them.

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::state::AppState;

/// `/healthz`: the process is up and serving. Never touches a dependency, so a database outage
/// does not get the API restarted in a loop.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// `/readyz`: the database answers. 503 takes the replica out of a load balancer until it does.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let database = match state.pool.get().await {
        Ok(mut conn) => hookline_store::ping(&mut conn).await.is_ok(),
        Err(_) => false,
    };
    let body = json!({
        "status": if database { "ok" } else { "unavailable" },
        "checks": { "database": if database { "ok" } else { "down" } },
    });
    if database {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "2"))
            .json(body)
    }
}
