//! The OpenAPI contract (`openapi/hookline.yaml`, served at `/openapi.yaml`) against the real
//! server.
//!
//! - Routes: the (method, path) pairs of the document equal those `routes::configure` mounts
//!   (read from its source, so a route added there without a document entry fails here), and
//!   probing the running server confirms each documented operation is served and every other
//!   method on a documented path is not.
//! - Responses: for representative requests per operation (a success and at least one error
//!   each) the status is documented, the content type is one the document lists, required
//!   headers are present and valid, and the body validates against the documented schema.
//!
//! The document is parsed with `openapiv3` (which also proves it is structurally OpenAPI 3.0)
//! and its schemas are validated with the `jsonschema` crate as JSON Schema 2020-12, after
//! rewriting OpenAPI 3.0's `nullable: true` into a `null` alternative.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use chrono::Utc;
use hookline_api::{
    auth::{Brands, SCOPE_WEBHOOKS},
    routes::openapi::DOCUMENT,
};
use hookline_domain::AttemptResult;
use hookline_store::{
    deliveries::{self, NextState, Recorded},
    models::NewAttempt,
};
use openapiv3::{OpenAPI, ReferenceOr, StatusCode};
use reqwest::{Method, RequestBuilder};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{spawn_app, spawn_app_with};

/// The source of `routes::configure`, the one place routes are mounted.
const ROUTES_SOURCE: &str = include_str!("../../src/routes/mod.rs");

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];
const SHIPPED: &str = "ORDER_EVENTS.OMS.ORDER_SHIPPED";
/// The worker's default: the two failures recorded here leave the endpoint healthy.
const FAILURE_THRESHOLD: u32 = 5;

/// The document, parsed twice: as OpenAPI for its structure, as JSON for its schemas.
struct Contract {
    api: OpenAPI,
    raw: Value,
    /// `components/schemas` as JSON Schema (`nullable` rewritten, refs pointing at `$defs`).
    defs: Value,
    /// (METHOD, path template, status) of every checked response.
    covered: Mutex<BTreeSet<(String, String, u16)>>,
}

impl Contract {
    fn load() -> Contract {
        let api: OpenAPI = serde_yaml_ng::from_str(DOCUMENT).expect("a valid OpenAPI 3.0 document");
        assert!(
            api.openapi.starts_with("3.0."),
            "OpenAPI 3.0.x: {}",
            api.openapi
        );
        let raw: Value = serde_yaml_ng::from_str(DOCUMENT).expect("YAML");
        let mut defs = raw["components"]["schemas"].clone();
        to_json_schema(&mut defs);
        Contract {
            api,
            raw,
            defs,
            covered: Mutex::new(BTreeSet::new()),
        }
    }

    /// Every (METHOD, path template) the document describes.
    fn operations(&self) -> BTreeSet<(String, String)> {
        let mut ops = BTreeSet::new();
        for (path, item) in self.api.paths.iter() {
            let ReferenceOr::Item(item) = item else {
                panic!("{path}: path items are inline in this document");
            };
            for (method, _) in item.iter() {
                ops.insert((method.to_uppercase(), path.clone()));
            }
        }
        ops
    }

    fn validator(&self, schema: &Value) -> jsonschema::Validator {
        let mut schema = schema.clone();
        to_json_schema(&mut schema);
        let root = json!({ "$defs": self.defs, "allOf": [schema] });
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(&root)
            .unwrap_or_else(|e| panic!("schema does not compile: {e}\n{root:#}"))
    }

    /// Follows a local `$ref` (`#/components/...`) in the raw document.
    fn deref<'a>(&'a self, value: &'a Value) -> &'a Value {
        match value.get("$ref").and_then(Value::as_str) {
            Some(pointer) => {
                let target = self
                    .raw
                    .pointer(pointer.trim_start_matches('#'))
                    .unwrap_or_else(|| panic!("dangling $ref {pointer}"));
                self.deref(target)
            }
            None => value,
        }
    }

    /// Sends `req` as an instance of (method, template), asserts it answered `status`, and
    /// checks the response against the document. Returns the body as JSON (`Null` if empty).
    async fn check(&self, method: &str, template: &str, req: RequestBuilder, status: u16) -> Value {
        let res = req.send().await.expect("request");
        let actual = res.status().as_u16();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.expect("body");
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let what = format!("{method} {template} → {actual}");
        assert_eq!(actual, status, "{what}: unexpected status; body: {text}");

        let ops = self.operations();
        assert!(
            ops.contains(&(method.to_owned(), template.to_owned())),
            "{method} {template} is not in the document"
        );
        let operation = &self.raw["paths"][template][method.to_lowercase()];
        let documented = self.api.paths.paths[template]
            .as_item()
            .and_then(|item| item.iter().find(|(m, _)| m.eq_ignore_ascii_case(method)))
            .map(|(_, op)| op)
            .expect("operation");
        assert!(
            documented
                .responses
                .responses
                .contains_key(&StatusCode::Code(actual)),
            "{what}: status not documented; body: {text}"
        );
        let response = self.deref(&operation["responses"][actual.to_string()]);

        for (name, header) in response["headers"].as_object().into_iter().flatten() {
            let header = self.deref(header);
            let value = headers.get(name.as_str());
            if header["required"] == json!(true) {
                assert!(value.is_some(), "{what}: required header {name} missing");
            }
            if let Some(value) = value {
                let value = value.to_str().expect("ASCII header");
                let instance = if header["schema"]["type"] == "integer" {
                    value
                        .parse::<i64>()
                        .map(Value::from)
                        .unwrap_or_else(|_| Value::from(value))
                } else {
                    Value::from(value)
                };
                let validator = self.validator(&header["schema"]);
                let errors: Vec<String> = validator
                    .iter_errors(&instance)
                    .map(|e| e.to_string())
                    .collect();
                assert!(errors.is_empty(), "{what}: header {name}: {errors:?}");
            }
        }

        let body = match response.get("content").and_then(Value::as_object) {
            None => {
                assert!(
                    bytes.is_empty(),
                    "{what}: documented without a body: {text}"
                );
                Value::Null
            }
            Some(content) => {
                let content_type = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                let essence = content_type
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase();
                let media = content.get(&essence).unwrap_or_else(|| {
                    panic!("{what}: content type {content_type:?} not documented")
                });
                if essence == "application/json" {
                    let body: Value = serde_json::from_slice(&bytes)
                        .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {text}"));
                    let validator = self.validator(&media["schema"]);
                    let errors: Vec<String> = validator
                        .iter_errors(&body)
                        .map(|e| format!("{} at {}", e, e.instance_path()))
                        .collect();
                    assert!(errors.is_empty(), "{what}: {errors:#?}\nbody: {body:#}");
                    body
                } else {
                    Value::String(text)
                }
            }
        };
        self.covered
            .lock()
            .expect("lock")
            .insert((method.to_owned(), template.to_owned(), actual));
        body
    }
}

