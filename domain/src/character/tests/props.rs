//! Property tests: whatever players and the game ask, in any order and at any pace, the
//! character's invariants hold.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::character::inventory::slots_used;
use crate::content::Slot;
use crate::stats::{derived_stats, Stats};

/// Seeded dice: varied rolls, reproducible per case.
#[derive(Debug)]
struct LcgDice(Mutex<u64>);

impl Dice for LcgDice {
    fn roll(&self, lo: u32, hi: u32) -> u32 {
        let mut s = self.0.lock().unwrap();
        *s = s
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let span = u64::from(hi.max(lo) - lo) + 1;
        lo + u32::try_from((*s >> 33) % span).unwrap()
    }
}

#[derive(Debug, Clone)]
enum Step {
    Cast {
        skill: usize,
        target: u8,
        pick: usize,
    },
    Travel(usize),
    Xp(u64),
    Grant(usize, u32),
    Use(usize),
    Equip(usize, usize),
    Unequip(usize),
    Destroy(usize, u32),
    Craft(usize),
    Hit(u32, bool),
    Respawn,
    Award(u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0usize..20, 0u8..3, 0usize..40).prop_map(|(skill, target, pick)| Step::Cast { skill, target, pick }),
        1 => (0usize..10).prop_map(Step::Travel),
        1 => (0u64..400).prop_map(Step::Xp),
        3 => (0usize..30, 0u32..120).prop_map(|(i, q)| Step::Grant(i, q)),
        2 => (0usize..30).prop_map(Step::Use),
        3 => (0usize..30, 0usize..12).prop_map(|(i, s)| Step::Equip(i, s)),
        2 => (0usize..12).prop_map(Step::Unequip),
        1 => (0usize..30, 0u32..60).prop_map(|(i, q)| Step::Destroy(i, q)),
        2 => (0usize..10).prop_map(Step::Craft),
        1 => (0u32..150, any::<bool>()).prop_map(|(a, same)| Step::Hit(a, same)),
        1 => Just(Step::Respawn),
        1 => (0u64..60).prop_map(Step::Award),
    ]
}

/// Every item the character has, in the bag or worn.
fn holdings(state: &CharacterState) -> BTreeMap<String, i64> {
    let mut all: BTreeMap<String, i64> = state
        .bag
        .iter()
        .map(|(i, q)| (i.clone(), i64::from(*q)))
        .collect();
    for item in state.equipment.values() {
        *all.entry(item.clone()).or_default() += 1;
    }
    all
}

/// Checks one event against the state it applies to: item moves are exactly what the event
/// says, and no quantity goes below zero. Returns the event's net change to the holdings.
fn check_item_event(
    state: &CharacterState,
    event: &CharacterEvent,
) -> Result<BTreeMap<String, i64>, TestCaseError> {
    let mut net: BTreeMap<String, i64> = BTreeMap::new();
    let mut bag = state.bag.clone();
    let take = |bag: &mut BTreeMap<String, u32>, item: &str, q: u32, after: u32| {
        let before = bag.get(item).copied().unwrap_or(0);
        prop_assert!(before >= q, "{item}: {q} taken from {before}");
        prop_assert_eq!(after, before - q);
        bag.insert(item.to_owned(), after);
        Ok(())
    };
    let give = |bag: &mut BTreeMap<String, u32>, item: &str, q: u32, after: u32| {
        let before = bag.get(item).copied().unwrap_or(0);
        prop_assert_eq!(after, before + q);
        bag.insert(item.to_owned(), after);
        Ok(())
    };
    match event {
        CharacterEvent::ItemsAcquired { items, .. } => {
            for c in items {
                prop_assert!(c.quantity >= 1);
                give(&mut bag, &c.item, c.quantity, c.quantity_after)?;
                *net.entry(c.item.clone()).or_default() += i64::from(c.quantity);
            }
        }
        CharacterEvent::ItemUsed {
            item,
            quantity_after,
            ..
        } => {
            take(&mut bag, item, 1, *quantity_after)?;
            *net.entry(item.clone()).or_default() -= 1;
        }
        CharacterEvent::ItemDestroyed {
            item,
            quantity,
            quantity_after,
            ..
        } => {
            take(&mut bag, item, *quantity, *quantity_after)?;
            *net.entry(item.clone()).or_default() -= i64::from(*quantity);
        }
        CharacterEvent::ItemCrafted {
            consumed, produced, ..
        } => {
            for c in consumed {
                take(&mut bag, &c.item, c.quantity, c.quantity_after)?;
                *net.entry(c.item.clone()).or_default() -= i64::from(c.quantity);
            }
            give(
                &mut bag,
                &produced.item,
                produced.quantity,
                produced.quantity_after,
            )?;
            *net.entry(produced.item.clone()).or_default() += i64::from(produced.quantity);
        }
        CharacterEvent::ItemEquipped {
            item,
            slot,
            quantity_after,
            replaced,
            ..
        } => {
            take(&mut bag, item, 1, *quantity_after)?;
            match (state.equipment.get(slot), replaced) {
                (None, None) => {}
                (Some(old), Some(c)) => {
                    prop_assert_eq!(old, &c.item);
                    give(&mut bag, &c.item, 1, c.quantity_after)?;
                }
                (old, new) => prop_assert!(false, "slot held {old:?}, event replaced {new:?}"),
            }
        }
        CharacterEvent::ItemUnequipped {
            item,
            slot,
            quantity_after,
            ..
        } => {
            prop_assert_eq!(state.equipment.get(slot), Some(item));
            give(&mut bag, item, 1, *quantity_after)?;
        }
        _ => {}
    }
    Ok(net)
}

