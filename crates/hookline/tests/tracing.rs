//! Tracing end to end, with the `hookline` binary as an operator runs it (API and worker in one
//! process, its own database and queue): a publisher's W3C `traceparent` reaches the brand's
//! endpoint on every attempt, with the publisher's trace id and the attempt as parent; a
//! request without one (or with an invalid one) still starts a trace; and with
//! `OTEL_EXPORTER_OTLP_ENDPOINT` set, the ingest, publish and attempt spans arrive at an OTLP
//! collector (a real HTTP server in the test), flushed when the process stops.

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use hookline_api::auth::{mint_hs256, Brands, SCOPE_PUBLISH, SCOPE_WEBHOOKS};
use hookline_config::{ExposeSecret as _, Settings};
use hookline_queue::Names;
use hookline_store::testing::TestDatabase;
use hookline_testkit::receiver::{Mode, Received, Receiver};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;
use serde_json::{json, Value};

const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const WAIT: Duration = Duration::from_secs(30);
const SHIPPED: &str = "ORDER_EVENTS.OMS.ORDER_SHIPPED";
/// The publisher's trace and its span (the W3C specification's example).
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PUBLISHER_SPAN: &str = "00f067aa0ba902b7";
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// A running `hookline` process; killed (if still running) and its queue removed on drop.
struct Hookline {
    child: Child,
    base: String,
    prefix: String,
    client: reqwest::Client,
    _db: TestDatabase,
}

impl Hookline {
    /// Starts the binary with `otel` as extra environment (no `OTEL_*` variable of the test's
    /// own environment is passed on) and waits until it is ready.
    async fn start(otel: &[(&str, String)]) -> Hookline {
        let db = TestDatabase::create().await;
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
            l.local_addr().expect("addr").port()
        };
        let prefix = format!("hookline_test_{}", uuid::Uuid::new_v4().simple());
        let mut command = Command::new(env!("CARGO_BIN_EXE_hookline"));
        for (name, _) in std::env::vars() {
            if name.starts_with("OTEL_") {
                command.env_remove(name);
            }
        }
        command
            .env("HOOKLINE__DATABASE__URL", &db.url)
            .env("HOOKLINE__HTTP__BIND", format!("127.0.0.1:{port}"))
            .env("HOOKLINE__ADMIN__BIND", "127.0.0.1:0")
            .env("HOOKLINE__WORKER__HTTP_BIND", "127.0.0.1:0")
            .env("HOOKLINE__AMQP__PREFIX", &prefix)
            .env("HOOKLINE__LOG__LEVEL", "warn")
            .env("HOOKLINE__DELIVERY__ALLOW_HTTP", "true")
            .env("HOOKLINE__DELIVERY__ALLOW_PRIVATE_TARGETS", "true")
            .env("HOOKLINE__DELIVERY__RETRY_SCHEDULE", "200ms,200ms")
            .env("HOOKLINE__DELIVERY__RETRY_JITTER", "0")
            .env("HOOKLINE__WORKER__SCHEDULER_INTERVAL", "100ms")
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (name, value) in otel {
            command.env(name, value);
        }
        let child = command.spawn().expect("start hookline");
        let hookline = Hookline {
            child,
            base: format!("http://127.0.0.1:{port}"),
            prefix,
            client: reqwest::Client::builder()
                .timeout(WAIT)
                .build()
                .expect("client"),
            _db: db,
        };
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let ready = hookline
                .client
                .get(format!("{}/readyz", hookline.base))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
            if ready {
                return hookline;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "hookline did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn token() -> String {
        mint_hs256(
            Settings::default().auth.hs256_secret.expose_secret(),
            Brands::List(vec!["acme".into()]),
            &[SCOPE_WEBHOOKS.into(), SCOPE_PUBLISH.into()],
            Duration::from_secs(600),
            None,
        )
        .expect("token")
    }

