//! Feeding events to a projection: the batch logic shared by every feed, the Kafka consumer
//! loop, and the metrics.

mod heal;
mod kafka;
mod metrics;
mod sink;
mod store_feed;
mod trace;

pub use chaos_readmodel::Verdict;
pub use heal::{Guardian, StoreSource};
pub use kafka::{Batching, KafkaRunner, Until, FETCH_MIN_BYTES, STALL_AFTER};
pub use metrics::ProjectorMetrics;
pub use sink::{FeedOffset, ProjectionSink};
pub use store_feed::{
    CatchUp, DeadLetter, DeadLetterRecorder, FeedCheckpoint, PgCheckpoint, ReadModelCheckpoint,
    RecordedDeadLetter, ServedCheckpoint, SqliteCheckpoint, SqliteDeadLetters, StoreFeed,
};
