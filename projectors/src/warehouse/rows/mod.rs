//! Published events -> warehouse rows, in the column order of [`super::schema`]. Pure.
//!
//! Times are cut to milliseconds, the precision of the Avro contract, so a warehouse fed from
//! the event store and one fed from Kafka hold the same values.

use chaos_domain::{CharacterEvent, WalletEvent};
use chaos_schemas::{AnyEvent, PublishedEvent};
use chrono::{DateTime, Utc};
use duckdb::types::{TimeUnit, Value};
use uuid::Uuid;

use super::schema;

/// One event's rows: its `events` row and, for event types with a typed table, that row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EventRows {
    pub(crate) event_id: Uuid,
    /// `(aggregate_type, aggregate_id, sequence)`: unique per event.
    pub(crate) stream_key: (String, String, u64),
    pub(crate) event: Vec<Value>,
    pub(crate) typed: Option<(&'static str, Vec<Value>)>,
}

/// Maps an event to its rows. `Err` carries the reason the event cannot be stored (a dead
/// letter), which with a passing schema test suite does not happen.
pub(crate) fn event_rows(published: &PublishedEvent) -> Result<EventRows, String> {
    let e = &published.envelope;
    // The Avro record (the published contract), not the Rust enum's serde shape.
    let mut record = serde_json::Value::try_from(chaos_schemas::to_avro(published))
        .map_err(|err| format!("event payload is not representable as JSON: {err}"))?;
    // The envelope has its own columns; the payload is the event's own fields.
    if let Some(fields) = record.as_object_mut() {
        fields.remove("envelope");
    }
    let event = vec![
        Value::Text(e.event_id.to_string()),
        Value::Text(e.event_type.clone()),
        Value::Text(e.aggregate_type.clone()),
        Value::Text(e.aggregate_id.clone()),
        bigint(e.sequence),
        Value::BigInt(e.global_position),
        timestamp(e.occurred_at),
        text_opt(e.correlation_id.as_deref()),
        text_opt(e.causation_id.as_deref()),
        Value::Int(i32::try_from(published.event.schema_version()).unwrap_or(i32::MAX)),
        Value::Text(record.to_string()),
    ];
    let typed = match &published.event {
        AnyEvent::Character(domain) => character_row(published, domain),
        AnyEvent::Wallet(domain) => Some(wallet_row(published, domain)),
    };
    Ok(EventRows {
        event_id: e.event_id,
        stream_key: (e.aggregate_type.clone(), e.aggregate_id.clone(), e.sequence),
        event,
        typed,
    })
}

/// The typed row of a character event; `None` for the player core's events (combat, death, the
/// bag, the equipment), which have no typed table yet: they are in `events` with their payload.
fn character_row(
    published: &PublishedEvent,
    event: &CharacterEvent,
) -> Option<(&'static str, Vec<Value>)> {
    let e = &published.envelope;
    let event_id = Value::Text(e.event_id.to_string());
    let character = Value::Text(e.aggregate_id.clone());
    let sequence = bigint(e.sequence);
    match event {
        CharacterEvent::CharacterCreated {
            owner,
            name,
            class,
            level,
            max_hp,
            max_mana,
            zone,
            skills,
            created_at,
        } => Some((
            schema::CHARACTERS,
            vec![
                character,
                event_id,
                Value::Text(owner.to_string()),
                Value::Text(name.as_str().to_owned()),
                Value::Text(class.clone()),
                Value::SmallInt(i16::from(*level)),
                int(*max_hp),
                int(*max_mana),
                Value::Text(zone.clone()),
                texts(skills),
                timestamp(*created_at),
            ],
        )),
        CharacterEvent::SkillCast {
            skill,
            target,
            zone,
            mana_before,
            mana_cost,
            mana_after,
            damage,
            cooldown_until,
            cast_at,
            // The typed target (SkillCast v2) has no column yet; `target` keeps its text.
            hit: _,
        } => Some((
            schema::SKILL_CASTS,
            vec![
                event_id,
                character,
                sequence,
                Value::Text(skill.clone()),
                text_opt(target.as_deref()),
                Value::Text(zone.clone()),
                int(*mana_before),
                int(*mana_cost),
                int(*mana_after),
                int(*damage),
                timestamp(*cooldown_until),
                timestamp(*cast_at),
            ],
        )),
        CharacterEvent::ExperienceGained {
            amount,
            total_xp,
            source,
            gained_at,
        } => Some((
            schema::EXPERIENCE_GAINS,
            vec![
                event_id,
                character,
                sequence,
                bigint(*amount),
                bigint(*total_xp),
                Value::Text(source.clone()),
                timestamp(*gained_at),
            ],
        )),
        CharacterEvent::LeveledUp {
            level,
            max_hp,
            max_mana,
            skills_unlocked,
            leveled_at,
            ..
        } => Some((
            schema::LEVEL_UPS,
            vec![
                event_id,
                character,
                sequence,
                Value::SmallInt(i16::from(*level)),
                int(*max_hp),
                int(*max_mana),
                texts(skills_unlocked),
                timestamp(*leveled_at),
            ],
        )),
        CharacterEvent::ZoneEntered {
            from_zone,
            to_zone,
            entered_at,
        } => Some((
            schema::ZONE_ENTRIES,
            vec![
                event_id,
                character,
                sequence,
                Value::Text(from_zone.clone()),
                Value::Text(to_zone.clone()),
                timestamp(*entered_at),
            ],
        )),
        CharacterEvent::NpcKilled { .. }
        | CharacterEvent::DamageTaken { .. }
        | CharacterEvent::AttackMissed { .. }
        | CharacterEvent::CharacterDied { .. }
        | CharacterEvent::CharacterRespawned { .. }
        | CharacterEvent::ItemsAcquired { .. }
        | CharacterEvent::ItemUsed { .. }
        | CharacterEvent::ItemDestroyed { .. }
        | CharacterEvent::ItemCrafted { .. }
        | CharacterEvent::ItemEquipped { .. }
        | CharacterEvent::ItemUnequipped { .. } => None,
    }
}

