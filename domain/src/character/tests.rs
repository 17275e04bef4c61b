use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use proptest::prelude::*;

use super::*;
use crate::aggregate::{decode_stored, encode_stored, Ctx, GameAggregate, GameEvent, GameServices};
use crate::content::Content;
use crate::ids::{AccountId, CharacterName};
use crate::ports::{FixedClock, LowestRoll};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).unwrap()
}

fn owner() -> AccountId {
    AccountId::from_uuid(uuid::Uuid::from_u128(1))
}

fn services_at(now: DateTime<Utc>) -> GameServices {
    GameServices {
        content: Arc::new(Content::builtin().unwrap()),
        clock: Arc::new(FixedClock(now)),
        dice: Arc::new(LowestRoll),
    }
}

fn ctx(content: &Content, now: DateTime<Utc>) -> Ctx<'_> {
    Ctx {
        content,
        now,
        dice: &LowestRoll,
    }
}

fn created(class: &str) -> CharacterEvent {
    let content = Content::builtin().unwrap();
    let def = &content.classes[class];
    CharacterEvent::CharacterCreated {
        owner: owner(),
        name: CharacterName::parse("Aria").unwrap(),
        class: class.into(),
        level: 1,
        max_hp: def.max_hp(1),
        max_mana: def.max_mana(1),
        zone: "whispering_woods".into(),
        skills: def.starting_skills.clone(),
        created_at: t0(),
    }
}

fn cast(skill: &str) -> CharacterCommand {
    CharacterCommand::CastSkill {
        actor: owner(),
        skill: skill.into(),
        target: None,
    }
}

#[test]
fn creating_a_character_starts_at_level_one_in_the_starting_zone() {
    TestFramework::<Character>::with(services_at(t0()))
        .given_no_previous_events()
        .when(CharacterCommand::Create {
            owner: owner(),
            name: CharacterName::parse("Aria").unwrap(),
            class: "mage".into(),
        })
        .then_expect_events(vec![created("mage")]);
}

#[test]
fn a_character_cannot_be_created_twice_or_with_an_unknown_class() {
    let create = |class: &str| CharacterCommand::Create {
        owner: owner(),
        name: CharacterName::parse("Aria").unwrap(),
        class: class.into(),
    };
    TestFramework::<Character>::with(services_at(t0()))
        .given(vec![created("mage")])
        .when(create("mage"))
        .then_expect_error(CharacterError::AlreadyExists);
    TestFramework::<Character>::with(services_at(t0()))
        .given_no_previous_events()
        .when(create("bard"))
        .then_expect_error(CharacterError::UnknownClass("bard".into()));
}

#[test]
fn fireball_costs_mana_starts_a_cooldown_and_grants_experience() {
    TestFramework::<Character>::with(services_at(t0()))
        .given(vec![created("mage")])
        .when(CharacterCommand::CastSkill {
            actor: owner(),
            skill: "fireball".into(),
            target: Some("wolf-17".into()),
        })
        .then_expect_events(vec![
            CharacterEvent::SkillCast {
                skill: "fireball".into(),
                target: Some("wolf-17".into()),
                zone: "whispering_woods".into(),
                mana_before: 120,
                mana_cost: 30,
                mana_after: 90,
                damage: 20,
                cooldown_until: t0() + Duration::seconds(8),
                cast_at: t0(),
            },
            CharacterEvent::ExperienceGained {
                amount: 5,
                total_xp: 5,
                source: "skill:fireball".into(),
                gained_at: t0(),
            },
        ]);
}

