//! A character event's modelled rows. Every event type has at least one (`match` without a
//! wildcard: a new event type does not compile until it is modelled here).

use chaos_domain::{CastHit, CharacterEvent, ItemChange};

use super::{
    bigint, int, kind_of, signed, text, text_opt, texts, timestamp, Cell, Envelope, Tables,
};
use crate::warehouse::schema;

pub(super) fn rows(at: &Envelope<'_>, event: &CharacterEvent, out: &mut Tables) {
    let id = || at.event_id.clone();
    let character = || at.aggregate();
    let sequence = || at.sequence.clone();
    match event {
        CharacterEvent::CharacterCreated {
            owner,
            name,
            class,
            level,
            max_hp,
            max_mana,
            zone,
            skills,
            created_at,
        } => out.push((
            schema::CHARACTERS,
            vec![
                character(),
                id(),
                text(&owner.to_string()),
                text(name.as_str()),
                text(class),
                Cell::SmallInt(i16::from(*level)),
                int(*max_hp),
                int(*max_mana),
                text(zone),
                texts(skills),
                timestamp(*created_at),
            ],
        )),
        CharacterEvent::SkillCast {
            skill,
            target,
            hit,
            zone,
            mana_before,
            mana_cost,
            mana_after,
            damage,
            cooldown_until,
            cast_at,
        } => {
            out.push((
                schema::SKILL_CASTS,
                vec![
                    id(),
                    character(),
                    sequence(),
                    text(skill),
                    text_opt(target.as_deref()),
                    text(zone),
                    int(*mana_before),
                    int(*mana_cost),
                    int(*mana_after),
                    int(*damage),
                    timestamp(*cooldown_until),
                    timestamp(*cast_at),
                ],
            ));
            let hit = match hit {
                None => None,
                Some(CastHit::Npc {
                    npc,
                    hp_before,
                    damage: dealt,
                    hp_after,
                }) => Some((
                    "npc",
                    text(npc),
                    int(*dealt),
                    int(*hp_before),
                    int(*hp_after),
                )),
                Some(CastHit::Character { id: victim }) => Some((
                    "character",
                    Cell::Text(victim.to_string().into()),
                    Cell::Null,
                    Cell::Null,
                    Cell::Null,
                )),
            };
            if let Some((kind, target, dealt, hp_before, hp_after)) = hit {
                out.push((
                    schema::CAST_HITS,
                    vec![
                        id(),
                        character(),
                        sequence(),
                        text(skill),
                        text(zone),
                        text(kind),
                        target,
                        int(*damage),
                        dealt,
                        hp_before,
                        hp_after,
                        timestamp(*cast_at),
                    ],
                ));
            }
        }
        CharacterEvent::ExperienceGained {
            amount,
            total_xp,
            source,
            gained_at,
        } => out.push((
            schema::EXPERIENCE_GAINS,
            vec![
                id(),
                character(),
                sequence(),
                bigint(*amount),
                bigint(*total_xp),
                text(source),
                timestamp(*gained_at),
            ],
        )),
        CharacterEvent::LeveledUp {
            level,
            max_hp,
            max_mana,
            skills_unlocked,
            gold_reward,
            leveled_at,
        } => out.push((
            schema::LEVEL_UPS,
            vec![
                id(),
                character(),
                sequence(),
                Cell::SmallInt(i16::from(*level)),
                int(*max_hp),
                int(*max_mana),
                texts(skills_unlocked),
                timestamp(*leveled_at),
                bigint(*gold_reward),
            ],
        )),
        CharacterEvent::ZoneEntered {
            from_zone,
            to_zone,
            entered_at,
        } => out.push((
            schema::ZONE_ENTRIES,
            vec![
                id(),
                character(),
                sequence(),
                text(from_zone),
                text(to_zone),
                timestamp(*entered_at),
            ],
        )),
        CharacterEvent::NpcKilled {
            npc,
            zone,
            xp_reward,
            loot_left,
            killed_at,
        } => {
            let left: u64 = loot_left.iter().map(|s| u64::from(s.quantity)).sum();
            out.push((
                schema::NPC_KILLS,
                vec![
                    id(),
                    character(),
                    sequence(),
                    text(npc),
                    text(zone),
                    int(*xp_reward),
                    signed(i64::try_from(left).unwrap_or(i64::MAX)),
                    timestamp(*killed_at),
                ],
            ));
            for (line, stack) in loot_left.iter().enumerate() {
                out.push((
                    schema::LOOT_LEFT,
                    vec![
                        id(),
                        line_no(line),
                        character(),
                        text(npc),
                        text(zone),
                        text(&stack.item),
                        int(stack.quantity),
                        timestamp(*killed_at),
                    ],
                ));
            }
        }
        CharacterEvent::DamageTaken {
            attacker,
            cause,
            skill,
            amount,
            damage,
            hp_before,
            hp_after,
            zone,
            taken_at,
        } => out.push((
            schema::PVP_DAMAGE,
            vec![
                id(),
                character(),
                sequence(),
                text(&attacker.to_string()),
                text(cause),
                text(skill),
                int(*amount),
                int(*damage),
                int(*hp_before),
                int(*hp_after),
                text(zone),
                timestamp(*taken_at),
            ],
        )),
        CharacterEvent::AttackMissed {
            attacker,
            cause,
            skill,
            reason,
            zone,
            missed_at,
        } => out.push((
            schema::ATTACK_MISSES,
            vec![
                id(),
                character(),
                sequence(),
                text(&attacker.to_string()),
                text(cause),
                text(skill),
                text(reason.as_str()),
                text(zone),
                timestamp(*missed_at),
            ],
        )),
        CharacterEvent::CharacterDied {
            killer,
            cause,
            zone,
            bounty_xp,
            died_at,
        } => out.push((
            schema::DEATHS,
            vec![
                id(),
                character(),
                sequence(),
                text_opt(killer.map(|k| k.to_string()).as_deref()),
                text(cause),
                text(zone),
                bigint(*bounty_xp),
                timestamp(*died_at),
            ],
        )),
        CharacterEvent::CharacterRespawned {
            from_zone,
            zone,
            hp,
            mana,
            respawned_at,
        } => out.push((
            schema::RESPAWNS,
            vec![
                id(),
                character(),
                sequence(),
                text(from_zone),
                text(zone),
                int(*hp),
                int(*mana),
                timestamp(*respawned_at),
            ],
        )),
        CharacterEvent::ItemsAcquired {
            items,
            source,
            acquired_at,
        } => {
            let mut flows = Flows::new(at, *acquired_at, out);
            for change in items {
                flows.push(change, "acquired", Some(source), 1);
            }
        }
        CharacterEvent::ItemUsed {
            item,
            quantity_after,
            hp_before,
            hp_after,
            mana_before,
            mana_after,
            used_at,
        } => {
            out.push((
                schema::ITEM_USES,
                vec![
                    id(),
                    character(),
                    sequence(),
                    text(item),
                    int(*quantity_after),
                    int(*hp_before),
                    int(*hp_after),
                    int(*mana_before),
                    int(*mana_after),
                    timestamp(*used_at),
                ],
            ));
            Flows::new(at, *used_at, out).push(&change(item, 1, *quantity_after), "used", None, -1);
        }
        CharacterEvent::ItemDestroyed {
            item,
            quantity,
            quantity_after,
            destroyed_at,
        } => Flows::new(at, *destroyed_at, out).push(
            &change(item, *quantity, *quantity_after),
            "destroyed",
            None,
            -1,
        ),
        CharacterEvent::ItemCrafted {
            recipe,
            consumed,
            produced,
            crafted_at,
        } => {
            let ingredients: u64 = consumed.iter().map(|c| u64::from(c.quantity)).sum();
            out.push((
                schema::CRAFTS,
                vec![
                    id(),
                    character(),
                    sequence(),
                    text(recipe),
                    text(&produced.item),
                    int(produced.quantity),
                    signed(i64::try_from(ingredients).unwrap_or(i64::MAX)),
                    timestamp(*crafted_at),
                ],
            ));
            for (line, c) in consumed.iter().enumerate() {
                out.push((
                    schema::CRAFT_INGREDIENTS,
                    vec![
                        id(),
                        line_no(line),
                        character(),
                        text(recipe),
                        text(&c.item),
                        int(c.quantity),
                        timestamp(*crafted_at),
                    ],
                ));
            }
            let source = format!("craft:{recipe}");
            let mut flows = Flows::new(at, *crafted_at, out);
            for c in consumed {
                flows.push(c, "consumed", Some(&source), -1);
            }
            flows.push(produced, "crafted", Some(&source), 1);
        }
        CharacterEvent::ItemEquipped {
            item,
            slot,
            quantity_after,
            replaced,
            max_hp,
            max_mana,
            hp,
            mana,
            equipped_at,
        } => {
            out.push((
                schema::EQUIPMENT_CHANGES,
                vec![
                    id(),
                    character(),
                    sequence(),
                    text("equipped"),
                    text(item),
                    text(slot.as_str()),
                    text_opt(replaced.as_ref().map(|r| r.item.as_str())),
                    int(*max_hp),
                    int(*max_mana),
                    int(*hp),
                    int(*mana),
                    timestamp(*equipped_at),
                ],
            ));
            let mut flows = Flows::new(at, *equipped_at, out);
            flows.push(&change(item, 1, *quantity_after), "equipped", None, -1);
            if let Some(r) = replaced {
                flows.push(r, "replaced", None, 1);
            }
        }
        CharacterEvent::ItemUnequipped {
            item,
            slot,
            quantity_after,
            max_hp,
            max_mana,
            hp,
            mana,
            unequipped_at,
        } => {
            out.push((
                schema::EQUIPMENT_CHANGES,
                vec![
                    id(),
                    character(),
                    sequence(),
                    text("unequipped"),
                    text(item),
                    text(slot.as_str()),
                    Cell::Null,
                    int(*max_hp),
                    int(*max_mana),
                    int(*hp),
                    int(*mana),
                    timestamp(*unequipped_at),
                ],
            ));
            Flows::new(at, *unequipped_at, out).push(
                &change(item, 1, *quantity_after),
                "unequipped",
                None,
                1,
            );
        }
    }
}

