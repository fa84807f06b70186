//! Liveness and readiness: unauthenticated, JSON.

use crate::helpers::{json_of, spawn_app, spawn_app_with};

#[tokio::test]
async fn healthz_and_readyz_answer_without_a_token() {
    let app = spawn_app().await;
    let live = json_of(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .expect("request"),
        200,
    )
    .await;
    assert_eq!(live["status"], "ok");
    let ready = json_of(
        app.client
            .get(app.url("/readyz"))
            .send()
            .await
            .expect("request"),
        200,
    )
    .await;
    assert_eq!(ready["checks"]["database"], "ok");
    assert_eq!(ready["checks"]["broker"], "ok");
}

#[tokio::test]
async fn readyz_is_503_while_the_broker_is_unreachable() {
    // Nothing listens on port 1.
    let app = spawn_app_with(|s| s.amqp.url = "amqp://guest:guest@127.0.0.1:1/%2f".into()).await;
    let res = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("request");
    assert!(res.headers().contains_key("retry-after"));
    let ready = json_of(res, 503).await;
    assert_eq!(ready["checks"]["broker"], "down");
    assert_eq!(ready["checks"]["database"], "ok");
}

/// The value of the first sample of `metric` whose labels contain every one of `labels`.
fn sample(text: &str, metric: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(metric) && labels.iter().all(|want| l.contains(want)))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status_and_ingested_events() {
    let app = spawn_app().await;
    let scrape = || async {
        let res = app
            .client
            .get(app.url("/metrics"))
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), 200);
        res.text().await.expect("text")
    };
    let route = r#"route="/v1/{brandId}/webhooks""#;
    let before = scrape().await;
    let listed = sample(
        &before,
        "hookline_http_requests_total",
        &[route, r#"method="GET""#, r#"status="200""#],
    );
    let ingested = sample(&before, "hookline_events_ingested_total", &[]).unwrap_or(0.0);

    json_of(app.get("/v1/acme/webhooks", &app.token("acme")).await, 200).await;
    app.webhook("acme", "https://example.com/h", &["RECEIPTS"])
        .await;
    let res = app
        .client
        .post(app.url("/v1/acme/events"))
        .bearer_auth(app.token("acme"))
        .json(&serde_json::json!({ "type": "RECEIPTS", "data": {} }))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 202);

    let after = scrape().await;
    // Other tests in this process count too: the counters only grow.
    let listed_after = sample(
        &after,
        "hookline_http_requests_total",
        &[route, r#"method="GET""#, r#"status="200""#],
    )
    .expect("request counter");
    assert!(listed_after >= listed.unwrap_or(0.0) + 1.0, "{after}");
    let ingested_after =
        sample(&after, "hookline_events_ingested_total", &[]).expect("ingest counter");
    assert!(ingested_after >= ingested + 1.0);
    assert!(
        after.contains("hookline_http_request_duration_seconds_bucket"),
        "{after}"
    );
    assert!(
        sample(&after, "hookline_deliveries_due", &[]).is_some(),
        "{after}"
    );
}
