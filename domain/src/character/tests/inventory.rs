//! The bag and the equipment: grants, use, equip and unequip, destroy, craft.

use super::*;
use crate::content::Slot;

fn use_item(item: &str) -> CharacterCommand {
    CharacterCommand::UseItem {
        actor: owner(),
        item: item.into(),
    }
}

fn equip(item: &str, slot: Slot) -> CharacterCommand {
    CharacterCommand::EquipItem {
        actor: owner(),
        item: item.into(),
        slot,
    }
}

fn unequip(slot: Slot) -> CharacterCommand {
    CharacterCommand::UnequipItem {
        actor: owner(),
        slot,
    }
}

fn destroy(item: &str, quantity: u32) -> CharacterCommand {
    CharacterCommand::DestroyItem {
        actor: owner(),
        item: item.into(),
        quantity,
    }
}

fn craft(recipe: &str) -> CharacterCommand {
    CharacterCommand::Craft {
        actor: owner(),
        recipe: recipe.into(),
    }
}

fn grant(item: &str, quantity: u32) -> CharacterCommand {
    CharacterCommand::GrantItem {
        item: item.into(),
        quantity,
        source: "quest".into(),
    }
}

fn staff_equipped() -> CharacterEvent {
    CharacterEvent::ItemEquipped {
        item: "apprentice_staff".into(),
        slot: Slot::MainHand,
        quantity_after: 0,
        replaced: None,
        max_hp: 80,
        max_mana: 140,
        hp: 80,
        mana: 120,
        equipped_at: t0(),
    }
}

#[test]
fn the_game_grants_items_into_the_bag_within_its_capacity() {
    given(vec![created("mage"), acquired("health_potion", 2, 0)])
        .when(grant("health_potion", 3))
        .then_expect_events(vec![CharacterEvent::ItemsAcquired {
            items: vec![ItemChange {
                item: "health_potion".into(),
                quantity: 3,
                quantity_after: 5,
            }],
            source: "grant:quest".into(),
            acquired_at: t0(),
        }]);
    given(vec![created("mage")])
        .when(grant("gold_bar", 1))
        .then_expect_error(CharacterError::UnknownItem("gold_bar".into()));
    for quantity in [0, MAX_ITEM_QUANTITY + 1] {
        given(vec![created("mage")])
            .when(grant("wolf_pelt", quantity))
            .then_expect_error(CharacterError::InvalidQuantity {
                max: MAX_ITEM_QUANTITY,
            });
    }
    // 24 slots of 50 pelts: one more pelt needs a 25th slot.
    given(vec![created("mage"), acquired("wolf_pelt", 1200, 0)])
        .when(grant("wolf_pelt", 1))
        .then_expect_error(CharacterError::BagFull { capacity: 24 });
    given(vec![created("mage")])
        .when(CharacterCommand::GrantItem {
            item: "wolf_pelt".into(),
            quantity: 1,
            source: String::new(),
        })
        .then_expect_error(CharacterError::InvalidLabel {
            field: "source",
            max: MAX_LABEL,
        });
}

#[test]
fn a_potion_restores_hit_points_up_to_the_maximum() {
    let wounded = CharacterEvent::DamageTaken {
        attacker: char_id(1),
        cause: "e1".into(),
        skill: "fireball".into(),
        amount: 30,
        damage: 29,
        hp_before: 80,
        hp_after: 51,
        zone: "whispering_woods".into(),
        taken_at: t0(),
    };
    given(vec![
        created("mage"),
        acquired("health_potion", 2, 0),
        wounded,
    ])
    .when(use_item("health_potion"))
    .then_expect_events(vec![CharacterEvent::ItemUsed {
        item: "health_potion".into(),
        quantity_after: 1,
        hp_before: 51,
        hp_after: 80,
        mana_before: 120,
        mana_after: 120,
        used_at: t0(),
    }]);
}

#[test]
fn only_consumables_held_in_the_bag_are_used() {
    given(vec![created("mage"), acquired("wolf_pelt", 2, 0)])
        .when(use_item("wolf_pelt"))
        .then_expect_error(CharacterError::ItemNotUsable("wolf_pelt".into()));
    given(vec![created("mage")])
        .when(use_item("health_potion"))
        .then_expect_error(CharacterError::InsufficientItems {
            item: "health_potion".into(),
            needed: 1,
            available: 0,
        });
    given(vec![created("mage")])
        .when(use_item("gold_bar"))
        .then_expect_error(CharacterError::UnknownItem("gold_bar".into()));
}

