//! Each event type's modelled rows, value by value; the views.

use chaos_domain::{CharacterEvent, GameEvent};
use chaos_schemas::AnyEvent;
use uuid::Uuid;

use super::super::schema::{self, Kind};
use super::super::Warehouse;
use super::{at, character_id, count, life, published, purse, query_strings, TempDir};
use crate::runner::Verdict;

#[tokio::test]
async fn every_event_type_has_modelled_rows() {
    let dir = TempDir::new();
    let w = Warehouse::open(dir.db()).await.unwrap();
    let mut events = life("c-1");
    events.extend(purse("c-1"));
    let verdicts = w.apply_batch(&events, &[]).await.unwrap();
    assert_eq!(verdicts, vec![Verdict::Applied; events.len()]);
    // Every event type of every aggregate is in the history, and every event has at least one
    // modelled row: no event type is only in `events`.
    let mut types: Vec<&str> = events.iter().map(|e| e.event.event_type()).collect();
    types.sort_unstable();
    types.dedup();
    let all: usize = chaos_schemas::AGGREGATES
        .iter()
        .map(|a| a.events.len())
        .sum();
    assert_eq!(types.len(), all, "the fixture must hold every event type");
    let conn = w.connect().await.unwrap();
    let union: Vec<String> = schema::event_tables()
        .filter(|t| t.name != schema::EVENTS)
        .map(|t| format!("SELECT event_id FROM {}", t.name))
        .collect();
    let unmodelled = query_strings(
        &conn,
        &format!(
            "SELECT event_type FROM events WHERE event_id NOT IN ({})",
            union.join(" UNION ALL ")
        ),
    );
    assert!(unmodelled.is_empty(), "{unmodelled:?}");
    for (table, rows) in [
        ("characters", 1),
        ("skill_casts", 2),
        ("cast_hits", 2),
        ("npc_kills", 1),
        ("loot_left", 1),
        ("experience_gains", 1),
        ("level_ups", 1),
        ("zone_entries", 1),
        ("pvp_damage", 1),
        ("attack_misses", 1),
        ("item_uses", 1),
        ("crafts", 1),
        ("craft_ingredients", 1),
        ("equipment_changes", 2),
        ("deaths", 1),
        ("respawns", 1),
        // acquired 2 + used 1 + consumed 1 + crafted 1 + equipped 1 + replaced 1 +
        // unequipped 1 + destroyed 1
        ("item_flows", 9),
        ("wallets", 1),
        ("currency_flows", 2),
    ] {
        assert_eq!(count(&w, table).await, rows, "{table}");
    }
}

#[tokio::test]
async fn combat_rows_hold_each_events_facts() {
    let dir = TempDir::new();
    let w = Warehouse::open(dir.db()).await.unwrap();
    let events = life("c-1");
    w.apply_batch(&events, &[]).await.unwrap();
    let conn = w.connect().await.unwrap();
    let other = character_id(77).to_string();
    let rows = |sql: &str| query_strings(&conn, sql);
    assert_eq!(
        rows("SELECT concat_ws('|', event_id, character_id, sequence, skill, coalesce(target, '-'),
                     zone, mana_before, mana_cost, mana_after, damage, cooldown_until, cast_at)
              FROM skill_casts ORDER BY sequence LIMIT 1"),
        vec![format!(
            "{}|c-1|2|fireball|wolf|whispering_woods|120|30|90|42|2026-05-28 20:26:53|2026-05-28 20:26:50.25",
            events[1].envelope.event_id
        )]
    );
    assert_eq!(
        rows(
            "SELECT concat_ws('|', target_kind, target_id, rolled_damage,
                     coalesce(npc_damage::VARCHAR, '-'), coalesce(npc_hp_before::VARCHAR, '-'),
                     coalesce(npc_hp_after::VARCHAR, '-'))
              FROM cast_hits ORDER BY sequence"
        ),
        vec![
            "npc|wolf|42|40|60|20".to_owned(),
            format!("character|{other}|25|-|-|-"),
        ]
    );
    assert_eq!(
        rows(
            "SELECT concat_ws('|', npc, zone, xp_reward, loot_left_quantity, killed_at)
              FROM npc_kills"
        ),
        vec!["wolf|whispering_woods|12|2|2026-05-28 20:27:00"]
    );
    assert_eq!(
        rows("SELECT concat_ws('|', line, npc, item, quantity) FROM loot_left"),
        vec!["0|wolf|wolf_pelt|2"]
    );
    assert_eq!(
        rows(
            "SELECT concat_ws('|', victim_id, attacker_id, cause_event_id, skill, rolled_damage,
                     damage, hp_before, hp_after, zone, taken_at) FROM pvp_damage"
        ),
        vec![format!(
            "c-1|{other}|cast-1|strike|30|28|90|62|goblin_warren|2026-05-28 20:27:21"
        )]
    );
    assert_eq!(
        rows("SELECT concat_ws('|', victim_id, attacker_id, reason, zone) FROM attack_misses"),
        vec![format!("c-1|{other}|target-left-zone|goblin_warren")]
    );
    assert_eq!(
        rows(
            "SELECT concat_ws('|', character_id, killer_id, cause, zone, bounty_xp, died_at)
              FROM deaths"
        ),
        vec![format!(
            "c-1|{other}|taken-1|goblin_warren|20|2026-05-28 20:28:20"
        )]
    );
    assert_eq!(
        rows("SELECT concat_ws('|', from_zone, zone, hp, mana) FROM respawns"),
        vec!["goblin_warren|starter_meadow|90|135"]
    );
    assert_eq!(
        rows(
            "SELECT concat_ws('|', level, max_hp, max_mana, len(skills_unlocked), gold_reward,
                     leveled_at) FROM level_ups"
        ),
        vec!["2|90|135|0|20|2026-05-28 20:27:00"]
    );
    assert_eq!(
        rows("SELECT concat_ws('|', amount, total_xp, source) FROM experience_gains"),
        vec!["150|150|kill:wolf"]
    );
    assert_eq!(
        rows(
            "SELECT concat_ws('|', character_id, name, class, level, zone, len(skills),
                     skills[2], created_at) FROM characters"
        ),
        vec!["c-1|Aria|mage|1|whispering_woods|2|odd \"one\", \\ [x]|2026-05-28 20:26:40.001"]
    );
}

