//! Creation, casting's costs, experience and levels, travel.

use super::*;

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
    given(vec![created("mage")])
        .when(create("mage"))
        .then_expect_error(CharacterError::AlreadyExists);
    TestFramework::<Character>::with(services_at(t0()))
        .given_no_previous_events()
        .when(create("bard"))
        .then_expect_error(CharacterError::UnknownClass("bard".into()));
}

/// The seeds' fireball flow against an NPC: mana spent, damage from the dice and the caster's
/// spell power less the wolf's defense, the wolf's hit points tracked, experience awarded.
#[test]
fn fireball_at_a_wolf_costs_mana_starts_a_cooldown_damages_it_and_grants_experience() {
    given(vec![created("mage")])
        .when(cast_at("fireball", npc("wolf")))
        .then_expect_events(vec![
            CharacterEvent::SkillCast {
                skill: "fireball".into(),
                target: Some("wolf".into()),
                // Lowest roll 20 + spell power 10; the wolf's defense 2 takes 28 of its 60.
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
                cooldown_until: t0() + secs(8),
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

fn fireball(at: DateTime<Utc>, mana_after: u32) -> CharacterEvent {
    CharacterEvent::SkillCast {
        skill: "fireball".into(),
        target: None,
        hit: None,
        zone: "whispering_woods".into(),
        mana_before: mana_after + 30,
        mana_cost: 30,
        mana_after,
        damage: 30,
        cooldown_until: at + secs(8),
        cast_at: at,
    }
}

#[test]
fn casting_checks_ownership_knowledge_cooldown_zone_and_mana() {
    given(vec![created("mage")])
        .when(CharacterCommand::CastSkill {
            actor: stranger(),
            skill: "fireball".into(),
            target: None,
        })
        .then_expect_error(CharacterError::NotOwner);
    given(vec![created("mage")])
        .when(cast("meteor"))
        .then_expect_error(CharacterError::UnknownSkill("meteor".into()));
    given(vec![created("mage")])
        .when(cast("heal"))
        .then_expect_error(CharacterError::SkillNotKnown("heal".into()));

    given_at(t0() + secs(1), vec![created("mage"), fireball(t0(), 90)])
        .when(cast("fireball"))
        .then_expect_error(CharacterError::SkillOnCooldown {
            skill: "fireball".into(),
            ready_at: t0() + secs(8),
        });
    given_at(
        t0() + secs(9),
        vec![
            created("mage"),
            fireball(t0() + Duration::milliseconds(8500), 0),
        ],
    )
    .when(cast("strike"))
    .inspect_result()
    .expect("strike costs nothing");
    // Mana 0 half a second ago: a mage has regenerated 5 of the 30 a fireball needs.
    let drained = CharacterEvent::SkillCast {
        skill: "strike".into(),
        target: None,
        hit: None,
        zone: "whispering_woods".into(),
        mana_before: 0,
        mana_cost: 0,
        mana_after: 0,
        damage: 3,
        cooldown_until: t0() - Duration::milliseconds(500),
        cast_at: t0() - Duration::milliseconds(500),
    };
    given(vec![created("mage"), drained])
        .when(cast("fireball"))
        .then_expect_error(CharacterError::InsufficientMana {
            needed: 30,
            available: 5,
        });
    // The README's peaceful meadow: offensive skills are refused there, with or without target.
    given(vec![created("mage"), entered("starter_meadow")])
        .when(cast("fireball"))
        .then_expect_error(CharacterError::ZoneForbidsSkill {
            zone: "starter_meadow".into(),
        });
    given(vec![created("mage"), entered("starter_meadow")])
        .when(cast_at("strike", npc("wolf")))
        .then_expect_error(CharacterError::ZoneForbidsSkill {
            zone: "starter_meadow".into(),
        });
}

/// Casting at nothing (practice) is what the README's strikes do: experience, no one hurt.
#[test]
fn a_strike_at_nothing_rolls_damage_and_grants_its_experience() {
    given(vec![created("warrior")])
        .when(cast("strike"))
        .then_expect_events(vec![
            CharacterEvent::SkillCast {
                skill: "strike".into(),
                target: None,
                hit: None,
                zone: "whispering_woods".into(),
                mana_before: 40,
                mana_cost: 0,
                mana_after: 40,
                // Lowest roll 3 + the warrior's attack 8.
                damage: 11,
                cooldown_until: t0(),
                cast_at: t0(),
            },
            CharacterEvent::ExperienceGained {
                amount: 1,
                total_xp: 1,
                source: "skill:strike".into(),
                gained_at: t0(),
            },
        ]);
}

#[test]
fn crossing_levels_emits_one_level_up_per_level_with_unlocked_skills() {
    let result = given(vec![created("mage")])
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
fn level_ups_carry_the_gold_reward_and_the_maxima_with_equipment() {
    let result = given(vec![
        created("mage"),
        acquired("apprentice_staff", 1, 0),
        CharacterEvent::ItemEquipped {
            item: "apprentice_staff".into(),
            slot: crate::content::Slot::MainHand,
            quantity_after: 0,
            replaced: None,
            max_hp: 80,
            max_mana: 140,
            hp: 80,
            mana: 120,
            equipped_at: t0(),
        },
    ])
    .when(CharacterCommand::GrantExperience {
        amount: 10,
        source: "quest:intro".into(),
    })
    .inspect_result()
    .unwrap();
    let rewards: Vec<_> = result
        .iter()
        .filter_map(|e| match e {
            CharacterEvent::LeveledUp {
                gold_reward,
                max_hp,
                max_mana,
                ..
            } => Some((*gold_reward, *max_hp, *max_mana)),
            _ => None,
        })
        .collect();
    // Level 2 at 10 gold per level; the staff's +20 mana counts in the new maximum.
    assert_eq!(rewards, vec![(20, 88, 152)]);
}

#[test]
fn experience_grants_are_bounded_and_need_a_character() {
    for amount in [0, MAX_GRANT + 1] {
        given(vec![created("mage")])
            .when(CharacterCommand::GrantExperience {
                amount,
                source: "gm".into(),
            })
            .then_expect_error(CharacterError::InvalidExperienceAmount);
    }
    TestFramework::<Character>::with(services_at(t0()))
        .given_no_previous_events()
        .when(CharacterCommand::GrantExperience {
            amount: 1,
            source: "gm".into(),
        })
        .then_expect_error(CharacterError::NotFound);
}

#[test]
fn zone_travel_respects_the_level_range_and_rejects_a_no_op() {
    let travel = |zone: &str| CharacterCommand::TravelTo {
        actor: owner(),
        zone: zone.into(),
    };
    given(vec![created("warrior")])
        .when(travel("ember_caverns"))
        .then_expect_error(CharacterError::ZoneLevelTooLow {
            zone: "ember_caverns".into(),
            min_level: 5,
        });
    given(vec![created("warrior")])
        .when(travel("whispering_woods"))
        .then_expect_error(CharacterError::AlreadyInZone("whispering_woods".into()));
    given(vec![created("warrior")])
        .when(travel("atlantis"))
        .then_expect_error(CharacterError::UnknownZone("atlantis".into()));
    given(vec![created("warrior")])
        .when(CharacterCommand::TravelTo {
            actor: stranger(),
            zone: "starter_meadow".into(),
        })
        .then_expect_error(CharacterError::NotOwner);
    given(vec![created("warrior")])
        .when(travel("starter_meadow"))
        .then_expect_events(vec![entered("starter_meadow")]);
    // The goblin warren is for levels 3 to 12.
    let mut veteran = vec![created("warrior")];
    veteran.extend(leveled_to("warrior", 13));
    given(veteran)
        .when(travel("goblin_warren"))
        .then_expect_error(CharacterError::ZoneLevelTooHigh {
            zone: "goblin_warren".into(),
            max_level: 12,
        });
}

#[test]
fn commands_on_a_missing_character_are_not_found() {
    let nobody = || TestFramework::<Character>::with(services_at(t0())).given_no_previous_events();
    nobody()
        .when(cast("strike"))
        .then_expect_error(CharacterError::NotFound);
    nobody()
        .when(CharacterCommand::Respawn { actor: owner() })
        .then_expect_error(CharacterError::NotFound);
    nobody()
        .when(CharacterCommand::GrantItem {
            item: "wolf_pelt".into(),
            quantity: 1,
            source: "gm".into(),
        })
        .then_expect_error(CharacterError::NotFound);
    nobody()
        .when(CharacterCommand::TakeDamage {
            attacker: char_id(2),
            cause: "e1".into(),
            skill: "strike".into(),
            amount: 5,
            attacker_zone: "whispering_woods".into(),
        })
        .then_expect_error(CharacterError::NotFound);
}

#[test]
fn player_commands_name_their_actor_and_game_commands_do_not() {
    assert_eq!(cast("strike").actor(), Some(owner()));
    assert_eq!(
        CharacterCommand::Respawn { actor: stranger() }.actor(),
        Some(stranger())
    );
    assert_eq!(
        CharacterCommand::AwardKill {
            victim: char_id(1),
            cause: "e".into(),
            xp: 1
        }
        .actor(),
        None
    );
}
