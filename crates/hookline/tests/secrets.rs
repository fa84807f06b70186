//! Webhook secrets at rest, end to end: the real API and worker in-process, the real Postgres,
//! RabbitMQ and receivers. A plain-text row left by an earlier version is encrypted when the
//! API starts, and every delivery stays signed with the brand's secret — before and after a
//! secret rotation, and after the encryption key itself is rotated and the old key removed.

use std::time::Duration;

use base64::{engine::general_purpose::STANDARD, Engine as _};
use diesel::{
    sql_types::{Nullable, Text, Uuid as SqlUuid},
    QueryableByName,
};
use diesel_async::RunQueryDsl as _;
use hookline_api::{auth::mint_hs256, auth::Brands, Application};
use hookline_config::{ExposeSecret as _, Settings};
use hookline_queue::Names;
use hookline_store::testing::TestDatabase;
use hookline_testkit::{
    receiver::{Mode, Receiver},
    verify::assert_signed,
};
use hookline_worker::Worker;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const SHIPPED: &str = "ORDER_EVENTS.OMS.ORDER_SHIPPED";
const WAIT: Duration = Duration::from_secs(20);

fn key(id: &str, byte: u8) -> String {
    format!("{id}:{}", STANDARD.encode([byte; 32]))
}

/// The API and a worker on `settings` (one database, one queue), until dropped.
struct Stack {
    base: String,
    client: reqwest::Client,
    settings: Settings,
    shutdown: CancellationToken,
    api: actix_web::dev::ServerHandle,
}

impl Stack {
    async fn start(settings: Settings) -> Stack {
        let app = Application::build(settings.clone())
            .await
            .expect("api builds");
        let base = format!("http://127.0.0.1:{}", app.port());
        let api = app.handle();
        tokio::spawn(app.run_until_stopped());
        let shutdown = CancellationToken::new();
        let worker = Worker::build(settings.clone())
            .await
            .expect("worker builds");
        tokio::spawn(worker.run_until_stopped(shutdown.clone()));
        let client = reqwest::Client::builder()
            .timeout(WAIT)
            .build()
            .expect("client");
        Stack {
            base,
            client,
            settings,
            shutdown,
            api,
        }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.api.stop(true).await;
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let token = mint_hs256(
            self.settings.auth.hs256_secret.expose_secret(),
            Brands::List(vec!["acme".into()]),
            &[
                hookline_api::auth::SCOPE_WEBHOOKS.into(),
                hookline_api::auth::SCOPE_PUBLISH.into(),
            ],
            Duration::from_secs(600),
            None,
        )
        .expect("token");
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let text = res.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn publish(&self) -> String {
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                "/v1/acme/events",
                Some(json!({ "type": SHIPPED, "data": { "orderId": "42" } })),
            )
            .await;
        assert_eq!(status, 202, "{body}");
        body["id"].as_str().expect("id").to_owned()
    }
}

