//! flexEngage webhook routes: every route and every status the spec lists.

use serde_json::{json, Value};

use crate::helpers::{
    assert_fdx_error, assert_flex_error, json_of, spawn_app, spawn_app_with, TestApp,
};

const SHIPPED: &str = "ORDER_EVENTS.OMS.ORDER_SHIPPED";

#[tokio::test]
async fn create_webhook_is_201_with_location_secret_and_body() {
    let app = spawn_app().await;
    let res = app
        .create_webhook(
            "acme",
            json!({ "endpoint": "https://example.com/hook", "events": [SHIPPED] }),
        )
        .await;
    assert_eq!(res.status(), 201);
    let location = res.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let body: Value = res.json().await.expect("json");
    let id = body["id"].as_str().expect("id");
    assert_eq!(location, app.url(&format!("/v1/acme/webhooks/{id}")));
    assert_eq!(body["endpoint"], "https://example.com/hook");
    assert_eq!(body["events"], json!([SHIPPED]));
    assert_eq!(body["enabled"], true);
    assert!(body["secret"]
        .as_str()
        .expect("secret")
        .starts_with("whsec_"));
    assert!(body["created"].as_str().expect("created").ends_with('Z'));

    // The Location resolves, and GET never shows the secret.
    let got = json_of(
        app.get(&format!("/v1/acme/webhooks/{id}"), &app.token("acme"))
            .await,
        200,
    )
    .await;
    assert_eq!(got["id"], id);
    assert!(got.get("secret").is_none());
}

#[tokio::test]
async fn create_webhook_keeps_a_given_secret_and_enabled_false() {
    let app = spawn_app().await;
    let res = app
        .create_webhook(
            "acme",
            json!({ "endpoint": "https://example.com/h", "events": [SHIPPED], "enabled": false, "secret": "top_secret" }),
        )
        .await;
    let body = json_of(res, 201).await;
    assert_eq!(body["secret"], "top_secret");
    assert_eq!(body["enabled"], false);
}

#[tokio::test]
async fn create_webhook_normalises_groups_wildcards_and_duplicates() {
    let app = spawn_app().await;
    let body = app
        .webhook(
            "acme",
            "https://example.com/h",
            &[
                "ORDER_EVENTS.TRACKING.*",
                SHIPPED,
                "ORDER_EVENTS.TRACKING",
                SHIPPED,
                "RECEIPTS",
            ],
        )
        .await;
    assert_eq!(
        body["events"],
        json!([
            "ORDER_EVENTS.OMS.ORDER_SHIPPED",
            "ORDER_EVENTS.TRACKING",
            "RECEIPTS"
        ])
    );
}

#[tokio::test]
async fn create_same_endpoint_and_event_types_is_409() {
    let app = spawn_app().await;
    app.webhook("acme", "https://example.com/h", &[SHIPPED, "RECEIPTS"])
        .await;
    // Same set in another order, with a duplicate: the same normalised subscription.
    let res = app
        .create_webhook("acme", json!({ "endpoint": "https://example.com/h", "events": ["RECEIPTS", SHIPPED, "RECEIPTS"] }))
        .await;
    let body = assert_flex_error(res, 409, "ERR-WHK-0009").await;
    assert_eq!(body["message"], "CONFLICT");
    assert!(body["description"]
        .as_str()
        .expect("text")
        .contains("https://example.com/h"));
    // Another brand may register the same endpoint and types.
    app.webhook("other", "https://example.com/h", &[SHIPPED, "RECEIPTS"])
        .await;
    // And the same brand with other types.
    app.webhook("acme", "https://example.com/h", &[SHIPPED])
        .await;
}

#[tokio::test]
async fn create_with_every_field_invalid_lists_every_problem_as_422() {
    let app = spawn_app().await;
    let res = app
        .create_webhook(
            "acme",
            json!({ "endpoint": "ftp://example.com", "events": ["NOPE", 3], "enabled": "yes", "secret": "short" }),
        )
        .await;
    let body = assert_flex_error(res, 422, "ERR-CMR-0001").await;
    assert_eq!(body["message"], "UNPROCESSABLE ENTITY");
    let v = body["validations"].as_object().expect("validations");
    for field in ["endpoint", "events[0]", "events[1]", "enabled", "secret"] {
        assert!(v.contains_key(field), "{field} missing from {body}");
    }
}

