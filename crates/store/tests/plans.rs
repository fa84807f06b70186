//! The worker's statements look deliveries up by primary key, whatever the table looked like
//! when the plan was made. A connection keeps a prepared statement's generic plan for its
//! life: made on a young table it chose a sequential scan, and with statistics that saw few
//! pending deliveries it read every pending row through the scheduler's index, so each batch
//! cost as much as the whole backlog.

use diesel::sql_types::Text;
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use hookline_store::{
    deliveries::{RECORD, RECORD_DELIVERED},
    pool::{build_pool, PoolOptions},
    testing::TestDatabase,
    worker_queries::TAKE,
};

#[derive(QueryableByName)]
struct PlanLine {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    line: String,
}

/// The generic plan of `text`, prepared with `types`, executed with `args`, on a connection
/// set up as the worker's are.
async fn generic_plan(db: &TestDatabase, text: &str, types: &str, args: &str) -> String {
    let pool = build_pool(
        &db.url,
        &PoolOptions {
            max_size: 1,
            index_scans_only: true,
            ..PoolOptions::default()
        },
    )
    .expect("pool");
    let mut conn = pool.get().await.expect("conn");
    for sql in [
        "SET plan_cache_mode = force_generic_plan".to_owned(),
        format!("PREPARE statement({types}) AS {text}"),
    ] {
        diesel::sql_query(sql)
            .execute(&mut conn)
            .await
            .expect("prepare");
    }
    let lines: Vec<PlanLine> = diesel::sql_query(format!("EXPLAIN EXECUTE statement({args})"))
        .load(&mut conn)
        .await
        .expect("explain");
    lines
        .into_iter()
        .map(|l| l.line)
        .collect::<Vec<_>>()
        .join("\n")
}

fn assert_by_key(plan: &str) {
    assert!(plan.contains("deliveries_pkey"), "{plan}");
    // The health counters look webhooks up by their key too.
    assert!(!plan.contains("Seq Scan on webhooks w\n"), "{plan}");
    // By both keys: the webhook id alone reads every delivery of a busy webhook per row.
    let lines: Vec<&str> = plan.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.contains("Index Scan using deliveries_pkey") {
            let cond = lines.get(i + 1).copied().unwrap_or_default();
            assert!(
                cond.contains("Index Cond") && cond.contains("event_id"),
                "deliveries looked up without their event id:\n{plan}"
            );
        }
    }
    for scan in [
        "Seq Scan on deliveries",
        "Bitmap Heap Scan on deliveries",
        "deliveries_due_idx",
    ] {
        assert!(!plan.contains(scan), "{scan} in\n{plan}");
    }
}

#[tokio::test]
async fn take_and_record_find_deliveries_by_primary_key_on_a_young_table() {
    let db = TestDatabase::create().await;
    let take = generic_plan(
        &db,
        TAKE,
        "uuid[], uuid[], bigint, bigint",
        "'{}', '{}', 1000, 65536",
    )
    .await;
    assert_by_key(&take);
    let record = generic_plan(
        &db,
        RECORD,
        "uuid[], uuid[], uuid[], timestamptz[], text[], text[], jsonb[], int4[], jsonb[], \
         text[], int4[], text[], text[], timestamptz[], text[], int4",
        &format!("{}, 5", ["'{}'"; 15].join(", ")),
    )
    .await;
    assert_by_key(&record);
    let delivered = generic_plan(
        &db,
        RECORD_DELIVERED,
        "uuid[], uuid[], uuid[], timestamptz[], text[], text[], jsonb[], int4[], jsonb[], \
         text[], int4[], text[]",
        &["'{}'"; 12].join(", "),
    )
    .await;
    assert_by_key(&delivered);
}
