//! Rebuilding the warehouse beside the live one, for the operators' tool.
//!
//! ```text
//! let target = Warehouse::open_rebuild(&live).await?            // <stem>.rebuild.duckdb
//!     .for_store_rebuild(1_000_000).await?;                    // big transactions, keys last
//! let feed = StoreFeed::new("warehouse-rebuild", log, Arc::new(target.clone()), metrics)
//!     .with_batch(20_000)
//!     .with_checkpoint(target.store_checkpoint());             // resumable: offsets in the file
//! feed.catch_up(feed.resume_position().await?, |p| ...).await?;
//! println!("{}", target.checksum().await?.digest);
//! target.switch_into(&live, Duration::from_secs(60)).await?;   // keys built, then super::switch
//! ```
//!
//! A Kafka rebuild feeds the target with a `KafkaRunner` in a consumer group of its own (its
//! offsets are the group's; the file's `feed_offsets` say how far it is complete).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chaos_domain::Content;
use chaos_eventstore::Position;

use super::sink::Warehouse;
use super::{Result, STORE_FEED};
use crate::runner::FeedCheckpoint;

/// `<dir>/<stem>.rebuild.duckdb` for the live file `<dir>/<stem>.duckdb`: beside it, so the
/// switch is a rename on one file system.
pub fn rebuild_path(live: &Path) -> PathBuf {
    let stem = live
        .file_stem()
        .map_or_else(|| "warehouse".into(), |s| s.to_string_lossy().into_owned());
    live.with_file_name(format!("{stem}.rebuild.duckdb"))
}

impl Warehouse {
    /// Opens the rebuild target of the live warehouse at `live` ([`rebuild_path`]): a fresh
    /// file, or the one an interrupted rebuild left (it resumes: its positions are in it). The
    /// target is a [`crate::runner::ProjectionSink`] like any warehouse.
    pub async fn open_rebuild(live: impl AsRef<Path>) -> Result<Self> {
        Self::open(rebuild_path(live.as_ref()))
            .await?
            .for_rebuild()
            .await
    }

    /// [`Self::open_rebuild`] with the content catalogue the process runs with.
    pub async fn open_rebuild_with_content(
        live: impl AsRef<Path>,
        content: Arc<Content>,
    ) -> Result<Self> {
        Self::open_with_content(rebuild_path(live.as_ref()), content)
            .await?
            .for_rebuild()
            .await
    }

    /// Tuned for a rebuild: checkpoints only after much more WAL
    /// (`super::writer::REBUILD_CHECKPOINT_THRESHOLD`); once switched in, the file is opened
    /// again with the live settings.
    pub async fn for_rebuild(self) -> Result<Self> {
        self.call(|w| w.set_checkpoint_threshold(super::writer::REBUILD_CHECKPOINT_THRESHOLD))
            .await?;
        Ok(self)
    }

    /// Tuned further for a rebuild fed by the event store (`StoreFeed` with
    /// [`Self::store_checkpoint`], which brings each event once): `events` is written without
    /// its keys, built once by [`Self::finish_rebuild`], and a transaction carries `commit_every`
    /// events with the feed's position (see `Writer::set_store_rebuild`). A kill loses at most
    /// the open transaction; the rebuild resumes from the position committed with the rows.
    /// Not for a Kafka feed, which can bring an event twice.
    pub async fn for_store_rebuild(self, commit_every: u64) -> Result<Self> {
        let this = self.for_rebuild().await?;
        this.call(move |w| w.set_store_rebuild(commit_every))
            .await?;
        Ok(this)
    }

    /// Ends the writing of a rebuild: commits, builds the keys of `events` if a store rebuild
    /// left them out (checking them: an event stored twice fails it) and checkpoints. The
    /// target takes no more store-rebuild transactions. [`Self::switch_into`] calls it; idempotent.
    pub async fn finish_rebuild(&self) -> Result<()> {
        self.call(|w| w.seal()).await
    }

    /// The consumer group a Kafka rebuild into this file uses: `<prefix>-rebuild-<id>`, made
    /// once and kept in the file, so an interrupted Kafka rebuild resumes from the group's
    /// offsets and a new rebuild (a new file) starts from the beginning of the topics.
    pub async fn rebuild_group(&self, prefix: &str) -> Result<String> {
        let fresh = format!("{prefix}-rebuild-{}", uuid::Uuid::new_v4().simple());
        self.call(move |w| w.meta_or_insert("kafka_group", &fresh))
            .await
    }

    /// The store feed's checkpoint kept in this file (the position with its `tx_id`, which the
    /// feed's offset alone lacks for PostgreSQL): `StoreFeed::with_checkpoint(...)` resumes from
    /// it. Saved right after each batch's commit, so it is never ahead of the rows: after a
    /// crash at most the last batch is read again, and refused as duplicates. In a store
    /// rebuild's target ([`Self::for_store_rebuild`]) it is saved inside the open transaction,
    /// so it commits with the rows it covers and no batch is read again.
    pub fn store_checkpoint(&self) -> Arc<dyn FeedCheckpoint> {
        Arc::new(WarehouseCheckpoint {
            warehouse: self.clone(),
        })
    }
}

#[derive(Debug)]
struct WarehouseCheckpoint {
    warehouse: Warehouse,
}

#[async_trait::async_trait]
impl FeedCheckpoint for WarehouseCheckpoint {
    async fn load(&self) -> anyhow::Result<Position> {
        Ok(self.warehouse.store_position(STORE_FEED).await?)
    }

    async fn save(&self, position: Position) -> anyhow::Result<()> {
        Ok(self
            .warehouse
            .save_store_position(STORE_FEED, position)
            .await?)
    }
}
