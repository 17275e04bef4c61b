//! The event store and the write model on it.
//!
//! - The schema (postgres-es's `events` table plus `global_position` and `tx_id`), the gap-free
//!   global-order reader the relay and the store-fed replays share ([`EventLog`]), checkpoints.
//! - [`repository::Repository`]: PostgreSQL (postgres-es reads, group-committed appends) or the
//!   embedded SQLite store, behind cqrs-es's `PersistedEventRepository`.
//! - [`command::CommandService`]: command handling for any [`chaos_domain::GameAggregate`] —
//!   idempotency, per-aggregate turns, the aggregate cache, snapshots, reservations.

pub mod cache;
pub mod command;
mod copy_out;
mod error;
pub mod group_commit;
pub mod locks;
mod log;
pub mod pg;
pub mod publish;
pub mod repository;
pub mod reservations;
pub mod snapshot;
pub mod sqlite;
pub mod testing;
pub mod watch;

pub use command::{
    CommandContext, CommandError, CommandOutcome, CommandService, CommandSettings, StoreError,
};
pub use error::{Error, Result};
pub use log::{Backlog, EventLog, JsonText, Metadata, Position, StoredEvent};
