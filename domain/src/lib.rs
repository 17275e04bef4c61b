//! Chaos World's game rules.
//!
//! This crate is pure: no I/O, no clock reads, no randomness. Time and dice come in through the
//! [`ports`] traits so every rule is deterministic under test. Aggregates follow "decide, then
//! apply": a synchronous `decide` validates a command against the current state and returns the
//! events; `apply` folds an event into the state and never fails.

pub mod character;
pub mod content;
pub mod ids;
pub mod ports;

pub use character::{
    Character, CharacterCommand, CharacterError, CharacterEvent, CharacterServices,
};
pub use content::{Content, ContentError};
pub use ids::{AccountId, CharacterId, CharacterName, IdError};
pub use ports::{Clock, Dice};
