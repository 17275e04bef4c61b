//! The player core played end to end over HTTP, the same in both modes (the distributed stack and
//! the embedded `chaos` process): a PvP kill in a PvP zone (the victim dies and respawns, the
//! killer gains the bounty), the same attack refused in a safe zone and in a dungeon without
//! PvP, a craft, a potion, an equip, bad input refused with nothing appended, and the read side
//! (sheet with derived stats, inventory, profile, leaderboard, presence) showing all of it.

use std::time::Duration;

use anyhow::ensure;
use serde_json::{json, Value};

use crate::client::{CommandApi, Player, QueryApi, Reply};
use crate::wait::wait_until;

/// How long the read side may take to show a command (debug builds on a busy machine).
const READ_SIDE: Duration = Duration::from_secs(60);

/// The characters the scenario played.
#[derive(Debug, Clone)]
pub struct Played {
    pub killer: String,
    pub killer_player: Player,
    pub victim: String,
    pub victim_player: Player,
}

async fn post(api: &CommandApi, token: &str, path: &str, body: Value) -> anyhow::Result<Reply> {
    api.post(path, Some(token), &body, &[]).await
}

/// Waits until `GET path` (as `queries`' bearer) answers 200 with a body `done` accepts.
async fn read_until(
    queries: &QueryApi,
    what: &str,
    path: &str,
    done: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    wait_until(what, READ_SIDE, Duration::from_millis(50), || {
        let request = queries.get(path, &[]);
        let done = &done;
        async move {
            let r = request.await.map_err(|e| e.to_string())?;
            if r.status == 200 && done(&r.body) {
                Ok(Some(r.body))
            } else {
                Err(format!("{} {}", r.status, r.body))
            }
        }
    })
    .await
}

