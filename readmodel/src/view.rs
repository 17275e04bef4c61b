//! Views: how events become read-model documents.
//!
//! A [`View`] says which aggregates it reads (its sources: the Kafka topics follow), which
//! document an event changes, and how. Documents are the view's own stored types, never the
//! domain's state: a refactor of an aggregate must not change what is stored. A document may be
//! fed by several source streams (a character's sheet reads the character and its wallet); the
//! runner keeps each stream's last applied sequence in the document, so every stream is applied
//! exactly once and in order.
//!
//! A batch applies a run of events to one document through a [`Draft`]: the document decoded
//! once, changed event by event, encoded once. A view written against its own document type
//! ([`Typed`]) gets drafts that hold that type; any other view gets drafts over the JSON body.

use crate::store::Body;
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

    /// Opens a document (absent until its first event) for a run of events.
    fn draft(&self, body: Option<Body>) -> Result<Box<dyn Draft + '_>, String> {
        let body = body
            .map(|b| b.to_value().map_err(|e| format!("stored document: {e}")))
            .transpose()?;
        Ok(Box::new(JsonDraft { view: self, body }))
    }
}

/// A document being changed by a run of events (see the module documentation).
pub trait Draft: Send {
    /// Applies one event; `Err` (the event cannot follow the document) changes nothing.
    fn apply(&mut self, event: &PublishedEvent) -> Result<Vec<LogEntry>, String>;

    /// The document as it stands, to store (`null` if it never got an event).
    fn body(&self) -> Result<Body, String>;

    /// The boards the document is on as it stands ([`View::boards`]).
    fn boards(&self, id: &str) -> Vec<(String, f64)>;
}

/// A draft over the JSON body, applying through [`View::apply`].
struct JsonDraft<'a, V: View + ?Sized> {
    view: &'a V,
    body: Option<Value>,
}

impl<V: View + ?Sized> Draft for JsonDraft<'_, V> {
    fn apply(&mut self, event: &PublishedEvent) -> Result<Vec<LogEntry>, String> {
        let change = self.view.apply(self.body.as_ref(), event)?;
        self.body = Some(change.body);
        Ok(change.log)
    }

    fn body(&self) -> Result<Body, String> {
        Ok(self.body.as_ref().map(Body::from_value).unwrap_or_default())
    }

    fn boards(&self, id: &str) -> Vec<(String, f64)> {
        self.body
            .as_ref()
            .map(|b| self.view.boards(id, b))
            .unwrap_or_default()
    }
}

/// A view written against its own document type: the projection decodes a document once per
/// batch and encodes it once, whatever the number of its events in the batch. Implementing it
/// implements [`View`].
pub trait Typed: Send + Sync + std::fmt::Debug + 'static {
    type Doc: Serialize + DeserializeOwned + Send;

    /// See [`View::name`].
    fn name(&self) -> &'static str;
    /// See [`View::sources`].
    fn sources(&self) -> &'static [&'static str];
    /// See [`View::doc_id`].
    fn doc_id(&self, event: &PublishedEvent) -> Option<String>;
    /// See [`View::logs`].
    fn logs(&self) -> &'static [&'static str] {
        &[]
    }

    /// Applies an event to the document (`None` until its first event). `Err` must leave the
    /// document as it was: check before changing anything.
    fn step(
        &self,
        doc: &mut Option<Self::Doc>,
        event: &PublishedEvent,
    ) -> Result<Vec<LogEntry>, String>;

    /// See [`View::boards`].
    fn boards(&self, _id: &str, _doc: &Self::Doc) -> Vec<(String, f64)> {
        Vec::new()
    }
}

/// A draft holding a [`Typed`] view's document.
struct TypedDraft<'a, T: Typed> {
    view: &'a T,
    doc: Option<T::Doc>,
}

impl<T: Typed> Draft for TypedDraft<'_, T> {
    fn apply(&mut self, event: &PublishedEvent) -> Result<Vec<LogEntry>, String> {
        self.view.step(&mut self.doc, event)
    }

    fn body(&self) -> Result<Body, String> {
        match &self.doc {
            Some(doc) => Body::encode(doc).map_err(|e| format!("document: {e}")),
            None => Ok(Body::null()),
        }
    }

    fn boards(&self, id: &str) -> Vec<(String, f64)> {
        self.doc
            .as_ref()
            .map(|d| Typed::boards(self.view, id, d))
            .unwrap_or_default()
    }
}

impl<T: Typed> View for T {
    fn name(&self) -> &'static str {
        Typed::name(self)
    }

    fn sources(&self) -> &'static [&'static str] {
        Typed::sources(self)
    }

    fn doc_id(&self, event: &PublishedEvent) -> Option<String> {
        Typed::doc_id(self, event)
    }

    fn logs(&self) -> &'static [&'static str] {
        Typed::logs(self)
    }

    fn apply(&self, body: Option<&Value>, event: &PublishedEvent) -> Result<Change, String> {
        let mut doc: Option<T::Doc> = read(body)?;
        let log = self.step(&mut doc, event)?;
        Ok(Change {
            body: match &doc {
                Some(doc) => write(doc)?,
                None => Value::Null,
            },
            log,
        })
    }

    fn boards(&self, id: &str, body: &Value) -> Vec<(String, f64)> {
        match read::<T::Doc>(Some(body)) {
            Ok(Some(doc)) => Typed::boards(self, id, &doc),
            _ => Vec::new(),
        }
    }

    fn draft(&self, body: Option<Body>) -> Result<Box<dyn Draft + '_>, String> {
        let doc = body
            .filter(|b| !b.is_null())
            .map(|b| b.decode().map_err(|e| format!("stored document: {e}")))
            .transpose()?;
        Ok(Box::new(TypedDraft { view: self, doc }))
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
