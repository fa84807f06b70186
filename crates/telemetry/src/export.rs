//! The OTLP span exporter: HTTP with protobuf bodies (`{endpoint}/v1/traces`), sent through
//! reqwest 0.12, the HTTP client the rest of Hookline already uses (`opentelemetry-otlp`'s own
//! reqwest integration is for another reqwest major version).
//!
//! The SDK's batch processor exports from a thread of its own, outside any Tokio runtime, and
//! the API's and worker's runtimes may be single-threaded or busy shutting down when the last
//! spans are flushed. So the client runs its requests on a small runtime of its own (one
//! thread, started only when exporting), which keeps flushing free of deadlocks wherever it is
//! called from.

use std::time::Duration;

use async_trait::async_trait;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig as _, WithHttpConfig as _};

/// The OTLP default export timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The exporter for the endpoint and headers in the standard `OTEL_EXPORTER_OTLP_*` variables.
pub(crate) fn span_exporter() -> Result<SpanExporter, String> {
    let client = ExportClient::new(timeout())?;
    SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_http_client(client)
        .build()
        .map_err(|e| format!("cannot export spans over OTLP: {e}"))
}

/// `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`, else `OTEL_EXPORTER_OTLP_TIMEOUT` (milliseconds), else
/// 10 s.
fn timeout() -> Duration {
    [
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
        "OTEL_EXPORTER_OTLP_TIMEOUT",
    ]
    .iter()
    .find_map(|name| std::env::var(name).ok()?.trim().parse::<u64>().ok())
    .map_or(DEFAULT_TIMEOUT, Duration::from_millis)
}

#[derive(Debug)]
struct ExportClient {
    client: reqwest::Client,
    /// `None` only while dropping.
    runtime: Option<tokio::runtime::Runtime>,
}

impl ExportClient {
    fn new(timeout: Duration) -> Result<ExportClient, String> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| format!("cannot build the OTLP client: {e}"))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("otlp-export")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the OTLP export runtime: {e}"))?;
        Ok(ExportClient {
            client,
            runtime: Some(runtime),
        })
    }
}

impl Drop for ExportClient {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which panics inside an async context; this does not.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

#[async_trait]
impl HttpClient for ExportClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let runtime = self
            .runtime
            .as_ref()
            .ok_or("the OTLP export runtime has stopped")?;
        let client = self.client.clone();
        let request = reqwest::Request::try_from(request)?;
        runtime
            .spawn(async move {
                let response = client.execute(request).await?;
                let status = response.status();
                let headers = response.headers().clone();
                // A collector's answer is a small protobuf message (partial success).
                let body = response.bytes().await?;
                let mut out = Response::builder().status(status).body(body)?;
                *out.headers_mut() = headers;
                Ok::<_, HttpError>(out)
            })
            .await?
    }
}
