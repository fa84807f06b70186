//! One delivery, end to end: the signed request, the guarded HTTP client, the per-endpoint cap
//! and the handler that ties them to the store.
//!
//! - [`request`]: the envelope and its signature headers (pure);
//! - [`resolve`]: the SSRF guard on resolved addresses;
//! - [`send`]: the outbound client, bounded response reads, transport-error classes;
//! - [`limiter`]: in-flight requests per endpoint;
//! - [`record`]: attempts of concurrent deliveries written in one transaction;
//! - [`handle`]: a message in, an [`handle::Outcome`] out.

pub mod handle;
pub mod limiter;
pub mod record;
pub mod request;
pub mod resolve;
pub mod send;
