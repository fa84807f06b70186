//! Test-only helpers shared by the integration tests of the API and the worker.
//!
//! Tests must never stop the machine's shared Postgres or RabbitMQ. To simulate an outage, a
//! test points the code at a [`TcpProxy`] in front of the real service and cuts it.
//!
//! Layout: `proxy.rs` ([`TcpProxy`]).

mod proxy;

pub use proxy::TcpProxy;
