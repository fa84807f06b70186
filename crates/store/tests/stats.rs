//! The portal's statistics: delivery counts per webhook, attempt outcomes and latency per time
//! bucket (every bucket present, empty ones zero), percentiles on known data, and never a row
//! of another brand or webhook.

use chrono::{DateTime, Duration, Utc};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use hookline_store::{models::NewWebhook, stats, testing::TestDatabase, webhooks};
use uuid::Uuid;

async fn webhook(conn: &mut AsyncPgConnection, brand: &str, endpoint: &str) -> Uuid {
    let types = vec!["RECEIPTS".to_owned()];
    let id = Uuid::now_v7();
    webhooks::create(
        conn,
        &NewWebhook {
            id,
            brand_id: brand,
            endpoint,
            event_types: &types,
            enabled: true,
            secret: hookline_store::testing::sealed(id, "top_secret"),
        },
    )
    .await
    .expect("webhook")
    .id
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339()
}

/// An event of `brand` delivered to `webhook`, both created at `at`, the delivery in `status`:
/// the event's id.
async fn delivery(
    conn: &mut AsyncPgConnection,
    brand: &str,
    webhook: Uuid,
    at: DateTime<Utc>,
    status: &str,
) -> Uuid {
    let event = Uuid::now_v7();
    diesel::sql_query(format!(
        "WITH e AS (INSERT INTO events (id, brand_id, event_type, payload, created) \
             VALUES ('{event}', '{brand}', 'RECEIPTS', '{{}}', '{at}') RETURNING id) \
         INSERT INTO deliveries (webhook_id, event_id, status, created) \
         SELECT '{webhook}', id, '{status}', '{at}' FROM e",
        at = ts(at)
    ))
    .execute(conn)
    .await
    .expect("event and delivery");
    event
}

/// Attempts of the delivery (`webhook`, `event`) made at `at`, one per response time.
async fn attempts(
    conn: &mut AsyncPgConnection,
    webhook: Uuid,
    event: Uuid,
    at: DateTime<Utc>,
    status: &str,
    times_ms: &[i32],
) {
    let times = times_ms
        .iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    diesel::sql_query(format!(
        "INSERT INTO attempts (id, webhook_id, event_id, created, status, request_endpoint, \
             request_headers, response_time_ms) \
         SELECT gen_random_uuid(), '{webhook}', '{event}', '{at}', '{status}', \
             'https://x.example/', '{{}}', t \
         FROM unnest(ARRAY[{times}]::int4[]) AS t",
        at = ts(at)
    ))
    .execute(conn)
    .await
    .expect("attempts");
}

#[tokio::test]
async fn summaries_count_each_webhook_of_the_brand_in_the_window_only() {
    let db = TestDatabase::create().await;
    let pool = db.pool();
    let mut conn = pool.get().await.expect("conn");
    let now = Utc::now();
    let since = now - Duration::hours(24);
    let busy = webhook(&mut conn, "acme", "https://a.example/").await;
    let idle = webhook(&mut conn, "acme", "https://b.example/").await;
    let other_brand = webhook(&mut conn, "globex", "https://a.example/").await;
    for status in [
        "SUCCESS", "SUCCESS", "SUCCESS", "FAILURE", "FAILURE", "PENDING",
    ] {
        delivery(&mut conn, "acme", busy, now - Duration::hours(1), status).await;
    }
    // Before the window: not counted.
    for status in ["SUCCESS", "FAILURE"] {
        delivery(&mut conn, "acme", busy, now - Duration::hours(25), status).await;
    }
    for _ in 0..4 {
        delivery(&mut conn, "globex", other_brand, now, "SUCCESS").await;
    }

    let rows = stats::summaries(&mut conn, "acme", since)
        .await
        .expect("summaries");
    let got: Vec<_> = rows
        .iter()
        .map(|r| (r.webhook_id, r.deliveries, r.succeeded, r.failed))
        .collect();
    assert_eq!(got, vec![(busy, 6, 3, 2), (idle, 0, 0, 0)]);

    let rows = stats::summaries(&mut conn, "globex", since)
        .await
        .expect("summaries");
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].webhook_id, rows[0].deliveries), (other_brand, 4));
    assert!(stats::summaries(&mut conn, "nobody", since)
        .await
        .expect("summaries")
        .is_empty());

    // One webhook's own: the same counts.
    for (id, want) in [
        (busy, (6, 3, 2)),
        (idle, (0, 0, 0)),
        (other_brand, (4, 4, 0)),
    ] {
        let one = stats::summary(&mut conn, id, since).await.expect("summary");
        assert_eq!(
            (one.webhook_id, one.deliveries, one.succeeded, one.failed),
            (id, want.0, want.1, want.2)
        );
    }
}

