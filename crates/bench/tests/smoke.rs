//! Smoke tests of the benchmark's parts, without a Hookline server: the receiver's tally
//! (unique, duplicates, latency, signatures), the raw sender, the hanging and failing endpoints
//! of `--hanging`, the parsers. No timed assertions (the hanging test waits a bounded moment
//! for an answer that must not come).

use hookline_bench::{
    api,
    hanging::{many_hosts_ip, HangingEndpoints, Layout, Mode},
    load,
    procs::{stat_ticks, status_kib},
    raw::{raw_secret, RawSender},
    receiver::{webhook_path, Receiver, RAW_PATH},
    report::DeliveryReport,
    sign, stats, unix_nanos,
};
use serde_json::json;

async fn post(
    client: &reqwest::Client,
    url: &str,
    secret: &str,
    id: &str,
    seq: u64,
) -> reqwest::StatusCode {
    let body = json!({"id": id, "type": api::EVENT_TYPE, "brandId": "b", "created": "now",
        "data": api::event_data(seq, unix_nanos())})
    .to_string();
    let ts = "1700000000";
    let (fdx, standard) = sign::sign(secret, id, ts, body.as_bytes()).expect("valid secret");
    client
        .post(url)
        .header("webhook-id", id)
        .header("webhook-timestamp", ts)
        .header("webhook-signature", standard)
        .header("x-fdx-sc-signature", fdx)
        .body(body)
        .send()
        .await
        .expect("receiver answers")
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_counts_unique_duplicates_and_checks_every_signature() {
    let receiver = Receiver::start(1).await.expect("receiver starts");
    let client = api::client(4).expect("client");
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    receiver.set_secret(&webhook_path(0), secret);
    receiver.set_secret(&webhook_path(1), "plain-secret");
    let url0 = receiver.url(&webhook_path(0));
    let url1 = receiver.url(&webhook_path(1));
    let a = uuid::Uuid::now_v7().to_string();
    let b = uuid::Uuid::now_v7().to_string();

    assert_eq!(post(&client, &url0, secret, &a, 0).await, 204);
    assert_eq!(post(&client, &url0, secret, &b, 1).await, 204);
    // The same event at another webhook is not a duplicate; at the same one it is.
    assert_eq!(post(&client, &url1, "plain-secret", &a, 0).await, 204);
    assert_eq!(post(&client, &url0, secret, &a, 0).await, 204);
    // Signed with the wrong secret.
    let c = uuid::Uuid::now_v7().to_string();
    assert_eq!(post(&client, &url1, "wrong", &c, 2).await, 204);
    // Unknown path.
    assert_eq!(
        post(&client, &receiver.url("/elsewhere"), secret, &c, 3).await,
        404
    );

    let tally = receiver.tally();
    assert_eq!(receiver.unique(), 4);
    assert_eq!(tally.unique, 4);
    assert_eq!(tally.requests, 5);
    assert_eq!(tally.duplicates, 1);
    assert_eq!(tally.malformed, 1);
    assert_eq!(tally.signatures_checked, 5);
    assert_eq!(tally.signature_failures, 1, "{:?}", tally.problems);
    assert_eq!(tally.latency.len(), 4);

    let report = DeliveryReport::new(6, Some(unix_nanos() - 1_000_000_000), &tally, false);
    assert_eq!(report.missing, 2);
    assert_eq!(report.received, 4);
    assert!(report.deliveries_per_s > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_sender_reaches_the_receiver_with_valid_signatures() {
    let receiver = std::sync::Arc::new(Receiver::start(1).await.expect("receiver starts"));
    receiver.set_secret(RAW_PATH, &raw_secret());
    let sender = std::sync::Arc::new(RawSender::new(
        api::client(8).expect("client"),
        receiver.url(RAW_PATH),
    ));
    let s = sender.clone();
    load::drive(200, load::Pace::Closed { concurrency: 8 }, move |i| {
        let s = s.clone();
        async move { s.send(i).await }
    })
    .await;
    let report = sender.report();
    assert_eq!((report.requests, report.errors), (200, 0));
    assert_eq!(report.latency.count, 200);
    let tally = receiver.tally();
    assert_eq!(
        (tally.unique, tally.duplicates, tally.malformed),
        (200, 0, 0)
    );
    assert_eq!(
        (tally.signatures_checked, tally.signature_failures),
        (200, 0),
        "{:?}",
        tally.problems
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_endpoints_hang_on_one_host_and_fail_on_many() {
    let client = api::client(4).expect("client");

    let hanging = HangingEndpoints::start(2, Layout::OneHost, Mode::Hang)
        .await
        .expect("hanging endpoints start");
    let urls = hanging.urls().to_vec();
    assert_eq!(urls.len(), 2);
    assert!(urls[0].starts_with("http://127.0.0.1:") && urls[0].ends_with("/hang/0"));
    assert_eq!(
        urls[0].trim_end_matches("/hang/0"),
        urls[1].trim_end_matches("/hang/1"),
        "one listener"
    );
    let answer = client
        .post(&urls[1])
        .body("{}")
        .timeout(std::time::Duration::from_millis(300))
        .send()
        .await;
    assert!(answer.is_err_and(|e| e.is_timeout()), "it answered");
    assert_eq!((hanging.connections(), hanging.answered()), (1, 0));

    let failing = HangingEndpoints::start(2, Layout::ManyHosts, Mode::Fail)
        .await
        .expect("failing endpoints start (127.0.0.2 and .3 on lo)");
    for (k, url) in failing.urls().iter().enumerate() {
        assert!(
            url.starts_with(&format!("http://{}:", many_hosts_ip(k))),
            "{url}"
        );
        let status = client.post(url).body("{}").send().await.expect("answer");
        assert_eq!(status.status(), 500);
    }
    assert_eq!(many_hosts_ip(1).to_string(), "127.0.0.3");
    assert_eq!(failing.answered(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_runs_every_unit() {
    let count = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let c = count.clone();
    load::drive(
        50,
        load::Pace::Open {
            per_second: 1000.0,
            max_in_flight: 4,
        },
        move |_| {
            let c = c.clone();
            async move {
                c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        },
    )
    .await;
    assert_eq!(count.load(std::sync::atomic::Ordering::Relaxed), 50);
}

#[test]
fn signatures_match_the_standard_webhooks_example() {
    // The example of the Standard Webhooks specification.
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    let ts = "1614265330";
    let body = br#"{"test": 2432232314}"#;
    let (_, standard) = sign::sign(secret, id, ts, body).expect("valid secret");
    assert_eq!(standard, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    let headers = sign::Signed {
        fdx: Some(&hex_fdx(secret, body)),
        id: Some(id),
        timestamp: Some(ts),
        signature: Some(&format!("v1,other {standard}")),
    };
    assert_eq!(sign::verify(secret, headers, body), Ok(()));
    assert!(sign::verify("whsec_AAAA", headers, body).is_err());
}

fn hex_fdx(secret: &str, body: &[u8]) -> String {
    sign::sign(secret, "x", "0", body).expect("valid secret").0
}

#[test]
fn proc_parsers_read_status_and_stat() {
    let status = "Name:\thookline\nVmHWM:\t   51234 kB\nVmRSS:\t   40000 kB\n";
    assert_eq!(status_kib(status, "VmHWM"), Some(51234));
    assert_eq!(status_kib(status, "VmRSS"), Some(40000));
    assert_eq!(status_kib(status, "VmSwap"), None);
    let stat = "1234 (tokio (rt) x) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 100";
    assert_eq!(stat_ticks(stat), Some(325));
    let own = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    assert!(stat_ticks(&own).is_some());
}

#[test]
fn summaries_and_answers() {
    let mut h = stats::histogram();
    for ms in 1..=100u64 {
        stats::record_nanos(&mut h, ms * 1_000_000);
    }
    let s = stats::Summary::of(&h);
    assert_eq!(s.count, 100);
    assert!(
        (s.p50_ms - 50.0).abs() < 0.1 && (s.p99_ms - 99.0).abs() < 0.1,
        "{s:?}"
    );
    assert_eq!(stats::Summary::of(&stats::histogram()).count, 0);

    assert_eq!(
        api::parse_deliveries(r#"{"id":"x","deliveries":3}"#, false),
        Some(vec![3])
    );
    assert_eq!(
        api::parse_deliveries(
            r#"{"events":[{"id":"a","deliveries":1},{"id":"b","deliveries":2}]}"#,
            true
        ),
        Some(vec![1, 2])
    );
    assert_eq!(
        api::parse_deliveries(r#"{"events":[{"id":"a"}]}"#, true),
        None
    );
}
