//! Read models heal themselves.
//!
//! - A document behind its stream (a gap: the read model was restored from an old backup, lost
//!   in a restart, evicted, failed over to a lagging replica) is repaired from the event store
//!   by the projection itself ([`StoreSource`], `ViewProjection::with_source`): the missing
//!   events are fetched and applied, then the event that revealed the gap. Dead letters are for
//!   events that cannot be applied at all.
//! - A read model found empty — no marker, though the projection has run (a Redis restarted
//!   without persistence, a flush) — is rebuilt from the event store ([`Guardian`]), while the
//!   feed goes on: every write is a compare-and-set on per-stream positions, so the rebuild and
//!   the live feed never apply an event twice. Aggregates with no new events come back too.
//!   When several processes find the same store lost (a projector's replicas), the one holding
//!   the rebuild lease (`ViewProjection::take_rebuild_lease`) rebuilds it; the others wait for
//!   its marker and take over if its lease runs out.
//!
//! Both say so: a log line and `chaos_projector_gap_repairs_total` /
//! `chaos_projector_rebuilds_total`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::task::AbortOnDropHandle;

use async_trait::async_trait;
use chaos_eventstore::publish::to_published;
use chaos_eventstore::repository::Repository;
use chaos_eventstore::{EventLog, Position};
use chaos_readmodel::{StoreError, StreamSource, ViewProjection};
use chaos_schemas::PublishedEvent;
use tokio_util::sync::CancellationToken;

use super::{ProjectorMetrics, StoreFeed};

/// The event store as the source of a stream's missing events.
#[derive(Debug, Clone)]
pub struct StoreSource {
    repository: Repository,
}

impl StoreSource {
    pub fn new(repository: Repository) -> Self {
        Self { repository }
    }
}

#[async_trait]
impl StreamSource for StoreSource {
    async fn events(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after: u64,
        up_to: u64,
    ) -> Result<Vec<PublishedEvent>, StoreError> {
        let mut out = Vec::new();
        let mut at = after;
        while at < up_to {
            let page = self
                .repository
                .history_page(
                    aggregate_type,
                    aggregate_id,
                    i64::try_from(at).unwrap_or(i64::MAX),
                    1000,
                    Some(i64::try_from(up_to).unwrap_or(i64::MAX)),
                )
                .await
                .map_err(StoreError::unavailable)?;
            let Some(last) = page.last().map(|e| e.sequence) else {
                break;
            };
            for stored in &page {
                // A row that does not map can be neither applied nor skipped: a dead letter.
                match to_published(stored) {
                    Ok(event) => out.push(event),
                    Err(e) => {
                        tracing::error!(error = %e, aggregate_id, sequence = stored.sequence, "stored event does not map");
                        return Ok(out);
                    }
                }
            }
            at = u64::try_from(last).unwrap_or(up_to);
        }
        Ok(out)
    }
}

/// Watches a view projection's store and rebuilds it from the event store when it is found
/// without its marker (see the module documentation).
#[derive(Debug, Clone)]
pub struct Guardian {
    name: String,
    projection: ViewProjection,
    log: Arc<dyn EventLog>,
    metrics: ProjectorMetrics,
    every: Duration,
    /// This guardian's name on the rebuild lease.
    owner: String,
    /// Whether it said already that another process holds the lease.
    waiting: Arc<AtomicBool>,
}

/// How long a rebuild lease lasts unless renewed (every third of it while the rebuild runs):
/// how long the other replicas wait before taking over from a holder that died.
const LEASE_TTL: Duration = Duration::from_secs(30);

