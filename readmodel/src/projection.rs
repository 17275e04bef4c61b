//! Applying batches of events to a set of views over one [`DocumentStore`]: one read and one
//! pipelined write per view per batch, exactly once per source stream.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use chaos_schemas::PublishedEvent;

use crate::keys::Keys;
use crate::served::Served;
use crate::store::{BoardOp, Body, CasWrite, Document, DocumentStore, LogAppend, StoreError};
use crate::view::{source_key, Draft, View};

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
    /// Combines the verdicts of several views (or a process manager's steps) on one event: a
    /// dead letter wins, then applied.
    pub fn merge(self, other: Verdict) -> Verdict {
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

/// Where the events a document is missing come from: the event store, the source of truth. A
/// document behind its stream (a read model restored from an old backup, lost in a restart,
/// evicted, a failover to a lagging replica) is repaired from it instead of dead-lettering every
/// later event as a gap.
#[async_trait]
pub trait StreamSource: Send + Sync + std::fmt::Debug {
    /// The events of one stream with sequences `after + 1 ..= up_to`, in order.
    async fn events(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after: u64,
        up_to: u64,
    ) -> Result<Vec<PublishedEvent>, StoreError>;
}

/// A set of views over one store.
#[derive(Debug, Clone)]
pub struct ViewProjection {
    store: Arc<dyn DocumentStore>,
    keys: Keys,
    views: Vec<Arc<dyn View>>,
    source: Option<Arc<dyn StreamSource>>,
    served: Option<Served>,
    repairs: Arc<AtomicU64>,
}

/// The document that says a read model has been built here (see [`ViewProjection::is_marked`]).
const MARKER: (&str, &str) = ("_meta", "projection");
/// The document that says who rebuilds a lost read model (see
/// [`ViewProjection::take_rebuild_lease`]). Under `_meta`, like the marker: no checksum
/// counts it.
const LEASE: (&str, &str) = ("_meta", "rebuild-lease");

/// The body of the [`LEASE`] document.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Lease {
    owner: String,
    /// Epoch milliseconds; 0 once released.
    until_ms: i64,
}

impl Lease {
    /// The lease a [`LEASE`] document holds (none if it does not read as one).
    fn of(doc: &Document) -> Option<Self> {
        doc.body.decode().ok()
    }
}

