//! Latency histograms (microseconds, 3 significant figures) and their summaries in ms.

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest value tracked: one hour in microseconds; larger values are clamped to it.
const MAX_MICROS: u64 = 3_600_000_000;

/// An empty histogram of microseconds, 1 µs to 1 h.
pub fn histogram() -> Histogram<u64> {
    match Histogram::new_with_bounds(1, MAX_MICROS, 3) {
        Ok(h) => h,
        Err(e) => unreachable!("constant histogram bounds are valid: {e}"),
    }
}

/// Records a duration given in nanoseconds (clamped to 1 µs … 1 h).
pub fn record_nanos(h: &mut Histogram<u64>, nanos: u64) {
    h.saturating_record((nanos / 1_000).clamp(1, MAX_MICROS));
}

/// A histogram's summary, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Summary {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Summary {
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let ms = |micros: u64| micros as f64 / 1_000.0;
        Self {
            count: h.len(),
            mean_ms: h.mean() / 1_000.0,
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
        }
    }
}

/// `count / seconds`, 0 when no time passed.
pub fn per_second(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}