/// OpenAPI 3.0 Schema Objects → JSON Schema: `nullable: true` becomes a `null` alternative (a
/// type array, or `anyOf` beside a `$ref`/`allOf`), and `#/components/schemas/X` refs point at
/// `#/$defs/X`, where [`Contract::validator`] puts them.
fn to_json_schema(value: &mut Value) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(to_json_schema),
        Value::Object(map) => {
            map.values_mut().for_each(to_json_schema);
            if let Some(Value::String(r)) = map.get_mut("$ref") {
                if let Some(name) = r.strip_prefix("#/components/schemas/") {
                    *r = format!("#/$defs/{name}");
                }
            }
            if map.remove("nullable") == Some(Value::Bool(true)) {
                if let Some(Value::String(t)) = map.get("type").cloned() {
                    map.insert("type".into(), json!([t, "null"]));
                    if let Some(Value::Array(values)) = map.get_mut("enum") {
                        values.push(Value::Null);
                    }
                } else {
                    let inner = Value::Object(std::mem::take(map));
                    map.insert("anyOf".into(), json!([inner, { "type": "null" }]));
                }
            }
        }
        _ => {}
    }
}

/// (METHOD, path) of every route `routes::configure` mounts, read from its source:
/// `web::resource("PATH")` followed by its `.route(web::METHOD()…)` calls.
fn server_routes() -> BTreeSet<(String, String)> {
    let start = ROUTES_SOURCE
        .find("pub fn configure(")
        .expect("routes::configure");
    let body = &ROUTES_SOURCE[start..];
    let body = &body[..body.find("\n}\n").expect("end of configure")];
    let mut routes = BTreeSet::new();
    for chunk in body.split("resource(\"").skip(1) {
        let path = &chunk[..chunk.find('"').expect("closing quote")];
        // `.on(M::GET, …)`; HEAD comes with every GET and the document lists only GET.
        for route in chunk.split(".on(M::").skip(1) {
            let method = &route[..route.find(',').expect("method, handler")];
            routes.insert((method.to_owned(), path.to_owned()));
        }
    }
    assert!(
        routes.len() > 10,
        "could not read routes from mod.rs: {routes:?}"
    );
    routes
}

/// A concrete path for a template: a brand and fresh ids.
fn instantiate(template: &str) -> String {
    template
        .replace("{brandId}", "acme")
        .replace("{id}", &Uuid::new_v4().to_string())
        .replace("{eventId}", &Uuid::new_v4().to_string())
        .replace("{webhookId}", &Uuid::new_v4().to_string())
}

/// The generic "no such route" 404 (`ERR-HKL-0002` "No route for …"), as opposed to a 404 of a
/// served route about a missing resource.
fn is_no_route(status: u16, body: &Value) -> bool {
    status == 404
        && body["description"]
            .as_str()
            .or_else(|| body["errors"][0]["description"].as_str())
            .is_some_and(|d| d.starts_with("No route for"))
}

