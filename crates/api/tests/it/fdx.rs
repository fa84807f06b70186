//! FDX routes (`/v1/services/webhook…`): the spec's create, and list/get/delete/status beside
//! it, with the spec's error codes and statuses.

use hookline_api::auth::{Brands, SCOPE_WEBHOOKS};
use serde_json::{json, Value};

use crate::helpers::{assert_fdx_error, json_of, spawn_app, TestApp};

const PATH: &str = "/v1/services/webhook";

async fn post(app: &TestApp, token: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url(PATH))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("request")
}

async fn put_status(app: &TestApp, token: &str, id: &str, body: Value) -> reqwest::Response {
    app.client
        .put(app.url(&format!("{PATH}/{id}/status")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("request")
}

/// Creates a webhook through FDX and returns its id.
async fn fdx_webhook(app: &TestApp, brand: &str, event: &str, url: &str) -> String {
    let body = json_of(
        post(
            app,
            &app.token(brand),
            json!({ "eventName": event, "url": url }),
        )
        .await,
        200,
    )
    .await;
    body["webhooks"][0]["webhookId"]
        .as_str()
        .expect("webhookId")
        .to_owned()
}

#[tokio::test]
async fn create_answers_the_spec_envelope_and_the_webhook_is_visible_to_flexengage() {
    let app = spawn_app().await;
    let body = json_of(
        post(
            &app,
            &app.token("acme"),
            json!({ "eventName": "Order_Shipped", "url": "https://example.com/fdx" }),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(body["status"], "success");
    assert!(body["requestIdentifier"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));
    let date = body["transactionDate"].as_str().expect("transactionDate");
    chrono::DateTime::parse_from_rfc3339(date).expect("RFC 3339 with offset");
    let id = body["webhooks"][0]["webhookId"]
        .as_str()
        .expect("webhookId");
    assert!(body["webhooks"][0]["secret"]
        .as_str()
        .expect("generated secret")
        .starts_with("whsec_"));

    // The same row through the flexEngage surface: the FDX name is an alias of a leaf.
    let flex = json_of(
        app.get(&format!("/v1/acme/webhooks/{id}"), &app.token("acme"))
            .await,
        200,
    )
    .await;
    assert_eq!(flex["events"], json!(["ORDER_EVENTS.OMS.ORDER_SHIPPED"]));
    assert_eq!(flex["endpoint"], "https://example.com/fdx");
}

#[tokio::test]
async fn create_accepts_the_access_token_header_and_a_given_secret() {
    let app = spawn_app().await;
    let res = app
        .client
        .post(app.url(PATH))
        .header("AccessToken", app.token("acme"))
        .json(&json!({ "eventName": "Order_PartiallyShipped", "url": "https://example.com/p", "secret": "my-own-secret" }))
        .send()
        .await
        .expect("request");
    let body = json_of(res, 200).await;
    assert!(
        body["webhooks"][0].get("secret").is_none(),
        "a given secret is never echoed"
    );
    let id = body["webhooks"][0]["webhookId"].as_str().expect("id");
    let secret = json_of(
        app.get(
            &format!("/v1/acme/webhooks/{id}/secret"),
            &app.token("acme"),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(secret["secret"], "my-own-secret");
    let flex = json_of(
        app.get(&format!("/v1/acme/webhooks/{id}"), &app.token("acme"))
            .await,
        200,
    )
    .await;
    assert_eq!(
        flex["events"],
        json!(["ORDER_EVENTS.OMS.ORDER_PARTIALLY_SHIPPED"])
    );
}

#[tokio::test]
async fn create_validation_errors_use_the_catalogue_codes() {
    let app = spawn_app().await;
    let token = app.token("acme");
    let url = "https://example.com/h";
    assert_fdx_error(
        post(&app, &token, json!({ "url": url })).await,
        400,
        "ERR-WHK-0001",
    )
    .await;
    assert_fdx_error(
        post(&app, &token, json!({ "eventName": "", "url": url })).await,
        400,
        "ERR-WHK-0001",
    )
    .await;
    assert_fdx_error(
        post(
            &app,
            &token,
            json!({ "eventName": "Order_Lost", "url": url }),
        )
        .await,
        400,
        "ERR-WHK-0002",
    )
    .await;
    assert_fdx_error(
        post(&app, &token, json!({ "eventName": "Order_Shipped" })).await,
        400,
        "ERR-WHK-0003",
    )
    .await;
    assert_fdx_error(
        post(
            &app,
            &token,
            json!({ "eventName": "Order_Shipped", "url": " " }),
        )
        .await,
        400,
        "ERR-WHK-0003",
    )
    .await;
    assert_fdx_error(
        post(
            &app,
            &token,
            json!({ "eventName": "Order_Shipped", "url": "http://127.0.0.1/x" }),
        )
        .await,
        400,
        "ERR-CMR-0001",
    )
    .await;
    // Every problem is listed, not only the first.
    let body = assert_fdx_error(post(&app, &token, json!({})).await, 400, "ERR-WHK-0001").await;
    let codes: Vec<&str> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["code"].as_str())
        .collect();
    assert_eq!(codes, ["ERR-WHK-0001", "ERR-WHK-0003"]);
    // Malformed JSON is a 400 in the FDX shape.
    let res = app
        .client
        .post(app.url(PATH))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("request");
    assert_fdx_error(res, 400, "ERR-CMR-0001").await;
}

#[tokio::test]
async fn duplicate_is_err_whk_0009() {
    let app = spawn_app().await;
    fdx_webhook(&app, "acme", "Order_Shipped", "https://example.com/d").await;
    let res = post(
        &app,
        &app.token("acme"),
        json!({ "eventName": "Order_Shipped", "url": "https://example.com/d" }),
    )
    .await;
    assert_fdx_error(res, 400, "ERR-WHK-0009").await;
}

#[tokio::test]
async fn bad_or_missing_token_is_err_cmr_0002_and_other_brand_is_403() {
    let app = spawn_app().await;
    let body = json!({ "eventName": "Order_Shipped", "url": "https://example.com/h" });
    let res = app
        .client
        .post(app.url(PATH))
        .json(&body)
        .send()
        .await
        .expect("request");
    assert_fdx_error(res, 401, "ERR-CMR-0002").await;
    assert_fdx_error(
        post(&app, "not.a.jwt", body.clone()).await,
        401,
        "ERR-CMR-0002",
    )
    .await;
    let wrong_scope = app.token_with(Brands::List(vec!["acme".into()]), &["other/scope"]);
    assert_fdx_error(
        post(&app, &wrong_scope, body.clone()).await,
        403,
        "ERR-HKL-0001",
    )
    .await;
    // A multi-brand token must name the brand, and only one it covers.
    let two = app.token_with(
        Brands::List(vec!["a".into(), "b".into()]),
        &[SCOPE_WEBHOOKS],
    );
    assert_fdx_error(post(&app, &two, body.clone()).await, 403, "ERR-HKL-0001").await;
    let res = app
        .client
        .post(app.url(PATH))
        .bearer_auth(&two)
        .header("X-Hookline-Brand", "c")
        .json(&body)
        .send()
        .await
        .expect("request");
    assert_fdx_error(res, 403, "ERR-HKL-0001").await;
    let res = app
        .client
        .post(app.url(PATH))
        .bearer_auth(&two)
        .header("X-Hookline-Brand", "b")
        .json(&body)
        .send()
        .await
        .expect("request");
    json_of(res, 200).await;
}

#[tokio::test]
async fn list_get_and_delete_are_scoped_to_the_tokens_brand() {
    let app = spawn_app().await;
    let empty = json_of(app.get(PATH, &app.token("acme")).await, 200).await;
    assert_eq!(empty["webhooks"], json!([]));
    let id = fdx_webhook(&app, "acme", "Order_Shipped", "https://example.com/1").await;
    fdx_webhook(&app, "other", "Order_Shipped", "https://example.com/2").await;

    let list = json_of(app.get(PATH, &app.token("acme")).await, 200).await;
    assert_eq!(list["webhooks"].as_array().expect("array").len(), 1);
    assert_eq!(list["webhooks"][0]["webhookId"], id.as_str());
    assert_eq!(list["webhooks"][0]["eventName"], "Order_Shipped");
    assert_eq!(list["webhooks"][0]["status"], "ACTIVE");

    let one = json_of(
        app.get(&format!("{PATH}/{id}"), &app.token("acme")).await,
        200,
    )
    .await;
    assert_eq!(one["webhooks"][0]["url"], "https://example.com/1");
    // Another brand's token sees nothing: the same 404 as an id that does not exist.
    assert_fdx_error(
        app.get(&format!("{PATH}/{id}"), &app.token("other")).await,
        404,
        "ERR-WHK-0004",
    )
    .await;
    assert_fdx_error(
        app.get(&format!("{PATH}/not-a-uuid"), &app.token("acme"))
            .await,
        404,
        "ERR-WHK-0004",
    )
    .await;

    let del = |token: String| {
        let url = app.url(&format!("{PATH}/{id}"));
        let client = app.client.clone();
        async move {
            client
                .delete(url)
                .bearer_auth(token)
                .send()
                .await
                .expect("request")
        }
    };
    assert_fdx_error(del(app.token("other")).await, 404, "ERR-WHK-0004").await;
    let body = json_of(del(app.token("acme")).await, 200).await;
    assert_eq!(body["webhooks"][0]["webhookId"], id.as_str());
    assert_fdx_error(del(app.token("acme")).await, 404, "ERR-WHK-0004").await;
}

#[tokio::test]
async fn status_changes_use_err_whk_0004_to_0007() {
    let app = spawn_app().await;
    let token = app.token("acme");
    let id = fdx_webhook(&app, "acme", "Order_Shipped", "https://example.com/s").await;

    let already = assert_fdx_error(
        put_status(&app, &token, &id, json!({ "status": "ACTIVE" })).await,
        400,
        "ERR-WHK-0006",
    )
    .await;
    assert!(already["errors"][0]["description"]
        .as_str()
        .expect("d")
        .contains(&id));
    let body = json_of(
        put_status(&app, &token, &id, json!({ "status": "INACTIVE" })).await,
        200,
    )
    .await;
    assert_eq!(body["webhooks"][0]["status"], "INACTIVE");
    assert_fdx_error(
        put_status(&app, &token, &id, json!({ "status": "INACTIVE" })).await,
        400,
        "ERR-WHK-0007",
    )
    .await;
    let body = json_of(
        put_status(&app, &token, &id, json!({ "status": "ACTIVE" })).await,
        200,
    )
    .await;
    assert_eq!(body["webhooks"][0]["status"], "ACTIVE");

    assert_fdx_error(
        put_status(&app, &token, &id, json!({ "status": "PAUSED" })).await,
        400,
        "ERR-WHK-0005",
    )
    .await;
    assert_fdx_error(
        put_status(&app, &token, &id, json!({ "status": true })).await,
        400,
        "ERR-WHK-0005",
    )
    .await;
    assert_fdx_error(
        put_status(&app, &token, &id, json!({})).await,
        400,
        "ERR-CMR-0003",
    )
    .await;
    let unknown = uuid::Uuid::new_v4().to_string();
    assert_fdx_error(
        put_status(&app, &token, &unknown, json!({ "status": "ACTIVE" })).await,
        404,
        "ERR-WHK-0004",
    )
    .await;
    assert_fdx_error(
        put_status(
            &app,
            &app.token("other"),
            &id,
            json!({ "status": "INACTIVE" }),
        )
        .await,
        404,
        "ERR-WHK-0004",
    )
    .await;

    // The flexEngage surface sees the same state.
    let flex = json_of(
        app.get(&format!("/v1/acme/webhooks/{id}"), &token).await,
        200,
    )
    .await;
    assert_eq!(flex["enabled"], true);
}

#[tokio::test]
async fn wrong_method_on_an_fdx_route_is_405_in_the_fdx_shape() {
    let app = spawn_app().await;
    let res = app
        .client
        .patch(app.url(PATH))
        .bearer_auth(app.token("acme"))
        .send()
        .await
        .expect("request");
    assert_fdx_error(res, 405, "ERR-HKL-0008").await;
}

#[tokio::test]
async fn get_and_list_show_health_and_status_takes_replay_skipped() {
    let app = spawn_app().await;
    let token = app.token("acme");
    let id = fdx_webhook(&app, "acme", "Order_Shipped", "https://example.com/h").await;
    let one = json_of(app.get(&format!("{PATH}/{id}"), &token).await, 200).await;
    assert_eq!(
        one["webhooks"][0]["health"],
        json!({
            "state": "healthy", "reason": null, "consecutiveFailures": 0, "lastSuccess": null,
            "lastFailure": null, "failingSince": null, "since": null, "parkedDeliveries": 0,
        })
    );
    let list = json_of(app.get(PATH, &token).await, 200).await;
    assert_eq!(list["webhooks"][0]["health"]["state"], "healthy");
    assert!(list["webhooks"][0]["health"]
        .get("parkedDeliveries")
        .is_none());

    // replaySkipped must be a boolean, and only goes with ACTIVE.
    let body = assert_fdx_error(
        put_status(
            &app,
            &token,
            &id,
            json!({ "status": "INACTIVE", "replaySkipped": true }),
        )
        .await,
        400,
        "ERR-CMR-0001",
    )
    .await;
    assert!(
        body["errors"][0]["description"]
            .as_str()
            .expect("description")
            .contains("replaySkipped"),
        "{body}"
    );
    assert_fdx_error(
        put_status(
            &app,
            &token,
            &id,
            json!({ "status": "ACTIVE", "replaySkipped": "yes" }),
        )
        .await,
        400,
        "ERR-CMR-0001",
    )
    .await;
    let body = assert_fdx_error(
        put_status(&app, &token, &id, json!({ "replaySkipped": 3 })).await,
        400,
        "ERR-CMR-0003",
    )
    .await;
    assert_eq!(
        body["errors"][1]["code"], "ERR-CMR-0001",
        "every problem listed"
    );

    // INACTIVE: status and health agree; the status answer carries the health too.
    let body = json_of(
        put_status(&app, &token, &id, json!({ "status": "INACTIVE" })).await,
        200,
    )
    .await;
    assert_eq!(body["webhooks"][0]["status"], "INACTIVE");
    assert_eq!(body["webhooks"][0]["health"]["state"], "disabled");
    assert_eq!(body["webhooks"][0]["health"]["reason"], "manual");
    let res = app
        .client
        .post(app.url("/v1/acme/events"))
        .bearer_auth(&token)
        .json(&json!({ "type": "ORDER_EVENTS.OMS.ORDER_SHIPPED", "data": {} }))
        .send()
        .await
        .expect("request");
    let eid = json_of(res, 202).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let detail = format!("/v1/acme/webhooks/{id}/events/{eid}");
    assert_eq!(
        json_of(app.get(&detail, &token).await, 200).await["status"],
        "SKIPPED"
    );

    // ACTIVE with replaySkipped re-queues what was skipped.
    let body = json_of(
        put_status(
            &app,
            &token,
            &id,
            json!({ "status": "ACTIVE", "replaySkipped": true }),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(body["webhooks"][0]["status"], "ACTIVE");
    assert_eq!(body["webhooks"][0]["health"]["state"], "healthy");
    let replayed = json_of(app.get(&detail, &token).await, 200).await;
    assert_eq!(replayed["status"], "PARKED", "{replayed}");
    assert_eq!(replayed["statusReason"], "replay_skipped");
    // On an active webhook it is still a request to replay, not "already active"; without it,
    // the catalogue's error as before.
    json_of(
        put_status(
            &app,
            &token,
            &id,
            json!({ "status": "ACTIVE", "replaySkipped": true }),
        )
        .await,
        200,
    )
    .await;
    assert_fdx_error(
        put_status(&app, &token, &id, json!({ "status": "ACTIVE" })).await,
        400,
        "ERR-WHK-0006",
    )
    .await;
}
