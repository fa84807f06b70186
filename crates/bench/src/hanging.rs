//! Endpoints that misbehave on purpose, for `--hanging K`: the webhooks of the hostile brand
//! (see [`crate::hostile`]) point at them.
//!
//! In [`Mode::Hang`] an endpoint accepts the connection, reads whatever the client sends and
//! never answers: the worker's request is held until its own timeout, which is the case the
//! worker's per-endpoint cap exists for. In [`Mode::Fail`] it answers `500` at once (a failing
//! brand: fast failures and retries instead of held connections).
//!
//! [`Layout::OneHost`] is one listener on `127.0.0.1:0` with K paths (`/hang/0` …), so the K
//! endpoints differ only by path; [`Layout::ManyHosts`] is K listeners on K loopback addresses
//! (`127.0.0.2`, `127.0.0.3` …; Linux routes all of 127/8 to `lo`), so they differ by host as
//! well, and share no connection pool in the worker. Everything (listeners and held
//! connections) is closed when the [`HangingEndpoints`] is dropped.

use std::{
    convert::Infallible,
    io,
    net::{Ipv4Addr, SocketAddr},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
};

use http_body_util::{BodyExt as _, Empty};
use hyper::{
    body::{Bytes, Incoming},
    server::conn::http1,
    service::service_fn,
    Request, Response, StatusCode,
};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::{
    net::{TcpListener, TcpStream},
    task::{JoinHandle, JoinSet},
};

/// Where the K endpoints listen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// One listener on `127.0.0.1`, K paths of it.
    OneHost,
    /// K listeners, one per loopback address from `127.0.0.2`.
    ManyHosts,
}

/// What the endpoints do with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Read the request and never answer.
    Hang,
    /// Answer `500` at once.
    Fail,
}

impl Layout {
    pub fn name(self) -> &'static str {
        match self {
            Layout::OneHost => "one-host",
            Layout::ManyHosts => "many-hosts",
        }
    }
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Hang => "hang",
            Mode::Fail => "fail",
        }
    }
}

/// The path of hanging endpoint `k`.
pub fn hanging_path(k: usize) -> String {
    format!("/hang/{k}")
}

/// Loopback address of listener `k` in [`Layout::ManyHosts`]: `127.0.0.2` + `k` (past
/// `127.0.0.255` it carries into the next octet, still loopback).
pub fn many_hosts_ip(k: usize) -> Ipv4Addr {
    let base = u32::from(Ipv4Addr::new(127, 0, 0, 2));
    Ipv4Addr::from(base.saturating_add(u32::try_from(k).unwrap_or(u32::MAX)))
}

#[derive(Debug, Default)]
struct Counters {
    connections: AtomicU64,
    answered: AtomicU64,
}

/// K running endpoints; see the module documentation.
#[derive(Debug)]
pub struct HangingEndpoints {
    urls: Vec<String>,
    counters: Arc<Counters>,
    accepts: Vec<JoinHandle<()>>,
}

impl HangingEndpoints {
    /// Binds the listeners (port 0) and starts accepting.
    pub async fn start(count: usize, layout: Layout, mode: Mode) -> io::Result<Self> {
        let counters = Arc::new(Counters::default());
        let mut endpoints = Self {
            urls: Vec::with_capacity(count),
            counters: counters.clone(),
            accepts: Vec::new(),
        };
        // On an error the listeners bound so far close as `endpoints` is dropped.
        match layout {
            Layout::OneHost => {
                let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
                let addr = listener.local_addr()?;
                endpoints
                    .accepts
                    .push(tokio::spawn(accept_loop(listener, mode, counters)));
                endpoints.urls = (0..count).map(|k| url(addr, &hanging_path(k))).collect();
            }
            Layout::ManyHosts => {
                for k in 0..count {
                    let listener = TcpListener::bind((many_hosts_ip(k), 0)).await?;
                    let addr = listener.local_addr()?;
                    endpoints.accepts.push(tokio::spawn(accept_loop(
                        listener,
                        mode,
                        counters.clone(),
                    )));
                    endpoints.urls.push(url(addr, &hanging_path(k)));
                }
            }
        }
        Ok(endpoints)
    }

    /// The URL of each endpoint, `http://ADDR:PORT/hang/{k}`.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// Connections accepted so far, all endpoints together.
    pub fn connections(&self) -> u64 {
        self.counters.connections.load(Ordering::Relaxed)
    }

    /// Requests answered `500` so far ([`Mode::Fail`]; always 0 in [`Mode::Hang`]).
    pub fn answered(&self) -> u64 {
        self.counters.answered.load(Ordering::Relaxed)
    }
}

impl Drop for HangingEndpoints {
    fn drop(&mut self) {
        // Each accept task owns its connections' JoinSet: aborting it closes them all.
        for accept in &self.accepts {
            accept.abort();
        }
    }
}

fn url(addr: SocketAddr, path: &str) -> String {
    format!("http://{addr}{path}")
}

async fn accept_loop(listener: TcpListener, mode: Mode, counters: Arc<Counters>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                counters.connections.fetch_add(1, Ordering::Relaxed);
                match mode {
                    Mode::Hang => connections.spawn(swallow(stream)),
                    Mode::Fail => connections.spawn(fail(stream, counters.clone())),
                };
            }
            // Reap finished connections so the set does not grow without bound.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Reads and discards until the client closes (its request timeout) or the task is aborted;
/// never writes. Reading keeps the client from blocking on a full socket buffer, so what is
/// held is the wait for an answer, as with a real hung server.
async fn swallow(stream: TcpStream) {
    let mut buf = [0u8; 4096];
    loop {
        if stream.readable().await.is_err() {
            return;
        }
        match stream.try_read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
}

/// Serves the connection (keep-alive), answering every request `500` once its body is read.
async fn fail(stream: TcpStream, counters: Arc<Counters>) {
    let _ = stream.set_nodelay(true);
    let service = service_fn(move |req: Request<Incoming>| {
        let counters = counters.clone();
        async move {
            let _ = req.into_body().collect().await;
            counters.answered.fetch_add(1, Ordering::Relaxed);
            let mut res = Response::new(Empty::<Bytes>::new());
            *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            Ok::<_, Infallible>(res)
        }
    });
    let _ = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service)
        .await;
}
