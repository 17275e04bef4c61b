use serde_json::{json, Value};

use super::*;

/// The builtin content with `file` replaced by `text`.
fn with(file: &'static str, text: &str) -> Result<Content, ContentError> {
    Content::load(|f| {
        if f == file {
            Ok(text.to_owned())
        } else {
            Ok(builtin_file(f).unwrap().to_owned())
        }
    })
}

/// The builtin content with `file` edited.
fn edited(file: &'static str, edit: impl FnOnce(&mut Value)) -> Result<Content, ContentError> {
    let mut value: Value = serde_json::from_str(builtin_file(file).unwrap()).unwrap();
    edit(&mut value);
    with(file, &value.to_string())
}

fn message(result: Result<Content, ContentError>) -> String {
    result
        .expect_err("the content should be refused")
        .to_string()
}

#[test]
fn builtin_content_is_valid() {
    let c = Content::builtin().expect("builtin content");
    assert_eq!(c.version, "2026.12.0");
    assert_eq!(c.level_for_xp(0), 1);
    assert_eq!(c.level_for_xp(9), 1);
    assert_eq!(c.level_for_xp(10), 2);
    assert_eq!(c.level_for_xp(u64::MAX), c.progression.max_level);
    assert_eq!(
        c.skills_unlocked_at("mage", 3),
        vec!["frost_nova".to_string()]
    );
    assert!(c.zones["whispering_woods"]
        .npcs
        .contains(&"wolf".to_string()));
    assert_eq!(c.zones["starter_meadow"].kind, ZoneKind::Safe);
    assert_eq!(c.slots_for("wolf_pelt", 51), 2);
    assert_eq!(c.slots_for("no_such_item", 500), 1);
}

