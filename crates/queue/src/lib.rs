//! The dispatch path: RabbitMQ topology, a publisher with confirms, and consumer set-up.
//!
//! Messages are [`DeliveryMessage`]s — pointers to delivery rows — published persistent to a
//! durable direct exchange bound to a durable quorum queue. Postgres stays the source of truth:
//! a message that is lost with the broker is re-published by the worker's scheduler when its
//! lease runs out, and a repeated one is dropped by the worker.
//!
//! Layout: everything is in this file; it is small.

use std::time::Duration;

use futures::future::try_join_all;
use hookline_domain::{message::MAX_POINTERS, DeliveryMessage};
use lapin::{
    options::{
        BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
        ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
        QueueDeleteOptions,
    },
    types::{AMQPValue, FieldTable},
    BasicProperties, Channel, Connection, ConnectionProperties, Consumer, ExchangeKind,
};
use tokio::sync::Mutex;

/// The routing key of delivery messages.
const ROUTING_KEY: &str = "delivery";
/// How long a batch of publishes may wait for the broker's confirms.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(10);
/// How long connecting may take before the caller hears the broker is down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("broker error: {0}")]
    Broker(#[from] lapin::Error),
    #[error("the broker did not answer in time")]
    Timeout,
    #[error("the broker refused {0} message(s)")]
    Nacked(usize),
}

/// Exchange and queue names, all under one prefix (`amqp.prefix`), so several deployments (or
/// tests) share a broker without seeing each other's messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Names {
    pub exchange: String,
    pub queue: String,
}

impl Names {
    pub fn from_prefix(prefix: &str) -> Names {
        Names {
            exchange: format!("{prefix}.deliveries"),
            queue: format!("{prefix}.deliveries"),
        }
    }
}

pub async fn connect(url: &str) -> Result<Connection, QueueError> {
    tokio::time::timeout(
        CONNECT_TIMEOUT,
        Connection::connect(url, ConnectionProperties::default()),
    )
    .await
    .map_err(|_| QueueError::Timeout)?
    .map_err(QueueError::from)
}

/// Declares the exchange, the queue and their binding. Idempotent: whichever process starts
/// first creates them; the others' declarations are no-ops.
pub async fn declare(channel: &Channel, names: &Names) -> Result<(), QueueError> {
    channel
        .exchange_declare(
            names.exchange.as_str().into(),
            ExchangeKind::Direct,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    let mut args = FieldTable::default();
    // Quorum queues replicate and survive broker restarts; they need durable = true.
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
        .await?;
    channel
        .queue_bind(
            names.queue.as_str().into(),
            names.exchange.as_str().into(),
            ROUTING_KEY.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok(())
}

/// Removes the topology (tests clean up after themselves).
pub async fn delete_topology(url: &str, names: &Names) -> Result<(), QueueError> {
    let conn = connect(url).await?;
    let channel = conn.create_channel().await?;
    channel
        .queue_delete(names.queue.as_str().into(), QueueDeleteOptions::default())
        .await?;
    channel
        .exchange_delete(
            names.exchange.as_str().into(),
            ExchangeDeleteOptions::default(),
        )
        .await?;
    let _ = conn.close(200, "bye".into()).await;
    Ok(())
}

/// A consumer on the delivery queue with `prefetch` unacknowledged messages at most.
pub async fn consume(
    conn: &Connection,
    names: &Names,
    prefetch: u16,
    tag: &str,
) -> Result<(Channel, Consumer), QueueError> {
    let channel = conn.create_channel().await?;
    declare(&channel, names).await?;
    channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await?;
    let consumer = channel
        .basic_consume(
            names.queue.as_str().into(),
            tag.into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok((channel, consumer))
}

struct Link {
    // Kept so the connection lives as long as the channel.
    _conn: Connection,
    channel: Channel,
}

/// Publishes delivery messages with publisher confirms. Connects on first use and again after
/// any failure, so a broker outage costs the failed call and nothing after the broker returns.
pub struct Publisher {
    url: String,
    names: Names,
    link: Mutex<Option<Link>>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

impl Publisher {
    pub fn new(url: impl Into<String>, names: Names) -> Publisher {
        Publisher {
            url: url.into(),
            names,
            link: Mutex::new(None),
        }
    }

    pub fn names(&self) -> &Names {
        &self.names
    }

    async fn open(&self) -> Result<Link, QueueError> {
        let conn = connect(&self.url).await?;
        let channel = conn.create_channel().await?;
        declare(&channel, &self.names).await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(Link {
            _conn: conn,
            channel,
        })
    }

    /// Connects and declares the topology now (start-up), rather than on first publish.
    pub async fn ensure_connected(&self) -> Result<(), QueueError> {
        let mut link = self.link.lock().await;
        if link
            .as_ref()
            .is_none_or(|l| !l.channel.status().connected())
        {
            *link = Some(self.open().await?);
        }
        Ok(())
    }

    /// Whether the broker can be reached (`/readyz`): true while a publish holds the
    /// connection; otherwise (re)connects if needed.
    pub async fn check(&self) -> bool {
        if let Ok(link) = self.link.try_lock() {
            if link
                .as_ref()
                .is_some_and(|l| l.channel.status().connected())
            {
                return true;
            }
        } else {
            return true;
        }
        self.ensure_connected().await.is_ok()
    }

    /// Publishes the pointers, up to [`MAX_POINTERS`] per queue message, persistent, then waits
    /// for all the confirms together (pipelined, not one round trip per message). Ok only when
    /// the broker confirmed all.
    pub async fn publish(&self, messages: &[DeliveryMessage]) -> Result<(), QueueError> {
        if messages.is_empty() {
            return Ok(());
        }
        let mut guard = self.link.lock().await;
        if guard
            .as_ref()
            .is_none_or(|l| !l.channel.status().connected())
        {
            *guard = Some(self.open().await?);
        }
        let Some(link) = guard.as_ref() else {
            return Err(QueueError::Timeout);
        };
        let result = tokio::time::timeout(
            CONFIRM_TIMEOUT,
            publish_on(&link.channel, &self.names, messages),
        )
        .await
        .unwrap_or(Err(QueueError::Timeout));
        if result.is_err() {
            // Start afresh next time: the channel may be closed or in an unknown state.
            *guard = None;
        }
        result
    }
}

async fn publish_on(
    channel: &Channel,
    names: &Names,
    messages: &[DeliveryMessage],
) -> Result<(), QueueError> {
    let properties = BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into());
    let mut confirms = Vec::with_capacity(messages.len().div_ceil(MAX_POINTERS));
    for chunk in messages.chunks(MAX_POINTERS) {
        let confirm = channel
            .basic_publish(
                names.exchange.as_str().into(),
                ROUTING_KEY.into(),
                BasicPublishOptions::default(),
                &DeliveryMessage::batch_to_bytes(chunk),
                properties.clone(),
            )
            .await?;
        confirms.push(confirm);
    }
    let confirmations = try_join_all(confirms).await?;
    let nacked = confirmations.iter().filter(|c| !c.is_ack()).count();
    if nacked > 0 {
        return Err(QueueError::Nacked(nacked));
    }
    Ok(())
}
