//! The stored payload is a stable, documented shape: these golden payloads are what the event
//! store holds for each event type at its current version. A failing comparison means the shape
//! changed: add a new version and an upcaster instead.

use serde_json::json;

use super::*;
use crate::aggregate::{decode_stored, decode_stored_json, encode_stored, GameEvent};
use crate::content::Slot;

fn golden() -> Vec<(CharacterEvent, serde_json::Value)> {
    let at = "2026-11-21T12:00:00Z";
    let attacker = char_id(1).to_string();
    let change = |item: &str, quantity: u32, after: u32| ItemChange {
        item: item.into(),
        quantity,
        quantity_after: after,
    };
    vec![
        (
            created("mage"),
            json!({"CharacterCreated": {"owner": owner().to_string(), "name": "Aria",
                "class": "mage", "level": 1, "max_hp": 80, "max_mana": 120,
                "zone": "whispering_woods", "skills": ["strike", "fireball"], "created_at": at}}),
        ),
        (
            CharacterEvent::LeveledUp {
                level: 2,
                max_hp: 88,
                max_mana: 132,
                skills_unlocked: vec![],
                gold_reward: 20,
                leveled_at: t0(),
            },
            json!({"LeveledUp": {"level": 2, "max_hp": 88, "max_mana": 132,
                "skills_unlocked": [], "gold_reward": 20, "leveled_at": at}}),
        ),
        (
            CharacterEvent::SkillCast {
                skill: "fireball".into(),
                target: Some("wolf".into()),
                hit: Some(CastHit::Npc {
                    npc: "wolf".into(),
                    hp_before: 60,
                    damage: 28,
                    hp_after: 32,
                }),
                zone: "whispering_woods".into(),
                mana_before: 120,
                mana_cost: 30,
                mana_after: 90,
                damage: 30,
                cooldown_until: t0(),
                cast_at: t0(),
            },
            json!({"SkillCast": {"skill": "fireball", "target": "wolf",
                "hit": {"Npc": {"npc": "wolf", "hp_before": 60, "damage": 28, "hp_after": 32}},
                "zone": "whispering_woods", "mana_before": 120, "mana_cost": 30, "mana_after": 90,
                "damage": 30, "cooldown_until": at, "cast_at": at}}),
        ),
        (
            CharacterEvent::NpcKilled {
                npc: "wolf".into(),
                zone: "whispering_woods".into(),
                xp_reward: 12,
                loot_left: vec![ItemStack {
                    item: "wolf_pelt".into(),
                    quantity: 1,
                }],
                killed_at: t0(),
            },
            json!({"NpcKilled": {"npc": "wolf", "zone": "whispering_woods", "xp_reward": 12,
                "loot_left": [{"item": "wolf_pelt", "quantity": 1}], "killed_at": at}}),
        ),
        (
            CharacterEvent::DamageTaken {
                attacker: char_id(1),
                cause: "e1".into(),
                skill: "strike".into(),
                amount: 11,
                damage: 10,
                hp_before: 80,
                hp_after: 70,
                zone: "whispering_woods".into(),
                taken_at: t0(),
            },
            json!({"DamageTaken": {"attacker": attacker, "cause": "e1", "skill": "strike",
                "amount": 11, "damage": 10, "hp_before": 80, "hp_after": 70,
                "zone": "whispering_woods", "taken_at": at}}),
        ),
        (
            CharacterEvent::AttackMissed {
                attacker: char_id(1),
                cause: "e1".into(),
                skill: "strike".into(),
                reason: MissReason::TargetLeftZone,
                zone: "starter_meadow".into(),
                missed_at: t0(),
            },
            json!({"AttackMissed": {"attacker": attacker, "cause": "e1", "skill": "strike",
                "reason": "target-left-zone", "zone": "starter_meadow", "missed_at": at}}),
        ),
        (
            CharacterEvent::CharacterDied {
                killer: Some(char_id(1)),
                cause: "e1".into(),
                zone: "whispering_woods".into(),
                bounty_xp: 10,
                died_at: t0(),
            },
            json!({"CharacterDied": {"killer": attacker, "cause": "e1",
                "zone": "whispering_woods", "bounty_xp": 10, "died_at": at}}),
        ),
        (
            CharacterEvent::CharacterRespawned {
                from_zone: "whispering_woods".into(),
                zone: "starter_meadow".into(),
                hp: 80,
                mana: 120,
                respawned_at: t0(),
            },
            json!({"CharacterRespawned": {"from_zone": "whispering_woods",
                "zone": "starter_meadow", "hp": 80, "mana": 120, "respawned_at": at}}),
        ),
        (
            acquired("wolf_pelt", 2, 0),
            json!({"ItemsAcquired": {"items": [{"item": "wolf_pelt", "quantity": 2,
                "quantity_after": 2}], "source": "grant:test", "acquired_at": at}}),
        ),
        (
            CharacterEvent::ItemUsed {
                item: "health_potion".into(),
                quantity_after: 1,
                hp_before: 51,
                hp_after: 80,
                mana_before: 120,
                mana_after: 120,
                used_at: t0(),
            },
            json!({"ItemUsed": {"item": "health_potion", "quantity_after": 1, "hp_before": 51,
                "hp_after": 80, "mana_before": 120, "mana_after": 120, "used_at": at}}),
        ),
        (
            CharacterEvent::ItemDestroyed {
                item: "wolf_pelt".into(),
                quantity: 3,
                quantity_after: 2,
                destroyed_at: t0(),
            },
            json!({"ItemDestroyed": {"item": "wolf_pelt", "quantity": 3, "quantity_after": 2,
                "destroyed_at": at}}),
        ),
        (
            CharacterEvent::ItemCrafted {
                recipe: "health_potion".into(),
                consumed: vec![change("healing_herb", 2, 1)],
                produced: change("health_potion", 1, 1),
                crafted_at: t0(),
            },
            json!({"ItemCrafted": {"recipe": "health_potion",
                "consumed": [{"item": "healing_herb", "quantity": 2, "quantity_after": 1}],
                "produced": {"item": "health_potion", "quantity": 1, "quantity_after": 1},
                "crafted_at": at}}),
        ),
        (
            CharacterEvent::ItemEquipped {
                item: "ember_blade".into(),
                slot: Slot::MainHand,
                quantity_after: 0,
                replaced: Some(change("iron_sword", 1, 1)),
                max_hp: 238,
                max_mana: 68,
                hp: 238,
                mana: 68,
                equipped_at: t0(),
            },
            json!({"ItemEquipped": {"item": "ember_blade", "slot": "main_hand",
                "quantity_after": 0,
                "replaced": {"item": "iron_sword", "quantity": 1, "quantity_after": 1},
                "max_hp": 238, "max_mana": 68, "hp": 238, "mana": 68, "equipped_at": at}}),
        ),
        (
            CharacterEvent::ItemUnequipped {
                item: "apprentice_staff".into(),
                slot: Slot::MainHand,
                quantity_after: 1,
                max_hp: 80,
                max_mana: 120,
                hp: 80,
                mana: 120,
                unequipped_at: t0(),
            },
            json!({"ItemUnequipped": {"item": "apprentice_staff", "slot": "main_hand",
                "quantity_after": 1, "max_hp": 80, "max_mana": 120, "hp": 80, "mana": 120,
                "unequipped_at": at}}),
        ),
    ]
}