    /// POSTs `body` to `path` with the given extra headers; the status and JSON answer.
    async fn post(&self, path: &str, headers: &[(&str, &str)], body: Value) -> (u16, Value) {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(Self::token())
            .json(&body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn webhook(&self, endpoint: &str) {
        let (status, body) = self
            .post(
                "/v1/acme/webhooks",
                &[],
                json!({ "endpoint": endpoint, "events": ["ORDER_EVENTS"] }),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }

    async fn publish(&self, headers: &[(&str, &str)]) {
        let (status, body) = self
            .post(
                "/v1/acme/events",
                headers,
                json!({ "type": SHIPPED, "data": { "orderId": "42" } }),
            )
            .await;
        assert_eq!(status, 202, "{body}");
    }

    /// SIGTERM, then waits for the process to exit (it flushes the spans on the way out).
    async fn stop(mut self) {
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(killed.success());
        let mut child = std::mem::replace(
            &mut self.child,
            Command::new("true").spawn().expect("placeholder"),
        );
        let status = tokio::task::spawn_blocking(move || {
            let deadline = std::time::Instant::now() + WAIT;
            loop {
                if let Some(status) = child.try_wait().expect("wait") {
                    return status;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "hookline did not stop after SIGTERM"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        })
        .await
        .expect("join");
        assert!(status.success(), "exit status {status:?}");
    }
}

impl Drop for Hookline {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let names = Names::from_prefix(&self.prefix);
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

/// A received `traceparent`, checked to be well formed: (trace id, parent id, flags).
fn traceparent(received: &Received) -> (String, String, String) {
    let value = received.header("traceparent");
    let parts: Vec<&str> = value.split('-').collect();
    assert_eq!(parts.len(), 4, "{value}");
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            && s.bytes().any(|b| b != b'0')
    };
    assert_eq!(parts[0], "00", "{value}");
    assert!(hex(parts[1], 32), "trace id of {value}");
    assert!(hex(parts[2], 16), "parent id of {value}");
    assert_eq!(parts[3].len(), 2, "{value}");
    (parts[1].into(), parts[2].into(), parts[3].into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_publishers_trace_reaches_the_endpoint_on_every_attempt() {
    let hookline = Hookline::start(&[]).await;
    // The first attempt fails: the retry comes back from Postgres, not from the message the
    // API published, and must carry the same trace.
    let receiver = Receiver::start(Mode::FailFirst { n: 1, status: 500 }).await;
    hookline.webhook(&receiver.url()).await;
    hookline
        .publish(&[
            ("traceparent", TRACEPARENT),
            ("tracestate", "vendor=opaque"),
        ])
        .await;

    let got = receiver.wait_for(2, WAIT).await;
    let (first, retry) = (traceparent(&got[0]), traceparent(&got[1]));
    for (trace_id, parent_id, flags) in [&first, &retry] {
        assert_eq!(trace_id, TRACE_ID);
        // The parent is Hookline's attempt span, not the publisher's span.
        assert_ne!(parent_id, PUBLISHER_SPAN);
        assert_eq!(flags, "01");
    }
    assert_ne!(first.1, retry.1, "each attempt is a span of its own");
    assert_eq!(got[0].header("tracestate"), "vendor=opaque");
    assert_eq!(got[1].header("tracestate"), "vendor=opaque");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_valid_traceparent_a_new_trace_starts_and_a_batch_shares_the_requests() {
    let hookline = Hookline::start(&[]).await;
    let receiver = Receiver::start(Mode::Succeed).await;
    hookline.webhook(&receiver.url()).await;

    // None, then an invalid one (upper-case hex): both accepted, each a new trace.
    hookline.publish(&[]).await;
    let invalid = "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01";
    hookline
        .publish(&[("traceparent", invalid), ("tracestate", "vendor=x")])
        .await;
    let got = receiver.wait_for(2, WAIT).await;
    let (a, b) = (traceparent(&got[0]), traceparent(&got[1]));
    assert_ne!(a.0, b.0, "two requests, two traces");
    for (trace_id, _, _) in [&a, &b] {
        assert_ne!(trace_id, TRACE_ID);
        assert_ne!(trace_id.to_uppercase(), "4BF92F3577B34DA6A3CE929D0E0E4736");
    }
    // The tracestate of an ignored traceparent is ignored with it.
    assert!(got.iter().all(|r| !r.headers.contains_key("tracestate")));

    // A batch: the request's traceparent applies to each event.
    let (status, body) = hookline
        .post(
            "/v1/acme/events/batch",
            &[("traceparent", TRACEPARENT)],
            json!({ "events": [
                { "type": SHIPPED, "data": { "n": 1 } },
                { "type": SHIPPED, "data": { "n": 2 } },
            ] }),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let got = receiver.wait_for(4, WAIT).await;
    for received in &got[2..] {
        let (trace_id, parent_id, _) = traceparent(received);
        assert_eq!(trace_id, TRACE_ID);
        assert_ne!(parent_id, PUBLISHER_SPAN);
    }
}

/// One exported span: (name, trace id, span id, parent span id), ids in hex.
type Span = (String, String, String, String);

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every span in the OTLP/HTTP protobuf requests the collector received, and the service
/// names they came under.
fn exported(requests: &[Received]) -> (Vec<Span>, Vec<String>) {
    let mut spans = Vec::new();
    let mut services = Vec::new();
    for request in requests {
        assert_eq!(request.path, "/v1/traces");
        assert_eq!(request.header("content-type"), "application/x-protobuf");
        let export = ExportTraceServiceRequest::decode(request.body.as_slice()).expect("protobuf");
        for resource_spans in export.resource_spans {
            let resource = resource_spans.resource.unwrap_or_default();
            for attribute in resource.attributes {
                if attribute.key == "service.name" {
                    services.push(format!("{:?}", attribute.value.unwrap_or_default()));
                }
            }
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    spans.push((
                        span.name,
                        hex(&span.trace_id),
                        hex(&span.span_id),
                        hex(&span.parent_span_id),
                    ));
                }
            }
        }
    }
    (spans, services)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_otlp_endpoint_the_ingest_publish_and_attempt_spans_are_exported() {
    let collector = Receiver::start(Mode::Succeed).await;
    let hookline = Hookline::start(&[
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{}", collector.port()),
        ),
        ("OTEL_SERVICE_NAME", "hookline-tracing-test".into()),
    ])
    .await;
    let receiver = Receiver::start(Mode::Succeed).await;
    hookline.webhook(&receiver.url()).await;
    hookline.publish(&[("traceparent", TRACEPARENT)]).await;
    let got = receiver.wait_for(1, WAIT).await;
    let (_, attempt_id, _) = traceparent(&got[0]);

    // The batch processor exports every 5 s by default; stopping flushes what is left.
    hookline.stop().await;
    let (spans, services) = exported(&collector.received());
    assert!(
        services.iter().all(|s| s.contains("hookline-tracing-test")) && !services.is_empty(),
        "{services:?}"
    );
    let find = |name: &str| {
        spans
            .iter()
            .find(|s| s.0 == name && s.1 == TRACE_ID)
            .unwrap_or_else(|| panic!("no {name} span in the publisher's trace: {spans:?}"))
    };
    let ingest = find("ingest");
    assert_eq!(
        ingest.3, PUBLISHER_SPAN,
        "ingest continues the publisher's span"
    );
    let publish = find("publish");
    assert_eq!(publish.3, ingest.2, "publish is a child of ingest");
    let attempt = find("attempt");
    assert_eq!(
        attempt.3, ingest.2,
        "the attempt continues the stored context"
    );
    assert_eq!(
        attempt.2, attempt_id,
        "the endpoint's parent is the attempt span"
    );
}
