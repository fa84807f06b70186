//! Tracing: W3C trace context (`traceparent`, `tracestate`) from the publisher to the brand's
//! endpoint, and Hookline's spans in OpenTelemetry.
//!
//! - Ingest continues the publisher's `traceparent` (single or batch request: one for the
//!   request, applied to each event) in its `ingest` span, or starts a new trace when there is
//!   none; an invalid one is ignored, as W3C Trace Context says, never refused. The `ingest`
//!   span's context is stored with each event, so it survives the queue (which carries only
//!   pointers), retries, deferrals and parked releases alike.
//! - Every attempt runs in an `attempt` span, a child of the stored context, and its webhook
//!   request carries that span's context: the receiver sees the publisher's trace id, with the
//!   attempt as its parent.
//! - Publishing to RabbitMQ gets a `publish` span, a child of `ingest`, when spans are exported.
//!
//! Spans always get ids (the webhook request needs them), but they are exported only when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set; otherwise the
//! tracer has no processor and a finished span is dropped at once. The standard `OTEL_*`
//! variables of the OpenTelemetry SDK apply (`OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER`,
//! `OTEL_BSP_*`, `OTEL_EXPORTER_OTLP_HEADERS`, …); `OTEL_TRACES_EXPORTER=none` or
//! `OTEL_SDK_DISABLED=true` turn the export off again.

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::{
    propagation::{Extractor, Injector, TextMapPropagator as _},
    trace::{SpanContext, TraceContextExt as _, TraceFlags, TraceState, TracerProvider as _},
    Context,
};
use opentelemetry_sdk::{
    propagation::TraceContextPropagator,
    trace::{IdGenerator as _, RandomIdGenerator, SdkTracerProvider},
    Resource,
};
use tracing::{Level, Metadata, Subscriber};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::{filter::filter_fn, registry::LookupSpan, Layer};

use crate::export;

/// Longest `tracestate` kept. W3C asks vendors to pass on at least 512 characters; a longer
/// one is dropped rather than stored with every event.
const MAX_TRACESTATE: usize = 512;

static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Whether spans are exported (an OTLP endpoint is configured and the exporter started).
/// Spans that only matter to the export (`publish`) are not made otherwise.
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

pub(crate) fn set_exporting() {
    EXPORTING.store(true, Ordering::Relaxed);
}

/// A span's W3C trace context as its two headers: what the API stores with an event, and what
/// the worker sends on a webhook request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// `00-{trace id}-{span id}-{flags}`.
    pub traceparent: String,
    /// The vendors' `tracestate`, passed on as received; `None` when empty.
    pub tracestate: Option<String>,
}

/// Makes `span` (not yet entered) continue the trace that `traceparent` and `tracestate` name
/// — a request's headers at ingest, an event's stored context in the worker — and returns
/// `span`'s own context: the same trace id, `span` as the parent. A missing or invalid
/// `traceparent` starts a new trace instead (W3C: a malformed one is ignored).
///
/// When `span` is not recorded by the OpenTelemetry layer (another subscriber was installed
/// first, as in some tests), the returned context still continues the trace, with a new span
/// id of its own.
pub fn continue_trace(
    span: &tracing::Span,
    traceparent: Option<&str>,
    tracestate: Option<&str>,
) -> TraceContext {
    let propagator = TraceContextPropagator::new();
    // From an empty context: `extract` alone falls back to the thread's current one.
    let parent = propagator.extract_with_context(
        &Context::new(),
        &Incoming {
            traceparent,
            tracestate: tracestate.filter(|s| s.len() <= MAX_TRACESTATE),
        },
    );
    let remote = parent.span().span_context().clone();
    let parent = if remote.is_valid() {
        parent
    } else {
        // A root: not the span `span` happens to be created in.
        Context::new()
    };
    let _ = span.set_parent(parent);
    let own = span.context().span().span_context().clone();
    let own = if own.is_valid() {
        own
    } else {
        unrecorded_child(&remote)
    };
    let mut out = Outgoing::default();
    propagator.inject_context(&Context::new().with_remote_span_context(own), &mut out);
    TraceContext {
        traceparent: out.traceparent.unwrap_or_default(),
        tracestate: out.tracestate.filter(|s| !s.is_empty()),
    }
}

/// A child of `parent` (or a new trace) with fresh ids, for spans the layer does not record.
fn unrecorded_child(parent: &SpanContext) -> SpanContext {
    let ids = RandomIdGenerator::default();
    if parent.is_valid() {
        SpanContext::new(
            parent.trace_id(),
            ids.new_span_id(),
            parent.trace_flags(),
            false,
            parent.trace_state().clone(),
        )
    } else {
        SpanContext::new(
            ids.new_trace_id(),
            ids.new_span_id(),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        )
    }
}

/// The two headers of W3C Trace Context, as read from a request or a row.
struct Incoming<'a> {
    traceparent: Option<&'a str>,
    tracestate: Option<&'a str>,
}

impl Extractor for Incoming<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            "traceparent" => self.traceparent,
            "tracestate" => self.tracestate,
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec!["traceparent", "tracestate"]
    }
}

#[derive(Default)]
struct Outgoing {
    traceparent: Option<String>,
    tracestate: Option<String>,
}

impl Injector for Outgoing {
    fn set(&mut self, key: &str, value: String) {
        match key {
            "traceparent" => self.traceparent = Some(value),
            "tracestate" => self.tracestate = Some(value),
            _ => {}
        }
    }
}

