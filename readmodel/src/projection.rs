//! Applying batches of events to a set of views over one [`DocumentStore`]: one read and one
//! pipelined write per view per batch, exactly once per source stream.

use std::collections::HashMap;
use std::sync::Arc;

use chaos_schemas::PublishedEvent;

use crate::keys::Keys;
use crate::store::{CasWrite, Document, DocumentStore, LogAppend, StoreError};
use crate::view::{source_key, View};

/// What became of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Applied,
    /// Already in the read model (a re-send or a replay): skipped.
    Duplicate,
    /// No view reads it.
    Ignored,
    /// Cannot be applied; goes to the dead-letter topic with this reason.
    DeadLetter(String),
}

impl Verdict {
    /// Combines the verdicts of several views on one event: a dead letter wins, then applied.
    fn merge(self, other: Verdict) -> Verdict {
        use Verdict::*;
        match (self, other) {
            (DeadLetter(a), DeadLetter(b)) => DeadLetter(format!("{a}; {b}")),
            (DeadLetter(a), _) | (_, DeadLetter(a)) => DeadLetter(a),
            (Applied, _) | (_, Applied) => Applied,
            (Duplicate, _) | (_, Duplicate) => Duplicate,
            (Ignored, Ignored) => Ignored,
        }
    }
}

/// How often a view's part of a batch is re-run after losing a compare-and-set.
const CAS_ROUNDS: usize = 5;

/// A set of views over one store.
#[derive(Debug, Clone)]
pub struct ViewProjection {
    store: Arc<dyn DocumentStore>,
    keys: Keys,
    views: Vec<Arc<dyn View>>,
}

impl ViewProjection {
    pub fn new(store: Arc<dyn DocumentStore>, keys: Keys, views: Vec<Arc<dyn View>>) -> Self {
        Self { store, keys, views }
    }

    pub fn store(&self) -> &Arc<dyn DocumentStore> {
        &self.store
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    pub fn views(&self) -> &[Arc<dyn View>] {
        &self.views
    }

    /// The aggregate types any of the views reads.
    pub fn sources(&self) -> Vec<&'static str> {
        let mut sources: Vec<&'static str> = self
            .views
            .iter()
            .flat_map(|v| v.sources().iter().copied())
            .collect();
        sources.sort_unstable();
        sources.dedup();
        sources
    }

    /// Applies `events` (in feed order): one verdict per event. An event is applied to a
    /// document only if its sequence directly follows the document's position for its stream; a
    /// lower one is a duplicate, a higher one a gap (dead letter). `Err` means the store is
    /// unavailable: retry the whole batch, which is idempotent.
    pub async fn apply_batch(&self, events: &[PublishedEvent]) -> Result<Vec<Verdict>, StoreError> {
        let mut verdicts = vec![Verdict::Ignored; events.len()];
        for view in &self.views {
            let mut done = None;
            for _ in 0..CAS_ROUNDS {
                if let Some(v) = self.try_view(view.as_ref(), events).await? {
                    done = Some(v);
                    break;
                }
                tracing::debug!(
                    view = view.name(),
                    "lost a compare-and-set; re-running the batch"
                );
            }
            let Some(view_verdicts) = done else {
                return Err(StoreError::message(format!(
                    "read model {} kept changing under the projection",
                    view.name()
                )));
            };
            for (verdict, v) in verdicts.iter_mut().zip(view_verdicts) {
                *verdict = std::mem::replace(verdict, Verdict::Ignored).merge(v);
            }
        }
        Ok(verdicts)
    }

    /// One view's part of a batch; `None` when a compare-and-set was lost (re-run it).
    async fn try_view(
        &self,
        view: &dyn View,
        events: &[PublishedEvent],
    ) -> Result<Option<Vec<Verdict>>, StoreError> {
        let sources = view.sources();
        let targets: Vec<Option<String>> = events
            .iter()
            .map(|e| {
                sources
                    .contains(&e.envelope.aggregate_type.as_str())
                    .then(|| view.doc_id(e))
                    .flatten()
            })
            .collect();
        let mut ids: Vec<&str> = Vec::new();
        for id in targets.iter().flatten() {
            if !ids.contains(&id.as_str()) {
                ids.push(id);
            }
        }
        if ids.is_empty() {
            return Ok(Some(vec![Verdict::Ignored; events.len()]));
        }
        let keys: Vec<String> = ids
            .iter()
            .map(|id| self.keys.doc(view.name(), id))
            .collect();
        let loaded = self.store.get_many(&keys).await?;
        // Per document: the revision read (the compare-and-set's guard), the document as it
        // evolves through the batch, and its new log entries.
        struct Pending {
            expected: u64,
            doc: Option<Document>,
            log: Vec<LogAppend>,
            dirty: bool,
        }
        let mut pending: HashMap<&str, Pending> = ids
            .iter()
            .zip(loaded)
            .map(|(id, doc)| {
                (
                    *id,
                    Pending {
                        expected: doc.as_ref().map_or(0, |d| d.revision),
                        doc,
                        log: Vec::new(),
                        dirty: false,
                    },
                )
            })
            .collect();
        let mut verdicts = Vec::with_capacity(events.len());
        for (event, target) in events.iter().zip(&targets) {
            let Some(id) = target else {
                verdicts.push(Verdict::Ignored);
                continue;
            };
            let Some(p) = pending.get_mut(id.as_str()) else {
                verdicts.push(Verdict::Ignored);
                continue;
            };
            let source = source_key(event);
            let position = p.doc.as_ref().map_or(0, |d| d.position(&source));
            let sequence = event.envelope.sequence;
            if sequence <= position {
                verdicts.push(Verdict::Duplicate);
                continue;
            }
            if sequence != position + 1 {
                verdicts.push(Verdict::DeadLetter(format!(
                    "{}: sequence gap: {source} at {position}, event is {sequence}",
                    view.name()
                )));
                continue;
            }
            match view.apply(p.doc.as_ref().map(|d| &d.body), event) {
                Ok(change) => {
                    let mut doc = p.doc.take().unwrap_or(Document {
                        revision: 0,
                        applied: 0,
                        positions: Default::default(),
                        body: serde_json::Value::Null,
                    });
                    doc.applied += 1;
                    doc.positions.insert(source, sequence);
                    doc.body = change.body;
                    p.log.extend(change.log.into_iter().map(|l| LogAppend {
                        key: self.keys.log(view.name(), l.log, id),
                        score: l.score,
                        entry: l.entry,
                    }));
                    p.doc = Some(doc);
                    p.dirty = true;
                    verdicts.push(Verdict::Applied);
                }
                Err(reason) => {
                    verdicts.push(Verdict::DeadLetter(format!("{}: {reason}", view.name())))
                }
            }
        }
        let writes: Vec<CasWrite> = ids
            .iter()
            .filter_map(|id| {
                let p = pending.remove(id)?;
                if !p.dirty {
                    return None;
                }
                let mut doc = p.doc?;
                doc.revision = p.expected + 1;
                Some(CasWrite {
                    key: self.keys.doc(view.name(), id),
                    expected: p.expected,
                    doc,
                    log: p.log,
                })
            })
            .collect();
        let won = self.store.put_many(&writes).await?;
        Ok(won.iter().all(|w| *w).then_some(verdicts))
    }
}
