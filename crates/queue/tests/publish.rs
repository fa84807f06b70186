//! The publisher against the real RabbitMQ: confirmed messages arrive; a broker outage is an
//! error for the call that hit it, and the next call after the broker returns succeeds. The
//! topology: a message returned too often is dead-lettered, and a delivery queue declared
//! before the delivery limit existed is still used.

use std::time::Duration;

use futures::StreamExt as _;
use hookline_domain::{message::MAX_POINTERS, DeliveryMessage};
use hookline_queue::{
    connect, consume, consume_dead, delete_topology, Names, Publisher, DELIVERY_LIMIT,
};
use hookline_testkit::TcpProxy;
use lapin::{
    message::Delivery,
    options::{BasicAckOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable},
    Consumer,
};
use uuid::Uuid;

const URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

fn message() -> DeliveryMessage {
    DeliveryMessage {
        webhook_id: Uuid::now_v7(),
        event_id: Uuid::now_v7(),
    }
}

fn unique_names() -> Names {
    Names::from_prefix(&format!("hookline_test_{}", Uuid::new_v4().simple()))
}

/// The next message of `consumer`; panics after 10 s.
async fn next(consumer: &mut Consumer) -> Delivery {
    tokio::time::timeout(Duration::from_secs(10), consumer.next())
        .await
        .expect("a message within 10 s")
        .expect("stream open")
        .expect("delivery")
}

/// Reads queue messages until they hold `n` pointers; returns the pointers and how many queue
/// messages carried them.
async fn receive(names: &Names, n: usize) -> (Vec<DeliveryMessage>, usize) {
    let conn = connect(URL).await.expect("connect");
    let (_channel, mut consumer) = consume(&conn, names, 10, "test").await.expect("consume");
    let mut got = Vec::new();
    let mut queue_messages = 0;
    while got.len() < n {
        let delivery = next(&mut consumer).await;
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

#[tokio::test]
async fn a_message_returned_more_than_the_limit_is_dead_lettered() {
    let names = unique_names();
    let publisher = Publisher::new(URL, names.clone());
    let sent = message();
    publisher.publish(&[sent]).await.expect("publish");

    // What a worker killed while holding the message does, over and over: its channel closes
    // with the message unacknowledged. (A close counts on every RabbitMQ version; a
    // `basic.nack` with requeue no longer does from 4.3 on.)
    let conn = connect(URL).await.expect("connect");
    let mut handed_out = 0;
    loop {
        let (channel, mut consumer) = consume(&conn, &names, 1, "test").await.expect("consume");
        let next = tokio::time::timeout(Duration::from_secs(2), consumer.next()).await;
        let Ok(next) = next else {
            break; // not handed out again: dead-lettered
        };
        let delivery = next.expect("stream open").expect("delivery");
        handed_out += 1;
        assert!(
            handed_out <= DELIVERY_LIMIT + 1,
            "the message is still handed out after {handed_out} deliveries"
        );
        drop(delivery);
        channel
            .close(200, "worker lost".into())
            .await
            .expect("close");
    }
    assert_eq!(
        handed_out,
        DELIVERY_LIMIT + 1,
        "the first delivery and DELIVERY_LIMIT more"
    );

    let (_dead_channel, mut dead) = consume_dead(&conn, &names, 1, "test-dead")
        .await
        .expect("consume dead");
    let delivery = next(&mut dead).await;
    assert_eq!(
        DeliveryMessage::batch_from_bytes(&delivery.data).expect("message"),
        [sent]
    );
    delivery.ack(BasicAckOptions::default()).await.expect("ack");
    let _ = conn.close(200, "bye".into()).await;
    delete_topology(URL, &names).await.expect("cleanup");
}

#[tokio::test]
async fn a_delivery_queue_declared_without_the_limit_is_still_used() {
    let names = unique_names();
    // The queue as an earlier version declared it: quorum, no delivery limit.
    let conn = connect(URL).await.expect("connect");
    let channel = conn.create_channel().await.expect("channel");
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    channel
        .queue_declare(
            names.queue.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            args,
        )
        .await
        .expect("declare the old queue");

    let publisher = Publisher::new(URL, names.clone());
    let sent = message();
    publisher
        .publish(&[sent])
        .await
        .expect("publish over the old queue");
    let (got, _) = receive(&names, 1).await;
    assert_eq!(got, [sent]);
    // The dead-letter side exists, ready for a policy to point at it.
    let dead = channel
        .queue_declare(
            names.dead_queue.as_str().into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("the dead-letter queue is declared");
    assert_eq!(dead.message_count(), 0);
    let _ = conn.close(200, "bye".into()).await;
    delete_topology(URL, &names).await.expect("cleanup");
}
