//! A test's world: its own database, its own exchange and queue on the real RabbitMQ, workers
//! started in-process, and store shortcuts for webhooks, events and what became of them.
//! Silent unless `TEST_LOG=1`.

use std::{
    future::Future,
    time::{Duration, Instant},
};

use hookline_config::Settings;
use hookline_domain::{DeliveryMessage, EventType};
use hookline_queue::{Names, Publisher};
use hookline_store::{
    deliveries,
    events::{self, Ingested},
    models::{Attempt, Delivery, NewEvent, NewWebhook, Webhook},
    testing::TestDatabase,
    webhooks, Pool,
};
use hookline_worker::Worker;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use hookline_testkit::receiver::{Mode, Receiver};

/// The real RabbitMQ of this machine.
pub const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
pub const BRAND: &str = "acme";
/// The event type most tests send.
pub const SHIPPED: &str = "ORDER_EVENTS.OMS.ORDER_SHIPPED";
/// Bound on every wait for an outcome: generous, since a wait ends as soon as its condition
/// holds; only a broken worker spends it.
pub const WAIT: Duration = Duration::from_secs(30);

pub struct TestEnv {
    pub db: TestDatabase,
    pub pool: Pool,
    pub prefix: String,
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        // Remove this test's exchange and queue (on a thread: Drop may run inside a runtime).
        let names = self.names();
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

pub struct TestWorker {
    shutdown: CancellationToken,
    handle: tokio::task::JoinHandle<()>,
}

impl TestWorker {
    /// SIGTERM, as `main` sends it: waits for the worker to finish.
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(WAIT, self.handle)
            .await
            .expect("worker stops within its grace period")
            .expect("worker task");
    }

    /// An abrupt death: the worker's future is dropped mid-work, as with SIGKILL.
    pub async fn kill(self) {
        self.handle.abort();
        let _ = self.handle.await;
    }
}

