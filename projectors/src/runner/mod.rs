//! Feeding events to a projection: the batch logic shared by every feed, the Kafka consumer
//! loop, and the metrics.

mod batch;
mod kafka;
mod metrics;

pub use batch::{SheetProjection, Verdict};
pub use kafka::KafkaRunner;
pub use metrics::ProjectorMetrics;
