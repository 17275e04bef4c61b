//! The `character` aggregate: a player's hero — the actor core, its bag and its equipment.
//!
//! Created with a class from the catalogue; casts skills that cost mana and have cooldowns, at
//! nothing, at an NPC or at another character; earns experience and levels up; travels between
//! zones; dies and respawns; carries items, uses, equips, destroys and crafts them.
//!
//! # Design
//! - **One consistency boundary.** The bag (stacks by item, capacity in slots) and the equipment
//!   are part of the character, not an aggregate of their own: using a potion, equipping,
//!   crafting and the derived stats a cast uses are all decided atomically on one stream
//!   (snapshots keep long streams cheap). The wallet stays its own aggregate.
//! - **Derived stats** come from one pure function, [`crate::stats::derived_stats`] (class base
//!   stats, level, equipment), used by every decision and exported for read models. Hit points
//!   and mana are stored *as of* an instant and regenerate at the derived rates when a rule
//!   reads them (`hp_as_of`, `mana_as_of`).
//! - **NPC combat** is decided entirely on the attacker: NPCs are content, not aggregates. The
//!   NPC a character fights lives in its state (an [`Encounter`]: hit points left); damage is
//!   the dice plus the caster's scaling stat, less the NPC's defense; a kill awards the NPC's
//!   experience and rolls its loot table with the dice into the bag. Loot that does not fit in
//!   a full bag is left behind, and `NpcKilled.loot_left` names it.
//! - **PvP** takes two aggregates, so it is a process manager, never a two-stream transaction:
//!   1. the attacker's cast is decided on the attacker against the target snapshot the caller
//!      passes ([`TargetRef::Character`]: zone, alive) — zone rules (safe zones forbid offensive
//!      skills, only PvP zones allow PvP), same zone, alive, mana, cooldown — and records the
//!      damage rolled (`SkillCast` with `hit = CastHit::Character`);
//!   2. [`process::damage_for_victim`] maps that event to [`CharacterCommand::TakeDamage`] on
//!      the victim, whose decision is authoritative: a victim that died or left the zone since
//!      (or whose zone no longer allows PvP) records a harmless `AttackMissed` — an event, not a
//!      rule error, so the process manager's step succeeds instead of dead-lettering a normal
//!      race; otherwise `DamageTaken` (after the victim's defense) and, at 0 hit points,
//!      `CharacterDied` naming the killer and the bounty;
//!   3. [`process::reward_for_killer`] maps the death to [`CharacterCommand::AwardKill`] on the
//!      killer (experience).
//!
//!   Each step is idempotent twice over: the process manager's idempotency key (from the causing
//!   event's id), and the victim's memory of the last [`RECENT_HITS`] causes (`duplicate-hit`).
//!   A character does not know its own id, so the mappings (not the cast) refuse to turn a hit
//!   on oneself into damage; the HTTP edge should refuse such a target too.
//! - **Content changes never panic.** Rules look up every stored id (zone, class, equipped
//!   items) with `get` and refuse with `content-unavailable` when it is gone; `apply` never
//!   consults content. Equipped items the content dropped give no bonus and can still be
//!   unequipped and destroyed.
//! - **Quantities** are validated here too, not only at the HTTP edge (1..=[`MAX_ITEM_QUANTITY`]
//!   items, 1..=[`MAX_DAMAGE`] damage); player commands carry the acting account and the rules
//!   check ownership (`not-character-owner`).

mod aggregate;
mod combat;
mod command;
mod decide;
mod error;
mod event;
mod inventory;
pub mod process;
mod state;
#[cfg(test)]
mod tests;

pub use aggregate::{Character, NAME_SCOPE};
pub use command::{CharacterCommand, TargetRef};
pub use error::CharacterError;
pub use event::{CastHit, CharacterEvent, ItemChange, ItemStack, MissReason};
pub use state::{CharacterState, Encounter};

/// The aggregate type name. It is persisted in the event store and names the Kafka topic
/// `chaos.character.events`: do not change.
pub const AGGREGATE_TYPE: &str = "character";

/// The most items one command may move (destroy, grant).
pub const MAX_ITEM_QUANTITY: u32 = 9_999;

/// The most damage one PvP hit may carry.
pub const MAX_DAMAGE: u32 = 1_000_000;

/// Experience one grant (or one kill bounty) may carry.
pub const MAX_GRANT: u64 = 1_000_000;

/// How many causes of received attacks a character remembers to refuse a repeat.
pub const RECENT_HITS: usize = 64;

/// Longest free-text label (a grant's source, a hit's cause) accepted.
pub const MAX_LABEL: usize = 64;
