//! Exponential backoff for the loops that wait on Postgres or RabbitMQ.

use std::time::Duration;

/// Doubles from `first` up to `max`; [`Backoff::reset`] after a success.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Backoff {
        Backoff {
            first,
            max,
            next: first,
        }
    }

    /// The delay to wait now; the following one is twice as long, up to the bound.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }

    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

impl Default for Backoff {
    /// 200 ms to 5 s: a restarted broker or database is picked up within seconds, and a worker
    /// waiting through a long outage costs a few probes a minute.
    fn default() -> Backoff {
        Backoff::new(Duration::from_millis(200), Duration::from_secs(5))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_bound_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(3));
        let delays: Vec<_> = (0..4).map(|_| b.next_delay().as_secs()).collect();
        assert_eq!(delays, [1, 2, 3, 3]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_secs(1));
    }
}
