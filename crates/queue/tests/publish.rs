//! The publisher against the real RabbitMQ: confirmed messages arrive; a broker outage is an
//! error for the call that hit it, and the next call after the broker returns succeeds.

use std::time::Duration;

use futures::StreamExt as _;
use hookline_domain::{message::MAX_POINTERS, DeliveryMessage};
use hookline_queue::{connect, consume, delete_topology, Names, Publisher};
use hookline_testkit::TcpProxy;
use lapin::options::BasicAckOptions;
use uuid::Uuid;

const URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

fn message() -> DeliveryMessage {
    DeliveryMessage {
        webhook_id: Uuid::now_v7(),
        event_id: Uuid::now_v7(),
    }
}

/// Reads queue messages until they hold `n` pointers; returns the pointers and how many queue
/// messages carried them.
async fn receive(names: &Names, n: usize) -> (Vec<DeliveryMessage>, usize) {
    let conn = connect(URL).await.expect("connect");
    let (_channel, mut consumer) = consume(&conn, names, 10, "test").await.expect("consume");
    let mut got = Vec::new();
    let mut queue_messages = 0;
    while got.len() < n {
        let delivery = tokio::time::timeout(Duration::from_secs(10), consumer.next())
            .await
            .expect("a message within 10 s")
            .expect("stream open")
            .expect("delivery");
        got.extend(DeliveryMessage::batch_from_bytes(&delivery.data).expect("message"));
        queue_messages += 1;
        delivery.ack(BasicAckOptions::default()).await.expect("ack");
    }
    (got, queue_messages)
}

#[tokio::test]
async fn published_messages_are_confirmed_and_consumed() {
    let names = Names::from_prefix(&format!("hookline_test_{}", Uuid::new_v4().simple()));
    let publisher = Publisher::new(URL, names.clone());
    let sent: Vec<_> = (0..150).map(|_| message()).collect();
    publisher.publish(&sent).await.expect("publish");
    let (mut got, queue_messages) = receive(&names, 150).await;
    got.sort_by_key(|m| m.event_id);
    assert_eq!(got, sent);
    assert_eq!(
        queue_messages,
        150_usize.div_ceil(MAX_POINTERS),
        "pointers share queue messages, up to MAX_POINTERS each"
    );
    delete_topology(URL, &names).await.expect("cleanup");
}

#[tokio::test]
async fn a_broker_outage_fails_the_call_and_the_publisher_reconnects_after() {
    let names = Names::from_prefix(&format!("hookline_test_{}", Uuid::new_v4().simple()));
    let upstream = "127.0.0.1:5672".parse().expect("addr");
    let proxy = TcpProxy::start(upstream).await.expect("proxy");
    let publisher = Publisher::new(
        format!("amqp://guest:guest@{}/%2f", proxy.addr()),
        names.clone(),
    );
    publisher
        .publish(&[message()])
        .await
        .expect("publish while up");

    proxy.cut();
    assert!(
        publisher.publish(&[message()]).await.is_err(),
        "publish while the broker is cut"
    );

    proxy.restore();
    let after = message();
    publisher
        .publish(&[after])
        .await
        .expect("publish after restore");
    let (got, _) = receive(&names, 2).await;
    assert_eq!(got[1], after);
    delete_topology(URL, &names).await.expect("cleanup");
}
