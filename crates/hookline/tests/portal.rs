//! The brand portal in a real headless Chromium: the API and a worker in-process on a fresh
//! database and queue, real receivers, and a browser (crates/testkit/src/browser.rs) that signs
//! in with a one-time link and clicks through the pages as a person would. What the pages
//! change is checked through the JSON API and at the receivers.
//!
//! Every test saves a screenshot of the pages it visits in `portal-screenshots/` under the
//! target directory; the README's Portal section shows three of them (docs/portal/).

use std::time::Duration;

use hookline_api::auth::{mint_hs256, Brands, SCOPE_PUBLISH, SCOPE_WEBHOOKS};
use hookline_config::{ExposeSecret as _, Settings};
use hookline_queue::Names;
use hookline_store::testing::TestDatabase;
use hookline_testkit::{
    browser::{Browser, WINDOW},
    receiver::{Mode, Receiver},
    verify::assert_signed,
};
use hookline_worker::Worker;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const SHIPPED: &str = "ORDER_EVENTS.OMS.ORDER_SHIPPED";
const PING: &str = "WEBHOOK_EVENTS.PING";
const WAIT: Duration = Duration::from_secs(20);
/// The session cookie (crates/api/src/portal/session.rs).
const COOKIE: &str = "hookline_portal";

struct Stack {
    base: String,
    client: reqwest::Client,
    settings: Settings,
    shutdown: CancellationToken,
    api: actix_web::dev::ServerHandle,
    _db: TestDatabase,
}

