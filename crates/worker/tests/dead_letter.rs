//! The dead-letter loop against the machine's real Postgres (a database per test) and RabbitMQ
//! (a topology per test): a dead-lettered message's deliveries are parked as `worker_lost`
//! and the message is gone; a malformed one is dropped; while the database is unreachable the
//! message waits in the dead-letter queue.

use std::time::{Duration, Instant};

use hookline_domain::{lifecycle::reason, DeliveryMessage, EventType};
use hookline_queue::Names;
use hookline_store::{
    deliveries,
    models::{Delivery, NewEvent, NewWebhook},
    pool::{build_pool, PoolOptions},
    testing::TestDatabase,
    Pool,
};
use hookline_worker::dead_letter;
use lapin::{
    options::{BasicGetOptions, BasicNackOptions, BasicPublishOptions, QueueDeclareOptions},
    types::FieldTable,
    BasicProperties,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const SHIPPED: &str = "ORDER_EVENTS.OMS.ORDER_SHIPPED";
const WAIT: Duration = Duration::from_secs(30);

/// This test's topology, removed when it ends (on a thread: Drop may run inside a runtime).
struct Topology(Names);

impl Topology {
    fn new() -> Topology {
        Topology(Names::from_prefix(&format!(
            "hookline_test_{}",
            Uuid::new_v4().simple()
        )))
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        let names = self.0.clone();
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

/// A webhook and an event for it: one PENDING delivery, leased as after the API's ingest.
async fn pending_delivery(pool: &Pool) -> DeliveryMessage {
    let id = Uuid::now_v7();
    let mut conn = pool.get().await.expect("connection");
    let hook = hookline_store::webhooks::create(
        &mut conn,
        &NewWebhook {
            id,
            brand_id: "acme",
            endpoint: "http://127.0.0.1:9/hook",
            event_types: &[SHIPPED.to_owned()],
            enabled: true,
            secret: hookline_store::testing::sealed(id, "top_secret"),
        },
    )
    .await
    .expect("create webhook");
    let ingested = hookline_store::events::ingest(
        &mut conn,
        &NewEvent {
            id: Uuid::now_v7(),
            brand_id: "acme",
            event_type: SHIPPED,
            payload: &serde_json::json!({"order": 1}),
            idempotency_key: None,
        },
        &EventType::parse(SHIPPED)
            .expect("known event type")
            .ancestors_and_self(),
        Duration::from_secs(60),
    )
    .await
    .expect("ingest");
    assert_eq!(ingested.webhook_ids, [hook.id]);
    DeliveryMessage {
        webhook_id: hook.id,
        event_id: ingested.event.id,
    }
}

async fn delivery(pool: &Pool, pointer: DeliveryMessage) -> Delivery {
    let mut conn = pool.get().await.expect("connection");
    let (delivery, _, _) =
        deliveries::get_for_webhook(&mut conn, pointer.webhook_id, pointer.event_id)
            .await
            .expect("query")
            .expect("delivery exists");
    delivery
}

/// Publishes raw bodies straight to the dead-letter exchange, as the broker does when it
/// dead-letters, and returns a channel for looking at the queue.
async fn dead_letter(names: &Names, bodies: &[Vec<u8>]) -> (lapin::Connection, lapin::Channel) {
    let conn = hookline_queue::connect(AMQP_URL).await.expect("connect");
    let channel = hookline_queue::declare(&conn, names)
        .await
        .expect("declare");
    for body in bodies {
        channel
            .basic_publish(
                names.dead_exchange.as_str().into(),
                "delivery".into(),
                BasicPublishOptions::default(),
                body,
                BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .expect("publish")
            .await
            .expect("published");
    }
    (conn, channel)
}

/// Ready messages in the dead-letter queue.
async fn dead_count(channel: &lapin::Channel, names: &Names) -> u32 {
    channel
        .queue_declare(
            names.dead_queue.as_str().into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("the dead-letter queue exists")
        .message_count()
}

/// Polls the dead-letter queue until it holds `expected` ready messages; panics with `what`
/// after [`WAIT`]. A channel's unacknowledged messages return to the queue asynchronously after
/// the channel closes, so one reading right after a stop can still miss them.
async fn wait_dead_count(channel: &lapin::Channel, names: &Names, expected: u32, what: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let count = dead_count(channel, names).await;
        if count == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {count} ready messages, expected {expected}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn spawn(pool: Pool, names: &Names) -> (CancellationToken, JoinHandle<()>) {
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(dead_letter::run(
        pool,
        AMQP_URL.to_owned(),
        names.clone(),
        shutdown.clone(),
    ));
    (shutdown, handle)
}

async fn stop(shutdown: CancellationToken, handle: JoinHandle<()>) {
    shutdown.cancel();
    tokio::time::timeout(WAIT, handle)
        .await
        .expect("the loop stops")
        .expect("loop task");
}

/// Polls the delivery until it is parked; panics after [`WAIT`].
async fn wait_parked(pool: &Pool, pointer: DeliveryMessage) -> Delivery {
    let deadline = Instant::now() + WAIT;
    loop {
        let d = delivery(pool, pointer).await;
        if d.status == deliveries::PARKED {
            return d;
        }
        assert!(Instant::now() < deadline, "timed out waiting for PARKED");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_dead_lettered_message_parks_its_deliveries_and_is_gone() {
    let db = TestDatabase::create().await;
    let pool = db.pool();
    let topology = Topology::new();
    let names = &topology.0;
    let pointer = pending_delivery(&pool).await;
    assert_eq!(delivery(&pool, pointer).await.status, deliveries::PENDING);

    // A malformed message first: dropped, and not in the way of the next.
    let (conn, channel) = dead_letter(
        names,
        &[
            b"not a pointer".to_vec(),
            DeliveryMessage::batch_to_bytes(&[pointer]),
        ],
    )
    .await;
    let (shutdown, handle) = spawn(pool.clone(), names);

    let parked = wait_parked(&pool, pointer).await;
    assert_eq!(parked.status_reason.as_deref(), Some(reason::WORKER_LOST));
    assert_eq!(parked.leased_until, None, "no lease left to bring it back");
    assert_eq!(parked.next_attempt_at, None);

    // Stopped, so a message held unacknowledged would be back in the queue by now.
    stop(shutdown, handle).await;
    assert_eq!(dead_count(&channel, names).await, 0, "both messages acked");
    let _ = conn.close(200, "bye".into()).await;
}

#[tokio::test]
async fn a_dead_lettered_message_waits_while_the_database_is_unreachable() {
    let db = TestDatabase::create().await;
    let pool = db.pool();
    let topology = Topology::new();
    let names = &topology.0;
    let pointer = pending_delivery(&pool).await;
    let (conn, channel) = dead_letter(names, &[DeliveryMessage::batch_to_bytes(&[pointer])]).await;

    // Nothing listens on port 1: every checkout fails at once.
    let unreachable = build_pool(
        "postgres://postgres@127.0.0.1:1/hookline",
        &PoolOptions {
            max_size: 1,
            connect_timeout: Duration::from_secs(1),
            ..PoolOptions::default()
        },
    )
    .expect("pool");
    let (shutdown, handle) = spawn(unreachable, names);
    // Long enough for a few attempts (the pauses start at 200 ms).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop(shutdown, handle).await;
    // The broker puts back what the closed channel held on its own time: wait for it.
    wait_dead_count(&channel, names, 1, "requeued, not dropped").await;
    let seen = channel
        .basic_get(names.dead_queue.as_str().into(), BasicGetOptions::default())
        .await
        .expect("basic.get")
        .expect("the message");
    assert!(seen.redelivered, "the loop took it and put it back");
    seen.acker
        .nack(BasicNackOptions {
            requeue: true,
            ..BasicNackOptions::default()
        })
        .await
        .expect("requeue");
    assert_eq!(delivery(&pool, pointer).await.status, deliveries::PENDING);

    // The database is back: the message is handled.
    let (shutdown, handle) = spawn(pool.clone(), names);
    let parked = wait_parked(&pool, pointer).await;
    assert_eq!(parked.status_reason.as_deref(), Some(reason::WORKER_LOST));
    stop(shutdown, handle).await;
    assert_eq!(dead_count(&channel, names).await, 0);
    let _ = conn.close(200, "bye".into()).await;
}
