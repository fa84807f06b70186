//! `hookline-bench`: a load benchmark of a live Hookline API and worker, on loopback.
//!
//! The binary starts its own [`receiver::Receiver`], creates webhooks pointing at it, publishes
//! events carrying their send time and a sequence number, and waits (bounded) for every
//! delivery. With `--hanging K` it first sets up a hostile second brand whose K webhooks point
//! at endpoints of its own that hang or fail ([`hostile`], [`hanging`]), and publishes to it,
//! so that the healthy brand is measured while another brand's deliveries are stuck. The
//! library holds the parts worth testing on their own: the receiver and its tally, the
//! misbehaving endpoints, the signature check, the histogram summaries, the `/proc` sampler and
//! the report.

pub mod api;
pub mod background;
pub mod hanging;
pub mod hostile;
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
