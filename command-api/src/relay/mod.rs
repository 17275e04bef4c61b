//! The relay: publishes every event in the store to Kafka, in order per aggregate, nothing lost.
//!
//! One instance is active at a time (a PostgreSQL session advisory lock); others wait and take
//! over when it dies. The active one reads the store in its gap-free global order from its
//! checkpoint, produces a batch with the idempotent producer, waits for every ack, and only
//! then saves the checkpoint. A crash between ack and checkpoint re-sends the batch: consumers
//! deduplicate by (aggregate, sequence). An event that can never be published stops only its own
//! aggregate's stream ([`streams`]); every other aggregate flows on.

mod config;
mod lock;
mod metrics;
mod publisher;
pub mod streams;

pub use config::{RelayConfig, Settings, DEFAULTS};
pub use lock::LeaderLock;
pub use metrics::RelayMetrics;
pub use publisher::{run, Relay};