/// Plays the scenario. `names` makes the character names unique per run (2 to 8 letters);
/// `gm` is a game master's token.
pub async fn player_core(
    api: &CommandApi,
    queries: &QueryApi,
    gm: &str,
    names: &str,
) -> anyhow::Result<Played> {
    let gm_queries = queries.with_token(gm);
    let killer_player = api.player(&format!("killer_{names}")).await?;
    let victim_player = api.player(&format!("victim_{names}")).await?;
    let (kt, vt) = (killer_player.token.clone(), victim_player.token.clone());
    let killer = api
        .create_character(&kt, &format!("Grim{names}"), "warrior", &[])
        .await?
        .answer()?
        .aggregate_id;
    let victim = api
        .create_character(&vt, &format!("Vela{names}"), "mage", &[])
        .await?
        .answer()?
        .aggregate_id;

    // Both start in the PvP woods. The killer strikes until the victim is dead; damage reaches
    // the victim through the combat process manager, so the last casts may still find it alive
    // by the store and miss when they land.
    let strike = json!({"skill": "strike", "target": {"character": victim}});
    let cast_path = format!("/v1/characters/{killer}/cast-skill");
    let mut casts = 0;
    loop {
        let r = post(api, &kt, &cast_path, strike.clone()).await?;
        if r.status == 422 {
            r.assert_problem(422, Some("target-dead"));
            break;
        }
        ensure!(r.status == 200, "a strike: {r:?}");
        casts += 1;
        ensure!(casts < 400, "the victim never died after {casts} strikes");
    }
    let dead = read_until(
        &gm_queries,
        "the victim dead",
        &format!("/v1/characters/{victim}/sheet"),
        |s| !s["dead_since"].is_null(),
    )
    .await?;
    ensure!(dead["hp_now"] == 0, "the dead have no hit points: {dead}");
    ensure!(dead["deaths"] == 1, "{dead}");
    let killer_sheet = read_until(
        &gm_queries,
        "the killer credited with the kill",
        &format!("/v1/characters/{killer}/sheet"),
        |s| s["kills"]["characters"] == 1,
    )
    .await?;
    // The bounty: 10 experience per victim level on top of a point per strike.
    ensure!(
        killer_sheet["xp"].as_u64().unwrap_or(0) >= 10 + casts,
        "bounty and strikes: {killer_sheet} after {casts} strikes"
    );

    // The dead can do nothing but respawn.
    let refused = post(
        api,
        &vt,
        &format!("/v1/characters/{victim}/cast-skill"),
        json!({"skill": "strike"}),
    )
    .await?;
    refused.assert_problem(422, Some("character-dead"));
    let respawned = post(
        api,
        &vt,
        &format!("/v1/characters/{victim}/respawn"),
        json!({}),
    )
    .await?
    .answer()?;
    ensure!(respawned.events == ["CharacterRespawned"], "{respawned:?}");
    let again = post(
        api,
        &vt,
        &format!("/v1/characters/{victim}/respawn"),
        json!({}),
    )
    .await?;
    again.assert_problem(422, Some("character-alive"));
    let alive = read_until(
        &queries.with_token(&vt),
        "the victim back",
        &format!("/v1/characters/{victim}/sheet"),
        |s| s["dead_since"].is_null() && s["deaths"] == 1,
    )
    .await?;
    ensure!(
        alive["zone"] == "starter_meadow",
        "respawned at the woods' respawn point: {alive}"
    );
    ensure!(alive["hp"] == alive["max_hp"], "at full health: {alive}");

    // The same attack in a safe zone, then in a dungeon without PvP: refused, nothing appended.
    post(
        api,
        &kt,
        &format!("/v1/characters/{killer}/travel"),
        json!({"zone": "starter_meadow"}),
    )
    .await?
    .answer()?;
    let before = api.history_len(&kt, &killer).await?;
    post(api, &kt, &cast_path, strike.clone())
        .await?
        .assert_problem(422, Some("zone-forbids-skill"));
    for (id, token) in [(&killer, &kt), (&victim, &vt)] {
        post(
            api,
            gm,
            &format!("/v1/characters/{id}/grant-experience"),
            json!({"amount": 100, "source": "test:dungeon"}),
        )
        .await?
        .answer()?;
        post(
            api,
            token,
            &format!("/v1/characters/{id}/travel"),
            json!({"zone": "goblin_warren"}),
        )
        .await?
        .answer()?;
    }
    let before_dungeon = api.history_len(&kt, &killer).await?;
    ensure!(
        before_dungeon >= before + 3,
        "experience, level-ups and the travel; the refused strike nothing"
    );
    post(api, &kt, &cast_path, strike.clone())
        .await?
        .assert_problem(422, Some("zone-forbids-pvp"));
    // Bad targets.
    post(
        api,
        &kt,
        &cast_path,
        json!({"skill": "strike", "target": {"character": killer}}),
    )
    .await?
    .assert_problem(422, Some("invalid-target"));
    post(
        api,
        &kt,
        &cast_path,
        json!({"skill": "strike", "target": {"character": uuid::Uuid::new_v4()}}),
    )
    .await?
    .assert_problem(404, Some("target-not-found"));
    post(
        api,
        &kt,
        &cast_path,
        json!({"skill": "strike", "target": {"npc": "dragon"}}),
    )
    .await?
    .assert_problem(422, Some("unknown-npc"));
    post(
        api,
        &kt,
        &cast_path,
        json!({"skill": "meteor", "target": {"npc": "goblin"}}),
    )
    .await?
    .assert_problem(422, Some("unknown-skill"));
    post(
        api,
        &kt,
        &cast_path,
        json!({"skill": "strike", "target": {"npc": "goblin", "character": victim}}),
    )
    .await?
    .assert_problem(400, None);
    ensure!(
        api.history_len(&kt, &killer).await? == before_dungeon,
        "refused commands appended nothing"
    );

    // Items: a craft, a potion, an equip; bad input refused, nothing appended.
    let v = |path: &str| format!("/v1/characters/{victim}/{path}");
    post(
        api,
        gm,
        &v("grant-item"),
        json!({"item": "healing_herb", "quantity": 4, "source": "test:herbs"}),
    )
    .await?
    .answer()?;
    post(
        api,
        gm,
        &v("grant-item"),
        json!({"item": "leather_cap", "quantity": 1, "source": "test:cap"}),
    )
    .await?
    .answer()?;
    let crafted = post(api, &vt, &v("craft"), json!({"recipe": "health_potion"}))
        .await?
        .answer()?;
    ensure!(crafted.events == ["ItemCrafted"], "{crafted:?}");
    let victim_events = api.history_len(&vt, &victim).await?;
    for (path, body, status, problem) in [
        (
            "craft",
            json!({"recipe": "philosophers_stone"}),
            422,
            Some("unknown-recipe"),
        ),
        (
            "use-item",
            json!({"item": "unobtainium"}),
            422,
            Some("unknown-item"),
        ),
        (
            "use-item",
            json!({"item": "mana_potion"}),
            422,
            Some("insufficient-items"),
        ),
        (
            "use-item",
            json!({"item": "leather_cap"}),
            422,
            Some("item-not-usable"),
        ),
        (
            "equip",
            json!({"item": "leather_cap", "slot": "main_hand"}),
            422,
            Some("wrong-slot"),
        ),
        (
            "equip",
            json!({"item": "leather_cap", "slot": "tail"}),
            400,
            None,
        ),
        (
            "destroy-item",
            json!({"item": "healing_herb", "quantity": 0}),
            400,
            None,
        ),
        (
            "destroy-item",
            json!({"item": "healing_herb", "quantity": -3}),
            400,
            None,
        ),
        (
            "destroy-item",
            json!({"item": "healing_herb", "quantity": 1_000_000}),
            400,
            None,
        ),
        (
            "destroy-item",
            json!({"item": "healing_herb", "quantity": 3}),
            422,
            Some("insufficient-items"),
        ),
        ("unequip", json!({"slot": "head"}), 422, Some("slot-empty")),
    ] {
        post(api, &vt, &v(path), body)
            .await?
            .assert_problem(status, problem);
    }
    // Another player's character and inventory.
    post(api, &kt, &v("use-item"), json!({"item": "health_potion"}))
        .await?
        .assert_problem(403, Some("not-character-owner"));
    queries
        .with_token(&kt)
        .get(&v("inventory"), &[])
        .await?
        .assert_problem(403, Some("forbidden"));
    ensure!(
        api.history_len(&vt, &victim).await? == victim_events,
        "refused item commands appended nothing"
    );
    let used = post(api, &vt, &v("use-item"), json!({"item": "health_potion"}))
        .await?
        .answer()?;
    ensure!(used.events == ["ItemUsed"], "{used:?}");
    let unequipped = read_until(
        &queries.with_token(&vt),
        "the potion used",
        &v("sheet"),
        |s| s["bag"].get("health_potion").is_none() && s["bag"]["healing_herb"] == 2,
    )
    .await?;
    let equipped = post(
        api,
        &vt,
        &v("equip"),
        json!({"item": "leather_cap", "slot": "head"}),
    )
    .await?
    .answer()?;
    let sheet = queries
        .with_token(&vt)
        .get(
            &v("sheet"),
            &[("Consistency-Token", &equipped.consistency_token)],
        )
        .await?;
    ensure!(sheet.status == 200, "{sheet:?}");
    let defense = |s: &Value| s["stats"]["defense"].as_u64();
    ensure!(
        defense(&sheet.body) == defense(&unequipped).map(|d| d + 2),
        "the cap's +2 defense: {} then {}",
        unequipped["stats"],
        sheet.body["stats"]
    );
    ensure!(
        sheet.body["equipment"]["head"] == "leather_cap",
        "{}",
        sheet.body
    );
    let inventory = queries.with_token(&vt).get(&v("inventory"), &[]).await?;
    ensure!(inventory.status == 200, "{inventory:?}");
    ensure!(
        inventory.body["equipment"]["head"]["name"] == "Leather Cap"
            && inventory.body["bag"].as_array().is_some_and(|b| b
                .iter()
                .any(|l| l["item"] == "healing_herb" && l["quantity"] == 2)),
        "{}",
        inventory.body
    );
    let profile = queries
        .get(&format!("/v1/characters/{victim}"), &[])
        .await?;
    ensure!(
        profile.status == 200 && profile.body["equipment"]["head"] == "leather_cap",
        "the public profile shows what is worn: {profile:?}"
    );
    ensure!(
        profile.body.get("bag").is_none() && profile.body.get("owner").is_none(),
        "nor the bag, nor the owner: {profile:?}"
    );

    // The read side's boards: the kill on the PvP leaderboard, both in the dungeon.
    let board = read_until(
        queries,
        "the kill on the PvP leaderboard",
        &format!("/v1/leaderboards/pvp/around/{killer}?radius=0"),
        |b| b["entries"][0]["id"] == killer.as_str() && b["entries"][0]["score"] == 1,
    )
    .await?;
    ensure!(
        board["entries"][0]["name"] == format!("Grim{names}"),
        "{board}"
    );
    let presence = read_until(
        queries,
        "both in the dungeon",
        "/v1/zones/goblin_warren/presence?limit=100",
        |p| {
            let ids: Vec<&str> = p["entries"]
                .as_array()
                .map(|e| e.iter().filter_map(|x| x["id"].as_str()).collect())
                .unwrap_or_default();
            ids.contains(&killer.as_str()) && ids.contains(&victim.as_str())
        },
    )
    .await?;
    ensure!(presence["online"].as_u64() >= Some(2), "{presence}");
    Ok(Played {
        killer,
        killer_player,
        victim,
        victim_player,
    })
}
