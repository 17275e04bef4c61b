//! The event store as the truth the read side is checked against.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use chaos_domain::GameAggregate;
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

    /// Every event in the store once writing has stopped and the process managers owe nothing
    /// more ([`rewards_owed`] is 0): what a check of the read models compares with on a stack
    /// that runs them (their grants land after the commands that earned them).
    pub async fn all_events_settled(&self, timeout: Duration) -> anyhow::Result<Vec<StoredEvent>> {
        crate::wait_until(
            "the process managers to grant every wallet and level-up",
            timeout,
            Duration::from_millis(100),
            || async {
                let events = self.all_events().await.map_err(|e| e.to_string())?;
                match rewards_owed(&events) {
                    0 => Ok(Some(events)),
                    owed => Err(format!("{owed} wallets or grants still owed")),
                }
            },
        )
        .await
    }

    /// Every event in the store once writing has stopped: polls until the global-order reader
    /// returns as many rows as the table holds.
    ///
    /// The reader only hands out transactions older than every transaction still running
    /// anywhere on the server (transaction ids are cluster-wide), so right after a command
    /// returns, a slow transaction of another test can still hide it for a moment.
    pub async fn all_events(&self) -> anyhow::Result<Vec<StoredEvent>> {
        crate::wait_until(
            "the global-order reader to return every stored event",
            Duration::from_secs(60),
            Duration::from_millis(20),
            || async {
                let events = self.read_all().await.map_err(|e| format!("{e:#}"))?;
                let count = self.count().await.map_err(|e| format!("{e:#}"))?;
                if events.len() as i64 == count {
                    Ok(Some(events))
                } else {
                    Err(format!("{} of {count} rows", events.len()))
                }
            },
        )
        .await
    }

    /// What the global-order reader returns now (the relay's view), checking that it never
    /// hands out one `(aggregate, sequence)` twice.
    pub async fn read_all(&self) -> anyhow::Result<Vec<StoredEvent>> {
        let mut all: Vec<StoredEvent> = Vec::new();
        let mut after = Position::START;
        let mut reads = 0;
        loop {
            let batch = self.log.read_after(after, 5_000).await?;
            reads += 1;
            let Some(last) = batch.last() else {
                break;
            };
            after = last.position;
            all.extend(batch);
        }
        let mut seen: BTreeMap<(&str, &str, i64), &StoredEvent> = BTreeMap::new();
        for e in &all {
            if let Some(first) = seen.insert((&e.aggregate_type, &e.aggregate_id, e.sequence), e) {
                anyhow::bail!(
                    "the global-order reader returned {}#{} twice in {reads} reads: \
                     {:?} {} {} and {:?} {} {}",
                    e.aggregate_id,
                    e.sequence,
                    first.position,
                    first.event_type,
                    first.metadata,
                    e.position,
                    e.event_type,
                    e.metadata,
                );
            }
        }
        Ok(all)
    }

    /// The number of rows in `events` (committed or not yet visible to the global reader).
    pub async fn count(&self) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&self.pool)
            .await?)
    }
}

/// The events of aggregate type `aggregate_type`, grouped by aggregate id, each list in
/// sequence order.
pub fn by_aggregate(
    events: &[StoredEvent],
    aggregate_type: &str,
) -> BTreeMap<String, Vec<StoredEvent>> {
    let mut map: BTreeMap<String, Vec<StoredEvent>> = BTreeMap::new();
    for e in events.iter().filter(|e| e.aggregate_type == aggregate_type) {
        map.entry(e.aggregate_id.clone())
            .or_default()
            .push(e.clone());
    }
    for list in map.values_mut() {
        list.sort_by_key(|e| e.sequence);
    }
    map
}

/// What the rewards process manager still owes in `events`: a wallet for each character without
/// one, a grant for each `LeveledUp` beyond the character's `CurrencyGranted` count. Work caused
/// by events lands after them, so a check of the read models against the store must first wait
/// for this to be 0 (or it compares with a store the process managers are still writing to).
pub fn rewards_owed(events: &[StoredEvent]) -> usize {
    let wallets = by_aggregate(events, chaos_domain::wallet::AGGREGATE_TYPE);
    by_aggregate(events, chaos_domain::character::AGGREGATE_TYPE)
        .iter()
        .map(|(id, list)| {
            let levels = list.iter().filter(|e| e.event_type == "LeveledUp").count();
            match wallets.get(id) {
                None => 1 + levels,
                Some(w) => {
                    let grants = w
                        .iter()
                        .filter(|e| e.event_type == "CurrencyGranted")
                        .count();
                    levels.saturating_sub(grants)
                }
            }
        })
        .sum()
}

/// Folds one aggregate's stored events with the domain's own `apply`, through the same
/// decoding (and upcasting) every reader uses.
pub fn fold<A: GameAggregate>(events: &[StoredEvent]) -> anyhow::Result<A> {
    let decoded = events
        .iter()
        .map(|e| {
            chaos_domain::decode_stored_json::<A>(&e.event_type, &e.event_version, e.payload.get())
                .with_context(|| {
                    format!(
                        "{} {}#{} does not decode",
                        A::TYPE,
                        e.aggregate_id,
                        e.sequence
                    )
                })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(A::fold(decoded))
}

/// Checks an aggregate's sequences are exactly 1..=n.
pub fn assert_contiguous(events: &[StoredEvent]) -> anyhow::Result<()> {
    for (i, e) in events.iter().enumerate() {
        if e.sequence != i as i64 + 1 {
            let around: Vec<String> = events[i.saturating_sub(3)..(i + 3).min(events.len())]
                .iter()
                .map(|e| format!("#{} {:?} {}", e.sequence, e.position, e.event_type))
                .collect();
            anyhow::bail!(
                "{}: sequence {} at index {i}; around it: {around:?}",
                e.aggregate_id,
                e.sequence
            );
        }
    }
    Ok(())
}
