//! Streams the relay stopped: one bad event (it cannot be mapped to its published form, or the
//! registry refuses its schema) must not stop every topic. The relay stops only that aggregate's
//! stream at that event — nothing of the aggregate from there on is published, so its order is
//! kept — records it in `relay_stopped_streams`, raises `chaos_relay_stopped_streams`, and
//! carries on with everything else.
//!
//! Once the cause is fixed (a deploy that can map the event, a registry that accepts the schema),
//! an operator asks for the stream back (`chaosctl relay resume <aggregate> <id>`, which sets
//! `resume_requested`); the relay then republishes the aggregate's events from the stopped one up
//! to its checkpoint, in order, and forgets the stop. Events after the checkpoint follow through
//! the normal cursor.

use std::collections::HashMap;

use sqlx::{PgPool, Row};

/// The stopped streams of one relay (by checkpoint name).
#[derive(Debug, Clone)]
pub struct StoppedStreams {
    pool: PgPool,
    relay: String,
    stopped: Stops,
}

/// A stream an operator asked to resume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub from_sequence: i64,
}

impl StoppedStreams {
    pub async fn load(pool: PgPool, relay: &str) -> sqlx::Result<Self> {
        let mut streams = Self {
            pool,
            relay: relay.to_owned(),
            stopped: Stops::default(),
        };
        streams.refresh().await?;
        Ok(streams)
    }

    /// Re-reads the table (another relay instance or an operator may have changed it).
    pub async fn refresh(&mut self) -> sqlx::Result<()> {
        let rows = sqlx::query(
            "SELECT aggregate_type, aggregate_id, from_sequence FROM relay_stopped_streams
             WHERE relay = $1",
        )
        .bind(&self.relay)
        .fetch_all(&self.pool)
        .await?;
        let mut stopped = Stops::default();
        for r in &rows {
            stopped.insert(
                r.try_get("aggregate_type")?,
                r.try_get("aggregate_id")?,
                r.try_get("from_sequence")?,
            );
        }
        self.stopped = stopped;
        Ok(())
    }

    /// Whether the event at `sequence` of the aggregate is held back by a stop. The events
    /// before the stopped one are not: a batch read again (its send failed after a later event
    /// of it stopped the stream) still publishes them.
    pub fn is_stopped(&self, aggregate_type: &str, aggregate_id: &str, sequence: i64) -> bool {
        self.stopped
            .is_stopped(aggregate_type, aggregate_id, sequence)
    }

    pub fn len(&self) -> usize {
        self.stopped.len()
    }

    pub fn is_empty(&self) -> bool {
        self.stopped.is_empty()
    }

    /// Stops a stream at `sequence`; stopping a stopped stream keeps its first stop.
    pub async fn stop(
        &mut self,
        aggregate_type: &str,
        aggregate_id: &str,
        sequence: i64,
        reason: &str,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO relay_stopped_streams (relay, aggregate_type, aggregate_id, from_sequence, reason)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (relay, aggregate_type, aggregate_id) DO NOTHING",
        )
        .bind(&self.relay)
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(sequence)
        .bind(reason)
        .execute(&self.pool)
        .await?;
        self.stopped
            .insert(aggregate_type.to_owned(), aggregate_id.to_owned(), sequence);
        Ok(())
    }

    /// Streams an operator asked to resume.
    pub async fn resume_requested(&self) -> sqlx::Result<Vec<Resume>> {
        let rows = sqlx::query(
            "SELECT aggregate_type, aggregate_id, from_sequence FROM relay_stopped_streams
             WHERE relay = $1 AND resume_requested ORDER BY stopped_at",
        )
        .bind(&self.relay)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Resume {
                    aggregate_type: r.try_get("aggregate_type")?,
                    aggregate_id: r.try_get("aggregate_id")?,
                    from_sequence: r.try_get("from_sequence")?,
                })
            })
            .collect()
    }

    /// Forgets a stop once its stream has been republished.
    pub async fn resumed(&mut self, resume: &Resume) -> sqlx::Result<()> {
        sqlx::query(
            "DELETE FROM relay_stopped_streams
             WHERE relay = $1 AND aggregate_type = $2 AND aggregate_id = $3",
        )
        .bind(&self.relay)
        .bind(&resume.aggregate_type)
        .bind(&resume.aggregate_id)
        .execute(&self.pool)
        .await?;
        self.stopped
            .remove(&resume.aggregate_type, &resume.aggregate_id);
        Ok(())
    }
}

/// The stops in memory: per aggregate type, then id, the sequence its stream stopped at.
/// Looked up with borrowed names for every event the relay reads.
#[derive(Debug, Clone, Default)]
struct Stops(HashMap<String, HashMap<String, i64>>);

impl Stops {
    fn is_stopped(&self, aggregate_type: &str, aggregate_id: &str, sequence: i64) -> bool {
        self.0
            .get(aggregate_type)
            .and_then(|ids| ids.get(aggregate_id))
            .is_some_and(|from| sequence >= *from)
    }

    /// Keeps the first stop of a stream, as the table does.
    fn insert(&mut self, aggregate_type: String, aggregate_id: String, from_sequence: i64) {
        self.0
            .entry(aggregate_type)
            .or_default()
            .entry(aggregate_id)
            .or_insert(from_sequence);
    }

    fn remove(&mut self, aggregate_type: &str, aggregate_id: &str) {
        if let Some(ids) = self.0.get_mut(aggregate_type) {
            ids.remove(aggregate_id);
            if ids.is_empty() {
                self.0.remove(aggregate_type);
            }
        }
    }

    fn len(&self) -> usize {
        self.0.values().map(HashMap::len).sum()
    }

    /// `remove` drops a type left without ids, so no empty inner map remains.
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::Stops;

    #[test]
    fn a_stop_holds_back_its_event_and_later_ones_only() {
        let mut stops = Stops::default();
        stops.insert("character".into(), "a".into(), 5);
        // A second stop of the same stream keeps the first.
        stops.insert("character".into(), "a".into(), 9);
        stops.insert("wallet".into(), "a".into(), 1);
        assert_eq!(stops.len(), 2);
        assert!(!stops.is_stopped("character", "a", 4), "before the stop");
        assert!(stops.is_stopped("character", "a", 5));
        assert!(stops.is_stopped("character", "a", 6));
        assert!(!stops.is_stopped("character", "b", 6), "another aggregate");
        assert!(stops.is_stopped("wallet", "a", 1), "per aggregate type");
        stops.remove("character", "a");
        assert!(!stops.is_stopped("character", "a", 6));
        assert_eq!(stops.len(), 1);
        stops.remove("wallet", "a");
        assert!(stops.is_empty());
    }
}
