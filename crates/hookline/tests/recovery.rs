//! Bulk recovery, retention, erasure and recovery from a broker outage with real processes: the
//! `hookline` binary (API and worker in one process) on a fresh database and queue, real HTTP
//! receivers, a process killed mid-job and started again, and a broker cut off by a proxy.

use std::{
    collections::HashSet,
    process::{Child, Command, Stdio},
    time::Duration,
};

use chrono::{DateTime, Utc};
use diesel::{prelude::*, sql_types::BigInt};
use diesel_async::RunQueryDsl;
use hookline_api::auth::{mint_hs256, Brands, SCOPE_PUBLISH, SCOPE_WEBHOOKS};
use hookline_config::{ExposeSecret as _, Settings};
use hookline_queue::Names;
use hookline_store::testing::TestDatabase;
use hookline_testkit::receiver::{Mode, Receiver};
use serde_json::{json, Value};
use uuid::Uuid;

const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const SHIPPED: &str = "ORDER_EVENTS.OMS.ORDER_SHIPPED";
const CREATED: &str = "ORDER_EVENTS.OMS.ORDER_CONFIRMED";
const WAIT: Duration = Duration::from_secs(30);

/// One `hookline` process on `db`, killed when dropped.
struct Process {
    child: Child,
    base: String,
}

impl Process {
    async fn start(db: &TestDatabase, prefix: &str, env: &[(&str, &str)]) -> Process {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
            l.local_addr().expect("addr").port()
        };
        let mut command = Command::new(env!("CARGO_BIN_EXE_hookline"));
        command
            .env("HOOKLINE__DATABASE__URL", &db.url)
            .env("HOOKLINE__HTTP__BIND", format!("127.0.0.1:{port}"))
            .env("HOOKLINE__ADMIN__BIND", "127.0.0.1:0")
            .env("HOOKLINE__WORKER__HTTP_BIND", "127.0.0.1:0")
            .env("HOOKLINE__AMQP__PREFIX", prefix)
            .env("HOOKLINE__DELIVERY__ALLOW_HTTP", "true")
            .env("HOOKLINE__DELIVERY__ALLOW_PRIVATE_TARGETS", "true")
            // Two attempts, close together: failures become final quickly.
            .env("HOOKLINE__DELIVERY__RETRY_SCHEDULE", "100ms")
            .env("HOOKLINE__DELIVERY__RETRY_JITTER", "0")
            // Endpoints here fail on purpose; they must stay healthy so deliveries fail
            // rather than park.
            .env("HOOKLINE__HEALTH__FAILURE_THRESHOLD", "100000")
            .env("HOOKLINE__WORKER__SCHEDULER_INTERVAL", "100ms")
            .env("HOOKLINE__RATE_LIMIT__ENABLED", "false")
            .env(
                "HOOKLINE__LOG__LEVEL",
                if std::env::var_os("TEST_LOG").is_some() {
                    "info"
                } else {
                    "error"
                },
            )
            .stdin(Stdio::null());
        if std::env::var_os("TEST_LOG").is_none() {
            command.stdout(Stdio::null()).stderr(Stdio::null());
        }
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command.spawn().expect("the hookline binary starts");
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + WAIT;
        while !client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "hookline never became ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Process { child, base }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A database, a queue prefix and a client with tokens for two brands.
struct Setup {
    db: TestDatabase,
    prefix: String,
    client: reqwest::Client,
}

impl Setup {
    async fn new() -> Setup {
        Setup {
            db: TestDatabase::create().await,
            prefix: format!("hookline_test_{}", Uuid::new_v4().simple()),
            client: reqwest::Client::builder()
                .timeout(WAIT)
                .build()
                .expect("client"),
        }
    }

    fn token(brand: &str) -> String {
        mint_hs256(
            Settings::default().auth.hs256_secret.expose_secret(),
            Brands::List(vec![brand.into()]),
            &[SCOPE_WEBHOOKS.into(), SCOPE_PUBLISH.into()],
            Duration::from_secs(600),
            None,
        )
        .expect("token")
    }