#[tokio::test]
async fn create_without_required_fields_is_422_naming_them() {
    let app = spawn_app().await;
    let body = assert_flex_error(
        app.create_webhook("acme", json!({})).await,
        422,
        "ERR-CMR-0001",
    )
    .await;
    assert_eq!(body["validations"]["endpoint"], "endpoint is required");
    assert_eq!(body["validations"]["events"], "events is required");
    let body = assert_flex_error(
        app.create_webhook("acme", json!({"endpoint": "https://e.com", "events": []}))
            .await,
        422,
        "ERR-CMR-0001",
    )
    .await;
    assert!(body["validations"]["events"].is_string());
}

#[tokio::test]
async fn create_with_unknown_event_type_is_422() {
    let app = spawn_app().await;
    let res = app
        .create_webhook("acme", json!({ "endpoint": "https://example.com", "events": ["ORDER_EVENTS.OMS.ORDER_TELEPORTED"] }))
        .await;
    let body = assert_flex_error(res, 422, "ERR-CMR-0001").await;
    assert!(body["validations"]["events[0]"]
        .as_str()
        .expect("msg")
        .contains("ORDER_TELEPORTED"));
}

#[tokio::test]
async fn create_with_http_or_private_endpoint_is_422_by_default() {
    let app = spawn_app().await;
    for endpoint in [
        "http://example.com/h",
        "https://127.0.0.1/h",
        "https://[::ffff:127.0.0.1]/",
        "https://169.254.169.254/",
    ] {
        let res = app
            .create_webhook("acme", json!({ "endpoint": endpoint, "events": [SHIPPED] }))
            .await;
        let body = assert_flex_error(res, 422, "ERR-CMR-0001").await;
        assert!(
            body["validations"]["endpoint"].is_string(),
            "{endpoint}: {body}"
        );
    }
}

#[tokio::test]
async fn http_and_private_endpoints_are_allowed_when_configured() {
    let app = spawn_app_with(|s| {
        s.delivery.allow_http = true;
        s.delivery.allow_private_targets = true;
    })
    .await;
    app.webhook("acme", "http://127.0.0.1:9/h", &[SHIPPED])
        .await;
}

#[tokio::test]
async fn malformed_json_wrong_content_type_and_oversized_bodies_get_the_error_shape() {
    let app = spawn_app_with(|s| s.http.max_json_bytes = 1024).await;
    let url = app.url("/v1/acme/webhooks");
    let token = app.token("acme");
    let send = |body: String, content_type: &'static str| {
        app.client
            .post(&url)
            .bearer_auth(&token)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let res = send("{not json".into(), "application/json")
        .await
        .expect("request");
    assert_flex_error(res, 422, "ERR-CMR-0001").await;
    let res = send("{}".into(), "text/plain").await.expect("request");
    assert_flex_error(res, 415, "ERR-HKL-0006").await;
    let big = json!({ "endpoint": "https://e.com", "events": [SHIPPED], "pad": "x".repeat(4096) })
        .to_string();
    let res = send(big, "application/json").await.expect("request");
    assert_flex_error(res, 413, "ERR-HKL-0005").await;
    let res = send(String::new(), "application/json")
        .await
        .expect("request");
    assert_flex_error(res, 422, "ERR-CMR-0001").await;
}

#[tokio::test]
async fn list_webhooks_is_an_empty_array_then_every_webhook_of_the_brand() {
    let app = spawn_app().await;
    let token = app.token("acme");
    assert_eq!(
        json_of(app.get("/v1/acme/webhooks", &token).await, 200).await,
        json!([])
    );
    let a = app
        .webhook("acme", "https://example.com/a", &[SHIPPED])
        .await;
    let b = app
        .webhook("acme", "https://example.com/b", &["NOTIFICATION"])
        .await;
    app.webhook("other", "https://example.com/c", &[SHIPPED])
        .await;
    let list = json_of(app.get("/v1/acme/webhooks", &token).await, 200).await;
    let ids: Vec<&Value> = list
        .as_array()
        .expect("array")
        .iter()
        .map(|w| &w["id"])
        .collect();
    assert_eq!(ids, vec![&a["id"], &b["id"]]);
    assert!(list[0].get("secret").is_none());
}

