//! Views: how events become read-model documents.
//!
//! A [`View`] says which aggregates it reads (its sources: the Kafka topics follow), which
//! document an event changes, and how. Documents are the view's own stored types, never the
//! domain's state: a refactor of an aggregate must not change what is stored. A document may be
//! fed by several source streams (a character's sheet reads the character and its wallet); the
//! runner keeps each stream's last applied sequence in the document, so every stream is applied
//! exactly once and in order.

use chaos_schemas::PublishedEvent;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// One entry a view appends to one of its logs (a ledger, a timeline).
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    /// The log's name within the view (`ledger`): part of its key.
    pub log: &'static str,
    /// Its order in the log; the event's sequence.
    pub score: u64,
    pub entry: Value,
}

/// What applying an event produced: the new document and any log entries.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub body: Value,
    pub log: Vec<LogEntry>,
}

/// See the module documentation.
pub trait View: Send + Sync + std::fmt::Debug + 'static {
    /// The view's stored name: part of every key it writes. Changing it needs a rebuild.
    fn name(&self) -> &'static str;

    /// The aggregate types whose events it reads.
    fn sources(&self) -> &'static [&'static str];

    /// The document an event changes; `None`: the event does not concern this view.
    fn doc_id(&self, event: &PublishedEvent) -> Option<String>;

    /// Applies the event to the document (absent until its first event). `Err` says why the
    /// event cannot follow what the document holds: the event goes to the dead letters.
    fn apply(&self, body: Option<&Value>, event: &PublishedEvent) -> Result<Change, String>;

    /// The logs this view writes (for rebuilds and checksums).
    fn logs(&self) -> &'static [&'static str] {
        &[]
    }

    /// The boards (leaderboards, presence lists) a document is on, and its score on each,
    /// derived from the document alone: the projection writes the difference from what the
    /// document was on before, with the document, so boards follow documents exactly. Board
    /// names must not end in `}`.
    fn boards(&self, _id: &str, _body: &Value) -> Vec<(String, f64)> {
        Vec::new()
    }
}

/// Reads a stored body as the view's document type.
pub fn read<D: DeserializeOwned>(body: Option<&Value>) -> Result<Option<D>, String> {
    body.map(|b| serde_json::from_value(b.clone()).map_err(|e| format!("stored document: {e}")))
        .transpose()
}

/// Writes a view's document type as a body.
pub fn write<D: Serialize>(doc: &D) -> Result<Value, String> {
    serde_json::to_value(doc).map_err(|e| format!("document: {e}"))
}

/// The position key of an event's source stream: `<aggregate type>/<aggregate id>`.
pub fn source_key(event: &PublishedEvent) -> String {
    format!(
        "{}/{}",
        event.envelope.aggregate_type, event.envelope.aggregate_id
    )
}