#[tokio::test]
async fn every_documented_route_is_served_and_every_served_route_is_documented() {
    let contract = Contract::load();
    let documented = contract.operations();
    let mounted = server_routes();
    assert_eq!(
        documented.difference(&mounted).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "documented but not mounted in routes::configure"
    );
    assert_eq!(
        mounted.difference(&documented).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "mounted in routes::configure but not documented"
    );

    let app = spawn_app().await;
    let token = app.admin_token();
    let paths: BTreeSet<&String> = documented.iter().map(|(_, p)| p).collect();
    for template in paths {
        let path = instantiate(template);
        for method in METHODS {
            let res = app
                .client
                .request(
                    Method::from_bytes(method.as_bytes()).expect("method"),
                    app.url(&path),
                )
                .bearer_auth(&token)
                .header("X-Hookline-Brand", "acme")
                .json(&json!({}))
                .send()
                .await
                .expect("request");
            let status = res.status().as_u16();
            let allow: Option<BTreeSet<String>> = res
                .headers()
                .get("allow")
                .and_then(|v| v.to_str().ok())
                .map(|v| v.split(',').map(|m| m.trim().to_owned()).collect());
            let text = res.text().await.expect("body");
            let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let served = status != 405 && !is_no_route(status, &body);
            let listed = documented.contains(&((*method).to_owned(), template.clone()));
            assert_eq!(
                served, listed,
                "{method} {path} ({template}): documented {listed}, answered {status} {text}"
            );
            if status == 405 {
                let code = body.get("code").unwrap_or(&body["errors"][0]["code"]);
                assert_eq!(code, "ERR-HKL-0008", "{method} {path}: {text}");
                // RFC 9110 §15.5.6: a 405 lists the methods the path does answer.
                let mut answered: BTreeSet<String> = documented
                    .iter()
                    .filter(|(_, p)| p == template)
                    .map(|(m, _)| m.clone())
                    .collect();
                if answered.contains("GET") {
                    answered.insert("HEAD".to_owned());
                }
                assert_eq!(allow, Some(answered), "{method} {path}: Allow");
            }
        }
        // HEAD answers as GET does, without the body (RFC 9110 §9.3.2).
        if documented.contains(&("GET".to_owned(), template.clone())) {
            let send = |method: Method| {
                app.client
                    .request(method, app.url(&path))
                    .bearer_auth(&token)
                    .header("X-Hookline-Brand", "acme")
                    .send()
            };
            let get = send(Method::GET).await.expect("GET");
            let head = send(Method::HEAD).await.expect("HEAD");
            assert_eq!(head.status(), get.status(), "HEAD {path}");
            assert_eq!(
                head.headers().get("content-type"),
                get.headers().get("content-type"),
                "HEAD {path}"
            );
            assert!(
                head.bytes().await.expect("HEAD body").is_empty(),
                "HEAD {path} sent a body"
            );
        }
    }
    // Paths outside the document are the generic 404.
    let res = app.get("/v1/acme/nothing/here", &token).await;
    let status = res.status().as_u16();
    let body: Value = res.json().await.expect("json");
    assert!(is_no_route(status, &body), "{status} {body}");
}

