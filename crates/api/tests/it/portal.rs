//! The brand portal over plain HTTP (the browser tests are in `crates/hookline/tests/`):
//! sign-in links, the session cookie, CSRF, brand isolation, escaping, the security headers,
//! and the test-event and portal-link routes of the API.

use std::time::Duration;

use hookline_api::auth::{Brands, SCOPE_PUBLISH, SCOPE_WEBHOOKS};
use serde_json::{json, Value};

use crate::helpers::{assert_flex_error, json_of, run_api, spawn_app, spawn_app_with, TestApp};

const SHIPPED: &str = "ORDER_EVENTS.OMS.ORDER_SHIPPED";

/// A link for `brand` from the API.
async fn link(app: &TestApp, brand: &str, body: Option<Value>) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url(&format!("/v1/{brand}/portal-links")))
        .bearer_auth(app.token(brand));
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.expect("request")
}

async fn link_url(app: &TestApp, brand: &str) -> String {
    let body = json_of(link(app, brand, None).await, 201).await;
    body["url"].as_str().expect("url").to_owned()
}

/// Publishes an event of `brand` through the API.
async fn publish(app: &TestApp, brand: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/v1/{brand}/events")))
        .bearer_auth(app.token(brand))
        .json(&body)
        .send()
        .await
        .expect("request")
}

/// A signed-in session: the `Cookie` header to send.
struct Session {
    cookie: String,
}

async fn sign_in(app: &TestApp, brand: &str) -> Session {
    let url = link_url(app, brand).await;
    let res = app.client.get(&url).send().await.expect("request");
    assert_eq!(res.status(), 200, "the link signs in");
    let set = res
        .headers()
        .get("set-cookie")
        .expect("a session cookie")
        .to_str()
        .expect("ascii")
        .to_owned();
    let pair = set.split(';').next().expect("name=value").to_owned();
    Session { cookie: pair }
}

impl Session {
    async fn get(&self, app: &TestApp, path: &str) -> reqwest::Response {
        app.client
            .get(app.url(path))
            .header("Cookie", &self.cookie)
            .send()
            .await
            .expect("request")
    }

    async fn page(&self, app: &TestApp, path: &str) -> String {
        let res = self.get(app, path).await;
        assert_eq!(res.status(), 200, "GET {path}");
        res.text().await.expect("body")
    }

    /// The CSRF token of this session's forms (read off a page, as a browser would submit it).
    async fn csrf(&self, app: &TestApp) -> String {
        let page = self.page(app, "/portal/webhooks").await;
        let at = page.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
        page[at..].split('"').next().expect("value").to_owned()
    }

    async fn post(&self, app: &TestApp, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        app.client
            .post(app.url(path))
            .header("Cookie", &self.cookie)
            .form(form)
            .send()
            .await
            .expect("request")
    }
}

#[tokio::test]
async fn a_link_signs_in_once_with_a_strict_http_only_cookie() {
    let app = spawn_app().await;
    let res = link(&app, "acme", Some(json!({ "ttl": "5m" }))).await;
    let body = json_of(res, 201).await;
    let url = body["url"].as_str().expect("url");
    assert!(
        url.starts_with(&format!("{}/portal/login?token=", app.base)),
        "{url}"
    );
    let expires = chrono::DateTime::parse_from_rfc3339(body["expires"].as_str().expect("expires"))
        .expect("a date-time");
    let left = expires.with_timezone(&chrono::Utc) - chrono::Utc::now();
    assert!(left <= chrono::Duration::minutes(5) && left > chrono::Duration::minutes(4));

    let res = app.client.get(url).send().await.expect("request");
    assert_eq!(res.status(), 200);
    let cookie = res
        .headers()
        .get("set-cookie")
        .expect("cookie")
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(cookie.starts_with("hookline_portal="), "{cookie}");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/portal"] {
        assert!(cookie.contains(flag), "{flag} in {cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "plain http: no Secure flag: {cookie}"
    );
    let csp = res
        .headers()
        .get("content-security-policy")
        .expect("a CSP")
        .to_str()
        .expect("ascii");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(
        res.headers().get("referrer-policy").map(|v| v.as_bytes()),
        Some(&b"no-referrer"[..])
    );

    // The same link again: refused, and no second session.
    let again = app.client.get(url).send().await.expect("request");
    assert_eq!(again.status(), 403);
    assert!(again.headers().get("set-cookie").is_none());
    let page = again.text().await.expect("body");
    assert!(page.contains("This sign-in link cannot be used"), "{page}");

    // A made-up token and no token are refused the same way.
    for path in ["/portal/login?token=made-up", "/portal/login"] {
        let res = app.client.get(app.url(path)).send().await.expect("request");
        assert_eq!(res.status(), 403, "{path}");
    }
}