/// Hookline's own spans at `info` and above: what the OpenTelemetry layer records, whatever
/// `log.level` shows. Decided from the metadata alone, so `tracing` caches it per call site.
fn is_hookline_span(meta: &Metadata<'_>) -> bool {
    meta.is_span() && meta.target().starts_with("hookline") && *meta.level() <= Level::INFO
}

/// The span exporter [`layer`] started, stopped by [`crate::Telemetry`].
#[derive(Debug)]
pub(crate) struct Exporting {
    provider: SdkTracerProvider,
    service: String,
}

impl Exporting {
    pub(crate) fn service(&self) -> &str {
        &self.service
    }

    /// Exports what is buffered (bounded: 5 s) and stops.
    pub(crate) fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "could not export the last spans");
        }
    }
}

/// Whether the standard variables ask for spans to be exported.
fn export_wanted() -> bool {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.trim() == "true")
        || std::env::var("OTEL_TRACES_EXPORTER").is_ok_and(|v| v.trim() == "none");
    !disabled && (set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") || set("OTEL_EXPORTER_OTLP_ENDPOINT"))
}

/// The OpenTelemetry layer over Hookline's spans, and the exporter when one is wanted (an error
/// says why it could not start; spans then only carry context).
pub(crate) fn layer<S>(service: &str) -> (impl Layer<S>, Result<Option<Exporting>, String>)
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let service = std::env::var("OTEL_SERVICE_NAME")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| service.to_owned());
    let mut builder = SdkTracerProvider::builder().with_resource(
        Resource::builder()
            .with_service_name(service.clone())
            .build(),
    );
    let export = if export_wanted() {
        match export::span_exporter() {
            Ok(exporter) => {
                builder = builder.with_batch_exporter(exporter);
                Ok(true)
            }
            Err(e) => Err(e),
        }
    } else {
        Ok(false)
    };
    let provider = builder.build();
    let spans = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("hookline"))
        .with_threads(false)
        .with_tracked_inactivity(false)
        .with_filter(filter_fn(is_hookline_span));
    let exporting = export.map(|on| on.then_some(Exporting { provider, service }));
    (spans, exporting)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn parts(traceparent: &str) -> Vec<&str> {
        let parts: Vec<&str> = traceparent.split('-').collect();
        assert_eq!(parts.len(), 4, "{traceparent}");
        parts
    }

    // No subscriber in unit tests: the spans are not recorded, so these exercise the
    // propagation itself; the integration tests cover the recorded spans.
    #[test]
    fn a_valid_traceparent_is_continued_with_a_new_parent_id() {
        let got = continue_trace(&tracing::Span::none(), Some(PARENT), Some("vendor=abc"));
        let p = parts(&got.traceparent);
        assert_eq!(p[0], "00");
        assert_eq!(p[1], TRACE_ID);
        assert_ne!(p[2], "00f067aa0ba902b7");
        assert_eq!(p[2].len(), 16);
        assert_eq!(p[3], "01");
        assert_eq!(got.tracestate.as_deref(), Some("vendor=abc"));
    }

    #[test]
    fn a_missing_or_invalid_traceparent_starts_a_new_trace() {
        for bad in [
            None,
            Some(""),
            Some("garbage"),
            Some("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"),
            Some("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            Some("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"),
        ] {
            let got = continue_trace(&tracing::Span::none(), bad, Some("vendor=abc"));
            let p = parts(&got.traceparent);
            assert_ne!(p[1], TRACE_ID, "{bad:?}");
            assert_eq!(p[1].len(), 32);
            assert_ne!(p[1], "0".repeat(32));
            assert_eq!(p[2].len(), 16);
            // The tracestate belongs to the ignored parent.
            assert_eq!(got.tracestate, None, "{bad:?}");
        }
    }

    #[test]
    fn a_recorded_span_hands_on_its_own_context() {
        use tracing_subscriber::layer::SubscriberExt as _;

        let (spans, export) = layer("hookline-test");
        assert!(
            matches!(export, Ok(None)),
            "no exporter without an endpoint"
        );
        let subscriber = tracing_subscriber::registry().with(spans);
        tracing::subscriber::with_default(subscriber, || {
            let outer = tracing::info_span!("request");
            let _entered = outer.enter();
            let span = tracing::info_span!("ingest");
            let got = continue_trace(&span, Some(PARENT), None);
            let own = span.context().span().span_context().clone();
            assert!(own.is_valid());
            assert_eq!(own.trace_id().to_string(), TRACE_ID);
            assert_eq!(
                got.traceparent,
                format!("00-{TRACE_ID}-{}-01", own.span_id())
            );

            // Without a parent, a new trace: not the one of the span it was created in.
            let root = tracing::info_span!("ingest");
            let got = continue_trace(&root, None, None);
            let outer_trace = outer.context().span().span_context().trace_id();
            assert_ne!(parts(&got.traceparent)[1], outer_trace.to_string());
            assert_eq!(
                parts(&got.traceparent)[2],
                root.context().span().span_context().span_id().to_string()
            );
        });
    }

    #[test]
    fn an_oversized_tracestate_is_dropped() {
        let long = format!("vendor={}", "a".repeat(MAX_TRACESTATE));
        let got = continue_trace(&tracing::Span::none(), Some(PARENT), Some(&long));
        assert_eq!(parts(&got.traceparent)[1], TRACE_ID);
        assert_eq!(got.tracestate, None);
    }
}