#[tokio::test]
async fn every_schema_in_the_document_compiles_and_the_served_document_is_the_file() {
    let contract = Contract::load();
    for schema in contract.raw["components"]["schemas"]
        .as_object()
        .expect("schemas")
        .values()
    {
        contract.validator(schema);
    }
    let app = spawn_app().await;
    let res = app
        .client
        .get(app.url("/openapi.yaml"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/yaml");
    assert_eq!(res.text().await.expect("body"), DOCUMENT);
}

/// Attempt rows as the worker records them: one without a response, one with.
fn attempts(webhook_id: Uuid, event_id: Uuid) -> Vec<Recorded> {
    let attempt = |response: bool| NewAttempt {
        id: Uuid::now_v7(),
        webhook_id,
        event_id,
        created: Utc::now(),
        status: "FAILURE".into(),
        request_endpoint: "https://example.com/h".into(),
        request_headers: json!({ "content-type": "application/json", "webhook-id": "x" }),
        response_status_code: response.then_some(500),
        response_headers: response.then(|| json!({ "content-type": "text/plain" })),
        response_body: response.then(|| "nope".into()),
        response_time_ms: 12,
        error: (!response).then(|| "connection refused".into()),
    };
    vec![
        Recorded {
            attempt: attempt(false),
            next: NextState::Retry {
                at: Utc::now() + chrono::Duration::minutes(5),
            },
            result: AttemptResult::Unreachable,
            probe: false,
        },
        Recorded {
            attempt: attempt(true),
            next: NextState::Failure,
            result: AttemptResult::ServerError,
            probe: false,
        },
    ]
}

#[tokio::test]
async fn responses_of_every_operation_match_the_document() {
    let c = Contract::load();
    let app = spawn_app().await;
    let acme = app.token("acme");
    let other = app.token("other");
    let admin = app.admin_token();
    let no_publish = app.token_with(Brands::List(vec!["acme".into()]), &[SCOPE_WEBHOOKS]);
    let http = &app.client;
    let url = |p: &str| app.url(p);

    // Operations.
    c.check("GET", "/healthz", http.get(url("/healthz")), 200)
        .await;
    c.check("GET", "/readyz", http.get(url("/readyz")), 200)
        .await;
    // Metrics live on the admin listener only: the public port answers 404 in the error shape.
    let res = http.get(url("/metrics")).send().await.expect("request");
    assert_eq!(res.status(), 404);
    let body: Value = res.json().await.expect("json error");
    assert!(body["code"].is_string(), "{body}");
    c.check("GET", "/openapi.yaml", http.get(url("/openapi.yaml")), 200)
        .await;

    // flexEngage webhooks.
    let t = "/v1/{brandId}/webhooks";
    let create = |token: &str, body: Value| {
        http.post(url("/v1/acme/webhooks"))
            .bearer_auth(token)
            .json(&body)
    };
    let hook = json!({ "endpoint": "https://example.com/h", "events": [SHIPPED, "RECEIPTS"] });
    let w = c.check("POST", t, create(&acme, hook.clone()), 201).await;
    let wid = w["id"].as_str().expect("id").to_owned();
    let grouped = json!({
        "endpoint": "https://example.com/g", "events": ["ORDER_EVENTS.*"],
        "enabled": false, "secret": "top_secret",
    });
    let off = c.check("POST", t, create(&acme, grouped), 201).await;
    let off_id = off["id"].as_str().expect("id").to_owned();
    assert_eq!(off["health"]["state"], "disabled", "{off}");
    // Subscribed to Hookline's operational events, which the status changes below publish.
    let operational =
        json!({ "endpoint": "https://example.com/ops", "events": ["WEBHOOK_EVENTS"] });
    let ops = c.check("POST", t, create(&acme, operational), 201).await;
    let ops_id = ops["id"].as_str().expect("id").to_owned();
    c.check("POST", t, create(&acme, hook.clone()), 409).await;
    c.check("POST", t, create(&acme, json!({ "events": ["NOPE"] })), 422)
        .await;
    c.check("POST", t, create(&other, hook.clone()), 403).await;
    let anonymous = http.post(url("/v1/acme/webhooks")).json(&hook);
    c.check("POST", t, anonymous, 401).await;
    let text = http
        .post(url("/v1/acme/webhooks"))
        .bearer_auth(&acme)
        .header("content-type", "text/plain")
        .body("hello");
    c.check("POST", t, text, 415).await;
    let huge = json!({ "endpoint": "x".repeat(70 * 1024), "events": [SHIPPED] });
    c.check("POST", t, create(&acme, huge), 413).await;
    c.check(
        "GET",
        t,
        http.get(url("/v1/acme/webhooks")).bearer_auth(&acme),
        200,
    )
    .await;
    c.check("GET", t, http.get(url("/v1/acme/webhooks")), 401)
        .await;

    let t = "/v1/{brandId}/webhooks/{id}";
    let one = format!("/v1/acme/webhooks/{wid}");
    let missing = format!("/v1/acme/webhooks/{}", Uuid::new_v4());
    let got = c
        .check("GET", t, http.get(url(&one)).bearer_auth(&acme), 200)
        .await;
    assert_eq!(got["health"]["parkedDeliveries"], 0, "{got}");
    let disabled = format!("/v1/acme/webhooks/{off_id}");
    let got = c
        .check("GET", t, http.get(url(&disabled)).bearer_auth(&acme), 200)
        .await;
    assert_eq!(got["health"]["reason"], "manual", "{got}");
    c.check("GET", t, http.get(url(&missing)).bearer_auth(&acme), 404)
        .await;
    c.check(
        "GET",
        t,
        http.get(url("/v1/acme/webhooks/nope")).bearer_auth(&acme),
        404,
    )
    .await;
    let patch = |path: &str, body: Value| http.patch(url(path)).bearer_auth(&acme).json(&body);
    c.check("PATCH", t, patch(&one, json!({ "enabled": true })), 204)
        .await;
    c.check("PATCH", t, patch(&one, json!({ "enabled": "yes" })), 422)
        .await;
    let replay = json!({ "enabled": true, "replaySkipped": true });
    c.check("PATCH", t, patch(&one, replay), 204).await;
    let not_bool = json!({ "enabled": true, "replaySkipped": "yes" });
    c.check("PATCH", t, patch(&one, not_bool), 422).await;
    let off_and_replay = json!({ "enabled": false, "replaySkipped": true });
    c.check("PATCH", t, patch(&one, off_and_replay), 422).await;
    c.check("PATCH", t, patch(&missing, json!({ "enabled": true })), 404)
        .await;

    let t = "/v1/{brandId}/webhooks/{id}/secret";
    let secret = format!("{one}/secret");
    c.check("GET", t, http.get(url(&secret)).bearer_auth(&acme), 200)
        .await;
    c.check(
        "GET",
        t,
        http.get(url(&format!("{missing}/secret")))
            .bearer_auth(&acme),
        404,
    )
    .await;
    let t = "/v1/{brandId}/webhooks/{id}/secret/rotate";
    let rotate = format!("{one}/secret/rotate");
    let rotated = c
        .check("POST", t, http.post(url(&rotate)).bearer_auth(&acme), 200)
        .await;
    assert!(rotated["previousSecretExpires"].is_string(), "{rotated}");
    let given = http
        .post(url(&rotate))
        .bearer_auth(&acme)
        .json(&json!({ "secret": "another_secret" }));
    c.check("POST", t, given, 200).await;
    let short = http
        .post(url(&rotate))
        .bearer_auth(&acme)
        .json(&json!({ "secret": "x" }));
    c.check("POST", t, short, 422).await;
    let gone = http
        .post(url(&format!("{missing}/secret/rotate")))
        .bearer_auth(&acme);
    c.check("POST", t, gone, 404).await;

    // A test event, and portal sign-in links.
    let t = "/v1/{brandId}/webhooks/{id}/test";
    let sent = c
        .check(
            "POST",
            t,
            http.post(url(&format!("{one}/test"))).bearer_auth(&acme),
            202,
        )
        .await;
    assert_eq!(sent["type"], "WEBHOOK_EVENTS.PING", "{sent}");
    c.check(
        "POST",
        t,
        http.post(url(&format!("{missing}/test")))
            .bearer_auth(&acme),
        404,
    )
    .await;
    let t = "/v1/{brandId}/portal-links";
    let links = || http.post(url("/v1/acme/portal-links")).bearer_auth(&acme);
    let made = c.check("POST", t, links(), 201).await;
    assert!(made["url"]
        .as_str()
        .is_some_and(|u| u.contains("/portal/login?token=")));
    c.check("POST", t, links().json(&json!({ "ttl": "10m" })), 201)
        .await;
    c.check("POST", t, links().json(&json!({ "ttl": "99d" })), 422)
        .await;
    c.check("POST", t, http.post(url("/v1/acme/portal-links")), 401)
        .await;

    // Ingest.
    let t = "/v1/{brandId}/events";
    let publish = |token: &str, body: Value| {
        http.post(url("/v1/acme/events"))
            .bearer_auth(token)
            .json(&body)
    };
    let event = json!({ "type": SHIPPED, "data": { "orderId": "42" } });
    let first = c
        .check(
            "POST",
            t,
            publish(&acme, event.clone()).header("Idempotency-Key", "k-1"),
            202,
        )
        .await;
    assert_eq!(first["deliveries"], 1, "{first}");
    let eid = first["id"].as_str().expect("id").to_owned();
    let replay = publish(&acme, event.clone())
        .header("Idempotency-Key", "k-1")
        .send()
        .await
        .expect("request");
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    c.check(
        "POST",
        t,
        publish(&acme, event.clone()).header("Idempotency-Key", "k-1"),
        202,
    )
    .await;
    c.check("POST", t, publish(&acme, json!({ "type": SHIPPED })), 422)
        .await;
    let group = json!({ "type": "ORDER_EVENTS", "data": {} });
    c.check("POST", t, publish(&acme, group), 422).await;
    c.check("POST", t, publish(&no_publish, event.clone()), 403)
        .await;
    let big = json!({ "type": SHIPPED, "data": { "x": "y".repeat(300 * 1024) } });
    c.check("POST", t, publish(&acme, big.clone()), 413).await;
    let own = json!({ "type": "WEBHOOK_EVENTS.DISABLED", "data": {} });
    c.check("POST", t, publish(&acme, own.clone()), 422).await;
    let form = http
        .post(url("/v1/acme/events"))
        .bearer_auth(&acme)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("type=x");
    c.check("POST", t, form, 415).await;

    // Batch ingest.
    let tb = "/v1/{brandId}/events/batch";
    let batch = |token: &str, body: Value| {
        http.post(url("/v1/acme/events/batch"))
            .bearer_auth(token)
            .json(&body)
    };
    let events = json!({ "events": [
        { "type": SHIPPED, "data": { "n": 1 } },
        { "type": SHIPPED, "data": { "orderId": "42" }, "idempotencyKey": "k-1" },
    ]});
    let answered = c.check("POST", tb, batch(&acme, events), 202).await;
    assert_eq!(answered["events"][1]["replayed"], true, "{answered}");
    let invalid = json!({ "events": [{ "type": "NOPE", "data": {} }] });
    c.check("POST", tb, batch(&acme, invalid), 422).await;
    c.check("POST", tb, batch(&acme, json!({ "events": [] })), 422)
        .await;
    let ok = json!({ "events": [{ "type": SHIPPED, "data": {} }] });
    c.check("POST", tb, batch(&no_publish, ok), 403).await;
    let oversized = json!({ "events": [{ "type": SHIPPED, "data": {} }, big] });
    let refused = c.check("POST", tb, batch(&acme, oversized), 413).await;
    assert!(refused["validations"]["events[1]"].is_string(), "{refused}");
    c.check("POST", tb, batch(&acme, json!({ "events": [own] })), 422)
        .await;

    // Found by the fuzzer: U+0000, which Postgres text and jsonb cannot hold, was a 500 in a
    // payload and in a brand id; numbers at f64's edge came back from jsonb unparsable.
    let nul = json!({ "type": SHIPPED, "data": { "k": "a\u{0}b" } });
    c.check("POST", t, publish(&acme, nul), 422).await;
    let edge = json!({ "type": SHIPPED, "data": { "min": f64::MIN, "max": f64::MAX } });
    c.check("POST", t, publish(&acme, edge), 202).await;
    let nul_brand = http
        .post(url("/v1/a%00b/events"))
        .bearer_auth(&admin)
        .json(&event);
    c.check("POST", t, nul_brand, 422).await;
    let odd_brand = http
        .post(url("/v1/%1F%C2%BB/webhooks"))
        .bearer_auth(&admin)
        .json(&hook);
    let res = odd_brand.send().await.expect("request");
    assert_eq!(res.status(), 201, "a brand id a header cannot carry");
    let location = res.headers()["location"]
        .to_str()
        .expect("ASCII")
        .to_owned();
    let created: Value = res.json().await.expect("json");
    let id = created["id"].as_str().expect("id");
    assert!(
        location.ends_with(&format!("/v1/%1F%C2%BB/webhooks/{id}")),
        "{location}"
    );

    // The event log, with attempts recorded as the worker records them.
    let pool = app.pool();
    let mut conn = pool.get().await.expect("conn");
    let (w_uuid, e_uuid) = (wid.parse().expect("uuid"), eid.parse().expect("uuid"));
    for recorded in attempts(w_uuid, e_uuid) {
        deliveries::record_attempts(&mut conn, &[recorded], FAILURE_THRESHOLD)
            .await
            .expect("record");
    }
    let t = "/v1/{brandId}/webhooks/{id}/events";
    let log = format!("{one}/events");
    let page = c
        .check("GET", t, http.get(url(&log)).bearer_auth(&acme), 200)
        .await;
    let logged = page["events"].as_array().expect("events");
    let entry = logged
        .iter()
        .find(|e| e["id"] == eid.as_str())
        .expect("the event");
    assert_eq!(entry["attempts"], 2, "{page}");
    let paged = http
        .get(url(&format!("{log}?size=1&startId={}", Uuid::now_v7())))
        .bearer_auth(&acme);
    c.check("GET", t, paged, 200).await;
    let bad = http.get(url(&format!("{log}?size=0"))).bearer_auth(&acme);
    c.check("GET", t, bad, 422).await;
    let t_missing = http
        .get(url(&format!("{missing}/events")))
        .bearer_auth(&acme);
    c.check("GET", t, t_missing, 404).await;

    let t = "/v1/{brandId}/webhooks/{id}/events/{eventId}";
    let detail = format!("{log}/{eid}");
    let body = c
        .check("GET", t, http.get(url(&detail)).bearer_auth(&acme), 200)
        .await;
    let kinds: Vec<bool> = body["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| a["response"].is_null())
        .collect();
    assert_eq!(kinds, vec![true, false], "both attempt shapes: {body}");
    let unknown = format!("{log}/{}", Uuid::new_v4());
    c.check("GET", t, http.get(url(&unknown)).bearer_auth(&acme), 404)
        .await;
    // The disabled webhook's log: the same event, recorded as skipped.
    let off_log = format!("/v1/acme/webhooks/{off_id}/events");
    let page = c
        .check(
            "GET",
            "/v1/{brandId}/webhooks/{id}/events",
            http.get(url(&off_log)).bearer_auth(&acme),
            200,
        )
        .await;
    assert_eq!(
        page["events"][0]["statusReason"], "webhook_disabled",
        "{page}"
    );
    let skipped = format!("{off_log}/{eid}");
    let body = c
        .check("GET", t, http.get(url(&skipped)).bearer_auth(&acme), 200)
        .await;
    assert_eq!(body["status"], "SKIPPED", "{body}");
    assert_eq!(body["statusReason"], "webhook_disabled", "{body}");

    let t = "/v1/{brandId}/webhooks/{id}/events/{eventId}/retry";
    c.check(
        "POST",
        t,
        http.post(url(&format!("{detail}/retry")))
            .bearer_auth(&acme),
        202,
    )
    .await;
    c.check(
        "POST",
        t,
        http.post(url(&format!("{unknown}/retry")))
            .bearer_auth(&acme),
        404,
    )
    .await;
    let disabled = format!("/v1/acme/webhooks/{off_id}/events/{eid}/retry");
    c.check("POST", t, http.post(url(&disabled)).bearer_auth(&acme), 409)
        .await;

    // Bulk recovery: the skipped delivery of the disabled webhook. No worker runs here, so a
    // job that matched something stays RUNNING until it is cancelled.
    let since = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let recover =
        |path: &str, token: &str, body: Value| http.post(url(path)).bearer_auth(token).json(&body);
    let t = "/v1/{brandId}/webhooks/{id}/recover";
    let off_recover = format!("/v1/acme/webhooks/{off_id}/recover");
    let skipped_only = json!({ "since": since, "statuses": ["SKIPPED"] });
    let mut dry = skipped_only.clone();
    dry["dryRun"] = json!(true);
    let counted = c
        .check("POST", t, recover(&off_recover, &acme, dry), 200)
        .await;
    assert!(counted["matched"].as_i64() >= Some(1), "{counted}");
    let pending = json!({ "since": since, "statuses": ["PENDING"] });
    c.check("POST", t, recover(&off_recover, &acme, pending), 422)
        .await;
    let nowhere = format!("/v1/acme/webhooks/{}/recover", Uuid::new_v4());
    c.check(
        "POST",
        t,
        recover(&nowhere, &acme, skipped_only.clone()),
        404,
    )
    .await;
    c.check(
        "POST",
        t,
        recover(&off_recover, &other, skipped_only.clone()),
        403,
    )
    .await;
    let job = c
        .check(
            "POST",
            t,
            recover(&off_recover, &acme, skipped_only.clone()),
            202,
        )
        .await;
    assert_eq!(
        job["matched"], counted["matched"],
        "the dry run's count: {job}"
    );
    assert_eq!(job["state"], "RUNNING", "{job}");
    let jid = job["id"].as_str().expect("id").to_owned();
    // One job per webhook at a time.
    c.check("POST", t, recover(&off_recover, &acme, skipped_only), 422)
        .await;

    let t = "/v1/{brandId}/recover";
    let brand_dry = json!({ "since": since, "dryRun": true });
    c.check(
        "POST",
        t,
        recover("/v1/acme/recover", &acme, brand_dry),
        200,
    )
    .await;
    let stranger = json!({ "since": since, "webhookIds": [Uuid::new_v4()] });
    c.check("POST", t, recover("/v1/acme/recover", &acme, stranger), 422)
        .await;
    let just_one = json!({ "since": since, "webhookIds": [wid] });
    let done = c
        .check("POST", t, recover("/v1/acme/recover", &acme, just_one), 202)
        .await;
    assert_eq!(done["state"], "DONE", "nothing matched: {done}");

    let t = "/v1/{brandId}/recoveries";
    let jobs = c
        .check(
            "GET",
            t,
            http.get(url("/v1/acme/recoveries")).bearer_auth(&acme),
            200,
        )
        .await;
    assert_eq!(
        jobs["recoveries"].as_array().map(Vec::len),
        Some(2),
        "{jobs}"
    );
    let bad_size = http
        .get(url("/v1/acme/recoveries?size=0"))
        .bearer_auth(&acme);
    c.check("GET", t, bad_size, 422).await;

    let t = "/v1/{brandId}/recoveries/{recoveryId}";
    let one_job = format!("/v1/acme/recoveries/{jid}");
    c.check("GET", t, http.get(url(&one_job)).bearer_auth(&acme), 200)
        .await;
    c.check("GET", t, http.get(url(&one_job)).bearer_auth(&other), 403)
        .await;
    let no_job = format!("/v1/acme/recoveries/{}", Uuid::new_v4());
    c.check("GET", t, http.get(url(&no_job)).bearer_auth(&acme), 404)
        .await;
    let cancelled = c
        .check(
            "DELETE",
            t,
            http.delete(url(&one_job)).bearer_auth(&acme),
            200,
        )
        .await;
    assert_eq!(cancelled["state"], "CANCELLED", "{cancelled}");
    c.check(
        "DELETE",
        t,
        http.delete(url(&one_job)).bearer_auth(&acme),
        409,
    )
    .await;
    c.check(
        "DELETE",
        t,
        http.delete(url(&no_job)).bearer_auth(&acme),
        404,
    )
    .await;

    // FDX.
    let t = "/v1/services/webhook";
    let fdx_create = |body: Value| {
        http.post(url("/v1/services/webhook"))
            .bearer_auth(&acme)
            .json(&body)
    };
    let created = c
        .check(
            "POST",
            t,
            fdx_create(json!({ "eventName": "Order_Shipped", "url": "https://example.com/fdx" })),
            200,
        )
        .await;
    let fid = created["webhooks"][0]["webhookId"]
        .as_str()
        .expect("id")
        .to_owned();
    c.check("POST", t, fdx_create(json!({})), 400).await;
    let access_token = http
        .post(url("/v1/services/webhook"))
        .header("AccessToken", &acme)
        .json(&json!({ "eventName": "Order_PartiallyShipped", "url": "https://example.com/p" }));
    c.check("POST", t, access_token, 200).await;
    let anonymous = http
        .post(url("/v1/services/webhook"))
        .json(&json!({ "eventName": "Order_Shipped", "url": "https://example.com/x" }));
    c.check("POST", t, anonymous, 401).await;
    let text = http
        .post(url("/v1/services/webhook"))
        .bearer_auth(&acme)
        .header("content-type", "text/plain")
        .body("x");
    c.check("POST", t, text, 415).await;
    c.check("GET", t, http.get(url(t)).bearer_auth(&acme), 200)
        .await;
    let branded = http
        .get(url(t))
        .bearer_auth(&admin)
        .header("X-Hookline-Brand", "acme");
    c.check("GET", t, branded, 200).await;
    c.check("GET", t, http.get(url(t)).bearer_auth(&admin), 403)
        .await;

    let t = "/v1/services/webhook/{webhookId}";
    let fdx_one = format!("/v1/services/webhook/{fid}");
    let fdx_missing = format!("/v1/services/webhook/{}", Uuid::new_v4());
    c.check("GET", t, http.get(url(&fdx_one)).bearer_auth(&acme), 200)
        .await;
    c.check(
        "GET",
        t,
        http.get(url(&fdx_missing)).bearer_auth(&acme),
        404,
    )
    .await;
    c.check(
        "GET",
        t,
        http.get(url("/v1/services/webhook/1111"))
            .bearer_auth(&acme),
        404,
    )
    .await;

    let t = "/v1/services/webhook/{webhookId}/status";
    let status = |path: &str, body: Value| {
        http.put(url(&format!("{path}/status")))
            .bearer_auth(&acme)
            .json(&body)
    };
    c.check(
        "PUT",
        t,
        status(&fdx_one, json!({ "status": "INACTIVE" })),
        200,
    )
    .await;
    c.check(
        "PUT",
        t,
        status(&fdx_one, json!({ "status": "INACTIVE" })),
        400,
    )
    .await;
    c.check("PUT", t, status(&fdx_one, json!({ "status": "ON" })), 400)
        .await;
    let off_and_replay = json!({ "status": "INACTIVE", "replaySkipped": true });
    c.check("PUT", t, status(&fdx_one, off_and_replay), 400)
        .await;
    let replay = json!({ "status": "ACTIVE", "replaySkipped": true });
    let active = c.check("PUT", t, status(&fdx_one, replay), 200).await;
    assert_eq!(
        active["webhooks"][0]["health"]["state"], "healthy",
        "{active}"
    );

    // Turning the FDX webhook off and on published operational events to `ops`.
    let t_log = "/v1/{brandId}/webhooks/{id}/events";
    let ops_log = format!("/v1/acme/webhooks/{ops_id}/events");
    let page = c
        .check(
            "GET",
            t_log,
            http.get(url(&ops_log)).bearer_auth(&acme),
            200,
        )
        .await;
    let types: Vec<&str> = page["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert_eq!(
        types,
        ["WEBHOOK_EVENTS.RECOVERED", "WEBHOOK_EVENTS.DISABLED"],
        "{page}"
    );
    let t_event = "/v1/{brandId}/webhooks/{id}/events/{eventId}";
    let first_op = page["events"][1]["id"].as_str().expect("id");
    let body = c
        .check(
            "GET",
            t_event,
            http.get(url(&format!("{ops_log}/{first_op}")))
                .bearer_auth(&acme),
            200,
        )
        .await;
    assert_eq!(body["data"]["webhookId"], fid.as_str(), "{body}");
    // Its payload is the one the document describes.
    let payload = c.validator(&json!({ "$ref": "#/components/schemas/WebhookHealthEventData" }));
    let errors: Vec<String> = payload
        .iter_errors(&body["data"])
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}: {body}");
    c.check(
        "PUT",
        t,
        status(&fdx_missing, json!({ "status": "ACTIVE" })),
        404,
    )
    .await;

    let t = "/v1/services/webhook/{webhookId}";
    c.check(
        "DELETE",
        t,
        http.delete(url(&fdx_one)).bearer_auth(&acme),
        200,
    )
    .await;
    c.check(
        "DELETE",
        t,
        http.delete(url(&fdx_one)).bearer_auth(&acme),
        404,
    )
    .await;

    // Erasure last but one: the erased event can no longer be retried.
    let t = "/v1/{brandId}/events/{eventId}/payload";
    let erase = format!("/v1/acme/events/{eid}/payload");
    let erased = c
        .check(
            "DELETE",
            t,
            http.delete(url(&erase)).bearer_auth(&acme),
            200,
        )
        .await;
    assert!(erased["erased"].is_string(), "{erased}");
    let erase_other = http.delete(url(&erase)).bearer_auth(&other);
    c.check("DELETE", t, erase_other, 403).await;
    let erase_unknown = format!("/v1/acme/events/{}/payload", Uuid::new_v4());
    c.check(
        "DELETE",
        t,
        http.delete(url(&erase_unknown)).bearer_auth(&acme),
        404,
    )
    .await;
    c.check(
        "POST",
        "/v1/{brandId}/webhooks/{id}/events/{eventId}/retry",
        http.post(url(&format!("{detail}/retry")))
            .bearer_auth(&acme),
        409,
    )
    .await;
    let body = c
        .check(
            "GET",
            "/v1/{brandId}/webhooks/{id}/events/{eventId}",
            http.get(url(&detail)).bearer_auth(&acme),
            200,
        )
        .await;
    assert_eq!(body["data"], json!({}), "{body}");
    assert_eq!(body["erased"], erased["erased"], "{body}");

    // Deleting last: the webhook served the routes above.
    let t = "/v1/{brandId}/webhooks/{id}";
    c.check("DELETE", t, http.delete(url(&one)).bearer_auth(&acme), 204)
        .await;
    c.check("DELETE", t, http.delete(url(&one)).bearer_auth(&acme), 404)
        .await;

    // Every operation had a success and an error checked (the probes of /healthz and
    // /openapi.yaml have no error to provoke; /readyz's 503 is checked in the outage test).
    let covered = c.covered.lock().expect("lock").clone();
    for (method, path) in c.operations() {
        let statuses: Vec<u16> = covered
            .iter()
            .filter(|(m, p, _)| *m == method && *p == path)
            .map(|(_, _, s)| *s)
            .collect();
        assert!(
            statuses.iter().any(|s| *s < 300),
            "{method} {path}: no success checked"
        );
        let unauthenticated = ["/healthz", "/readyz", "/openapi.yaml"];
        assert!(
            unauthenticated.contains(&path.as_str()) || statuses.iter().any(|s| *s >= 400),
            "{method} {path}: no error checked"
        );
    }
    drop(conn);
}

#[tokio::test]
async fn webhook_limit_responses_match_the_document() {
    let c = Contract::load();
    let app = spawn_app_with(|s| s.limits.max_webhooks_per_brand = 1).await;
    let acme = app.token("acme");
    let http = &app.client;
    let t = "/v1/{brandId}/webhooks";
    let create = |endpoint: &str| {
        http.post(app.url("/v1/acme/webhooks"))
            .bearer_auth(&acme)
            .json(&json!({ "endpoint": endpoint, "events": [SHIPPED] }))
    };
    c.check("POST", t, create("https://example.com/a"), 201)
        .await;
    let body = c
        .check("POST", t, create("https://example.com/b"), 422)
        .await;
    assert!(body["validations"]["webhooks"].is_string(), "{body}");
    let t = "/v1/services/webhook";
    let fdx = http
        .post(app.url(t))
        .bearer_auth(&acme)
        .json(&json!({ "eventName": "Order_Shipped", "url": "https://example.com/c" }));
    let body = c.check("POST", t, fdx, 400).await;
    assert_eq!(body["errors"][0]["code"], "ERR-CMR-0001", "{body}");
}

#[tokio::test]
async fn rate_limited_responses_match_the_document() {
    let c = Contract::load();
    let app = spawn_app_with(|s| {
        s.rate_limit.per_second = 1;
        s.rate_limit.burst = 1;
    })
    .await;
    let token = app.token("acme");
    let http = &app.client;
    let t = "/v1/{brandId}/webhooks";
    let list = || http.get(app.url("/v1/acme/webhooks")).bearer_auth(&token);
    c.check("GET", t, list(), 200).await;
    c.check("GET", t, list(), 429).await;
    let t = "/v1/services/webhook";
    c.check("GET", t, http.get(app.url(t)).bearer_auth(&token), 429)
        .await;
}

#[tokio::test]
async fn database_outage_responses_match_the_document() {
    let c = Contract::load();
    // A port nothing listens on: every connection is refused, as when Postgres is down.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let app = spawn_app_with(move |s| {
        s.database.url = format!("postgres://postgres@127.0.0.1:{closed}/gone").into();
        s.database.connect_timeout = Duration::from_secs(1);
        s.database.pool_wait_timeout = Duration::from_secs(1);
    })
    .await;
    let token = app.token("acme");
    let http = &app.client;
    c.check("GET", "/readyz", http.get(app.url("/readyz")), 503)
        .await;
    let t = "/v1/{brandId}/webhooks";
    c.check(
        "GET",
        t,
        http.get(app.url("/v1/acme/webhooks")).bearer_auth(&token),
        503,
    )
    .await;
    let t = "/v1/services/webhook";
    c.check("GET", t, http.get(app.url(t)).bearer_auth(&token), 503)
        .await;
    let t = "/v1/{brandId}/events";
    let event = json!({ "type": SHIPPED, "data": {} });
    let publish = http
        .post(app.url("/v1/acme/events"))
        .bearer_auth(&token)
        .json(&event);
    c.check("POST", t, publish, 503).await;
}
