//! NPC combat, PvP (both steps and the process mappings), death and respawn.

use super::*;
use crate::character::process::{damage_for_victim, reward_for_killer};

/// The wolf from an earlier fireball, 4 hit points left.
fn wounded_wolf(at: DateTime<Utc>) -> CharacterEvent {
    CharacterEvent::SkillCast {
        skill: "fireball".into(),
        target: Some("wolf".into()),
        hit: Some(CastHit::Npc {
            npc: "wolf".into(),
            hp_before: 32,
            damage: 28,
            hp_after: 4,
        }),
        zone: "whispering_woods".into(),
        mana_before: 120,
        mana_cost: 30,
        mana_after: 90,
        damage: 30,
        cooldown_until: at + secs(8),
        cast_at: at,
    }
}

fn finishing_blow(hp_before: u32, now: DateTime<Utc>) -> CharacterEvent {
    CharacterEvent::SkillCast {
        skill: "fireball".into(),
        target: Some("wolf".into()),
        hit: Some(CastHit::Npc {
            npc: "wolf".into(),
            hp_before,
            damage: 28,
            hp_after: hp_before.saturating_sub(28),
        }),
        zone: "whispering_woods".into(),
        mana_before: 120,
        mana_cost: 30,
        mana_after: 90,
        damage: 30,
        cooldown_until: now + secs(8),
        cast_at: now,
    }
}

#[test]
fn killing_an_npc_awards_its_experience_and_its_loot() {
    let now = t0() + secs(10);
    given_at(now, vec![created("mage"), wounded_wolf(t0())])
        .when(cast_at("fireball", npc("wolf")))
        .then_expect_events(vec![
            finishing_blow(4, now),
            CharacterEvent::ExperienceGained {
                amount: 5,
                total_xp: 5,
                source: "skill:fireball".into(),
                gained_at: now,
            },
            CharacterEvent::NpcKilled {
                npc: "wolf".into(),
                zone: "whispering_woods".into(),
                xp_reward: 12,
                loot_left: vec![],
                killed_at: now,
            },
            // The lowest roll of the percentile dice always drops, in the lowest quantity.
            CharacterEvent::ItemsAcquired {
                items: vec![
                    ItemChange {
                        item: "healing_herb".into(),
                        quantity: 1,
                        quantity_after: 1,
                    },
                    ItemChange {
                        item: "wolf_pelt".into(),
                        quantity: 1,
                        quantity_after: 1,
                    },
                ],
                source: "loot:wolf".into(),
                acquired_at: now,
            },
            CharacterEvent::ExperienceGained {
                amount: 12,
                total_xp: 17,
                source: "kill:wolf".into(),
                gained_at: now,
            },
            CharacterEvent::LeveledUp {
                level: 2,
                max_hp: 88,
                max_mana: 132,
                skills_unlocked: vec![],
                gold_reward: 20,
                leveled_at: now,
            },
        ]);
    // The state forgets the dead wolf: the next one is fresh.
    let mut history = vec![created("mage"), wounded_wolf(t0())];
    history
        .extend(decide_on(&history, cast_at("fireball", npc("wolf")), now, &LowestRoll).unwrap());
    let state = Character::fold(history).state().unwrap().clone();
    assert_eq!(state.encounter, None);
    assert_eq!(state.quantity("wolf_pelt"), 1);
}

#[test]
fn an_npc_left_alone_long_enough_is_a_fresh_one() {
    let now = t0() + secs(61);
    let events = decide_on(
        &[created("mage"), wounded_wolf(t0())],
        cast_at("fireball", npc("wolf")),
        now,
        &LowestRoll,
    )
    .unwrap();
    assert_eq!(events[0], finishing_blow(60, now));
}

