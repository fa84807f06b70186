//! The benchmark's webhook endpoint: a hyper HTTP/1.1 server (keep-alive) on `127.0.0.1:0`
//! that answers 204 at once and tallies what it receives.
//!
//! Each webhook of a run points at its own path, `/h/{k}`; `--raw` posts to `/raw`. A request is
//! identified by its path and `webhook-id` (the event id): the same pair twice is a duplicate.
//! The body's `data.sentNs` (unix nanoseconds at publish) gives the publish-to-delivery
//! latency. One request in `sample_every` has both signatures checked against the secret of
//! its path. Stopped, with every connection, when dropped.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    convert::Infallible,
    net::SocketAddr,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, PoisonError, RwLock,
    },
};

use hdrhistogram::Histogram;
use http_body_util::{BodyExt as _, Empty};
use hyper::{
    body::{Bytes, Incoming},
    server::conn::http1,
    service::service_fn,
    HeaderMap, Request, Response, StatusCode,
};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::{net::TcpListener, task::JoinSet};
use uuid::Uuid;

use crate::{sign, stats, unix_nanos};

/// The path of the raw (no Hookline in between) mode.
pub const RAW_PATH: &str = "/raw";
/// Path index of [`RAW_PATH`] in the duplicate set.
const RAW_INDEX: u32 = u32::MAX;

/// The path of webhook `k` of a run.
pub fn webhook_path(k: usize) -> String {
    format!("/h/{k}")
}

fn path_index(path: &str) -> Option<u32> {
    if path == RAW_PATH {
        return Some(RAW_INDEX);
    }
    path.strip_prefix("/h/")?.parse().ok()
}

#[derive(Deserialize)]
struct Body {
    data: Data,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    sent_ns: u64,
}

/// What the receiver has seen so far.
#[derive(Debug, Clone)]
pub struct Tally {
    /// Every request to a known path, duplicates included.
    pub requests: u64,
    /// Distinct (path, webhook-id) pairs.
    pub unique: u64,
    pub duplicates: u64,
    /// Requests to an unknown path, or without a usable `webhook-id` or `data.sentNs`.
    pub malformed: u64,
    pub signatures_checked: u64,
    pub signature_failures: u64,
    /// The first few signature or body problems, for the report.
    pub problems: Vec<String>,
    /// Unix nanoseconds of the first and last receipt of a unique request.
    pub first_receipt_ns: Option<u64>,
    pub last_receipt_ns: Option<u64>,
    /// Publish-to-delivery latency of unique requests, in microseconds.
    pub latency: Histogram<u64>,
    /// The same latency by the second it was published in (Unix seconds): where in a run the
    /// tail lies (`--timeline`).
    pub by_second: BTreeMap<u64, Histogram<u64>>,
}

impl Default for Tally {
    fn default() -> Self {
        Self {
            requests: 0,
            unique: 0,
            duplicates: 0,
            malformed: 0,
            signatures_checked: 0,
            signature_failures: 0,
            problems: Vec::new(),
            first_receipt_ns: None,
            last_receipt_ns: None,
            latency: stats::histogram(),
            by_second: BTreeMap::new(),
        }
    }
}

const MAX_PROBLEMS: usize = 10;

#[derive(Debug, Default)]
struct Inner {
    tally: Tally,
    seen: HashSet<(u32, u128)>,
}

#[derive(Debug)]
struct Shared {
    sample_every: u64,
    arrivals: AtomicU64,
    unique: AtomicU64,
    secrets: RwLock<HashMap<u32, String>>,
    inner: Mutex<Inner>,
}

