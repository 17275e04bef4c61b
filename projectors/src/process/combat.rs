//! `combat`: player-versus-player across two characters, never a two-aggregate transaction. A
//! cast that hit a character (its `SkillCast` on the attacker) becomes `TakeDamage` on the
//! victim, who decides what it does (a miss if it died or left the zone meanwhile); a death with
//! a killer becomes `AwardKill` on the killer. The mappings are the domain's
//! (`chaos_domain::character::process`): this manager only routes them.

use chaos_domain::character::process;
use chaos_domain::{Character, CharacterId};
use chaos_schemas::{AnyEvent, PublishedEvent};

use super::{ProcessManager, Step};

/// See the module documentation.
#[derive(Debug, Clone, Copy)]
pub struct Combat;

impl ProcessManager for Combat {
    fn name(&self) -> &'static str {
        "combat"
    }

    fn sources(&self) -> &'static [&'static str] {
        &[chaos_domain::character::AGGREGATE_TYPE]
    }

    fn event_types(&self) -> &'static [&'static str] {
        &["SkillCast", "CharacterDied"]
    }

    fn react(&self, event: &PublishedEvent) -> Vec<Step> {
        let AnyEvent::Character(e) = &event.event else {
            return Vec::new();
        };
        let Ok(me) = CharacterId::parse(&event.envelope.aggregate_id) else {
            return Vec::new();
        };
        let cause = event.envelope.event_id.to_string();
        process::damage_for_victim(me, &cause, e)
            .or_else(|| process::reward_for_killer(me, &cause, e))
            .map(|(to, command)| Step::command::<Character>(to.to_string(), command))
            .into_iter()
            .collect()
    }
}
