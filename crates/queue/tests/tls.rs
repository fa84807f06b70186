//! `amqps://` with a CA file (`cacertfile` in the URL), through a real TLS-terminating proxy in
//! front of the machine's RabbitMQ (which has no TLS listener of its own): the publisher and a
//! consumer work over TLS when the URL trusts the CA that signed the proxy's certificate, and
//! a certificate from another CA, or for another name, is refused.

use std::{path::PathBuf, time::Duration};

use futures::StreamExt as _;
use hookline_domain::DeliveryMessage;
use hookline_queue::{connect, consume, delete_topology, Names, Publisher, QueueError};
use hookline_testkit::tls::{TestCa, TlsProxy};
use lapin::options::BasicAckOptions;
use uuid::Uuid;

const PLAIN_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// A PEM file in the temp directory, removed when dropped.
struct PemFile(PathBuf);

impl PemFile {
    fn new(pem: &str) -> PemFile {
        let path =
            std::env::temp_dir().join(format!("hookline-test-ca-{}.pem", Uuid::new_v4().simple()));
        std::fs::write(&path, pem).expect("write CA file");
        PemFile(path)
    }
}

impl Drop for PemFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn amqps_url(host: &str, port: u16, ca: &PemFile) -> String {
    format!(
        "amqps://guest:guest@{host}:{port}/%2f?cacertfile={}",
        ca.0.display()
    )
}

async fn tls_proxy(ca: &TestCa, names: &[&str]) -> TlsProxy {
    TlsProxy::start("127.0.0.1:5672".parse().expect("addr"), &ca.issue(names))
        .await
        .expect("TLS proxy")
}

#[tokio::test]
async fn amqps_with_the_ca_file_publishes_and_consumes_over_tls() {
    let ca = TestCa::new("Hookline test CA");
    let proxy = tls_proxy(&ca, &["localhost"]).await;
    let ca_file = PemFile::new(ca.cert_pem());
    let url = amqps_url("localhost", proxy.port(), &ca_file);
    let names = Names::from_prefix(&format!("hookline_test_{}", Uuid::new_v4().simple()));

    let publisher = Publisher::new(url.clone(), names.clone());
    let sent: Vec<_> = (0..3)
        .map(|_| DeliveryMessage {
            webhook_id: Uuid::now_v7(),
            event_id: Uuid::now_v7(),
        })
        .collect();
    publisher.publish(&sent).await.expect("publish over amqps");

    let conn = connect(&url).await.expect("connect over amqps");
    let (_channel, mut consumer) = consume(&conn, &names, 10, "tls").await.expect("consume");
    let mut got = Vec::new();
    while got.len() < sent.len() {
        let delivery = tokio::time::timeout(Duration::from_secs(10), consumer.next())
            .await
            .expect("a message within 10 s")
            .expect("stream open")
            .expect("delivery");
        got.extend(DeliveryMessage::batch_from_bytes(&delivery.data).expect("message"));
        delivery.ack(BasicAckOptions::default()).await.expect("ack");
    }
    got.sort_by_key(|m| m.event_id);
    assert_eq!(got, sent);
    assert!(
        proxy.handshakes() >= 2,
        "the publisher and the consumer each completed a TLS handshake with the proxy, got {}",
        proxy.handshakes()
    );
    let _ = conn.close(200, "bye".into()).await;
    delete_topology(&url, &names).await.expect("cleanup");
}

/// The connect error's text (lapin's error says why the handshake failed).
async fn refused(url: &str) -> String {
    match connect(url).await {
        Ok(_) => panic!("connected to {url}, which should have been refused"),
        Err(e) => format!("{e} / {e:?}"),
    }
}

#[tokio::test]
async fn a_certificate_from_another_ca_or_for_another_name_is_refused() {
    let ca = TestCa::new("Hookline test CA");
    let proxy = tls_proxy(&ca, &["localhost"]).await;

    let other_ca = PemFile::new(TestCa::new("Some other CA").cert_pem());
    let err = refused(&amqps_url("localhost", proxy.port(), &other_ca)).await;
    assert!(err.contains("UnknownIssuer"), "{err}");

    // Right CA, but the certificate names `localhost`, not 127.0.0.1.
    let ca_file = PemFile::new(ca.cert_pem());
    let err = refused(&amqps_url("127.0.0.1", proxy.port(), &ca_file)).await;
    assert!(err.contains("NotValidForName"), "{err}");

    // Without the CA file the public roots alone do not trust a private CA.
    let err = refused(&format!(
        "amqps://guest:guest@localhost:{}/%2f",
        proxy.port()
    ))
    .await;
    assert!(err.contains("UnknownIssuer"), "{err}");

    assert_eq!(proxy.handshakes(), 0, "no handshake completed");
    // The same proxy does accept a client that trusts its CA: the refusals were the
    // certificate checks, not a broken proxy.
    let conn = connect(&amqps_url("localhost", proxy.port(), &ca_file))
        .await
        .expect("connect with the right CA and name");
    assert_eq!(proxy.handshakes(), 1);
    let _ = conn.close(200, "bye".into()).await;
}

#[tokio::test]
async fn a_ca_file_that_cannot_be_used_is_a_clear_error() {
    let missing = "amqps://guest:guest@localhost:5671/%2f?cacertfile=/nonexistent/ca.pem";
    match connect(missing).await {
        Err(QueueError::Config(message)) => {
            assert!(message.contains("/nonexistent/ca.pem"), "{message}")
        }
        other => panic!("expected a configuration error, got {other:?}"),
    }
    let ca_file = PemFile::new("not a certificate");
    match connect(&amqps_url("localhost", 5671, &ca_file)).await {
        Err(QueueError::Config(message)) => {
            assert!(message.contains("no PEM certificate"), "{message}")
        }
        other => panic!("expected a configuration error, got {other:?}"),
    }
    let plain_with_ca = format!("{PLAIN_URL}?cacertfile={}", ca_file.0.display());
    match connect(&plain_with_ca).await {
        Err(QueueError::Config(message)) => assert!(message.contains("amqps://"), "{message}"),
        other => panic!("expected a configuration error, got {other:?}"),
    }
    // The plain URL still connects in the clear.
    let conn = connect(PLAIN_URL).await.expect("plain amqp");
    let _ = conn.close(200, "bye".into()).await;
}
