//! When to try a failed delivery again: a schedule of delays with jitter, and `Retry-After`.
//!
//! Attempt 1 is immediate; after failed attempt `n` the next waits `delays[n-1]` (±jitter), so a
//! schedule of ten delays allows eleven attempts. After the last, the delivery is final.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng as _;

#[derive(Clone, Debug, PartialEq)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
    /// Fraction of each delay added or removed at random (0.2 = ±20 %), so endpoints that failed
    /// together are not all retried in the same instant.
    jitter: f64,
    /// Upper bound on the delay an endpoint may ask for with `Retry-After`.
    retry_after_max: Duration,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid retry schedule `{0}`: expected durations like `5s,30s,2m`")]
pub struct ScheduleError(String);

impl RetrySchedule {
    pub fn new(delays: Vec<Duration>, jitter: f64, retry_after_max: Duration) -> Self {
        Self {
            delays,
            jitter: jitter.clamp(0.0, 0.99),
            retry_after_max,
        }
    }

    /// Parses `5s,30s,2m,…` (humantime durations, comma-separated; empty means no retries).
    pub fn parse(
        spec: &str,
        jitter: f64,
        retry_after_max: Duration,
    ) -> Result<Self, ScheduleError> {
        let delays = spec
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|d| humantime::parse_duration(d).map_err(|_| ScheduleError(spec.to_owned())))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::new(delays, jitter, retry_after_max))
    }

    /// How many attempts a delivery gets in all.
    pub fn max_attempts(&self) -> u32 {
        u32::try_from(self.delays.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1)
    }

    /// The delay before the attempt after failed attempt `attempts_made` (1-based), or `None`
    /// when that was the last. `retry_after` (from a 429/503) replaces the scheduled delay,
    /// bounded by `retry_after_max`, and is not jittered: the endpoint asked for that time.
    pub fn next_delay(
        &self,
        attempts_made: u32,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        let index = usize::try_from(attempts_made.checked_sub(1)?).ok()?;
        let scheduled = *self.delays.get(index)?;
        if let Some(asked) = retry_after {
            return Some(asked.min(self.retry_after_max));
        }
        if self.jitter == 0.0 {
            return Some(scheduled);
        }
        let factor = rand::rng().random_range((1.0 - self.jitter)..=(1.0 + self.jitter));
        Some(scheduled.mul_f64(factor))
    }
}

/// Parses a `Retry-After` value: delay-seconds or an HTTP date (RFC 9110 §10.2.3), relative to
/// `now`. Dates in the past mean "now".
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    Some((when - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(jitter: f64) -> RetrySchedule {
        RetrySchedule::parse(
            "5s,30s,2m,10m,30m,1h,3h,6h,12h,24h",
            jitter,
            Duration::from_secs(3600),
        )
        .expect("valid")
    }

    #[test]
    fn default_schedule_is_eleven_attempts() {
        let s = schedule(0.0);
        assert_eq!(s.max_attempts(), 11);
        assert_eq!(s.next_delay(1, None), Some(Duration::from_secs(5)));
        assert_eq!(s.next_delay(10, None), Some(Duration::from_secs(24 * 3600)));
        assert_eq!(s.next_delay(11, None), None);
        assert_eq!(s.next_delay(0, None), None);
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let s = schedule(0.2);
        for _ in 0..1000 {
            let d = s.next_delay(2, None).expect("delay");
            assert!(
                d >= Duration::from_secs(24) && d <= Duration::from_secs(36),
                "{d:?}"
            );
        }
    }

    #[test]
    fn retry_after_replaces_the_delay_up_to_the_bound() {
        let s = schedule(0.2);
        assert_eq!(
            s.next_delay(1, Some(Duration::from_secs(90))),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            s.next_delay(1, Some(Duration::from_secs(90_000))),
            Some(Duration::from_secs(3600))
        );
        // No attempt is left: Retry-After does not add one.
        assert_eq!(s.next_delay(11, Some(Duration::from_secs(1))), None);
    }

    #[test]
    fn bad_schedules_are_refused_and_empty_means_no_retries() {
        assert!(RetrySchedule::parse("5s,soon", 0.0, Duration::ZERO).is_err());
        let none = RetrySchedule::parse("", 0.0, Duration::ZERO).expect("empty");
        assert_eq!(none.max_attempts(), 1);
        assert_eq!(none.next_delay(1, None), None);
    }

    #[test]
    fn retry_after_parses_seconds_and_http_dates() {
        let now = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .expect("t")
            .with_timezone(&Utc);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 2026 00:01:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            parse_retry_after("Wed, 31 Dec 2025 00:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }
}
