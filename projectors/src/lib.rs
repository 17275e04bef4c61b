//! Projections and process managers: Kafka (or the event store) in; read models, warehouse rows
//! or commands out.
//!
//! - [`runner`]: the feeds — the Kafka consumer loop (decode, apply in batches, store offsets only
//!   after the sink acknowledged, dead-letter poison messages, export lag, ride out outages) and
//!   the store-fed feed (the embedded mode, rebuilds from PostgreSQL) — and the sink port.
//! - The read-model views live in `chaos_readmodel` (the query API reads the same store);
//!   `ViewProjection` is a sink here.
//! - [`warehouse`]: the analytics warehouse (DuckDB fact tables, Parquet exports).
//! - [`process`]: process managers (event in, command on another aggregate out).

pub mod config;
pub mod process;
pub mod runner;
pub mod warehouse;