#[test]
fn equipping_moves_the_item_to_its_slot_and_raises_the_derived_stats() {
    given(vec![created("mage"), acquired("apprentice_staff", 1, 0)])
        .when(equip("apprentice_staff", Slot::MainHand))
        .then_expect_events(vec![staff_equipped()]);
    let state = Character::fold([
        created("mage"),
        acquired("apprentice_staff", 1, 0),
        staff_equipped(),
    ])
    .state()
    .unwrap()
    .clone();
    assert_eq!(state.quantity("apprentice_staff"), 0);
    assert_eq!(
        state.equipment.get(&Slot::MainHand).map(String::as_str),
        Some("apprentice_staff")
    );
    assert_eq!(state.max_mana, 140);
}

#[test]
fn equipping_a_slot_in_use_puts_the_old_item_back_in_the_bag() {
    let mut history = vec![created("warrior")];
    history.extend(leveled_to("warrior", 8));
    history.push(acquired("iron_sword", 1, 0));
    history.extend(
        decide_on(
            &history,
            equip("iron_sword", Slot::MainHand),
            t0(),
            &LowestRoll,
        )
        .unwrap(),
    );
    history.push(acquired("ember_blade", 1, 0));
    let events = decide_on(
        &history,
        equip("ember_blade", Slot::MainHand),
        t0(),
        &LowestRoll,
    )
    .unwrap();
    assert!(
        matches!(
            &events[..],
            [CharacterEvent::ItemEquipped { item, quantity_after: 0, replaced: Some(ItemChange { item: old, quantity: 1, quantity_after: 1 }), max_hp: 238, max_mana: 68, .. }]
                if item == "ember_blade" && old == "iron_sword"
        ),
        "{events:?}"
    );
    history.extend(events);
    let state = Character::fold(history).state().unwrap().clone();
    assert_eq!(state.quantity("iron_sword"), 1);
    assert_eq!(state.quantity("ember_blade"), 0);
    assert_eq!(state.equipment[&Slot::MainHand], "ember_blade");
}

#[test]
fn equipment_requires_the_right_slot_level_and_class() {
    let bag = |item: &str| vec![created("mage"), acquired(item, 1, 0)];
    given(bag("health_potion"))
        .when(equip("health_potion", Slot::MainHand))
        .then_expect_error(CharacterError::ItemNotEquippable("health_potion".into()));
    given(bag("apprentice_staff"))
        .when(equip("apprentice_staff", Slot::OffHand))
        .then_expect_error(CharacterError::WrongSlot {
            item: "apprentice_staff".into(),
            slot: Slot::OffHand,
            expected: Slot::MainHand,
        });
    given(bag("leather_vest"))
        .when(equip("leather_vest", Slot::Chest))
        .then_expect_error(CharacterError::ItemLevelTooHigh {
            item: "leather_vest".into(),
            required_level: 2,
        });
    let mut level_two = bag("iron_sword");
    level_two.extend(leveled_to("mage", 2));
    given(level_two)
        .when(equip("iron_sword", Slot::MainHand))
        .then_expect_error(CharacterError::ItemClassRestricted {
            item: "iron_sword".into(),
        });
    given(vec![created("mage")])
        .when(equip("apprentice_staff", Slot::MainHand))
        .then_expect_error(CharacterError::InsufficientItems {
            item: "apprentice_staff".into(),
            needed: 1,
            available: 0,
        });
    given(vec![created("mage")])
        .when(equip("excalibur", Slot::MainHand))
        .then_expect_error(CharacterError::UnknownItem("excalibur".into()));
}

#[test]
fn unequipping_needs_an_item_in_the_slot_and_room_in_the_bag() {
    given(vec![created("mage")])
        .when(unequip(Slot::Head))
        .then_expect_error(CharacterError::SlotEmpty(Slot::Head));
    let equipped = || {
        vec![
            created("mage"),
            acquired("apprentice_staff", 1, 0),
            staff_equipped(),
        ]
    };
    given(equipped())
        .when(unequip(Slot::MainHand))
        .then_expect_events(vec![CharacterEvent::ItemUnequipped {
            item: "apprentice_staff".into(),
            slot: Slot::MainHand,
            quantity_after: 1,
            max_hp: 80,
            max_mana: 120,
            hp: 80,
            mana: 120,
            unequipped_at: t0(),
        }]);
    let mut full = equipped();
    full.push(acquired("wolf_pelt", 1200, 0));
    given(full)
        .when(unequip(Slot::MainHand))
        .then_expect_error(CharacterError::BagFull { capacity: 24 });
}

#[test]
fn unequipping_caps_mana_at_the_lower_maximum() {
    let mut history = vec![
        created("mage"),
        acquired("apprentice_staff", 1, 0),
        staff_equipped(),
    ];
    // A minute later the staff's extra 20 mana has regenerated too.
    let later = t0() + secs(60);
    history.extend(decide_on(&history, unequip(Slot::MainHand), later, &LowestRoll).unwrap());
    let state = Character::fold(history).state().unwrap().clone();
    assert_eq!((state.mana, state.max_mana), (120, 120));
}

