use chaos_platform::metrics::register;
use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};

/// Per-projection metrics; `partition` is bounded by the topic's partition count.
#[derive(Debug, Clone)]
pub struct ProjectorMetrics {
    pub applied: IntCounterVec,
    pub duplicates: IntCounterVec,
    pub dead_letters: IntCounterVec,
    pub lag_events: IntGaugeVec,
    pub lag_seconds: IntGaugeVec,
    pub retries: IntCounterVec,
    /// 1 while the projection can reach its feed and its store; 0 while it waits for them.
    pub ready: IntGaugeVec,
    /// Sequence gaps repaired by fetching the missing events from the event store.
    pub gap_repairs: IntCounterVec,
    /// Documents (or whole read models) rebuilt because they were found empty or behind.
    pub rebuilds: IntCounterVec,
    /// Kafka consumers replaced after delivering nothing while messages waited.
    pub consumer_restarts: IntCounterVec,
}

impl ProjectorMetrics {
    pub fn new(registry: &Registry) -> Self {
        let counter = |name: &str, help: &str| {
            register(
                registry,
                IntCounterVec::new(Opts::new(name, help), &["projection"]).expect("valid metric"),
            )
        };
        let gauge = |name: &str, help: &str| {
            register(
                registry,
                IntGaugeVec::new(Opts::new(name, help), &["projection", "topic", "partition"])
                    .expect("valid metric"),
            )
        };
        Self {
            applied: counter(
                "chaos_projector_events_applied_total",
                "Events applied to the read model",
            ),
            duplicates: counter(
                "chaos_projector_events_duplicate_total",
                "Events skipped because the read model already had them",
            ),
            dead_letters: counter(
                "chaos_projector_dead_letters_total",
                "Messages sent to the dead-letter topic",
            ),
            lag_events: gauge(
                "chaos_projector_lag_events",
                "Messages behind the partition's end",
            ),
            lag_seconds: gauge(
                "chaos_projector_lag_seconds",
                "While behind: the age of the last message applied if the partition delivered since the last measurement, else how long it has stood at one offset; 0 when caught up",
            ),
            retries: counter(
                "chaos_projector_retries_total",
                "Batches retried after a transient failure",
            ),
            gap_repairs: counter(
                "chaos_projector_gap_repairs_total",
                "Sequence gaps repaired by fetching the missing events from the event store",
            ),
            rebuilds: counter(
                "chaos_projector_rebuilds_total",
                "Read-model documents rebuilt from the event store because they were found empty or behind",
            ),
            consumer_restarts: counter(
                "chaos_projector_consumer_restarts_total",
                "Kafka consumers replaced by a new group member after delivering nothing while their partitions held unconsumed messages",
            ),
            ready: register(
                registry,
                IntGaugeVec::new(
                    Opts::new(
                        "chaos_projector_ready",
                        "1 while the projection reaches its feed and store; 0 while it waits for them",
                    ),
                    &["projection"],
                )
                .expect("valid metric"),
            ),
        }
    }

    /// Exports a projection's counters at 0 from the start: a series that first appears at 1
    /// is invisible to increase()/rate(), so the first dead letter would not alert.
    pub fn init(&self, projection: &str) {
        for counter in [
            &self.applied,
            &self.duplicates,
            &self.dead_letters,
            &self.retries,
            &self.gap_repairs,
            &self.rebuilds,
            &self.consumer_restarts,
        ] {
            counter.with_label_values(&[projection]);
        }
        self.ready.with_label_values(&[projection]).set(1);
    }
}
