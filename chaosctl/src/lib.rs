//! `chaosctl`, the operators' tool, against the distributed deployment (PostgreSQL, Kafka, Redis,
//! MongoDB, the warehouse) or an embedded one (`--embedded <data dir>`: SQLite event store and read
//! models, DuckDB warehouse).
//!
//! - [`cli`]: arguments, help texts, exit codes.
//! - [`deploy`]: reaching the deployment's event store and read-model stores.
//! - one module per subcommand: [`history`], [`lag`], [`dead_letters`], [`relay`], [`verify`],
//!   [`rebuild`] ([`warehouse`]: the warehouse's); [`checksum`] is the read-model checksum `rebuild` prints and tests compare.
//! - [`progress`]: the progress bar or periodic lines of long runs; [`replay`]: a rebuild's
//!   replay of the event store (read ahead, written in parallel lanes).

pub mod checksum;
pub mod cli;
pub mod config;
pub mod dead_letters;
pub mod deploy;
pub mod history;
pub mod lag;
pub mod progress;
pub mod rebuild;
pub mod relay;
pub mod replay;
pub mod topics;
pub mod verify;
pub mod warehouse;

use std::process::ExitCode;

use cli::{Command, Parsed};

/// Exit codes (see `chaosctl --help`).
pub mod exit {
    pub const OK: u8 = 0;
    /// Differences found (verify), nothing found, or the operation failed.
    pub const FAILED: u8 = 1;
    pub const USAGE: u8 = 2;
    /// A dependency (PostgreSQL, Kafka, Redis, MongoDB, a data directory) cannot be reached.
    pub const UNREACHABLE: u8 = 3;
}

/// A usage error: exit 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// Marks an error as "cannot reach a dependency": exit 3.
#[derive(Debug, thiserror::Error)]
#[error("cannot reach {0}")]
pub struct Unreachable(pub String);

/// What every subcommand gets: the settings, the output mode, the deployment.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub settings: config::Settings,
    pub json: bool,
    /// `--embedded <data dir>`: the embedded deployment; else the distributed one.
    pub embedded: Option<std::path::PathBuf>,
}

impl Ctx {
    /// Prints a result: `json` with `--json`, else the human text.
    pub fn print(&self, json: &serde_json::Value, human: &str) {
        if self.json {
            println!("{}", serde_json::to_string_pretty(json).unwrap_or_default());
        } else {
            print!("{human}");
        }
    }
}

/// Runs the command line `args` (without the program name); returns the exit code.
pub async fn run(args: Vec<String>) -> ExitCode {
    let parsed = match cli::parse(&args) {
        Ok(Parsed::Help(text)) => {
            print!("{text}");
            return ExitCode::from(exit::OK);
        }
        Ok(Parsed::Run(p)) => p,
        Err(e) => {
            eprintln!("chaosctl: {e}\n(see `chaosctl --help`)");
            return ExitCode::from(exit::USAGE);
        }
    };
    init_logs();
    let settings: config::Settings = match chaos_platform::config::load_config_from(
        config::DEFAULTS,
        parsed.config.as_deref(),
        std::env::vars(),
    ) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("chaosctl: {e}");
            return ExitCode::from(exit::USAGE);
        }
    };
    let ctx = Ctx {
        settings,
        json: parsed.json,
        embedded: parsed.embedded,
    };
    let outcome = match parsed.command {
        Command::History { aggregate, id, at } => history::run(&ctx, &aggregate, &id, at).await,
        Command::Lag => lag::run(&ctx).await,
        Command::DeadLetters(c) => dead_letters::run(&ctx, c).await,
        Command::RelayStopped => relay::stopped(&ctx).await,
        Command::RelayAudit { since } => relay::audit(&ctx, since).await,
        Command::RelayResume { aggregate, id } => relay::resume(&ctx, &aggregate, &id).await,
        Command::Verify { model, sample } => verify::run(&ctx, model, sample).await,
        Command::Rebuild(args) => rebuild::run(&ctx, args).await,
        Command::Checksum { model, version } => checksum::run(&ctx, model, version).await,
    };
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("chaosctl: {e:#}");
            ExitCode::from(if e.downcast_ref::<Usage>().is_some() {
                exit::USAGE
            } else if e.downcast_ref::<Unreachable>().is_some() {
                exit::UNREACHABLE
            } else {
                exit::FAILED
            })
        }
    }
}

/// Warnings and errors of the libraries on stderr (`RUST_LOG` for more).
fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