impl Stack {
    /// API and worker on a fresh database and queue, as in end_to_end.rs: three attempts 200 ms
    /// apart, and endpoints that stay healthy however often they fail (so failures stay
    /// failures instead of being parked).
    async fn start() -> Stack {
        let db = TestDatabase::create().await;
        let mut settings = Settings::default();
        settings.database.url = db.url.clone().into();
        settings.database.migrate_on_start = false;
        settings.http.bind = "127.0.0.1:0".into();
        settings.admin.bind = "127.0.0.1:0".into();
        settings.worker.http_bind = "127.0.0.1:0".into();
        settings.amqp.url = AMQP_URL.to_owned().into();
        settings.amqp.prefix = format!("hookline_test_{}", uuid::Uuid::new_v4().simple());
        settings.delivery.allow_http = true;
        settings.delivery.allow_private_targets = true;
        settings.delivery.retry_schedule = "200ms,200ms".into();
        settings.delivery.retry_jitter = 0.0;
        settings.health.failure_threshold = 100_000;
        settings.worker.scheduler_interval = Duration::from_millis(100);
        settings.worker.lease = Duration::from_secs(3);

        let app = hookline_api::Application::build(settings.clone())
            .await
            .expect("api builds");
        let base = format!("http://127.0.0.1:{}", app.port());
        let api = app.handle();
        tokio::spawn(app.run_until_stopped());
        let shutdown = CancellationToken::new();
        let worker = Worker::build(settings.clone())
            .await
            .expect("worker builds");
        tokio::spawn(worker.run_until_stopped(shutdown.clone()));
        let client = reqwest::Client::builder()
            .timeout(WAIT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Stack {
            base,
            client,
            settings,
            shutdown,
            api,
            _db: db,
        }
    }

    fn token(&self, brand: &str) -> String {
        mint_hs256(
            self.settings.auth.hs256_secret.expose_secret(),
            Brands::List(vec![brand.into()]),
            &[SCOPE_WEBHOOKS.into(), SCOPE_PUBLISH.into()],
            Duration::from_secs(600),
            None,
        )
        .expect("token")
    }

    async fn call(
        &self,
        brand: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, format!("{}/v1/{brand}{path}", self.base))
            .bearer_auth(self.token(brand));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let text = res.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn get(&self, brand: &str, path: &str) -> Value {
        let (status, body) = self.call(brand, reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// A webhook made through the API: its id and secret.
    async fn webhook(&self, brand: &str, endpoint: &str, events: &[&str]) -> (String, String) {
        let (status, body) = self
            .call(
                brand,
                reqwest::Method::POST,
                "/webhooks",
                Some(json!({ "endpoint": endpoint, "events": events })),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        (
            body["id"].as_str().expect("id").to_owned(),
            body["secret"].as_str().expect("secret").to_owned(),
        )
    }

    async fn publish(&self, brand: &str, event_type: &str, data: Value) -> String {
        let (status, body) = self
            .call(
                brand,
                reqwest::Method::POST,
                "/events",
                Some(json!({ "type": event_type, "data": data })),
            )
            .await;
        assert_eq!(status, 202, "{body}");
        body["id"].as_str().expect("id").to_owned()
    }

    /// Polls the event log until the delivery has `attempts` attempts and is final.
    async fn wait_logged(&self, brand: &str, webhook: &str, event: &str, attempts: usize) -> Value {
        let path = format!("/webhooks/{webhook}/events/{event}");
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let body = self.get(brand, &path).await;
            let n = body["attempts"].as_array().map_or(0, Vec::len);
            if n >= attempts && body["status"] != "PENDING" {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "not logged in time: {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A one-time sign-in link for `brand`, through `POST /v1/{brand}/portal-links`.
    async fn portal_link(&self, brand: &str) -> String {
        let (status, body) = self
            .call(
                brand,
                reqwest::Method::POST,
                "/portal-links",
                Some(json!({ "ttl": "5m" })),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let url = url::Url::parse(body["url"].as_str().expect("url")).expect("absolute URL");
        assert_eq!(url.path(), "/portal/login", "{body}");
        // The link names the host the request came to; the browser uses the same one.
        format!(
            "{}{}?{}",
            self.base,
            url.path(),
            url.query().expect("token")
        )
    }

    /// A form POST to a portal page with `cookie` (the session's value, if any): the status.
    async fn portal_post(&self, path: &str, cookie: Option<&str>, form: &str) -> u16 {
        let mut req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.to_owned());
        if let Some(value) = cookie {
            req = req.header("cookie", format!("{COOKIE}={value}"));
        }
        req.send().await.expect("portal POST").status().as_u16()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.shutdown.cancel();
        drop(self.api.stop(false));
        let names = Names::from_prefix(&self.settings.amqp.prefix);
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

/// Opens a sign-in link and waits for the webhooks page it leads to.
async fn sign_in(browser: &Browser, link: &str) {
    browser.goto(link).await;
    browser.wait_for_path("/portal/webhooks").await;
    browser.wait_for("form#create-webhook").await;
}

/// The last path segment of the current page (a webhook's or an event's id).
async fn id_in_path(browser: &Browser) -> String {
    let path = browser.path().await;
    path.rsplit('/').next().expect("segment").to_owned()
}

/// Reveals the signing secret on a webhook page and reads it.
async fn revealed_secret(browser: &Browser) -> String {
    let value = browser.wait_for("code#secret-value").await;
    assert!(
        !value.is_displayed().await.expect("displayed"),
        "the secret is hidden until asked for"
    );
    browser.click("details#secret summary").await;
    assert!(value.is_displayed().await.expect("displayed"));
    browser.text("code#secret-value").await.trim().to_owned()
}

/// The request at the receiver whose `webhook-id` is `event`.
fn delivered(receiver: &Receiver, event: &str) -> hookline_testkit::receiver::Received {
    receiver
        .received()
        .into_iter()
        .find(|r| r.header("webhook-id") == event)
        .unwrap_or_else(|| panic!("{event} did not arrive"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_brand_signs_in_creates_a_webhook_tests_it_rotates_its_secret_toggles_and_deletes_it() {
    let stack = Stack::start().await;
    let receiver = Receiver::start(Mode::Succeed).await;
    let browser = Browser::start().await;
    let link = stack.portal_link("acme").await;

    sign_in(&browser, &link).await;
    browser.wait_for("#empty-webhooks").await;
    browser.screenshot("webhooks-empty").await;

    // The session cookie: out of reach of scripts, never sent from another site, and only
    // to the portal.
    let cookies = browser.cookies().await;
    let session = cookies
        .iter()
        .find(|c| c.name() == COOKIE)
        .unwrap_or_else(|| panic!("no {COOKIE} cookie in {cookies:?}"));
    assert_eq!(session.http_only(), Some(true), "{session:?}");
    assert!(
        session.same_site().is_some_and(|s| s.is_strict()),
        "{session:?}"
    );
    assert_eq!(session.path(), Some("/portal"), "{session:?}");

    // A refused form keeps what was typed and says what is wrong.
    browser
        .fill(
            "form#create-webhook input[name=endpoint]",
            "ftp://example.com/hook",
        )
        .await;
    browser
        .click_and_load("form#create-webhook button[type=submit]")
        .await;
    browser.wait_for("form#create-webhook .error").await;
    assert_eq!(browser.page_status().await, 422);
    assert_eq!(
        browser
            .attr("form#create-webhook input[name=endpoint]", "value")
            .await
            .as_deref(),
        Some("ftp://example.com/hook")
    );
    assert!(browser.exists("#empty-webhooks").await, "nothing was made");
    browser.screenshot("webhooks-refused").await;

    // Create one through the form: the endpoint and a group of event types.
    browser
        .fill("form#create-webhook input[name=endpoint]", &receiver.url())
        .await;
    browser
        .check(
            r#"form#create-webhook input[name=types][value="ORDER_EVENTS"]"#,
            true,
        )
        .await;
    browser
        .click_and_load("form#create-webhook button[type=submit]")
        .await;
    browser.wait_for("#settings").await;
    let webhook = id_in_path(&browser).await;
    let made = stack.get("acme", &format!("/webhooks/{webhook}")).await;
    assert_eq!(made["endpoint"], receiver.url(), "{made}");
    assert_eq!(made["events"], json!(["ORDER_EVENTS"]), "{made}");
    assert_eq!(made["enabled"], true, "{made}");
    assert_eq!(browser.text("#settings .endpoint").await, receiver.url());
    assert!(browser
        .text("#settings .types")
        .await
        .contains("ORDER_EVENTS"));
    assert_eq!(browser.text("#enabled").await, "yes");
    assert!(browser
        .text("#empty-events")
        .await
        .contains("No events yet"));
    // The revealed secret is the webhook's.
    let secret = revealed_secret(&browser).await;
    let api_secret = stack
        .get("acme", &format!("/webhooks/{webhook}/secret"))
        .await;
    assert_eq!(api_secret["secret"], secret.as_str());

    // A test event: its page, then its delivery and attempt once it is made.
    browser
        .click_and_load("form#send-test button[type=submit]")
        .await;
    browser.wait_for("pre#payload").await;
    let ping = id_in_path(&browser).await;
    assert_eq!(
        browser.path().await,
        format!("/portal/webhooks/{webhook}/events/{ping}")
    );
    browser
        .reload_until("#delivery-status", WAIT, |s| s == "SUCCESS")
        .await;
    let attempts = browser.find_all("section.attempt").await;
    assert_eq!(attempts.len(), 1);
    assert_eq!(
        browser.text("section.attempt .attempt-status").await,
        "SUCCESS"
    );
    assert_eq!(
        browser.text("section.attempt .response-status").await,
        "HTTP 200"
    );
    assert_eq!(browser.text("h1").await, PING);
    assert!(browser
        .text("pre#payload")
        .await
        .contains("A test event sent from the Hookline portal"));
    browser.screenshot("event").await;
    let got = delivered(&receiver, &ping);
    assert_signed(&got, &[&secret]);
    let body: Value = serde_json::from_slice(&got.body).expect("json body");
    assert_eq!(body["type"], PING);

    // The event log lists it.
    browser
        .goto(&format!("{}/portal/webhooks/{webhook}", stack.base))
        .await;
    let row = format!(r#"table#events tr[data-event-id="{ping}"]"#);
    assert!(browser
        .text(&format!("{row} td.status"))
        .await
        .contains("SUCCESS"));

    // Rotate: a new secret, the old one still signing beside it for a while.
    browser
        .click_and_load("form#rotate-secret button[type=submit]")
        .await;
    browser.wait_for("#previous-secret-expires").await;
    let rotated = revealed_secret(&browser).await;
    assert_ne!(rotated, secret);
    let api_secret = stack
        .get("acme", &format!("/webhooks/{webhook}/secret"))
        .await;
    assert_eq!(api_secret["secret"], rotated.as_str());
    assert!(
        api_secret["previousSecretExpires"].is_string(),
        "{api_secret}"
    );
    browser
        .click_and_load("form#send-test button[type=submit]")
        .await;
    browser.wait_for("pre#payload").await;
    let second = id_in_path(&browser).await;
    assert_ne!(second, ping);
    stack.wait_logged("acme", &webhook, &second, 1).await;
    assert_signed(&delivered(&receiver, &second), &[&rotated, &secret]);

    // Disable, then enable again.
    browser
        .goto(&format!("{}/portal/webhooks/{webhook}", stack.base))
        .await;
    browser
        .click_and_load("form#toggle button[type=submit]")
        .await;
    browser
        .wait_for("form#toggle input[name=replay_skipped]")
        .await;
    assert_eq!(browser.text("#enabled").await, "no");
    assert_eq!(browser.text("#state-badge").await, "disabled");
    let off = stack.get("acme", &format!("/webhooks/{webhook}")).await;
    assert_eq!(off["enabled"], false, "{off}");
    browser
        .click_and_load("form#toggle button[type=submit]")
        .await;
    browser
        .wait_for(r#"form#toggle input[name=enabled][value="false"]"#)
        .await;
    assert_eq!(browser.text("#enabled").await, "yes");
    let on = stack.get("acme", &format!("/webhooks/{webhook}")).await;
    assert_eq!(on["enabled"], true, "{on}");
    browser.wait_for("svg#chart-deliveries").await;
    browser.wait_for("svg#chart-latency").await;
    browser.screenshot("webhook").await;
    browser.set_window_size(390, 844).await;
    browser.screenshot("webhook-phone").await;
    browser.set_window_size(WINDOW.0, WINDOW.1).await;

    // The list: the webhook with its state and its two deliveries.
    browser
        .goto(&format!("{}/portal/webhooks", stack.base))
        .await;
    let row = format!(r#"table#webhooks tr[data-webhook-id="{webhook}"]"#);
    assert_eq!(
        browser.text(&format!("{row} .endpoint")).await,
        receiver.url()
    );
    assert!(browser
        .text(&format!("{row} .types"))
        .await
        .contains("ORDER_EVENTS"));
    assert_eq!(browser.text(&format!("{row} .badge")).await, "healthy");
    assert_eq!(browser.text(&format!("{row} .delivery-count")).await, "2");
    browser.screenshot("webhooks").await;
    // From the list too: disable, then enable again, staying on the list.
    let toggle = format!("{row} form.toggle button[type=submit]");
    browser.click_and_load(&toggle).await;
    assert_eq!(browser.path().await, "/portal/webhooks");
    assert_eq!(browser.text(&format!("{row} .badge")).await, "disabled");
    let off = stack.get("acme", &format!("/webhooks/{webhook}")).await;
    assert_eq!(off["enabled"], false, "{off}");
    browser.click_and_load(&toggle).await;
    assert_eq!(browser.path().await, "/portal/webhooks");
    assert_eq!(browser.text(&format!("{row} .badge")).await, "healthy");
    let on = stack.get("acme", &format!("/webhooks/{webhook}")).await;
    assert_eq!(on["enabled"], true, "{on}");

    // Delete, after the confirmation page.
    browser.click_and_load(&format!("{row} .endpoint a")).await;
    browser.click_and_load("a#delete").await;
    browser.screenshot("delete").await;
    browser
        .click_and_load("form#delete-webhook button[type=submit]")
        .await;
    browser.wait_for("#empty-webhooks").await;
    let (status, _) = stack
        .call(
            "acme",
            reqwest::Method::GET,
            &format!("/webhooks/{webhook}"),
            None,
        )
        .await;
    assert_eq!(status, 404);

    // Sign out: the session is over, and the link does not sign in twice.
    browser.click_and_load("#sign-out").await;
    browser.wait_for_path("/portal/signed-out").await;
    assert_eq!(browser.text("h1").await, "Signed out");
    browser.screenshot("signed-out").await;
    browser
        .goto(&format!("{}/portal/webhooks", stack.base))
        .await;
    assert_eq!(browser.text("h1").await, "Sign in to continue");
    assert_eq!(browser.page_status().await, 401);
    browser.screenshot("sign-in").await;
    browser.goto(&link).await;
    assert_eq!(browser.page_status().await, 403);
    assert!(browser.text("h1").await.contains("cannot be used"));
    assert!(browser
        .text("main")
        .await
        .contains("already used or expired"));
    browser.screenshot("link-refused").await;
    assert!(
        !browser.cookies().await.iter().any(|c| c.name() == COOKIE),
        "a used link sets no cookie"
    );
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_delivery_is_retried_from_its_page_the_rest_recovered_after_a_dry_run_and_a_script_stays_text(
) {
    let stack = Stack::start().await;
    // Three attempts for each of two events, all refused; everything after that succeeds.
    let receiver = Receiver::start(Mode::FailFirst { n: 6, status: 500 }).await;
    let (webhook, _) = stack.webhook("acme", &receiver.url(), &[SHIPPED]).await;
    let first = stack
        .publish("acme", SHIPPED, json!({ "orderId": "1" }))
        .await;
    let second = stack
        .publish("acme", SHIPPED, json!({ "orderId": "2" }))
        .await;
    for event in [&first, &second] {
        let logged = stack.wait_logged("acme", &webhook, event, 3).await;
        assert_eq!(logged["status"], "FAILURE", "{logged}");
    }
    assert_eq!(receiver.received().len(), 6, "three attempts each, no more");

    let browser = Browser::start().await;
    sign_in(&browser, &stack.portal_link("acme").await).await;
    let row = format!(r#"table#webhooks tr[data-webhook-id="{webhook}"]"#);
    assert!(browser
        .text(&format!("{row} .success-rate"))
        .await
        .contains('0'));
    browser.click_and_load(&format!("{row} .endpoint a")).await;
    browser.wait_for("table#events").await;
    for event in [&first, &second] {
        let status = format!(r#"table#events tr[data-event-id="{event}"] td.status"#);
        assert_eq!(browser.text(&status).await, "FAILURE");
    }
    // The filter: succeeded ones, of which there are none yet (portal.js submits the filter
    // as soon as a choice changes).
    browser.mark_page().await;
    browser
        .select("form#event-filter select[name=status]", "SUCCESS")
        .await;
    browser.wait_for_new_page().await;
    assert_eq!(
        browser
            .current_url()
            .await
            .query_pairs()
            .find(|(k, _)| k == "status")
            .map(|(_, v)| v.into_owned()),
        Some("SUCCESS".to_owned())
    );
    assert!(browser
        .text("#empty-events")
        .await
        .contains("No events match"));

    // The first event: three refused attempts; retried from its page, it arrives.
    browser
        .goto(&format!(
            "{}/portal/webhooks/{webhook}/events/{first}",
            stack.base
        ))
        .await;
    assert_eq!(browser.text("#delivery-status").await, "FAILURE");
    let attempts = browser.find_all("section.attempt").await;
    assert_eq!(attempts.len(), 3);
    for attempt in attempts {
        let status = attempt
            .find(hookline_testkit::browser::Locator::Css(".attempt-status"))
            .await
            .expect("attempt status");
        assert_eq!(status.text().await.expect("text"), "FAILURE");
        let code = attempt
            .find(hookline_testkit::browser::Locator::Css(".response-status"))
            .await
            .expect("response status");
        assert_eq!(code.text().await.expect("text"), "HTTP 500");
    }
    browser.screenshot("event-failed").await;
    browser
        .click_and_load("form#retry button[type=submit]")
        .await;
    browser
        .reload_until("#delivery-status", WAIT, |s| s == "SUCCESS")
        .await;
    assert_eq!(browser.find_all("section.attempt").await.len(), 4);
    assert_eq!(browser.text("#attempt-count").await, "4");
    assert_eq!(receiver.received().len(), 7);
    assert_eq!(receiver.received()[6].header("webhook-id"), first);
    browser.screenshot("event-retried").await;

    // Recovery of the webhook's failures: the dry run counts the one left, the confirmed run
    // sends it.
    browser
        .goto(&format!("{}/portal/recover", stack.base))
        .await;
    browser.wait_for("#empty-recoveries").await;
    browser
        .select("form#recover select[name=webhook]", &webhook)
        .await;
    browser
        .select("form#recover select[name=range]", "1h")
        .await;
    browser
        .check(
            r#"form#recover input[name=statuses][value="FAILURE"]"#,
            true,
        )
        .await;
    browser
        .click_and_load(r#"form#recover button[name=action][value="dry-run"]"#)
        .await;
    let result = browser.text("#dry-run-result").await;
    assert!(result.contains("1 delivery matches"), "{result}");
    assert_eq!(receiver.received().len(), 7, "a dry run sends nothing");
    browser.screenshot("recover-dry-run").await;
    browser
        .click_and_load("form#confirm-recover button[type=submit]")
        .await;
    browser.wait_for_path("/portal/recover").await;
    browser
        .wait_for("table#recoveries tr[data-recovery-id]")
        .await;
    browser
        .reload_until("table#recoveries tr[data-recovery-id] .state", WAIT, |s| {
            s == "DONE"
        })
        .await;
    assert!(browser
        .text("table#recoveries tr[data-recovery-id] .progress")
        .await
        .contains("1 / 1"));
    browser.screenshot("recover").await;
    let logged = stack.wait_logged("acme", &webhook, &second, 4).await;
    assert_eq!(logged["status"], "SUCCESS", "{logged}");
    assert_eq!(delivered(&receiver, &second).header("webhook-id"), second);

    // A payload with markup is shown as text: no script runs, no element is made.
    let hostile = stack
        .publish(
            "acme",
            SHIPPED,
            json!({
                "note": "<script>window.__pwned=1</script>",
                "image": "<img src=x onerror=window.__pwned=2>",
            }),
        )
        .await;
    stack.wait_logged("acme", &webhook, &hostile, 1).await;
    browser
        .goto(&format!(
            "{}/portal/webhooks/{webhook}/events/{hostile}",
            stack.base
        ))
        .await;
    let payload = browser.text("pre#payload").await;
    assert!(
        payload.contains("<script>window.__pwned=1</script>"),
        "{payload}"
    );
    assert!(
        payload.contains("<img src=x onerror=window.__pwned=2>"),
        "{payload}"
    );
    assert!(browser.find_all("pre#payload *").await.is_empty());
    assert!(browser.find_all("main script, main img").await.is_empty());
    assert_eq!(
        browser
            .execute("return typeof window.__pwned;", vec![])
            .await,
        json!("undefined")
    );
    browser.screenshot("event-markup").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_brand_s_session_reads_and_changes_nothing_of_another_and_forms_need_its_csrf_token() {
    let stack = Stack::start().await;
    let receiver = Receiver::start(Mode::Succeed).await;
    let (ours, _) = stack
        .webhook("acme", &receiver.url_with_path("acme"), &[SHIPPED])
        .await;
    let (theirs, their_secret) = stack
        .webhook("globex", &receiver.url_with_path("globex"), &[SHIPPED])
        .await;
    let our_event = stack.publish("acme", SHIPPED, json!({ "n": 1 })).await;
    let their_event = stack.publish("globex", SHIPPED, json!({ "n": 2 })).await;
    stack.wait_logged("acme", &ours, &our_event, 1).await;
    stack.wait_logged("globex", &theirs, &their_event, 1).await;
    assert_eq!(receiver.received().len(), 2);

    let browser = Browser::start().await;
    sign_in(&browser, &stack.portal_link("acme").await).await;
    assert!(
        browser
            .exists(&format!(r#"tr[data-webhook-id="{ours}"]"#))
            .await
    );
    assert!(
        !browser
            .exists(&format!(r#"tr[data-webhook-id="{theirs}"]"#))
            .await
    );

    // Their pages are the same 404 as pages that do not exist.
    for page in [
        format!("/portal/webhooks/{theirs}"),
        format!("/portal/webhooks/{theirs}/events/{their_event}"),
        format!("/portal/webhooks/{ours}/events/{their_event}"),
        format!("/portal/webhooks/{theirs}/delete"),
    ] {
        browser.goto(&format!("{}{page}", stack.base)).await;
        assert_eq!(browser.page_status().await, 404, "{page}");
        assert_eq!(browser.text("h1").await, "Not found", "{page}");
        assert!(!browser.text("main").await.contains(&their_event), "{page}");
    }
    browser.screenshot("not-found").await;
    browser
        .goto(&format!("{}/portal/recover", stack.base))
        .await;
    let options = browser
        .find_all("form#recover select[name=webhook] option")
        .await;
    let mut values = Vec::new();
    for o in options {
        values.push(o.attr("value").await.expect("value").unwrap_or_default());
    }
    assert_eq!(values, vec![String::new(), ours.clone()]);

    // Our own forms, pointed at their webhook: every one is refused with a 404.
    let our_page = format!("{}/portal/webhooks/{ours}", stack.base);
    let our_event_page = format!("{our_page}/events/{our_event}");
    let forms = [
        (
            our_page.clone(),
            "form#toggle",
            format!("/portal/webhooks/{theirs}/enabled"),
        ),
        (
            our_page.clone(),
            "form#rotate-secret",
            format!("/portal/webhooks/{theirs}/rotate"),
        ),
        (
            our_page.clone(),
            "form#send-test",
            format!("/portal/webhooks/{theirs}/test"),
        ),
        (
            format!("{our_page}/delete"),
            "form#delete-webhook",
            format!("/portal/webhooks/{theirs}/delete"),
        ),
        (
            our_event_page.clone(),
            "form#retry",
            format!("/portal/webhooks/{theirs}/events/{their_event}/retry"),
        ),
    ];
    for (page, form, action) in &forms {
        browser.goto(page).await;
        browser.wait_for(form).await;
        browser
            .execute(
                "document.querySelector(arguments[0]).setAttribute('action', arguments[1]);",
                vec![json!(form), json!(action)],
            )
            .await;
        browser
            .click_and_load(&format!("{form} button[type=submit]"))
            .await;
        browser.wait_for_path(action).await;
        assert_eq!(browser.page_status().await, 404, "{action}");
        assert_eq!(browser.text("h1").await, "Not found", "{action}");
    }
    // A recovery naming their webhook.
    browser
        .goto(&format!("{}/portal/recover", stack.base))
        .await;
    browser
        .execute(
            "const o = document.createElement('option'); o.value = arguments[0]; \
             o.textContent = 'theirs'; document.querySelector('select[name=webhook]').append(o);",
            vec![json!(theirs)],
        )
        .await;
    browser
        .select("form#recover select[name=webhook]", &theirs)
        .await;
    browser
        .check(
            r#"form#recover input[name=statuses][value="SUCCESS"]"#,
            true,
        )
        .await;
    browser
        .click_and_load(r#"form#recover button[name=action][value="dry-run"]"#)
        .await;
    assert_eq!(browser.page_status().await, 404);
    assert_eq!(browser.text("h1").await, "Not found");
    assert!(!browser.exists("#dry-run-result").await);

    // Their webhook is as it was: enabled, the same secret, one event with one attempt.
    let hook = stack.get("globex", &format!("/webhooks/{theirs}")).await;
    assert_eq!(hook["enabled"], true, "{hook}");
    let secret = stack
        .get("globex", &format!("/webhooks/{theirs}/secret"))
        .await;
    assert_eq!(secret["secret"], their_secret.as_str(), "{secret}");
    assert!(secret["previousSecretExpires"].is_null(), "{secret}");
    let log = stack
        .get("globex", &format!("/webhooks/{theirs}/events"))
        .await;
    let events = log["events"].as_array().expect("events");
    assert_eq!(events.len(), 1, "{log}");
    let logged = stack
        .get(
            "globex",
            &format!("/webhooks/{theirs}/events/{their_event}"),
        )
        .await;
    assert_eq!(
        logged["attempts"].as_array().map(Vec::len),
        Some(1),
        "{logged}"
    );
    let (status, _) = stack
        .call("globex", reqwest::Method::GET, "/recoveries", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        stack.get("globex", "/recoveries").await["recoveries"],
        json!([])
    );
    assert_eq!(receiver.received().len(), 2, "nothing more was sent");

    // CSRF: with the session cookie but without this session's token, a form is refused.
    browser.goto(&our_page).await;
    let csrf = browser
        .attr("form#toggle input[name=csrf]", "value")
        .await
        .expect("csrf token");
    let cookie = browser
        .cookies()
        .await
        .into_iter()
        .find(|c| c.name() == COOKIE)
        .expect("session cookie")
        .value()
        .to_owned();
    let csrf: String = url::form_urlencoded::byte_serialize(csrf.as_bytes()).collect();
    let toggle = format!("/portal/webhooks/{ours}/enabled");
    assert_eq!(
        stack
            .portal_post(&toggle, Some(&cookie), "enabled=false")
            .await,
        403
    );
    assert_eq!(
        stack
            .portal_post(&toggle, Some(&cookie), "enabled=false&csrf=not-the-token")
            .await,
        403
    );
    assert_eq!(
        stack
            .portal_post(&toggle, None, &format!("enabled=false&csrf={csrf}"))
            .await,
        401,
        "no session"
    );
    let hook = stack.get("acme", &format!("/webhooks/{ours}")).await;
    assert_eq!(hook["enabled"], true, "{hook}");
    // The right token with the session works (so the refusals above were for the token).
    assert_eq!(
        stack
            .portal_post(
                &toggle,
                Some(&cookie),
                &format!("enabled=false&csrf={csrf}")
            )
            .await,
        303
    );
    let hook = stack.get("acme", &format!("/webhooks/{ours}")).await;
    assert_eq!(hook["enabled"], false, "{hook}");
    browser.close().await;
}
