//! The port between a feed (Kafka, the event store) and a projection's sink.

use async_trait::async_trait;
use chaos_readmodel::{StoreError, Verdict, ViewProjection};
use chaos_schemas::PublishedEvent;

/// How far a feed has been handled: every message of `partition` below `next_offset` is done.
///
/// `next_offset` means what the feed says it means: the Kafka offset to read next, or the event
/// store reader's next global position (`partition` 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedOffset {
    /// The feed's name: the Kafka topic, or `store` for the event store.
    pub feed: String,
    pub partition: i32,
    pub next_offset: i64,
}

impl FeedOffset {
    pub fn new(feed: impl Into<String>, partition: i32, next_offset: i64) -> Self {
        Self {
            feed: feed.into(),
            partition,
            next_offset,
        }
    }
}

/// A projection as a feed sees it: batches of events in, one verdict per event out.
#[async_trait]
pub trait ProjectionSink: Send + Sync + std::fmt::Debug {
    /// A short name for logs (`sheets`, `warehouse`).
    fn name(&self) -> &str;

    /// Whether the sink does anything with events of this aggregate and event type. A feed
    /// acknowledges the others without decoding them (their verdict is `Ignored`). Only a sink
    /// that keeps no per-stream positions may say no: a view that tracks sequences must see
    /// every event of its streams, or it would take the skipped ones for gaps.
    fn wants(&self, _aggregate_type: &str, _event_type: &str) -> bool {
        true
    }

    /// Whether [`Self::wants`] may say no. A Kafka feed looks up a message's aggregate and
    /// event type (by its schema id, else its headers) only for a sink that filters: parsing
    /// the headers was 5-6 % of the Redis projector's CPU, for a sink that wants every event
    /// anyway.
    fn filters(&self) -> bool {
        false
    }

    /// Applies `events` (in feed order) and returns one verdict per event, in the same order.
    ///
    /// `checkpoint` is where the feed stands once this batch is handled (it also covers messages
    /// that never became events, such as undecodable ones). A sink that keeps its own
    /// checkpoints stores them in the same transaction as the writes; others ignore it.
    ///
    /// `Err` means the sink is unavailable: the feed retries the whole batch, so applying a
    /// batch again must be harmless (sinks are idempotent).
    async fn apply_batch(
        &self,
        events: &[PublishedEvent],
        checkpoint: &[FeedOffset],
    ) -> Result<Vec<Verdict>, StoreError>;

    /// The batch a feed will apply next, handed over while the batch before it is still being
    /// applied: a sink whose writes run on a thread of their own may do the next batch's CPU
    /// work now, beside the write in flight (the warehouse maps events to rows). A hint only:
    /// `apply_batch` must do the same with or without it, whatever batch comes. Default: nothing.
    fn prepare(&self, _events: &[PublishedEvent]) {}
}

#[async_trait]
impl ProjectionSink for ViewProjection {
    fn name(&self) -> &str {
        "views"
    }

    /// Documents carry their own per-stream positions, so the feed's checkpoint is not needed.
    async fn apply_batch(
        &self,
        events: &[PublishedEvent],
        _checkpoint: &[FeedOffset],
    ) -> Result<Vec<Verdict>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        ViewProjection::apply_batch(self, events).await
    }
}
