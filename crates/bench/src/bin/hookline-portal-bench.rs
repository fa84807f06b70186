//! What the brand portal's pages cost with a busy webhook: a scratch database holding one
//! brand whose webhook received `--events` events over the last 24 hours (deliveries and
//! attempts with mixed outcomes and realistic response times, seeded by bulk SQL), the API
//! started in this process, a session signed in through a portal link, then `--requests`
//! sequential GETs of the webhook's page (`/portal/webhooks/{id}`: settings, both charts, the
//! first page of the event log) and of the webhooks list (`/portal/webhooks`), after
//! `--warmup` of each. For each page it prints the server's own time (its `Server-Timing:
//! app;dur=` header, see `crates/api/src/portal/mod.rs`) and the client's wall time, p50 / p95
//! / p99 / max.
//!
//! The broker is not needed: the API runs with an unreachable one (pages never publish).
//!
//! ```sh
//! cargo run --release -p hookline-bench --bin hookline-portal-bench -- --events 10000
//! ```

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Parser;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, SimpleAsyncConnection as _};
use hookline_api::{
    auth::{mint_hs256, Brands, SCOPE_WEBHOOKS},
    Application,
};
use hookline_config::ExposeSecret as _;
use hookline_config::Settings;
use serde_json::{json, Value};
use uuid::Uuid;

#[derive(Debug, Parser)]
#[command(name = "hookline-portal-bench")]
struct Args {
    /// Server to create the scratch database on (it is dropped at the end).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    server: String,
    /// Events (each with its delivery and attempts) over the last 24 hours.
    #[arg(long, default_value_t = 10_000)]
    events: u64,
    /// Measured requests per page.
    #[arg(long, default_value_t = 200)]
    requests: usize,
    /// Unmeasured requests per page first (connections, prepared statements, caches).
    #[arg(long, default_value_t = 20)]
    warmup: usize,
}

const BRAND: &str = "bench-portal";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let name = format!("hookline_portal_bench_{}", Uuid::new_v4().simple());
    let server = args.server.trim_end_matches('/');
    let url = format!("{server}/{name}");
    hookline_store::migrate::ensure_database(&url)
        .await
        .context("creating the scratch database")?;
    let result = run(&url, &args).await;
    let mut admin = AsyncPgConnection::establish(&format!("{server}/postgres")).await?;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await?;
    result
}

async fn run(url: &str, args: &Args) -> anyhow::Result<()> {
    hookline_store::migrate::run_migrations(url).await?;
    let mut settings = Settings::default();
    settings.database.url = url.to_owned().into();
    settings.database.migrate_on_start = false;
    settings.http.bind = "127.0.0.1:0".into();
    settings.admin.bind = "127.0.0.1:0".into();
    // Nothing listens on port 1: the API runs with the broker down, which pages never need.
    settings.amqp.url = "amqp://guest:guest@127.0.0.1:1/%2f".to_owned().into();
    settings.amqp.prefix = format!("hookline_portal_bench_{}", Uuid::new_v4().simple());
    let app = Application::build(settings.clone())
        .await
        .context("starting the API")?;
    let base = format!("http://127.0.0.1:{}", app.port());
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    let result = measure(&base, url, &settings, args).await;
    handle.stop(true).await;
    result
}

async fn measure(base: &str, url: &str, settings: &Settings, args: &Args) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()?;
    let token = mint_hs256(
        settings.auth.hs256_secret.expose_secret(),
        Brands::List(vec![BRAND.into()]),
        &[SCOPE_WEBHOOKS.into()],
        Duration::from_secs(3600),
        None,
    )?;
    // The webhook through the API, so its secret is sealed as the page expects.
    let res = client
        .post(format!("{base}/v1/{BRAND}/webhooks"))
        .bearer_auth(&token)
        .json(&json!({ "endpoint": "https://example.com/hook", "events": ["ORDER_EVENTS"] }))
        .send()
        .await?;
    let webhook: Value = expect_json(res, 201)
        .await
        .context("creating the webhook")?;
    let webhook_id = webhook["id"].as_str().context("webhook id")?.to_owned();

    let started = Instant::now();
    seed(url, &webhook_id, args.events).await?;
    println!(
        "seeded {} events with their deliveries and attempts in {:.1?}",
        args.events,
        started.elapsed()
    );

    let res = client
        .post(format!("{base}/v1/{BRAND}/portal-links"))
        .bearer_auth(&token)
        .send()
        .await?;
    let link: Value = expect_json(res, 201).await.context("the portal link")?;
    let link = link["url"].as_str().context("link url")?;
    // The link answers a page that moves on by itself (or a redirect) with the cookie.
    let res = client.get(link).send().await?;
    if !matches!(res.status().as_u16(), 200 | 303) {
        bail!("signing in answered {}", res.status());
    }
    let cookie = res
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("hookline_portal="))
        .and_then(|v| v.split(';').next())
        .context("no session cookie")?
        .to_owned();

    println!(
        "{} requests per page after {} warm-up, one at a time; times in ms",
        args.requests, args.warmup
    );
    println!(
        "{:<28} {:>8} {:>8} {:>8} {:>8}",
        "page / clock", "p50", "p95", "p99", "max"
    );
    for (label, path) in [
        ("webhook page", format!("/portal/webhooks/{webhook_id}")),
        ("webhooks list", "/portal/webhooks".to_owned()),
    ] {
        let mut server = Vec::with_capacity(args.requests);
        let mut wall = Vec::with_capacity(args.requests);
        for i in 0..args.warmup + args.requests {
            let sent = Instant::now();
            let res = client
                .get(format!("{base}{path}"))
                .header(reqwest::header::COOKIE, &cookie)
                .send()
                .await?;
            let status = res.status();
            let timing = server_time(&res);
            let body = res.bytes().await?;
            let elapsed = sent.elapsed();
            if status != 200 {
                bail!("{path} answered {status}");
            }
            if i == 0 && label == "webhook page" && !contains(&body, "svg") {
                bail!("{path} has no chart");
            }
            if i >= args.warmup {
                server.push(timing.context("no Server-Timing app;dur= header")?);
                wall.push(elapsed.as_secs_f64() * 1000.0);
            }
        }
        print_row(&format!("{label} (server)"), &mut server);
        print_row(&format!("{label} (client)"), &mut wall);
    }
    Ok(())
}

