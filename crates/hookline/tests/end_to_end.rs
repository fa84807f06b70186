//! End to end, as a brand sees it: the real API and a real worker in-process, the real Postgres
//! and RabbitMQ, a real HTTP receiver. Events go in through `POST /v1/{brand}/events` and come
//! out at the receiver, signed; the event log shows every attempt.

use std::time::Duration;

use hookline_api::{auth::mint_hs256, auth::Brands, Application};
use hookline_config::{ExposeSecret as _, Settings};
use hookline_queue::Names;
use hookline_store::testing::TestDatabase;
use hookline_testkit::{
    receiver::{Mode, Receiver},
    verify::assert_signed,
    TcpProxy,
};
use hookline_worker::Worker;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const SHIPPED: &str = "ORDER_EVENTS.OMS.ORDER_SHIPPED";
const WAIT: Duration = Duration::from_secs(20);

struct Stack {
    base: String,
    /// The API's admin listener (`/metrics`).
    admin_base: String,
    client: reqwest::Client,
    settings: Settings,
    shutdown: CancellationToken,
    api: actix_web::dev::ServerHandle,
    /// The worker's `/healthz` and `/metrics` listener.
    worker_addr: std::net::SocketAddr,
    _db: TestDatabase,
}

impl Stack {
    /// API and worker on one fresh database and one fresh queue; `amqp_url` lets a test put a
    /// proxy between both and the broker.
    async fn start(amqp_url: &str) -> Stack {
        let db = TestDatabase::create().await;
        let mut settings = Settings::default();
        settings.database.url = db.url.clone().into();
        settings.database.migrate_on_start = false;
        settings.http.bind = "127.0.0.1:0".into();
        settings.admin.bind = "127.0.0.1:0".into();
        settings.worker.http_bind = "127.0.0.1:0".into();
        settings.amqp.url = amqp_url.to_owned().into();
        settings.amqp.prefix = format!("hookline_test_{}", uuid::Uuid::new_v4().simple());
        settings.delivery.allow_http = true;
        settings.delivery.allow_private_targets = true;
        settings.delivery.retry_schedule = "200ms,200ms".into();
        settings.delivery.retry_jitter = 0.0;
        settings.worker.scheduler_interval = Duration::from_millis(100);
        settings.worker.lease = Duration::from_secs(3);

        let app = Application::build(settings.clone())
            .await
            .expect("api builds");
        let base = format!("http://127.0.0.1:{}", app.port());
        let admin_base = format!("http://127.0.0.1:{}", app.admin_port());
        let handle = app.handle();
        tokio::spawn(app.run_until_stopped());
        let shutdown = CancellationToken::new();
        let worker = Worker::build(settings.clone())
            .await
            .expect("worker builds");
        let worker_addr = worker.health_addr().expect("worker listener");
        tokio::spawn(worker.run_until_stopped(shutdown.clone()));
        let client = reqwest::Client::builder()
            .timeout(WAIT)
            .build()
            .expect("client");
        Stack {
            base,
            admin_base,
            client,
            settings,
            shutdown,
            api: handle,
            worker_addr,
            _db: db,
        }
    }

    fn token(&self) -> String {
        mint_hs256(
            self.settings.auth.hs256_secret.expose_secret(),
            Brands::List(vec!["acme".into()]),
            &[
                hookline_api::auth::SCOPE_WEBHOOKS.into(),
                hookline_api::auth::SCOPE_PUBLISH.into(),
            ],
            Duration::from_secs(600),
            None,
        )
        .expect("token")
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(self.token());
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let text = res.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn webhook(&self, endpoint: &str, events: &[&str]) -> (String, String) {
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                "/v1/acme/webhooks",
                Some(json!({ "endpoint": endpoint, "events": events })),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        (
            body["id"].as_str().expect("id").to_owned(),
            body["secret"].as_str().expect("secret").to_owned(),
        )
    }

    async fn publish(&self, event_type: &str) -> String {
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                "/v1/acme/events",
                Some(json!({ "type": event_type, "data": { "orderId": "42" } })),
            )
            .await;
        assert_eq!(status, 202, "{body}");
        body["id"].as_str().expect("id").to_owned()
    }

