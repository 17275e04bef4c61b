use std::collections::HashMap;
use std::sync::Arc;

use chaos_schemas::{DomainEvent, PublishedEvent};

use crate::readmodel::{CasWrite, DocumentStore, StoreError, Versioned};
use crate::sheet::{self, CharacterSheet};

/// What became of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Applied,
    /// Already in the read model (a re-send or a replay): skipped.
    Duplicate,
    /// Cannot be applied; goes to the dead-letter topic with this reason.
    DeadLetter(String),
}

/// How often a batch is re-run after losing a compare-and-set to a concurrent writer.
const CAS_ROUNDS: usize = 5;

/// The character-sheet projection over any [`DocumentStore`], fed by any feed.
#[derive(Debug, Clone)]
pub struct SheetProjection {
    store: Arc<dyn DocumentStore>,
    prefix: String,
    model_version: String,
}

impl SheetProjection {
    pub fn new(store: Arc<dyn DocumentStore>, prefix: String, model_version: String) -> Self {
        Self {
            store,
            prefix,
            model_version,
        }
    }

    pub fn store(&self) -> &Arc<dyn DocumentStore> {
        &self.store
    }

    pub fn key(&self, aggregate_id: &str) -> String {
        sheet::key(&self.prefix, &self.model_version, aggregate_id)
    }

    /// Applies `events` (in feed order) in one read and one pipelined write. An event is applied
    /// only if its sequence directly follows the sheet's version; a lower one is a duplicate, a
    /// higher one a gap (dead letter: the sheet waits for the missing event, e.g. a re-send).
    /// `Err` means the store is unavailable: retry the whole batch, which is idempotent.
    pub async fn apply_batch(&self, events: &[PublishedEvent]) -> Result<Vec<Verdict>, StoreError> {
        for _ in 0..CAS_ROUNDS {
            if let Some(verdicts) = self.try_batch(events).await? {
                return Ok(verdicts);
            }
            tracing::debug!("lost a compare-and-set to a concurrent writer; re-running the batch");
        }
        Err(StoreError::Unavailable(
            "read model kept changing under the projection".into(),
        ))
    }

    async fn try_batch(
        &self,
        events: &[PublishedEvent],
    ) -> Result<Option<Vec<Verdict>>, StoreError> {
        let mut ids: Vec<&str> = Vec::new();
        for e in events {
            if !ids.contains(&e.key()) {
                ids.push(e.key());
            }
        }
        let keys: Vec<String> = ids.iter().map(|id| self.key(id)).collect();
        let loaded = self.store.get_many(&keys).await?;
        // Per aggregate: the version read (the compare-and-set's expectation) and the document
        // as it evolves through the batch.
        let mut state: HashMap<&str, (u64, Option<Versioned>)> = ids
            .iter()
            .zip(loaded)
            .map(|(id, doc)| (*id, (doc.as_ref().map_or(0, |d| d.version), doc)))
            .collect();
        let mut dirty: Vec<&str> = Vec::new();
        let mut verdicts = Vec::with_capacity(events.len());
        for event in events {
            let id = event.key();
            let Some((_, current)) = state.get_mut(id) else {
                continue;
            };
            let version = current.as_ref().map_or(0, |d| d.version);
            let sequence = event.envelope.sequence;
            if sequence <= version {
                verdicts.push(Verdict::Duplicate);
                continue;
            }
            if sequence != version + 1 {
                verdicts.push(Verdict::DeadLetter(format!(
                    "sequence gap: read model at {version}, event is {sequence}"
                )));
                continue;
            }
            let DomainEvent::Character(domain) = &event.event;
            let sheet: Option<CharacterSheet> = match current.as_ref() {
                Some(doc) => Some(serde_json::from_value(doc.doc.clone()).map_err(|e| {
                    StoreError::Corrupt {
                        key: self.key(id),
                        reason: e.to_string(),
                    }
                })?),
                None => None,
            };
            match sheet::apply(sheet, id, domain) {
                Ok(next) => {
                    let applied = current.as_ref().map_or(0, |d| d.applied) + 1;
                    let doc = serde_json::to_value(&next).map_err(|e| StoreError::Corrupt {
                        key: self.key(id),
                        reason: e.to_string(),
                    })?;
                    *current = Some(Versioned {
                        version: sequence,
                        applied,
                        doc,
                    });
                    if !dirty.contains(&id) {
                        dirty.push(id);
                    }
                    verdicts.push(Verdict::Applied);
                }
                Err(e) => verdicts.push(Verdict::DeadLetter(e.to_string())),
            }
        }
        let writes: Vec<CasWrite> = dirty
            .iter()
            .filter_map(|id| {
                let (expected, doc) = state.get(id)?;
                Some(CasWrite {
                    key: self.key(id),
                    expected: *expected,
                    new: doc.clone()?,
                })
            })
            .collect();
        let won = self.store.put_many(&writes).await?;
        Ok(won.iter().all(|w| *w).then_some(verdicts))
    }
}
