//! The `wallet` aggregate: a character's purse. Currencies are integers; every change is a named
//! event carrying its reason and a reference (the ledger), a balance never goes below zero, and a
//! reference is applied once. The wallet of a character has the character's id; the game opens it
//! when the character is created (process manager `rewards`).

mod aggregate;
mod command;
mod error;
mod event;
#[cfg(test)]
mod tests;

pub use aggregate::{Wallet, WalletState, REFERENCE_WINDOW};
pub use command::WalletCommand;
pub use error::WalletError;
pub use event::{Currency, WalletEvent};

/// The aggregate type name. Persisted in the event store and names the Kafka topic
/// `chaos.wallet.events`: do not change.
pub const AGGREGATE_TYPE: &str = "wallet";

/// The largest amount one grant or spend may carry.
pub const MAX_AMOUNT: u64 = 1_000_000_000;

/// The largest balance a wallet may hold in one currency.
pub const MAX_BALANCE: u64 = 1_000_000_000_000;

/// Longest reason (`source`/`sink`) and reference accepted.
pub const MAX_LABEL: usize = 64;
