use chaos_platform::metrics::{register, LATENCY_BUCKETS};
use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry};

#[derive(Debug, Clone)]
pub struct RelayMetrics {
    pub published: IntCounterVec,
    /// Every committed event after the checkpoint, including those held back.
    pub lag_events: IntGauge,
    /// Committed events the relay may not publish yet: an older append is still in flight.
    pub held_back_events: IntGauge,
    /// Age of the oldest event append in flight (0 when none).
    pub oldest_inflight_append_seconds: prometheus::Gauge,
    /// Aggregates whose stream is stopped at an event that cannot be published.
    pub stopped_streams: IntGauge,
    /// Events that could not be mapped or registered, by aggregate type.
    pub poison_events: IntCounterVec,
    pub batch_duration: Histogram,
    pub active: IntGauge,
    pub failures: IntCounterVec,
}

impl RelayMetrics {
    pub fn new(registry: &Registry) -> Self {
        let metrics = Self {
            published: register(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        "chaos_relay_events_published_total",
                        "Events acked by Kafka",
                    ),
                    &["topic"],
                )
                .expect("valid metric"),
            ),
            lag_events: register(
                registry,
                IntGauge::new(
                    "chaos_relay_lag_events",
                    "Committed events not yet published, including those held back",
                )
                .expect("valid metric"),
            ),
            held_back_events: register(
                registry,
                IntGauge::new(
                    "chaos_relay_held_back_events",
                    "Committed events the relay may not publish yet because an older event append is still in flight",
                )
                .expect("valid metric"),
            ),
            oldest_inflight_append_seconds: register(
                registry,
                prometheus::Gauge::new(
                    "chaos_relay_oldest_inflight_append_seconds",
                    "Age of the oldest event append still in flight (0 when none)",
                )
                .expect("valid metric"),
            ),
            stopped_streams: register(
                registry,
                IntGauge::new(
                    "chaos_relay_stopped_streams",
                    "Aggregates whose stream is stopped at an event that cannot be published",
                )
                .expect("valid metric"),
            ),
            poison_events: register(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        "chaos_relay_poison_events_total",
                        "Events that could not be mapped or registered (their stream is stopped)",
                    ),
                    &["aggregate"],
                )
                .expect("valid metric"),
            ),
            batch_duration: register(
                registry,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "chaos_relay_batch_duration_seconds",
                        "Read, produce, ack, checkpoint",
                    )
                    .buckets(LATENCY_BUCKETS.to_vec()),
                )
                .expect("valid metric"),
            ),
            active: register(
                registry,
                IntGauge::new(
                    "chaos_relay_active",
                    "1 on the instance holding the relay lock",
                )
                .expect("valid metric"),
            ),
            failures: register(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        "chaos_relay_failures_total",
                        "Failed batches by stage (retried)",
                    ),
                    &["stage"],
                )
                .expect("valid metric"),
            ),
        };
        // Every stage exported from the start at 0, so the first failure is an increase that
        // rate()/increase() and the alerts can see.
        for stage in ["read", "produce", "checkpoint"] {
            metrics.failures.with_label_values(&[stage]);
        }
        for aggregate in chaos_schemas::AGGREGATES {
            metrics.poison_events.with_label_values(&[aggregate.name]);
        }
        metrics
    }
}
