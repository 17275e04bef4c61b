use serde::{Deserialize, Serialize};

use crate::content::Slot;
use crate::ids::{AccountId, CharacterId, CharacterName};

/// What a caller asks of a character.
///
/// Player commands carry `actor`, the authenticated account; the rules check it owns the
/// character (`not-character-owner`). The others come from the game itself — game masters and
/// process managers — and have no actor ([`CharacterCommand::actor`] tells them apart).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CharacterCommand {
    // --- player commands --------------------------------------------------------------------
    Create {
        owner: AccountId,
        name: CharacterName,
        class: String,
    },
    /// Cast a skill, at nothing or at a target (offensive skills only).
    CastSkill {
        actor: AccountId,
        skill: String,
        target: Option<TargetRef>,
    },
    TravelTo {
        actor: AccountId,
        zone: String,
    },
    /// Come back after dying, at the zone's respawn point.
    Respawn {
        actor: AccountId,
    },
    /// Use one consumable from the bag.
    UseItem {
        actor: AccountId,
        item: String,
    },
    /// Wear an item from the bag in `slot` (which must be the item's); whatever was there goes
    /// back to the bag.
    EquipItem {
        actor: AccountId,
        item: String,
        slot: Slot,
    },
    UnequipItem {
        actor: AccountId,
        slot: Slot,
    },
    /// Throw away `quantity` (1..=[`super::MAX_ITEM_QUANTITY`]) of an item from the bag.
    DestroyItem {
        actor: AccountId,
        item: String,
        quantity: u32,
    },
    Craft {
        actor: AccountId,
        recipe: String,
    },

    // --- game and process-manager commands ---------------------------------------------------
    /// Experience granted by the game itself (quests, events, game masters).
    GrantExperience {
        amount: u64,
        source: String,
    },
    /// Items granted by the game itself (game masters, purchases, quest rewards). `source` is a
    /// label (1 to 64 visible characters) recorded in `ItemsAcquired` as `grant:<source>`.
    GrantItem {
        item: String,
        quantity: u32,
        source: String,
    },
    /// PvP step 1, on the victim: another character's cast hit this one. Built from the
    /// attacker's `SkillCast` by [`super::process::damage_for_victim`].
    TakeDamage {
        attacker: CharacterId,
        /// The attacker's `SkillCast` event id; a cause is applied once.
        cause: String,
        skill: String,
        /// The damage the attacker rolled (1..=[`super::MAX_DAMAGE`]), before this character's
        /// defense.
        amount: u32,
        /// Where the attacker cast it: the victim must still be there.
        attacker_zone: String,
    },
    /// PvP step 2, on the killer: the bounty for a kill. Built from the victim's
    /// `CharacterDied` by [`super::process::reward_for_killer`].
    AwardKill {
        victim: CharacterId,
        /// The victim's `CharacterDied` event id.
        cause: String,
        xp: u64,
    },
}

impl CharacterCommand {
    /// The acting account of a player command (the owner, for `Create`); `None` for the game's
    /// own commands, which the HTTP edge must only accept from game masters or process managers.
    pub fn actor(&self) -> Option<AccountId> {
        match self {
            Self::Create { owner: a, .. }
            | Self::CastSkill { actor: a, .. }
            | Self::TravelTo { actor: a, .. }
            | Self::Respawn { actor: a }
            | Self::UseItem { actor: a, .. }
            | Self::EquipItem { actor: a, .. }
            | Self::UnequipItem { actor: a, .. }
            | Self::DestroyItem { actor: a, .. }
            | Self::Craft { actor: a, .. } => Some(*a),
            Self::GrantExperience { .. }
            | Self::GrantItem { .. }
            | Self::TakeDamage { .. }
            | Self::AwardKill { .. } => None,
        }
    }
}

/// What a cast is aimed at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TargetRef {
    /// An NPC of the catalogue (`wolf`), which must live in the caster's zone.
    Npc { npc: String },
    /// Another character, as the caller last read it (its public profile). The attacker's
    /// decision trusts this snapshot — zone and alive — so it stays pure; the victim's own
    /// `TakeDamage` decision is the authoritative one.
    Character {
        id: CharacterId,
        zone: String,
        alive: bool,
    },
}

impl TargetRef {
    /// The target as text, as `SkillCast.target` records it: the NPC id or the character id.
    pub fn label(&self) -> String {
        match self {
            Self::Npc { npc } => npc.clone(),
            Self::Character { id, .. } => id.to_string(),
        }
    }
}
