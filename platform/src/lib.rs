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

/// Turns transparent huge pages off for this process; every binary calls it first thing.
/// mimalloc asks the kernel for huge pages on its arenas, so a fault on fresh memory zeroes
/// 2 MiB at once: in a Redis rebuild (1,000,000 events in batches of 200,000) the kernel's page
/// zeroing was 16–27 % of chaosctl's samples, and with huge pages off the rebuild ran at
/// 219,000–248,000 events/s against 183,000–209,000 (3 runs each, alternating); the command
/// benchmark did not change (4,404/4,436 against 4,408/4,361 commands/s). Only this process:
/// the machine's setting is left alone. Best effort: a kernel that refuses changes nothing else.
pub fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(e) = nix::sys::prctl::set_thp_disable(true) {
        eprintln!("could not turn transparent huge pages off for this process: {e}");
    }
}