impl TestEnv {
    pub async fn new() -> TestEnv {
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = hookline_worker::telemetry::init(&Settings::default().log, "hookline-test");
        }
        let db = TestDatabase::create().await;
        let pool = db.pool();
        TestEnv {
            db,
            pool,
            prefix: format!("hookline_test_{}", Uuid::new_v4().simple()),
        }
    }

    pub fn names(&self) -> Names {
        Names::from_prefix(&self.prefix)
    }

    /// Worker settings for tests: this test's database and queue, receivers on 127.0.0.1 over
    /// plain HTTP, a short schedule and a fast scheduler.
    pub fn settings(&self) -> Settings {
        let mut s = Settings::default();
        s.database.url = self.db.url.clone().into();
        s.database.pool_size = 4;
        s.amqp.url = AMQP_URL.into();
        s.amqp.prefix = self.prefix.clone();
        s.delivery.allow_http = true;
        s.delivery.allow_private_targets = true;
        s.delivery.retry_schedule = "100ms,100ms".into();
        s.delivery.retry_jitter = 0.0;
        s.retention.attempt_response_bytes = 64;
        s.delivery.user_agent = "Hookline-Test/1".into();
        s.worker.prefetch = 16;
        s.worker.concurrency = 8;
        s.worker.scheduler_interval = Duration::from_millis(100);
        s.worker.http_bind = "127.0.0.1:0".into();
        s.worker.shutdown_grace = Duration::from_secs(5);
        s
    }

    pub async fn spawn_worker(&self, configure: impl FnOnce(&mut Settings)) -> TestWorker {
        let mut settings = self.settings();
        configure(&mut settings);
        let worker = Worker::build(settings).await.expect("worker builds");
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(worker.run_until_stopped(shutdown.clone()));
        TestWorker { shutdown, handle }
    }

    pub async fn webhook(
        &self,
        brand: &str,
        endpoint: &str,
        types: &[&str],
        secret: &str,
    ) -> Webhook {
        let event_types: Vec<String> = types.iter().map(|t| (*t).to_owned()).collect();
        let id = Uuid::now_v7();
        let mut conn = self.pool.get().await.expect("connection");
        webhooks::create(
            &mut conn,
            &NewWebhook {
                id,
                brand_id: brand,
                endpoint,
                event_types: &event_types,
                enabled: true,
                secret: hookline_store::testing::sealed(id, secret),
            },
        )
        .await
        .expect("create webhook")
    }

    /// A receiver in `mode` and a webhook of [`BRAND`] sending it [`SHIPPED`] events.
    pub async fn subscriber(&self, mode: Mode) -> (Receiver, Webhook) {
        let receiver = Receiver::start(mode).await;
        let hook = self
            .webhook(BRAND, &receiver.url(), &[SHIPPED], "top_secret")
            .await;
        (receiver, hook)
    }

    /// What the API's ingest does in the store: the event and its deliveries, leased for the
    /// publish that follows.
    pub async fn ingest(&self, brand: &str, event_type: &str, data: serde_json::Value) -> Ingested {
        self.ingest_leased(brand, event_type, data, Duration::from_secs(60))
            .await
    }

    /// [`TestEnv::ingest`] with the deliveries leased for `lease`.
    pub async fn ingest_leased(
        &self,
        brand: &str,
        event_type: &str,
        data: serde_json::Value,
        lease: Duration,
    ) -> Ingested {
        let parsed = EventType::parse(event_type).expect("known event type");
        let mut conn = self.pool.get().await.expect("connection");
        events::ingest(
            &mut conn,
            &NewEvent {
                id: Uuid::now_v7(),
                brand_id: brand,
                event_type,
                payload: &data,
                idempotency_key: None,
            },
            &parsed.ancestors_and_self(),
            lease,
        )
        .await
        .expect("ingest")
    }

    /// Ingests and publishes to the real broker, as the API does after its commit.
    pub async fn publish_event(
        &self,
        brand: &str,
        event_type: &str,
        data: serde_json::Value,
    ) -> Ingested {
        let ingested = self.ingest(brand, event_type, data).await;
        let publisher = Publisher::new(AMQP_URL, self.names());
        publisher
            .publish(&messages(&ingested))
            .await
            .expect("publish");
        ingested
    }

    pub async fn delivery(&self, webhook_id: Uuid, event_id: Uuid) -> (Delivery, Vec<Attempt>) {
        let mut conn = self.pool.get().await.expect("connection");
        let (delivery, _, attempts) = deliveries::get_for_webhook(&mut conn, webhook_id, event_id)
            .await
            .expect("query")
            .expect("delivery exists");
        (delivery, attempts)
    }

    /// Polls the delivery until `done` holds (bounded by [`WAIT`]).
    pub async fn wait_for(
        &self,
        webhook_id: Uuid,
        event_id: Uuid,
        what: &str,
        done: impl Fn(&Delivery, &[Attempt]) -> bool,
    ) -> (Delivery, Vec<Attempt>) {
        let (d, a) = eventually(what, || async {
            let (d, a) = self.delivery(webhook_id, event_id).await;
            done(&d, &a).then_some((d, a))
        })
        .await;
        (d, a)
    }

    /// Sets the webhook's health state directly (see `testing::set_health`).
    pub async fn set_health(&self, webhook_id: Uuid, state: &str) {
        let mut conn = self.pool.get().await.expect("connection");
        hookline_store::testing::set_health(&mut conn, webhook_id, state).await;
    }

    pub async fn wait_final(&self, webhook_id: Uuid, event_id: Uuid) -> (Delivery, Vec<Attempt>) {
        self.wait_for(webhook_id, event_id, "a final delivery", |d, _| {
            d.status != deliveries::PENDING
        })
        .await
    }
}

pub fn messages(ingested: &Ingested) -> Vec<DeliveryMessage> {
    ingested
        .webhook_ids
        .iter()
        .map(|&webhook_id| DeliveryMessage {
            webhook_id,
            event_id: ingested.event.id,
        })
        .collect()
}

/// Polls `probe` every 50 ms until it yields a value; panics after [`WAIT`].
pub async fn eventually<T, F, Fut>(what: &str, probe: F) -> T
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
