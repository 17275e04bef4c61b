//! Read models: the store port both sides use (the projectors write, the query API reads), its
//! Redis, MongoDB, SQLite and in-memory implementations, the views (how events become documents)
//! and the batch projection that applies events to views exactly once per source stream.
//!
//! A crate of its own so the query API links only what reading needs: no Kafka, no DuckDB.

pub mod keys;
mod memory;
pub mod mongo;
pub mod projection;
pub mod redis;
mod served;
mod sqlite;
pub mod store;
pub mod view;
pub mod views;

pub use keys::Keys;
pub use memory::MemoryStore;
pub use mongo::{MongoConfig, MongoRole, MongoStore, MongoUser};
pub use projection::{StreamSource, Verdict, ViewProjection};
pub use redis::{RedisConfig, RedisStore};
pub use served::Served;
pub use sqlite::SqliteStore;
pub use store::{
    BoardOp, Body, CasWrite, Document, DocumentStore, KeyKind, LogAppend, ScanPage, StoreError,
};
pub use view::{Change, LogEntry, View};
