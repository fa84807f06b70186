//! `hookline-bench`: see the crate documentation and `--help`.

use std::{path::PathBuf, process::ExitCode, sync::Arc, time::Duration};

use anyhow::Context as _;
use clap::Parser;
use hookline_bench::{
    api::{self, Api, Publisher},
    background::Background,
    hanging::{Layout, Mode},
    hostile::Hostile,
    load::{drive, Pace},
    procs::Watched,
    raw::{raw_secret, RawReport, RawSender},
    receiver::{webhook_path, Receiver, RAW_PATH},
    report::{DeliveryReport, Report},
};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use secrecy::ExposeSecret as _;
use uuid::Uuid;

/// Load benchmark of a live Hookline API and worker, on loopback: publishes events, receives
/// their deliveries on its own HTTP server, and measures ingest, delivery and latency.
#[derive(Debug, Parser)]
#[command(name = "hookline-bench", version)]
struct Args {
    /// Base URL of the API.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    api: String,
    /// Hookline configuration file, for the HS256 secret (default: defaults + environment).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Brand to use (default: a new `bench-<uuid>`).
    #[arg(long)]
    brand: Option<String>,
    /// Events to publish.
    #[arg(long, default_value_t = 10_000)]
    events: u64,
    /// Requests in flight (closed loop); with --rate, the most in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Offered load in events/s (open loop) instead of back-to-back requests.
    #[arg(long)]
    rate: Option<f64>,
    /// Events per request through `POST /v1/{brand}/events/batch` (0: `POST …/events`, one each).
    #[arg(long, default_value_t = 0)]
    batch: u64,
    /// Webhooks to create, with overlapping subscriptions (leaf, group, root): fan-out K.
    #[arg(long, default_value_t = 1)]
    webhooks: usize,
    /// Bound on the wait for deliveries once publishing is done (e.g. 120s, 5m).
    #[arg(long, default_value = "120s", value_parser = humantime_duration)]
    timeout: Duration,
    /// How long to keep listening for late duplicates once everything arrived.
    #[arg(long, default_value = "500ms", value_parser = humantime_duration)]
    settle: Duration,
    /// Check the signatures of one delivery in N (0: none, 1: all).
    #[arg(long, default_value_t = 100)]
    sig_sample: u64,
    /// Only post delivery-shaped bodies straight to the own receiver: the HTTP ceiling.
    #[arg(long, conflicts_with = "raw_compare")]
    raw: bool,
    /// Run --raw first with the same N and pace, then the pipeline, and print the ratio.
    #[arg(long)]
    raw_compare: bool,
    /// PID of the API process (peak RSS and CPU seconds); may equal --worker-pid.
    #[arg(long)]
    api_pid: Option<u32>,
    /// PID of the worker process.
    #[arg(long)]
    worker_pid: Option<u32>,
    /// Stop the worker (SIGSTOP to --worker-pid) while publishing and let it go on (SIGCONT)
    /// once every event is accepted: measures the ingest path alone, deliveries queuing up as
    /// when workers fall behind; they are still awaited, counted and checked after.
    #[arg(long, requires = "worker_pid")]
    hold_worker: bool,
    /// Before the load, give a second brand (`bench-hostile-<uuid>`) K webhooks to endpoints of
    /// the bench's own that hang (or fail), and publish --hanging-events to it, so that the
    /// healthy brand is measured while another brand's deliveries are stuck (0: no such brand).
    #[arg(long, default_value_t = 0, conflicts_with = "raw")]
    hanging: usize,
    /// Where the K hostile endpoints listen: one-host (one listener on 127.0.0.1, K paths) or
    /// many-hosts (K listeners on 127.0.0.2, 127.0.0.3 …).
    #[arg(long, value_enum, default_value_t = Layout::OneHost)]
    hanging_layout: Layout,
    /// What the hostile endpoints do: hang (read the request, never answer) or fail (answer
    /// 500 at once).
    #[arg(long, value_enum, default_value_t = Mode::Hang)]
    hanging_mode: Mode,
    /// Events published to the hostile brand before the load (each to all K webhooks).
    #[arg(long, default_value_t = 400)]
    hanging_events: u64,
    /// Beside the load, recover this many FAILURE deliveries of a brand of their own (seeded in
    /// Postgres beforehand) through one recovery job, and report its deliveries/s.
    #[arg(long, default_value_t = 0, conflicts_with = "raw")]
    recovery: u64,
    /// Beside the load, have the worker's retention purge delete this many old rows (seeded
    /// beforehand: half events of 60 days ago, half their deliveries). Run the worker with a
    /// short `retention.interval` (e.g. HOOKLINE__RETENTION__INTERVAL=1s).
    #[arg(long, default_value_t = 0, conflicts_with = "raw")]
    purge_rows: u64,
    /// Print the publish→delivery latency by the second events were published in (stderr):
    /// where in a run the tail lies.
    #[arg(long)]
    timeline: bool,
    /// Print the report as JSON on stdout instead of the table.
    #[arg(long)]
    json: bool,
}

