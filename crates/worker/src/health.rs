//! The worker's HTTP listener on `worker.http_bind`: `GET /healthz` (the process is up),
//! `GET /readyz` (Postgres answers and a consumer is registered on the queue) and
//! `GET /metrics` in Prometheus text format.

use std::{
    convert::Infallible,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
};

use hookline_store::Pool;

use http_body_util::Full;
use hyper::{body::Bytes, server::conn::http1, service::service_fn, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::debug;

/// What `/readyz` checks.
#[derive(Clone)]
pub struct Readiness {
    pub pool: Pool,
    /// Set by the consumer while it is registered on the queue.
    pub consuming: Arc<AtomicBool>,
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readiness")
            .field("consuming", &self.consuming)
            .finish_non_exhaustive()
    }
}

impl Readiness {
    async fn check(&self) -> (bool, bool) {
        let database = match self.pool.get().await {
            Ok(mut conn) => hookline_store::ping(&mut conn).await.is_ok(),
            Err(_) => false,
        };
        (database, self.consuming.load(Ordering::Relaxed))
    }
}

/// Serves until `shutdown`.
pub async fn serve(listener: TcpListener, readiness: Readiness, shutdown: CancellationToken) {
    loop {
        let stream = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    debug!(error = %e, "health listener accept failed");
                    continue;
                }
            },
        };
        let shutdown = shutdown.clone();
        let readiness = readiness.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| route(request, readiness.clone()));
            let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                () = shutdown.cancelled() => {}
                _ = conn => {}
            }
        });
    }
}

async fn route(
    request: Request<hyper::body::Incoming>,
    readiness: Readiness,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body) = match request.uri().path() {
        "/healthz" => (StatusCode::OK, Bytes::from_static(b"ok")),
        "/readyz" => {
            let (database, broker) = readiness.check().await;
            let word = |ok: bool| if ok { "ok" } else { "down" };
            let body = serde_json::json!({
                "status": if database && broker { "ok" } else { "unavailable" },
                "checks": { "database": word(database), "broker": word(broker) },
            })
            .to_string();
            let status = if database && broker {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            (status, Bytes::from(body))
        }
        "/metrics" => (
            StatusCode::OK,
            Bytes::from(hookline_telemetry::metrics().render()),
        ),
        _ => (StatusCode::NOT_FOUND, Bytes::from_static(b"not found")),
    };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    Ok(response)
}
