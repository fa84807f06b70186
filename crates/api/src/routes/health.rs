//! Liveness and readiness, unauthenticated so orchestrators can probe them.

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::state::AppState;

/// `/healthz`: the process is up and serving. Never touches a dependency, so a database outage
/// does not get the API restarted in a loop.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// `/readyz`: the database answers and the broker is reachable. 503 takes the replica out of a
/// load balancer until both are.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let database = match state.pool.get().await {
        Ok(mut conn) => hookline_store::ping(&mut conn).await.is_ok(),
        Err(_) => false,
    };
    let broker = state.dispatcher.broker_up().await;
    let word = |ok: bool| if ok { "ok" } else { "down" };
    let ready = database && broker;
    let body = json!({
        "status": if ready { "ok" } else { "unavailable" },
        "checks": { "database": word(database), "broker": word(broker) },
    });
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "2"))
            .json(body)
    }
}
