//! `hookline-bench`: a load benchmark of a live Hookline API and worker, on loopback.
//!
//! The binary starts its own [`receiver::Receiver`], creates webhooks pointing at it, publishes
//! events carrying their send time and a sequence number, and waits (bounded) for every
//! delivery. The library holds the parts worth testing on their own: the receiver and its
//! tally, the misbehaving endpoints of `--hanging` ([`hanging`]), the signature check, the
//! histogram summaries, the `/proc` sampler and the report.

pub mod api;
pub mod hanging;
pub mod load;
pub mod procs;
pub mod raw;
pub mod receiver;
pub mod report;
pub mod sign;
pub mod stats;

use std::time::{SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch (0 for a clock before it).
pub fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}