#[tokio::test]
async fn item_and_economy_rows_hold_each_events_facts() {
    let dir = TempDir::new();
    let w = Warehouse::open(dir.db()).await.unwrap();
    let mut events = life("c-1");
    events.extend(purse("c-1"));
    w.apply_batch(&events, &[]).await.unwrap();
    let conn = w.connect().await.unwrap();
    let rows = |sql: &str| query_strings(&conn, sql);
    assert_eq!(
        rows(
            "SELECT concat_ws('|', sequence, line, item, flow, coalesce(source, '-'),
                     coalesce(source_kind, '-'), quantity, bag_delta, quantity_after)
              FROM item_flows ORDER BY sequence, line"
        ),
        vec![
            "6|0|healing_herb|acquired|loot:wolf|loot|3|3|3",
            "6|1|wolf_pelt|acquired|loot:wolf|loot|1|1|1",
            "11|0|healing_herb|used|-|-|1|-1|2",
            "12|0|healing_herb|consumed|craft:health_potion|craft|2|-2|0",
            "12|1|health_potion|crafted|craft:health_potion|craft|1|1|1",
            "13|0|wolf_pelt|equipped|-|-|1|-1|0",
            "13|1|leather_cap|replaced|-|-|1|1|1",
            "14|0|wolf_pelt|unequipped|-|-|1|1|1",
            "15|0|leather_cap|destroyed|-|-|1|-1|0",
        ]
    );
    assert_eq!(
        rows(
            "SELECT concat_ws('|', recipe, produced_item, produced_quantity, ingredient_quantity)
              FROM crafts"
        ),
        vec!["health_potion|health_potion|1|2"]
    );
    assert_eq!(
        rows("SELECT concat_ws('|', line, recipe, item, quantity) FROM craft_ingredients"),
        vec!["0|health_potion|healing_herb|2"]
    );
    assert_eq!(
        rows(
            "SELECT concat_ws('|', item, quantity_after, hp_before, hp_after, mana_before,
                     mana_after) FROM item_uses"
        ),
        vec!["healing_herb|2|62|90|105|105"]
    );
    assert_eq!(
        rows(
            "SELECT concat_ws('|', action, item, slot, coalesce(replaced_item, '-'), max_hp, hp)
              FROM equipment_changes ORDER BY sequence"
        ),
        vec![
            "equipped|wolf_pelt|head|leather_cap|95|90",
            "unequipped|wolf_pelt|head|-|90|90"
        ]
    );
    assert_eq!(
        rows(
            "SELECT concat_ws('|', wallet_id, currency, direction, amount, delta, balance_after,
                     reason, reference) FROM currency_flows ORDER BY sequence"
        ),
        vec![
            "c-1|gold|source|20|20|20|level-up|level:2",
            "c-1|gold|sink|15|-15|5|vendor:health_potion|order-1",
        ]
    );
    assert_eq!(
        rows("SELECT concat_ws('|', wallet_id, character_id) FROM wallets"),
        vec![format!("c-1|{}", character_id(1))]
    );
    // The payload is the Avro record's own fields (times in millis), compared as JSON.
    let payload: Vec<serde_json::Value> =
        rows("SELECT payload FROM events WHERE aggregate_type = 'wallet' AND sequence = 2")
            .iter()
            .map(|p| serde_json::from_str(p).unwrap())
            .collect();
    assert_eq!(
        payload,
        vec![serde_json::json!({
            "currency": "gold", "amount": 20, "balance_after": 20, "source": "level-up",
            "reference": "level:2", "granted_at": 1_780_000_020_000_i64
        })]
    );
}

