use std::borrow::Cow;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Result;

/// A point in the store's global order: committed transactions in `tx_id` order, and inside a
/// transaction by `global_position`. Unlike a bare identity cursor this never skips a row whose
/// transaction committed late (see DESIGN.md, write path 4).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Position {
    pub tx_id: u64,
    pub global_position: i64,
}

impl Position {
    pub const START: Self = Self {
        tx_id: 0,
        global_position: 0,
    };
}

/// One row of the event store, as every reader sees it.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub position: Position,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    /// The payload's JSON text as stored (the externally tagged serde form of the event):
    /// feeds and loads deserialize the typed event straight from it
    /// ([`chaos_domain::decode_stored_json`]), never through a JSON tree.
    pub payload: JsonText,
    /// The metadata's JSON text as stored: a flat object of strings ([`Self::meta`]).
    pub metadata: JsonText,
}

/// JSON text as the event store holds it: a stored event's payload or metadata.
///
/// The store made sure it is JSON when it was written (PostgreSQL's `json` column parses what
/// it stores; the embedded store stores only what serde_json wrote), so readers take it as it
/// comes instead of scanning it once more on the way out (decision 47). Everything that uses it
/// parses it anyway (the event's decoder, [`StoredEvent::meta`]) and says so if it is not JSON.
/// Serialized, it is written as the JSON it holds, not as a string.
#[derive(Clone, PartialEq, Eq)]
pub struct JsonText(String);

impl JsonText {
    /// Text read from the event store, which took only JSON.
    pub fn stored(text: String) -> Self {
        Self(text)
    }

    /// The JSON text of `value`.
    pub fn of<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Self> {
        serde_json::to_string(value).map(Self)
    }

    /// The text.
    pub fn get(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for JsonText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Display for JsonText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for JsonText {
    /// As the JSON it holds (checked here: a text that is not JSON fails to serialize).
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let raw: &serde_json::value::RawValue =
            serde_json::from_str(&self.0).map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}

/// The metadata keys readers use, borrowed from the stored text where a value has no escapes
/// (so reading them allocates nothing). Unknown keys are ignored; an unreadable object reads as
/// empty.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(default)]
pub struct Metadata<'a> {
    #[serde(borrow)]
    pub occurred_at: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub account_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub correlation_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub causation_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub traceparent: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub idempotency_key: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub request_hash: Option<Cow<'a, str>>,
}

impl PartialEq for StoredEvent {
    fn eq(&self, other: &Self) -> bool {
        self.position == other.position
            && self.aggregate_type == other.aggregate_type
            && self.aggregate_id == other.aggregate_id
            && self.sequence == other.sequence
            && self.event_type == other.event_type
            && self.event_version == other.event_version
            && self.payload == other.payload
            && self.metadata == other.metadata
    }
}

impl StoredEvent {
    /// The payload as a JSON tree, for inspection (operators' history, tests).
    pub fn payload_value(&self) -> serde_json::Value {
        serde_json::from_str(self.payload.get()).unwrap_or(serde_json::Value::Null)
    }

    /// The metadata's known keys ([`Metadata`]), read from its text.
    pub fn meta(&self) -> Metadata<'_> {
        serde_json::from_str(self.metadata.get()).unwrap_or_default()
    }

    /// The metadata value of any `key`, if it is a string.
    pub fn meta_str(&self, key: &str) -> Option<String> {
        let map: std::collections::HashMap<String, serde_json::Value> =
            serde_json::from_str(self.metadata.get()).ok()?;
        map.get(key)?.as_str().map(str::to_owned)
    }

    /// The metadata as a JSON tree, for inspection.
    pub fn metadata_value(&self) -> serde_json::Value {
        serde_json::from_str(self.metadata.get()).unwrap_or(serde_json::Value::Null)
    }

    /// When the command that produced it was accepted (metadata `occurred_at`, RFC 3339).
    pub fn occurred_at(&self) -> Option<DateTime<Utc>> {
        self.meta().occurred_at()
    }
}

impl Metadata<'_> {
    /// `occurred_at` as a time.
    pub fn occurred_at(&self) -> Option<DateTime<Utc>> {
        self.occurred_at
            .as_deref()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc))
    }
}