#[tokio::test]
async fn get_unknown_or_malformed_webhook_id_is_404() {
    let app = spawn_app().await;
    let token = app.token("acme");
    let res = app
        .get(
            "/v1/acme/webhooks/3fa85f64-5717-4562-b3fc-2c963f66afa6",
            &token,
        )
        .await;
    let body = assert_flex_error(res, 404, "ERR-WHK-0004").await;
    assert_eq!(body["message"], "NOT FOUND");
    assert_eq!(
        body["description"],
        "A webhook with ID: 3fa85f64-5717-4562-b3fc-2c963f66afa6 for brandId: acme was not found"
    );
    assert_flex_error(
        app.get("/v1/acme/webhooks/not-a-uuid", &token).await,
        404,
        "ERR-WHK-0004",
    )
    .await;
}

#[tokio::test]
async fn patch_toggles_enabled_with_204_and_validates_the_body() {
    let app = spawn_app().await;
    let token = app.token("acme");
    let id = app
        .webhook("acme", "https://example.com/a", &[SHIPPED])
        .await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let path = format!("/v1/acme/webhooks/{id}");
    let patch = |body: Value| {
        app.client
            .patch(app.url(&path))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let res = patch(json!({ "enabled": false })).await.expect("request");
    assert_eq!(res.status(), 204);
    assert!(res.bytes().await.expect("body").is_empty());
    assert_eq!(
        json_of(app.get(&path, &token).await, 200).await["enabled"],
        false
    );
    assert_eq!(
        patch(json!({ "enabled": true }))
            .await
            .expect("request")
            .status(),
        204
    );
    assert_eq!(
        json_of(app.get(&path, &token).await, 200).await["enabled"],
        true
    );

    let body = assert_flex_error(
        patch(json!({})).await.expect("request"),
        422,
        "ERR-CMR-0001",
    )
    .await;
    assert_eq!(body["validations"]["enabled"], "enabled is required");
    assert_flex_error(
        patch(json!({ "enabled": "no" })).await.expect("request"),
        422,
        "ERR-CMR-0001",
    )
    .await;

    let missing = app
        .client
        .patch(app.url("/v1/acme/webhooks/3fa85f64-5717-4562-b3fc-2c963f66afa6"))
        .bearer_auth(&token)
        .json(&json!({ "enabled": true }))
        .send()
        .await
        .expect("request");
    assert_flex_error(missing, 404, "ERR-WHK-0004").await;
}

#[tokio::test]
async fn delete_is_204_then_404() {
    let app = spawn_app().await;
    let token = app.token("acme");
    let id = app
        .webhook("acme", "https://example.com/a", &[SHIPPED])
        .await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let path = format!("/v1/acme/webhooks/{id}");
    let res = app
        .client
        .delete(app.url(&path))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 204);
    let res = app
        .client
        .delete(app.url(&path))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request");
    assert_flex_error(res, 404, "ERR-WHK-0004").await;
    assert_flex_error(app.get(&path, &token).await, 404, "ERR-WHK-0004").await;
}

/// A webhook of brand acme, and the path of its secret.
async fn webhook_and_secret_path(app: &TestApp) -> (Value, String) {
    let created = app
        .webhook("acme", "https://example.com/a", &[SHIPPED])
        .await;
    let path = format!(
        "/v1/acme/webhooks/{}/secret",
        created["id"].as_str().expect("id")
    );
    (created, path)
}

