//! What one scheduler round costs under a large backlog, from Postgres's own account:
//! `EXPLAIN (ANALYZE, BUFFERS)` of the scheduler's claim on a fresh database holding `--rows`
//! pending deliveries that sit in the queue (leased) and `--due` that are really due.
//!
//! Two shapes of the same backlog are measured:
//! - `leased-due-in-past`: leased rows keep the due time they had when published, an hour ago
//!   (how rows were written before leases moved `next_attempt_at`): the claim walks past every
//!   one of them to reach the few that are due;
//! - `leased-due-at-lease-end`: leased rows are due when their lease runs out (how every
//!   statement writes them now): the claim reads only what is due.
//!
//! ```sh
//! cargo run --release -p hookline-bench --bin hookline-explain-scheduler -- --rows 1000000
//! ```

use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use diesel::{sql_types::Text, QueryableByName};
use diesel_async::{
    AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _, SimpleAsyncConnection as _,
};
use uuid::Uuid;

#[derive(Debug, Parser)]
#[command(name = "hookline-explain-scheduler")]
struct Args {
    /// Server to create the scratch database on (it is dropped at the end).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    server: String,
    /// Pending deliveries leased to the queue (the backlog the scheduler must not scan).
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// Deliveries really due (what one round claims, at most its batch of 500).
    #[arg(long, default_value_t = 500)]
    due: u64,
}

#[derive(QueryableByName)]
struct PlanLine {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    line: String,
}

/// The scheduler's claim (`hookline_store::deliveries::claim_due`), its row-picking part.
const CLAIM: &str = "SELECT webhook_id, event_id FROM deliveries \
    WHERE status = 'PENDING' AND next_attempt_at <= now() \
      AND (leased_until IS NULL OR leased_until <= now()) \
    ORDER BY next_attempt_at LIMIT 500 FOR UPDATE SKIP LOCKED";

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let name = format!("hookline_explain_{}", Uuid::new_v4().simple());
    let server = args.server.trim_end_matches('/');
    let url = format!("{server}/{name}");
    hookline_store::migrate::ensure_database(&url)
        .await
        .context("creating the scratch database")?;
    let result = measure(&url, &args).await;
    let mut admin = AsyncPgConnection::establish(&format!("{server}/postgres")).await?;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await?;
    result
}

async fn measure(url: &str, args: &Args) -> anyhow::Result<()> {
    hookline_store::migrate::run_migrations(url).await?;
    let mut conn = AsyncPgConnection::establish(url).await?;
    let webhook = Uuid::new_v4();
    conn.batch_execute(&format!(
        "INSERT INTO webhooks (id, brand_id, endpoint, event_types, enabled, secret) \
         VALUES ('{webhook}', 'explain', 'https://example.com/h', '{{ORDER_EVENTS}}', true, \
                 'not-a-secret-just-a-row')"
    ))
    .await
    .context("the webhook row")?;
    println!(
        "seeding {} leased and {} due deliveries…",
        args.rows, args.due
    );
    let started = std::time::Instant::now();
    let chunk = 100_000u64;
    let mut done = 0;
    while done < args.rows + args.due {
        let n = chunk.min(args.rows + args.due - done);
        // The first `rows` are leased to the queue for an hour (the seeding must not outlive
        // their leases); the rest are due now.
        conn.batch_execute(&format!(
            "WITH ev AS ( \
                 INSERT INTO events (id, brand_id, event_type, payload) \
                 SELECT gen_random_uuid(), 'explain', 'ORDER_EVENTS.SHIPPED', '{{}}' \
                 FROM generate_series(1, {n}) RETURNING id \
             ) \
             INSERT INTO deliveries (webhook_id, event_id, status, next_attempt_at, leased_until) \
             SELECT '{webhook}', id, 'PENDING', \
                 CASE WHEN {done} + row_number() OVER () <= {rows} \
                     THEN now() + interval '1 hour' ELSE now() - interval '1 second' END, \
                 CASE WHEN {done} + row_number() OVER () <= {rows} \
                     THEN now() + interval '1 hour' END \
             FROM ev",
            rows = args.rows,
        ))
        .await
        .context("seeding")?;
        done += n;
    }
    // One statement per call: VACUUM cannot run in the implicit transaction of a multi-statement
    // string.
    conn.batch_execute("VACUUM ANALYZE deliveries").await?;
    conn.batch_execute("VACUUM ANALYZE events").await?;
    println!("seeded in {:.1?}", started.elapsed());
    // The worker's session settings (crates/store/src/pool.rs).
    conn.batch_execute("SET jit = off; SET enable_seqscan = off; SET enable_bitmapscan = off")
        .await?;

    explain(&mut conn, "leased-due-at-lease-end (as written now)").await?;
    conn.batch_execute(
        "UPDATE deliveries SET next_attempt_at = now() - interval '1 hour' \
         WHERE leased_until IS NOT NULL",
    )
    .await?;
    conn.batch_execute("VACUUM ANALYZE deliveries").await?;
    explain(&mut conn, "leased-due-in-past (as written before)").await?;
    Ok(())
}

async fn explain(conn: &mut AsyncPgConnection, label: &str) -> anyhow::Result<()> {
    // Warm: the first run reads the index from disk.
    let mut best: Option<(Duration, Vec<String>)> = None;
    for _ in 0..3 {
        conn.batch_execute("BEGIN").await?;
        let lines: Vec<PlanLine> = diesel::sql_query(format!("EXPLAIN (ANALYZE, BUFFERS) {CLAIM}"))
            .load(conn)
            .await?;
        conn.batch_execute("ROLLBACK").await?;
        let lines: Vec<String> = lines.into_iter().map(|l| l.line).collect();
        let ms = lines
            .iter()
            .find_map(|l| l.strip_prefix("Execution Time: "))
            .and_then(|t| t.trim_end_matches(" ms").parse::<f64>().ok())
            .unwrap_or(f64::MAX);
        let took = Duration::from_secs_f64(ms / 1000.0);
        if best.as_ref().is_none_or(|(b, _)| took < *b) {
            best = Some((took, lines));
        }
    }
    if let Some((took, lines)) = best {
        println!(
            "\n== {label}: best of 3, {:.3} ms",
            took.as_secs_f64() * 1000.0
        );
        for line in lines {
            println!("   {line}");
        }
    }
    Ok(())
}
