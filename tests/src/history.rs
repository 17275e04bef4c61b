//! A long synthetic history for the rebuild and relay benchmarks (`rebuild_load`,
//! `relay_bench`): C characters with N events each (a creation, then strikes), interleaved in
//! the global order as live play would be (event k of every character, then event k + 1 of
//! every character), so a batch touches as many aggregates as it can.

use anyhow::Context;

const CREATED: &str = r#"{"CharacterCreated": {"owner": "00000000-0000-0000-0000-000000000001", "name": "Veteran", "class": "warrior", "level": 1, "max_hp": 140, "max_mana": 40, "zone": "whispering_woods", "skills": ["strike", "power_strike"], "created_at": "2026-01-01T00:00:00Z"}}"#;
const CAST: &str = r#"{"SkillCast": {"skill": "strike", "target": null, "hit": null, "zone": "whispering_woods", "mana_before": 40, "mana_cost": 0, "mana_after": 40, "damage": 3, "cooldown_until": "2026-01-01T00:00:00Z", "cast_at": "2026-01-01T00:00:00Z"}}"#;

/// The rows, in the global order described above. Character ids are UUIDs made from the
/// character's number (md5 of it, formatted), so both databases derive the same ones.
pub fn rows_sql(characters: u64, per: u64, postgres: bool) -> String {
    let created_version = current("CharacterCreated");
    let cast_version = current("SkillCast");
    let json = if postgres { "::json" } else { "" };
    let (series, id) = if postgres {
        (
            format!(
                "SELECT s, c FROM generate_series(1, {per}) AS s \
                 CROSS JOIN generate_series(1, {characters}) AS c"
            ),
            "uuid_in(md5(c::text)::cstring)::text".to_owned(),
        )
    } else {
        (
            format!(
                "WITH RECURSIVE ss(s) AS (SELECT 1 UNION ALL SELECT s + 1 FROM ss WHERE s < {per}), \
                 cc(c) AS (SELECT 1 UNION ALL SELECT c + 1 FROM cc WHERE c < {characters}) \
                 SELECT s, c FROM ss CROSS JOIN cc"
            ),
            "printf('00000000-0000-4000-8000-%012d', c)".to_owned(),
        )
    };
    format!(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, \
         payload, metadata)
         SELECT 'character', {id}, s,
                CASE WHEN s = 1 THEN 'CharacterCreated' ELSE 'SkillCast' END,
                CASE WHEN s = 1 THEN '{created_version}' ELSE '{cast_version}' END,
                CASE WHEN s = 1 THEN '{CREATED}'{json} ELSE '{CAST}'{json} END, '{{}}'{json}
         FROM ({series}) AS t ORDER BY s, c"
    )
}

/// The current stored version of a character event type: the rows are written as this build
/// writes them (an older version would measure the upcasters, not the rebuild).
pub fn current(event_type: &str) -> u32 {
    use chaos_domain::GameEvent;
    chaos_domain::CharacterEvent::current_version(event_type).expect("a character event type")
}

/// Checks that the payloads are this build's current shape: they decode without an upcaster.
pub fn check_payloads() -> anyhow::Result<()> {
    for (event_type, payload) in [("CharacterCreated", CREATED), ("SkillCast", CAST)] {
        chaos_domain::decode_stored_json::<chaos_domain::Character>(
            event_type,
            &current(event_type).to_string(),
            payload,
        )
        .with_context(|| format!("{event_type} is not in its current stored shape"))?;
    }
    Ok(())
}
