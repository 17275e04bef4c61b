//! Chaos World's game rules.
//!
//! This crate is pure: no I/O (one exception: [`Content::from_dir`] reads the content files at
//! start-up), no clock reads, no randomness. Time and dice come in through the
//! [`ports`] traits so every rule is deterministic under test. Aggregates follow "decide, then
//! apply": a synchronous [`GameAggregate::decide`] validates a command against the current state
//! and returns the events; `apply` folds an event into the state and never fails.
//!
//! Every aggregate implements [`GameAggregate`] (and cqrs-es's `Aggregate` as a thin wrapper);
//! the rest of the system is generic over it.

pub mod aggregate;
pub mod character;
pub mod content;
pub mod ids;
pub mod ports;
pub mod stats;
pub mod wallet;

pub use aggregate::{
    decode_stored, decode_stored_json, encode_stored, encode_stored_text, Ctx, EventType,
    GameAggregate, GameEvent, GameServices, Reservation, RuleError, RuleKind, StoredEventError,
};
pub use character::{
    CastHit, Character, CharacterCommand, CharacterError, CharacterEvent, ItemChange, ItemStack,
    MissReason, TargetRef,
};
pub use content::{Content, ContentError, Slot};
pub use ids::{AccountId, CharacterId, CharacterName, IdError};
pub use ports::{Clock, Dice};
pub use stats::{derived_stats, Stats};
pub use wallet::{Currency, Wallet, WalletCommand, WalletError, WalletEvent};