fn change(item: &str, quantity: u32, quantity_after: u32) -> ItemChange {
    ItemChange {
        item: item.to_owned(),
        quantity,
        quantity_after,
    }
}

fn line_no(line: usize) -> Cell<'static> {
    Cell::Int(i32::try_from(line).unwrap_or(i32::MAX))
}

/// An event's `item_flows` rows, numbered from 0 in the order they are pushed.
struct Flows<'a, 'o> {
    at: &'a Envelope<'a>,
    time: Cell<'static>,
    out: &'o mut Tables,
    line: usize,
}

impl<'a, 'o> Flows<'a, 'o> {
    fn new(at: &'a Envelope<'a>, time: chrono::DateTime<chrono::Utc>, out: &'o mut Tables) -> Self {
        Self {
            at,
            time: timestamp(time),
            out,
            line: 0,
        }
    }

    /// `sign` is +1 for items into the bag, -1 for items out of it.
    fn push(&mut self, c: &ItemChange, flow: &str, source: Option<&str>, sign: i64) {
        self.out.push((
            schema::ITEM_FLOWS,
            vec![
                self.at.event_id.clone(),
                line_no(self.line),
                self.at.aggregate(),
                self.at.sequence.clone(),
                text(&c.item),
                text(flow),
                text_opt(source),
                source.map_or(Cell::Null, kind_of),
                int(c.quantity),
                signed(sign * i64::from(c.quantity)),
                int(c.quantity_after),
                self.time.clone(),
            ],
        ));
        self.line += 1;
    }
}
