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
            .get(app.admin_url("/metrics"))
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

#[tokio::test]
async fn metrics_are_served_on_the_admin_listener_only() {
    let app = spawn_app().await;
    // The public port has no /metrics: a 404 in the API's error shape.
    let public = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("request");
    let body = json_of(public, 404).await;
    assert!(body["code"].is_string(), "{body}");
    let admin = app
        .client
        .get(app.admin_url("/metrics"))
        .send()
        .await
        .expect("request");
    assert_eq!(admin.status(), 200);
    assert!(admin
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain")));
    // The probes answer there too, for an orchestrator that only reaches the admin port.
    for probe in ["/healthz", "/readyz"] {
        let res = app
            .client
            .get(app.admin_url(probe))
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), 200, "{probe}");
    }
}

#[tokio::test]
async fn a_scrape_flood_never_waits_on_postgres() {
    let app = spawn_app_with(|s| {
        s.database.pool_size = 2;
        s.admin.gauge_refresh = std::time::Duration::from_millis(100);
    })
    .await;
    // Let the refresher run once so the backlog gauge exists.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = app
            .client
            .get(app.admin_url("/metrics"))
            .send()
            .await
            .expect("scrape")
            .text()
            .await
            .expect("text");
        if sample(&text, "hookline_deliveries_due", &[]).is_some() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no backlog gauge");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Hold an exclusive lock on the deliveries table: any query of the backlog now blocks
    // (until the statement timeout). Scrapes must not notice: they read the cached gauge.
    let pool = app.pool();
    let mut conn = pool.get().await.expect("connection");
    use diesel_async::SimpleAsyncConnection as _;
    conn.batch_execute("BEGIN; LOCK TABLE deliveries IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock");
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(3))
        .build()
        .expect("client");
    let scrapes: Vec<_> = (0..200)
        .map(|_| {
            let client = client.clone();
            let url = app.admin_url("/metrics");
            tokio::spawn(async move { client.get(url).send().await.map(|r| r.status()) })
        })
        .collect();
    for scrape in scrapes {
        let status = scrape.await.expect("task").expect("scrape answered");
        assert_eq!(status, 200);
    }
    // Meanwhile the public port's pool (2 connections) was not taken by scrapes: a webhook
    // read (which does not touch deliveries) answers.
    let listed = app.get("/v1/acme/webhooks", &app.token("acme")).await;
    assert_eq!(listed.status(), 200);
    conn.batch_execute("ROLLBACK").await.expect("unlock");
}