impl Guardian {
    pub fn new(
        name: &str,
        projection: ViewProjection,
        log: Arc<dyn EventLog>,
        metrics: ProjectorMetrics,
    ) -> Self {
        Self {
            name: name.to_owned(),
            projection,
            log,
            metrics,
            every: Duration::from_secs(2),
            owner: format!("{name}-{}", uuid::Uuid::new_v4()),
            waiting: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Checks now, then every couple of seconds until `shutdown`. Store outages are waited out.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut repairs_seen = 0;
        loop {
            match self.check().await {
                Ok(()) => {}
                Err(e) => {
                    tracing::warn!(projection = %self.name, error = %format!("{e:#}"), "read-model check failed; will retry")
                }
            }
            let repairs = self.projection.repairs();
            if repairs > repairs_seen {
                self.metrics
                    .gap_repairs
                    .with_label_values(&[&self.name])
                    .inc_by(repairs - repairs_seen);
                repairs_seen = repairs;
            }
            tokio::select! {
                () = tokio::time::sleep(self.every) => {}
                () = shutdown.cancelled() => return,
            }
        }
    }

    /// Rebuilds from the whole event store if the marker is missing, then writes the marker.
    /// One process rebuilds: the one that takes the rebuild lease; the others (a projector's
    /// other replicas, which find the same store lost) leave it to that one and look again at
    /// their next check, taking over if its lease expires.
    pub async fn check(&self) -> anyhow::Result<()> {
        if self.projection.is_marked().await? {
            self.waiting.store(false, Ordering::Relaxed);
            return Ok(());
        }
        if !self
            .projection
            .take_rebuild_lease(&self.owner, LEASE_TTL)
            .await?
        {
            if !self.waiting.swap(true, Ordering::Relaxed) {
                tracing::info!(
                    projection = %self.name,
                    "read model has no marker and another process holds its rebuild lease: \
                     leaving the rebuild to it"
                );
            }
            return Ok(());
        }
        self.waiting.store(false, Ordering::Relaxed);
        // The holder before may have finished between the two reads.
        if self.projection.is_marked().await? {
            self.projection.release_rebuild_lease(&self.owner).await?;
            return Ok(());
        }
        // Aborted when dropped: the lease's renewal ends with the rebuild, however it ends.
        let renewal = AbortOnDropHandle::new(tokio::spawn({
            let (projection, owner, name) = (
                self.projection.clone(),
                self.owner.clone(),
                self.name.clone(),
            );
            async move {
                loop {
                    tokio::time::sleep(LEASE_TTL / 3).await;
                    match projection.take_rebuild_lease(&owner, LEASE_TTL).await {
                        Ok(true) => {}
                        // Harmless but wasteful: every write is a compare-and-set.
                        Ok(false) => tracing::warn!(
                            projection = %name,
                            "lost the rebuild lease: another process may rebuild too"
                        ),
                        Err(e) => tracing::warn!(
                            projection = %name, error = %e, "renewing the rebuild lease"
                        ),
                    }
                }
            }
        }));
        self.rebuild().await?;
        drop(renewal);
        if let Err(e) = self.projection.release_rebuild_lease(&self.owner).await {
            tracing::warn!(projection = %self.name, error = %e, "releasing the rebuild lease");
        }
        Ok(())
    }

    /// The whole event store into the projection, then the marker.
    async fn rebuild(&self) -> anyhow::Result<()> {
        let started = Instant::now();
        tracing::warn!(
            projection = %self.name,
            "read model has no marker (new, or lost: an empty store after a restart or flush): \
             rebuilding from the event store"
        );
        self.metrics.rebuilds.with_label_values(&[&self.name]).inc();
        let feed = StoreFeed::new(
            &format!("{}-rebuild", self.name),
            self.log.clone(),
            Arc::new(self.projection.clone()),
            self.metrics.clone(),
        );
        let done = feed
            .catch_up(Position::START, |p| {
                tracing::debug!(events = p.events, "rebuilding");
            })
            .await?;
        self.projection
            .mark(serde_json::json!({
                "built_from": "event store",
                "events": done.events,
                "at": chrono::Utc::now().to_rfc3339(),
            }))
            .await?;
        tracing::info!(
            projection = %self.name,
            events = done.events,
            applied = done.applied,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "read model rebuilt from the event store"
        );
        Ok(())
    }
}
