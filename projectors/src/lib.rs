//! Projections: Kafka (or the event store) in, read models out.
//!
//! - [`readmodel`]: the read-model store port (versioned documents with compare-and-set) and its
//!   Redis implementation; the query API reads through the same port.
//! - [`sheet`]: the character-sheet projection, pure: a sheet and an event in, a sheet out.
//! - [`runner`]: the consumer loop: decode, apply in batches, store offsets only after the sink
//!   acknowledged, dead-letter poison messages, export lag.
//! - [`warehouse`]: the analytics warehouse (DuckDB fact tables, Parquet exports).

pub mod config;
pub mod readmodel;
pub mod runner;
pub mod sheet;
pub mod warehouse;
