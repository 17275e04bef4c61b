//! A character's timeline: every event of the character and of its wallet (same id), one log
//! entry each, pageable by time range (`DocumentStore::log_window`) or by position
//! (`log_range`); the document holds the counts and the first and last times. A MongoDB view
//! (`views::documents`).
//!
//! Entries are built generically from the event's serialized payload, so an event type added
//! to either aggregate appears without a change here.
//!
//! The entry's score is the event's global position, not its sequence: the two streams share
//! the log, and their sequences collide (character #5 and wallet #5), while global positions
//! are unique, increase with the sequence within a stream (an aggregate's next event is
//! appended after its previous one committed) and interleave the streams in the order they
//! were written. Each entry also carries its stream and sequence.

use std::collections::BTreeMap;

use chaos_schemas::{AnyEvent, PublishedEvent};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::view::{read, write, Change, LogEntry, View};

/// The stored name of the view: part of its keys. Do not change without a rebuild.
pub const NAME: &str = "timeline";
/// The log's name: part of its key. Do not change without a rebuild.
pub const EVENTS: &str = "events";

/// Fields of a payload kept in an entry's summary, strings' and lists' lengths kept.
const MAX_FIELDS: usize = 12;
const MAX_STRING: usize = 64;
const MAX_ITEMS: usize = 8;

/// The timeline document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TimelineDoc {
    pub id: String,
    /// Entries in the log: every event applied.
    pub entries: u64,
    /// Aggregate type -> events.
    pub by_aggregate: BTreeMap<String, u64>,
    /// Event type -> events.
    pub by_type: BTreeMap<String, u64>,
    /// The earliest and latest event time (epoch milliseconds).
    pub first_at: i64,
    pub last_at: i64,
}

/// One log entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// When it happened (epoch milliseconds): what time windows select on.
    pub at: i64,
    pub aggregate_type: String,
    /// Its place in its own stream.
    pub sequence: u64,
    pub event_type: String,
    pub event_id: String,
    /// The payload's facts, small: scalars and short lists, times left out (see `at`).
    pub summary: Value,
}

/// See the module documentation.
#[derive(Debug, Clone, Copy)]
pub struct TimelineView;

impl View for TimelineView {
    fn name(&self) -> &'static str {
        NAME
    }

    fn sources(&self) -> &'static [&'static str] {
        &[
            chaos_domain::character::AGGREGATE_TYPE,
            chaos_domain::wallet::AGGREGATE_TYPE,
        ]
    }

    fn logs(&self) -> &'static [&'static str] {
        &[EVENTS]
    }

    fn doc_id(&self, event: &PublishedEvent) -> Option<String> {
        // A wallet's id is its character's.
        Some(event.envelope.aggregate_id.clone())
    }

    fn apply(&self, body: Option<&Value>, event: &PublishedEvent) -> Result<Change, String> {
        let e = &event.envelope;
        let score = u64::try_from(e.global_position)
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("event without a global position ({})", e.global_position))?;
        let at = e.occurred_at.timestamp_millis();
        let mut doc: TimelineDoc = read(body)?.unwrap_or_default();
        if doc.entries == 0 {
            doc.id = e.aggregate_id.clone();
            doc.first_at = at;
            doc.last_at = at;
        }
        doc.entries += 1;
        *doc.by_aggregate
            .entry(e.aggregate_type.clone())
            .or_default() += 1;
        *doc.by_type.entry(e.event_type.clone()).or_default() += 1;
        doc.first_at = doc.first_at.min(at);
        doc.last_at = doc.last_at.max(at);
        let entry = TimelineEntry {
            at,
            aggregate_type: e.aggregate_type.clone(),
            sequence: e.sequence,
            event_type: e.event_type.clone(),
            event_id: e.event_id.to_string(),
            summary: summary(&payload(&event.event)?),
        };
        Ok(Change {
            body: write(&doc)?,
            log: vec![LogEntry {
                log: EVENTS,
                score,
                entry: write(&entry)?,
            }],
        })
    }
}

/// The event's fields as JSON (its serialized form without the variant's name).
fn payload(event: &AnyEvent) -> Result<Value, String> {
    let tagged = if let AnyEvent::Character(e) = event {
        serde_json::to_value(e)
    } else if let AnyEvent::Wallet(e) = event {
        serde_json::to_value(e)
    } else {
        return Err(format!(
            "{} events are not on timelines",
            event.aggregate_type()
        ));
    }
    .map_err(|e| format!("event payload: {e}"))?;
    // Externally tagged: `{"SkillCast": {...}}`.
    Ok(match tagged {
        Value::Object(mut map) if map.len() == 1 => {
            map.values_mut().next().map(Value::take).unwrap_or_default()
        }
        other => other,
    })
}

/// A small summary of a payload: its first fields, times left out, strings and lists cut,
/// nested values summarised the same way, three levels deep at most.
pub fn summary(payload: &Value) -> Value {
    shrink(payload, 3)
}

fn shrink(value: &Value, depth: usize) -> Value {
    match value {
        Value::String(s) if s.chars().count() > MAX_STRING => {
            Value::String(s.chars().take(MAX_STRING).collect())
        }
        Value::Array(items) if depth > 0 => Value::Array(
            items
                .iter()
                .take(MAX_ITEMS)
                .map(|i| shrink(i, depth - 1))
                .collect(),
        ),
        Value::Object(fields) if depth > 0 => Value::Object(
            fields
                .iter()
                .filter(|(k, _)| !k.ends_with("_at"))
                .take(MAX_FIELDS)
                .map(|(k, v)| (k.clone(), shrink(v, depth - 1)))
                .collect::<Map<String, Value>>(),
        ),
        Value::Array(_) | Value::Object(_) => Value::Null,
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_keep_the_facts_small() {
        let long = "x".repeat(100);
        let payload = serde_json::json!({
            "skill": "fireball", "damage": 12, "target": null, "cast_at": "2026-11-30T09:00:00Z",
            "hit": {"Npc": {"npc": "wolf", "hp_after": 0}}, "note": long,
            "deep": {"a": {"b": {"c": 1}}},
            "items": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
        });
        let s = summary(&payload);
        assert_eq!(s["skill"], "fireball");
        assert_eq!(s["damage"], 12);
        assert!(s.get("cast_at").is_none(), "times are the entry's `at`");
        assert_eq!(
            s["hit"],
            serde_json::json!({"Npc": {"npc": "wolf", "hp_after": 0}})
        );
        assert_eq!(
            s["deep"],
            serde_json::json!({"a": {"b": null}}),
            "three levels at most"
        );
        assert_eq!(s["note"].as_str().unwrap().len(), MAX_STRING);
        assert_eq!(s["items"].as_array().unwrap().len(), MAX_ITEMS);
    }
}
