//! `GET /metrics` (Prometheus text format) and the middleware that counts every request.

use std::time::Instant;

use actix_web::{
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    middleware::Next,
    web, HttpResponse,
};
use hookline_telemetry::names;

use crate::state::AppState;

/// Counts each request by route pattern (bounded cardinality: `/v1/{brandId}/webhooks`, never
/// the concrete path) and status, and times it.
pub async fn record(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let start = Instant::now();
    let method = req.method().to_string();
    let res = next.call(req).await?;
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let status = res.status().as_u16().to_string();
    metrics::histogram!(names::HTTP_DURATION, "route" => route.clone())
        .record(start.elapsed().as_secs_f64());
    metrics::counter!(names::HTTP_REQUESTS, "route" => route, "method" => method, "status" => status)
        .increment(1);
    Ok(res)
}

/// Renders every metric of the process. The backlog gauge (deliveries due, not yet sent) is
/// read from Postgres at scrape time, so it is right whichever process last touched a row.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    if let Ok(mut conn) = state.pool.get().await {
        if let Ok(due) = hookline_store::deliveries::count_due(&mut conn).await {
            metrics::gauge!(names::DELIVERIES_DUE).set(due as f64);
        }
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(hookline_telemetry::metrics().render())
}