#[test]
fn casting_checks_ownership_knowledge_cooldown_zone_and_mana() {
    let given = || TestFramework::<Character>::with(services_at(t0())).given(vec![created("mage")]);
    given()
        .when(CharacterCommand::CastSkill {
            actor: AccountId::from_uuid(uuid::Uuid::from_u128(2)),
            skill: "fireball".into(),
            target: None,
        })
        .then_expect_error(CharacterError::NotOwner);
    given()
        .when(cast("meteor"))
        .then_expect_error(CharacterError::UnknownSkill("meteor".into()));
    given()
        .when(cast("heal"))
        .then_expect_error(CharacterError::SkillNotKnown("heal".into()));

    let fireball = |at: DateTime<Utc>, mana_after: u32| CharacterEvent::SkillCast {
        skill: "fireball".into(),
        target: None,
        zone: "whispering_woods".into(),
        mana_before: mana_after + 30,
        mana_cost: 30,
        mana_after,
        damage: 20,
        cooldown_until: at + Duration::seconds(8),
        cast_at: at,
    };
    TestFramework::<Character>::with(services_at(t0() + Duration::seconds(1)))
        .given(vec![created("mage"), fireball(t0(), 90)])
        .when(cast("fireball"))
        .then_expect_error(CharacterError::SkillOnCooldown {
            skill: "fireball".into(),
            ready_at: t0() + Duration::seconds(8),
        });
    TestFramework::<Character>::with(services_at(t0() + Duration::seconds(9)))
        .given(vec![
            created("mage"),
            fireball(t0() + Duration::milliseconds(8500), 0),
        ])
        .when(cast("strike"))
        .inspect_result()
        .expect("strike costs nothing");
    // Mana 0 half a second ago: a mage has regenerated 5 of the 30 a fireball needs.
    let drained = CharacterEvent::SkillCast {
        skill: "strike".into(),
        target: None,
        zone: "whispering_woods".into(),
        mana_before: 0,
        mana_cost: 0,
        mana_after: 0,
        damage: 3,
        cooldown_until: t0() - Duration::milliseconds(500),
        cast_at: t0() - Duration::milliseconds(500),
    };
    TestFramework::<Character>::with(services_at(t0()))
        .given(vec![created("mage"), drained])
        .when(cast("fireball"))
        .then_expect_error(CharacterError::InsufficientMana {
            needed: 30,
            available: 5,
        });
    TestFramework::<Character>::with(services_at(t0()))
        .given(vec![
            created("mage"),
            CharacterEvent::ZoneEntered {
                from_zone: "whispering_woods".into(),
                to_zone: "starter_meadow".into(),
                entered_at: t0(),
            },
        ])
        .when(cast("fireball"))
        .then_expect_error(CharacterError::ZoneForbidsSkill {
            zone: "starter_meadow".into(),
        });
}

