//! The delivery lifecycle: the status of a delivery, what an attempt makes of it, and what a
//! delivery becomes when its endpoint's health changes. Pure: the store maps rows to these
//! types and the worker orchestrates; neither decides a transition on its own.
//!
//! ```text
//!            attempt failed, attempts left        endpoint degraded or disabled
//!           ┌─────────────┐                     ┌──────────────────────────────┐
//!           ▼             │                     │                              ▼
//! ingest ─▶ PENDING ──────┴──▶ attempt ─────────┘                           PARKED
//!   │         │  ▲                │ 2xx → SUCCESS                  (no attempt, retry clock
//!   │         │  └────────────────┤ last attempt failed → FAILURE   paused; released at a
//!   │         │                   │                                 bounded rate on recovery)
//!   │         └── released ◀──────┼──────────────────────────────────────────┘
//!   └─ webhook disabled ─▶ SKIPPED (recorded, never sent; replayable on re-enable)
//! ```
//!
//! A delivery is *due* when it is PENDING and its `next_attempt_at` has come; it is *parked*
//! when its endpoint cannot take it now (degraded, disabled) or a worker could not finish it:
//! it keeps its attempt count and waits in Postgres without a due time.

use std::{fmt, str::FromStr, time::Duration};

use chrono::{DateTime, Utc};

use crate::RetrySchedule;

/// Where a delivery stands. `SUCCESS`, `FAILURE` and `SKIPPED` are final until a brand asks
/// for more (a manual retry, a replay of skipped deliveries).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    /// Owed and scheduled: attempted when `next_attempt_at` comes.
    Pending,
    /// Owed but held back without a due time: the endpoint is degraded or disabled, or the
    /// delivery kept killing workers. Consumes no attempts while parked.
    Parked,
    /// An attempt got a 2xx.
    Success,
    /// Every attempt failed (or the one attempt of a manual retry did).
    Failure,
    /// The event matched a disabled webhook: recorded, never sent (replayable).
    Skipped,
}

impl DeliveryStatus {
    pub const ALL: [DeliveryStatus; 5] = [
        DeliveryStatus::Pending,
        DeliveryStatus::Parked,
        DeliveryStatus::Success,
        DeliveryStatus::Failure,
        DeliveryStatus::Skipped,
    ];

    /// The stored and displayed name.
    pub const fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "PENDING",
            DeliveryStatus::Parked => "PARKED",
            DeliveryStatus::Success => "SUCCESS",
            DeliveryStatus::Failure => "FAILURE",
            DeliveryStatus::Skipped => "SKIPPED",
        }
    }

    /// Whether nothing more happens to the delivery unless a brand asks.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            DeliveryStatus::Success | DeliveryStatus::Failure | DeliveryStatus::Skipped
        )
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown delivery status `{0}`")]
pub struct UnknownStatus(pub String);

impl FromStr for DeliveryStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DeliveryStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

/// Why a delivery is parked or skipped (`status_reason`).
pub mod reason {
    /// The webhook is disabled (by hand or automatically).
    pub const WEBHOOK_DISABLED: &str = "webhook_disabled";
    /// The endpoint is degraded: only a probe is sent until it answers again.
    pub const ENDPOINT_DEGRADED: &str = "endpoint_degraded";
    /// The delivery's message was dead-lettered or its worker was lost repeatedly while
    /// attempting it (a poison delivery): parked so it cannot take down worker after worker.
    pub const WORKER_LOST: &str = "worker_lost";
    /// Skipped while the webhook was disabled; the brand asked for it when enabling it again.
    pub const REPLAY_SKIPPED: &str = "replay_skipped";
}

/// How an attempt ended, as the lifecycle sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptResult {
    /// A 2xx.
    Delivered,
    /// No response: timeout, connection refused or reset, DNS, TLS.
    Unreachable,
    /// A 5xx: the endpoint is up but failing.
    ServerError,
    /// `410 Gone`: the endpoint says it is gone for good.
    Gone,
    /// Any other answer (3xx, 4xx, 429): the endpoint is up and refused this request.
    Refused,
}