impl ViewProjection {
    pub fn new(store: Arc<dyn DocumentStore>, keys: Keys, views: Vec<Arc<dyn View>>) -> Self {
        Self {
            store,
            keys,
            views,
            source: None,
            served: None,
            repairs: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Writes the version served (see [`Served`]), read before every batch, instead of always
    /// the configured one: after a rebuild's switch, the live feed writes the new version.
    pub fn following_served(mut self) -> Self {
        self.served = Some(Served::new(
            self.store.clone(),
            self.keys.clone(),
            std::time::Duration::ZERO,
        ));
        self
    }

    /// The layout written now: the served version if following it, else the configured one.
    pub async fn current_keys(&self) -> Result<Keys, StoreError> {
        match &self.served {
            Some(served) => served.keys().await,
            None => Ok(self.keys.clone()),
        }
    }

    /// Repairs gaps from `source` instead of dead-lettering them.
    pub fn with_source(mut self, source: Arc<dyn StreamSource>) -> Self {
        self.source = Some(source);
        self
    }

    /// Gaps repaired since start.
    pub fn repairs(&self) -> u64 {
        self.repairs.load(Ordering::Relaxed)
    }

    /// Whether this store holds a read model built by a projection (the marker written when
    /// one was built from the event store). A store found without it, while the feed's offsets
    /// say the projection has run, lost its data (a restart without persistence, a flush, a
    /// failover to an empty replica): rebuild from the event store.
    pub async fn is_marked(&self) -> Result<bool, StoreError> {
        let keys = self.current_keys().await?;
        Ok(self
            .store
            .get(&keys.doc(MARKER.0, MARKER.1))
            .await?
            .is_some())
    }

    /// Writes the marker (after a build from the event store).
    pub async fn mark(&self, note: serde_json::Value) -> Result<(), StoreError> {
        let key = self.current_keys().await?.doc(MARKER.0, MARKER.1);
        let current = self.store.get(&key).await?;
        self.put_meta(key, current.map_or(0, |d| d.revision), note.into())
            .await?;
        Ok(())
    }

    /// Takes the lease on rebuilding this read model for `ttl`, or extends it if `owner` holds
    /// it; `false` while another owner holds an unexpired one. The replicas of a projector that
    /// all find their store lost rebuild it once: the holder rebuilds, the others wait for the
    /// marker, and take over if the holder dies (its lease expires). A compare-and-set on a
    /// document, so it works on every store. Owners' clocks are compared: `ttl` must exceed
    /// their skew by far.
    pub async fn take_rebuild_lease(
        &self,
        owner: &str,
        ttl: std::time::Duration,
    ) -> Result<bool, StoreError> {
        let key = self.current_keys().await?.doc(LEASE.0, LEASE.1);
        let now = chrono::Utc::now().timestamp_millis();
        let current = self.store.get(&key).await?;
        if let Some(lease) = current.as_ref().and_then(Lease::of) {
            if lease.owner != owner && lease.until_ms > now {
                return Ok(false);
            }
        }
        let until_ms = now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
        self.write_lease(key, current.map_or(0, |d| d.revision), owner, until_ms)
            .await
    }

    /// Gives the lease up if `owner` holds it (another may take it at once).
    pub async fn release_rebuild_lease(&self, owner: &str) -> Result<(), StoreError> {
        let key = self.current_keys().await?.doc(LEASE.0, LEASE.1);
        let Some(current) = self.store.get(&key).await? else {
            return Ok(());
        };
        if Lease::of(&current).is_some_and(|lease| lease.owner == owner) {
            self.write_lease(key, current.revision, owner, 0).await?;
        }
        Ok(())
    }

    async fn write_lease(
        &self,
        key: String,
        revision: u64,
        owner: &str,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        let body = Body::encode(&Lease {
            owner: owner.to_owned(),
            until_ms,
        })
        .map_err(|e| StoreError::message(format!("the rebuild lease: {e}")))?;
        self.put_meta(key, revision, body).await
    }

    /// A projection's own document (under `_meta`: the marker, the lease) over `revision`;
    /// whether the compare-and-set won.
    async fn put_meta(&self, key: String, revision: u64, body: Body) -> Result<bool, StoreError> {
        let won = self
            .store
            .put_many(&[CasWrite {
                key,
                expected: revision,
                doc: Document {
                    revision: revision + 1,
                    applied: 0,
                    positions: Default::default(),
                    body,
                },
                log: Vec::new(),
                boards: Vec::new(),
            }])
            .await?;
        Ok(won.first().copied().unwrap_or(false))
    }

    pub fn store(&self) -> &Arc<dyn DocumentStore> {
        &self.store
    }

    /// The configured layout (see [`Self::current_keys`] for the one written now).
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
        let keys = self.current_keys().await?;
        for view in &self.views {
            let mut done = None;
            for _ in 0..CAS_ROUNDS {
                if let Some(v) = self.try_view(&keys, view.as_ref(), events).await? {
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

    /// One view's part of a batch; `None` when a compare-and-set was lost (re-run it). Each
    /// document is read once, decoded once into a draft, changed by its events, encoded once and
    /// written once.
    async fn try_view(
        &self,
        keys: &Keys,
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
        let mut seen: HashSet<&str> = HashSet::new();
        for id in targets.iter().flatten() {
            if seen.insert(id.as_str()) {
                ids.push(id);
            }
        }
        if ids.is_empty() {
            return Ok(Some(vec![Verdict::Ignored; events.len()]));
        }
        let doc_keys: Vec<String> = ids.iter().map(|id| keys.doc(view.name(), id)).collect();
        let loaded = self.store.get_many(&doc_keys).await?;
        let mut pending: HashMap<&str, Pending<'_>> = HashMap::with_capacity(ids.len());
        for (id, doc) in ids.iter().zip(loaded) {
            pending.insert(id, Pending::open(view, id, doc));
        }
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
            let position = p.doc.position(&source);
            let sequence = event.envelope.sequence;
            if sequence <= position {
                verdicts.push(Verdict::Duplicate);
                continue;
            }
            let mut chain = Vec::new();
            if sequence != position + 1 {
                let Some(stream) = &self.source else {
                    verdicts.push(Verdict::DeadLetter(format!(
                        "{}: sequence gap: {source} at {position}, event is {sequence}",
                        view.name()
                    )));
                    continue;
                };
                let missing = stream
                    .events(
                        &event.envelope.aggregate_type,
                        &event.envelope.aggregate_id,
                        position,
                        sequence - 1,
                    )
                    .await?;
                if missing.len() as u64 != sequence - 1 - position {
                    verdicts.push(Verdict::DeadLetter(format!(
                        "{}: sequence gap: {source} at {position}, event is {sequence}, and the \
                         event store has {} of the {} missing events",
                        view.name(),
                        missing.len(),
                        sequence - 1 - position
                    )));
                    continue;
                }
                tracing::info!(
                    view = view.name(),
                    stream = %source,
                    from = position + 1,
                    to = sequence - 1,
                    "read model behind its stream: repairing from the event store"
                );
                self.repairs.fetch_add(1, Ordering::Relaxed);
                chain = missing;
            }
            let mut failed = None;
            for e in chain.iter().chain(std::iter::once(event)) {
                if let Err(reason) = p.apply(keys, view.name(), id, &source, e) {
                    failed = Some(reason);
                    break;
                }
            }
            verdicts.push(match failed {
                None => Verdict::Applied,
                Some(reason) => Verdict::DeadLetter(format!("{}: {reason}", view.name())),
            });
        }
        let mut writes = Vec::new();
        for id in &ids {
            let Some(p) = pending.remove(id) else {
                continue;
            };
            if !p.dirty {
                continue;
            }
            let Ok(draft) = p.draft else {
                continue;
            };
            let mut doc = p.doc;
            doc.revision = p.expected + 1;
            doc.body = draft.body().map_err(|e| {
                StoreError::message(format!("{}: encoding document {id}: {e}", view.name()))
            })?;
            let boards = board_changes(&p.boards, &draft.boards(id))
                .into_iter()
                .map(|(board, score)| {
                    let board = keys.board(view.name(), &board);
                    let member = (*id).to_owned();
                    match score {
                        Some(score) => BoardOp::Set {
                            board,
                            member,
                            score,
                        },
                        None => BoardOp::Remove { board, member },
                    }
                })
                .collect();
            writes.push(CasWrite {
                key: keys.doc(view.name(), id),
                expected: p.expected,
                doc,
                log: p.log,
                boards,
            });
        }
        let won = self.store.put_many(&writes).await?;
        Ok(won.iter().all(|w| *w).then_some(verdicts))
    }
}

/// Per document of a batch: the revision read (the compare-and-set's guard), its bookkeeping
/// (applied, positions), its draft (the body decoded once; `Err` if the stored body does not
/// decode: its events go to the dead letters), the boards it was on when read, its new log
/// entries.
struct Pending<'v> {
    expected: u64,
    doc: Document,
    draft: Result<Box<dyn Draft + 'v>, String>,
    boards: Vec<(String, f64)>,
    log: Vec<LogAppend>,
    dirty: bool,
}

impl<'v> Pending<'v> {
    fn open(view: &'v dyn View, id: &str, stored: Option<Document>) -> Self {
        let (expected, mut doc) = match stored {
            Some(doc) => (doc.revision, doc),
            None => (
                0,
                Document {
                    revision: 0,
                    applied: 0,
                    positions: Default::default(),
                    body: Body::null(),
                },
            ),
        };
        let body = std::mem::take(&mut doc.body);
        let draft = view.draft((expected > 0).then_some(body));
        let boards = draft.as_ref().map(|d| d.boards(id)).unwrap_or_default();
        Self {
            expected,
            doc,
            draft,
            boards,
            log: Vec::new(),
            dirty: false,
        }
    }

    /// Applies one event (whose sequence directly follows the document's position for its
    /// stream; `source` is that stream's [`source_key`], made once per event by the caller).
    fn apply(
        &mut self,
        keys: &Keys,
        view: &str,
        id: &str,
        source: &str,
        event: &PublishedEvent,
    ) -> Result<(), String> {
        let draft = self.draft.as_mut().map_err(|e| e.clone())?;
        let log = draft.apply(event)?;
        self.doc.applied += 1;
        let sequence = event.envelope.sequence;
        match self.doc.positions.get_mut(source) {
            Some(position) => *position = sequence,
            None => {
                self.doc.positions.insert(source.to_owned(), sequence);
            }
        }
        self.log.extend(log.into_iter().map(|l| LogAppend {
            key: keys.log(view, l.log, id),
            score: l.score,
            entry: l.entry,
        }));
        self.dirty = true;
        Ok(())
    }
}

/// What to write to move a document from the boards `before` to the boards `after`: a new
/// score for each board whose score changed or that it joined, `None` (remove) for each it left.
fn board_changes(before: &[(String, f64)], after: &[(String, f64)]) -> Vec<(String, Option<f64>)> {
    let mut changes: Vec<(String, Option<f64>)> = after
        .iter()
        .filter(|(board, score)| {
            !before
                .iter()
                .any(|(b, s)| b == board && s.to_bits() == score.to_bits())
        })
        .map(|(board, score)| (board.clone(), Some(*score)))
        .collect();
    changes.extend(
        before
            .iter()
            .filter(|(board, _)| !after.iter().any(|(b, _)| b == board))
            .map(|(board, _)| (board.clone(), None)),
    );
    changes
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use chaos_domain::{AccountId, CharacterEvent, CharacterName};
    use chaos_schemas::{AnyEvent, EventEnvelope};
    use chrono::TimeZone;

    use super::*;
    use crate::MemoryStore;

    fn event(id: &str, sequence: u64) -> PublishedEvent {
        let at = chrono::Utc.with_ymd_and_hms(2026, 11, 30, 9, 0, 0).unwrap();
        let e = if sequence == 1 {
            CharacterEvent::CharacterCreated {
                owner: AccountId::from_uuid(uuid::Uuid::from_u128(1)),
                name: CharacterName::parse("Mend").unwrap(),
                class: "mage".into(),
                level: 1,
                max_hp: 80,
                max_mana: 120,
                zone: "whispering_woods".into(),
                skills: vec!["strike".into()],
                created_at: at,
            }
        } else {
            CharacterEvent::ExperienceGained {
                amount: 1,
                total_xp: sequence - 1,
                source: "test".into(),
                gained_at: at,
            }
        };
        let event = AnyEvent::Character(e);
        PublishedEvent {
            envelope: EventEnvelope {
                event_id: uuid::Uuid::new_v4(),
                event_type: event.event_type().into(),
                aggregate_type: "character".into(),
                aggregate_id: id.into(),
                sequence,
                global_position: sequence as i64,
                occurred_at: at,
                correlation_id: None,
                causation_id: None,
                traceparent: None,
            },
            event,
        }
    }

    /// Serves a stream's events, recording what it was asked.
    #[derive(Debug, Default)]
    struct Source {
        asked: Mutex<Vec<(u64, u64)>>,
    }

    #[async_trait]
    impl StreamSource for Source {
        async fn events(
            &self,
            _: &str,
            id: &str,
            after: u64,
            up_to: u64,
        ) -> Result<Vec<PublishedEvent>, StoreError> {
            self.asked.lock().unwrap().push((after, up_to));
            Ok((after + 1..=up_to).map(|s| event(id, s)).collect())
        }
    }

    fn projection(store: Arc<MemoryStore>) -> ViewProjection {
        ViewProjection::new(store, Keys::new("t:", "v1"), crate::views::all())
    }

    #[tokio::test]
    async fn a_gap_is_dead_lettered_without_a_source_and_repaired_with_one() {
        let store = Arc::new(MemoryStore::default());
        let bare = projection(store.clone());
        let id = "c1";
        assert_eq!(
            bare.apply_batch(&[event(id, 1), event(id, 2)])
                .await
                .unwrap(),
            vec![Verdict::Applied, Verdict::Applied]
        );
        // The read model lost events 3 and 4 (say, restored from an old backup).
        let verdicts = bare.apply_batch(&[event(id, 5)]).await.unwrap();
        assert!(matches!(&verdicts[0], Verdict::DeadLetter(r) if r.contains("sequence gap")));

        let source = Arc::new(Source::default());
        let healing = projection(store.clone()).with_source(source.clone());
        assert_eq!(
            healing.apply_batch(&[event(id, 5)]).await.unwrap(),
            vec![Verdict::Applied]
        );
        assert_eq!(*source.asked.lock().unwrap(), vec![(2, 4)]);
        assert_eq!(healing.repairs(), 1);
        let doc = store
            .get(&Keys::new("t:", "v1").doc("sheet", id))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(doc.position("character/c1"), 5);
        assert_eq!(doc.applied, 5, "each event applied once");
        assert_eq!(doc.body.to_value().unwrap()["character"]["xp"], 4);

        // A read model lost entirely: the next event rebuilds the document from its first.
        let fresh = Arc::new(MemoryStore::default());
        let healing = projection(fresh.clone()).with_source(source.clone());
        assert_eq!(
            healing.apply_batch(&[event(id, 6)]).await.unwrap(),
            vec![Verdict::Applied]
        );
        let doc = fresh
            .get(&Keys::new("t:", "v1").doc("sheet", id))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((doc.position("character/c1"), doc.applied), (6, 6));
    }

    /// A stored body is parsed only by the view that reads it: text that is not JSON (or not
    /// the view's document) dead-letters the document's events and leaves it as it was.
    #[tokio::test]
    async fn a_stored_body_that_does_not_read_dead_letters_its_events() {
        let store = Arc::new(MemoryStore::default());
        let key = Keys::new("t:", "v1").doc("sheet", "c1");
        let broken = Document {
            revision: 1,
            applied: 1,
            positions: [("character/c1".to_owned(), 1)].into(),
            body: Body::from_text("{\"character\": ".to_owned()),
        };
        let write = CasWrite {
            key: key.clone(),
            expected: 0,
            doc: broken.clone(),
            log: Vec::new(),
            boards: Vec::new(),
        };
        assert_eq!(store.put_many(&[write]).await.unwrap(), vec![true]);

        let verdicts = projection(store.clone())
            .apply_batch(&[event("c1", 2)])
            .await
            .unwrap();
        assert!(
            matches!(&verdicts[0], Verdict::DeadLetter(r) if r.contains("stored document")),
            "{verdicts:?}"
        );
        assert_eq!(store.get(&key).await.unwrap(), Some(broken));
    }

    /// Boards follow documents: a score moves with the document, a character moving zone leaves
    /// the old zone's presence list, and a replayed batch changes nothing.
    #[tokio::test]
    async fn boards_follow_their_documents() {
        let store = Arc::new(MemoryStore::default());
        let p = projection(store.clone());
        let keys = Keys::new("t:", "v1");
        let level = keys.board("sheet", "level");
        let batch: Vec<PublishedEvent> = (1..=3).map(|s| event("c1", s)).collect();
        p.apply_batch(&batch).await.unwrap();
        p.apply_batch(&[event("c2", 1), event("c2", 2)])
            .await
            .unwrap();
        assert_eq!(
            store.board_range(&level, 0, 10, None).await.unwrap(),
            vec![("c1".to_owned(), 2.0), ("c2".to_owned(), 1.0)]
        );
        let woods = keys.board("sheet", "presence:whispering_woods");
        assert_eq!(store.board_len(&woods, None).await.unwrap(), 2);

        let mut moved = event("c1", 4);
        moved.event = AnyEvent::Character(CharacterEvent::ZoneEntered {
            from_zone: "whispering_woods".into(),
            to_zone: "ember_peaks".into(),
            entered_at: moved.envelope.occurred_at,
        });
        p.apply_batch(&[moved.clone()]).await.unwrap();
        assert_eq!(store.board_rank(&woods, "c1").await.unwrap(), None);
        assert_eq!(
            store.board_rank(&woods, "c2").await.unwrap().map(|r| r.0),
            Some(0)
        );
        let peaks = keys.board("sheet", "presence:ember_peaks");
        assert_eq!(
            store.board_rank(&peaks, "c1").await.unwrap().map(|r| r.0),
            Some(0)
        );

        let before = store.board_range(&level, 0, 10, None).await.unwrap();
        assert_eq!(
            p.apply_batch(&batch).await.unwrap(),
            vec![Verdict::Duplicate; 3]
        );
        assert_eq!(
            store.board_range(&level, 0, 10, None).await.unwrap(),
            before
        );
        assert_eq!(store.board_len(&woods, None).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn the_marker_says_whether_a_read_model_was_built_here() {
        let store = Arc::new(MemoryStore::default());
        let p = projection(store.clone());
        assert!(!p.is_marked().await.unwrap());
        p.mark(serde_json::json!({"built_from": "test"}))
            .await
            .unwrap();
        p.mark(serde_json::json!({"built_from": "again"}))
            .await
            .unwrap();
        assert!(p.is_marked().await.unwrap());
        assert!(!projection(Arc::new(MemoryStore::default()))
            .is_marked()
            .await
            .unwrap());
    }

    /// One holder at a time; it renews; a release or an expiry lets another take it.
    #[tokio::test]
    async fn the_rebuild_lease_has_one_holder() {
        let projection = ViewProjection::new(
            Arc::new(MemoryStore::default()),
            Keys::new("t:", "v1"),
            crate::views::all(),
        );
        let minute = std::time::Duration::from_secs(60);
        assert!(projection.take_rebuild_lease("a", minute).await.unwrap());
        assert!(!projection.take_rebuild_lease("b", minute).await.unwrap());
        assert!(
            projection.take_rebuild_lease("a", minute).await.unwrap(),
            "renewed"
        );
        // Only the holder releases it.
        projection.release_rebuild_lease("b").await.unwrap();
        assert!(!projection.take_rebuild_lease("b", minute).await.unwrap());
        projection.release_rebuild_lease("a").await.unwrap();
        assert!(projection.take_rebuild_lease("b", minute).await.unwrap());
        // A lease that has run out (a holder that died) is anyone's.
        projection.release_rebuild_lease("b").await.unwrap();
        assert!(projection
            .take_rebuild_lease("c", std::time::Duration::ZERO)
            .await
            .unwrap());
        assert!(projection.take_rebuild_lease("d", minute).await.unwrap());
        // Not a view's document: the marker's namespace, which checksums leave out.
        let key = projection.keys().doc(LEASE.0, LEASE.1);
        assert!(key.starts_with("t:v1:_meta:"), "{key}");
    }
}