#[test]
fn crossing_levels_emits_one_level_up_per_level_with_unlocked_skills() {
    let result = TestFramework::<Character>::with(services_at(t0()))
        .given(vec![created("mage")])
        .when(CharacterCommand::GrantExperience {
            amount: 30,
            source: "quest:intro".into(),
        })
        .inspect_result()
        .unwrap();
    let levels: Vec<_> = result
        .iter()
        .filter_map(|e| match e {
            CharacterEvent::LeveledUp {
                level,
                skills_unlocked,
                ..
            } => Some((*level, skills_unlocked.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        levels,
        vec![(2, vec![]), (3, vec!["frost_nova".to_string()])]
    );
    let character = Character::fold(std::iter::once(created("mage")).chain(result));
    let state = character.state().unwrap();
    assert_eq!((state.level, state.xp), (3, 30));
    assert!(state.skills.contains("frost_nova"));
    assert_eq!(state.mana, state.max_mana);
}

#[test]
fn zone_travel_respects_level_and_rejects_a_no_op() {
    let given =
        || TestFramework::<Character>::with(services_at(t0())).given(vec![created("warrior")]);
    let travel = |zone: &str| CharacterCommand::TravelTo {
        actor: owner(),
        zone: zone.into(),
    };
    given()
        .when(travel("ember_caverns"))
        .then_expect_error(CharacterError::ZoneLevelTooLow {
            zone: "ember_caverns".into(),
            min_level: 5,
        });
    given()
        .when(travel("whispering_woods"))
        .then_expect_error(CharacterError::AlreadyInZone("whispering_woods".into()));
    given()
        .when(travel("atlantis"))
        .then_expect_error(CharacterError::UnknownZone("atlantis".into()));
    given()
        .when(travel("starter_meadow"))
        .then_expect_events(vec![CharacterEvent::ZoneEntered {
            from_zone: "whispering_woods".into(),
            to_zone: "starter_meadow".into(),
            entered_at: t0(),
        }]);
}

#[test]
fn commands_on_a_missing_character_are_not_found() {
    TestFramework::<Character>::with(services_at(t0()))
        .given_no_previous_events()
        .when(cast("strike"))
        .then_expect_error(CharacterError::NotFound);
}

proptest! {
    /// Whatever players try, in any order and at any pace: mana stays within [0, max], level
    /// always matches experience, and a refused command changes nothing.
    #[test]
    fn invariants_hold_under_any_command_sequence(
        class in prop::sample::select(vec!["warrior", "mage", "ranger", "cleric"]),
        steps in prop::collection::vec((0u8..4, 0u32..20_000, 0usize..9), 1..60),
    ) {
        let content = Content::builtin().unwrap();
        let skills: Vec<String> = content.skills.keys().cloned().collect();
        let zones: Vec<String> = content.zones.keys().cloned().collect();
        let mut now = t0();
        let mut character = Character::default();
        let create = CharacterCommand::Create {
            owner: owner(), name: CharacterName::parse("Prop").unwrap(), class: class.into(),
        };
        for e in character.decide(create, &ctx(&content, now)).unwrap() {
            cqrs_es::Aggregate::apply(&mut character, e);
        }
        for (kind, wait_ms, pick) in steps {
            now += Duration::milliseconds(i64::from(wait_ms));
            let command = match kind {
                0 | 1 => cast(&skills[pick % skills.len()]),
                2 => CharacterCommand::TravelTo { actor: owner(), zone: zones[pick % zones.len()].clone() },
                _ => CharacterCommand::GrantExperience { amount: pick as u64 * 40, source: "prop".into() },
            };
            let before = character.clone();
            match character.decide(command, &ctx(&content, now)) {
                Ok(events) => {
                    for e in events { cqrs_es::Aggregate::apply(&mut character, e); }
                }
                Err(_) => prop_assert_eq!(&character, &before),
            }
            let s = character.state().unwrap();
            prop_assert!(s.mana <= s.max_mana);
            prop_assert!(s.hp <= s.max_hp);
            prop_assert_eq!(s.level, content.level_for_xp(s.xp).min(content.progression.max_level));
        }
    }
}

#[test]
fn level_ups_carry_the_gold_reward_of_the_level_reached() {
    let result = TestFramework::<Character>::with(services_at(t0()))
        .given(vec![created("warrior")])
        .when(CharacterCommand::GrantExperience {
            amount: 10,
            source: "quest:intro".into(),
        })
        .inspect_result()
        .unwrap();
    let rewards: Vec<u64> = result
        .iter()
        .filter_map(|e| match e {
            CharacterEvent::LeveledUp { gold_reward, .. } => Some(*gold_reward),
            _ => None,
        })
        .collect();
    assert_eq!(rewards, vec![20], "level 2 at 10 gold per level");
}

/// The stored payload is a stable, documented shape (docs/event-store.md): these golden payloads
/// are what the event store holds for each event type at its current version. A failing
/// comparison means the shape changed: add a new version and an upcaster instead.
#[test]
fn stored_payloads_keep_their_documented_shape() {
    let golden = serde_json::json!({
        "CharacterCreated": {"CharacterCreated": {"owner": owner().to_string(), "name": "Aria",
            "class": "mage", "level": 1, "max_hp": 80, "max_mana": 120,
            "zone": "whispering_woods", "skills": ["strike", "fireball"],
            "created_at": "2026-11-21T12:00:00Z"}},
        "LeveledUp": {"LeveledUp": {"level": 2, "max_hp": 88, "max_mana": 132,
            "skills_unlocked": [], "gold_reward": 20, "leveled_at": "2026-11-21T12:00:00Z"}},
    });
    let level_up = CharacterEvent::LeveledUp {
        level: 2,
        max_hp: 88,
        max_mana: 132,
        skills_unlocked: vec![],
        gold_reward: 20,
        leveled_at: t0(),
    };
    for event in [created("mage"), level_up] {
        assert_eq!(
            encode_stored(&event),
            golden[event.type_name()],
            "{}",
            event.type_name()
        );
        let back = decode_stored::<Character>(
            event.type_name(),
            &cqrs_es::DomainEvent::event_version(&event),
            golden[event.type_name()].clone(),
        )
        .unwrap();
        assert_eq!(back, event);
    }
}

/// `LeveledUp` v1 (before gold rewards) still loads: the upcaster gives it a reward of 0.
#[test]
fn level_ups_stored_in_the_old_shape_load_through_the_upcaster() {
    let v1 = serde_json::json!({"LeveledUp": {"level": 3, "max_hp": 120, "max_mana": 144,
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
    let newer = decode_stored::<Character>("LeveledUp", "3", serde_json::json!({}));
    assert!(newer.is_err());
    let unknown = decode_stored::<Character>("Teleported", "1", serde_json::json!({}));
    assert!(unknown.is_err());
    let mismatch = decode_stored::<Character>("SkillCast", "1", encode_stored(&created("mage")));
    assert!(mismatch.is_err());
}
