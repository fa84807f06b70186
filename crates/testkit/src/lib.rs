//! Test-only helpers shared by the integration tests of the API and the worker.
//!
//! Tests must never stop the machine's shared Postgres or RabbitMQ. To simulate an outage, a
//! test points the code at a [`TcpProxy`] in front of the real service and cuts it.
//!
//! Layout: `proxy.rs` ([`TcpProxy`]); [`receiver`]: a real webhook endpoint on port 0 that
//! records requests and succeeds, fails or hangs as told; [`verify`]: an independent check of
//! the delivery signatures; [`tls`]: a generated CA and a TLS-terminating proxy; [`browser`]: a
//! headless Chromium driven over WebDriver, for the portal's pages.

pub mod browser;
mod proxy;
pub mod receiver;
pub mod tls;
pub mod verify;

pub use proxy::TcpProxy;