#[test]
fn loot_that_does_not_fit_in_a_full_bag_is_left_behind_and_named() {
    // 23 full stacks of pelts and one of 49: 24 slots, one pelt of room.
    let now = t0() + secs(10);
    let history = vec![
        created("mage"),
        acquired("wolf_pelt", 23 * 50 + 49, 0),
        wounded_wolf(t0()),
    ];
    // Fireball rolls 20; pelts drop (1 <= 80) two of them; herbs drop (1 <= 30), one.
    let dice = ScriptedDice::new(&[20, 1, 2, 1, 1]);
    let events = decide_on(
        &history,
        cast_at("fireball", npc("wolf")),
        now,
        dice.as_ref(),
    )
    .unwrap();
    let killed = events
        .iter()
        .find(|e| matches!(e, CharacterEvent::NpcKilled { .. }))
        .unwrap();
    assert_eq!(
        killed,
        &CharacterEvent::NpcKilled {
            npc: "wolf".into(),
            zone: "whispering_woods".into(),
            xp_reward: 12,
            loot_left: vec![
                ItemStack {
                    item: "wolf_pelt".into(),
                    quantity: 1
                },
                ItemStack {
                    item: "healing_herb".into(),
                    quantity: 1
                },
            ],
            killed_at: now,
        }
    );
    let acquired: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            CharacterEvent::ItemsAcquired { items, .. } => Some(items.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        acquired,
        vec![vec![ItemChange {
            item: "wolf_pelt".into(),
            quantity: 1,
            quantity_after: 1200
        }]]
    );
}

#[test]
fn npc_targets_must_exist_live_in_the_zone_and_take_an_offensive_skill() {
    given(vec![created("mage")])
        .when(cast_at("fireball", npc("dragon")))
        .then_expect_error(CharacterError::UnknownNpc("dragon".into()));
    given(vec![created("mage")])
        .when(cast_at("fireball", npc("fire_imp")))
        .then_expect_error(CharacterError::TargetNotInZone {
            target: "fire_imp".into(),
            zone: "whispering_woods".into(),
        });
    given(vec![created("cleric")])
        .when(cast_at("heal", npc("wolf")))
        .then_expect_error(CharacterError::InvalidTarget(
            "only offensive skills are aimed at a target",
        ));
}

fn victim_ref(zone: &str, alive: bool) -> TargetRef {
    TargetRef::Character {
        id: char_id(2),
        zone: zone.into(),
        alive,
    }
}

