//! The read-model store port: documents with compare-and-set, and append-only logs.
//!
//! A [`Document`] carries a `revision` (bumped by every write: the compare-and-set's guard), the
//! last applied sequence of each source stream that feeds it (`positions`, keyed
//! `<aggregate type>/<aggregate id>`) and how many events were applied. A write succeeds only if
//! the stored revision is still the one the writer read, so replays and concurrent consumers can
//! never apply an event twice or go backwards. A write may append entries to logs (a ledger, a
//! timeline) in the same atomic step, so a log entry exists exactly when its event was applied.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use tokio::sync::Notify;
use tokio::time::Instant;

/// A stored read-model document.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// Bumped by every write; 0 means absent.
    pub revision: u64,
    /// Events applied to it.
    pub applied: u64,
    /// Per source stream (`<aggregate type>/<aggregate id>`), the last sequence applied.
    pub positions: BTreeMap<String, u64>,
    /// The view's own document.
    pub body: Value,
}

impl Document {
    /// The last sequence applied from `source` (0 if none).
    pub fn position(&self, source: &str) -> u64 {
        self.positions.get(source).copied().unwrap_or(0)
    }
}

/// One entry appended to a log: ordered by `score` (the event's sequence), `entry` is JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct LogAppend {
    pub key: String,
    pub score: u64,
    pub entry: Value,
}

/// Write `doc` at `key` (and append `log`) if the stored revision is `expected` (0 = absent).
#[derive(Debug, Clone, PartialEq)]
pub struct CasWrite {
    pub key: String,
    pub expected: u64,
    pub doc: Document,
    pub log: Vec<LogAppend>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("read-model store unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("stored document is corrupt at {key}: {reason}")]
    Corrupt { key: String, reason: String },
}

impl StoreError {
    pub fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Unavailable(Box::new(e))
    }

    pub fn message(m: impl Into<String>) -> Self {
        Self::Unavailable(m.into().into())
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[async_trait]
pub trait DocumentStore: Send + Sync + std::fmt::Debug {
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Document>>>;

    /// Applies each write atomically (document and log entries together) and independently of
    /// the others; returns, per write, whether it won its compare-and-set.
    async fn put_many(&self, writes: &[CasWrite]) -> Result<Vec<bool>>;

    /// Up to `limit` entries of a log with scores above `after`, in score order.
    async fn log_range(&self, key: &str, after: u64, limit: usize) -> Result<Vec<(u64, Value)>>;

    /// Removes documents and logs (a rebuild's old version, a test's keys).
    async fn delete(&self, keys: &[String]) -> Result<()>;

    async fn ping(&self) -> Result<()>;

    async fn get(&self, key: &str) -> Result<Option<Document>> {
        Ok(self.get_many(&[key.to_owned()]).await?.pop().flatten())
    }

    /// A signal raised when `key` may have changed, for stores that announce their writes;
    /// `None` (the default): readers poll.
    async fn watch(&self, _key: &str) -> Option<Watch> {
        None
    }

    /// Reads `key`, waiting up to `timeout` until it has applied `source` up to `sequence`;
    /// returns the last read, which is behind only if the time ran out. Woken by
    /// [`Self::watch`]'s signal where there is one, and in any case every `fallback_poll` (or
    /// [`POLL_STEP`]).
    async fn get_at_least(
        &self,
        key: &str,
        source: &str,
        sequence: u64,
        timeout: Duration,
    ) -> Result<Option<Document>> {
        let reached =
            |doc: &Option<Document>| doc.as_ref().is_some_and(|d| d.position(source) >= sequence);
        let doc = self.get(key).await?;
        if reached(&doc) || timeout.is_zero() {
            return Ok(doc);
        }
        let deadline = Instant::now() + timeout;
        let watch = self.watch(key).await;
        let step = watch.as_ref().map_or(POLL_STEP, |w| w.fallback_poll);
        loop {
            // Registered before reading, so a write between the read and the wait still wakes it.
            let changed = watch.as_ref().map(|w| w.changed.notified());
            tokio::pin!(changed);
            if let Some(changed) = changed.as_mut().as_pin_mut() {
                changed.enable();
            }
            let doc = self.get(key).await?;
            if reached(&doc) || Instant::now() >= deadline {
                return Ok(doc);
            }
            let until = deadline.min(Instant::now() + step);
            match changed.as_pin_mut() {
                Some(changed) => {
                    let _ = tokio::time::timeout_at(until, changed).await;
                }
                None => tokio::time::sleep_until(until).await,
            }
        }
    }
}

/// How often [`DocumentStore::get_at_least`] looks again without a change signal.
pub const POLL_STEP: Duration = Duration::from_millis(5);

/// See [`DocumentStore::watch`]. Dropping it ends the registration.
pub struct Watch {
    /// Notified (`notify_waiters`) after writes that may concern the key.
    pub changed: Arc<Notify>,
    /// Look again at least this often: the signal may be lost (pub/sub is at-most-once).
    pub fallback_poll: Duration,
    /// Held for the store: deregisters the reader when dropped.
    pub registration: Option<Box<dyn Send + Sync>>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("fallback_poll", &self.fallback_poll)
            .finish_non_exhaustive()
    }
}

/// The contract every [`DocumentStore`] must meet; run against each implementation.
#[doc(hidden)]
pub mod contract {
    use super::*;

