//! Rate limits as a hostile or careless client meets them: a brand's bucket is paid in events
//! (a batch costs what it carries), a refusal comes before the body is read, and an IP that
//! keeps failing authentication is cut off before its tokens are even checked.

use std::time::Duration;

use diesel::{dsl::count_star, QueryDsl as _};
use diesel_async::RunQueryDsl as _;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::helpers::{assert_flex_error, spawn_app_with, TestApp};

const SHIPPED: &str = "ORDER_EVENTS.OMS.ORDER_SHIPPED";

async fn batch(app: &TestApp, n: usize) -> reqwest::Response {
    let events: Vec<Value> = (0..n)
        .map(|i| json!({ "type": SHIPPED, "data": { "i": i } }))
        .collect();
    app.client
        .post(app.url("/v1/acme/events/batch"))
        .bearer_auth(app.token("acme"))
        .json(&json!({ "events": events }))
        .send()
        .await
        .expect("request")
}

async fn single(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .post(app.url("/v1/acme/events"))
        .bearer_auth(token)
        .json(&json!({ "type": SHIPPED, "data": {} }))
        .send()
        .await
        .expect("request")
}

async fn stored_events(app: &TestApp) -> i64 {
    let pool = app.pool();
    let mut conn = pool.get().await.expect("connection");
    hookline_store::schema::events::table
        .select(count_star())
        .get_result(&mut conn)
        .await
        .expect("count")
}

fn retry_after(res: &reqwest::Response) -> u64 {
    res.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds")
}

#[tokio::test]
async fn a_batch_costs_as_many_tokens_as_it_has_events() {
    // One token per second: nothing refills noticeably during the test.
    let app = spawn_app_with(|s| {
        s.rate_limit.per_second = 1;
        s.rate_limit.burst = 10;
    })
    .await;
    assert_eq!(batch(&app, 6).await.status(), 202);
    // 4 tokens left: a batch of 5 is refused whole, and stores nothing.
    let refused = batch(&app, 5).await;
    assert!(retry_after(&refused) >= 1);
    assert_flex_error(refused, 429, "ERR-HKL-0004").await;
    assert_eq!(stored_events(&app).await, 6);
    // What is left still admits smaller work.
    assert_eq!(single(&app, &app.token("acme")).await.status(), 202);
    assert_eq!(stored_events(&app).await, 7);
    // A batch larger than the whole bucket could never pass: a 422 that says so, not a 429 to
    // be retried forever.
    let app = spawn_app_with(|s| {
        s.rate_limit.per_second = 1;
        s.rate_limit.burst = 10;
    })
    .await;
    let body = assert_flex_error(batch(&app, 11).await, 422, "ERR-CMR-0001").await;
    assert!(body.to_string().contains("burst"), "{body}");
}

/// Sends a request line and headers announcing a large body, and only a few bytes of it; returns
/// the status line the server answers with before the body is complete.
async fn status_before_body(app: &TestApp, auth: Option<&str>) -> String {
    status_before_body_of(app, "POST /v1/acme/events", auth).await
}

async fn status_before_body_of(app: &TestApp, request: &str, auth: Option<&str>) -> String {
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let auth = auth
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "{request} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\n\
         Content-Length: 200000\r\n\r\n{{\"type\": "
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    let mut answer = vec![0u8; 1024];
    // The rest of the body never comes: only a server that decided from the headers answers.
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut answer))
        .await
        .expect("answered before the body was sent")
        .expect("read");
    let text = String::from_utf8_lossy(&answer[..n]).into_owned();
    text.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn refusals_come_before_the_body_is_read() {
    let app = spawn_app_with(|s| {
        s.rate_limit.per_second = 1;
        s.rate_limit.burst = 2;
    })
    .await;
    // No token: 401 at once.
    assert!(
        status_before_body(&app, None).await.contains(" 401 "),
        "unauthenticated"
    );
    // A token for another brand: 403 at once.
    let other = app.token("other");
    assert!(status_before_body(&app, Some(&other))
        .await
        .contains(" 403 "));
    // Spend the bucket, then the next request is a 429 at once.
    let token = app.token("acme");
    for _ in 0..2 {
        assert_eq!(single(&app, &token).await.status(), 202);
    }
    assert!(status_before_body(&app, Some(&token))
        .await
        .contains(" 429 "));
    // Management and FDX bodies are judged only after admission too: no token is a 401 and a
    // token without the webhooks scope a 403, before the body arrives.
    let publish_only = app.token_with(
        hookline_api::auth::Brands::List(vec!["acme".into()]),
        &[hookline_api::auth::SCOPE_PUBLISH],
    );
    for request in [
        "POST /v1/acme/webhooks",
        "PATCH /v1/acme/webhooks/0190b5f0-0000-7000-8000-000000000000",
        "POST /v1/acme/recover",
        "POST /v1/services/webhook",
    ] {
        let status = status_before_body_of(&app, request, None).await;
        assert!(status.contains(" 401 "), "{request}: {status}");
        let status = status_before_body_of(&app, request, Some(&publish_only)).await;
        assert!(status.contains(" 403 "), "{request}: {status}");
    }
}

#[tokio::test]
async fn an_ip_that_keeps_failing_authentication_is_refused_before_its_token_is_checked() {
    let app = spawn_app_with(|s| {
        s.rate_limit.failed_auth_per_minute = 60;
        s.rate_limit.failed_auth_burst = 3;
        // The load balancer's header names the client: two clients on one test machine.
        s.rate_limit.client_ip_header = Some("X-Forwarded-For".into());
    })
    .await;
    let list = |ip: &'static str, token: String| {
        app.client
            .get(app.url("/v1/acme/webhooks"))
            .header("X-Forwarded-For", format!("203.0.113.9, {ip}"))
            .bearer_auth(token)
            .send()
    };
    for _ in 0..3 {
        let res = list("198.51.100.1", "garbage".into())
            .await
            .expect("request");
        assert_eq!(res.status(), 401);
    }
    let limited = list("198.51.100.1", "garbage".into())
        .await
        .expect("request");
    let wait = retry_after(&limited);
    assert!((1..=2).contains(&wait), "{wait}");
    assert_flex_error(limited, 429, "ERR-HKL-0004").await;
    // Even a valid token from that IP waits: the IP is refused before any token is checked.
    let valid = list("198.51.100.1", app.token("acme"))
        .await
        .expect("request");
    assert_eq!(valid.status(), 429);
    // Another client (the last X-Forwarded-For entry, the one the balancer added) is unaffected,
    // even though its header starts with the same spoofable first entry.
    let other = list("198.51.100.2", app.token("acme"))
        .await
        .expect("request");
    assert_eq!(other.status(), 200);
    // Once the wait is over, the blocked IP gets in with a valid token.
    tokio::time::sleep(Duration::from_secs(wait) + Duration::from_millis(200)).await;
    let later = list("198.51.100.1", app.token("acme"))
        .await
        .expect("request");
    assert_eq!(later.status(), 200);
}