#[test]
fn a_cast_at_a_character_records_the_hit_for_the_victim_to_take() {
    given(vec![created("mage")])
        .when(cast_at("fireball", victim_ref("whispering_woods", true)))
        .then_expect_events(vec![
            CharacterEvent::SkillCast {
                skill: "fireball".into(),
                target: Some(char_id(2).to_string()),
                hit: Some(CastHit::Character { id: char_id(2) }),
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

#[test]
fn pvp_needs_a_pvp_zone_a_living_target_and_the_same_zone() {
    let mut dungeon = vec![created("mage")];
    dungeon.extend(leveled_to("mage", 3));
    dungeon.push(entered("goblin_warren"));
    given(dungeon)
        .when(cast_at("fireball", victim_ref("goblin_warren", true)))
        .then_expect_error(CharacterError::ZoneForbidsPvp {
            zone: "goblin_warren".into(),
        });
    given(vec![created("mage"), entered("starter_meadow")])
        .when(cast_at("fireball", victim_ref("starter_meadow", true)))
        .then_expect_error(CharacterError::ZoneForbidsSkill {
            zone: "starter_meadow".into(),
        });
    given(vec![created("mage")])
        .when(cast_at("fireball", victim_ref("whispering_woods", false)))
        .then_expect_error(CharacterError::TargetDead(char_id(2).to_string()));
    given(vec![created("mage")])
        .when(cast_at("fireball", victim_ref("starter_meadow", true)))
        .then_expect_error(CharacterError::TargetNotInZone {
            target: char_id(2).to_string(),
            zone: "whispering_woods".into(),
        });
}

fn take(amount: u32, cause: &str, attacker_zone: &str) -> CharacterCommand {
    CharacterCommand::TakeDamage {
        attacker: char_id(1),
        cause: cause.into(),
        skill: "fireball".into(),
        amount,
        attacker_zone: attacker_zone.into(),
    }
}

fn taken(hp_before: u32, amount: u32, cause: &str, at: DateTime<Utc>) -> CharacterEvent {
    // The mage's defense is 1.
    CharacterEvent::DamageTaken {
        attacker: char_id(1),
        cause: cause.into(),
        skill: "fireball".into(),
        amount,
        damage: amount - 1,
        hp_before,
        hp_after: hp_before.saturating_sub(amount - 1),
        zone: "whispering_woods".into(),
        taken_at: at,
    }
}

fn died(cause: &str, at: DateTime<Utc>) -> CharacterEvent {
    CharacterEvent::CharacterDied {
        killer: Some(char_id(1)),
        cause: cause.into(),
        zone: "whispering_woods".into(),
        bounty_xp: 10,
        died_at: at,
    }
}

#[test]
fn the_victim_takes_the_damage_less_its_defense_and_dies_at_zero() {
    given(vec![created("mage")])
        .when(take(30, "e1", "whispering_woods"))
        .then_expect_events(vec![taken(80, 30, "e1", t0())]);
    given(vec![created("mage")])
        .when(take(100, "e1", "whispering_woods"))
        .then_expect_events(vec![taken(80, 100, "e1", t0()), died("e1", t0())]);
    // Hit points regenerate with game time: a mage's 1 per second, for 10 seconds.
    given_at(
        t0() + secs(10),
        vec![created("mage"), taken(80, 30, "e1", t0())],
    )
    .when(take(30, "e2", "whispering_woods"))
    .then_expect_events(vec![taken(61, 30, "e2", t0() + secs(10))]);
}

#[test]
fn an_attack_that_can_no_longer_land_is_recorded_as_a_miss() {
    let missed = |reason, zone: &str| {
        vec![CharacterEvent::AttackMissed {
            attacker: char_id(1),
            cause: "e2".into(),
            skill: "fireball".into(),
            reason,
            zone: zone.into(),
            missed_at: t0(),
        }]
    };
    given(vec![
        created("mage"),
        taken(80, 100, "e1", t0()),
        died("e1", t0()),
    ])
    .when(take(30, "e2", "whispering_woods"))
    .then_expect_events(missed(MissReason::TargetDead, "whispering_woods"));
    given(vec![created("mage"), entered("starter_meadow")])
        .when(take(30, "e2", "whispering_woods"))
        .then_expect_events(missed(MissReason::TargetLeftZone, "starter_meadow"));
    given(vec![created("mage"), entered("starter_meadow")])
        .when(take(30, "e2", "starter_meadow"))
        .then_expect_events(missed(MissReason::ZoneForbidsPvp, "starter_meadow"));
}

#[test]
fn a_hit_is_applied_once_and_its_amount_is_bounded() {
    given(vec![created("mage"), taken(80, 30, "e1", t0())])
        .when(take(30, "e1", "whispering_woods"))
        .then_expect_error(CharacterError::DuplicateHit("e1".into()));
    for amount in [0, MAX_DAMAGE + 1] {
        given(vec![created("mage")])
            .when(take(amount, "e1", "whispering_woods"))
            .then_expect_error(CharacterError::InvalidDamage { max: MAX_DAMAGE });
    }
    given(vec![created("mage")])
        .when(take(5, "", "whispering_woods"))
        .then_expect_error(CharacterError::InvalidLabel {
            field: "cause",
            max: MAX_LABEL,
        });
}

#[test]
fn the_dead_only_respawn_at_the_zone_s_respawn_point_at_full_health() {
    let dead = || {
        vec![
            created("mage"),
            taken(80, 100, "e1", t0()),
            died("e1", t0()),
        ]
    };
    given(dead())
        .when(cast("strike"))
        .then_expect_error(CharacterError::CharacterDead);
    given(dead())
        .when(cast_at("strike", npc("wolf")))
        .then_expect_error(CharacterError::CharacterDead);
    given(dead())
        .when(CharacterCommand::TravelTo {
            actor: owner(),
            zone: "starter_meadow".into(),
        })
        .then_expect_error(CharacterError::CharacterDead);
    given(dead())
        .when(CharacterCommand::UseItem {
            actor: owner(),
            item: "health_potion".into(),
        })
        .then_expect_error(CharacterError::CharacterDead);
    given(dead())
        .when(CharacterCommand::Respawn { actor: stranger() })
        .then_expect_error(CharacterError::NotOwner);
    given(vec![created("mage")])
        .when(CharacterCommand::Respawn { actor: owner() })
        .then_expect_error(CharacterError::CharacterAlive);
    given_at(t0() + secs(30), dead())
        .when(CharacterCommand::Respawn { actor: owner() })
        .then_expect_events(vec![CharacterEvent::CharacterRespawned {
            from_zone: "whispering_woods".into(),
            zone: "starter_meadow".into(),
            hp: 80,
            mana: 120,
            respawned_at: t0() + secs(30),
        }]);
    // No regeneration while dead.
    let state = Character::fold(dead()).state().unwrap().clone();
    assert_eq!((state.hp, state.alive()), (0, false));
}

#[test]
fn a_kill_bounty_is_experience_for_the_killer() {
    given(vec![created("warrior")])
        .when(CharacterCommand::AwardKill {
            victim: char_id(2),
            cause: "died-1".into(),
            xp: 10,
        })
        .then_expect_events(vec![
            CharacterEvent::ExperienceGained {
                amount: 10,
                total_xp: 10,
                source: format!("pvp-kill:{}", char_id(2)),
                gained_at: t0(),
            },
            CharacterEvent::LeveledUp {
                level: 2,
                max_hp: 154,
                max_mana: 44,
                skills_unlocked: vec![],
                gold_reward: 20,
                leveled_at: t0(),
            },
        ]);
    given(vec![created("warrior")])
        .when(CharacterCommand::AwardKill {
            victim: char_id(2),
            cause: "died-1".into(),
            xp: 0,
        })
        .then_expect_error(CharacterError::InvalidExperienceAmount);
}

/// The whole PvP flow across three decisions, wired the way the process manager wires it.
#[test]
fn pvp_flows_from_the_cast_to_the_victim_and_back_to_the_killer() {
    let attacker_id = char_id(1);
    let victim_id = char_id(2);
    let attacker = vec![created("warrior")];
    let victim = vec![created("mage"), taken(80, 76, "earlier", t0())];
    assert!(matches!(
        victim[1],
        CharacterEvent::DamageTaken { hp_after: 5, .. }
    ));

    // 1. The warrior strikes the wounded mage (3 + attack 8 = 11 rolled).
    let cast = decide_on(
        &attacker,
        cast_at(
            "strike",
            TargetRef::Character {
                id: victim_id,
                zone: "whispering_woods".into(),
                alive: true,
            },
        ),
        t0(),
        &LowestRoll,
    )
    .unwrap();
    let (to, command) = damage_for_victim(attacker_id, "cast-event", &cast[0]).unwrap();
    assert_eq!(to, victim_id);
    assert_eq!(
        command,
        CharacterCommand::TakeDamage {
            attacker: attacker_id,
            cause: "cast-event".into(),
            skill: "strike".into(),
            amount: 11,
            attacker_zone: "whispering_woods".into(),
        }
    );
    assert!(cast[1..]
        .iter()
        .all(|e| damage_for_victim(attacker_id, "x", e).is_none()));

    // 2. The mage takes 10 of it and dies.
    let hit = decide_on(&victim, command, t0(), &LowestRoll).unwrap();
    assert!(matches!(
        hit[0],
        CharacterEvent::DamageTaken {
            hp_after: 0,
            damage: 10,
            ..
        }
    ));
    assert!(reward_for_killer(victim_id, "x", &hit[0]).is_none());
    let (to, command) = reward_for_killer(victim_id, "died-event", &hit[1]).unwrap();
    assert_eq!(to, attacker_id);
    assert_eq!(
        command,
        CharacterCommand::AwardKill {
            victim: victim_id,
            cause: "died-event".into(),
            xp: 10,
        }
    );

    // 3. The warrior earns the bounty.
    let mut history = attacker;
    history.extend(cast);
    let reward = decide_on(&history, command, t0(), &LowestRoll).unwrap();
    assert!(matches!(
        &reward[0],
        CharacterEvent::ExperienceGained { amount: 10, source, .. } if source == &format!("pvp-kill:{victim_id}")
    ));
}

#[test]
fn a_character_cannot_hurt_or_reward_itself_through_the_process_mappings() {
    let me = char_id(1);
    let self_hit = CharacterEvent::SkillCast {
        skill: "strike".into(),
        target: Some(me.to_string()),
        hit: Some(CastHit::Character { id: me }),
        zone: "whispering_woods".into(),
        mana_before: 0,
        mana_cost: 0,
        mana_after: 0,
        damage: 11,
        cooldown_until: t0(),
        cast_at: t0(),
    };
    assert_eq!(damage_for_victim(me, "e", &self_hit), None);
    let suicide = CharacterEvent::CharacterDied {
        killer: Some(me),
        cause: "e".into(),
        zone: "whispering_woods".into(),
        bounty_xp: 10,
        died_at: t0(),
    };
    assert_eq!(reward_for_killer(me, "e", &suicide), None);
    // Casts at NPCs or at nothing call for nothing either.
    assert_eq!(damage_for_victim(me, "e", &wounded_wolf(t0())), None);
}