#[tokio::test]
async fn links_over_https_set_a_secure_cookie() {
    let app = spawn_app_with(|s| s.http.public_url = "https://hooks.example.com".into()).await;
    let body = json_of(link(&app, "acme", None).await, 201).await;
    let url = body["url"].as_str().expect("url");
    assert!(
        url.starts_with("https://hooks.example.com/portal/login?token="),
        "{url}"
    );
    let local = url.replace("https://hooks.example.com", &app.base);
    let res = app.client.get(local).send().await.expect("request");
    let cookie = res.headers().get("set-cookie").expect("cookie");
    assert!(cookie.to_str().expect("ascii").contains("Secure"));
}

#[tokio::test]
async fn an_expired_link_is_refused() {
    let app = spawn_app().await;
    let body = json_of(link(&app, "acme", Some(json!({ "ttl": "1s" }))).await, 201).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let res = app
        .client
        .get(body["url"].as_str().expect("url"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn portal_links_need_a_manage_token_for_the_brand_and_a_sane_ttl() {
    let app = spawn_app().await;
    let post = |token: Option<String>, body: Option<Value>, brand: &'static str| {
        let mut req = app
            .client
            .post(app.url(&format!("/v1/{brand}/portal-links")));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send()
    };
    let res = post(None, None, "acme").await.expect("request");
    assert_flex_error(res, 401, "ERR-CMR-0002").await;
    let publisher = app.token_with(Brands::List(vec!["acme".into()]), &[SCOPE_PUBLISH]);
    let res = post(Some(publisher), None, "acme").await.expect("request");
    assert_eq!(
        res.status(),
        403,
        "a producer's token cannot open the portal"
    );
    let res = post(Some(app.token("other")), None, "acme")
        .await
        .expect("request");
    assert_eq!(res.status(), 403, "another brand's token");
    for (body, field) in [
        (json!({ "ttl": "48h" }), "ttl"),
        (json!({ "ttl": "soon" }), "ttl"),
        (json!({ "ttl": 60 }), "ttl"),
        (json!({ "brand": "other" }), "brand"),
    ] {
        let res = post(Some(app.token("acme")), Some(body.clone()), "acme")
            .await
            .expect("request");
        let err = assert_flex_error(res, 422, "ERR-CMR-0001").await;
        assert!(err["validations"][field].is_string(), "{body}: {err}");
    }
    let manager = app.token_with(Brands::List(vec!["acme".into()]), &[SCOPE_WEBHOOKS]);
    let res = post(Some(manager), Some(json!({ "ttl": "24h" })), "acme")
        .await
        .expect("request");
    assert_eq!(res.status(), 201);
}

#[tokio::test]
async fn pages_without_a_live_session_ask_to_sign_in() {
    let app = spawn_app().await;
    for cookie in [None, Some("hookline_portal=forged")] {
        let mut req = app.client.get(app.url("/portal/webhooks"));
        if let Some(c) = cookie {
            req = req.header("Cookie", c);
        }
        let res = req.send().await.expect("request");
        assert_eq!(res.status(), 401);
        assert!(res
            .text()
            .await
            .expect("body")
            .contains("Sign in to continue"));
    }
    let res = app
        .client
        .post(app.url("/portal/webhooks"))
        .form(&[("endpoint", "https://example.com/x"), ("types", SHIPPED)])
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn sessions_end_at_sign_out_and_when_idle() {
    let app = spawn_app_with(|s| {
        s.portal.idle_timeout = Duration::from_secs(1);
        s.portal.session_ttl = Duration::from_secs(60);
    })
    .await;
    let session = sign_in(&app, "acme").await;
    let csrf = session.csrf(&app).await;
    let res = session
        .post(&app, "/portal/logout", &[("csrf", &csrf)])
        .await;
    assert_eq!(res.status(), 303);
    let cleared = res.headers().get("set-cookie").expect("cookie cleared");
    assert!(cleared.to_str().expect("ascii").contains("Max-Age=0"));
    assert_eq!(session.get(&app, "/portal/webhooks").await.status(), 401);

    let idle = sign_in(&app, "acme").await;
    assert_eq!(idle.get(&app, "/portal/webhooks").await.status(), 200);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(idle.get(&app, "/portal/webhooks").await.status(), 401);
}

#[tokio::test]
async fn forms_without_the_session_csrf_token_change_nothing() {
    let app = spawn_app().await;
    let session = sign_in(&app, "acme").await;
    let form = |csrf: Option<&'static str>| {
        let mut f = vec![("endpoint", "https://example.com/hook"), ("types", SHIPPED)];
        if let Some(c) = csrf {
            f.push(("csrf", c));
        }
        f
    };
    for csrf in [None, Some("wrong")] {
        let res = session.post(&app, "/portal/webhooks", &form(csrf)).await;
        assert_eq!(res.status(), 403, "csrf {csrf:?}");
    }
    let list = json_of(app.get("/v1/acme/webhooks", &app.token("acme")).await, 200).await;
    assert_eq!(list, json!([]), "nothing was created");

    let csrf = session.csrf(&app).await;
    let res = session
        .post(
            &app,
            "/portal/webhooks",
            &[
                ("csrf", csrf.as_str()),
                ("endpoint", "https://example.com/hook"),
                ("types", SHIPPED),
                ("types", "NOTIFICATION"),
            ],
        )
        .await;
    assert_eq!(res.status(), 303);
    let list = json_of(app.get("/v1/acme/webhooks", &app.token("acme")).await, 200).await;
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    assert_eq!(list[0]["events"], json!(["NOTIFICATION", SHIPPED]));

    // Invalid input is shown on the form, with what was typed kept.
    let res = session
        .post(
            &app,
            "/portal/webhooks",
            &[("csrf", csrf.as_str()), ("endpoint", "ftp://nope")],
        )
        .await;
    assert_eq!(res.status(), 422);
    let page = res.text().await.expect("body");
    assert!(page.contains("class=\"error\""), "{page}");
    assert!(page.contains("value=\"ftp://nope\""));
}

#[tokio::test]
async fn a_session_reaches_nothing_of_another_brand() {
    let app = spawn_app().await;
    let theirs = app
        .webhook("globex", "https://globex.example.com/hook", &[SHIPPED])
        .await;
    let id = theirs["id"].as_str().expect("id");
    let res = publish(
        &app,
        "globex",
        json!({ "type": SHIPPED, "data": { "order": 1 } }),
    )
    .await;
    let event = json_of(res, 202).await;
    let event_id = event["id"].as_str().expect("id");

    let acme = sign_in(&app, "acme").await;
    let csrf = acme.csrf(&app).await;
    let list = acme.page(&app, "/portal/webhooks").await;
    assert!(!list.contains("globex.example.com"));
    for path in [
        format!("/portal/webhooks/{id}"),
        format!("/portal/webhooks/{id}/delete"),
        format!("/portal/webhooks/{id}/events/{event_id}"),
    ] {
        assert_eq!(acme.get(&app, &path).await.status(), 404, "GET {path}");
    }
    for (path, extra) in [
        (
            format!("/portal/webhooks/{id}/enabled"),
            ("enabled", "false"),
        ),
        (format!("/portal/webhooks/{id}/rotate"), ("x", "y")),
        (format!("/portal/webhooks/{id}/test"), ("x", "y")),
        (format!("/portal/webhooks/{id}/delete"), ("x", "y")),
        (
            format!("/portal/webhooks/{id}/events/{event_id}/retry"),
            ("x", "y"),
        ),
        ("/portal/recover".to_owned(), ("webhook", id)),
    ] {
        let res = acme
            .post(
                &app,
                &path,
                &[("csrf", csrf.as_str()), extra, ("statuses", "FAILURE")],
            )
            .await;
        assert_eq!(res.status(), 404, "POST {path}");
    }
    // Untouched: still enabled, same secret, one event, no test event.
    let after = json_of(
        app.get(&format!("/v1/globex/webhooks/{id}"), &app.token("globex"))
            .await,
        200,
    )
    .await;
    assert_eq!(after["enabled"], true);
    let secret = json_of(
        app.get(
            &format!("/v1/globex/webhooks/{id}/secret"),
            &app.token("globex"),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(secret["secret"], theirs["secret"]);
    let log = json_of(
        app.get(
            &format!("/v1/globex/webhooks/{id}/events"),
            &app.token("globex"),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(log["events"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn payloads_and_endpoints_render_inert() {
    let app = spawn_app().await;
    let hook = app
        .webhook("acme", "https://example.com/h?a=<b>&c=\"d\"", &[SHIPPED])
        .await;
    let id = hook["id"].as_str().expect("id");
    let hostile = "<script>alert(1)</script><img src=x onerror=alert(2)>";
    let res = publish(
        &app,
        "acme",
        json!({ "type": SHIPPED, "data": { "note": hostile, hostile: 1 } }),
    )
    .await;
    let event = json_of(res, 202).await;
    let session = sign_in(&app, "acme").await;
    let page = session
        .page(
            &app,
            &format!(
                "/portal/webhooks/{id}/events/{}",
                event["id"].as_str().expect("id")
            ),
        )
        .await;
    assert!(!page.contains("<script>alert"), "raw script in the page");
    assert!(!page.contains("<img src=x"), "raw img in the page");
    // Escaped, and still there to read (askama writes `<` as `&#60;`).
    assert!(
        page.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "{page}"
    );
    let list = session.page(&app, "/portal/webhooks").await;
    assert!(!list.contains("a=<b>"));
    assert!(list.contains("example.com/h?a="), "the endpoint is listed");
}

#[tokio::test]
async fn a_test_event_goes_to_that_webhook_only() {
    let app = spawn_app().await;
    let target = app
        .webhook("acme", "https://example.com/a", &[SHIPPED])
        .await;
    let other = app
        .webhook("acme", "https://example.com/b", &["WEBHOOK_EVENTS"])
        .await;
    let id = target["id"].as_str().expect("id");
    let res = app
        .client
        .post(app.url(&format!("/v1/acme/webhooks/{id}/test")))
        .bearer_auth(app.token("acme"))
        .send()
        .await
        .expect("request");
    let sent = json_of(res, 202).await;
    assert_eq!(sent["type"], "WEBHOOK_EVENTS.PING");
    assert_eq!(sent["status"], "PENDING");
    assert_eq!(sent["webhookId"], id);
    let log = json_of(
        app.get(
            &format!("/v1/acme/webhooks/{id}/events"),
            &app.token("acme"),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(log["events"][0]["id"], sent["id"]);
    assert_eq!(log["events"][0]["type"], "WEBHOOK_EVENTS.PING");
    let other_id = other["id"].as_str().expect("id");
    let log = json_of(
        app.get(
            &format!("/v1/acme/webhooks/{other_id}/events"),
            &app.token("acme"),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        log["events"],
        json!([]),
        "a WEBHOOK_EVENTS subscriber does not get it"
    );

    // Another brand's webhook, or none: 404.
    let res = app
        .client
        .post(app.url(&format!("/v1/globex/webhooks/{id}/test")))
        .bearer_auth(app.token("globex"))
        .send()
        .await
        .expect("request");
    assert_flex_error(res, 404, "ERR-WHK-0004").await;
    // Producers cannot publish it themselves.
    let res = publish(
        &app,
        "acme",
        json!({ "type": "WEBHOOK_EVENTS.PING", "data": {} }),
    )
    .await;
    assert_eq!(res.status(), 422);
}

#[tokio::test]
async fn every_page_renders_with_server_timing() {
    let app = spawn_app().await;
    let hook = app
        .webhook("acme", "https://example.com/a", &[SHIPPED])
        .await;
    let id = hook["id"].as_str().expect("id");
    let session = sign_in(&app, "acme").await;
    for path in [
        "/portal/webhooks".to_owned(),
        format!("/portal/webhooks/{id}"),
        format!("/portal/webhooks/{id}?status=FAILURE&type=ORDER_EVENTS&range=7d"),
        format!("/portal/webhooks/{id}/delete"),
        "/portal/recover".to_owned(),
    ] {
        let res = session.get(&app, &path).await;
        assert_eq!(res.status(), 200, "{path}");
        assert!(res.headers().get("server-timing").is_some(), "{path}");
        assert_eq!(
            res.headers().get("cache-control").map(|v| v.as_bytes()),
            Some(&b"no-store"[..])
        );
    }
    let empty = session.page(&app, &format!("/portal/webhooks/{id}")).await;
    assert!(empty.contains("No events yet"));
    let res = app
        .client
        .get(app.url("/portal/static/portal.css"))
        .send()
        .await
        .expect("css");
    assert_eq!(res.status(), 200);
    let res = app
        .client
        .get(app.url("/portal/nope"))
        .send()
        .await
        .expect("404");
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn the_portal_link_command_prints_a_link_that_works_once() {
    let app = spawn_app().await;
    let db_url =
        hookline_config::ExposeSecret::expose_secret(&app.settings.database.url).to_owned();
    let public = [("HOOKLINE__HTTP__PUBLIC_URL", app.base.as_str())];
    let out = run_api(
        &db_url,
        &["portal-link", "--brand", "acme", "--ttl", "10m"],
        &public,
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = stdout.trim();
    assert!(
        url.starts_with(&format!("{}/portal/login?token=", app.base)),
        "{url}"
    );
    let res = app.client.get(url).send().await.expect("request");
    assert_eq!(res.status(), 200);
    assert!(res.text().await.expect("body").contains("acme"));
    assert_eq!(
        app.client.get(url).send().await.expect("again").status(),
        403
    );

    let out = run_api(
        &db_url,
        &["portal-link", "--brand", "acme", "--ttl", "48h"],
        &public,
    )
    .await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("portal.max_link_ttl"));
}

#[tokio::test]
async fn disabling_and_enabling_with_replay_from_the_list() {
    let app = spawn_app().await;
    let hook = app
        .webhook("acme", "https://example.com/a", &[SHIPPED])
        .await;
    let id = hook["id"].as_str().expect("id");
    let session = sign_in(&app, "acme").await;
    let csrf = session.csrf(&app).await;
    let toggle = format!("/portal/webhooks/{id}/enabled");
    let res = session
        .post(
            &app,
            &toggle,
            &[("csrf", &csrf), ("enabled", "false"), ("return", "list")],
        )
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(
        res.headers().get("location").map(|v| v.as_bytes()),
        Some(&b"/portal/webhooks?done=disabled"[..])
    );
    let res = publish(&app, "acme", json!({ "type": SHIPPED, "data": {} })).await;
    json_of(res, 202).await;
    let log_path = format!("/v1/acme/webhooks/{id}/events");
    let log = json_of(app.get(&log_path, &app.token("acme")).await, 200).await;
    assert_eq!(log["events"][0]["status"], "SKIPPED");
    let page = session
        .page(&app, &format!("/portal/webhooks/{id}?status=SKIPPED"))
        .await;
    assert!(
        page.contains("data-event-id="),
        "the skipped event is in the portal's log"
    );

    let res = session
        .post(
            &app,
            &toggle,
            &[
                ("csrf", &csrf),
                ("enabled", "true"),
                ("replay_skipped", "true"),
            ],
        )
        .await;
    assert_eq!(res.status(), 303);
    let after = json_of(
        app.get(&format!("/v1/acme/webhooks/{id}"), &app.token("acme"))
            .await,
        200,
    )
    .await;
    assert_eq!(after["enabled"], true);
    let log = json_of(app.get(&log_path, &app.token("acme")).await, 200).await;
    assert_ne!(log["events"][0]["status"], "SKIPPED", "{log}");
}

#[tokio::test]
async fn a_recovery_counts_first_then_runs_and_can_be_cancelled() {
    let app = spawn_app().await;
    let hook = app
        .webhook("acme", "https://example.com/a", &[SHIPPED])
        .await;
    let id = hook["id"].as_str().expect("id");
    for n in 0..3 {
        let res = publish(&app, "acme", json!({ "type": SHIPPED, "data": { "n": n } })).await;
        json_of(res, 202).await;
    }
    // As a worker leaves them after the last attempt.
    let mut conn = app.pool().get().await.expect("conn");
    diesel_async::RunQueryDsl::execute(
        diesel::sql_query(
            "UPDATE deliveries SET status = 'FAILURE', next_attempt_at = NULL, \
             leased_until = NULL",
        ),
        &mut conn,
    )
    .await
    .expect("fail them");
    drop(conn);

    let session = sign_in(&app, "acme").await;
    let csrf = session.csrf(&app).await;
    let form = |action: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("webhook", id.to_owned()),
            ("range", "24h".to_owned()),
            ("statuses", "FAILURE".to_owned()),
            ("action", action.to_owned()),
        ]
    };
    let post = |fields: Vec<(&'static str, String)>| {
        app.client
            .post(app.url("/portal/recover"))
            .header("Cookie", &session.cookie)
            .form(&fields)
            .send()
    };
    let dry = post(form("dry-run")).await.expect("request");
    assert_eq!(dry.status(), 200);
    let page = dry.text().await.expect("body");
    assert!(page.contains("id=\"matched\">3</strong>"), "{page}");
    assert!(page.contains("id=\"confirm-recover\""));
    let jobs = json_of(
        app.get("/v1/acme/recoveries", &app.token("acme")).await,
        200,
    )
    .await;
    assert_eq!(
        jobs["recoveries"],
        json!([]),
        "a dry run starts nothing: {jobs}"
    );

    let run = post(form("run")).await.expect("request");
    assert_eq!(run.status(), 303);
    let jobs = json_of(
        app.get("/v1/acme/recoveries", &app.token("acme")).await,
        200,
    )
    .await;
    let job = &jobs["recoveries"][0];
    assert_eq!(job["matched"], 3, "{jobs}");
    let job_id = job["id"].as_str().expect("id");
    let page = session.page(&app, "/portal/recover").await;
    assert!(page.contains(&format!("data-recovery-id=\"{job_id}\"")));

    // No worker runs here, so the job is still running: cancel it from the page.
    let res = session
        .post(
            &app,
            &format!("/portal/recoveries/{job_id}/cancel"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(res.status(), 303);
    let after = json_of(
        app.get(&format!("/v1/acme/recoveries/{job_id}"), &app.token("acme"))
            .await,
        200,
    )
    .await;
    assert_eq!(after["state"], "CANCELLED", "{after}");
    // Nothing chosen: the form says so.
    let res = post(vec![("csrf", csrf.clone()), ("range", "24h".to_owned())])
        .await
        .expect("request");
    assert_eq!(res.status(), 422);
}