/// One event per `events / 24 h` over the last day, newest now; 90 % delivered at the first
/// attempt, 7 % failed after three, 3 % still owed after three. Event ids are UUIDv7 of their
/// creation time, as the API makes them (the event log pages by id).
async fn seed(url: &str, webhook_id: &str, events: u64) -> anyhow::Result<()> {
    let mut conn = AsyncPgConnection::establish(url).await?;
    conn.batch_execute(&format!(
        "CREATE TEMP TABLE seed AS \
         SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) PLACING \
                    substring(int8send(floor(extract(epoch FROM t) * 1000)::bigint) FROM 3) \
                    FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid AS id, t, r \
         FROM (SELECT now() - (g * interval '24 hours' / {events}) AS t, random() AS r \
               FROM generate_series(1, {events}) AS g) s"
    ))
    .await
    .context("seed rows")?;
    conn.batch_execute(&format!(
        "INSERT INTO events (id, brand_id, event_type, payload, created) \
         SELECT id, '{BRAND}', 'ORDER_EVENTS.OMS.ORDER_SHIPPED', \
             jsonb_build_object('orderId', 'o-' || left(id::text, 8), 'items', 3), t \
         FROM seed ORDER BY t"
    ))
    .await
    .context("events")?;
    conn.batch_execute(&format!(
        "INSERT INTO deliveries (webhook_id, event_id, status, status_reason, attempt_count, \
             next_attempt_at, created, updated) \
         SELECT '{webhook_id}', id, \
             CASE WHEN r < 0.90 THEN 'SUCCESS' WHEN r < 0.97 THEN 'FAILURE' ELSE 'PENDING' END, \
             NULL, CASE WHEN r < 0.90 THEN 1 ELSE 3 END, \
             CASE WHEN r >= 0.97 THEN now() + interval '1 hour' END, t, t \
         FROM seed ORDER BY t"
    ))
    .await
    .context("deliveries")?;
    conn.batch_execute(&format!(
        "INSERT INTO attempts (id, webhook_id, event_id, created, status, request_endpoint, \
             request_headers, response_status_code, response_headers, response_body, \
             response_time_ms, error) \
         SELECT gen_random_uuid(), '{webhook_id}', id, \
             least(t + n * interval '30 seconds', now()), \
             CASE WHEN r < 0.90 THEN 'SUCCESS' ELSE 'FAILURE' END, \
             'https://example.com/hook', '{{\"content-type\": \"application/json\"}}', \
             CASE WHEN r < 0.90 THEN 200 WHEN n = 1 THEN NULL ELSE 503 END, \
             CASE WHEN r < 0.90 OR n <> 1 THEN '{{}}'::jsonb END, \
             CASE WHEN r < 0.90 THEN 'ok' WHEN n <> 1 THEN 'unavailable' END, \
             CASE WHEN r < 0.90 THEN (15 + exp(random() * 5.5))::int \
                 WHEN n = 1 THEN 10000 ELSE (200 + random() * 2000)::int END, \
             CASE WHEN r >= 0.90 AND n = 1 THEN 'timeout' END \
         FROM seed, generate_series(0, 2) AS n \
         WHERE n = 0 OR r >= 0.90 ORDER BY 4"
    ))
    .await
    .context("attempts")?;
    // What autovacuum would have done by the time anyone looks: statistics for the planner
    // and the visibility map for index-only scans. One statement per call: VACUUM cannot run
    // in the implicit transaction of a multi-statement string.
    for table in ["events", "deliveries", "attempts", "webhooks"] {
        conn.batch_execute(&format!("VACUUM ANALYZE {table}"))
            .await?;
    }
    Ok(())
}

async fn expect_json(res: reqwest::Response, status: u16) -> anyhow::Result<Value> {
    let got = res.status().as_u16();
    let body = res.text().await?;
    if got != status {
        bail!("answered {got} instead of {status}: {body}");
    }
    Ok(serde_json::from_str(&body)?)
}

fn contains(body: &[u8], needle: &str) -> bool {
    body.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// `app;dur=12.3` → 12.3.
fn server_time(res: &reqwest::Response) -> Option<f64> {
    res.headers()
        .get("server-timing")?
        .to_str()
        .ok()?
        .split(',')
        .find_map(|metric| {
            let mut parts = metric.trim().split(';');
            (parts.next()? == "app")
                .then(|| parts.find_map(|p| p.trim().strip_prefix("dur=")?.parse().ok()))
                .flatten()
        })
}

/// Nearest-rank percentiles.
fn print_row(label: &str, samples: &mut [f64]) {
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
        samples[rank - 1]
    };
    println!(
        "{label:<28} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
        at(0.50),
        at(0.95),
        at(0.99),
        samples[samples.len() - 1]
    );
}