#[test]
fn destroying_takes_items_out_of_the_bag_never_below_zero() {
    let pelts = || vec![created("mage"), acquired("wolf_pelt", 5, 0)];
    given(pelts())
        .when(destroy("wolf_pelt", 3))
        .then_expect_events(vec![CharacterEvent::ItemDestroyed {
            item: "wolf_pelt".into(),
            quantity: 3,
            quantity_after: 2,
            destroyed_at: t0(),
        }]);
    given(pelts())
        .when(destroy("wolf_pelt", 6))
        .then_expect_error(CharacterError::InsufficientItems {
            item: "wolf_pelt".into(),
            needed: 6,
            available: 5,
        });
    for quantity in [0, MAX_ITEM_QUANTITY + 1] {
        given(pelts())
            .when(destroy("wolf_pelt", quantity))
            .then_expect_error(CharacterError::InvalidQuantity {
                max: MAX_ITEM_QUANTITY,
            });
    }
    given(pelts())
        .when(destroy("gold_bar", 1))
        .then_expect_error(CharacterError::UnknownItem("gold_bar".into()));
}

#[test]
fn crafting_consumes_the_ingredients_and_produces_the_item_in_one_event() {
    given(vec![created("mage"), acquired("healing_herb", 3, 0)])
        .when(craft("health_potion"))
        .then_expect_events(vec![CharacterEvent::ItemCrafted {
            recipe: "health_potion".into(),
            consumed: vec![ItemChange {
                item: "healing_herb".into(),
                quantity: 2,
                quantity_after: 1,
            }],
            produced: ItemChange {
                item: "health_potion".into(),
                quantity: 1,
                quantity_after: 1,
            },
            crafted_at: t0(),
        }]);
    // Ingredients used up free their slot for the product, even in a full bag.
    given(vec![
        created("mage"),
        acquired("wolf_pelt", 23 * 50, 0),
        acquired("healing_herb", 2, 0),
    ])
    .when(craft("health_potion"))
    .inspect_result()
    .expect("the herbs' slot takes the potion");
}

#[test]
fn a_failed_craft_changes_nothing() {
    given(vec![created("mage"), acquired("healing_herb", 1, 0)])
        .when(craft("health_potion"))
        .then_expect_error(CharacterError::InsufficientItems {
            item: "healing_herb".into(),
            needed: 2,
            available: 1,
        });
    // Two ingredients: the first is there, the second is not; nothing is consumed.
    given(vec![created("warrior"), acquired("iron_ore", 4, 0)])
        .and(leveled_to("warrior", 2))
        .when(craft("iron_sword"))
        .then_expect_error(CharacterError::InsufficientItems {
            item: "wolf_pelt".into(),
            needed: 1,
            available: 0,
        });
    given(vec![created("mage")])
        .when(craft("philosopher_stone"))
        .then_expect_error(CharacterError::UnknownRecipe("philosopher_stone".into()));
    given(vec![created("mage"), acquired("wolf_pelt", 5, 0)])
        .when(craft("leather_vest"))
        .then_expect_error(CharacterError::RecipeLevelTooHigh {
            recipe: "leather_vest".into(),
            required_level: 2,
        });
    given(vec![
        created("mage"),
        acquired("wolf_pelt", 23 * 50, 0),
        acquired("healing_herb", 3, 0),
    ])
    .when(craft("health_potion"))
    .then_expect_error(CharacterError::BagFull { capacity: 24 });
}

#[test]
fn another_player_s_inventory_is_not_theirs_to_touch() {
    let history = vec![
        created("mage"),
        acquired("health_potion", 1, 0),
        acquired("healing_herb", 2, 0),
        acquired("apprentice_staff", 1, 0),
    ];
    for command in [
        CharacterCommand::UseItem {
            actor: stranger(),
            item: "health_potion".into(),
        },
        CharacterCommand::EquipItem {
            actor: stranger(),
            item: "apprentice_staff".into(),
            slot: Slot::MainHand,
        },
        CharacterCommand::UnequipItem {
            actor: stranger(),
            slot: Slot::MainHand,
        },
        CharacterCommand::DestroyItem {
            actor: stranger(),
            item: "health_potion".into(),
            quantity: 1,
        },
        CharacterCommand::Craft {
            actor: stranger(),
            recipe: "health_potion".into(),
        },
    ] {
        given(history.clone())
            .when(command)
            .then_expect_error(CharacterError::NotOwner);
    }
}