    async fn call(
        &self,
        p: &Process,
        brand: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", p.base))
            .bearer_auth(Self::token(brand));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let text = res.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn post(&self, p: &Process, path: &str, body: Value) -> (u16, Value) {
        self.call(p, "acme", reqwest::Method::POST, path, Some(body))
            .await
    }

    async fn get(&self, p: &Process, path: &str) -> (u16, Value) {
        self.call(p, "acme", reqwest::Method::GET, path, None).await
    }

    async fn webhook(&self, p: &Process, endpoint: &str) -> String {
        let (status, body) = self
            .post(
                p,
                "/v1/acme/webhooks",
                json!({ "endpoint": endpoint, "events": [SHIPPED, CREATED] }),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().expect("id").to_owned()
    }

    /// Publishes `n` events of `event_type` in one batch; returns their ids.
    async fn publish(&self, p: &Process, event_type: &str, n: usize) -> Vec<String> {
        let events: Vec<Value> = (0..n)
            .map(|i| json!({ "type": event_type, "data": { "n": i } }))
            .collect();
        let (status, body) = self
            .post(p, "/v1/acme/events/batch", json!({ "events": events }))
            .await;
        assert_eq!(status, 202, "{body}");
        body["events"]
            .as_array()
            .expect("events")
            .iter()
            .map(|e| e["id"].as_str().expect("id").to_owned())
            .collect()
    }

    /// Deliveries of `webhook` per status.
    async fn count(&self, webhook: &str, status: &str) -> i64 {
        self.scalar(&format!(
            "SELECT count(*) AS n FROM deliveries WHERE webhook_id = '{webhook}' \
             AND status = '{status}'"
        ))
        .await
    }

    /// The `n` of a query returning one row.
    async fn scalar(&self, query: &str) -> i64 {
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let pool = self.db.pool();
        let mut conn = pool.get().await.expect("connection");
        let rows: Vec<N> = diesel::sql_query(query)
            .load(&mut conn)
            .await
            .expect("query");
        rows[0].n
    }

    async fn wait_count(&self, webhook: &str, status: &str, n: i64) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let got = self.count(webhook, status).await;
            if got == n {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{webhook}: {got} {status} deliveries, expected {n}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls a job until it is no longer RUNNING.
    async fn wait_job(&self, p: &Process, id: &str) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let (status, job) = self.get(p, &format!("/v1/acme/recoveries/{id}")).await;
            assert_eq!(status, 200, "{job}");
            if job["state"] != "RUNNING" {
                return job;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the job is still running: {job}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn sql(&self, statement: &str) {
        let pool = self.db.pool();
        let mut conn = pool.get().await.expect("connection");
        diesel::sql_query(statement)
            .execute(&mut conn)
            .await
            .expect("statement");
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let names = Names::from_prefix(&self.prefix);
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

/// The event ids in the bodies a receiver got.
fn received_ids(receiver: &Receiver) -> Vec<String> {
    receiver
        .received()
        .iter()
        .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
        .filter_map(|b| b["id"].as_str().map(str::to_owned))
        .collect()
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339()
}

async fn pause() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_by_window_and_status_requeues_exactly_the_matching_deliveries_once() {
    let s = Setup::new().await;
    let p = Process::start(&s.db, &s.prefix, &[]).await;
    // 2 attempts for each of the 10 events fail; every request after those succeeds.
    let receiver = Receiver::start(Mode::FailFirst { n: 20, status: 500 }).await;
    let hook = s.webhook(&p, &receiver.url()).await;

    let before = s.publish(&p, SHIPPED, 3).await;
    pause().await;
    let since = Utc::now();
    pause().await;
    let inside = s.publish(&p, SHIPPED, 4).await;
    let other_type = s.publish(&p, CREATED, 1).await;
    pause().await;
    let until = Utc::now();
    pause().await;
    let after = s.publish(&p, SHIPPED, 2).await;
    s.wait_count(&hook, "FAILURE", 10).await;
    assert_eq!(receiver.received().len(), 20);

    let path = format!("/v1/acme/webhooks/{hook}/recover");
    let filter = json!({
        "since": rfc3339(since), "until": rfc3339(until), "statuses": ["FAILURE"],
        "eventTypes": ["ORDER_EVENTS.OMS.ORDER_SHIPPED"],
    });
    let mut dry = filter.clone();
    dry["dryRun"] = json!(true);
    let (status, counted) = s.post(&p, &path, dry).await;
    assert_eq!(status, 200, "{counted}");
    assert_eq!(counted["matched"], 4, "{counted}");
    // A dry run changes nothing.
    assert_eq!(s.count(&hook, "FAILURE").await, 10);

    // Another brand's token gets nothing: not the webhook, not the job.
    let (status, body) = s
        .call(
            &p,
            "globex",
            reqwest::Method::POST,
            &path,
            Some(filter.clone()),
        )
        .await;
    assert_eq!(status, 403, "{body}");

    let (status, job) = s.post(&p, &path, filter.clone()).await;
    assert_eq!(status, 202, "{job}");
    assert_eq!(job["state"], "RUNNING", "{job}");
    assert_eq!(job["matched"], 4, "the dry run's count: {job}");
    let id = job["id"].as_str().expect("id").to_owned();
    let (status, body) = s
        .call(
            &p,
            "globex",
            reqwest::Method::GET,
            &format!("/v1/acme/recoveries/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = s
        .call(
            &p,
            "globex",
            reqwest::Method::GET,
            &format!("/v1/globex/recoveries/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 404, "{body}");

    let done = s.wait_job(&p, &id).await;
    assert_eq!(done["state"], "DONE", "{done}");
    assert_eq!(done["requeued"], 4, "{done}");
    assert_eq!(done["skipped"], 0, "{done}");
    s.wait_count(&hook, "SUCCESS", 4).await;
    receiver.wait_for(24, WAIT).await;
    let redelivered: HashSet<String> = received_ids(&receiver).into_iter().skip(20).collect();
    assert_eq!(
        redelivered,
        inside.iter().cloned().collect(),
        "exactly the window's"
    );
    for outside in before.iter().chain(&after).chain(&other_type) {
        let (_, e) = s
            .get(&p, &format!("/v1/acme/webhooks/{hook}/events/{outside}"))
            .await;
        assert_eq!(e["status"], "FAILURE", "outside the filter: {e}");
    }
    // The recovered deliveries went through the normal flow: a third attempt, recorded.
    let (_, e) = s
        .get(
            &p,
            &format!("/v1/acme/webhooks/{hook}/events/{}", inside[0]),
        )
        .await;
    assert_eq!(e["attempts"].as_array().map(Vec::len), Some(3), "{e}");

    // The same recovery again finds nothing left to requeue.
    let (status, again) = s.post(&p, &path, filter).await;
    assert_eq!(status, 202, "{again}");
    assert_eq!(again["matched"], 0, "{again}");
    assert_eq!(again["state"], "DONE", "{again}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received().len(), 24, "nothing was sent twice");

    let (status, list) = s.get(&p, "/v1/acme/recoveries").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(
        list["recoveries"].as_array().map(Vec::len),
        Some(2),
        "{list}"
    );
    let (_, list) = s
        .call(
            &p,
            "globex",
            reqwest::Method::GET,
            "/v1/globex/recoveries",
            None,
        )
        .await;
    assert_eq!(list["recoveries"], json!([]), "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_survives_the_death_of_its_process_and_a_cancelled_job_stops() {
    let s = Setup::new().await;
    // Slow jobs (20 deliveries a second) and a short lease, so the kill lands mid-job and
    // the next process takes the job over quickly.
    let env = [
        ("HOOKLINE__RECOVERY__RATE", "20"),
        ("HOOKLINE__RECOVERY__LEASE", "2s"),
        // Deliveries in flight when the process dies go out again soon.
        ("HOOKLINE__WORKER__LEASE", "3s"),
    ];
    let mut p = Process::start(&s.db, &s.prefix, &env).await;
    let failing = Receiver::start(Mode::FailFirst {
        n: 160,
        status: 500,
    })
    .await;
    let doomed = Receiver::start(Mode::FailFirst {
        n: 160,
        status: 500,
    })
    .await;
    let hook = s.webhook(&p, &failing.url()).await;
    let other = s.webhook(&p, &doomed.url()).await;
    let since = Utc::now() - chrono::Duration::minutes(1);
    let ids = s.publish(&p, SHIPPED, 80).await;
    s.wait_count(&hook, "FAILURE", 80).await;
    s.wait_count(&other, "FAILURE", 80).await;

    // A job on each webhook.
    let filter = json!({ "since": rfc3339(since) });
    let (status, job) = s
        .post(
            &p,
            &format!("/v1/acme/webhooks/{hook}/recover"),
            filter.clone(),
        )
        .await;
    assert_eq!(status, 202, "{job}");
    let survivor = job["id"].as_str().expect("id").to_owned();
    let (status, job) = s
        .post(&p, &format!("/v1/acme/webhooks/{other}/recover"), filter)
        .await;
    assert_eq!(status, 202, "{job}");
    let cancelled = job["id"].as_str().expect("id").to_owned();

    // Cancel the second part-way: what it requeued stays requeued, nothing more follows.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (status, job) = s
        .call(
            &p,
            "acme",
            reqwest::Method::DELETE,
            &format!("/v1/acme/recoveries/{cancelled}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{job}");
    assert_eq!(job["state"], "CANCELLED", "{job}");
    let requeued = job["requeued"].as_i64().expect("requeued");
    assert!(requeued > 0 && requeued < 80, "cancelled part-way: {job}");

    // Kill the process running the first job, mid-job.
    let (_, before_kill) = s.get(&p, &format!("/v1/acme/recoveries/{survivor}")).await;
    assert_eq!(before_kill["state"], "RUNNING", "{before_kill}");
    p.kill();
    let p = Process::start(&s.db, &s.prefix, &env).await;
    let done = s.wait_job(&p, &survivor).await;
    assert_eq!(done["state"], "DONE", "{done}");
    assert_eq!(done["matched"], 80, "{done}");
    assert_eq!(
        done["requeued"].as_i64().unwrap_or(0) + done["skipped"].as_i64().unwrap_or(0),
        80,
        "{done}"
    );
    assert_eq!(done["requeued"], 80, "nothing else touched them: {done}");
    s.wait_count(&hook, "SUCCESS", 80).await;
    let got: HashSet<String> = received_ids(&failing).into_iter().skip(160).collect();
    assert_eq!(
        got,
        ids.iter().cloned().collect(),
        "every requeued delivery arrived"
    );

    // The cancelled job's webhook: exactly what it requeued was delivered; the rest stayed
    // failed.
    s.wait_count(&other, "SUCCESS", requeued).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(s.count(&other, "SUCCESS").await, requeued);
    assert_eq!(s.count(&other, "FAILURE").await, 80 - requeued);
    let (_, job) = s.get(&p, &format!("/v1/acme/recoveries/{cancelled}")).await;
    assert_eq!(job["state"], "CANCELLED", "{job}");
    assert_eq!(job["requeued"], requeued, "{job}");
    let (status, body) = s
        .call(
            &p,
            "acme",
            reqwest::Method::DELETE,
            &format!("/v1/acme/recoveries/{cancelled}"),
            None,
        )
        .await;
    assert_eq!(status, 409, "only a running job can be cancelled: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skipped_deliveries_of_a_disabled_webhook_are_recovered_after_it_is_enabled() {
    let s = Setup::new().await;
    let p = Process::start(&s.db, &s.prefix, &[]).await;
    let receiver = Receiver::start(Mode::Succeed).await;
    let hook = s.webhook(&p, &receiver.url()).await;
    let path = format!("/v1/acme/webhooks/{hook}");
    let (status, body) = s
        .call(
            &p,
            "acme",
            reqwest::Method::PATCH,
            &path,
            Some(json!({ "enabled": false })),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let since = Utc::now() - chrono::Duration::minutes(1);
    let missed = s.publish(&p, SHIPPED, 3).await;
    s.wait_count(&hook, "SKIPPED", 3).await;
    let (status, body) = s
        .call(
            &p,
            "acme",
            reqwest::Method::PATCH,
            &path,
            Some(json!({ "enabled": true })),
        )
        .await;
    assert_eq!(status, 204, "{body}");

    let (status, job) = s
        .post(
            &p,
            &format!("{path}/recover"),
            json!({ "since": rfc3339(since), "statuses": ["SKIPPED"] }),
        )
        .await;
    assert_eq!(status, 202, "{job}");
    assert_eq!(job["matched"], 3, "{job}");
    let done = s.wait_job(&p, job["id"].as_str().expect("id")).await;
    assert_eq!(done["requeued"], 3, "{done}");
    receiver.wait_for(3, WAIT).await;
    let got: HashSet<String> = received_ids(&receiver).into_iter().collect();
    assert_eq!(got, missed.into_iter().collect());
    s.wait_count(&hook, "SUCCESS", 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_exactly_what_is_older_than_the_period_and_keeps_what_is_owed() {
    let s = Setup::new().await;
    let p = Process::start(
        &s.db,
        &s.prefix,
        &[
            ("HOOKLINE__RETENTION__PERIOD", "1h"),
            ("HOOKLINE__RETENTION__INTERVAL", "200ms"),
            // Small batches: the purge takes several statements.
            ("HOOKLINE__RETENTION__BATCH", "2"),
            // A failed delivery stays PENDING for an hour before its next attempt.
            ("HOOKLINE__DELIVERY__RETRY_SCHEDULE", "1h"),
        ],
    )
    .await;
    let ok = Receiver::start(Mode::Succeed).await;
    let down = Receiver::start(Mode::AlwaysFail { status: 503 }).await;
    let delivered = s.webhook(&p, &ok.url()).await;
    let failing = s.webhook(&p, &down.url()).await;
    // Every event goes to both webhooks; the failing one keeps its deliveries owed.
    let old_done = s.publish(&p, CREATED, 5).await;
    let old_owed = s.publish(&p, SHIPPED, 1).await;
    let recent = s.publish(&p, SHIPPED, 2).await;
    s.wait_count(&delivered, "SUCCESS", 8).await;
    s.wait_count(&failing, "PENDING", 8).await;
    let list = |ids: &[String]| {
        ids.iter()
            .map(|id| format!("'{id}'"))
            .collect::<Vec<_>>()
            .join(",")
    };
    // The five CREATED events end on the failing webhook too (as if its schedule ran out);
    // then they and the owed SHIPPED event are aged past the period.
    s.sql(&format!(
        "UPDATE deliveries SET status = 'FAILURE', next_attempt_at = NULL \
         WHERE webhook_id = '{failing}' AND event_id IN ({})",
        list(&old_done)
    ))
    .await;
    let aged: Vec<String> = old_done.iter().chain(&old_owed).cloned().collect();
    s.sql(&format!(
        "UPDATE events SET created = now() - interval '2 hours' WHERE id IN ({})",
        list(&aged)
    ))
    .await;

    let deadline = tokio::time::Instant::now() + WAIT;
    while s
        .scalar(&format!(
            "SELECT count(*) AS n FROM events WHERE id IN ({})",
            list(&old_done)
        ))
        .await
        > 0
    {
        assert!(tokio::time::Instant::now() < deadline, "not purged in time");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Their deliveries and attempts went with them.
    for table in ["deliveries", "attempts"] {
        let left = s
            .scalar(&format!(
                "SELECT count(*) AS n FROM {table} WHERE event_id IN ({})",
                list(&old_done)
            ))
            .await;
        assert_eq!(left, 0, "{table} of purged events");
    }
    for id in &old_done {
        let (status, body) = s
            .get(&p, &format!("/v1/acme/webhooks/{delivered}/events/{id}"))
            .await;
        assert_eq!(status, 404, "purged: {body}");
    }
    // Old but owed: kept whole, on both webhooks. Recent: kept.
    for hook in [&delivered, &failing] {
        let (status, body) = s
            .get(
                &p,
                &format!("/v1/acme/webhooks/{hook}/events/{}", old_owed[0]),
            )
            .await;
        assert_eq!(
            status, 200,
            "an event with an owed delivery is kept: {body}"
        );
        assert_eq!(body["attempts"].as_array().map(Vec::len), Some(1), "{body}");
    }
    for id in &recent {
        let (status, body) = s
            .get(&p, &format!("/v1/acme/webhooks/{delivered}/events/{id}"))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(s.scalar("SELECT count(*) AS n FROM events").await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_replaces_the_payload_ends_what_is_owed_and_blocks_retry_and_recovery() {
    let s = Setup::new().await;
    let p = Process::start(
        &s.db,
        &s.prefix,
        &[("HOOKLINE__DELIVERY__RETRY_SCHEDULE", "1h")],
    )
    .await;
    let down = Receiver::start(Mode::AlwaysFail { status: 503 }).await;
    let hook = s.webhook(&p, &down.url()).await;
    let since = Utc::now() - chrono::Duration::minutes(1);
    let ids = s.publish(&p, SHIPPED, 2).await;
    s.wait_count(&hook, "PENDING", 2).await;
    down.wait_for(2, WAIT).await;

    let (status, erased) = s
        .call(
            &p,
            "acme",
            reqwest::Method::DELETE,
            &format!("/v1/acme/events/{}/payload", ids[0]),
            None,
        )
        .await;
    assert_eq!(status, 200, "{erased}");
    assert!(erased["erased"].is_string(), "{erased}");
    // Another brand cannot erase it, nor learn it exists.
    let (status, _) = s
        .call(
            &p,
            "globex",
            reqwest::Method::DELETE,
            &format!("/v1/globex/events/{}/payload", ids[1]),
            None,
        )
        .await;
    assert_eq!(status, 404);

    let event = format!("/v1/acme/webhooks/{hook}/events/{}", ids[0]);
    let (_, body) = s.get(&p, &event).await;
    assert_eq!(body["data"], json!({}), "{body}");
    assert_eq!(body["erased"], erased["erased"], "{body}");
    assert_eq!(body["status"], "FAILURE", "{body}");
    assert_eq!(body["statusReason"], "payload_erased", "{body}");
    let (status, body) = s.post(&p, &format!("{event}/retry"), json!({})).await;
    assert_eq!(status, 409, "{body}");

    // The other event fails for good; a recovery of the webhook's failures leaves the erased
    // one out.
    s.sql(&format!(
        "UPDATE deliveries SET status = 'FAILURE', next_attempt_at = NULL \
         WHERE event_id = '{}'",
        ids[1]
    ))
    .await;
    let (status, counted) = s
        .post(
            &p,
            &format!("/v1/acme/webhooks/{hook}/recover"),
            json!({ "since": rfc3339(since), "dryRun": true }),
        )
        .await;
    assert_eq!(status, 200, "{counted}");
    assert_eq!(
        counted["matched"], 1,
        "the erased event is not recoverable: {counted}"
    );
}

/// Recovery after a broker outage, as the on-call engineer meets it: brand traffic keeps
/// arriving at 400 events a second while RabbitMQ is unreachable for 10 s (through a TCP proxy
/// the test cuts). Ingest keeps accepting (Postgres has every delivery); once the broker is
/// back, the backlog — including deliveries that were leased to the queue while it was
/// unreachable — is published again within seconds instead of after the 60 s lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_ten_second_broker_outage_every_event_arrives_within_seconds() {
    const RATE: u64 = 400;
    const BEFORE: Duration = Duration::from_secs(3);
    const OUTAGE: Duration = Duration::from_secs(10);
    let setup = Setup::new().await;
    let proxy = hookline_testkit::TcpProxy::start("127.0.0.1:5672".parse().expect("addr"))
        .await
        .expect("proxy");
    let amqp = format!("amqp://guest:guest@{}/%2f", proxy.addr());
    // Production timing: the default lease (1 min) and scheduler interval (1 s).
    let p = Process::start(
        &setup.db,
        &setup.prefix,
        &[
            ("HOOKLINE__AMQP__URL", &amqp),
            ("HOOKLINE__WORKER__SCHEDULER_INTERVAL", "1s"),
        ],
    )
    .await;
    let receiver = Receiver::start_lean(Mode::Succeed).await;
    setup.webhook(&p, &receiver.url()).await;

    // Publish at a steady rate from BEFORE ahead of the cut to the end of the outage.
    let total = RATE * (BEFORE + OUTAGE).as_secs();
    let started = tokio::time::Instant::now();
    let token = Setup::token("acme");
    let url = format!("{}/v1/acme/events", p.base);
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(64));
    let mut publishes = tokio::task::JoinSet::new();
    let cut = {
        async {
            tokio::time::sleep_until(started + BEFORE).await;
            proxy.cut();
            tokio::time::sleep_until(started + BEFORE + OUTAGE).await;
            proxy.restore();
        }
    };
    let publish_all = async {
        for i in 0..total {
            tokio::time::sleep_until(started + Duration::from_micros(i * 1_000_000 / RATE)).await;
            let permit = gate.clone().acquire_owned().await.expect("gate");
            let request = setup
                .client
                .post(&url)
                .bearer_auth(&token)
                .json(&json!({ "type": SHIPPED, "data": { "n": i } }));
            publishes.spawn(async move {
                let res = request.send().await.expect("publish");
                drop(permit);
                assert_eq!(res.status(), 202, "ingest refused during the outage");
                let body: Value = res.json().await.expect("json");
                body["id"].as_str().expect("id").to_owned()
            });
        }
        let mut ids = HashSet::new();
        while let Some(id) = publishes.join_next().await {
            ids.insert(id.expect("publish task"));
        }
        ids
    };
    let ((), published) = tokio::join!(cut, publish_all);
    let last_publish = std::time::Instant::now();
    assert_eq!(published.len() as u64, total);

    // Every event arrives, once the broker is back.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let arrived = loop {
        let got = receiver.received();
        let ids: HashSet<String> = got
            .iter()
            .map(|r| r.header("webhook-id").to_owned())
            .collect();
        if published.is_subset(&ids) {
            break got;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {total} events arrived within 60 s of the broker's return",
            ids.intersection(&published).count()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let last = arrived.iter().map(|r| r.at).max().expect("arrivals");
    let delay = last.saturating_duration_since(last_publish);
    eprintln!(
        "broker outage of {OUTAGE:?} at {RATE} events/s: last delivery {:.1} s after the last \
         publish",
        delay.as_secs_f64()
    );
    assert!(
        delay <= Duration::from_secs(15),
        "the last delivery came {delay:?} after the last publish"
    );
}
