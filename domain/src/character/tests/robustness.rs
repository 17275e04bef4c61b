//! Content changes: ids stored in events that the current content no longer has never make a
//! rule panic; decisions refuse with `content-unavailable` where they need the entry.

use proptest::prelude::*;

use super::*;
use crate::content::Slot;

/// A character whose class, zone and items the content has since dropped.
fn from_an_older_content() -> Vec<CharacterEvent> {
    vec![
        CharacterEvent::CharacterCreated {
            owner: owner(),
            name: CharacterName::parse("Relic").unwrap(),
            class: "bard".into(),
            level: 1,
            max_hp: 90,
            max_mana: 90,
            zone: "atlantis".into(),
            skills: vec!["lute_solo".into(), "strike".into()],
            created_at: t0(),
        },
        acquired("lute", 1, 0),
        CharacterEvent::ItemEquipped {
            item: "golden_lute".into(),
            slot: Slot::MainHand,
            quantity_after: 0,
            replaced: None,
            max_hp: 90,
            max_mana: 100,
            hp: 90,
            mana: 90,
            equipped_at: t0(),
        },
    ]
}

#[test]
fn dropped_content_is_a_rule_error_not_a_panic() {
    given(from_an_older_content())
        .when(cast("strike"))
        .then_expect_error(CharacterError::ContentUnavailable {
            kind: "zone",
            id: "atlantis".into(),
        });
    given(from_an_older_content())
        .when(cast("lute_solo"))
        .then_expect_error(CharacterError::UnknownSkill("lute_solo".into()));
    given(from_an_older_content())
        .when(CharacterCommand::UseItem {
            actor: owner(),
            item: "lute".into(),
        })
        .then_expect_error(CharacterError::ContentUnavailable {
            kind: "item",
            id: "lute".into(),
        });
    given(from_an_older_content())
        .when(CharacterCommand::GrantExperience {
            amount: 100,
            source: "gm".into(),
        })
        .then_expect_error(CharacterError::ContentUnavailable {
            kind: "class",
            id: "bard".into(),
        });
    // Leaving the dropped zone works, and so do destroying a dropped item and unequipping one
    // (the class being gone too, unequip cannot derive the stats: refused, not a panic).
    given(from_an_older_content())
        .when(CharacterCommand::TravelTo {
            actor: owner(),
            zone: "starter_meadow".into(),
        })
        .then_expect_events(vec![CharacterEvent::ZoneEntered {
            from_zone: "atlantis".into(),
            to_zone: "starter_meadow".into(),
            entered_at: t0(),
        }]);
    given(from_an_older_content())
        .when(CharacterCommand::DestroyItem {
            actor: owner(),
            item: "lute".into(),
            quantity: 1,
        })
        .inspect_result()
        .expect("a dropped item can be destroyed");
    given(from_an_older_content())
        .when(CharacterCommand::UnequipItem {
            actor: owner(),
            slot: Slot::MainHand,
        })
        .then_expect_error(CharacterError::ContentUnavailable {
            kind: "class",
            id: "bard".into(),
        });
}

#[test]
fn an_equipped_item_the_content_dropped_gives_nothing_and_comes_off() {
    let history = vec![
        created("mage"),
        CharacterEvent::ItemEquipped {
            item: "golden_lute".into(),
            slot: Slot::MainHand,
            quantity_after: 0,
            replaced: None,
            max_hp: 80,
            max_mana: 150,
            hp: 80,
            mana: 120,
            equipped_at: t0(),
        },
    ];
    let events = decide_on(
        &history,
        CharacterCommand::UnequipItem {
            actor: owner(),
            slot: Slot::MainHand,
        },
        t0(),
        &LowestRoll,
    )
    .unwrap();
    assert!(matches!(
        &events[..],
        [CharacterEvent::ItemUnequipped {
            quantity_after: 1,
            max_mana: 120,
            ..
        }]
    ));
}

fn any_id() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("atlantis".to_owned()),
        Just("bard".to_owned()),
        Just("golden_lute".to_owned()),
        Just("wolf".to_owned()),
        Just("whispering_woods".to_owned()),
        Just("health_potion".to_owned()),
        Just("fireball".to_owned()),
        "[a-z]{1,8}",
    ]
}

proptest! {
    /// Any mix of stored ids, known or not, and any command: decide answers, never panics.
    #[test]
    fn no_command_panics_on_ids_the_content_lacks(
        class in any_id(), zone in any_id(), item in any_id(), skill in any_id(),
        npc_id in any_id(), recipe in any_id(), command in 0u8..12, quantity in 0u32..3,
    ) {
        let content = Content::builtin().unwrap();
        let history = vec![
            CharacterEvent::CharacterCreated {
                owner: owner(), name: CharacterName::parse("Prop").unwrap(), class: class.clone(),
                level: 1, max_hp: 50, max_mana: 50, zone: zone.clone(),
                skills: vec![skill.clone()], created_at: t0(),
            },
            acquired(&item, 2, 0),
            CharacterEvent::SkillCast {
                skill: skill.clone(), target: Some(npc_id.clone()),
                hit: Some(CastHit::Npc { npc: npc_id.clone(), hp_before: 9, damage: 1, hp_after: 8 }),
                zone: zone.clone(), mana_before: 50, mana_cost: 0, mana_after: 50, damage: 1,
                cooldown_until: t0(), cast_at: t0(),
            },
        ];
        let character = Character::fold(history);
        let command = match command {
            0 => cast_at(&skill, npc(&npc_id)),
            1 => cast(&skill),
            2 => CharacterCommand::TravelTo { actor: owner(), zone: zone.clone() },
            3 => CharacterCommand::UseItem { actor: owner(), item: item.clone() },
            4 => CharacterCommand::EquipItem { actor: owner(), item: item.clone(), slot: Slot::MainHand },
            5 => CharacterCommand::UnequipItem { actor: owner(), slot: Slot::MainHand },
            6 => CharacterCommand::DestroyItem { actor: owner(), item: item.clone(), quantity },
            7 => CharacterCommand::Craft { actor: owner(), recipe: recipe.clone() },
            8 => CharacterCommand::GrantExperience { amount: 500, source: "p".into() },
            9 => CharacterCommand::GrantItem { item: item.clone(), quantity: quantity + 1, source: "p".into() },
            10 => CharacterCommand::TakeDamage { attacker: char_id(9), cause: "c".into(),
                skill: skill.clone(), amount: 100, attacker_zone: zone.clone() },
            _ => CharacterCommand::Respawn { actor: owner() },
        };
        for now in [t0(), t0() + secs(3600)] {
            if let Ok(events) = character.decide(command.clone(), &ctx(&content, now)) {
                let mut after = character.clone();
                for e in events { cqrs_es::Aggregate::apply(&mut after, e); }
            }
        }
    }
}
