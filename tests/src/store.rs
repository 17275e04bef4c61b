//! The event store as the truth the read side is checked against.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use chaos_domain::{Character, CharacterEvent};
use chaos_eventstore::pg::PgEventLog;
use chaos_eventstore::{EventLog, Position, StoredEvent};

/// One test database's event store.
#[derive(Debug)]
pub struct EventStore {
    pool: sqlx::PgPool,
    log: PgEventLog,
}

impl EventStore {
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .context("connecting to the test database")?;
        Ok(Self {
            log: PgEventLog::new(pool.clone()),
            pool,
        })
    }

    pub fn pool(&self) -> &sqlx::PgPool {
        &self.pool
    }

    /// Every committed event in the store's global order (the relay's reader).
    pub async fn all_events(&self) -> anyhow::Result<Vec<StoredEvent>> {
        let mut all = Vec::new();
        let mut after = Position::START;
        loop {
            let batch = self.log.read_after(after, 5_000).await?;
            let Some(last) = batch.last() else {
                return Ok(all);
            };
            after = last.position;
            all.extend(batch);
        }
    }

    /// The number of rows in `events` (committed or not yet visible to the global reader).
    pub async fn count(&self) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&self.pool)
            .await?)
    }
}

/// Events grouped by aggregate id, each list in sequence order.
pub fn by_aggregate(events: &[StoredEvent]) -> BTreeMap<String, Vec<StoredEvent>> {
    let mut map: BTreeMap<String, Vec<StoredEvent>> = BTreeMap::new();
    for e in events {
        map.entry(e.aggregate_id.clone())
            .or_default()
            .push(e.clone());
    }
    for list in map.values_mut() {
        list.sort_by_key(|e| e.sequence);
    }
    map
}

/// Folds one aggregate's stored events with the domain's own `apply`. The `payload` column is
/// the serde JSON of [`CharacterEvent`].
pub fn fold(events: &[StoredEvent]) -> anyhow::Result<Character> {
    let decoded = events
        .iter()
        .map(|e| {
            serde_json::from_value::<CharacterEvent>(e.payload.clone()).with_context(|| {
                format!(
                    "payload of {}#{} is not a CharacterEvent",
                    e.aggregate_id, e.sequence
                )
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Character::fold(decoded))
}

/// Checks an aggregate's sequences are exactly 1..=n.
pub fn assert_contiguous(events: &[StoredEvent]) -> anyhow::Result<()> {
    for (i, e) in events.iter().enumerate() {
        anyhow::ensure!(
            e.sequence == i as i64 + 1,
            "{}: sequence {} at index {i}",
            e.aggregate_id,
            e.sequence
        );
    }
    Ok(())
}