    /// Polls the event log until the delivery has `attempts` attempts and is final.
    async fn wait_logged(&self, webhook: &str, event: &str, attempts: usize) -> Value {
        let path = format!("/v1/acme/webhooks/{webhook}/events/{event}");
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let (status, body) = self.call(reqwest::Method::GET, &path, None).await;
            assert_eq!(status, 200, "{body}");
            let n = body["attempts"].as_array().map_or(0, Vec::len);
            if n >= attempts && body["status"] != "PENDING" {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "not logged in time: {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.shutdown.cancel();
        drop(self.api.stop(false));
        let names = Names::from_prefix(&self.settings.amqp.prefix);
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                let _ = rt.block_on(hookline_queue::delete_topology(AMQP_URL, &names));
            }
        })
        .join();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_published_through_the_api_arrives_signed_and_the_log_shows_it_and_its_retry() {
    let stack = Stack::start(AMQP_URL).await;
    let receiver = Receiver::start(Mode::Succeed).await;
    let (webhook, secret) = stack.webhook(&receiver.url(), &["ORDER_EVENTS"]).await;
    let event = stack.publish(SHIPPED).await;

    let got = receiver.wait_for(1, WAIT).await;
    assert_signed(&got[0], &[&secret]);
    assert_eq!(got[0].header("webhook-id"), event);
    let body: Value = serde_json::from_slice(&got[0].body).expect("json body");
    assert_eq!(body["type"], SHIPPED);
    assert_eq!(body["brandId"], "acme");
    assert_eq!(body["data"], json!({ "orderId": "42" }));

    let logged = stack.wait_logged(&webhook, &event, 1).await;
    assert_eq!(logged["status"], "SUCCESS");
    assert_eq!(logged["attempts"][0]["response"]["statusCode"], 200);

    // A manual retry of a delivered event sends it once more and records the attempt.
    let (status, _) = stack
        .call(
            reqwest::Method::POST,
            &format!("/v1/acme/webhooks/{webhook}/events/{event}/retry"),
            None,
        )
        .await;
    assert_eq!(status, 202);
    receiver.wait_for(2, WAIT).await;
    let logged = stack.wait_logged(&webhook, &event, 2).await;
    assert_eq!(logged["status"], "SUCCESS");
    assert_eq!(logged["attempts"].as_array().map(Vec::len), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_broker_unreachable_ingest_still_accepts_and_delivers_once_it_returns() {
    let upstream = "127.0.0.1:5672".parse().expect("addr");
    let proxy = TcpProxy::start(upstream).await.expect("proxy");
    let stack = Stack::start(&format!("amqp://guest:guest@{}/%2f", proxy.addr())).await;
    let receiver = Receiver::start(Mode::Succeed).await;
    let (webhook, _) = stack.webhook(&receiver.url(), &[SHIPPED]).await;
    // The worker is consuming through the proxy before the cut.
    let warm = stack.publish(SHIPPED).await;
    stack.wait_logged(&webhook, &warm, 1).await;

    proxy.cut();
    let event = stack.publish(SHIPPED).await;
    // Nothing can reach the receiver while API and worker are both cut off from the broker.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        receiver.received().len(),
        1,
        "only the warm-up event arrived during the outage"
    );

    proxy.restore();
    let got = receiver.wait_for(2, WAIT).await;
    assert_eq!(got[1].header("webhook-id"), event);
    let logged = stack.wait_logged(&webhook, &event, 1).await;
    assert_eq!(logged["status"], "SUCCESS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_on_the_api_and_the_worker_move_while_events_flow() {
    let stack = Stack::start(AMQP_URL).await;
    let receiver = Receiver::start(Mode::FailFirst { n: 1, status: 503 }).await;
    let (webhook, _) = stack.webhook(&receiver.url(), &[SHIPPED]).await;
    let event = stack.publish(SHIPPED).await;
    stack.wait_logged(&webhook, &event, 2).await;

    let scrape = |url: String| async move {
        let res = reqwest::get(url).await.expect("scrape");
        assert_eq!(res.status(), 200);
        res.text().await.expect("text")
    };
    let worker = scrape(format!("http://{}/metrics", stack.worker_addr)).await;
    for series in [
        r#"hookline_delivery_outcomes_total{outcome="retry"}"#,
        r#"hookline_delivery_outcomes_total{outcome="success"}"#,
        "hookline_attempt_duration_seconds_bucket",
        "hookline_publish_to_first_attempt_seconds_bucket",
        "hookline_in_flight_requests{host=",
        "hookline_deliveries_due",
        r#"hookline_endpoints{state="healthy"}"#,
        "hookline_parked_deliveries",
        // Housekeeping: set by the first retention round and the first recovery round.
        "hookline_oldest_event_age_seconds",
        r#"hookline_retention_deleted_rows_total{table="events"}"#,
        r#"hookline_recoveries{state="RUNNING"}"#,
    ] {
        assert!(
            worker.contains(series),
            "worker /metrics lacks {series}:\n{worker}"
        );
    }
    let api = scrape(format!("{}/metrics", stack.admin_base)).await;
    for series in [
        "hookline_events_ingested_total",
        "hookline_http_requests_total{",
    ] {
        assert!(api.contains(series), "API /metrics lacks {series}:\n{api}");
    }
}
