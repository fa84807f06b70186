//! The dispatch path: RabbitMQ topology, a publisher with confirms, and consumer set-up.
//!
//! Messages are [`DeliveryMessage`]s — pointers to delivery rows — published persistent to a
//! durable direct exchange bound to a durable quorum queue. Postgres stays the source of truth:
//! a message that is lost with the broker is re-published by the worker's scheduler when its
//! lease runs out, and a repeated one is dropped by the worker.
//!
//! A message the broker has handed out more than [`DELIVERY_LIMIT`] times without an
//! acknowledgement — typically because it kills each worker that takes it — is dead-lettered
//! to a queue of its own ([`Names::dead_queue`]), where the worker parks its deliveries
//! instead of handing it to the next worker.
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
    protocol::{AMQPErrorKind, AMQPSoftError},
    tcp::OwnedTLSConfig,
    types::{AMQPValue, FieldTable},
    BasicProperties, Channel, Connect as _, Connection, ConnectionProperties, Consumer, ErrorKind,
    ExchangeKind,
};
use tokio::sync::Mutex;
use tracing::warn;
use url::Url;

/// The routing key of delivery messages.
const ROUTING_KEY: &str = "delivery";
/// How long a batch of publishes may wait for the broker's confirms.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(10);
/// How long connecting may take before the caller hears the broker is down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How many times the delivery queue hands a message out again after it came back
/// unacknowledged (`x-delivery-limit`) before dead-lettering it. A worker acknowledges a
/// message as soon as its deliveries are taken in Postgres, so a message comes back when a
/// worker died holding it or lost its channel — or, on RabbitMQ before 4.3, where every return
/// counts, when a worker requeued it after a database error. Five returns in a row are no
/// longer bad luck: the message is most likely what kills the workers, and without a limit it
/// would take down every worker in turn, forever. Small, since each return may have cost a
/// worker; not 1 or 2, so a rolling restart or a dropped connection does not dead-letter
/// healthy work.
pub const DELIVERY_LIMIT: i32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("broker error: {0}")]
    Broker(#[from] lapin::Error),
    #[error("the broker did not answer in time")]
    Timeout,
    #[error("the broker refused {0} message(s)")]
    Nacked(usize),
    /// The URL asks for something that cannot be set up (a CA file that cannot be read).
    #[error("broker connection settings: {0}")]
    Config(String),
}

/// Exchange and queue names, all under one prefix (`amqp.prefix`), so several deployments (or
/// tests) share a broker without seeing each other's messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Names {
    pub exchange: String,
    pub queue: String,
    /// The delivery queue's dead-letter exchange (fanout): where messages go once they exceed
    /// [`DELIVERY_LIMIT`].
    pub dead_exchange: String,
    /// The one queue bound to [`Names::dead_exchange`].
    pub dead_queue: String,
}

impl Names {
    pub fn from_prefix(prefix: &str) -> Names {
        Names {
            exchange: format!("{prefix}.deliveries"),
            queue: format!("{prefix}.deliveries"),
            dead_exchange: format!("{prefix}.deliveries.dead"),
            dead_queue: format!("{prefix}.deliveries.dead"),
        }
    }
}

/// The `amqp.url` query parameter naming a PEM file of CA certificates to trust for
/// `amqps://`, besides the public roots bundled with the binary: for a broker whose certificate
/// a private CA signed. The name is the one RabbitMQ's own URI query parameters use.
pub const CA_FILE_PARAM: &str = "cacertfile";

/// Connects to the broker at `url`: `amqp://` in the clear, `amqps://` over TLS (rustls), the
/// broker's certificate checked against the bundled public roots and the CA file the URL
/// names ([`CA_FILE_PARAM`]), and its name against the URL's host.
pub async fn connect(url: &str) -> Result<Connection, QueueError> {
    let tls = tls_config(url)?;
    let runtime = lapin::runtime::default_runtime()?;
    tokio::time::timeout(
        CONNECT_TIMEOUT,
        url.connect_with_config(ConnectionProperties::default(), tls, runtime),
    )
    .await
    .map_err(|_| QueueError::Timeout)?
    .map_err(QueueError::from)
}

/// The TLS settings for `url`: the CA file's certificates when it names one. The file is read
/// on every connect, so a rotated file is picked up without a restart.
fn tls_config(url: &str) -> Result<OwnedTLSConfig, QueueError> {
    let parsed = Url::parse(url).map_err(|e| QueueError::Config(format!("bad AMQP URL: {e}")))?;
    let Some(path) = parsed
        .query_pairs()
        .find(|(key, _)| key == CA_FILE_PARAM)
        .map(|(_, path)| path.into_owned())
    else {
        return Ok(OwnedTLSConfig::default());
    };
    if parsed.scheme() != "amqps" {
        return Err(QueueError::Config(format!(
            "{CA_FILE_PARAM} in the AMQP URL needs an amqps:// URL"
        )));
    }
    let pem = std::fs::read_to_string(&path)
        .map_err(|e| QueueError::Config(format!("{CA_FILE_PARAM} {path}: {e}")))?;
    if !pem.contains("-----BEGIN CERTIFICATE-----") {
        return Err(QueueError::Config(format!(
            "{CA_FILE_PARAM} {path}: holds no PEM certificate"
        )));
    }
    Ok(OwnedTLSConfig {
        identity: None,
        cert_chain: Some(pem),
    })
}