#[tokio::test]
async fn secret_can_be_read_and_rotated_keeping_the_old_one_for_the_grace_period() {
    let app = spawn_app().await;
    let token = app.token("acme");
    let (created, path) = webhook_and_secret_path(&app).await;
    let got = json_of(app.get(&path, &token).await, 200).await;
    assert_eq!(got["secret"], created["secret"]);
    assert!(got["previousSecretExpires"].is_null());

    let res = app
        .client
        .post(app.url(&format!("{path}/rotate")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request");
    let rotated = json_of(res, 200).await;
    assert_ne!(rotated["secret"], created["secret"]);
    assert!(rotated["previousSecretExpires"].is_string());
    assert_eq!(
        json_of(app.get(&path, &token).await, 200).await["secret"],
        rotated["secret"]
    );

    let res = app
        .client
        .post(app.url(&format!("{path}/rotate")))
        .bearer_auth(&token)
        .json(&json!({ "secret": "a_chosen_secret" }))
        .send()
        .await
        .expect("request");
    assert_eq!(json_of(res, 200).await["secret"], "a_chosen_secret");
    let res = app
        .client
        .post(app.url(&format!("{path}/rotate")))
        .bearer_auth(&token)
        .json(&json!({ "secret": "tiny" }))
        .send()
        .await
        .expect("request");
    assert_flex_error(res, 422, "ERR-CMR-0001").await;
}

#[tokio::test]
async fn an_oversized_rotate_body_is_413_in_the_error_shape_and_keeps_the_secret() {
    let app = spawn_app().await;
    let token = app.token("acme");
    let (created, path) = webhook_and_secret_path(&app).await;
    let huge = json!({ "secret": "s".repeat(2 * 1024 * 1024) });
    let res = app
        .client
        .post(app.url(&format!("{path}/rotate")))
        .bearer_auth(&token)
        .json(&huge)
        .send()
        .await
        .expect("request");
    assert_flex_error(res, 413, "ERR-HKL-0005").await;
    let kept = json_of(app.get(&path, &token).await, 200).await;
    assert_eq!(kept["secret"], created["secret"]);
}

#[tokio::test]
async fn unknown_route_and_wrong_method_answer_in_the_error_shape() {
    let app = spawn_app().await;
    let token = app.token("acme");
    assert_flex_error(app.get("/v2/nothing", &token).await, 404, "ERR-HKL-0002").await;
    let res = app
        .client
        .put(app.url("/v1/acme/webhooks"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request");
    assert_flex_error(res, 405, "ERR-HKL-0008").await;
}

#[tokio::test]
async fn a_brand_over_its_rate_limit_gets_429_with_retry_after() {
    let app = spawn_app_with(|s| {
        s.rate_limit.per_second = 1;
        s.rate_limit.burst = 2;
    })
    .await;
    let token = app.token("acme");
    for _ in 0..2 {
        assert_eq!(app.get("/v1/acme/webhooks", &token).await.status(), 200);
    }
    let res = app.get("/v1/acme/webhooks", &token).await;
    let retry_after: u64 = res.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let body = assert_flex_error(res, 429, "ERR-HKL-0004").await;
    assert_eq!(body["message"], "TOO MANY REQUESTS");
    // Buckets are per brand: another brand is unaffected.
    assert_eq!(
        app.get("/v1/other/webhooks", &app.token("other"))
            .await
            .status(),
        200
    );
}

/// PATCHes a webhook and returns the response.
async fn patch_webhook(app: &TestApp, path: &str, body: Value) -> reqwest::Response {
    app.client
        .patch(app.url(path))
        .bearer_auth(app.token("acme"))
        .json(&body)
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn get_shows_health_healthy_when_fresh_and_disabled_by_hand_after_patch() {
    let app = spawn_app().await;
    let token = app.token("acme");
    let created = app
        .webhook("acme", "https://example.com/a", &[SHIPPED])
        .await;
    let healthy = json!({
        "state": "healthy", "reason": null, "consecutiveFailures": 0, "lastSuccess": null,
        "lastFailure": null, "failingSince": null, "since": null,
    });
    assert_eq!(created["health"], healthy, "{created}");
    let path = format!("/v1/acme/webhooks/{}", created["id"].as_str().expect("id"));
    let got = json_of(app.get(&path, &token).await, 200).await;
    let mut with_parked = healthy.clone();
    with_parked["parkedDeliveries"] = json!(0);
    assert_eq!(
        got["health"], with_parked,
        "the single GET counts parked deliveries"
    );
    let list = json_of(app.get("/v1/acme/webhooks", &token).await, 200).await;
    assert_eq!(list[0]["health"], healthy, "a list does not count them");

    assert_eq!(
        patch_webhook(&app, &path, json!({ "enabled": false }))
            .await
            .status(),
        204
    );
    let got = json_of(app.get(&path, &token).await, 200).await;
    assert_eq!(got["enabled"], false);
    assert_eq!(got["health"]["state"], "disabled");
    assert_eq!(got["health"]["reason"], "manual");
    assert_eq!(got["health"]["parkedDeliveries"], 0);
    let since = got["health"]["since"].as_str().expect("since");
    chrono::DateTime::parse_from_rfc3339(since).expect("date-time");

    assert_eq!(
        patch_webhook(&app, &path, json!({ "enabled": true }))
            .await
            .status(),
        204
    );
    let got = json_of(app.get(&path, &token).await, 200).await;
    assert_eq!(got["enabled"], true);
    assert_eq!(got["health"]["state"], "healthy");
    assert_eq!(got["health"]["reason"], Value::Null);
    assert!(got["health"]["since"].is_string(), "{got}");
}

#[tokio::test]
async fn a_webhook_created_disabled_is_disabled_by_hand_and_can_be_enabled() {
    let app = spawn_app().await;
    let token = app.token("acme");
    let res = app
        .create_webhook(
            "acme",
            json!({ "endpoint": "https://example.com/off", "events": [SHIPPED], "enabled": false }),
        )
        .await;
    let created = json_of(res, 201).await;
    assert_eq!(created["enabled"], false);
    assert_eq!(created["health"]["state"], "disabled");
    assert_eq!(created["health"]["reason"], "manual");
    let path = format!("/v1/acme/webhooks/{}", created["id"].as_str().expect("id"));
    assert_eq!(
        patch_webhook(&app, &path, json!({ "enabled": true }))
            .await
            .status(),
        204
    );
    let got = json_of(app.get(&path, &token).await, 200).await;
    assert_eq!(got["enabled"], true, "{got}");
    assert_eq!(got["health"]["state"], "healthy", "{got}");
}

#[tokio::test]
async fn patch_replay_skipped_must_be_a_boolean_and_needs_enabled_true() {
    let app = spawn_app().await;
    let id = app
        .webhook("acme", "https://example.com/a", &[SHIPPED])
        .await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let path = format!("/v1/acme/webhooks/{id}");
    let body = assert_flex_error(
        patch_webhook(
            &app,
            &path,
            json!({ "enabled": true, "replaySkipped": "yes" }),
        )
        .await,
        422,
        "ERR-CMR-0001",
    )
    .await;
    assert_eq!(
        body["validations"]["replaySkipped"],
        "replaySkipped must be a boolean"
    );
    let body = assert_flex_error(
        patch_webhook(
            &app,
            &path,
            json!({ "enabled": false, "replaySkipped": true }),
        )
        .await,
        422,
        "ERR-CMR-0001",
    )
    .await;
    let message = body["validations"]["replaySkipped"]
        .as_str()
        .expect("message");
    assert!(message.contains("enabled: true"), "{message}");
    // Refused means untouched: the webhook is still enabled.
    let got = json_of(app.get(&path, &app.token("acme")).await, 200).await;
    assert_eq!(got["enabled"], true);
    // Both problems at once when `enabled` is missing too.
    let body = assert_flex_error(
        patch_webhook(&app, &path, json!({ "replaySkipped": 1 })).await,
        422,
        "ERR-CMR-0001",
    )
    .await;
    assert!(
        body["validations"]["enabled"].is_string()
            && body["validations"]["replaySkipped"].is_string(),
        "{body}"
    );
    for ok in [
        json!({ "enabled": true, "replaySkipped": false }),
        json!({ "enabled": true, "replaySkipped": null }),
        json!({ "enabled": false, "replaySkipped": false }),
    ] {
        assert_eq!(patch_webhook(&app, &path, ok).await.status(), 204);
    }
}

/// The delivery of `event` to `webhook` as the event log's detail shows it.
async fn delivery_detail(app: &TestApp, webhook: &str, event: &str) -> Value {
    let path = format!("/v1/acme/webhooks/{webhook}/events/{event}");
    json_of(app.get(&path, &app.token("acme")).await, 200).await
}

#[tokio::test]
async fn events_skipped_while_disabled_are_replayed_only_when_asked() {
    let app = spawn_app().await;
    let id = app
        .webhook("acme", "https://example.com/a", &[SHIPPED])
        .await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let path = format!("/v1/acme/webhooks/{id}");
    assert_eq!(
        patch_webhook(&app, &path, json!({ "enabled": false }))
            .await
            .status(),
        204
    );
    let res = app
        .client
        .post(app.url("/v1/acme/events"))
        .bearer_auth(app.token("acme"))
        .json(&json!({ "type": SHIPPED, "data": {} }))
        .send()
        .await
        .expect("request");
    let event = json_of(res, 202).await;
    assert_eq!(event["deliveries"], 0, "a skipped delivery is not owed");
    let eid = event["id"].as_str().expect("id");
    let skipped = delivery_detail(&app, &id, eid).await;
    assert_eq!(skipped["status"], "SKIPPED");
    assert_eq!(skipped["statusReason"], "webhook_disabled");
    assert_eq!(skipped["nextAttempt"], Value::Null);

    // Enabling alone leaves what was skipped alone.
    assert_eq!(
        patch_webhook(&app, &path, json!({ "enabled": true }))
            .await
            .status(),
        204
    );
    assert_eq!(delivery_detail(&app, &id, eid).await["status"], "SKIPPED");

    // Asking for the replay on the enabled webhook parks it for the bounded-rate release.
    assert_eq!(
        patch_webhook(
            &app,
            &path,
            json!({ "enabled": true, "replaySkipped": true })
        )
        .await
        .status(),
        204
    );
    let replayed = delivery_detail(&app, &id, eid).await;
    assert_eq!(replayed["status"], "PARKED", "{replayed}");
    assert_eq!(replayed["statusReason"], "replay_skipped");
    let got = json_of(app.get(&path, &app.token("acme")).await, 200).await;
    assert_eq!(got["health"]["parkedDeliveries"], 1, "{got}");
}

#[tokio::test]
async fn creating_past_the_webhook_limit_is_422_naming_it_on_both_surfaces() {
    let app = spawn_app_with(|s| s.limits.max_webhooks_per_brand = 2).await;
    let a = app
        .webhook("acme", "https://example.com/a", &[SHIPPED])
        .await;
    app.webhook("acme", "https://example.com/b", &[SHIPPED])
        .await;
    let res = app
        .create_webhook(
            "acme",
            json!({ "endpoint": "https://example.com/c", "events": [SHIPPED] }),
        )
        .await;
    let body = assert_flex_error(res, 422, "ERR-CMR-0001").await;
    let message = body["validations"]["webhooks"].as_str().expect("message");
    assert!(
        message.contains("limits.max_webhooks_per_brand") && message.contains(" 2 "),
        "{message}"
    );
    assert!(
        body["description"]
            .as_str()
            .expect("description")
            .contains("limits.max_webhooks_per_brand"),
        "{body}"
    );
    // The FDX surface: its input-validation code, in its shape and status.
    let res = app
        .client
        .post(app.url("/v1/services/webhook"))
        .bearer_auth(app.token("acme"))
        .json(&json!({ "eventName": "Order_Shipped", "url": "https://example.com/d" }))
        .send()
        .await
        .expect("request");
    let body = assert_fdx_error(res, 400, "ERR-CMR-0001").await;
    assert!(
        body["errors"][0]["description"]
            .as_str()
            .expect("description")
            .contains("limits.max_webhooks_per_brand"),
        "{body}"
    );
    // The limit is per brand, and deleting one makes room.
    app.webhook("other", "https://example.com/c", &[SHIPPED])
        .await;
    let res = app
        .client
        .delete(app.url(&format!(
            "/v1/acme/webhooks/{}",
            a["id"].as_str().expect("id")
        )))
        .bearer_auth(app.token("acme"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 204);
    app.webhook("acme", "https://example.com/c", &[SHIPPED])
        .await;
}

#[tokio::test]
async fn concurrent_creates_never_pass_the_webhook_limit() {
    let app = spawn_app_with(|s| s.limits.max_webhooks_per_brand = 3).await;
    let creates = (0..12).map(|i| {
        let app = &app;
        async move {
            let body =
                json!({ "endpoint": format!("https://example.com/{i}"), "events": [SHIPPED] });
            app.create_webhook("acme", body).await.status().as_u16()
        }
    });
    let mut statuses = futures::future::join_all(creates).await;
    statuses.sort_unstable();
    assert_eq!(statuses, [[201; 3].as_slice(), &[422; 9]].concat());
    let list = json_of(app.get("/v1/acme/webhooks", &app.token("acme")).await, 200).await;
    assert_eq!(list.as_array().expect("array").len(), 3);
}
