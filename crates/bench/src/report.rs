//! The run's figures: a `Report` (serialised for `--json`) and its plain-text table. With
//! `--hanging` it also says what the hostile brand had outstanding; the healthy figures are the
//! same fields as without it, so runs with and without compare line by line.

use std::fmt::Write as _;

use serde::Serialize;

use crate::{
    api::IngestReport,
    hostile::HostileReport,
    procs::ProcessReport,
    raw::RawReport,
    receiver::Tally,
    stats::{self, Summary},
};

/// What arrived at the receiver, against what was expected.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryReport {
    /// Accepted events × webhooks.
    pub expected: u64,
    /// Distinct (webhook, event) deliveries received.
    pub received: u64,
    pub missing: u64,
    pub duplicates: u64,
    /// Requests without a usable `webhook-id` or `data.sentNs`, or to an unknown path.
    pub malformed: u64,
    /// First publish to last receipt.
    pub elapsed_s: f64,
    pub deliveries_per_s: f64,
    /// Publish (the send time in `data`) to receipt.
    pub latency: Summary,
    pub signatures_checked: u64,
    pub signature_failures: u64,
    pub problems: Vec<String>,
    /// Whether the bounded wait ran out before everything arrived.
    pub timed_out: bool,
}

impl DeliveryReport {
    pub fn new(
        expected: u64,
        first_publish_ns: Option<u64>,
        tally: &Tally,
        timed_out: bool,
    ) -> Self {
        let elapsed_s = match (first_publish_ns, tally.last_receipt_ns) {
            (Some(first), Some(last)) => last.saturating_sub(first) as f64 / 1e9,
            _ => 0.0,
        };
        Self {
            expected,
            received: tally.unique,
            missing: expected.saturating_sub(tally.unique),
            duplicates: tally.duplicates,
            malformed: tally.malformed,
            elapsed_s,
            deliveries_per_s: stats::per_second(tally.unique, elapsed_s),
            latency: Summary::of(&tally.latency),
            signatures_checked: tally.signatures_checked,
            signature_failures: tally.signature_failures,
            problems: tally.problems.clone(),
            timed_out,
        }
    }
}

/// Everything one invocation measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub api: String,
    pub brand: String,
    pub events: u64,
    pub webhooks: usize,
    pub concurrency: usize,
    /// Offered events/s in open-loop mode.
    pub rate: Option<f64>,
    /// Events per request (0: single-event requests).
    pub batch: u64,
    /// The worker was stopped while publishing (`--hold-worker`): the ingest figures are the
    /// ingest path alone, and delivery times include the hold.
    pub worker_held: bool,
    pub raw: Option<RawReport>,
    pub ingest: Option<IngestReport>,
    pub delivery: Option<DeliveryReport>,
    /// The hostile brand of `--hanging`: not part of the figures above.
    pub hostile: Option<HostileReport>,
    /// `--recovery` and `--purge-rows`, run beside the load.
    pub background: Option<crate::background::BackgroundReport>,
    /// Pipeline deliveries/s over raw requests/s, when both ran.
    pub pipeline_to_raw: Option<f64>,
    /// The API and worker (when their PIDs were given) and the benchmark itself.
    pub processes: Vec<ProcessReport>,
    /// Why the run failed (missing deliveries, signature failures, publish errors); empty = ok.
    pub failures: Vec<String>,
    pub ok: bool,
}

impl Report {
    /// Fills `failures` and `ok` from the figures.
    pub fn judge(&mut self) {
        let mut failures = Vec::new();
        if let Some(d) = &self.delivery {
            if d.missing > 0 {
                failures.push(format!(
                    "{} of {} deliveries missing",
                    d.missing, d.expected
                ));
            }
            if d.signature_failures > 0 {
                failures.push(format!("{} signature checks failed", d.signature_failures));
            }
            if d.malformed > 0 {
                failures.push(format!(
                    "{} malformed requests at the receiver",
                    d.malformed
                ));
            }
        }
        if let Some(i) = &self.ingest {
            if i.errors > 0 {
                failures.push(format!("{} publish requests failed", i.errors));
            }
            if i.fanout_mismatches > 0 {
                failures.push(format!(
                    "{} events did not fan out to {} webhooks",
                    i.fanout_mismatches, self.webhooks
                ));
            }
        }
        if let Some(h) = &self.hostile {
            // The healthy figures would be those of a lighter run than the one asked for.
            if h.publish_errors > 0 {
                failures.push(format!(
                    "{} hostile publish requests failed",
                    h.publish_errors
                ));
            }
            if h.fanout_mismatches > 0 {
                failures.push(format!(
                    "{} hostile events did not fan out to {} webhooks",
                    h.fanout_mismatches, h.webhooks
                ));
            }
        }
        if let Some(b) = &self.background {
            if b.recovery_received < b.recovery_deliveries {
                failures.push(format!(
                    "{} of {} recovered deliveries arrived",
                    b.recovery_received, b.recovery_deliveries
                ));
            }
            if b.timed_out {
                failures.push("the background work did not finish in time".to_owned());
            }
        }
        if let Some(r) = &self.raw {
            if r.errors > 0 {
                failures.push(format!("{} raw requests failed", r.errors));
            }
        }
        self.ok = failures.is_empty();
        self.failures = failures;
    }