/// The store read in global order: the port behind the relay and the store-fed event feed.
/// Implemented over PostgreSQL here and over the embedded store in the embedded mode.
#[async_trait]
pub trait EventLog: Send + Sync + std::fmt::Debug {
    /// Up to `limit` committed events strictly after `after`, in global order, never skipping one.
    async fn read_after(&self, after: Position, limit: u32) -> Result<Vec<StoredEvent>>;

    /// Returns when new events may have been appended, or after `timeout`, whichever is first.
    async fn wait_for_append(&self, timeout: Duration);

    /// How many committed events lie after `after` (for lag metrics and progress bars).
    async fn count_after(&self, after: Position) -> Result<u64>;

    /// What lies after `after`: every committed event, how many of them the reader may not take
    /// yet because an older append is still in flight, and how long the oldest in-flight append
    /// has been running. Stores without concurrent appenders hold nothing back.
    async fn backlog(&self, after: Position) -> Result<Backlog> {
        Ok(Backlog {
            events: self.count_after(after).await?,
            held_back: 0,
            oldest_inflight_append: None,
        })
    }
}

/// See [`EventLog::backlog`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Committed events after the position (including those held back).
    pub events: u64,
    /// Committed events after the position that lie at or above the append horizon.
    pub held_back: u64,
    /// Age of the oldest event append still in flight, if any.
    pub oldest_inflight_append: Option<Duration>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::{
        META_ACCOUNT_ID, META_CAUSATION_ID, META_CORRELATION_ID, META_IDEMPOTENCY_KEY,
        META_OCCURRED_AT, META_REQUEST_HASH, META_TRACEPARENT,
    };

    fn stored(metadata: serde_json::Value) -> StoredEvent {
        StoredEvent {
            position: Position::START,
            aggregate_type: "wallet".into(),
            aggregate_id: "w-1".into(),
            sequence: 1,
            event_type: "WalletOpened".into(),
            event_version: "1".into(),
            payload: JsonText::of(&serde_json::json!({})).unwrap(),
            metadata: JsonText::of(&metadata).unwrap(),
        }
    }

    /// The typed view reads every key the writers put, under the writers' names.
    #[test]
    fn metadata_reads_the_keys_the_writers_use() {
        let e = stored(serde_json::json!({
            META_OCCURRED_AT: "2026-11-30T12:00:00.000Z",
            META_ACCOUNT_ID: "acc",
            META_CORRELATION_ID: "corr",
            META_CAUSATION_ID: "cause",
            META_TRACEPARENT: "00-trace",
            META_IDEMPOTENCY_KEY: "key \"quoted\"",
            META_REQUEST_HASH: "hash",
            "something_else": 7,
        }));
        let meta = e.meta();
        assert_eq!(meta.account_id.as_deref(), Some("acc"));
        assert_eq!(meta.correlation_id.as_deref(), Some("corr"));
        assert_eq!(meta.causation_id.as_deref(), Some("cause"));
        assert_eq!(meta.traceparent.as_deref(), Some("00-trace"));
        assert_eq!(meta.idempotency_key.as_deref(), Some("key \"quoted\""));
        assert_eq!(meta.request_hash.as_deref(), Some("hash"));
        assert_eq!(
            e.occurred_at().map(|t| t.to_rfc3339()),
            Some("2026-11-30T12:00:00+00:00".to_owned())
        );
        assert_eq!(e.meta_str(META_CORRELATION_ID).as_deref(), Some("corr"));
        assert_eq!(e.meta_str("something_else"), None, "not a string");
    }

    #[test]
    fn unreadable_metadata_reads_as_empty() {
        let e = stored(serde_json::json!({ META_CORRELATION_ID: 5 }));
        assert_eq!(e.meta(), Metadata::default());
        assert_eq!(e.occurred_at(), None);
    }

    /// Stored JSON text serializes as the JSON it holds, as the history endpoint and the
    /// operators' tool show it; a text that is not JSON fails instead of passing as a string.
    #[test]
    fn json_text_serializes_as_its_json() {
        let payload = JsonText::stored(r#"{"Granted": {"amount": 5, "note": "a \"b\""}}"#.into());
        let shown = serde_json::to_value(serde_json::json!({ "payload": payload })).unwrap();
        assert_eq!(
            shown,
            serde_json::json!({ "payload": { "Granted": { "amount": 5, "note": "a \"b\"" } } })
        );
        let not_json = JsonText::stored("{\"Granted\": ".into());
        assert!(serde_json::to_string(&not_json).is_err());
    }
}