impl AttemptResult {
    /// From the HTTP status of a response.
    pub fn of_status(status: u16) -> AttemptResult {
        match status {
            200..=299 => AttemptResult::Delivered,
            410 => AttemptResult::Gone,
            500..=599 => AttemptResult::ServerError,
            _ => AttemptResult::Refused,
        }
    }

    /// Whether the attempt says the endpoint is unhealthy (what counts toward degrading).
    /// A 4xx does not: the endpoint answered, and the fault is in what it was sent or how it
    /// is configured, which probing would not fix.
    pub fn is_endpoint_failure(self) -> bool {
        matches!(
            self,
            AttemptResult::Unreachable | AttemptResult::ServerError | AttemptResult::Gone
        )
    }
}

/// What a delivery becomes after an attempt, before the endpoint's health is considered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextState {
    Success,
    /// Failed; try again at this time.
    Retry {
        at: DateTime<Utc>,
    },
    /// Failed for good (schedule exhausted, or the one extra attempt of a manual retry).
    Failure,
}

impl NextState {
    /// The status this state is stored as.
    pub fn status(&self) -> DeliveryStatus {
        match self {
            NextState::Success => DeliveryStatus::Success,
            NextState::Retry { .. } => DeliveryStatus::Pending,
            NextState::Failure => DeliveryStatus::Failure,
        }
    }

    /// Whether the delivery's schedule ran out (the brand is told: `DELIVERY_EXHAUSTED`).
    pub fn is_exhausted(&self) -> bool {
        matches!(self, NextState::Failure)
    }
}

/// What the delivery becomes after an attempt: SUCCESS on any 2xx; FAILURE after the one extra
/// attempt of a manual retry or the last step of the schedule; otherwise due again after the
/// schedule's delay, or the endpoint's `Retry-After` (bounded by the schedule).
pub fn next_state(
    attempts_before: i32,
    manual_retry: bool,
    result: AttemptResult,
    retry_after: Option<Duration>,
    schedule: &RetrySchedule,
    now: DateTime<Utc>,
) -> NextState {
    if result == AttemptResult::Delivered {
        return NextState::Success;
    }
    if manual_retry {
        return NextState::Failure;
    }
    let attempts_made = u32::try_from(attempts_before)
        .unwrap_or(0)
        .saturating_add(1);
    match schedule.next_delay(attempts_made, retry_after) {
        Some(delay) => NextState::Retry {
            at: now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX),
        },
        None => NextState::Failure,
    }
}

/// Where a delivery that is still owed goes, given its endpoint's health: a healthy endpoint
/// gets it at its due time; a degraded or disabled one has it parked (its clock paused).
pub fn owed_status(health: HealthState) -> DeliveryStatus {
    match health {
        HealthState::Healthy => DeliveryStatus::Pending,
        HealthState::Degraded | HealthState::Disabled => DeliveryStatus::Parked,
    }
}

/// What a new event's delivery to a webhook starts as: due now, parked behind a degraded
/// endpoint, or skipped (recorded, unsent) for a disabled webhook.
pub fn initial_status(health: HealthState) -> DeliveryStatus {
    match health {
        HealthState::Healthy => DeliveryStatus::Pending,
        HealthState::Degraded => DeliveryStatus::Parked,
        HealthState::Disabled => DeliveryStatus::Skipped,
    }
}

/// The health of a webhook's endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HealthState {
    /// Deliveries flow.
    Healthy,
    /// Failing: one probe at a time, on an increasing interval; the rest parked.
    Degraded,
    /// Nothing is sent: by hand, after failing for the disable period, or on `410 Gone`.
    Disabled,
}

impl HealthState {
    pub const ALL: [HealthState; 3] = [
        HealthState::Healthy,
        HealthState::Degraded,
        HealthState::Disabled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::Healthy => "healthy",
            HealthState::Degraded => "degraded",
            HealthState::Disabled => "disabled",
        }
    }
}

