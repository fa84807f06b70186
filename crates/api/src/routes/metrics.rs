//! `GET /metrics` (Prometheus text format) and the middleware that counts every request.

use std::time::Instant;

use actix_web::{
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    middleware::Next,
    HttpResponse,
};
use hookline_telemetry::names;

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

/// Renders every metric of the process from memory: no query, no pool connection, so a
/// scrape flood costs CPU on the admin listener and nothing else. The gauges read from
/// Postgres are refreshed by [`refresh_gauges`].
pub async fn metrics() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(hookline_telemetry::metrics().render())
}

/// Keeps the gauges read from Postgres (the backlog of deliveries due, not yet sent) fresh:
/// one query per `every`, whoever scrapes and however often, until `stop`. A failed refresh
/// keeps the last value (the database being down shows in `/readyz`, not as a wrong zero).
pub async fn refresh_gauges(
    pool: hookline_store::Pool,
    every: std::time::Duration,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let Ok(mut conn) = pool.get().await else {
            continue;
        };
        match hookline_store::deliveries::count_due(&mut conn).await {
            Ok(due) => metrics::gauge!(names::DELIVERIES_DUE).set(due as f64),
            Err(e) => tracing::debug!(error = %e, "could not refresh the backlog gauge"),
        }
    }
}
