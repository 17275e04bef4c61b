//! Service plumbing shared by every Chaos World process: layered configuration, telemetry,
//! Prometheus metrics and health endpoints, Kafka client settings and graceful shutdown.

pub mod auth;
pub mod config;
pub mod game;
pub mod http;
pub mod kafka;
pub mod metrics;
pub mod openapi;
pub mod shutdown;
pub mod telemetry;

/// Re-exported so services build routers against the same axum version.
pub use axum;
pub use config::{load_config, ConfigError};
pub use shutdown::shutdown_signal;

/// The allocator every service binary installs (`#[global_allocator]` in each `main.rs`):
/// under load glibc's malloc/free took a fifth of the relay's and the command API's CPU.
pub type Allocator = mimalloc::MiMalloc;
/// The value to install: `static GLOBAL: chaos_platform::Allocator = chaos_platform::ALLOCATOR;`.
pub const ALLOCATOR: Allocator = mimalloc::MiMalloc;
