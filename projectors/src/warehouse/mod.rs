//! The analytics warehouse projection: every event as a row of `events`, plus typed fact tables
//! (`skill_casts`, `level_ups`, ...) and the `characters` dimension, in a DuckDB file; Parquet
//! exports of every table for analysts.
//!
//! Fed by any feed through [`Warehouse::apply_batch`] (the Kafka runner via
//! [`crate::runner::ProjectionSink`], the event-store feed in the embedded mode directly).
//!
//! Idempotence and crash safety: a batch's rows are inserted with `ON CONFLICT DO NOTHING` on
//! `event_id` (and `(aggregate_type, aggregate_id, sequence)`), typed rows are written only for
//! events that insert uniquely, and the feed's offsets go to `feed_offsets` in the same
//! transaction. A replay after a crash therefore neither duplicates nor loses rows.
//!
//! Which offsets a feed resumes from:
//! - Kafka: the consumer group's committed offsets, stored only after the DuckDB commit and the
//!   batch's dead letters. They are never ahead of `feed_offsets`, so at worst the last batches
//!   are re-read, all reported `Duplicate`, and dead letters are re-sent rather than lost
//!   (resuming from `feed_offsets` could skip a poison message whose dead letter was not yet
//!   produced). `feed_offsets` tells operators how far the file itself is complete, e.g. to
//!   seek a new group when the group's offsets expired or a copy of the file is restored.
//! - The event store (embedded mode): `feed_offsets` is its only checkpoint
//!   ([`STORE_FEED`], partition 0, the next global position).
//!
//! [`schema`] names the tables and columns analysts rely on.

mod export;
mod rows;
pub mod schema;
mod sink;
#[cfg(test)]
mod tests;
mod writer;

use std::path::PathBuf;

pub use sink::Warehouse;
pub use writer::{ExportedTable, TableCount};

/// The `feed_offsets.feed` of the event-store feed (embedded mode, rebuilds from PostgreSQL).
pub const STORE_FEED: &str = "store";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("DuckDB: {0}")]
    DuckDb(#[from] duckdb::Error),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("path is not valid UTF-8: {}", .0.display())]
    Path(PathBuf),
    #[error("warehouse data is corrupt: {0}")]
    Corrupt(String),
    #[error("the warehouse writer has stopped")]
    Closed,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