    /// The table printed at the end of a run.
    pub fn table(&self) -> String {
        let mut rows: Vec<(String, String)> = Vec::new();
        let mode = match self.rate {
            Some(rate) => format!(
                "open loop, {rate} events/s offered (at most {} in flight)",
                self.concurrency
            ),
            None => format!("closed loop, concurrency {}", self.concurrency),
        };
        let batch = match self.batch {
            0 => "single-event requests".to_owned(),
            b => format!("batches of {b}"),
        };
        let held = if self.worker_held {
            "; worker held while publishing (ingest alone; delivery times include the hold)"
        } else {
            ""
        };
        rows.push((
            "run".into(),
            format!(
                "{} events, {} webhook(s), {mode}, {batch}{held}; brand {} at {}",
                self.events, self.webhooks, self.brand, self.api
            ),
        ));
        if let Some(h) = &self.hostile {
            rows.push((
                "hostile brand".into(),
                format!(
                    "{} webhooks ({}, {}) at {}: {} of {} events accepted, {} deliveries \
                     outstanding when the load began (not counted below); {} connections \
                     to them, {} answered 500",
                    h.webhooks,
                    h.layout.name(),
                    h.mode.name(),
                    h.brand,
                    h.events_accepted,
                    h.events,
                    h.outstanding_deliveries,
                    h.connections,
                    h.answered_500
                ),
            ));
        }
        if let Some(r) = &self.raw {
            rows.push((
                "raw HTTP ceiling".into(),
                format!(
                    "{:.0} requests/s ({} in {:.2} s, {} errors)",
                    r.requests_per_s, r.requests, r.elapsed_s, r.errors
                ),
            ));
            rows.push(("raw round trip".into(), latency(&r.latency)));
        }
        if let Some(i) = &self.ingest {
            rows.push((
                "ingest".into(),
                format!(
                    "{:.0} events/s ({} events in {} requests, {:.2} s; {} throttled, {} errors)",
                    i.events_per_s,
                    i.events_accepted,
                    i.requests,
                    i.elapsed_s,
                    i.throttled,
                    i.errors
                ),
            ));
            rows.push((
                "API latency".into(),
                format!(
                    "p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
                    i.api_latency.p50_ms, i.api_latency.p99_ms, i.api_latency.max_ms
                ),
            ));
        }
        if let Some(d) = &self.delivery {
            rows.push((
                "delivery".into(),
                format!(
                    "{:.0} deliveries/s ({} of {} in {:.2} s, first publish to last receipt{})",
                    d.deliveries_per_s,
                    d.received,
                    d.expected,
                    d.elapsed_s,
                    if d.timed_out { "; wait TIMED OUT" } else { "" }
                ),
            ));
            rows.push(("publish→delivery".into(), latency(&d.latency)));
            rows.push((
                "missing / dup".into(),
                format!(
                    "{} missing, {} duplicates, {} malformed",
                    d.missing, d.duplicates, d.malformed
                ),
            ));
            rows.push((
                "signatures".into(),
                format!(
                    "{} checked, {} failed",
                    d.signatures_checked, d.signature_failures
                ),
            ));
        }
        if let Some(b) = &self.background {
            if b.recovery_deliveries > 0 {
                rows.push((
                    "recovery".into(),
                    format!(
                        "{:.0} deliveries/s ({} of {} in {:.2} s, job created to last receipt)",
                        b.recovery_per_s, b.recovery_received, b.recovery_deliveries, b.recovery_s
                    ),
                ));
            }
            if b.purge_rows > 0 {
                rows.push((
                    "retention purge".into(),
                    format!(
                        "{:.0} rows/s ({} old rows gone {:.2} s after the load began)",
                        b.purge_rows_per_s, b.purge_rows, b.purge_s
                    ),
                ));
            }
        }
        if let Some(ratio) = self.pipeline_to_raw {
            rows.push((
                "pipeline / raw".into(),
                format!("{:.1} % of the raw HTTP ceiling", ratio * 100.0),
            ));
        }
        for p in &self.processes {
            let mib = |v: Option<f64>| v.map_or("?".to_owned(), |m| format!("{m:.1} MiB"));
            rows.push((
                format!("{} (pid {})", p.role, p.pid),
                format!(
                    "peak RSS {} (max sampled {}), CPU {} during the run",
                    mib(p.peak_rss_mib),
                    mib(p.max_sampled_rss_mib),
                    p.cpu_seconds
                        .map_or("?".to_owned(), |s| format!("{s:.2} s"))
                ),
            ));
        }
        rows.push((
            "result".into(),
            if self.ok {
                "OK".to_owned()
            } else {
                format!("FAILED: {}", self.failures.join("; "))
            },
        ));
        let problems = self
            .ingest
            .iter()
            .flat_map(|i| i.problems.iter())
            .chain(self.delivery.iter().flat_map(|d| d.problems.iter()))
            .chain(self.hostile.iter().flat_map(|h| h.problems.iter()));
        for problem in problems {
            rows.push(("problem".into(), problem.clone()));
        }

        let width = rows
            .iter()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        for (key, value) in rows {
            let pad = width - key.chars().count();
            let _ = writeln!(out, "{key}{}  {value}", " ".repeat(pad));
        }
        out
    }
}

fn latency(s: &Summary) -> String {
    format!(
        "p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms
    )
}