#[tokio::test]
async fn series_fills_every_bucket_and_takes_percentiles_per_bucket() {
    let db = TestDatabase::create().await;
    let pool = db.pool();
    let mut conn = pool.get().await.expect("conn");
    let now = Utc::now();
    // Two and a half hours at one-hour buckets: three buckets, the last one holding now.
    let since = now - Duration::minutes(150);
    let hook = webhook(&mut conn, "acme", "https://a.example/").await;
    let neighbour = webhook(&mut conn, "acme", "https://b.example/").await;

    let first = since + Duration::minutes(10);
    let event = delivery(&mut conn, "acme", hook, first, "SUCCESS").await;
    let one_to_hundred: Vec<i32> = (1..=100).collect();
    attempts(&mut conn, hook, event, first, "SUCCESS", &one_to_hundred).await;
    // The second bucket stays empty. The third: three fast successes and one slow failure.
    let third = since + Duration::minutes(125);
    let event = delivery(&mut conn, "acme", hook, third, "SUCCESS").await;
    attempts(&mut conn, hook, event, third, "SUCCESS", &[10, 10, 10]).await;
    attempts(&mut conn, hook, event, third, "FAILURE", &[700]).await;
    // Before the window, and another webhook's attempts inside it: never counted.
    let early = since - Duration::minutes(5);
    let event = delivery(&mut conn, "acme", hook, early, "FAILURE").await;
    attempts(&mut conn, hook, event, early, "FAILURE", &[5000; 7]).await;
    let event = delivery(&mut conn, "acme", neighbour, first, "FAILURE").await;
    attempts(&mut conn, neighbour, event, first, "FAILURE", &[9000; 9]).await;

    let buckets = stats::series(&mut conn, hook, since, Duration::hours(1))
        .await
        .expect("series");
    let got: Vec<_> = buckets
        .iter()
        .map(|b| (b.succeeded, b.failed, b.p50_ms, b.p99_ms))
        .collect();
    assert_eq!(
        got,
        vec![
            (100, 0, Some(50), Some(99)),
            (0, 0, None, None),
            (3, 1, Some(10), Some(700)),
        ]
    );
    for (i, b) in buckets.iter().enumerate() {
        let expected = since + Duration::hours(i as i64);
        let off = (b.start - expected).num_microseconds().expect("small");
        assert!(
            off.abs() <= 1,
            "bucket {i} starts at {} not {expected}",
            b.start
        );
    }

    // The neighbour sees only its own attempts; a window in the future has no buckets.
    let theirs = stats::series(&mut conn, neighbour, since, Duration::hours(1))
        .await
        .expect("series");
    let failed: Vec<i64> = theirs.iter().map(|b| b.failed).collect();
    assert_eq!(failed, vec![9, 0, 0]);
    let future = stats::series(
        &mut conn,
        hook,
        now + Duration::hours(1),
        Duration::hours(1),
    )
    .await
    .expect("series");
    assert!(future.is_empty());

    // A width too narrow for the window is widened to at most MAX_BUCKETS buckets, and they
    // still hold every attempt.
    let fine = stats::series(&mut conn, hook, since, Duration::zero())
        .await
        .expect("series");
    assert!(fine.len() as i64 <= stats::MAX_BUCKETS, "{}", fine.len());
    assert!(fine.len() > 1000, "{}", fine.len());
    let total: i64 = fine.iter().map(|b| b.succeeded + b.failed).sum();
    assert_eq!(total, 104);
}

#[tokio::test]
async fn latency_takes_percentiles_over_the_whole_window() {
    let db = TestDatabase::create().await;
    let pool = db.pool();
    let mut conn = pool.get().await.expect("conn");
    let now = Utc::now();
    let since = now - Duration::hours(24);
    let hook = webhook(&mut conn, "acme", "https://a.example/").await;
    let other = webhook(&mut conn, "globex", "https://a.example/").await;

    let at = now - Duration::hours(2);
    let event = delivery(&mut conn, "acme", hook, at, "SUCCESS").await;
    let one_to_hundred: Vec<i32> = (1..=100).collect();
    attempts(&mut conn, hook, event, at, "SUCCESS", &one_to_hundred).await;
    let at = now - Duration::minutes(1);
    let event = delivery(&mut conn, "acme", hook, at, "FAILURE").await;
    attempts(&mut conn, hook, event, at, "SUCCESS", &[10, 10, 10]).await;
    attempts(&mut conn, hook, event, at, "FAILURE", &[700]).await;
    let old = now - Duration::hours(30);
    let event = delivery(&mut conn, "acme", hook, old, "FAILURE").await;
    attempts(&mut conn, hook, event, old, "FAILURE", &[5000; 50]).await;
    let event = delivery(&mut conn, "globex", other, at, "FAILURE").await;
    attempts(&mut conn, other, event, at, "FAILURE", &[9000; 50]).await;

    let l = stats::latency(&mut conn, hook, since)
        .await
        .expect("latency");
    // 104 times: 1–9, 10 four times, 11–100, 700. The 52nd is 49; the 103rd is 100.
    assert_eq!((l.attempts, l.p50_ms, l.p99_ms), (104, Some(49), Some(100)));

    let quiet = webhook(&mut conn, "acme", "https://quiet.example/").await;
    let l = stats::latency(&mut conn, quiet, since)
        .await
        .expect("latency");
    assert_eq!((l.attempts, l.p50_ms, l.p99_ms), (0, None, None));
}
