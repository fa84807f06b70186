//! Endpoint health, transition by transition: degrading after consecutive failures, parked
//! deliveries that consume no attempts, probing, recovering with a bounded release, disabling
//! after the failing period or on 410 Gone, the brand's disable and enable (with and without
//! the skipped deliveries), and the operational events that tell the brand.

use std::time::{Duration, Instant};

use hookline_store::{
    deliveries,
    models::{Delivery, Webhook},
    webhooks,
};
use hookline_testkit::receiver::{Mode, Receiver};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{eventually, TestEnv, BRAND, SHIPPED, WAIT};

impl TestEnv {
    async fn webhook_row(&self, id: Uuid) -> Webhook {
        let mut conn = self.pool.get().await.expect("conn");
        webhooks::get(&mut conn, BRAND, id)
            .await
            .expect("query")
            .expect("webhook")
    }

    async fn wait_health(&self, id: Uuid, state: &str) -> Webhook {
        eventually(&format!("webhook {state}"), || async {
            let w = self.webhook_row(id).await;
            (w.health == state).then_some(w)
        })
        .await
    }

    async fn deliveries_of(&self, webhook_id: Uuid, events: &[Uuid]) -> Vec<Delivery> {
        let mut out = Vec::new();
        for &e in events {
            out.push(self.delivery(webhook_id, e).await.0);
        }
        out
    }

    async fn set_enabled(&self, id: Uuid, enabled: bool, replay_skipped: bool) {
        let mut conn = self.pool.get().await.expect("conn");
        webhooks::set_enabled(&mut conn, BRAND, id, enabled, replay_skipped)
            .await
            .expect("set enabled")
            .expect("webhook");
    }
}

/// The operational events a receiver got, as (type, data).
fn operational(receiver: &Receiver) -> Vec<(String, Value)> {
    receiver
        .received()
        .iter()
        .map(|r| {
            let body: Value = serde_json::from_slice(&r.body).expect("json body");
            (
                body["type"].as_str().unwrap_or_default().to_owned(),
                body["data"].clone(),
            )
        })
        .filter(|(t, _)| t.starts_with("WEBHOOK_EVENTS."))
        .collect()
}

#[tokio::test]
async fn consecutive_failures_degrade_the_endpoint_and_park_its_deliveries_without_attempts() {
    let env = TestEnv::new().await;
    let failing = Receiver::start(Mode::AlwaysFail { status: 503 }).await;
    let monitor = Receiver::start(Mode::Succeed).await;
    // The failing webhook also subscribes to operational events: it must not hear of itself.
    let hook = env
        .webhook(
            BRAND,
            &failing.url(),
            &[SHIPPED, "WEBHOOK_EVENTS"],
            "top_secret",
        )
        .await;
    let watcher = env
        .webhook(BRAND, &monitor.url(), &["WEBHOOK_EVENTS"], "top_secret")
        .await;
    let worker = env
        .spawn_worker(|s| {
            s.health.failure_threshold = 3;
            s.health.probe_interval = Duration::from_secs(3600);
            s.health.probe_interval_max = Duration::from_secs(3600);
            s.delivery.retry_schedule = "100ms,100ms,100ms,100ms,100ms,100ms".into();
        })
        .await;
    let mut events = Vec::new();
    for i in 0..4 {
        events.push(
            env.publish_event(BRAND, SHIPPED, json!({ "n": i }))
                .await
                .event
                .id,
        );
    }
    let degraded = env.wait_health(hook.id, "degraded").await;
    assert_eq!(
        degraded.health_reason.as_deref(),
        Some("consecutive_failures")
    );
    assert!(degraded.consecutive_failures >= 3);
    assert!(degraded.failing_since.is_some() && degraded.last_failure_at.is_some());
    assert!(degraded.next_probe_at.is_some());

    // Every owed delivery ends up parked, and stays so: no more attempts are made.
    eventually("every delivery parked", || async {
        let all = env.deliveries_of(hook.id, &events).await;
        all.iter().all(|d| d.status == "PARKED").then_some(())
    })
    .await;
    let before = env.deliveries_of(hook.id, &events).await;
    let requests = failing.received().len();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let after = env.deliveries_of(hook.id, &events).await;
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(a.status, "PARKED");
        assert_eq!(a.status_reason.as_deref(), Some("endpoint_degraded"));
        assert_eq!(
            a.attempt_count, b.attempt_count,
            "a parked delivery uses no attempt"
        );
        assert_eq!(a.next_attempt_at, None, "its retry clock is paused");
    }
    assert_eq!(failing.received().len(), requests, "nothing more was sent");

    // New events for a degraded endpoint are parked at once.
    let late = env.publish_event(BRAND, SHIPPED, json!({})).await.event.id;
    let (d, attempts) = env.delivery(hook.id, late).await;
    assert_eq!((d.status.as_str(), attempts.len()), ("PARKED", 0));

    // The brand's other webhook hears of it; the degraded one does not.
    let heard = eventually("DEGRADED reaches the watcher", || async {
        operational(&monitor)
            .into_iter()
            .find(|(t, _)| t == "WEBHOOK_EVENTS.DEGRADED")
    })
    .await;
    assert_eq!(heard.1["webhookId"], hook.id.to_string());
    assert_eq!(heard.1["state"], "degraded");
    assert_eq!(heard.1["reason"], "consecutive_failures");
    assert!(heard.1["consecutiveFailures"].as_i64() >= Some(3));
    assert!(heard.1["parkedDeliveries"].is_number());
    assert!(operational(&failing).is_empty(), "not told about itself");
    let _ = watcher;
    worker.stop().await;
}

