//! A real HTTP endpoint on port 0 that records what it receives and answers as told: succeed,
//! fail a number of times first, always fail, hang, or answer late. Stopped (with every
//! connection) when dropped.

use std::{
    collections::HashMap,
    convert::Infallible,
    net::SocketAddr,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use http_body_util::{BodyExt as _, Full};
use hyper::{body::Bytes, server::conn::http1, service::service_fn, Request, Response};
use hyper_util::rt::TokioIo;
use tokio::{net::TcpListener, task::JoinSet};

#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// 200 to everything.
    Succeed,
    /// `status` to the first `n` requests, then 200.
    FailFirst { n: usize, status: u16 },
    /// `status` to everything.
    AlwaysFail { status: u16 },
    /// Never answers the first `n` requests (holds them a minute), then 200.
    HangFirst { n: usize },
    /// 200 to everything, each after this long.
    Delay(Duration),
}

#[derive(Debug, Clone)]
pub struct Received {
    /// Lower-case header names.
    pub headers: HashMap<String, String>,
    /// Empty on a [`Receiver::start_lean`] receiver.
    pub body: Vec<u8>,
    /// The request path.
    pub path: String,
    /// When the request's body had arrived.
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("request has no {name} header: {:?}", self.headers))
    }
}

struct State {
    mode: Mode,
    /// Whether bodies are kept (a lean receiver only counts them, for tests that send many
    /// large events and must not hold them all).
    keep_bodies: bool,
    seen: AtomicUsize,
    received: Mutex<Vec<Received>>,
}

pub struct Receiver {
    addr: SocketAddr,
    state: Arc<State>,
    accept: tokio::task::JoinHandle<()>,
}

/// Body of every failure answer: longer than the tests' response bound, to prove it is cut.
pub const FAILURE_BODY: &str = "receiver says no; ";

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Receiver {
    pub async fn start(mode: Mode) -> Receiver {
        Receiver::start_on(std::net::Ipv4Addr::LOCALHOST, mode, true).await
    }

    /// A receiver that keeps headers, paths and times but not bodies.
    pub async fn start_lean(mode: Mode) -> Receiver {
        Receiver::start_on(std::net::Ipv4Addr::LOCALHOST, mode, false).await
    }

    /// A receiver on another loopback address (Linux routes all of 127.0.0.0/8 to `lo`), so
    /// a test can have endpoints on several distinct hosts.
    pub async fn start_on(ip: std::net::Ipv4Addr, mode: Mode, keep_bodies: bool) -> Receiver {
        let listener = TcpListener::bind((ip, 0)).await.expect("bind receiver");
        let addr = listener.local_addr().expect("receiver address");
        let state = Arc::new(State {
            keep_bodies,
            mode,
            seen: AtomicUsize::new(0),
            received: Mutex::new(Vec::new()),
        });
        let accept = tokio::spawn(accept_loop(listener, state.clone()));
        Receiver {
            addr,
            state,
            accept,
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The endpoint URL to register.
    pub fn url(&self) -> String {
        self.url_with_path("hook")
    }

    /// An endpoint URL on this receiver with another path.
    pub fn url_with_path(&self, path: &str) -> String {
        format!("http://{}/{path}", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().expect("receiver lock").clone()
    }

    /// Waits (bounded) until at least `n` requests arrived.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let received = self.received();
            if received.len() >= n {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "receiver got {} of {n} requests within {within:?}",
                received.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every connection.
        self.accept.abort();
    }
}

async fn accept_loop(listener: TcpListener, state: Arc<State>) {
    let mut connections = JoinSet::new();
    while let Ok((stream, _)) = listener.accept().await {
        while connections.try_join_next().is_some() {}
        let state = state.clone();
        connections.spawn(async move {
            let service = service_fn(move |request| answer(state.clone(), request));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(
    state: Arc<State>,
    request: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let headers = request
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                v.to_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let path = request.uri().path().to_owned();
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| {
            if state.keep_bodies {
                b.to_bytes().to_vec()
            } else {
                Vec::new()
            }
        })
        .unwrap_or_default();
    let n = state.seen.fetch_add(1, Ordering::SeqCst);
    state
        .received
        .lock()
        .expect("receiver lock")
        .push(Received {
            headers,
            body,
            path,
            at: Instant::now(),
        });
    let status = match state.mode {
        Mode::Succeed => 200,
        Mode::FailFirst { n: fails, status } if n < fails => status,
        Mode::FailFirst { .. } => 200,
        Mode::AlwaysFail { status } => status,
        Mode::HangFirst { n: hangs } if n < hangs => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            200
        }
        Mode::HangFirst { .. } => 200,
        Mode::Delay(delay) => {
            tokio::time::sleep(delay).await;
            200
        }
    };
    let body = if status == 200 {
        "ok".to_owned()
    } else {
        FAILURE_BODY.repeat(100)
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = hyper::StatusCode::from_u16(status).expect("status");
    Ok(response)
}
