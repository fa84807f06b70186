//! `spawn_app`: the real server on port 0 against a fresh database cloned from a migrated
//! template, dropped when the test ends. Silent unless `TEST_LOG=1`.

use std::{
    process::{Command, Output, Stdio},
    time::Duration,
};

use hookline_api::{
    auth::{mint_hs256, AllBrands, Brands, SCOPE_PUBLISH, SCOPE_WEBHOOKS},
    Application,
};
use hookline_config::{ExposeSecret, Settings};
use hookline_store::testing::TestDatabase;
use serde_json::{json, Value};

pub struct TestApp {
    pub base: String,
    /// The admin listener (`admin.bind`): `/metrics` and the probes.
    pub admin_base: String,
    pub client: reqwest::Client,
    pub settings: Settings,
    /// Kept for its `Drop`: the database lives exactly as long as the app.
    db: TestDatabase,
    handle: actix_web::dev::ServerHandle,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Stop accepting at once; the database is dropped right after by `TestDatabase`.
        drop(self.handle.stop(false));
        // Remove this test's exchange and queue (on a thread: Drop may run inside a runtime).
        let names = self.queue_names();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = runtime {
                let _ = rt.block_on(hookline_queue::delete_topology(AMQP_URL, &names));
            }
        })
        .join();
    }
}

/// The real RabbitMQ of this machine (tests use their own exchange and queue names on it).
pub const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

pub fn init_logs() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = hookline_api::telemetry::init(&Settings::default().log, "hookline-test");
    }
}

/// Settings for a test: its own database, port 0, and production defaults otherwise.
pub fn test_settings(db: &TestDatabase) -> Settings {
    let mut settings = Settings::default();
    settings.database.url = db.url.clone().into();
    settings.database.migrate_on_start = false;
    settings.http.bind = "127.0.0.1:0".into();
    settings.admin.bind = "127.0.0.1:0".into();
    settings.amqp.url = AMQP_URL.into();
    settings.amqp.prefix = format!("hookline_test_{}", uuid::Uuid::new_v4().simple());
    settings
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    init_logs();
    let db = TestDatabase::create().await;
    let mut settings = test_settings(&db);
    configure(&mut settings);
    let app = Application::build(settings.clone())
        .await
        .expect("application builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    let admin_base = format!("http://127.0.0.1:{}", app.admin_port());
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client builds");
    TestApp {
        base,
        admin_base,
        client,
        settings,
        db,
        handle,
    }
}

impl TestApp {
    pub fn queue_names(&self) -> hookline_queue::Names {
        hookline_queue::Names::from_prefix(&self.settings.amqp.prefix)
    }

    /// A pool on this test's database, to look at rows directly.
    pub fn pool(&self) -> hookline_store::Pool {
        self.db.pool()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("{}{path}", self.admin_base)
    }

    /// A token for `brands` with `scopes`, signed with the app's HS256 secret.
    pub fn token_with(&self, brands: Brands, scopes: &[&str]) -> String {
        let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
        mint_hs256(
            self.settings.auth.hs256_secret.expose_secret(),
            brands,
            &scopes,
            Duration::from_secs(600),
            Some("test".into()),
        )
        .expect("token")
    }

    /// A brand's own token: manage webhooks and publish events for `brand` only.
    pub fn token(&self, brand: &str) -> String {
        self.token_with(
            Brands::List(vec![brand.into()]),
            &[SCOPE_WEBHOOKS, SCOPE_PUBLISH],
        )
    }

    pub fn admin_token(&self) -> String {
        self.token_with(
            Brands::All(AllBrands::All),
            &[SCOPE_WEBHOOKS, SCOPE_PUBLISH],
        )
    }

    pub async fn create_webhook(&self, brand: &str, body: Value) -> reqwest::Response {
        self.client
            .post(self.url(&format!("/v1/{brand}/webhooks")))
            .bearer_auth(self.token(brand))
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    /// Creates a webhook that must succeed and returns its response body.
    pub async fn webhook(&self, brand: &str, endpoint: &str, events: &[&str]) -> Value {
        let res = self
            .create_webhook(brand, json!({ "endpoint": endpoint, "events": events }))
            .await;
        assert_eq!(res.status(), 201, "create webhook");
        res.json().await.expect("json")
    }

    pub async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }
}

/// Reads a JSON body, asserting the status first.
pub async fn json_of(res: reqwest::Response, status: u16) -> Value {
    let actual = res.status().as_u16();
    let text = res.text().await.expect("body");
    assert_eq!(actual, status, "unexpected status; body: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Asserts a flexEngage `APIErrorResponse` with `code`.
pub async fn assert_flex_error(res: reqwest::Response, status: u16, code: &str) -> Value {
    let body = json_of(res, status).await;
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["message"].is_string() && body["description"].is_string(),
        "{body}"
    );
    body
}

/// Asserts an FDX error body whose first error has `code`.
pub async fn assert_fdx_error(res: reqwest::Response, status: u16, code: &str) -> Value {
    let body = json_of(res, status).await;
    assert_eq!(body["status"], "error", "{body}");
    assert_eq!(body["errors"][0]["code"], code, "{body}");
    assert!(body["errors"][0]["description"].is_string(), "{body}");
    body
}

/// Runs the `hookline-api` binary with `args` on the database `db_url` and waits for it.
pub async fn run_api(db_url: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hookline-api"));
    command
        .args(args)
        .env("HOOKLINE__DATABASE__URL", db_url)
        .env("HOOKLINE__AMQP__URL", AMQP_URL)
        .env("HOOKLINE__ADMIN__BIND", "127.0.0.1:0")
        .env("HOOKLINE__LOG__LEVEL", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let child = command.spawn().expect("start hookline-api");
    let output = tokio::task::spawn_blocking(move || child.wait_with_output());
    tokio::time::timeout(Duration::from_secs(60), output)
        .await
        .expect("hookline-api finished in time")
        .expect("join")
        .expect("output")
}
