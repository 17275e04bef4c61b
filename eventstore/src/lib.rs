//! The event store beyond what postgres-es gives: the schema (with the `global_position` and
//! `tx_id` columns), the gap-free global-order reader that the relay and the store-fed replays
//! share, checkpoints, and the lookups the command side needs (idempotency, history).

mod error;
pub mod group_commit;
mod log;
pub mod pg;
pub mod publish;
pub mod sqlite;
pub mod testing;

pub use error::{Error, Result};
pub use log::{EventLog, Position, StoredEvent};