#[test]
fn stored_payloads_keep_their_documented_shape() {
    for (event, payload) in golden() {
        let name = event.type_name();
        assert_eq!(encode_stored(&event), payload, "{name}");
        let back =
            decode_stored::<Character>(name, &cqrs_es::DomainEvent::event_version(&event), payload)
                .unwrap();
        assert_eq!(back, event, "{name}");
        // The stores' path, straight from the text, agrees.
        let version = cqrs_es::DomainEvent::event_version(&event);
        let text = serde_json::to_string(&encode_stored(&event)).unwrap();
        let back = decode_stored_json::<Character>(name, &version, &text).unwrap();
        assert_eq!(back, event, "{name} from text");
    }
    // A PvP hit's target, too.
    let hit = CastHit::Character { id: char_id(2) };
    assert_eq!(
        serde_json::to_value(&hit).unwrap(),
        json!({"Character": {"id": char_id(2).to_string()}})
    );
}

/// `LeveledUp` v1 (before gold rewards) still loads: the upcaster gives it a reward of 0.
#[test]
fn level_ups_stored_in_the_old_shape_load_through_the_upcaster() {
    let v1 = json!({"LeveledUp": {"level": 3, "max_hp": 120, "max_mana": 144,
        "skills_unlocked": ["frost_nova"], "leveled_at": "2026-11-21T12:00:00Z"}});
    let event = decode_stored::<Character>("LeveledUp", "1", v1).unwrap();
    assert_eq!(
        event,
        CharacterEvent::LeveledUp {
            level: 3,
            max_hp: 120,
            max_mana: 144,
            skills_unlocked: vec!["frost_nova".into()],
            gold_reward: 0,
            leveled_at: t0(),
        }
    );
    assert_eq!(
        CharacterEvent::current_version("LeveledUp"),
        Some(2),
        "the current version is what new events are stored as"
    );
    // A version from a newer build, an unknown type, or a payload of another type is refused.
    let newer = decode_stored::<Character>("LeveledUp", "3", json!({}));
    assert!(newer.is_err());
    let unknown = decode_stored::<Character>("Teleported", "1", json!({}));
    assert!(unknown.is_err());
    let mismatch = decode_stored::<Character>("SkillCast", "2", encode_stored(&created("mage")));
    assert!(mismatch.is_err());
}