fn humantime_duration(s: &str) -> Result<Duration, String> {
    parse_duration(s)
}

/// `120s`, `500ms`, `2m`, or bare seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: f64 = number.parse().map_err(|_| format!("not a duration: {s}"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1e3,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("unknown unit in {s} (ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())
}

impl Args {
    /// The pace of `units` requests each carrying `per_unit` events.
    fn pace(&self, per_unit: u64) -> Pace {
        match self.rate {
            Some(rate) => Pace::Open {
                per_second: rate / per_unit.max(1) as f64,
                max_in_flight: self.concurrency,
            },
            None => Pace::Closed {
                concurrency: self.concurrency,
            },
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(report) if report.ok => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(e) => {
            eprintln!("hookline-bench: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn bar(progress: &MultiProgress, len: u64, label: &str) -> ProgressBar {
    let bar = progress.add(ProgressBar::new(len));
    let style = ProgressStyle::with_template(
        "{prefix:>10} [{bar:40}] {pos:>7}/{len:7} {per_sec:>14} {elapsed_precise}",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_prefix(label.to_owned());
    bar
}

/// Moves `bar` to `position()` every 100 ms until aborted.
fn follow(
    bar: ProgressBar,
    position: impl Fn() -> u64 + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tick.tick().await;
            bar.set_position(position());
        }
    })
}

/// Bound on `--hanging`: each is a webhook, and with many-hosts a listener, of the bench's own.
const MAX_HANGING: usize = 1024;

async fn run(args: Args) -> anyhow::Result<Report> {
    anyhow::ensure!(args.events > 0, "--events must be at least 1");
    anyhow::ensure!(args.webhooks > 0, "--webhooks must be at least 1");
    anyhow::ensure!(args.concurrency > 0, "--concurrency must be at least 1");
    anyhow::ensure!(args.batch <= 500, "--batch is at most 500");
    anyhow::ensure!(
        !args.hold_worker || args.api_pid != args.worker_pid,
        "--hold-worker needs the worker in a process of its own (it would stop the API too)"
    );
    anyhow::ensure!(
        args.hanging <= MAX_HANGING,
        "--hanging is at most {MAX_HANGING}"
    );
    anyhow::ensure!(
        args.rate.is_none_or(|r| r > 0.0 && r.is_finite()),
        "--rate must be a positive number of events/s"
    );
    let brand = args
        .brand
        .clone()
        .unwrap_or_else(|| format!("bench-{}", Uuid::new_v4().simple()));
    let client = api::client(args.concurrency + 8)?;
    let progress = MultiProgress::new();

    let mut watched = Vec::new();
    match (args.api_pid, args.worker_pid) {
        (Some(a), Some(w)) if a == w => watched.push(Watched::start("api+worker", a)?),
        (a, w) => {
            if let Some(pid) = a {
                watched.push(Watched::start("api", pid)?);
            }
            if let Some(pid) = w {
                watched.push(Watched::start("worker", pid)?);
            }
        }
    }
    watched.push(Watched::start("hookline-bench", std::process::id())?);

    let raw = if args.raw || args.raw_compare {
        Some(run_raw(&args, client.clone(), &progress).await?)
    } else {
        None
    };

    let (ingest, delivery, hostile, background) = if args.raw {
        (None, None, None, None)
    } else {
        let settings = hookline_config::Settings::load(args.config.as_deref())
            .context("loading the Hookline settings for the HS256 secret")?;
        let secret = settings.auth.hs256_secret.expose_secret();
        let api = Api {
            client: client.clone(),
            base: args.api.clone(),
            brand: brand.clone(),
            token: api::mint_token(secret, &brand, Duration::from_secs(3600))?,
        };
        let hostile = if args.hanging > 0 {
            Some(start_hostile(&args, client.clone(), secret).await?)
        } else {
            None
        };
        let mut background = if args.recovery > 0 || args.purge_rows > 0 {
            eprintln!(
                "hookline-bench: seeding {} failed deliveries and {} old rows",
                args.recovery, args.purge_rows
            );
            Some(
                Background::prepare(
                    settings.database.url.expose_secret(),
                    client,
                    &args.api,
                    secret,
                    args.recovery,
                    args.purge_rows,
                    args.sig_sample,
                )
                .await?,
            )
        } else {
            None
        };
        if let Some(b) = &mut background {
            b.start().await?;
        }
        let outcome = run_pipeline(&args, api, &progress).await;
        let background = match background {
            Some(b) => Some(b.finish(args.timeout).await?),
            None => None,
        };
        // The hostile brand is cleaned up whatever happened to the measured load.
        let hostile = match hostile {
            Some(h) => Some(h.finish().await),
            None => None,
        };
        let (ingest, delivery) = outcome?;
        (Some(ingest), Some(delivery), hostile, background)
    };

    let pipeline_to_raw = match (&raw, &delivery) {
        (Some(r), Some(d)) if r.requests_per_s > 0.0 => Some(d.deliveries_per_s / r.requests_per_s),
        _ => None,
    };
    let mut report = Report {
        api: args.api.clone(),
        brand,
        events: args.events,
        webhooks: args.webhooks,
        concurrency: args.concurrency,
        rate: args.rate,
        batch: args.batch,
        worker_held: args.hold_worker,
        raw,
        ingest,
        delivery,
        hostile,
        background,
        pipeline_to_raw,
        processes: watched.into_iter().map(Watched::finish).collect(),
        failures: Vec::new(),
        ok: false,
    };
    report.judge();
    let _ = progress.clear();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(report)
}

/// Sets up the hostile brand of `--hanging` (its own token, K webhooks to misbehaving
/// endpoints) and publishes its events, so that they are outstanding when the load begins.
async fn start_hostile(
    args: &Args,
    client: reqwest::Client,
    secret: &str,
) -> anyhow::Result<Hostile> {
    let brand = format!("bench-hostile-{}", Uuid::new_v4().simple());
    let api = Api {
        client,
        base: args.api.clone(),
        token: api::mint_token(secret, &brand, Duration::from_secs(3600))?,
        brand,
    };
    let mut hostile = Hostile::start(api, args.hanging, args.hanging_layout, args.hanging_mode)
        .await
        .context("setting up the hostile brand of --hanging")?;
    let deadline = tokio::time::Instant::now() + args.timeout;
    hostile.publish(args.hanging_events, deadline).await;
    Ok(hostile)
}

async fn run_raw(
    args: &Args,
    client: reqwest::Client,
    progress: &MultiProgress,
) -> anyhow::Result<RawReport> {
    let receiver = Arc::new(Receiver::start(args.sig_sample).await?);
    receiver.set_secret(RAW_PATH, &raw_secret());
    let sender = Arc::new(RawSender::new(client, receiver.url(RAW_PATH)));
    let sent = bar(progress, args.events, "raw");
    let follower = {
        let receiver = receiver.clone();
        follow(sent.clone(), move || receiver.unique())
    };
    let s = sender.clone();
    drive(args.events, args.pace(1), move |i| {
        let s = s.clone();
        async move { s.send(i).await }
    })
    .await;
    follower.abort();
    sent.finish();
    let report = sender.report();
    let tally = receiver.tally();
    anyhow::ensure!(
        tally.signature_failures == 0 && tally.duplicates == 0 && tally.malformed == 0,
        "the receiver rejected raw requests: {:?}",
        tally.problems
    );
    Ok(report)
}

async fn run_pipeline(
    args: &Args,
    api: Api,
    progress: &MultiProgress,
) -> anyhow::Result<(api::IngestReport, DeliveryReport)> {
    let receiver = Arc::new(Receiver::start(args.sig_sample).await?);
    let mut created = Vec::new();
    let outcome = async {
        for k in 0..args.webhooks {
            let path = webhook_path(k);
            let webhook = api
                .create_webhook(&receiver.url(&path), &api::subscriptions(k))
                .await?;
            receiver.set_secret(&path, &webhook.secret);
            created.push(webhook.id);
        }
        publish_and_wait(args, api.clone(), receiver.clone(), progress).await
    }
    .await;
    // Delete what was created whatever happened.
    for id in &created {
        if let Err(e) = api.delete_webhook(id).await {
            eprintln!("hookline-bench: {e:#}");
        }
    }
    outcome
}

async fn publish_and_wait(
    args: &Args,
    api: Api,
    receiver: Arc<Receiver>,
    progress: &MultiProgress,
) -> anyhow::Result<(api::IngestReport, DeliveryReport)> {
    let webhooks = args.webhooks as u64;
    // Publishing retries throttled requests at most until the bound on the whole run.
    let deadline = tokio::time::Instant::now() + args.timeout.max(Duration::from_secs(60)) * 4;
    let publisher = Arc::new(Publisher::new(
        api,
        args.events,
        args.batch,
        webhooks,
        deadline,
    ));
    let published = bar(progress, args.events, "published");
    let delivered = bar(progress, args.events * webhooks, "delivered");
    let followers = [
        {
            let p = publisher.clone();
            follow(published.clone(), move || {
                p.accepted.load(std::sync::atomic::Ordering::Relaxed)
            })
        },
        {
            let r = receiver.clone();
            follow(delivered.clone(), move || r.unique())
        },
    ];

    let held = match (args.hold_worker, args.worker_pid) {
        (true, Some(pid)) => Some(Held::stop(pid)?),
        _ => None,
    };
    let p = publisher.clone();
    drive(publisher.units(), args.pace(args.batch), move |unit| {
        let p = p.clone();
        async move { p.send(unit).await }
    })
    .await;
    published.finish();
    let ingest = publisher.report();
    drop(held);

    let expected = ingest.events_accepted * webhooks;
    let wait_until = tokio::time::Instant::now() + args.timeout;
    let mut timed_out = false;
    while receiver.unique() < expected {
        if tokio::time::Instant::now() >= wait_until {
            timed_out = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if !timed_out {
        tokio::time::sleep(args.settle).await;
    }
    for f in followers {
        f.abort();
    }
    delivered.set_position(receiver.unique());
    delivered.finish();
    if args.timeline {
        print_timeline(&receiver.tally());
    }
    let delivery = DeliveryReport::new(
        expected,
        publisher.first_send_ns(),
        &receiver.tally(),
        timed_out,
    );
    Ok((ingest, delivery))
}

/// One line per second of publishing: deliveries, and their latency p50, p99 and max.
fn print_timeline(tally: &hookline_bench::receiver::Tally) {
    let Some(first) = tally.by_second.keys().next().copied() else {
        return;
    };
    eprintln!("second  deliveries  p50 ms  p99 ms  max ms");
    for (second, h) in &tally.by_second {
        let s = hookline_bench::stats::Summary::of(h);
        eprintln!(
            "{:>6}  {:>10}  {:>6.1}  {:>6.1}  {:>6.1}",
            second - first,
            s.count,
            s.p50_ms,
            s.p99_ms,
            s.max_ms
        );
    }
}

/// A process stopped with SIGSTOP until this is dropped (SIGCONT), on every path out.
struct Held(u32);

impl Held {
    fn stop(pid: u32) -> anyhow::Result<Held> {
        signal("-STOP", pid)?;
        Ok(Held(pid))
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Err(e) = signal("-CONT", self.0) {
            eprintln!(
                "hookline-bench: could not resume the worker (kill -CONT {}): {e:#}",
                self.0
            );
        }
    }
}

fn signal(which: &str, pid: u32) -> anyhow::Result<()> {
    let status = std::process::Command::new("kill")
        .arg(which)
        .arg(pid.to_string())
        .status()
        .context("running kill")?;
    anyhow::ensure!(status.success(), "kill {which} {pid} failed: {status}");
    Ok(())
}