fn wallet_row(published: &PublishedEvent, event: &WalletEvent) -> (&'static str, Vec<Value>) {
    let e = &published.envelope;
    let event_id = Value::Text(e.event_id.to_string());
    let wallet = Value::Text(e.aggregate_id.clone());
    let sequence = bigint(e.sequence);
    let flow = |currency: &chaos_domain::Currency,
                direction: &str,
                amount: u64,
                balance_after: u64,
                reason: &str,
                reference: &str,
                at| {
        let amount_value = i64::try_from(amount).unwrap_or(i64::MAX);
        let delta = if direction == "sink" {
            -amount_value
        } else {
            amount_value
        };
        (
            schema::CURRENCY_FLOWS,
            vec![
                event_id.clone(),
                wallet.clone(),
                sequence.clone(),
                Value::Text(currency.to_string()),
                Value::Text(direction.to_owned()),
                Value::BigInt(amount_value),
                Value::BigInt(delta),
                bigint(balance_after),
                Value::Text(reason.to_owned()),
                Value::Text(reference.to_owned()),
                timestamp(at),
            ],
        )
    };
    match event {
        WalletEvent::WalletOpened {
            owner,
            character,
            opened_at,
        } => (
            schema::WALLETS,
            vec![
                wallet.clone(),
                event_id.clone(),
                Value::Text(owner.to_string()),
                Value::Text(character.to_string()),
                timestamp(*opened_at),
            ],
        ),
        WalletEvent::CurrencyGranted {
            currency,
            amount,
            balance_after,
            source,
            reference,
            granted_at,
        } => flow(
            currency,
            "source",
            *amount,
            *balance_after,
            source,
            reference,
            *granted_at,
        ),
        WalletEvent::CurrencySpent {
            currency,
            amount,
            balance_after,
            sink,
            reference,
            spent_at,
        } => flow(
            currency,
            "sink",
            *amount,
            *balance_after,
            sink,
            reference,
            *spent_at,
        ),
    }
}

/// A UTC instant as a plain `TIMESTAMP`, at millisecond precision.
pub(crate) fn timestamp(t: DateTime<Utc>) -> Value {
    Value::Timestamp(TimeUnit::Millisecond, t.timestamp_millis())
}

/// Domain numbers never come near `i64::MAX`; saturate rather than wrap if one ever did.
fn bigint(n: u64) -> Value {
    Value::BigInt(i64::try_from(n).unwrap_or(i64::MAX))
}

fn int(n: u32) -> Value {
    Value::Int(i32::try_from(n).unwrap_or(i32::MAX))
}

fn text_opt(s: Option<&str>) -> Value {
    s.map_or(Value::Null, |s| Value::Text(s.to_owned()))
}

/// A `VARCHAR[]` value. The appender cannot take lists, but DuckDB casts a list literal to the
/// column's type: every element double-quoted, with `\` and `"` escaped by a backslash.
fn texts(items: &[String]) -> Value {
    let quoted: Vec<String> = items
        .iter()
        .map(|s| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    Value::Text(format!("[{}]", quoted.join(", ")))
}
