//! Spans for the events a feed applies: each sampled event (its `traceparent`'s flag) gets a
//! consumer span, a child of the command that stored it, lasting while its batch is applied. Free
//! when traces are not exported.

use chaos_platform::telemetry;
use chaos_schemas::PublishedEvent;
use tracing::Span;

use super::Verdict;

/// One span per sampled event of `events` (in order; `Span::none()` for the others).
pub(crate) fn event_spans(feed: &str, events: &[PublishedEvent]) -> Vec<Span> {
    if !telemetry::exporting() {
        return Vec::new();
    }
    events
        .iter()
        .map(|e| {
            let traceparent = e.envelope.traceparent.as_deref();
            if !telemetry::sampled(traceparent) {
                return Span::none();
            }
            let span = tracing::info_span!(
                "project",
                otel.kind = "consumer",
                otel.name = %format!("project {feed}"),
                projection = %feed,
                event_type = %e.envelope.event_type,
                aggregate_id = %e.envelope.aggregate_id,
                sequence = e.envelope.sequence,
                verdict = tracing::field::Empty,
            );
            telemetry::follow(&span, traceparent);
            span
        })
        .collect()
}

/// Records each event's verdict on its span (the spans end when dropped).
pub(crate) fn record_verdicts(spans: &[Span], verdicts: &[Verdict]) {
    for (span, verdict) in spans.iter().zip(verdicts) {
        let verdict = match verdict {
            Verdict::Applied => "applied",
            Verdict::Duplicate => "duplicate",
            Verdict::Ignored => "ignored",
            Verdict::DeadLetter(_) => "dead-letter",
        };
        span.record("verdict", verdict);
    }
}
