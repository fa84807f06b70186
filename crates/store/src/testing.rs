//! Per-test databases (feature `testing`): each test gets a database of its own, cloned from a
//! template that is migrated once per migration set, so tests run in parallel without seeing
//! each other's rows. The database is dropped when the [`TestDatabase`] is.
//!
//! The server is `HOOKLINE_TEST_DATABASE_URL` (any database on it; default
//! `postgres://postgres@127.0.0.1:5432/postgres`).

use std::hash::{DefaultHasher, Hash as _, Hasher as _};

use diesel::{Connection as _, RunQueryDsl as _};
use diesel_async::{async_connection_wrapper::AsyncConnectionWrapper, AsyncPgConnection};
use url::Url;

use crate::{
    migrate::{quote_ident, run_migrations, MIGRATIONS},
    pool::{build_pool, PoolOptions},
    Pool,
};

type SyncPg = AsyncConnectionWrapper<AsyncPgConnection>;

/// `secret` sealed for the webhook `id` under the built-in dev key (the default
/// configuration's), to build a [`crate::models::NewWebhook`] in tests.
pub fn sealed(id: uuid::Uuid, secret: &str) -> crate::models::StoredSecret {
    let secret = hookline_domain::WebhookSecret::parse(secret).expect("a valid test secret");
    crate::models::StoredSecret::seal(&hookline_domain::Keyring::dev(), id, &secret)
}

/// Serialises template creation across test processes.
const TEMPLATE_LOCK: i64 = 0x686f_6f6b_7465_7374;

pub fn server_url() -> String {
    std::env::var("HOOKLINE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn url_for(server: &str, database: &str) -> String {
    let mut url = Url::parse(server).expect("HOOKLINE_TEST_DATABASE_URL is a valid URL");
    url.set_path(&format!("/{database}"));
    url.into()
}

/// The template's name changes whenever the migrations do, so a stale template is never used.
fn template_name() -> String {
    let mut hasher = DefaultHasher::new();
    let migrations = diesel::migration::MigrationSource::<diesel::pg::Pg>::migrations(&MIGRATIONS)
        .expect("embedded migrations load");
    for m in migrations {
        m.name().to_string().hash(&mut hasher);
    }
    // The SQL is part of the identity too: editing a migration in place must rebuild.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    for migration in files {
        std::fs::read_to_string(migration.join("up.sql"))
            .unwrap_or_default()
            .hash(&mut hasher);
    }
    format!("hookline_tpl_{:016x}", hasher.finish())
}

#[derive(diesel::QueryableByName)]
struct Exists {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    exists: bool,
}

fn database_exists(conn: &mut SyncPg, name: &str) -> bool {
    diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS exists")
        .bind::<diesel::sql_types::Text, _>(name)
        .get_result::<Exists>(conn)
        .expect("query pg_database")
        .exists
}

fn admin_connection() -> SyncPg {
    let url = server_url();
    SyncPg::establish(&url).unwrap_or_else(|e| panic!("connect to the test Postgres at {url}: {e}"))
}

#[derive(Debug)]
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    /// A fresh, migrated database of this test's own.
    pub async fn create() -> TestDatabase {
        let server = server_url();
        let template = template_name();
        let name = format!("hookline_test_{}", uuid::Uuid::new_v4().simple());
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (t, n, s) = (template.clone(), name.clone(), server.clone());
        // Sync diesel on a thread of its own: no async runtime underneath to block.
        std::thread::spawn(move || {
            let _ = tx.send(create_from_template(&s, &t, &n));
        });
        let needs_migration = rx.await.expect("test database thread");
        if let Some(building) = needs_migration {
            panic!("template {building} could not be built");
        }
        TestDatabase {
            url: url_for(&server, &name),
            name,
        }
    }

    /// A small pool on this database, for tests that look at rows directly.
    pub fn pool(&self) -> Pool {
        build_pool(
            &self.url,
            &PoolOptions {
                max_size: 4,
                ..PoolOptions::default()
            },
        )
        .expect("build test pool")
    }
}

/// Builds the template if missing (under a lock, by migrating a scratch database and renaming
/// it, so a half-built template is never visible), then clones it. Returns the name of a
/// template that failed to build, if any.
fn create_from_template(server: &str, template: &str, name: &str) -> Option<String> {
    let mut admin = admin_connection();
    if !database_exists(&mut admin, template) {
        diesel::sql_query(format!("SELECT pg_advisory_lock({TEMPLATE_LOCK})"))
            .execute(&mut admin)
            .expect("take the template lock");
        if !database_exists(&mut admin, template) {
            let scratch = format!("{template}_build");
            let sql = format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote_ident(&scratch)
            );
            diesel::sql_query(sql)
                .execute(&mut admin)
                .expect("drop scratch template");
            diesel::sql_query(format!("CREATE DATABASE {}", quote_ident(&scratch)))
                .execute(&mut admin)
                .expect("create scratch template");
            let url = url_for(server, &scratch);
            let migrated = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(run_migrations(&url));
            if let Err(e) = migrated {
                eprintln!("migrating {scratch}: {e}");
                return Some(template.to_owned());
            }
            let sql = format!(
                "ALTER DATABASE {} RENAME TO {}",
                quote_ident(&scratch),
                quote_ident(template)
            );
            diesel::sql_query(sql)
                .execute(&mut admin)
                .expect("publish the template");
        }
        diesel::sql_query(format!("SELECT pg_advisory_unlock({TEMPLATE_LOCK})"))
            .execute(&mut admin)
            .expect("release the template lock");
    }
    let sql = format!(
        "CREATE DATABASE {} TEMPLATE {}",
        quote_ident(name),
        quote_ident(template)
    );
    diesel::sql_query(sql)
        .execute(&mut admin)
        .expect("clone the template");
    None
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Runs on its own thread: Drop may be called inside an async runtime.
        let dropped = std::thread::spawn(move || {
            let mut admin = admin_connection();
            let sql = format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote_ident(&name)
            );
            diesel::sql_query(sql).execute(&mut admin).map(|_| ())
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("could not drop test database {}: {e}", self.name);
        }
    }
}

/// Sets a webhook's health state directly, as another process would have (tests of what a
/// worker does when the state changed after a delivery was published). Only the state and
/// `enabled`: nothing is parked or released.
pub async fn set_health(
    conn: &mut diesel_async::AsyncPgConnection,
    webhook_id: uuid::Uuid,
    state: &str,
) {
    use crate::schema::webhooks;
    use diesel::{ExpressionMethods as _, QueryDsl as _};
    let update = diesel::update(webhooks::table.filter(webhooks::id.eq(webhook_id))).set((
        webhooks::health.eq(state),
        webhooks::enabled.eq(state != "disabled"),
    ));
    diesel_async::RunQueryDsl::execute(update, conn)
        .await
        .expect("set health");
}