/// Every stored table's columns, as analysts see them: a fact table's time column exists.
#[tokio::test]
async fn the_catalogue_matches_the_database() {
    let dir = TempDir::new();
    let w = Warehouse::open(dir.db()).await.unwrap();
    let conn = w.connect().await.unwrap();
    for table in schema::CATALOGUE {
        if let Kind::Fact { time } = table.kind {
            let found = query_strings(
                &conn,
                &format!(
                    "SELECT column_name FROM (DESCRIBE {}) WHERE column_name = '{time}'",
                    table.name
                ),
            );
            assert_eq!(found.len(), 1, "{}.{time}", table.name);
        }
        conn.execute_batch(&format!(
            "SELECT * FROM {} ORDER BY {} LIMIT 0",
            table.name, table.order_by
        ))
        .unwrap();
    }
}

#[tokio::test]
async fn sessions_split_on_a_gap_of_own_actions_in_any_arrival_order() {
    let dir = TempDir::new();
    let w = Warehouse::open(dir.db()).await.unwrap();
    let gap = i64::from(super::super::SESSION_GAP_MINUTES) * 60;
    // Own actions at 0 s, 60 s, 60 s + gap (exactly the gap: same session), then + 1 s past
    // the gap (a new session), and one more 10 s later.
    let times = [0, 60, 60 + gap, 60 + 2 * gap + 1, 60 + 2 * gap + 11];
    let mut events: Vec<_> = times
        .iter()
        .zip(1..)
        .map(|(t, seq)| {
            published(
                "c-9",
                seq,
                CharacterEvent::ZoneEntered {
                    from_zone: "a".into(),
                    to_zone: "b".into(),
                    entered_at: at(*t, 0),
                },
            )
        })
        .collect();
    // Damage taken from someone else's cast in the gap is not the player acting.
    let mut taken = life("c-9")[8].clone();
    taken.envelope.sequence = 6;
    taken.envelope.event_id = Uuid::new_v4();
    taken.envelope.causation_id = Some("cast".into());
    taken.envelope.occurred_at = at(60 + gap + gap / 2, 0);
    if let AnyEvent::Character(e) = &taken.event {
        assert_eq!(e.type_name(), "DamageTaken");
    }
    events.push(taken);
    // Delivered out of order, in two batches.
    events.reverse();
    w.apply_batch(&events[..3], &[]).await.unwrap();
    w.apply_batch(&events[3..], &[]).await.unwrap();
    let conn = w.connect().await.unwrap();
    assert_eq!(
        query_strings(
            &conn,
            "SELECT concat_ws('|', character_id, session_number, duration_seconds, actions)
             FROM sessions ORDER BY session_number"
        ),
        vec![format!("c-9|1|{}.0|3", 60 + gap), "c-9|2|10.0|2".to_owned()]
    );
    // The date dimension spans the events' days.
    let days = query_strings(
        &conn,
        "SELECT min(day)::VARCHAR || '|' || max(day)::VARCHAR || '|' || count(*) FROM dates",
    );
    assert_eq!(days, vec!["2026-05-28|2026-05-28|1"]);
}

/// A large batch is mapped by two threads, each half into tables of its own: joined, the same
/// tables, rows in the same order, as one event at a time on one thread.
#[test]
fn a_large_batch_maps_like_one_event_at_a_time() {
    let events: Vec<_> = (0..)
        .flat_map(|i| {
            let id = format!("c-{i}");
            let mut all = life(&id);
            all.extend(purse(&id));
            all
        })
        .take(5_001)
        .collect();
    let mut serial = super::super::rows::Tables::new(0);
    for event in &events {
        super::super::rows::event_rows(event, &mut serial);
    }
    let serial = serial.finish();
    assert!(serial.keys.iter().all(Result::is_ok));
    assert_eq!(serial.keys.len(), events.len());
    let parallel = super::super::rows::batch_rows(&events);
    assert!(parallel.broken.is_none());
    assert_eq!(parallel, serial);
}
