//! Sending one request: the one outbound HTTP client, the bounded response read, and the
//! classification of transport errors for the attempt record.

use std::{
    error::Error as StdError,
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use hookline_config::{DeliverySettings, RetentionSettings};
use hookline_domain::parse_retry_after;
use reqwest::{header::HeaderMap, redirect, Client, StatusCode};

use super::{
    request::SignedRequest,
    resolve::{forbidden_literal, DnsFailure, ForbiddenAddress, GuardedResolver},
};

/// The outbound client and what shapes each request. Built once per worker: the client pools
/// connections per endpoint, so a brand receiving many events reuses its TLS sessions.
#[derive(Debug, Clone)]
pub struct Sender {
    client: Client,
    user_agent: String,
    body_limit: usize,
    header_limit: usize,
    allow_private: bool,
}

/// What came back from one request.
#[derive(Debug, Clone)]
pub struct Attempted {
    pub request_headers: serde_json::Value,
    pub result: Result<Response, TransportError>,
    pub elapsed: Duration,
}

impl Attempted {
    /// Any 2xx is success (docs/architecture.md, "Delivery contract").
    pub fn is_success(&self) -> bool {
        matches!(&self.result, Ok(r) if (200..300).contains(&r.status))
    }
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Header name → value; repeated headers joined with `, ` (RFC 9110 §5.3); names and values
    /// together at most `retention.attempt_header_bytes` bytes (see [`TRUNCATED_HEADERS`]).
    pub headers: serde_json::Value,
    /// At most `retention.attempt_response_bytes` bytes, as lossy UTF-8 without NUL characters.
    pub body: String,
    /// The `Retry-After` of a 429 or 503 (RFC 9110 §10.2.3); ignored on other statuses.
    pub retry_after: Option<Duration>,
}

/// A request that got no response, sorted the way an operator debugs it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error("timeout: {0}")]
    Timeout(String),
    #[error("{0}")]
    Dns(String),
    #[error("connection refused: {0}")]
    Refused(String),
    #[error("tls: {0}")]
    Tls(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("connect: {0}")]
    Connect(String),
    #[error("error: {0}")]
    Other(String),
}

impl Sender {
    /// Timeouts from `delivery.connect_timeout` / `request_timeout` (the total, body included);
    /// redirects are not followed (the delivery contract, `docs/architecture.md`: a 3xx is a
    /// failure, and following one could lead past the SSRF guard's first check); no proxy from
    /// the environment, because a proxy would resolve the endpoint itself, out of the guard's
    /// sight.
    /// What an attempt keeps of the answer is bounded by `retention`'s `attempt_response_bytes`
    /// and `attempt_header_bytes`.
    pub fn new(
        settings: &DeliverySettings,
        retention: &RetentionSettings,
    ) -> Result<Sender, reqwest::Error> {
        let client = Client::builder()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.request_timeout)
            .redirect(redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver {
                allow_private: settings.allow_private_targets,
            }))
            .build()?;
        Ok(Sender {
            client,
            user_agent: settings.user_agent.clone(),
            body_limit: retention.attempt_response_bytes,
            header_limit: retention.attempt_header_bytes,
            allow_private: settings.allow_private_targets,
        })
    }

    pub fn user_agent(&self) -> &str {
        &self.user_agent
    }

    /// POSTs `request` and reads the response, never failing: every outcome is an attempt to
    /// record.
    pub async fn send(&self, request: &SignedRequest, now: DateTime<Utc>) -> Attempted {
        let request_headers = request.headers_json();
        let started = Instant::now();
        let result = self.exchange(request, now).await;
        Attempted {
            request_headers,
            result,
            elapsed: started.elapsed(),
        }
    }

    async fn exchange(
        &self,
        request: &SignedRequest,
        now: DateTime<Utc>,
    ) -> Result<Response, TransportError> {
        let url = reqwest::Url::parse(&request.endpoint)
            .map_err(|e| TransportError::Other(format!("invalid endpoint URL: {e}")))?;
        if !self.allow_private {
            if let Some(refused) = forbidden_literal(&url) {
                return Err(TransportError::Forbidden(refused.to_string()));
            }
        }
        let mut builder = self.client.post(url).body(request.body.clone());
        for (name, value) in &request.headers {
            builder = builder.header(*name, value);
        }
        let mut response = builder.send().await.map_err(|e| classify(&e))?;
        let status = response.status();
        let headers = headers_json(response.headers(), self.header_limit);
        let retry_after = if matches!(
            status,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
        ) {
            response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, now))
        } else {
            None
        };
        // Read chunks until the bound, then stop: an endpoint answering with a huge (or
        // endless) body costs at most `body_limit` bytes of memory. A body that fails midway
        // (timeout, reset) keeps what arrived; the status already decided the outcome.
        let mut body = Vec::new();
        while body.len() < self.body_limit {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let take = chunk.len().min(self.body_limit - body.len());
                    body.extend_from_slice(&chunk[..take]);
                }
                Ok(None) | Err(_) => break,
            }
        }
        Ok(Response {
            status: status.as_u16(),
            headers,
            body: storable_text(&body),
            retry_after,
        })
    }
}