fn check_state(content: &Content, s: &CharacterState) -> Result<(), TestCaseError> {
    prop_assert!(s.bag.values().all(|q| *q > 0), "a bag entry of 0");
    prop_assert!(slots_used(content, &s.bag) <= content.progression.bag_capacity);
    for (slot, item) in &s.equipment {
        let props = content.items[item].equip.as_ref().expect("equippable");
        prop_assert_eq!(props.slot, *slot);
        prop_assert!(s.level >= props.required_level);
        prop_assert!(props.open_to(&s.class));
    }
    let stats = content
        .stats_of(&s.class, s.level, s.equipment.values())
        .unwrap();
    prop_assert_eq!((s.max_hp, s.max_mana), (stats.max_hp, stats.max_mana));
    prop_assert!(s.hp <= s.max_hp && s.mana <= s.max_mana);
    prop_assert_eq!(s.alive(), s.hp > 0);
    prop_assert_eq!(
        s.level,
        content
            .level_for_xp(s.xp)
            .min(content.progression.max_level)
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Items change only through the named item events, by exactly what they say; stacks never
    /// go negative and the bag never overflows; worn equipment always meets its requirements;
    /// the stored maxima are always the derived stats; hit points and mana stay within them;
    /// the level matches the experience; a refused command changes nothing; and a state
    /// restored from a snapshot then fed the rest of the events equals the plain fold.
    #[test]
    fn character_invariants_hold_under_any_command_sequence(
        class in prop::sample::select(vec!["warrior", "mage", "ranger", "cleric"]),
        steps in prop::collection::vec((step(), 0u32..12_000), 1..100),
        seed in any::<u64>(),
        cut in 0usize..200,
    ) {
        let content = Content::builtin().unwrap();
        let dice = LcgDice(Mutex::new(seed));
        let skills: Vec<String> = content.skills.keys().cloned().collect();
        let zones: Vec<String> = content.zones.keys().cloned().collect();
        let npcs: Vec<String> = content.npcs.keys().cloned().collect();
        let items: Vec<String> = content.items.keys().cloned().collect();
        let recipes: Vec<String> = content.recipes.keys().cloned().collect();
        let wearables: Vec<String> = content.items.iter().filter(|(_, d)| d.equip.is_some()).map(|(i, _)| i.clone()).collect();
        let consumables: Vec<String> = content.items.iter().filter(|(_, d)| d.effect.is_some()).map(|(i, _)| i.clone()).collect();
        let slots = Slot::ALL;
        let mut now = t0();
        let mut history = vec![created(class)];
        let mut character = Character::fold(history.clone());
        for (i, (step, wait_ms)) in steps.into_iter().enumerate() {
            now += Duration::milliseconds(i64::from(wait_ms));
            let state = character.state().unwrap().clone();
            // Mostly sensible picks (the character's own skills, its zone's NPCs, wearables in
            // their slot, what the bag holds), sometimes anything at all.
            let known: Vec<&String> = state.skills.iter().collect();
            let here: &[String] = content.zones.get(&state.zone).map_or(&[], |z| &z.npcs);
            let held: Vec<&String> = state.bag.keys().collect();
            let command = match step {
                Step::Cast { skill, target, pick } => CharacterCommand::CastSkill {
                    actor: owner(),
                    skill: if pick % 7 == 0 { skills[skill % skills.len()].clone() } else { known[skill % known.len()].clone() },
                    target: match target {
                        0 => None,
                        1 if !here.is_empty() && pick % 5 != 0 => Some(npc(&here[pick % here.len()])),
                        1 => Some(npc(&npcs[pick % npcs.len()])),
                        _ => Some(TargetRef::Character {
                            id: char_id(7), zone: if pick % 3 == 0 { zones[pick % zones.len()].clone() } else { state.zone.clone() },
                            alive: pick % 5 != 0,
                        }),
                    },
                },
                Step::Travel(z) => CharacterCommand::TravelTo { actor: owner(), zone: zones[z % zones.len()].clone() },
                Step::Xp(amount) => CharacterCommand::GrantExperience { amount: amount / 4, source: "prop".into() },
                Step::Grant(item, quantity) => CharacterCommand::GrantItem {
                    item: items[item % items.len()].clone(), quantity, source: "prop".into(),
                },
                Step::Use(item) => CharacterCommand::UseItem {
                    actor: owner(),
                    item: if item % 5 == 0 { items[item % items.len()].clone() } else { consumables[item % consumables.len()].clone() },
                },
                Step::Equip(item, slot) => {
                    let item = wearables[item % wearables.len()].clone();
                    let own = content.items[&item].equip.as_ref().unwrap().slot;
                    CharacterCommand::EquipItem { actor: owner(), item, slot: if slot % 4 == 0 { slots[slot % slots.len()] } else { own } }
                }
                Step::Unequip(slot) => {
                    let worn: Vec<Slot> = state.equipment.keys().copied().collect();
                    let slot = if worn.is_empty() || slot % 4 == 0 { slots[slot % slots.len()] } else { worn[slot % worn.len()] };
                    CharacterCommand::UnequipItem { actor: owner(), slot }
                }
                Step::Destroy(item, quantity) => CharacterCommand::DestroyItem {
                    actor: owner(),
                    item: if held.is_empty() || item % 5 == 0 { items[item % items.len()].clone() } else { held[item % held.len()].clone() },
                    quantity: quantity % 8,
                },
                Step::Craft(r) => CharacterCommand::Craft { actor: owner(), recipe: recipes[r % recipes.len()].clone() },
                Step::Hit(amount, same) => CharacterCommand::TakeDamage {
                    attacker: char_id(7), cause: format!("cast-{i}"), skill: "strike".into(), amount,
                    attacker_zone: if same { state.zone.clone() } else { "elsewhere".into() },
                },
                Step::Respawn => CharacterCommand::Respawn { actor: owner() },
                Step::Award(xp) => CharacterCommand::AwardKill { victim: char_id(7), cause: format!("died-{i}"), xp },
            };
            let before = character.clone();
            let ctx = Ctx { content: &content, now, dice: &dice };
            match character.decide(command, &ctx) {
                Ok(events) => {
                    let mut declared: BTreeMap<String, i64> = BTreeMap::new();
                    for event in events {
                        let state = character.state().unwrap();
                        for (item, n) in check_item_event(state, &event)? {
                            *declared.entry(item).or_default() += n;
                        }
                        history.push(event.clone());
                        cqrs_es::Aggregate::apply(&mut character, event);
                    }
                    let (old, new) = (holdings(before.state().unwrap()), holdings(character.state().unwrap()));
                    let mut keys: Vec<&String> = old.keys().chain(new.keys()).chain(declared.keys()).collect();
                    keys.sort();
                    keys.dedup();
                    for item in keys {
                        let change = new.get(item).copied().unwrap_or(0) - old.get(item).copied().unwrap_or(0);
                        prop_assert_eq!(change, declared.get(item).copied().unwrap_or(0), "{}", item);
                    }
                }
                Err(_) => prop_assert_eq!(&character, &before),
            }
            check_state(&content, character.state().unwrap())?;
        }
        let cut = cut.min(history.len());
        let snapshot = serde_json::to_value(Character::fold(history[..cut].iter().cloned())).unwrap();
        let mut restored: Character = serde_json::from_value(snapshot).unwrap();
        for event in history[cut..].iter().cloned() {
            cqrs_es::Aggregate::apply(&mut restored, event);
        }
        prop_assert_eq!(&restored, &character);
        prop_assert_eq!(&Character::fold(history), &character);
    }

    /// Derived stats are a pure function of base, level and equipment: the formula, whatever
    /// the equipment's order, and the same through the by-id lookup.
    #[test]
    fn derived_stats_are_a_pure_function_of_base_level_and_equipment(
        class in prop::sample::select(vec!["warrior", "mage", "ranger", "cleric"]),
        level in 1u8..=20,
        picks in prop::collection::vec(0usize..40, 0..6),
    ) {
        let content = Content::builtin().unwrap();
        let wearable: Vec<(&String, &crate::content::ItemDef)> =
            content.items.iter().filter(|(_, d)| d.equip.is_some()).collect();
        let chosen: Vec<_> = picks.iter().map(|p| wearable[p % wearable.len()]).collect();
        let def = &content.classes[class];
        let stats = derived_stats(def, level, chosen.iter().map(|(_, d)| *d));
        let reversed = derived_stats(def, level, chosen.iter().rev().map(|(_, d)| *d));
        prop_assert_eq!(stats, reversed);
        let mut expected = def.base;
        for _ in 1..level {
            expected = expected.plus(def.per_level);
        }
        for (_, d) in &chosen {
            expected = expected.plus(d.equip.as_ref().unwrap().bonuses);
        }
        prop_assert_eq!(stats, expected);
        let ids: Vec<String> = chosen.iter().map(|(id, _)| (*id).clone()).collect();
        prop_assert_eq!(content.stats_of(class, level, ids.iter()), Some(stats));
        let bare: Stats = def.base.plus(def.per_level.times(u32::from(level - 1)));
        prop_assert_eq!(derived_stats(def, level, []), bare);
    }
}
