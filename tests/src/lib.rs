//! Black-box end-to-end harness for Chaos World.
//!
//! Tests run the real binaries (`command-api`, `relay`, `projector`, `query-api`) as child
//! processes against the real local services (`deploy/local/services.sh up`), each test in its
//! own isolation: a fresh PostgreSQL database, a Kafka topic prefix, a Redis key prefix, a
//! consumer group and free ports, so tests run in parallel on one set of services.
//!
//! - [`services`]: where the shared services are (`services.sh env` variables, local defaults).
//! - [`process`]: one child process: spawn, wait for `/readyz`, `kill -9`, restart, kill on drop.
//! - [`stack`]: an isolated set of processes for one test.
//! - [`check`]: the shared end-to-end assertions (Kafka = store, sheets = folded store).
//! - [`client`]: HTTP clients for the command and query APIs.
//! - [`kafka`]: reads a whole topic and decodes it with the production Avro codec.
//! - [`mongo`]: `projector mongo` beside a stack, and its documents against the event store.
//! - [`scenario`]: the player core played over HTTP, the same in both modes.
//! - [`store`]: reads the event store and folds it with the domain's own `apply`.
//! - [`sheet`]: compares a query-API character sheet with the folded state.
//! - [`wait`]: condition polling with a deadline (never fixed sleeps).
//! - [`stats`]: percentiles for the load generator.
//! - [`history`]: a long synthetic history for the rebuild and relay benchmarks.
//!
//! The binaries are looked up next to the test executable (`target/<profile>/`), or in
//! `CHAOS_BIN_DIR`; build them first with `cargo build --workspace --bins` (`./test.sh` does).

pub mod check;
pub mod client;
pub mod history;
pub mod kafka;
pub mod mongo;
pub mod process;
pub mod scenario;
pub mod services;
pub mod sheet;
pub mod stack;
pub mod stats;
pub mod store;
pub mod wait;

pub use client::{CommandAnswer, CommandApi, Player, QueryApi, Reply};
pub use process::ServiceProcess;
pub use services::ServiceUrls;
pub use stack::{Isolation, Stack, StackOptions};
pub use wait::{wait_for_more, wait_until};
