//! The `character` aggregate: a player's hero. Created with a class from the catalogue, casts
//! skills that cost mana and have cooldowns, earns experience and levels up, travels between zones.

mod aggregate;
mod command;
mod decide;
mod error;
mod event;
mod state;
#[cfg(test)]
mod tests;

pub use aggregate::{Character, NAME_SCOPE};
pub use command::CharacterCommand;
pub use error::CharacterError;
pub use event::CharacterEvent;
pub use state::CharacterState;

/// The aggregate type name. It is persisted in the event store and names the Kafka topic
/// `chaos.character.events`: do not change.
pub const AGGREGATE_TYPE: &str = "character";