/// The delivery of `event` that `receiver` got, once it arrived. Looked up by event id rather
/// than counted: delivery is at least once, and a stack stopped mid-delivery may send again.
async fn delivered(receiver: &Receiver, event: &str) -> hookline_testkit::receiver::Received {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(got) = receiver
            .received()
            .into_iter()
            .find(|r| r.header("webhook-id") == event)
        {
            return got;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "event {event} did not arrive"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[derive(QueryableByName, Debug)]
struct Stored {
    #[diesel(sql_type = Text)]
    secret: String,
    #[diesel(sql_type = Nullable<Text>)]
    previous_secret: Option<String>,
}

/// Every stored secret, current and previous, as plain SQL shows them.
async fn stored(db: &TestDatabase) -> Vec<String> {
    let mut conn = db.pool().get().await.expect("conn");
    diesel::sql_query("SELECT secret, previous_secret FROM webhooks")
        .load::<Stored>(&mut conn)
        .await
        .expect("rows")
        .into_iter()
        .flat_map(|r| std::iter::once(r.secret).chain(r.previous_secret))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_stay_signed_through_encryption_secret_rotation_and_key_rotation() {
    let db = TestDatabase::create().await;
    let legacy_receiver = Receiver::start(Mode::Succeed).await;
    let receiver = Receiver::start(Mode::Succeed).await;

    // A webhook as a version before encryption left it: its secret in plain text.
    let legacy_secret = "top_secret_from_before";
    {
        let mut conn = db.pool().get().await.expect("conn");
        diesel::sql_query(
            "INSERT INTO webhooks (id, brand_id, endpoint, event_types, secret) \
             VALUES ($1, 'acme', $2, ARRAY['ORDER_EVENTS'], $3)",
        )
        .bind::<SqlUuid, _>(uuid::Uuid::now_v7())
        .bind::<Text, _>(legacy_receiver.url())
        .bind::<Text, _>(legacy_secret)
        .execute(&mut conn)
        .await
        .expect("legacy webhook");
    }

    let mut settings = Settings::default();
    settings.database.url = db.url.clone().into();
    // Migrating at start is what encrypts plain-text rows (the schema is already there).
    settings.database.migrate_on_start = true;
    settings.database.create_if_missing = false;
    settings.http.bind = "127.0.0.1:0".into();
    settings.admin.bind = "127.0.0.1:0".into();
    settings.worker.http_bind = "127.0.0.1:0".into();
    settings.amqp.url = AMQP_URL.into();
    settings.amqp.prefix = format!("hookline_test_{}", uuid::Uuid::new_v4().simple());
    settings.delivery.allow_http = true;
    settings.delivery.allow_private_targets = true;
    settings.worker.scheduler_interval = Duration::from_millis(100);
    settings.secrets.keys = key("k1", 1).into();
    settings.secrets.active_key = "k1".into();
    let names = Names::from_prefix(&settings.amqp.prefix);

    let stack = Stack::start(settings.clone()).await;
    for s in stored(&db).await {
        assert!(s.starts_with("enc:v1:k1:"), "{s}");
        assert!(!s.contains(legacy_secret));
    }
    let (status, created) = stack
        .call(
            reqwest::Method::POST,
            "/v1/acme/webhooks",
            Some(json!({ "endpoint": receiver.url(), "events": ["ORDER_EVENTS"] })),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    let first_secret = created["secret"].as_str().expect("secret").to_owned();
    for s in stored(&db).await {
        assert!(
            s.starts_with("enc:v1:k1:") && !s.contains(&first_secret),
            "{s}"
        );
    }

    let event = stack.publish().await;
    assert_signed(&delivered(&receiver, &event).await, &[&first_secret]);
    assert_signed(&delivered(&legacy_receiver, &event).await, &[legacy_secret]);

    // The brand rotates its secret: the old one signs beside the new one.
    let (status, rotated) = stack
        .call(
            reqwest::Method::POST,
            &format!("/v1/acme/webhooks/{id}/secret/rotate"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let second_secret = rotated["secret"].as_str().expect("secret").to_owned();
    let event = stack.publish().await;
    assert_signed(
        &delivered(&receiver, &event).await,
        &[&second_secret, &first_secret],
    );
    stack.stop().await;

    // The operator rotates the encryption key, then removes the old one.
    let mut rotating = settings.clone();
    rotating.secrets.keys = format!("{},{}", key("k2", 2), key("k1", 1)).into();
    rotating.secrets.active_key = "k2".into();
    hookline_api::secrets::rotate_key(&rotating, 1)
        .await
        .expect("rotate-key");
    let mut after = settings.clone();
    after.secrets.keys = key("k2", 2).into();
    after.secrets.active_key = "k2".into();
    for s in stored(&db).await {
        assert!(s.starts_with("enc:v1:k2:"), "{s}");
    }

    let stack = Stack::start(after).await;
    let event = stack.publish().await;
    assert_signed(
        &delivered(&receiver, &event).await,
        &[&second_secret, &first_secret],
    );
    assert_signed(&delivered(&legacy_receiver, &event).await, &[legacy_secret]);
    let (status, shown) = stack
        .call(
            reqwest::Method::GET,
            &format!("/v1/acme/webhooks/{id}/secret"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["secret"], second_secret.as_str());
    stack.stop().await;
    hookline_queue::delete_topology(AMQP_URL, &names)
        .await
        .expect("remove the test's queue");
}
