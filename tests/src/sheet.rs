//! A query-API character sheet (and wallet) against the state folded from the event store.

use std::collections::{BTreeMap, BTreeSet};

use chaos_domain::character::CharacterState;
use chaos_domain::wallet::WalletState;
use chrono::{DateTime, Utc};
use serde_json::Value;

fn time(v: Option<&Value>) -> Option<DateTime<Utc>> {
    v.and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// Every difference between `sheet` (the private sheet the query API serves) and the state
/// folded from the first `version` events of character `id` and the first `wallet_version`
/// events of its wallet; empty when they agree. Also checks the per-stream positions and that
/// `events_applied` is their sum (nothing was applied twice).
pub fn mismatches(
    sheet: &Value,
    id: &str,
    state: &CharacterState,
    version: u64,
    wallet: Option<(&WalletState, u64)>,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |field: &str, ok: bool, want: String| {
        if !ok {
            out.push(format!(
                "{id}.{field}: sheet has {}, store says {want}",
                sheet.get(field).unwrap_or(&Value::Null)
            ));
        }
    };
    let str_eq = |f: &str, want: &str| sheet.get(f).and_then(Value::as_str) == Some(want);
    let u64_eq = |f: &str, want: u64| sheet.get(f).and_then(Value::as_u64) == Some(want);

    check("id", str_eq("id", id), id.to_owned());
    let owner = state.owner.to_string();
    check("owner", str_eq("owner", &owner), owner.clone());
    check(
        "name",
        str_eq("name", state.name.as_str()),
        state.name.as_str().to_owned(),
    );
    check("class", str_eq("class", &state.class), state.class.clone());
    check(
        "level",
        u64_eq("level", u64::from(state.level)),
        state.level.to_string(),
    );
    check("xp", u64_eq("xp", state.xp), state.xp.to_string());
    check(
        "hp",
        u64_eq("hp", u64::from(state.hp)),
        state.hp.to_string(),
    );
    check(
        "max_hp",
        u64_eq("max_hp", u64::from(state.max_hp)),
        state.max_hp.to_string(),
    );
    check(
        "mana",
        u64_eq("mana", u64::from(state.mana)),
        state.mana.to_string(),
    );
    check(
        "max_mana",
        u64_eq("max_mana", u64::from(state.max_mana)),
        state.max_mana.to_string(),
    );
    check(
        "mana_as_of",
        time(sheet.get("mana_as_of")) == Some(state.mana_as_of),
        state.mana_as_of.to_rfc3339(),
    );
    check("zone", str_eq("zone", &state.zone), state.zone.clone());
    let skills: Option<BTreeSet<String>> = sheet.get("skills").and_then(Value::as_array).map(|a| {
        a.iter()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect()
    });
    check(
        "skills",
        skills.as_ref() == Some(&state.skills),
        format!("{:?}", state.skills),
    );
    let cooldowns: Option<BTreeMap<String, Option<DateTime<Utc>>>> = sheet
        .get("cooldowns")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), time(Some(v)))).collect());
    let want: BTreeMap<String, Option<DateTime<Utc>>> = state
        .cooldowns
        .iter()
        .map(|(k, v)| (k.clone(), Some(*v)))
        .collect();
    check(
        "cooldowns",
        cooldowns.as_ref() == Some(&want),
        format!("{:?}", state.cooldowns),
    );
    check(
        "hp_as_of",
        time(sheet.get("hp_as_of")) == Some(state.hp_as_of),
        state.hp_as_of.to_rfc3339(),
    );
    check(
        "dead_since",
        time(sheet.get("dead_since")) == state.dead_since,
        format!("{:?}", state.dead_since),
    );
    let bag: Option<BTreeMap<String, u64>> = sheet.get("bag").and_then(Value::as_object).map(|m| {
        m.iter()
            .filter_map(|(k, v)| v.as_u64().map(|n| (k.clone(), n)))
            .collect()
    });
    let want_bag: BTreeMap<String, u64> = state
        .bag
        .iter()
        .map(|(k, v)| (k.clone(), u64::from(*v)))
        .collect();
    check(
        "bag",
        bag.as_ref() == Some(&want_bag),
        format!("{want_bag:?}"),
    );
    let equipment: Option<BTreeMap<String, String>> =
        sheet.get("equipment").and_then(Value::as_object).map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|i| (k.clone(), i.to_owned())))
                .collect()
        });
    let want_equipment: BTreeMap<String, String> = state
        .equipment
        .iter()
        .map(|(slot, item)| (slot.as_str().to_owned(), item.clone()))
        .collect();
    check(
        "equipment",
        equipment.as_ref() == Some(&want_equipment),
        format!("{want_equipment:?}"),
    );
    let position = |source: &str| {
        sheet
            .get("positions")
            .and_then(|p| p.get(source))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    let character_position = position(&format!("character/{id}"));
    check(
        "positions.character",
        character_position == version,
        version.to_string(),
    );
    let (purse, wallet_version): (BTreeMap<String, u64>, u64) = match wallet {
        Some((w, v)) => (
            w.balances
                .iter()
                .map(|(c, b)| (c.to_string(), *b))
                .collect(),
            v,
        ),
        None => (BTreeMap::new(), 0),
    };
    let wallet_position = position(&format!("wallet/{id}"));
    check(
        "positions.wallet",
        wallet_position == wallet_version,
        wallet_version.to_string(),
    );
    let got_purse: Option<BTreeMap<String, u64>> =
        sheet.get("purse").and_then(Value::as_object).map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_u64().map(|n| (k.clone(), n)))
                .collect()
        });
    check(
        "purse",
        got_purse.as_ref() == Some(&purse),
        format!("{purse:?}"),
    );
    let applied = version + wallet_version;
    check(
        "events_applied",
        u64_eq("events_applied", applied),
        format!("{applied} (one application per event)"),
    );
    out
}