impl fmt::Display for HealthState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for HealthState {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HealthState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

/// Why a webhook is not healthy (`health_reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HealthReason {
    /// Consecutive failures (degraded), or failing for the whole disable period (disabled).
    Failing,
    /// The endpoint answered `410 Gone`.
    Gone,
    /// Disabled by the brand (flexEngage `enabled: false`, FDX `INACTIVE`).
    Manual,
}

impl HealthReason {
    pub const ALL: [HealthReason; 3] = [
        HealthReason::Failing,
        HealthReason::Gone,
        HealthReason::Manual,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            HealthReason::Failing => "consecutive_failures",
            HealthReason::Gone => "endpoint_gone",
            HealthReason::Manual => "manual",
        }
    }
}

impl FromStr for HealthReason {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HealthReason::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

/// When an endpoint degrades, how it is probed, and when it is disabled.
#[derive(Clone, Debug, PartialEq)]
pub struct HealthPolicy {
    /// Consecutive endpoint failures that degrade a healthy endpoint.
    pub failure_threshold: u32,
    /// The first probe interval after degrading; each failed probe doubles it.
    pub probe_interval: Duration,
    /// The longest probe interval.
    pub probe_interval_max: Duration,
    /// Failing continuously this long disables the webhook.
    pub disable_after: Duration,
    /// Whether `410 Gone` disables the webhook at once.
    pub disable_on_gone: bool,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        HealthPolicy {
            failure_threshold: 5,
            probe_interval: Duration::from_secs(30),
            probe_interval_max: Duration::from_secs(600),
            // Svix's period: an endpoint failing for five days is switched off.
            disable_after: Duration::from_secs(5 * 24 * 3600),
            disable_on_gone: true,
        }
    }
}

/// A webhook's health as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    pub state: HealthState,
    pub reason: Option<HealthReason>,
    /// Endpoint failures since the last success.
    pub consecutive_failures: u32,
    /// The first failure since the last success.
    pub failing_since: Option<DateTime<Utc>>,
    /// While degraded: the current probe interval and when the next probe is due.
    pub probe_interval: Option<Duration>,
    pub next_probe_at: Option<DateTime<Utc>>,
}

impl Health {
    pub fn healthy() -> Health {
        Health {
            state: HealthState::Healthy,
            reason: None,
            consecutive_failures: 0,
            failing_since: None,
            probe_interval: None,
            next_probe_at: None,
        }
    }

    fn disabled(self, reason: HealthReason) -> Health {
        Health {
            state: HealthState::Disabled,
            reason: Some(reason),
            probe_interval: None,
            next_probe_at: None,
            ..self
        }
    }
}

/// What happened to a webhook, as the health machine reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HealthInput {
    /// Attempts were recorded. `consecutive_failures` and `failing_since` in the health
    /// passed with it already count them (the store updates counters atomically); `probe` is
    /// the result of the probe among them, if one was.
    Attempts {
        any_delivered: bool,
        gone: bool,
        probe: Option<bool>,
    },
    /// A degraded endpoint's probe is due: whether it has failed for the whole disable period
    /// is checked here too, so an endpoint that stopped answering entirely still gets disabled.
    ProbeDue,
    /// The brand disabled the webhook.
    Disable,
    /// The brand enabled it.
    Enable,
}

/// A change of state that the brand is told about (operational events) and that moves
/// deliveries (parking, releasing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    Degraded,
    Recovered,
    Disabled(HealthReason),
    Enabled,
}

