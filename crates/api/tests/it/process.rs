//! The `hookline-api` binary as an operator runs it: metrics on the admin port only, and SIGTERM
//! stops it with exit code 0, after the requests it was serving got their answers.

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use hookline_store::testing::TestDatabase;

use crate::helpers::AMQP_URL;

#[tokio::test]
async fn the_api_binary_serves_metrics_on_its_admin_port_only_and_stops_on_sigterm() {
    let db = TestDatabase::create().await;
    let free_port = || {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        l.local_addr().expect("addr").port()
    };
    let port = free_port();
    let admin_port = free_port();
    let prefix = format!("hookline_test_{}", uuid::Uuid::new_v4().simple());
    let mut child = Command::new(env!("CARGO_BIN_EXE_hookline-api"))
        .env("HOOKLINE__DATABASE__URL", &db.url)
        .env("HOOKLINE__HTTP__BIND", format!("127.0.0.1:{port}"))
        .env("HOOKLINE__ADMIN__BIND", format!("127.0.0.1:{admin_port}"))
        .env("HOOKLINE__AMQP__PREFIX", &prefix)
        .env("HOOKLINE__LOG__LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start hookline-api");
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/readyz");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if client
            .get(&url)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the API did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Metrics are on the admin port only.
    let metrics = client
        .get(format!("http://127.0.0.1:{admin_port}/metrics"))
        .send()
        .await
        .expect("admin port answers");
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.expect("text");
    assert!(text.contains("hookline_http_requests_total"), "{text}");
    let public = client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .expect("request");
    assert_eq!(public.status(), 404);
    // Requests in flight when the signal arrives still get their answers.
    let in_flight: Vec<_> = (0..8)
        .map(|_| tokio::spawn(client.get(&url).send()))
        .collect();
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    for request in in_flight {
        // Each either completed before the listener closed or was refused at connect; none
        // is cut off mid-response.
        if let Ok(res) = request.await.expect("task") {
            assert!(res.status().is_success() || res.status() == 503);
        }
    }
    let status = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(40);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the API did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .expect("join");
    // The binary declared this test's exchange and queue at start.
    hookline_queue::delete_topology(AMQP_URL, &hookline_queue::Names::from_prefix(&prefix))
        .await
        .expect("remove the test's queue");
    assert!(status.success(), "exit status {status:?}");
}