#[tokio::test]
async fn a_probe_at_a_time_then_recovery_releases_parked_deliveries_at_a_bounded_rate() {
    let env = TestEnv::new().await;
    // Three failures degrade it; the first probe fails too; then it answers.
    let flaky = Receiver::start(Mode::FailFirst { n: 4, status: 500 }).await;
    let monitor = Receiver::start(Mode::Succeed).await;
    let hook = env
        .webhook(BRAND, &flaky.url(), &[SHIPPED], "top_secret")
        .await;
    env.webhook(BRAND, &monitor.url(), &["WEBHOOK_EVENTS"], "top_secret")
        .await;
    let worker = env
        .spawn_worker(|s| {
            s.health.failure_threshold = 3;
            s.health.probe_interval = Duration::from_secs(1);
            s.health.probe_interval_max = Duration::from_secs(2);
            s.health.release_per_second = 10;
            // Retries far apart: only the health machine moves these deliveries.
            s.delivery.retry_schedule = "1h,1h".into();
        })
        .await;
    let mut events = Vec::new();
    for i in 0..3 {
        events.push(
            env.publish_event(BRAND, SHIPPED, json!({ "n": i }))
                .await
                .event
                .id,
        );
    }
    env.wait_health(hook.id, "degraded").await;
    // Parked behind the degraded endpoint: 30 more.
    for i in 0..30 {
        events.push(
            env.publish_event(BRAND, SHIPPED, json!({ "m": i }))
                .await
                .event
                .id,
        );
    }
    let recovered = env.wait_health(hook.id, "healthy").await;
    assert_eq!(recovered.consecutive_failures, 0);
    assert!(recovered.last_success_at.is_some());
    // The probes came one at a time: one failed (the 4th request), one succeeded (the 5th).
    let probes_done = Instant::now();
    assert!(flaky.received().len() >= 5);

    // Released at 10 a second: 32 deliveries take about three seconds, not one burst.
    let all = eventually("every delivery succeeded", || async {
        let all = env.deliveries_of(hook.id, &events).await;
        all.iter().all(|d| d.status == "SUCCESS").then_some(all)
    })
    .await;
    let release_took = probes_done.elapsed();
    assert!(
        release_took >= Duration::from_secs(2),
        "released in {release_took:?}: not bounded"
    );
    let arrivals: Vec<Instant> = flaky.received().iter().map(|r| r.at).collect();
    let busiest = arrivals
        .iter()
        .map(|&start| {
            arrivals
                .iter()
                .filter(|&&t| t >= start && t < start + Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap_or(0);
    assert!(busiest <= 22, "{busiest} requests within one second");
    // Parked deliveries kept their attempt counts: each of the 30 late ones was sent once.
    for d in &all[3..] {
        assert!(d.attempt_count <= 2, "{d:?}");
    }
    let told: Vec<String> = eventually("RECOVERED reaches the watcher", || async {
        let types: Vec<String> = operational(&monitor).into_iter().map(|(t, _)| t).collect();
        types
            .iter()
            .any(|t| t == "WEBHOOK_EVENTS.RECOVERED")
            .then_some(types)
    })
    .await;
    assert!(
        told.contains(&"WEBHOOK_EVENTS.DEGRADED".to_owned()),
        "{told:?}"
    );
    worker.stop().await;
}

#[tokio::test]
async fn failing_for_the_whole_period_disables_the_webhook() {
    let env = TestEnv::new().await;
    let dead = Receiver::start(Mode::AlwaysFail { status: 502 }).await;
    let monitor = Receiver::start(Mode::Succeed).await;
    let hook = env
        .webhook(BRAND, &dead.url(), &[SHIPPED], "top_secret")
        .await;
    env.webhook(
        BRAND,
        &monitor.url(),
        &["WEBHOOK_EVENTS.DISABLED"],
        "top_secret",
    )
    .await;
    let worker = env
        .spawn_worker(|s| {
            s.health.failure_threshold = 2;
            s.health.probe_interval = Duration::from_millis(200);
            s.health.probe_interval_max = Duration::from_millis(400);
            s.health.disable_after = Duration::from_secs(2);
            s.delivery.retry_schedule = "100ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms".into();
        })
        .await;
    let started = Instant::now();
    let mut events = Vec::new();
    for i in 0..3 {
        events.push(
            env.publish_event(BRAND, SHIPPED, json!({ "n": i }))
                .await
                .event
                .id,
        );
    }
    let disabled = env.wait_health(hook.id, "disabled").await;
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "not before the period"
    );
    assert_eq!(
        disabled.health_reason.as_deref(),
        Some("consecutive_failures")
    );
    assert!(!disabled.enabled);
    let heard = eventually("DISABLED reaches the watcher", || async {
        operational(&monitor)
            .into_iter()
            .find(|(t, _)| t == "WEBHOOK_EVENTS.DISABLED")
    })
    .await;
    assert_eq!(heard.1["reason"], "consecutive_failures");
    assert_eq!(heard.1["state"], "disabled");
    // Nothing owed was failed for it: still parked, replayable.
    for d in env.deliveries_of(hook.id, &events).await {
        assert_eq!(d.status, "PARKED", "{d:?}");
    }
    worker.stop().await;
}

#[tokio::test]
async fn gone_disables_the_webhook_at_once() {
    let env = TestEnv::new().await;
    let gone = Receiver::start(Mode::AlwaysFail { status: 410 }).await;
    let hook = env
        .webhook(BRAND, &gone.url(), &[SHIPPED], "top_secret")
        .await;
    // The retry is far off, so only the health machine decides what happens next.
    let worker = env
        .spawn_worker(|s| s.delivery.retry_schedule = "1h".into())
        .await;
    let event = env.publish_event(BRAND, SHIPPED, json!({})).await.event.id;
    let disabled = env.wait_health(hook.id, "disabled").await;
    assert_eq!(disabled.health_reason.as_deref(), Some("endpoint_gone"));
    let (d, attempts) = env.delivery(hook.id, event).await;
    assert_eq!(attempts.len(), 1, "one attempt was enough");
    assert_eq!(d.status, "PARKED");
    assert_eq!(gone.received().len(), 1);
    worker.stop().await;
}

#[tokio::test]
async fn disabling_skips_new_events_and_enabling_replays_them_only_when_asked() {
    let env = TestEnv::new().await;
    let receiver = Receiver::start(Mode::Succeed).await;
    let hook = env
        .webhook(BRAND, &receiver.url(), &[SHIPPED], "top_secret")
        .await;
    // Owed when the brand disables it: parked, not failed.
    let owed = env
        .ingest(BRAND, SHIPPED, json!({ "owed": true }))
        .await
        .event
        .id;
    env.set_enabled(hook.id, false, false).await;
    let (d, _) = env.delivery(hook.id, owed).await;
    assert_eq!(
        (d.status.as_str(), d.status_reason.as_deref()),
        ("PARKED", Some("webhook_disabled"))
    );
    let w = env.webhook_row(hook.id).await;
    assert_eq!(
        (w.health.as_str(), w.health_reason.as_deref()),
        ("disabled", Some("manual"))
    );

    // Events while disabled are on record as SKIPPED, never sent.
    let worker = env.spawn_worker(|_| {}).await;
    let mut skipped = Vec::new();
    for i in 0..3 {
        let ingested = env.publish_event(BRAND, SHIPPED, json!({ "n": i })).await;
        assert!(ingested.due_webhook_ids.is_empty());
        skipped.push(ingested.event.id);
    }
    for d in env.deliveries_of(hook.id, &skipped).await {
        assert_eq!(
            (d.status.as_str(), d.status_reason.as_deref()),
            ("SKIPPED", Some("webhook_disabled"))
        );
    }
    {
        let mut conn = env.pool.get().await.expect("conn");
        let log = deliveries::list_for_webhook(&mut conn, hook.id, &Default::default(), 10)
            .await
            .expect("log");
        assert_eq!(log.len(), 4, "skipped events are in the event log");
    }

    // Enabled without replay: the parked one is resumed, the skipped stay skipped.
    env.set_enabled(hook.id, true, false).await;
    env.wait_for(hook.id, owed, "the parked delivery resumed", |d, _| {
        d.status == "SUCCESS"
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for d in env.deliveries_of(hook.id, &skipped).await {
        assert_eq!(d.status, "SKIPPED");
    }
    assert_eq!(receiver.received().len(), 1);

    // Disabled and enabled again, asking for what was skipped: delivered.
    env.set_enabled(hook.id, false, false).await;
    env.set_enabled(hook.id, true, true).await;
    eventually("the skipped deliveries replayed", || async {
        let all = env.deliveries_of(hook.id, &skipped).await;
        all.iter().all(|d| d.status == "SUCCESS").then_some(())
    })
    .await;
    assert_eq!(receiver.received().len(), 4);
    worker.stop().await;
}

#[tokio::test]
async fn a_delivery_that_runs_out_of_attempts_is_reported_to_the_brand() {
    let env = TestEnv::new().await;
    let failing = Receiver::start(Mode::AlwaysFail { status: 500 }).await;
    let monitor = Receiver::start(Mode::Succeed).await;
    let hook = env
        .webhook(
            BRAND,
            &failing.url(),
            &[SHIPPED, "WEBHOOK_EVENTS"],
            "top_secret",
        )
        .await;
    env.webhook(
        BRAND,
        &monitor.url(),
        &["WEBHOOK_EVENTS.DELIVERY_EXHAUSTED"],
        "top_secret",
    )
    .await;
    let worker = env
        .spawn_worker(|s| {
            s.delivery.retry_schedule = "100ms".into();
            s.health.failure_threshold = 100;
        })
        .await;
    let event = env.publish_event(BRAND, SHIPPED, json!({})).await.event.id;
    let (d, attempts) = env.wait_final(hook.id, event).await;
    assert_eq!((d.status.as_str(), attempts.len()), ("FAILURE", 2));
    let heard = eventually("DELIVERY_EXHAUSTED reaches the watcher", || async {
        operational(&monitor).into_iter().next()
    })
    .await;
    assert_eq!(heard.0, "WEBHOOK_EVENTS.DELIVERY_EXHAUSTED");
    assert_eq!(heard.1["eventId"], event.to_string());
    assert_eq!(heard.1["webhookId"], hook.id.to_string());
    assert_eq!(heard.1["attempts"], 2);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(operational(&failing).is_empty(), "not told about itself");
    assert_eq!(operational(&monitor).len(), 1, "told once");
    let _ = WAIT;
    worker.stop().await;
}
