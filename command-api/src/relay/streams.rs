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

use std::collections::HashSet;

use sqlx::{PgPool, Row};

/// The stopped streams of one relay (by checkpoint name).
#[derive(Debug, Clone)]
pub struct StoppedStreams {
    pool: PgPool,
    relay: String,
    stopped: HashSet<(String, String)>,
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
            stopped: HashSet::new(),
        };
        streams.refresh().await?;
        Ok(streams)
    }

    /// Re-reads the table (another relay instance or an operator may have changed it).
    pub async fn refresh(&mut self) -> sqlx::Result<()> {
        let rows = sqlx::query(
            "SELECT aggregate_type, aggregate_id FROM relay_stopped_streams WHERE relay = $1",
        )
        .bind(&self.relay)
        .fetch_all(&self.pool)
        .await?;
        self.stopped = rows
            .iter()
            .map(|r| Ok((r.try_get("aggregate_type")?, r.try_get("aggregate_id")?)))
            .collect::<sqlx::Result<_>>()?;
        Ok(())
    }

    pub fn is_stopped(&self, aggregate_type: &str, aggregate_id: &str) -> bool {
        self.stopped
            .contains(&(aggregate_type.to_owned(), aggregate_id.to_owned()))
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
            .insert((aggregate_type.to_owned(), aggregate_id.to_owned()));
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
            .remove(&(resume.aggregate_type.clone(), resume.aggregate_id.clone()));
        Ok(())
    }
}
