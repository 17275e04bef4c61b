use chaos_platform::metrics::{register, LATENCY_BUCKETS};
use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry};

#[derive(Debug, Clone)]
pub struct RelayMetrics {
    pub published: IntCounterVec,
    pub lag_events: IntGauge,
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
                    "Committed events not yet published",
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
        metrics
    }
}
