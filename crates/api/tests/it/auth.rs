//! Authentication and authorisation: 401 for any token problem, 403 for a valid token without
//! the scope or the brand, and brand isolation.

use hookline_api::auth::{Brands, SCOPE_PUBLISH, SCOPE_WEBHOOKS};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::json;

use crate::helpers::{assert_flex_error, json_of, spawn_app, spawn_app_with, TestApp};

const RS_PRIVATE: &str = include_str!("fixtures/rs256_private.pem");
const RS_PUBLIC: &str = include_str!("fixtures/rs256_public.pem");
const OTHER_PRIVATE: &str = include_str!("fixtures/other_private.pem");

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn claims(exp: u64) -> serde_json::Value {
    json!({ "exp": exp, "scope": SCOPE_WEBHOOKS, "brands": ["acme"] })
}

fn hs256(secret: &str, claims: &serde_json::Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("encode")
}

fn rs256(pem: &str, claims: &serde_json::Value) -> String {
    let key = EncodingKey::from_rsa_pem(pem.as_bytes()).expect("pem");
    encode(&Header::new(Algorithm::RS256), claims, &key).expect("encode")
}

async fn list_with(app: &TestApp, token: &str) -> reqwest::Response {
    app.get("/v1/acme/webhooks", token).await
}

#[tokio::test]
async fn missing_or_garbage_token_is_401_with_www_authenticate() {
    let app = spawn_app().await;
    let res = app
        .client
        .get(app.url("/v1/acme/webhooks"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    let body = assert_flex_error(res, 401, "ERR-CMR-0002").await;
    assert_eq!(body["message"], "UNAUTHORIZED");
    assert_flex_error(list_with(&app, "not.a.jwt").await, 401, "ERR-CMR-0002").await;
    let res = app
        .client
        .get(app.url("/v1/acme/webhooks"))
        .header("Authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .expect("request");
    assert_flex_error(res, 401, "ERR-CMR-0002").await;
}

#[tokio::test]
async fn expired_token_is_401() {
    let app = spawn_app().await;
    let secret = hookline_config::DEV_HS256_SECRET;
    let token = hs256(secret, &claims(now() - 3600));
    assert_flex_error(list_with(&app, &token).await, 401, "ERR-CMR-0002").await;
    // The same claims, unexpired, pass: the key is right.
    assert_eq!(
        list_with(&app, &hs256(secret, &claims(now() + 60)))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn token_not_valid_yet_is_401() {
    let app = spawn_app().await;
    let secret = hookline_config::DEV_HS256_SECRET;
    let future = json!({ "exp": now() + 7200, "nbf": now() + 3600,
        "scope": SCOPE_WEBHOOKS, "brands": ["acme"] });
    assert_flex_error(
        list_with(&app, &hs256(secret, &future)).await,
        401,
        "ERR-CMR-0002",
    )
    .await;
    // Within the leeway for clock skew, it passes.
    let skewed = json!({ "exp": now() + 600, "nbf": now() + 10,
        "scope": SCOPE_WEBHOOKS, "brands": ["acme"] });
    assert_eq!(list_with(&app, &hs256(secret, &skewed)).await.status(), 200);
}

#[tokio::test]
async fn token_living_longer_than_the_maximum_is_401() {
    let app = spawn_app().await;
    let secret = hookline_config::DEV_HS256_SECRET;
    // The default maximum is 24 hours: by its issue time, or what is left without one.
    let long = json!({ "exp": now() + 7 * 86_400, "iat": now(),
        "scope": SCOPE_WEBHOOKS, "brands": ["acme"] });
    assert_flex_error(
        list_with(&app, &hs256(secret, &long)).await,
        401,
        "ERR-CMR-0002",
    )
    .await;
    let no_iat = json!({ "exp": now() + 2 * 86_400, "scope": SCOPE_WEBHOOKS, "brands": ["acme"] });
    assert_flex_error(
        list_with(&app, &hs256(secret, &no_iat)).await,
        401,
        "ERR-CMR-0002",
    )
    .await;
    let day = json!({ "exp": now() + 86_400, "iat": now(),
        "scope": SCOPE_WEBHOOKS, "brands": ["acme"] });
    assert_eq!(list_with(&app, &hs256(secret, &day)).await.status(), 200);
}

#[tokio::test]
async fn token_without_exp_is_401() {
    let app = spawn_app().await;
    let token = hs256(
        hookline_config::DEV_HS256_SECRET,
        &json!({ "scope": SCOPE_WEBHOOKS, "brands": ["acme"] }),
    );
    assert_flex_error(list_with(&app, &token).await, 401, "ERR-CMR-0002").await;
}

#[tokio::test]
async fn token_signed_with_another_key_is_401() {
    let app = spawn_app().await;
    let token = hs256("some-other-secret-entirely", &claims(now() + 60));
    assert_flex_error(list_with(&app, &token).await, 401, "ERR-CMR-0002").await;
}

#[tokio::test]
async fn alg_none_token_is_401() {
    let app = spawn_app().await;
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = b64.encode(claims(now() + 60).to_string());
    for token in [
        format!("{header}.{payload}."),
        format!("{header}.{payload}"),
    ] {
        assert_flex_error(list_with(&app, &token).await, 401, "ERR-CMR-0002").await;
    }
}

#[tokio::test]
async fn rs256_tokens_verify_with_the_configured_public_key_only() {
    let app = spawn_app_with(|s| s.auth.rs256_public_keys = vec![RS_PUBLIC.to_owned()]).await;
    assert_eq!(
        list_with(&app, &rs256(RS_PRIVATE, &claims(now() + 60)))
            .await
            .status(),
        200
    );
    let forged = rs256(OTHER_PRIVATE, &claims(now() + 60));
    assert_flex_error(list_with(&app, &forged).await, 401, "ERR-CMR-0002").await;
}

#[tokio::test]
async fn hs256_token_keyed_with_the_rsa_public_key_is_refused() {
    // Algorithm confusion: an attacker signs HS256 with the (public) RSA key as the secret.
    let app = spawn_app_with(|s| {
        s.auth.rs256_public_keys = vec![RS_PUBLIC.to_owned()];
        s.auth.hs256_secret = String::new().into();
    })
    .await;
    let token = hs256(RS_PUBLIC, &claims(now() + 60));
    assert_flex_error(list_with(&app, &token).await, 401, "ERR-CMR-0002").await;
}

#[tokio::test]
async fn issuer_and_audience_are_required_when_configured() {
    let app = spawn_app_with(|s| {
        s.auth.issuer = Some("https://auth.example".into());
        s.auth.audience = Some("hookline".into());
    })
    .await;
    let secret = hookline_config::DEV_HS256_SECRET;
    let mut good = claims(now() + 60);
    good["iss"] = json!("https://auth.example");
    good["aud"] = json!("hookline");
    assert_eq!(list_with(&app, &hs256(secret, &good)).await.status(), 200);
    let mut wrong_iss = good.clone();
    wrong_iss["iss"] = json!("https://evil.example");
    assert_flex_error(
        list_with(&app, &hs256(secret, &wrong_iss)).await,
        401,
        "ERR-CMR-0002",
    )
    .await;
    let mut no_aud = good.clone();
    no_aud.as_object_mut().expect("object").remove("aud");
    assert_flex_error(
        list_with(&app, &hs256(secret, &no_aud)).await,
        401,
        "ERR-CMR-0002",
    )
    .await;
}

#[tokio::test]
async fn token_without_the_scope_is_403() {
    let app = spawn_app().await;
    let token = app.token_with(Brands::List(vec!["acme".into()]), &[SCOPE_PUBLISH]);
    let body = assert_flex_error(list_with(&app, &token).await, 403, "ERR-HKL-0001").await;
    assert_eq!(body["message"], "FORBIDDEN");
}

#[tokio::test]
async fn token_for_another_brand_is_403_on_every_route() {
    let app = spawn_app().await;
    let created = app
        .webhook("acme", "https://example.com/a", &["RECEIPTS"])
        .await;
    let id = created["id"].as_str().expect("id");
    let intruder = app.token("evil");
    let existing = format!("/v1/acme/webhooks/{id}");
    let missing = "/v1/acme/webhooks/3fa85f64-5717-4562-b3fc-2c963f66afa6";
    // Same answer whether the webhook exists or not: nothing leaks.
    for path in [existing.as_str(), missing] {
        assert_flex_error(app.get(path, &intruder).await, 403, "ERR-HKL-0001").await;
        let res = app
            .client
            .delete(app.url(path))
            .bearer_auth(&intruder)
            .send()
            .await
            .expect("request");
        assert_flex_error(res, 403, "ERR-HKL-0001").await;
    }
    // Still there for its owner.
    assert_eq!(app.get(&existing, &app.token("acme")).await.status(), 200);
}

#[tokio::test]
async fn a_brand_cannot_reach_another_brands_webhook_through_its_own_path() {
    let app = spawn_app().await;
    let theirs = app
        .webhook("acme", "https://example.com/a", &["RECEIPTS"])
        .await;
    let id = theirs["id"].as_str().expect("id");
    let evil = app.token("evil");
    let path = format!("/v1/evil/webhooks/{id}");
    assert_flex_error(app.get(&path, &evil).await, 404, "ERR-WHK-0004").await;
    let res = app
        .client
        .delete(app.url(&path))
        .bearer_auth(&evil)
        .send()
        .await
        .expect("request");
    assert_flex_error(res, 404, "ERR-WHK-0004").await;
    let res = app
        .client
        .patch(app.url(&path))
        .bearer_auth(&evil)
        .json(&json!({ "enabled": false }))
        .send()
        .await
        .expect("request");
    assert_flex_error(res, 404, "ERR-WHK-0004").await;
    assert_flex_error(
        app.get(&format!("{path}/secret"), &evil).await,
        404,
        "ERR-WHK-0004",
    )
    .await;
    assert_eq!(
        json_of(app.get("/v1/evil/webhooks", &evil).await, 200).await,
        json!([])
    );
}

#[tokio::test]
async fn wildcard_brand_token_reaches_every_brand() {
    let app = spawn_app().await;
    app.webhook("acme", "https://example.com/a", &["RECEIPTS"])
        .await;
    let list = json_of(app.get("/v1/acme/webhooks", &app.admin_token()).await, 200).await;
    assert_eq!(list.as_array().expect("array").len(), 1);
}

#[tokio::test]
async fn the_dev_secret_is_refused_unless_the_api_listens_on_loopback_only() {
    let db = hookline_store::testing::TestDatabase::create().await;
    let mut settings = crate::helpers::test_settings(&db);
    settings.http.bind = "0.0.0.0:0".into();
    let Err(err) = hookline_api::Application::build(settings.clone()).await else {
        panic!("the API started on every interface with the dev secret");
    };
    let message = format!("{err:#}");
    assert!(
        message.contains("HOOKLINE__AUTH__HS256_SECRET"),
        "{message}"
    );
    // With a secret of its own (and a secrets key of its own: the dev one is refused beyond
    // loopback too, see `secrets.rs`), the same bind is fine.
    settings.auth.hs256_secret = "a-secret-of-this-deployment-only-0123456789".into();
    settings.secrets.keys = "k1:BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=".into();
    settings.secrets.active_key = "k1".into();
    let app = hookline_api::Application::build(settings)
        .await
        .expect("a real secret on 0.0.0.0");
    drop(app);
}