/// From the payload's text (the stores' path) an old shape still goes through the upcaster,
/// and the same rows are refused.
#[test]
fn the_text_path_upcasts_and_refuses_like_the_tree_path() {
    let v1 = r#"{"LeveledUp": {"level": 3, "max_hp": 120, "max_mana": 144,
        "skills_unlocked": ["frost_nova"], "leveled_at": "2026-11-21T12:00:00Z"}}"#;
    let event = decode_stored_json::<Character>("LeveledUp", "1", v1).unwrap();
    assert!(
        matches!(
            event,
            CharacterEvent::LeveledUp {
                level: 3,
                gold_reward: 0,
                ..
            }
        ),
        "{event:?}"
    );
    for (event_type, version, payload) in [
        ("LeveledUp", "3", "{}".to_owned()),
        ("Teleported", "1", "{}".to_owned()),
        (
            "SkillCast",
            "2",
            serde_json::to_string(&encode_stored(&created("mage"))).unwrap(),
        ),
        ("SkillCast", "2", "{not json".to_owned()),
    ] {
        let refused = decode_stored_json::<Character>(event_type, version, &payload);
        assert!(refused.is_err(), "{event_type} v{version} {payload}");
    }
}

/// `SkillCast` v1 (a free-text target, no typed hit) still loads: the upcaster says it hit
/// nothing the rules knew, and the old target text stays.
#[test]
fn casts_stored_in_the_old_shape_load_through_the_upcaster() {
    let v1 = json!({"SkillCast": {"skill": "fireball", "target": "wolf-17",
        "zone": "whispering_woods", "mana_before": 120, "mana_cost": 30, "mana_after": 90,
        "damage": 20, "cooldown_until": "2026-11-21T12:00:08Z",
        "cast_at": "2026-11-21T12:00:00Z"}});
    let event = decode_stored::<Character>("SkillCast", "1", v1).unwrap();
    assert_eq!(
        event,
        CharacterEvent::SkillCast {
            skill: "fireball".into(),
            target: Some("wolf-17".into()),
            hit: None,
            zone: "whispering_woods".into(),
            mana_before: 120,
            mana_cost: 30,
            mana_after: 90,
            damage: 20,
            cooldown_until: t0() + secs(8),
            cast_at: t0(),
        }
    );
    assert_eq!(CharacterEvent::current_version("SkillCast"), Some(2));
    // Every type has a stored version, and every type named in TYPES has a golden payload.
    let pinned: Vec<&str> = golden().iter().map(|(e, _)| e.type_name()).collect();
    for t in CharacterEvent::TYPES {
        assert!(
            pinned.contains(&t.name) || ["ExperienceGained", "ZoneEntered"].contains(&t.name),
            "{} has no golden payload",
            t.name
        );
    }
}
