use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Result;

/// A point in the store's global order: committed transactions in `tx_id` order, and inside a
/// transaction by `global_position`. Unlike a bare identity cursor this never skips a row whose
/// transaction committed late (see DESIGN.md, write path 4).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Position {
    pub tx_id: u64,
    pub global_position: i64,
}

impl Position {
    pub const START: Self = Self {
        tx_id: 0,
        global_position: 0,
    };
}

/// One row of the event store, as every reader sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub position: Position,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: serde_json::Value,
    pub metadata: serde_json::Value,
}

impl StoredEvent {
    pub fn meta_str(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).and_then(serde_json::Value::as_str)
    }

    /// When the command that produced it was accepted (metadata `occurred_at`, RFC 3339).
    pub fn occurred_at(&self) -> Option<DateTime<Utc>> {
        self.meta_str(crate::pg::META_OCCURRED_AT)
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc))
    }
}

/// The store read in global order: the port behind the relay and the store-fed event feed.
/// Implemented over PostgreSQL here and over the embedded store in the embedded mode.
#[async_trait]
pub trait EventLog: Send + Sync + std::fmt::Debug {
    /// Up to `limit` committed events strictly after `after`, in global order, never skipping one.
    async fn read_after(&self, after: Position, limit: u32) -> Result<Vec<StoredEvent>>;

    /// Returns when new events may have been appended, or after `timeout`, whichever is first.
    async fn wait_for_append(&self, timeout: Duration);

    /// How many committed events lie after `after` (for lag metrics and progress bars).
    async fn count_after(&self, after: Position) -> Result<u64>;

    /// What lies after `after`: every committed event, how many of them the reader may not take
    /// yet because an older append is still in flight, and how long the oldest in-flight append
    /// has been running. Stores without concurrent appenders hold nothing back.
    async fn backlog(&self, after: Position) -> Result<Backlog> {
        Ok(Backlog {
            events: self.count_after(after).await?,
            held_back: 0,
            oldest_inflight_append: None,
        })
    }
}

/// See [`EventLog::backlog`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Committed events after the position (including those held back).
    pub events: u64,
    /// Committed events after the position that lie at or above the append horizon.
    pub held_back: u64,
    /// Age of the oldest event append still in flight, if any.
    pub oldest_inflight_append: Option<Duration>,
}
