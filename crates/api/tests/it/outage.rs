//! Postgres unreachable: 503 with `Retry-After` in the error shape, `/readyz` 503, `/healthz`
//! still 200, and the server recovers by itself when the database returns. The outage is a TCP
//! proxy between the server and the real Postgres that the test cuts (never the shared server).

use std::time::Duration;

use hookline_testkit::TcpProxy;
use url::Url;

use crate::helpers::{assert_flex_error, json_of, spawn_app_with};

#[tokio::test]
async fn database_outage_is_503_with_retry_after_and_recovers() {
    let upstream = tokio::net::lookup_host("127.0.0.1:5432")
        .await
        .expect("resolve")
        .next()
        .expect("addr");
    let proxy = TcpProxy::start(upstream).await.expect("proxy");
    let port = proxy.port();
    let app = spawn_app_with(move |s| {
        let mut url = Url::parse(hookline_config::ExposeSecret::expose_secret(
            &s.database.url,
        ))
        .expect("url");
        url.set_port(Some(port)).expect("port");
        s.database.url = url.to_string().into();
        s.database.connect_timeout = Duration::from_secs(1);
        s.database.pool_wait_timeout = Duration::from_secs(1);
    })
    .await;
    let token = app.token("acme");
    json_of(app.get("/v1/acme/webhooks", &token).await, 200).await;

    proxy.cut();
    for _ in 0..3 {
        let res = app.get("/v1/acme/webhooks", &token).await;
        let retry_after = res
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().expect("ascii").to_owned());
        let body = assert_flex_error(res, 503, "ERR-HKL-0007").await;
        assert!(retry_after.is_some(), "503 without Retry-After: {body}");
        assert!(
            !body.to_string().contains("5432"),
            "internals leaked: {body}"
        );
    }
    let ready = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("request");
    assert_eq!(ready.status(), 503);
    assert!(ready.headers().contains_key("retry-after"));
    let live = app
        .client
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("request");
    assert_eq!(live.status(), 200);
    // FDX answers in its own shape.
    let fdx = app.get("/v1/services/webhook", &token).await;
    assert_eq!(fdx.status(), 503);

    proxy.restore();
    // Recovery needs no restart: the pool opens new connections on demand.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let res = app.get("/v1/acme/webhooks", &token).await;
        if res.status() == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "did not recover: {}",
            res.status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ready = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("request");
    assert_eq!(ready.status(), 200);
}
