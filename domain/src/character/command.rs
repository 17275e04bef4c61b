use serde::{Deserialize, Serialize};

use crate::ids::{AccountId, CharacterName};

/// What a caller asks of a character. `actor` is the authenticated account; the rules check it
/// owns the character.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CharacterCommand {
    Create {
        owner: AccountId,
        name: CharacterName,
        class: String,
    },
    CastSkill {
        actor: AccountId,
        skill: String,
        target: Option<String>,
    },
    TravelTo {
        actor: AccountId,
        zone: String,
    },
    /// Experience granted by the game itself (quests, events); not a player's command.
    GrantExperience {
        amount: u64,
        source: String,
    },
}