/// The key added to an attempt's response headers when some were not kept; its value says how
/// many bytes were dropped.
pub const TRUNCATED_HEADERS: &str = "x-hookline-truncated";

/// The response headers as a JSON object, names and values together at most `limit` bytes: a
/// hostile endpoint answering with megabytes of headers cannot bloat the store. Headers are
/// kept in order; the one that crosses the bound keeps the start of its value, and the rest
/// are counted under [`TRUNCATED_HEADERS`].
fn headers_json(headers: &HeaderMap, limit: usize) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    let mut used = 0usize;
    let mut dropped = 0usize;
    for name in headers.keys() {
        let joined = headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect::<Vec<_>>()
            .join(", ");
        let size = name.as_str().len() + joined.len();
        let room = limit.saturating_sub(used);
        if size <= room {
            used += size;
            map.insert(name.as_str().to_owned(), serde_json::Value::String(joined));
        } else if room > name.as_str().len() {
            let mut cut = room - name.as_str().len();
            while !joined.is_char_boundary(cut) {
                cut -= 1;
            }
            used += name.as_str().len() + cut;
            dropped += joined.len() - cut;
            map.insert(
                name.as_str().to_owned(),
                serde_json::Value::String(joined[..cut].to_owned()),
            );
        } else {
            dropped += size;
        }
    }
    if dropped > 0 {
        map.insert(
            TRUNCATED_HEADERS.to_owned(),
            serde_json::Value::String(format!(
                "{dropped} bytes of headers not kept (retention.attempt_header_bytes = {limit})"
            )),
        );
    }
    serde_json::Value::Object(map)
}

/// Every error in `err`'s source chain, including the payload of custom `io::Error`s (whose
/// `source()` skips the payload itself, where hyper-rustls and our resolver put theirs).
fn chain<'a>(err: &'a (dyn StdError + 'static)) -> Vec<&'a (dyn StdError + 'static)> {
    let mut out = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        out.push(e);
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            out.push(inner as &(dyn StdError + 'static));
        }
        next = e.source();
    }
    out
}

fn classify(err: &reqwest::Error) -> TransportError {
    let errors = chain(err);
    // The innermost message says what happened; the outer ones repeat the URL.
    let detail = errors
        .last()
        .map(|e| e.to_string())
        .unwrap_or_else(|| err.to_string());
    if let Some(f) = errors
        .iter()
        .find_map(|e| e.downcast_ref::<ForbiddenAddress>())
    {
        return TransportError::Forbidden(f.to_string());
    }
    if let Some(d) = errors.iter().find_map(|e| e.downcast_ref::<DnsFailure>()) {
        return TransportError::Dns(d.to_string());
    }
    if err.is_timeout() {
        return TransportError::Timeout(detail);
    }
    if errors.iter().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
    }) {
        return TransportError::Refused(detail);
    }
    if errors.iter().any(|e| e.is::<rustls::Error>()) {
        return TransportError::Tls(detail);
    }
    if err.is_connect() {
        return TransportError::Connect(detail);
    }
    TransportError::Other(detail)
}

/// A response body as text Postgres stores: lossy UTF-8, and NUL (which a `text` column
/// refuses) replaced like any other unreadable byte. Without this, one endpoint answering
/// with a NUL would fail the recording of every attempt written in the same group.
fn storable_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).replace('\0', "\u{FFFD}")
}

#[cfg(test)]
mod tests {
    use super::storable_text;

    #[test]
    fn a_body_with_nul_or_invalid_utf8_becomes_storable_text() {
        assert_eq!(storable_text(b"ok"), "ok");
        assert_eq!(storable_text(b"a\0b\xffc"), "a\u{FFFD}b\u{FFFD}c");
    }
}
