//! Hookline's delivery worker (`hookline-worker`): consumes delivery messages from RabbitMQ,
//! signs and POSTs each event to its webhook's endpoint, records every attempt in Postgres, and
//! publishes retries when they are due. Run as many copies as needed; they share the queue.
//!
//! Postgres decides what is owed (docs/architecture.md, "Data"): a message only points at a delivery row, so a
//! stale or repeated one is dropped, and whatever a worker did not record — broker down, worker
//! killed — is re-published by the scheduler when its lease runs out.
//!
//! Layout:
//! - [`startup`]: [`Worker`] — build from settings, run until a shutdown token fires;
//! - [`consumer`]: the queue loop (concurrency, acknowledgements, graceful drain);
//! - [`scheduler`]: publishes due retries and expired leases;
//! - [`dead_letter`]: parks the deliveries of messages the queue dead-lettered after they
//!   came back unacknowledged too often (a message that kills the workers taking it);
//! - [`delivery`]: one delivery — the signed request, the guarded client, the per-brand and
//!   per-host budgets, shared event bodies, and the handler returning an outcome;
//! - [`endpoints`]: endpoint health — degrading, probing, disabling, releasing parked work,
//!   and the operational events;
//! - [`housekeeping`]: bulk recovery jobs and the retention purge;
//! - [`health`]: `/healthz`; [`telemetry`]: logging; [`backoff`]: retry delays of the loops.

pub mod backoff;
pub mod consumer;
pub mod dead_letter;
pub mod delivery;
pub mod endpoints;
pub mod health;
pub mod housekeeping;
pub mod scheduler;
pub mod startup;
pub mod telemetry;

pub use startup::{cancel_on_signal, BuildError, Worker};