/// A running receiver; see the module documentation.
#[derive(Debug)]
pub struct Receiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Listens on `127.0.0.1:0`; checks signatures on one request in `sample_every` (the first
    /// included; 0 checks none, 1 checks all).
    pub async fn start(sample_every: u64) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            sample_every,
            arrivals: AtomicU64::new(0),
            unique: AtomicU64::new(0),
            secrets: RwLock::new(HashMap::new()),
            inner: Mutex::new(Inner::default()),
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(Self {
            addr,
            shared,
            accept,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The secret that signs what arrives at `path` (`/h/{k}` or [`RAW_PATH`]).
    pub fn set_secret(&self, path: &str, secret: &str) {
        if let Some(index) = path_index(path) {
            self.shared
                .secrets
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(index, secret.to_owned());
        }
    }

    /// Distinct deliveries so far (cheap: for progress and the wait loop).
    pub fn unique(&self) -> u64 {
        self.shared.unique.load(Ordering::Relaxed)
    }

    /// A copy of the tally.
    pub fn tally(&self) -> Tally {
        self.shared
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .tally
            .clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        // The accept task owns the connection tasks' JoinSet: aborting it ends them all.
        self.accept.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                connections.spawn(async move {
                    let service = service_fn(move |req| handle(shared.clone(), req));
                    let _ = http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            // Reap finished connections so the set does not grow without bound.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Empty<Bytes>>, Infallible> {
    let index = path_index(req.uri().path());
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Ok(status(StatusCode::BAD_REQUEST)),
    };
    let received_ns = unix_nanos();
    let Some(index) = index else {
        shared.lock().tally.malformed += 1;
        return Ok(status(StatusCode::NOT_FOUND));
    };
    shared.record(index, &parts.headers, &body, received_ns);
    Ok(status(StatusCode::NO_CONTENT))
}

fn status(code: StatusCode) -> Response<Empty<Bytes>> {
    let mut res = Response::new(Empty::new());
    *res.status_mut() = code;
    res
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, index: u32, headers: &HeaderMap, body: &[u8], received_ns: u64) {
        let arrival = self.arrivals.fetch_add(1, Ordering::Relaxed);
        let id = header(headers, "webhook-id").and_then(|id| Uuid::parse_str(id).ok());
        let sent_ns = serde_json::from_slice::<Body>(body)
            .ok()
            .map(|b| b.data.sent_ns);
        // The signature check (two HMACs) runs outside the lock.
        let signature =
            (self.sample_every > 0 && arrival.is_multiple_of(self.sample_every)).then(|| {
                let secret = self
                    .secrets
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get(&index)
                    .cloned();
                match secret {
                    None => Err(format!("no secret known for path index {index}")),
                    Some(secret) => sign::verify(
                        &secret,
                        sign::Signed {
                            fdx: header(headers, "x-fdx-sc-signature"),
                            id: header(headers, "webhook-id"),
                            timestamp: header(headers, "webhook-timestamp"),
                            signature: header(headers, "webhook-signature"),
                        },
                        body,
                    ),
                }
            });

        let mut inner = self.lock();
        let tally = &mut inner.tally;
        tally.requests += 1;
        if let Some(result) = signature {
            tally.signatures_checked += 1;
            if let Err(problem) = result {
                tally.signature_failures += 1;
                if tally.problems.len() < MAX_PROBLEMS {
                    tally.problems.push(problem);
                }
            }
        }
        let (Some(id), Some(sent_ns)) = (id, sent_ns) else {
            tally.malformed += 1;
            if tally.problems.len() < MAX_PROBLEMS {
                tally
                    .problems
                    .push("a request without a UUID webhook-id or data.sentNs".to_owned());
            }
            return;
        };
        if !inner.seen.insert((index, id.as_u128())) {
            inner.tally.duplicates += 1;
            return;
        }
        let tally = &mut inner.tally;
        tally.unique += 1;
        tally.first_receipt_ns.get_or_insert(received_ns);
        tally.last_receipt_ns = Some(tally.last_receipt_ns.unwrap_or(0).max(received_ns));
        stats::record_nanos(&mut tally.latency, received_ns.saturating_sub(sent_ns));
        stats::record_nanos(
            tally
                .by_second
                .entry(sent_ns / 1_000_000_000)
                .or_insert_with(stats::histogram),
            received_ns.saturating_sub(sent_ns),
        );
        self.unique.fetch_add(1, Ordering::Relaxed);
    }
}