/// The health machine: the next health, and the transition if the state changed.
///
/// - healthy → degraded at `failure_threshold` consecutive failures; the first probe is due
///   one `probe_interval` later;
/// - degraded: a successful probe (or any 2xx) → healthy; a failed probe doubles the interval
///   up to `probe_interval_max`; failing for `disable_after` → disabled (`consecutive_failures`);
/// - `410 Gone` → disabled (`endpoint_gone`) when `disable_on_gone`;
/// - the brand's disable → disabled (`manual`) from any state; enable → healthy, counters reset.
pub fn transition(
    health: &Health,
    input: HealthInput,
    policy: &HealthPolicy,
    now: DateTime<Utc>,
) -> (Health, Option<Transition>) {
    let failing_too_long = |h: &Health| {
        h.failing_since.is_some_and(|since| {
            now.signed_duration_since(since)
                .to_std()
                .is_ok_and(|d| d >= policy.disable_after)
        })
    };
    let unchanged = (health.clone(), None);
    match (health.state, input) {
        (HealthState::Disabled, HealthInput::Enable) => {
            (Health::healthy(), Some(Transition::Enabled))
        }
        (_, HealthInput::Enable) => unchanged,
        (HealthState::Disabled, _) => unchanged,
        (_, HealthInput::Disable) => (
            health.clone().disabled(HealthReason::Manual),
            Some(Transition::Disabled(HealthReason::Manual)),
        ),
        (_, HealthInput::Attempts { gone: true, .. }) if policy.disable_on_gone => (
            health.clone().disabled(HealthReason::Gone),
            Some(Transition::Disabled(HealthReason::Gone)),
        ),
        (HealthState::Healthy, HealthInput::Attempts { .. }) => {
            if health.consecutive_failures >= policy.failure_threshold.max(1) {
                let degraded = Health {
                    state: HealthState::Degraded,
                    reason: Some(HealthReason::Failing),
                    probe_interval: Some(policy.probe_interval),
                    next_probe_at: Some(now + chrono_duration(policy.probe_interval)),
                    ..health.clone()
                };
                (degraded, Some(Transition::Degraded))
            } else {
                unchanged
            }
        }
        (HealthState::Healthy, HealthInput::ProbeDue) => unchanged,
        (
            HealthState::Degraded,
            HealthInput::Attempts {
                any_delivered: true,
                ..
            },
        ) => (Health::healthy(), Some(Transition::Recovered)),
        (HealthState::Degraded, HealthInput::Attempts { probe, .. }) => {
            if failing_too_long(health) {
                (
                    health.clone().disabled(HealthReason::Failing),
                    Some(Transition::Disabled(HealthReason::Failing)),
                )
            } else if probe == Some(false) {
                // The probe failed: wait twice as long before the next one.
                let interval = health
                    .probe_interval
                    .unwrap_or(policy.probe_interval)
                    .saturating_mul(2)
                    .min(policy.probe_interval_max);
                let next = Health {
                    probe_interval: Some(interval),
                    next_probe_at: Some(now + chrono_duration(interval)),
                    ..health.clone()
                };
                (next, None)
            } else {
                // Attempts that were in flight when the endpoint degraded: counted, and the
                // probe schedule is left as it is.
                unchanged
            }
        }
        (HealthState::Degraded, HealthInput::ProbeDue) => {
            if failing_too_long(health) {
                (
                    health.clone().disabled(HealthReason::Failing),
                    Some(Transition::Disabled(HealthReason::Failing)),
                )
            } else {
                unchanged
            }
        }
    }
}

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> HealthPolicy {
        HealthPolicy {
            failure_threshold: 3,
            probe_interval: Duration::from_secs(30),
            probe_interval_max: Duration::from_secs(100),
            disable_after: Duration::from_secs(3600),
            disable_on_gone: true,
        }
    }

    fn failing(
        state: HealthState,
        failures: u32,
        since_secs_ago: i64,
        now: DateTime<Utc>,
    ) -> Health {
        Health {
            state,
            reason: (state != HealthState::Healthy).then_some(HealthReason::Failing),
            consecutive_failures: failures,
            failing_since: (failures > 0).then(|| now - chrono::Duration::seconds(since_secs_ago)),
            probe_interval: (state == HealthState::Degraded).then(|| Duration::from_secs(30)),
            next_probe_at: (state == HealthState::Degraded).then_some(now),
        }
    }

    const FAILED: HealthInput = HealthInput::Attempts {
        any_delivered: false,
        gone: false,
        probe: None,
    };
    const DELIVERED: HealthInput = HealthInput::Attempts {
        any_delivered: true,
        gone: false,
        probe: None,
    };
    const PROBE_FAILED: HealthInput = HealthInput::Attempts {
        any_delivered: false,
        gone: false,
        probe: Some(false),
    };
    const PROBE_DELIVERED: HealthInput = HealthInput::Attempts {
        any_delivered: true,
        gone: false,
        probe: Some(true),
    };
    const GONE: HealthInput = HealthInput::Attempts {
        any_delivered: false,
        gone: true,
        probe: None,
    };

    #[test]
    fn statuses_round_trip_and_finality() {
        for s in DeliveryStatus::ALL {
            assert_eq!(s.as_str().parse::<DeliveryStatus>(), Ok(s));
        }
        assert!("pending".parse::<DeliveryStatus>().is_err());
        let finals: Vec<_> = DeliveryStatus::ALL
            .into_iter()
            .filter(|s| s.is_final())
            .collect();
        assert_eq!(
            finals,
            [
                DeliveryStatus::Success,
                DeliveryStatus::Failure,
                DeliveryStatus::Skipped
            ]
        );
        for h in HealthState::ALL {
            assert_eq!(h.as_str().parse::<HealthState>(), Ok(h));
        }
        for r in HealthReason::ALL {
            assert_eq!(r.as_str().parse::<HealthReason>(), Ok(r));
        }
    }

    #[test]
    fn attempt_results_from_statuses() {
        assert_eq!(AttemptResult::of_status(204), AttemptResult::Delivered);
        assert_eq!(AttemptResult::of_status(410), AttemptResult::Gone);
        assert_eq!(AttemptResult::of_status(503), AttemptResult::ServerError);
        for s in [301, 400, 404, 429] {
            assert_eq!(AttemptResult::of_status(s), AttemptResult::Refused);
            assert!(!AttemptResult::of_status(s).is_endpoint_failure());
        }
        assert!(AttemptResult::Unreachable.is_endpoint_failure());
        assert!(AttemptResult::ServerError.is_endpoint_failure());
        assert!(!AttemptResult::Delivered.is_endpoint_failure());
    }

    fn schedule() -> RetrySchedule {
        RetrySchedule::parse("10s,20s", 0.0, Duration::from_secs(60)).expect("schedule")
    }

    #[test]
    fn next_state_follows_the_schedule_then_ends() {
        let now = Utc::now();
        let at = |secs| NextState::Retry {
            at: now + chrono::Duration::seconds(secs),
        };
        let s = schedule();
        for (before, result, want) in [
            (0, AttemptResult::ServerError, at(10)),
            (1, AttemptResult::Refused, at(20)),
            (2, AttemptResult::Unreachable, NextState::Failure),
            (2, AttemptResult::Delivered, NextState::Success),
        ] {
            assert_eq!(next_state(before, false, result, None, &s, now), want);
        }
        assert_eq!(
            next_state(
                0,
                false,
                AttemptResult::Refused,
                Some(Duration::from_secs(45)),
                &s,
                now
            ),
            at(45)
        );
        assert_eq!(
            next_state(
                0,
                false,
                AttemptResult::Refused,
                Some(Duration::from_secs(3600)),
                &s,
                now
            ),
            at(60),
            "Retry-After is bounded"
        );
        assert_eq!(
            next_state(0, true, AttemptResult::ServerError, None, &s, now),
            NextState::Failure,
            "a manual retry is one attempt"
        );
        assert_eq!(
            next_state(5, true, AttemptResult::Delivered, None, &s, now),
            NextState::Success
        );
        assert_eq!(NextState::Failure.status(), DeliveryStatus::Failure);
        assert!(NextState::Failure.is_exhausted());
        assert_eq!(at(1).status(), DeliveryStatus::Pending);
    }

    #[test]
    fn where_owed_and_new_deliveries_go() {
        assert_eq!(owed_status(HealthState::Healthy), DeliveryStatus::Pending);
        assert_eq!(owed_status(HealthState::Degraded), DeliveryStatus::Parked);
        assert_eq!(owed_status(HealthState::Disabled), DeliveryStatus::Parked);
        assert_eq!(
            initial_status(HealthState::Healthy),
            DeliveryStatus::Pending
        );
        assert_eq!(
            initial_status(HealthState::Degraded),
            DeliveryStatus::Parked
        );
        assert_eq!(
            initial_status(HealthState::Disabled),
            DeliveryStatus::Skipped
        );
    }

    #[test]
    fn healthy_degrades_at_the_threshold_only() {
        let now = Utc::now();
        let p = policy();
        let (h, t) = transition(&failing(HealthState::Healthy, 2, 10, now), FAILED, &p, now);
        assert_eq!((h.state, t), (HealthState::Healthy, None));
        let (h, t) = transition(&failing(HealthState::Healthy, 3, 10, now), FAILED, &p, now);
        assert_eq!(t, Some(Transition::Degraded));
        assert_eq!(h.state, HealthState::Degraded);
        assert_eq!(h.reason, Some(HealthReason::Failing));
        assert_eq!(h.probe_interval, Some(Duration::from_secs(30)));
        assert_eq!(h.next_probe_at, Some(now + chrono::Duration::seconds(30)));
        assert_eq!(h.consecutive_failures, 3, "counters are kept");
        // Successes on a healthy endpoint change nothing here (the store reset the counters).
        let (h, t) = transition(&Health::healthy(), DELIVERED, &p, now);
        assert_eq!((h, t), (Health::healthy(), None));
        let (_, t) = transition(&Health::healthy(), HealthInput::ProbeDue, &p, now);
        assert_eq!(t, None);
    }

    #[test]
    fn a_failed_probe_doubles_the_interval_up_to_the_bound() {
        let now = Utc::now();
        let p = policy();
        let mut h = failing(HealthState::Degraded, 5, 10, now);
        let mut intervals = Vec::new();
        for _ in 0..4 {
            let (next, t) = transition(&h, PROBE_FAILED, &p, now);
            assert_eq!(t, None);
            assert_eq!(next.state, HealthState::Degraded);
            let interval = next.probe_interval.expect("interval");
            assert_eq!(next.next_probe_at, Some(now + chrono_duration(interval)));
            intervals.push(interval.as_secs());
            h = next;
        }
        assert_eq!(intervals, [60, 100, 100, 100]);
        // Stragglers (non-probe failures) leave the probe schedule alone.
        let (next, t) = transition(&h, FAILED, &p, now);
        assert_eq!((next, t), (h, None));
    }

    #[test]
    fn degraded_recovers_on_any_delivery() {
        let now = Utc::now();
        let p = policy();
        let h = failing(HealthState::Degraded, 5, 10, now);
        for input in [PROBE_DELIVERED, DELIVERED] {
            let (next, t) = transition(&h, input, &p, now);
            assert_eq!(next, Health::healthy());
            assert_eq!(t, Some(Transition::Recovered));
        }
    }

    #[test]
    fn failing_for_the_whole_period_disables() {
        let now = Utc::now();
        let p = policy();
        let h = failing(HealthState::Degraded, 50, 3600, now);
        for input in [PROBE_FAILED, FAILED, HealthInput::ProbeDue] {
            let (next, t) = transition(&h, input, &p, now);
            assert_eq!(t, Some(Transition::Disabled(HealthReason::Failing)));
            assert_eq!(next.state, HealthState::Disabled);
            assert_eq!(next.next_probe_at, None);
        }
        let young = failing(HealthState::Degraded, 50, 3599, now);
        assert_eq!(transition(&young, HealthInput::ProbeDue, &p, now).1, None);
    }

    #[test]
    fn gone_disables_at_once_unless_configured_not_to() {
        let now = Utc::now();
        let mut p = policy();
        for state in [HealthState::Healthy, HealthState::Degraded] {
            let (next, t) = transition(&failing(state, 1, 1, now), GONE, &p, now);
            assert_eq!(t, Some(Transition::Disabled(HealthReason::Gone)));
            assert_eq!(next.reason, Some(HealthReason::Gone));
        }
        p.disable_on_gone = false;
        let (next, t) = transition(&failing(HealthState::Healthy, 1, 1, now), GONE, &p, now);
        assert_eq!((next.state, t), (HealthState::Healthy, None));
    }

    /// Every state against every input: a reported transition always matches the state
    /// entered, no state changes without one, and only `Enable` leaves `disabled`.
    #[test]
    fn every_state_and_input_is_consistent() {
        let now = Utc::now();
        let p = policy();
        let inputs = [
            FAILED,
            DELIVERED,
            PROBE_FAILED,
            PROBE_DELIVERED,
            GONE,
            HealthInput::ProbeDue,
            HealthInput::Disable,
            HealthInput::Enable,
        ];
        for state in HealthState::ALL {
            for failures in [0, 2, 3, 9] {
                for age in [1, 3600] {
                    let mut before = failing(state, failures, age, now);
                    if state == HealthState::Disabled {
                        before.reason = Some(HealthReason::Manual);
                    }
                    for input in inputs {
                        let (after, t) = transition(&before, input, &p, now);
                        match t {
                            Some(Transition::Degraded) => {
                                assert_eq!(after.state, HealthState::Degraded);
                                assert_eq!(before.state, HealthState::Healthy);
                            }
                            Some(Transition::Recovered) => {
                                assert_eq!(after, Health::healthy());
                                assert_eq!(before.state, HealthState::Degraded);
                            }
                            Some(Transition::Enabled) => {
                                assert_eq!(after, Health::healthy());
                                assert_eq!(before.state, HealthState::Disabled);
                            }
                            Some(Transition::Disabled(reason)) => {
                                assert_eq!(after.state, HealthState::Disabled);
                                assert_eq!(after.reason, Some(reason));
                                assert_ne!(before.state, HealthState::Disabled);
                            }
                            None => assert_eq!(after.state, before.state, "{input:?}"),
                        }
                        if before.state == HealthState::Disabled {
                            assert!(
                                after.state == HealthState::Disabled
                                    || input == HealthInput::Enable
                            );
                        }
                        if after.state == HealthState::Degraded {
                            assert!(
                                after.next_probe_at.is_some(),
                                "a degraded endpoint is probed"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn manual_disable_and_enable_from_every_state() {
        let now = Utc::now();
        let p = policy();
        for state in [HealthState::Healthy, HealthState::Degraded] {
            let (next, t) = transition(&failing(state, 2, 5, now), HealthInput::Disable, &p, now);
            assert_eq!(t, Some(Transition::Disabled(HealthReason::Manual)));
            assert_eq!(next.state, HealthState::Disabled);
            assert_eq!(next.reason, Some(HealthReason::Manual));
            // Enabling a webhook that is not disabled changes nothing.
            assert_eq!(
                transition(&failing(state, 2, 5, now), HealthInput::Enable, &p, now).1,
                None
            );
        }
        let disabled = failing(HealthState::Healthy, 9, 5, now).disabled(HealthReason::Gone);
        for input in [
            FAILED,
            DELIVERED,
            GONE,
            HealthInput::ProbeDue,
            HealthInput::Disable,
        ] {
            assert_eq!(
                transition(&disabled, input, &p, now),
                (disabled.clone(), None),
                "a disabled webhook only leaves by being enabled"
            );
        }
        let (next, t) = transition(&disabled, HealthInput::Enable, &p, now);
        assert_eq!((next, t), (Health::healthy(), Some(Transition::Enabled)));
    }
}
