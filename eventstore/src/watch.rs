//! The store watch: which cached aggregates other writers have appended to, found before a
//! command decides on them (decision 52).
//!
//! Several processes write to one aggregate: the process managers land PvP hits on characters
//! their players are commanding, and grants on wallets their owners spend from; a deployment
//! runs several command API replicas. The cache ([`crate::cache`]) of each is then stale after
//! another's append, and the next command decided on it loses the append's race: its group
//! commit batch fails and is written again without it, and it reads the prior answer and the
//! winner's events before appending again. The watch tails the store's new rows (their keys
//! only: type, id, sequence) in commit-id order and marks each cached aggregate another writer
//! moved past; a command on a marked entry reads the events it missed before deciding
//! ([`crate::command`]), one read instead of a lost race.
//!
//! An optimisation only: the watch reads without the relay's append horizon, so a row whose
//! transaction commits after a later one was read is never seen, and a mark can come after the
//! next command. The append's optimistic concurrency still catches every stale decision.

use std::time::Duration;

use prometheus::{IntCounter, Registry};
use sqlx::PgPool;

use crate::cache::AggregateCache;
use crate::log::{EventLog, Position};
use crate::pg::PgEventLog;

/// Rows read per query: a backlog (the watch fell behind) is read in pieces.
const ROWS_PER_READ: i64 = 5_000;

/// `chaos_aggregate_cache_marked_behind_total`: cached aggregates the watch found another
/// writer had appended to.
#[derive(Debug, Clone)]
pub struct WatchMetrics {
    marked: IntCounter,
}

impl WatchMetrics {
    pub fn new(registry: &Registry) -> Self {
        let marked = IntCounter::new(
            "chaos_aggregate_cache_marked_behind_total",
            "Cached aggregates the store watch found appended to by another writer \
             (their next command reads the events it missed before deciding)",
        )
        .expect("valid metric");
        registry
            .register(Box::new(marked.clone()))
            .expect("metric registered twice");
        Self { marked }
    }
}

/// Tails the store for other writers' appends; see the module documentation.
#[derive(Debug)]
pub struct StoreWatch {
    pool: PgPool,
    cache: AggregateCache,
    /// The shortest time between two reads (each wakes on an append's notification).
    interval: Duration,
    metrics: WatchMetrics,
}

impl StoreWatch {
    pub fn new(
        pool: PgPool,
        cache: AggregateCache,
        interval: Duration,
        metrics: WatchMetrics,
    ) -> Self {
        Self {
            pool,
            cache,
            interval,
            metrics,
        }
    }

    /// Starts the watch from the store's end (an aggregate loaded after that is loaded whole)
    /// on a task of its own, which runs as long as the runtime does (abort the handle to stop
    /// it sooner). Returns once the end is known, so every append after this call is seen. A
    /// failed read is retried after the interval; it never ends the watch.
    pub async fn spawn(self) -> tokio::task::JoinHandle<()> {
        let end = self.end().await;
        tokio::spawn(self.run(end))
    }

    async fn run(self, end: Result<Position, sqlx::Error>) {
        let log = PgEventLog::new(self.pool.clone());
        let mut end = end;
        let mut at = loop {
            match end {
                Ok(at) => break at,
                Err(e) => {
                    tracing::warn!(error = %e, "the store watch cannot find the store's end; retrying");
                    tokio::time::sleep(self.interval.max(Duration::from_secs(1))).await;
                    end = self.end().await;
                }
            }
        };
        loop {
            let started = tokio::time::Instant::now();
            match self.read_after(at).await {
                Ok((next, full)) => {
                    at = next;
                    if full {
                        continue;
                    }
                }
                Err(e) => tracing::debug!(error = %e, "the store watch's read failed; retrying"),
            }
            tokio::time::sleep_until(started + self.interval).await;
            log.wait_for_append(Duration::from_secs(1)).await;
        }
    }

    /// Where the store ends now: the newest row in commit-id order.
    async fn end(&self) -> Result<Position, sqlx::Error> {
        let row: Option<(String, i64)> = sqlx::query_as(
            "SELECT tx_id::text AS tx_text, global_position FROM events
             ORDER BY events.tx_id DESC, events.global_position DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(
            row.map_or(Position::START, |(tx_id, global_position)| Position {
                tx_id: tx_id.parse().unwrap_or(0),
                global_position,
            }),
        )
    }

    /// Marks the cached aggregates that the rows after `after` moved past; returns the last
    /// row's position (or `after`), and whether the read was full (more may be waiting).
    async fn read_after(&self, after: Position) -> Result<(Position, bool), sqlx::Error> {
        // Planned for its bounds each time (not prepared): a generic plan cannot know the range
        // is the index's last few rows, and PostgreSQL chose a parallel scan of the whole table
        // for it (59 ms a read over 400,000 events, against 0.1 ms for the index's end). The
        // order is the columns', not the text's.
        let rows: Vec<(String, String, i64, String, i64)> = sqlx::query_as(
            "SELECT aggregate_type, aggregate_id, sequence, tx_id::text AS tx_text, global_position
             FROM events WHERE (tx_id, global_position) > ($1::text::xid8, $2)
             ORDER BY events.tx_id, events.global_position LIMIT $3",
        )
        .bind(after.tx_id.to_string())
        .bind(after.global_position)
        .bind(ROWS_PER_READ)
        .persistent(false)
        .fetch_all(&self.pool)
        .await?;
        let full = rows.len() as i64 == ROWS_PER_READ;
        let mut at = after;
        for (aggregate_type, id, sequence, tx_id, global_position) in rows {
            if let Some(aggregate) = chaos_schemas::registry::aggregate(&aggregate_type) {
                let sequence = u64::try_from(sequence).unwrap_or(0);
                if self.cache.saw(aggregate.name, &id, sequence) {
                    self.metrics.marked.inc();
                }
            }
            at = Position {
                tx_id: tx_id.parse().unwrap_or(at.tx_id),
                global_position,
            };
        }
        Ok((at, full))
    }
}