#[test]
fn a_directory_holds_the_same_files() {
    let dir = std::env::temp_dir().join(format!("chaos-content-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    for file in FILES {
        std::fs::write(dir.join(file), builtin_file(file).unwrap()).unwrap();
    }
    let from_dir = Content::from_dir(&dir).unwrap();
    let builtin = Content::builtin().unwrap();
    assert_eq!(from_dir.version, builtin.version);
    assert_eq!(
        from_dir.items.keys().collect::<Vec<_>>(),
        builtin.items.keys().collect::<Vec<_>>()
    );

    // A broken file in the directory stops loading, naming the file, the entry and the field.
    let mut items: Value = serde_json::from_str(builtin_file("items.json").unwrap()).unwrap();
    items["health_potion"]["stack_size"] = json!(0);
    std::fs::write(dir.join("items.json"), items.to_string()).unwrap();
    assert_eq!(
        Content::from_dir(&dir).unwrap_err().to_string(),
        r#"items.json: item "health_potion": field "stack_size": must be at least 1"#
    );

    std::fs::remove_file(dir.join("npcs.json")).unwrap();
    let err = Content::from_dir(&dir).unwrap_err();
    assert!(
        matches!(
            err,
            ContentError::Io {
                file: "npcs.json",
                ..
            }
        ),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn parse_errors_name_the_file_the_entry_and_the_field() {
    assert_eq!(
        message(edited("zones.json", |z| z["starter_meadow"]["x"] = json!(1))),
        r#"zones.json: zone "starter_meadow": field "x": is not a known field (`x`, expected one of `name`, `kind`, `min_level`, `max_level`, `rules`, `respawn_zone`, `npcs`)"#
    );
    assert_eq!(
        message(edited("items.json", |i| {
            i["wolf_pelt"].as_object_mut().unwrap().remove("stack_size");
        })),
        r#"items.json: item "wolf_pelt": field "stack_size": is missing"#
    );
    assert_eq!(
        message(edited("items.json", |i| i["iron_sword"]["equip"]["slot"] =
            json!("pocket"))),
        r#"items.json: item "iron_sword": field "equip.slot": unknown variant `pocket`, expected one of `head`, `chest`, `legs`, `feet`, `hands`, `main_hand`, `off_hand`, `neck`, `ring`"#
    );
    assert_eq!(
        message(edited("npcs.json", |n| n["wolf"]["max_hp"] = json!("lots"))),
        r#"npcs.json: npc "wolf": field "max_hp": invalid type: string "lots", expected u32"#
    );
    assert_eq!(
        message(edited("progression.json", |p| p["bag_capacity"] = json!(-1))),
        r#"progression.json: field "bag_capacity": invalid value: integer `-1`, expected u32"#
    );
    assert_eq!(
        message(edited("recipes.json", |r| r["Bad Id"] = r["leather_cap"].clone())),
        r#"recipes.json: recipe "Bad Id": ids are 1 to 64 lower-case ASCII letters, digits or '_', starting with a letter"#
    );
    let err = with("skills.json", "{ not json").unwrap_err();
    assert!(
        matches!(
            err,
            ContentError::Syntax {
                file: "skills.json",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn every_cross_reference_is_checked() {
    for (result, expected) in [
        (
            edited("classes.json", |c| {
                c["mage"]["starting_skills"] = json!(["nope"])
            }),
            r#"classes.json: class "mage": field "starting_skills": unknown skill "nope""#,
        ),
        (
            edited("classes.json", |c| {
                c["mage"]["starting_skills"] = json!(["power_strike"])
            }),
            r#"classes.json: class "mage": field "starting_skills": skill "power_strike" is not open to this class at level 1"#,
        ),
        (
            edited("skills.json", |s| {
                s["fireball"]["classes"] = json!(["bard"])
            }),
            r#"skills.json: skill "fireball": field "classes": unknown class "bard""#,
        ),
        (
            edited("zones.json", |z| {
                z["whispering_woods"]["npcs"] = json!(["dragon"])
            }),
            r#"zones.json: zone "whispering_woods": field "npcs": unknown npc "dragon""#,
        ),
        (
            edited("zones.json", |z| {
                z["ember_caverns"]["respawn_zone"] = json!("chaos_wastes")
            }),
            r#"zones.json: zone "ember_caverns": field "respawn_zone": must be a safe zone"#,
        ),
        (
            edited("zones.json", |z| {
                z["starter_meadow"]["rules"]["pvp"] = json!(true)
            }),
            r#"zones.json: zone "starter_meadow": field "rules": a safe zone forbids offensive skills and PvP"#,
        ),
        (
            edited("zones.json", |z| z["goblin_warren"]["max_level"] = json!(2)),
            r#"zones.json: zone "goblin_warren": field "max_level": must be between min_level and 20"#,
        ),
        (
            edited("items.json", |i| {
                i["iron_sword"]["equip"]["classes"] = json!(["bard"])
            }),
            r#"items.json: item "iron_sword": field "equip.classes": unknown class "bard""#,
        ),
        (
            edited("items.json", |i| {
                i["wolf_pelt"]["equip"] = json!({"slot": "head"});
            }),
            r#"items.json: item "wolf_pelt": field "equip": only weapons, armor and accessories are equipped"#,
        ),
        (
            edited("items.json", |i| {
                i["health_potion"].as_object_mut().unwrap().remove("effect");
            }),
            r#"items.json: item "health_potion": field "effect": a consumable needs an effect"#,
        ),
        (
            edited("recipes.json", |r| {
                r["leather_cap"]["ingredients"][0]["item"] = json!("silk")
            }),
            r#"recipes.json: recipe "leather_cap": field "ingredients.0.item": unknown item "silk""#,
        ),
        (
            edited("recipes.json", |r| {
                r["leather_cap"]["produces"]["quantity"] = json!(2)
            }),
            r#"recipes.json: recipe "leather_cap": field "produces.quantity": must be between 1 and the item's stack size (1)"#,
        ),
        (
            edited("npcs.json", |n| {
                n["wolf"]["loot"][0]["item"] = json!("fang")
            }),
            r#"npcs.json: npc "wolf": field "loot.0.item": unknown item "fang""#,
        ),
        (
            edited("npcs.json", |n| {
                n["wolf"]["loot"][1]["chance_percent"] = json!(101)
            }),
            r#"npcs.json: npc "wolf": field "loot.1.chance_percent": must be between 1 and 100"#,
        ),
        (
            edited("progression.json", |p| {
                p["starting_zone"] = json!("atlantis")
            }),
            r#"progression.json: field "starting_zone": unknown zone "atlantis""#,
        ),
        (
            edited("progression.json", |p| p["xp_to_reach_level"][3] = json!(5)),
            r#"progression.json: field "xp_to_reach_level": must start at 0 (level 1) and strictly increase"#,
        ),
        (
            edited("manifest.json", |m| m["version"] = json!("")),
            r#"manifest.json: field "version": must be 1 to 64 characters without control characters"#,
        ),
    ] {
        assert_eq!(message(result), expected);
    }
    let err = edited("items.json", |i| {
        i["health_potion"]["stack_size"] = json!(0)
    })
    .unwrap_err();
    assert_eq!(
        err.problem().cloned(),
        Some(Problem {
            file: "items.json",
            entry: Some(("item", "health_potion".into())),
            field: Some("stack_size".into()),
            message: "must be at least 1".into(),
        })
    );
}
