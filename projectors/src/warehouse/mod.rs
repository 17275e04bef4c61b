//! The analytics warehouse projection: every event as a row of `events`, modelled facts for
//! every event type (economy, combat, crafting, items, progression), dimensions (characters,
//! wallets, the content catalogue with its version, dates), sessions, in a DuckDB file; Parquet
//! exports by day for analysts and other engines; rebuilds beside the live file and a switch to
//! them while the live process runs. [`schema`] names the tables and columns analysts rely on;
//! `docs/analytics.md` answers analysts' questions with SQL against them.
//!
//! Fed by any feed through [`Warehouse::apply_batch`] (the Kafka runner and the event-store feed
//! via [`crate::runner::ProjectionSink`]).
//!
//! Idempotence and crash safety: a batch's rows are inserted with `ON CONFLICT DO NOTHING` on
//! `event_id` (and `(aggregate_type, aggregate_id, sequence)`), modelled rows are written only
//! for events that insert uniquely, and the feed's offsets go to `feed_offsets` in the same
//! transaction. A replay after a crash therefore neither duplicates nor loses rows.
//!
//! Which offsets a feed resumes from:
//! - Kafka: the consumer group's committed offsets, stored only after the DuckDB commit and the
//!   batch's dead letters. They are never ahead of `feed_offsets`, so at worst the last batches
//!   are re-read, all reported `Duplicate`, and dead letters are re-sent rather than lost
//!   (resuming from `feed_offsets` could skip a poison message whose dead letter was not yet
//!   produced). `feed_offsets` tells operators how far the file itself is complete, e.g. to
//!   seek a new group when the group's offsets expired or a copy of the file is restored.
//! - The event store: [`Warehouse::store_checkpoint`] (the position with its PostgreSQL
//!   `tx_id`, kept in the file), else `feed_offsets` ([`STORE_FEED`], partition 0, the next
//!   global position; enough for the embedded store, whose positions have `tx_id` 0).
//!
//! Throughput: a batch is mapped straight into Arrow builders, one record batch per table, off
//! the DuckDB thread (`rows::batch_rows`; event ids as native UUIDs, lists as lists, no row
//! kept on the way), then written
//! in one transaction: its `events` rows are appended to a staging table and moved with one
//! `INSERT … SELECT … ON CONFLICT DO NOTHING RETURNING`, and the modelled rows of the events
//! that went in are appended per table with DuckDB's appender.

mod checksum;
mod content;
pub mod export;
pub mod lag;
mod rebuild;
mod rows;
pub mod schema;
mod sink;
pub mod switch;
#[cfg(test)]
mod tests;
mod views;
mod writer;

use std::path::PathBuf;

pub use checksum::{Checksum, TableDigest};
pub use export::ExportedTable;
pub use lag::{Lag, StoreLag, Warning as LagWarning};
pub use rebuild::rebuild_path;
pub use sink::Warehouse;
pub use switch::{SwitchAck, SwitchRequest};
pub use views::SESSION_GAP_MINUTES;
pub use writer::TableCount;

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
    #[error("the content catalogue: {0}")]
    Content(#[from] chaos_domain::ContentError),
    #[error("switch: {0}")]
    Switch(String),
    #[error("the warehouse writer has stopped")]
    Closed,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
