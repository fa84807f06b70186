//! The `hookline-worker` binary as an operator runs it: health endpoint, and SIGTERM ends it
//! with exit code 0 once it has stopped consuming.

use std::{
    io::{BufRead as _, BufReader},
    process::{Command, Stdio},
    time::Duration,
};

use hookline_config::ExposeSecret as _;
use hookline_worker::Worker;
use tokio_util::sync::CancellationToken;

use crate::helpers::{eventually, TestEnv, WAIT};

#[tokio::test]
async fn the_health_endpoint_answers_ok() {
    let env = TestEnv::new().await;
    let worker = Worker::build(env.settings()).await.expect("worker builds");
    let addr = worker.health_addr().expect("bound");
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(worker.run_until_stopped(shutdown.clone()));

    let client = reqwest::Client::new();
    let health = client
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .expect("health answers");
    assert_eq!(health.status(), 200);
    let other = client
        .get(format!("http://{addr}/nope"))
        .send()
        .await
        .expect("answers");
    assert_eq!(other.status(), 404);

    shutdown.cancel();
    tokio::time::timeout(WAIT, running)
        .await
        .expect("stops")
        .expect("task");
}

#[tokio::test]
async fn sigterm_stops_the_worker_binary_with_exit_code_zero() {
    let env = TestEnv::new().await;
    let settings = env.settings();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hookline-worker"))
        .env(
            "HOOKLINE__DATABASE__URL",
            settings.database.url.expose_secret(),
        )
        .env("HOOKLINE__AMQP__PREFIX", &settings.amqp.prefix)
        .env("HOOKLINE__WORKER__HTTP_BIND", "127.0.0.1:0")
        .env("HOOKLINE__LOG__FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("worker binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let pid = child.id();
    let status = tokio::task::spawn_blocking(move || {
        // Ready once it consumes; then SIGTERM, as an orchestrator sends it.
        let mut lines = BufReader::new(stdout).lines();
        let consuming = lines
            .by_ref()
            .map_while(Result::ok)
            .any(|line| line.contains("consuming deliveries"));
        assert!(consuming, "the worker never started consuming");
        let killed = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(killed.success());
        // Keep draining stdout so the worker never blocks on a full pipe.
        lines.for_each(drop);
        child.wait().expect("wait for the worker")
    });
    let Ok(status) = tokio::time::timeout(WAIT + Duration::from_secs(30), status).await else {
        // Never leave a stray worker behind a failed test.
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
        panic!("the worker did not exit after SIGTERM");
    };
    let status = status.expect("waiting task");
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[tokio::test]
async fn readyz_needs_the_database_and_a_consumer_on_the_queue() {
    let env = TestEnv::new().await;
    let proxy = hookline_testkit::TcpProxy::start("127.0.0.1:5672".parse().expect("addr"))
        .await
        .expect("proxy");
    let mut settings = env.settings();
    settings.amqp.url = format!("amqp://guest:guest@{}/%2f", proxy.addr()).into();
    let worker = Worker::build(settings).await.expect("worker builds");
    let addr = worker.health_addr().expect("bound");
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(worker.run_until_stopped(shutdown.clone()));
    let client = reqwest::Client::new();
    let readyz = || async {
        let res = client
            .get(format!("http://{addr}/readyz"))
            .send()
            .await
            .expect("readyz answers");
        let status = res.status().as_u16();
        let body: serde_json::Value = res.json().await.expect("json");
        (status, body)
    };
    let body = eventually("ready", || async {
        let (status, body) = readyz().await;
        (status == 200).then_some(body)
    })
    .await;
    assert_eq!(body["checks"]["broker"], "ok");

    proxy.cut();
    let body = eventually("unready while the broker is cut", || async {
        let (status, body) = readyz().await;
        (status == 503).then_some(body)
    })
    .await;
    assert_eq!(body["checks"]["broker"], "down");
    assert_eq!(body["checks"]["database"], "ok");

    proxy.restore();
    eventually("ready again", || async {
        (readyz().await.0 == 200).then_some(())
    })
    .await;
    shutdown.cancel();
    tokio::time::timeout(WAIT, running)
        .await
        .expect("stops")
        .expect("task");
}

/// The worker opens webhook secrets to sign, so it needs the encryption key as much as the API:
/// the binary refuses the built-in dev key in production, and beyond loopback in any `env`,
/// naming what to set, before it touches anything.
#[tokio::test]
async fn the_binary_refuses_the_dev_secrets_key_in_production_and_beyond_loopback() {
    let run = |env: &[(&str, &str)]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_hookline-worker"));
        command
            .env("HOOKLINE__LOG__LEVEL", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command.spawn().expect("start hookline-worker");
        async move {
            let output = tokio::task::spawn_blocking(move || child.wait_with_output());
            let output = tokio::time::timeout(WAIT, output)
                .await
                .expect("the worker exited at once")
                .expect("join")
                .expect("output");
            assert!(!output.status.success(), "the worker started");
            String::from_utf8_lossy(&output.stderr).into_owned()
        }
    };
    let stderr = run(&[
        ("HOOKLINE__ENV", "production"),
        (
            "HOOKLINE__AUTH__HS256_SECRET",
            "k9Vq2xLr8ZpT4wYb6NcH1sJd3FgA7eMu-a-real-token-secret",
        ),
        ("HOOKLINE__AUTH__ISSUER", "https://auth.example.com/"),
        ("HOOKLINE__AUTH__AUDIENCE", "hookline"),
        ("HOOKLINE__WORKER__HTTP_BIND", "127.0.0.1:0"),
    ])
    .await;
    assert!(
        stderr.contains("secrets.keys") && stderr.contains("HOOKLINE__SECRETS__KEYS"),
        "{stderr}"
    );
    let stderr = run(&[("HOOKLINE__WORKER__HTTP_BIND", "0.0.0.0:0")]).await;
    assert!(
        stderr.contains("secrets.keys") && stderr.contains("worker.http_bind (0.0.0.0:0)"),
        "{stderr}"
    );
}
