//! Logs and traces. Logs: human-readable lines by default, JSON lines when asked. Traces: when an
//! OTLP endpoint is configured, spans are exported over OTLP/HTTP (Jaeger, the OpenTelemetry
//! Collector), sampled at the root by `trace_sample_ratio` and always following a sampled parent.
//!
//! One trace per command, across processes: the command API's request span (a child of the
//! client's `traceparent` if it sent one) is stored with the command's events as their
//! `traceparent`; the relay, the projectors and the process managers open their spans for an event
//! as children of it ([`follow`]); the query API's request span (and its consistency wait) is a
//! child of the client's `traceparent`, the same the client sent with the command.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider,
};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::TelemetryConfig;

/// The exporting provider, when traces are exported.
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Flushes and stops trace export when dropped: keep it for the life of `main`.
#[must_use = "dropping the guard stops trace export"]
#[derive(Debug)]
pub struct Telemetry {
    exporting: bool,
}

impl Telemetry {
    /// Whether spans are exported.
    pub fn exporting(&self) -> bool {
        self.exporting
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = PROVIDER.get() {
            if let Err(e) = provider.shutdown_with_timeout(Duration::from_secs(5)) {
                eprintln!("trace export did not shut down cleanly: {e}");
            }
        }
    }
}

/// Installs the global subscriber (logs; traces if configured). `RUST_LOG`, when set, wins over
/// the configured level for logs. A second call (tests) keeps the first subscriber.
pub fn init(service: &'static str, config: &TelemetryConfig) -> Telemetry {
    let filter = || {
        EnvFilter::try_from_default_env()
            .or_else(|_| EnvFilter::try_new(&config.level))
            .unwrap_or_else(|_| EnvFilter::new("info"))
    };
    let logs = if config.json {
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_filter(filter())
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_target(true)
            .with_filter(filter())
            .boxed()
    };
    let (traces, trace_error) = match tracer_provider(service, config) {
        Ok(Some(provider)) => {
            let tracer = provider.tracer(service);
            let _ = PROVIDER.set(provider);
            // Spans of our own crates (and the HTTP layers'), whatever the log level.
            let spans = EnvFilter::new("info");
            (
                Some(
                    tracing_opentelemetry::layer()
                        .with_tracer(tracer)
                        .with_filter(spans),
                ),
                None,
            )
        }
        Ok(None) => (None, None),
        Err(e) => (None, Some(e)),
    };
    let exporting = traces.is_some();
    let installed = tracing_subscriber::registry()
        .with(logs)
        .with(traces)
        .try_init()
        .is_ok();
    if installed {
        tracing::info!(
            service,
            version = env!("CARGO_PKG_VERSION"),
            traces = if exporting {
                config.otlp_endpoint.as_str()
            } else {
                "off"
            },
            sample_ratio = config.trace_sample_ratio,
            "telemetry started"
        );
        if let Some(e) = trace_error {
            tracing::error!(error = %e, endpoint = %config.otlp_endpoint, "trace export unavailable");
        }
    }
    Telemetry { exporting }
}

fn tracer_provider(
    service: &'static str,
    config: &TelemetryConfig,
) -> anyhow::Result<Option<SdkTracerProvider>> {
    if config.otlp_endpoint.is_empty() {
        return Ok(None);
    }
    let endpoint = format!("{}/v1/traces", config.otlp_endpoint.trim_end_matches('/'));
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(endpoint)
        .with_timeout(Duration::from_secs(5))
        .build()?;
    let processor = BatchSpanProcessor::builder(exporter)
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_scheduled_delay(Duration::from_millis(500))
                .with_max_queue_size(65_536)
                .build(),
        )
        .build();
    let ratio = config.trace_sample_ratio.clamp(0.0, 1.0);
    Ok(Some(
        SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                ratio,
            ))))
            .with_resource(
                opentelemetry_sdk::Resource::builder()
                    .with_service_name(service)
                    .build(),
            )
            .build(),
    ))
}

/// Whether spans are exported (cheap: lets hot paths skip per-event spans).
pub fn exporting() -> bool {
    PROVIDER.get().is_some()
}

/// Makes `span` a child of the W3C `traceparent` (an incoming request's, an event's). Ignored
/// when absent, malformed or when traces are not exported.
pub fn follow(span: &tracing::Span, traceparent: Option<&str>) {
    let Some(traceparent) = traceparent else {
        return;
    };
    if !exporting() {
        return;
    }
    let carrier = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    let parent = TraceContextPropagator::new().extract(&carrier);
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
}

/// The W3C `traceparent` of `span`, to hand on (stored with events, sent to clients); `None`
/// when traces are not exported.
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    if !exporting() {
        return None;
    }
    let context = span.context();
    if !context.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    carrier.remove("traceparent")
}

/// Whether a `traceparent`'s sampled flag is set: unsampled events need no span downstream.
pub fn sampled(traceparent: Option<&str>) -> bool {
    traceparent
        .and_then(|t| t.rsplit('-').next())
        .and_then(|flags| u8::from_str_radix(flags, 16).ok())
        .is_some_and(|flags| flags & 1 == 1)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_sampled_flag_is_read_from_the_traceparent() {
        let on = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let off = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
        assert!(super::sampled(Some(on)));
        assert!(!super::sampled(Some(off)));
        assert!(!super::sampled(Some("garbage")));
        assert!(!super::sampled(None));
    }
}
