//! The hostile brand of `--hanging K`: a second brand (`bench-hostile-<uuid>`) whose K webhooks
//! point at [`HangingEndpoints`], with events published to it just before the measured load.
//!
//! Its deliveries are then outstanding (held by hanging endpoints, or failing and retried) while
//! the healthy brand's are measured, so the healthy figures show how much one brand's bad
//! endpoints cost the others: the worker's per-endpoint cap is what should keep it small. The
//! hostile deliveries are never awaited nor counted with the healthy ones; the report only says
//! how many were outstanding and how often the endpoints were reached. The webhooks are deleted
//! and the endpoints closed at the end, whatever happened.

use std::sync::Arc;

use serde::Serialize;

use crate::{
    api::{Api, IngestReport, Publisher, EVENT_TYPE},
    hanging::{HangingEndpoints, Layout, Mode},
    load::{drive, Pace},
};

/// Events per publish request of the hostile brand: batches, so that setting it up is quick.
const BATCH: u64 = 100;
/// Publish requests of the hostile brand in flight at once.
const CONCURRENCY: usize = 4;

/// What the hostile brand amounted to during the run.
#[derive(Debug, Clone, Serialize)]
pub struct HostileReport {
    pub brand: String,
    pub layout: Layout,
    pub mode: Mode,
    pub webhooks: usize,
    /// Events asked for (`--hanging-events`).
    pub events: u64,
    pub events_accepted: u64,
    /// Accepted events × webhooks: the deliveries outstanding when the measured load began.
    pub outstanding_deliveries: u64,
    /// Publish requests that failed: the hostile load is that much short.
    pub publish_errors: u64,
    /// Events the API fanned out to other than `webhooks` webhooks.
    pub fanout_mismatches: u64,
    /// Connections the endpoints accepted, up to the end of the measured load.
    pub connections: u64,
    /// Requests answered `500` (`fail` mode), up to the end of the measured load.
    pub answered_500: u64,
    /// Publish and clean-up problems, the first few.
    pub problems: Vec<String>,
}

/// The hostile brand while it exists: its endpoints, webhooks and what publishing did.
#[derive(Debug)]
pub struct Hostile {
    api: Api,
    layout: Layout,
    mode: Mode,
    endpoints: HangingEndpoints,
    webhooks: Vec<String>,
    events: u64,
    ingest: Option<IngestReport>,
}

impl Hostile {
    /// Starts `count` endpoints and creates a webhook at each for `api`'s brand, subscribed to
    /// [`EVENT_TYPE`]; if one cannot be created, those already created are deleted.
    pub async fn start(api: Api, count: usize, layout: Layout, mode: Mode) -> anyhow::Result<Self> {
        let endpoints = HangingEndpoints::start(count, layout, mode).await?;
        let mut webhooks = Vec::with_capacity(count);
        for url in endpoints.urls() {
            match api.create_webhook(url, &[EVENT_TYPE]).await {
                Ok(created) => webhooks.push(created.id),
                Err(e) => {
                    delete(&api, &webhooks).await;
                    return Err(e.context("creating the hostile brand's webhooks"));
                }
            }
        }
        Ok(Self {
            api,
            layout,
            mode,
            endpoints,
            webhooks,
            events: 0,
            ingest: None,
        })
    }

    /// Publishes `events` in batches and returns once the API has answered them all (the
    /// deliveries are not awaited). Throttled requests are retried until `deadline`.
    pub async fn publish(&mut self, events: u64, deadline: tokio::time::Instant) {
        let publisher = Arc::new(Publisher::new(
            self.api.clone(),
            events,
            BATCH,
            self.webhooks.len() as u64,
            deadline,
        ));
        let p = publisher.clone();
        drive(
            publisher.units(),
            Pace::Closed {
                concurrency: CONCURRENCY,
            },
            move |unit| {
                let p = p.clone();
                async move { p.send(unit).await }
            },
        )
        .await;
        self.events = events;
        self.ingest = Some(publisher.report());
    }

    /// Reads the endpoints' counters, deletes the webhooks and closes the endpoints.
    pub async fn finish(self) -> HostileReport {
        let connections = self.endpoints.connections();
        let answered_500 = self.endpoints.answered();
        let mut problems = Vec::new();
        let (accepted, errors, mismatches) = match self.ingest {
            Some(i) => {
                problems = i.problems;
                (i.events_accepted, i.errors, i.fanout_mismatches)
            }
            None => (0, 0, 0),
        };
        problems.extend(delete(&self.api, &self.webhooks).await);
        drop(self.endpoints);
        HostileReport {
            brand: self.api.brand,
            layout: self.layout,
            mode: self.mode,
            webhooks: self.webhooks.len(),
            events: self.events,
            events_accepted: accepted,
            outstanding_deliveries: accepted * self.webhooks.len() as u64,
            publish_errors: errors,
            fanout_mismatches: mismatches,
            connections,
            answered_500,
            problems,
        }
    }
}

/// Deletes the webhooks `ids`, going on past failures; returns them.
async fn delete(api: &Api, ids: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    for id in ids {
        if let Err(e) = api.delete_webhook(id).await {
            eprintln!("hookline-bench: hostile brand: {e:#}");
            problems.push(format!("hostile brand: {e:#}"));
        }
    }
    problems
}