/// The arguments every queue of ours is declared with.
fn quorum_args() -> FieldTable {
    let mut args = FieldTable::default();
    // Quorum queues replicate and survive broker restarts; they need durable = true. They are
    // also the queue type that counts deliveries (`x-delivery-limit`).
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    args
}

fn durable_queue() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    }
}

/// Whether the broker refused a declaration because the entity exists with other arguments
/// (channel error 406 PRECONDITION_FAILED; the broker closes the channel).
fn is_precondition_failed(e: &lapin::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ProtocolError(amqp)
            if matches!(amqp.kind(), AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED))
    )
}

/// Declares the topology on a new channel of `conn` and returns a channel to go on with:
/// the dead-letter exchange and queue, then the delivery exchange and queue and their binding.
/// Idempotent: whichever process starts first creates them; the others' declarations are
/// no-ops.
///
/// A delivery queue declared by an earlier version (without the delivery limit) cannot be
/// given new arguments: the broker refuses with 406 and closes the channel. Then the queue is
/// used as it is, through a new channel, with a warning telling the operator how to set the
/// limit with a policy — failing here would stop every worker and API until someone deletes a
/// queue full of messages.
pub async fn declare(conn: &Connection, names: &Names) -> Result<Channel, QueueError> {
    let mut channel = conn.create_channel().await?;
    // The dead-letter side first, so the delivery queue's dead-letter exchange always exists.
    channel
        .exchange_declare(
            names.dead_exchange.as_str().into(),
            ExchangeKind::Fanout,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    // No delivery limit here: its consumer requeues while the database is down, and a message
    // dropped from this queue would leave its deliveries to loop through the workers again.
    channel
        .queue_declare(
            names.dead_queue.as_str().into(),
            durable_queue(),
            quorum_args(),
        )
        .await?;
    channel
        .queue_bind(
            names.dead_queue.as_str().into(),
            names.dead_exchange.as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
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
    let mut args = quorum_args();
    args.insert(
        "x-delivery-limit".into(),
        AMQPValue::LongInt(DELIVERY_LIMIT),
    );
    args.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString(names.dead_exchange.as_str().into()),
    );
    match channel
        .queue_declare(names.queue.as_str().into(), durable_queue(), args)
        .await
    {
        Ok(_) => {}
        Err(e) if is_precondition_failed(&e) => {
            let policy = format!(
                "rabbitmqctl set_policy {name}-limit '^{pattern}$' \
                 '{{\"delivery-limit\":{DELIVERY_LIMIT},\"dead-letter-exchange\":\"{dead}\"}}' \
                 --apply-to queues",
                name = names.queue,
                pattern = regex_escape(&names.queue),
                dead = names.dead_exchange,
            );
            warn!(
                queue = %names.queue,
                broker = %e,
                %policy,
                "the delivery queue predates its delivery limit (queue arguments cannot change): \
                 the limit is not in force on this queue, so a message that kills every worker \
                 taking it is redelivered forever; set it with the RabbitMQ policy `{policy}`",
            );
            // The broker closed the channel that got the 406.
            channel = conn.create_channel().await?;
            channel
                .queue_declare(
                    names.queue.as_str().into(),
                    QueueDeclareOptions {
                        passive: true,
                        ..durable_queue()
                    },
                    FieldTable::default(),
                )
                .await?;
        }
        Err(e) => return Err(e.into()),
    }
    channel
        .queue_bind(
            names.queue.as_str().into(),
            names.exchange.as_str().into(),
            ROUTING_KEY.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok(channel)
}

/// `name` as a policy pattern (a regular expression) matching only itself.
fn regex_escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Removes the topology (tests clean up after themselves).
pub async fn delete_topology(url: &str, names: &Names) -> Result<(), QueueError> {
    let conn = connect(url).await?;
    let channel = conn.create_channel().await?;
    for queue in [&names.queue, &names.dead_queue] {
        channel
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await?;
    }
    for exchange in [&names.exchange, &names.dead_exchange] {
        channel
            .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
            .await?;
    }
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
    consume_from(conn, names, &names.queue, prefetch, tag).await
}

/// A consumer on the dead-letter queue ([`Names::dead_queue`]) with `prefetch` unacknowledged
/// messages at most. Declares the whole topology, like [`consume`].
pub async fn consume_dead(
    conn: &Connection,
    names: &Names,
    prefetch: u16,
    tag: &str,
) -> Result<(Channel, Consumer), QueueError> {
    consume_from(conn, names, &names.dead_queue, prefetch, tag).await
}

async fn consume_from(
    conn: &Connection,
    names: &Names,
    queue: &str,
    prefetch: u16,
    tag: &str,
) -> Result<(Channel, Consumer), QueueError> {
    let channel = declare(conn, names).await?;
    channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await?;
    let consumer = channel
        .basic_consume(
            queue.into(),
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
        let channel = declare(&conn, &self.names).await?;
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
