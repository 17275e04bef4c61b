//! The relay: publishes every event in the store to Kafka, in order per aggregate, nothing lost.
//!
//! One instance is active at a time (a PostgreSQL session advisory lock); others wait and take
//! over when it dies. The active one reads the store in its gap-free global order from its
//! checkpoint and hands batches to the idempotent producer, up to `max_in_flight` at a time
//! (reading the next batch overlaps the broker's round trip for the previous ones). Batches are
//! settled in order; a batch's position becomes the checkpoint only once it and every batch
//! before it are acknowledged (saved in the background, coalesced). A crash between ack and
//! checkpoint re-sends: consumers deduplicate by (aggregate, sequence). A failed delivery drops
//! everything in flight and re-sends from the last acknowledged position.

mod config;
mod lock;
mod metrics;
mod publisher;

pub use config::{RelayConfig, Settings, DEFAULTS};
pub use lock::LeaderLock;
pub use metrics::RelayMetrics;
pub use publisher::{run, Relay};