    fn doc(revision: u64, source: &str, position: u64, v: &str) -> Document {
        Document {
            revision,
            applied: position,
            positions: [(source.to_owned(), position)].into(),
            body: serde_json::json!({ "v": v }),
        }
    }

    pub async fn run(store: &dyn DocumentStore, prefix: &str) {
        let a = format!("{prefix}a");
        let b = format!("{prefix}b");
        let log = format!("{prefix}log");
        assert_eq!(
            store.get(&a).await.unwrap(),
            None,
            "absent key reads as None"
        );

        let first = CasWrite {
            key: a.clone(),
            expected: 0,
            doc: doc(1, "x/1", 1, "one"),
            log: vec![LogAppend {
                key: log.clone(),
                score: 1,
                entry: serde_json::json!({"n": 1}),
            }],
        };
        assert_eq!(
            store.put_many(std::slice::from_ref(&first)).await.unwrap(),
            vec![true]
        );
        assert_eq!(store.get(&a).await.unwrap(), Some(doc(1, "x/1", 1, "one")));

        // Replaying the same write loses, and appends nothing: the stored revision moved on.
        assert_eq!(store.put_many(&[first]).await.unwrap(), vec![false]);
        assert_eq!(
            store.log_range(&log, 0, 10).await.unwrap(),
            vec![(1, serde_json::json!({"n": 1}))]
        );

        let mut two_sources = doc(2, "x/1", 3, "three");
        two_sources.positions.insert("y/1".into(), 7);
        let writes = [
            CasWrite {
                key: a.clone(),
                expected: 1,
                doc: two_sources.clone(),
                log: vec![
                    LogAppend {
                        key: log.clone(),
                        score: 3,
                        entry: serde_json::json!({"n": 3}),
                    },
                    LogAppend {
                        key: log.clone(),
                        score: 2,
                        entry: serde_json::json!({"n": 2}),
                    },
                ],
            },
            CasWrite {
                key: b.clone(),
                expected: 5,
                doc: doc(6, "x/2", 6, "stale"),
                log: vec![LogAppend {
                    key: log.clone(),
                    score: 99,
                    entry: serde_json::json!({"lost": true}),
                }],
            },
            CasWrite {
                key: b.clone(),
                expected: 0,
                doc: doc(1, "x/2", 1, "b1"),
                log: vec![],
            },
        ];
        assert_eq!(
            store.put_many(&writes).await.unwrap(),
            vec![true, false, true]
        );
        let got = store
            .get_many(&[a.clone(), b.clone(), format!("{prefix}c")])
            .await
            .unwrap();
        assert_eq!(
            got,
            vec![
                Some(two_sources.clone()),
                Some(doc(1, "x/2", 1, "b1")),
                None
            ]
        );
        assert_eq!(got[0].as_ref().unwrap().position("y/1"), 7);
        assert_eq!(got[0].as_ref().unwrap().position("z/1"), 0);
        // The log is ordered by score and holds only the winners' entries; paging by score.
        let entries = store.log_range(&log, 0, 10).await.unwrap();
        let scores: Vec<u64> = entries.iter().map(|(s, _)| *s).collect();
        assert_eq!(scores, vec![1, 2, 3]);
        assert_eq!(
            store.log_range(&log, 1, 1).await.unwrap(),
            vec![(2, serde_json::json!({"n": 2}))]
        );
        assert!(store
            .log_range(&format!("{prefix}nolog"), 0, 10)
            .await
            .unwrap()
            .is_empty());
        store.ping().await.unwrap();

        // Waiting for a position: answered at once when it is there, woken by a later write when
        // it is not, and the current document when the time runs out.
        let now = store
            .get_at_least(&a, "x/1", 3, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(now, Some(two_sources.clone()));
        let waiting = store.get_at_least(&a, "x/1", 4, Duration::from_secs(30));
        let four = doc(3, "x/1", 4, "four");
        let writing = async {
            tokio::task::yield_now().await;
            let write = CasWrite {
                key: a.clone(),
                expected: 2,
                doc: four.clone(),
                log: vec![],
            };
            assert_eq!(store.put_many(&[write]).await.unwrap(), vec![true]);
        };
        let (woken, ()) = tokio::join!(waiting, writing);
        assert_eq!(woken.unwrap(), Some(four));
        let late = store
            .get_at_least(&b, "x/2", 9, Duration::from_millis(50))
            .await
            .unwrap();
        assert_eq!(
            late,
            Some(doc(1, "x/2", 1, "b1")),
            "times out with the current document"
        );
        let absent = store
            .get_at_least(&format!("{prefix}c"), "x/3", 1, Duration::from_millis(50))
            .await
            .unwrap();
        assert_eq!(absent, None);

        store
            .delete(&[a.clone(), b.clone(), log.clone()])
            .await
            .unwrap();
        assert_eq!(store.get_many(&[a, b]).await.unwrap(), vec![None, None]);
        assert!(store.log_range(&log, 0, 10).await.unwrap().is_empty());
    }
}
