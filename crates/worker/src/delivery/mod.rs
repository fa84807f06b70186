//! One delivery, end to end: the signed request, the guarded HTTP client, the per-brand and
//! per-host budgets, the shared event bodies, and the handler that ties them to the store.
//!
//! - [`request`]: the envelope and its signature headers (pure);
//! - [`resolve`]: the SSRF guard on resolved addresses;
//! - [`send`]: the outbound client, bounded response reads, transport-error classes;
//! - [`budget`]: in-flight requests per brand and per destination host;
//! - [`body`]: each event's body built once, shared by its deliveries, bytes capped;
//! - [`take`]: the deliveries of concurrent messages taken in one statement;
//! - [`record`]: attempts of concurrent deliveries written in one transaction;
//! - [`handle`]: a message in, an [`handle::Outcome`] out.

pub mod body;
pub mod budget;
pub mod handle;
pub mod record;
pub mod request;
pub mod resolve;
pub mod send;
pub mod take;
