//! Every connection of a pool runs with the session settings its options ask for: these carry
//! guarantees (a synchronous commit behind every 202, a bound on every statement) and the
//! worker's plans (no sequential or bitmap scans), and no JIT compilation anywhere.

use std::time::Duration;

use diesel::sql_types::Text;
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use hookline_store::{
    pool::{build_pool, PoolOptions},
    testing::TestDatabase,
};

#[derive(QueryableByName)]
struct Setting {
    #[diesel(sql_type = Text)]
    setting: String,
}

/// `current_setting(name)` on a connection of a pool built with `opts`.
async fn settings(db: &TestDatabase, opts: PoolOptions, names: &[&str]) -> Vec<String> {
    let pool = build_pool(&db.url, &opts).expect("pool");
    let mut conn = pool.get().await.expect("conn");
    let mut values = Vec::new();
    for name in names {
        let row: Setting = diesel::sql_query("SELECT current_setting($1) AS setting")
            .bind::<Text, _>(*name)
            .get_result(&mut conn)
            .await
            .expect("current_setting");
        values.push(row.setting);
    }
    values
}

const NAMES: [&str; 5] = [
    "jit",
    "synchronous_commit",
    "statement_timeout",
    "enable_seqscan",
    "enable_bitmapscan",
];

#[tokio::test]
async fn the_default_pool_commits_synchronously_and_bounds_statements() {
    let db = TestDatabase::create().await;
    let opts = PoolOptions {
        max_size: 1,
        statement_timeout: Duration::from_millis(1500),
        ..PoolOptions::default()
    };
    assert_eq!(
        settings(&db, opts, &NAMES).await,
        ["off", "on", "1500ms", "on", "on"]
    );
}

#[tokio::test]
async fn a_worker_style_pool_gets_its_asynchronous_commit_and_index_only_plans() {
    let db = TestDatabase::create().await;
    let opts = PoolOptions {
        max_size: 1,
        statement_timeout: Duration::from_secs(10),
        synchronous_commit: false,
        index_scans_only: true,
        ..PoolOptions::default()
    };
    assert_eq!(
        settings(&db, opts, &NAMES).await,
        ["off", "off", "10s", "off", "off"]
    );
}
