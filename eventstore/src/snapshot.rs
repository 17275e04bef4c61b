//! Snapshots, our own and correct ones: cqrs-es 0.5's snapshot mode applies each event twice when
//! it updates a snapshot, so it is never used (DESIGN.md, write path 3).
//!
//! - A snapshot is the aggregate's serde form after exactly the events up to `last_sequence`,
//!   tagged with the state's shape version ([`chaos_domain::GameAggregate::STATE_VERSION`]). A
//!   snapshot of another version is ignored and the events are folded instead: a changed state
//!   never misreads an old snapshot.
//! - Loading takes the snapshot, then only the events after it.
//! - Snapshots are written off the command path, by a background task fed through a bounded
//!   queue (a full queue drops the request: a snapshot is an optimisation, the events stay the
//!   truth), every [`SnapshotPolicy::every`] events of an aggregate and after a load that had to
//!   fold that many.

use std::sync::Arc;

use prometheus::{IntCounterVec, Opts, Registry};
use tokio::sync::mpsc;

use crate::repository::Repository;

/// A stored snapshot row.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSnapshot {
    pub state_version: u32,
    pub last_sequence: u64,
    pub payload: serde_json::Value,
}

/// When to snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotPolicy {
    /// Take a snapshot every this many events of an aggregate; 0 never.
    pub every: u64,
}

impl Default for SnapshotPolicy {
    fn default() -> Self {
        Self { every: 250 }
    }
}

impl SnapshotPolicy {
    /// Whether appending took the aggregate from `before` to `after` across a multiple of `every`.
    pub fn due_after_append(&self, before: u64, after: u64) -> bool {
        self.every > 0 && after / self.every > before / self.every
    }

    /// Whether a load that folded `folded` events should leave a snapshot behind.
    pub fn due_after_load(&self, folded: u64) -> bool {
        self.every > 0 && folded >= self.every
    }
}

/// `chaos_snapshots_total{aggregate, outcome}`: written, write_failed, dropped (queue full),
/// loaded, discarded (another state version or unreadable).
#[derive(Debug, Clone)]
pub struct SnapshotMetrics {
    pub snapshots: IntCounterVec,
}

impl SnapshotMetrics {
    pub fn new(registry: &Registry) -> Self {
        let snapshots = register(
            registry,
            IntCounterVec::new(
                Opts::new(
                    "chaos_snapshots_total",
                    "Aggregate snapshots by outcome (written, write_failed, dropped, loaded, discarded)",
                ),
                &["aggregate", "outcome"],
            )
            .expect("valid metric"),
        );
        for aggregate in chaos_schemas::AGGREGATES {
            for outcome in ["written", "write_failed", "dropped", "loaded", "discarded"] {
                snapshots.with_label_values(&[aggregate.name, outcome]);
            }
        }
        Self { snapshots }
    }

    pub fn unregistered() -> Self {
        Self {
            snapshots: IntCounterVec::new(
                Opts::new("unregistered", "-"),
                &["aggregate", "outcome"],
            )
            .expect("valid metric"),
        }
    }

    pub(crate) fn count(&self, aggregate: &str, outcome: &str) {
        self.snapshots
            .with_label_values(&[aggregate, outcome])
            .inc();
    }
}

fn register<C: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    collector: C,
) -> C {
    registry
        .register(Box::new(collector.clone()))
        .expect("metric registered twice");
    collector
}

struct Job {
    aggregate_type: &'static str,
    aggregate_id: String,
    snapshot: StoredSnapshot,
}

/// The background snapshot writer. Cheap to clone; the task stops when every clone is dropped.
#[derive(Debug, Clone)]
pub struct SnapshotWriter {
    queue: mpsc::Sender<Job>,
    metrics: Arc<SnapshotMetrics>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("aggregate_type", &self.aggregate_type)
            .field("aggregate_id", &self.aggregate_id)
            .finish_non_exhaustive()
    }
}

impl SnapshotWriter {
    /// Starts the writer task (must be called inside a Tokio runtime).
    pub fn spawn(repository: Repository, metrics: SnapshotMetrics) -> Self {
        let (queue, mut jobs) = mpsc::channel::<Job>(1024);
        let metrics = Arc::new(metrics);
        let task_metrics = metrics.clone();
        tokio::spawn(async move {
            while let Some(job) = jobs.recv().await {
                let outcome = repository
                    .save_snapshot(job.aggregate_type, &job.aggregate_id, &job.snapshot)
                    .await;
                match outcome {
                    Ok(()) => task_metrics.count(job.aggregate_type, "written"),
                    Err(e) => {
                        task_metrics.count(job.aggregate_type, "write_failed");
                        tracing::debug!(error = %e, aggregate_id = %job.aggregate_id, "snapshot not written");
                    }
                }
            }
        });
        Self { queue, metrics }
    }

    pub(crate) fn metrics(&self) -> &SnapshotMetrics {
        &self.metrics
    }

    /// Queues a snapshot of `state` as of `last_sequence`; never waits.
    pub fn offer<A: chaos_domain::GameAggregate>(
        &self,
        aggregate_id: &str,
        state: &A,
        last_sequence: u64,
    ) {
        if last_sequence == 0 {
            return;
        }
        let Ok(payload) = serde_json::to_value(state) else {
            return;
        };
        let job = Job {
            aggregate_type: A::TYPE,
            aggregate_id: aggregate_id.to_owned(),
            snapshot: StoredSnapshot {
                state_version: A::STATE_VERSION,
                last_sequence,
                payload,
            },
        };
        if self.queue.try_send(job).is_err() {
            self.metrics.count(A::TYPE, "dropped");
        }
    }
}
