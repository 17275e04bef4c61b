//! The read-model store port: documents with compare-and-set, and append-only logs.
//!
//! A [`Document`] carries a `revision` (bumped by every write: the compare-and-set's guard), the
//! last applied sequence of each source stream that feeds it (`positions`, keyed
//! `<aggregate type>/<aggregate id>`) and how many events were applied. A write succeeds only if
//! the stored revision is still the one the writer read, so replays and concurrent consumers can
//! never apply an event twice or go backwards. A write may append entries to logs (a ledger, a
//! timeline) in the same atomic step, so a log entry exists exactly when its event was applied.
//!
//! Past 600 lines for a reason: [`contract`], the suite every implementation must pass, lives
//! beside the port it pins down.

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
    pub body: Body,
}

impl Document {
    /// The last sequence applied from `source` (0 if none).
    pub fn position(&self, source: &str) -> u64 {
        self.positions.get(source).copied().unwrap_or(0)
    }
}

/// A document's body: JSON text, as the stores that keep text (Redis, SQLite) hold it.
///
/// The projection decodes a body once per batch straight into the view's own document type and
/// encodes it once, and the query API decodes it straight into the type it serves: no
/// [`Value`] tree on the way (until 2026-12-02 every read parsed the text into a `Value`, and
/// every view decoded that again; every write went back through a `Value`). A body read from a
/// store is not parsed until something decodes it: text that is not JSON fails there, as a
/// body of the wrong shape always did.
#[derive(Debug, Clone)]
pub struct Body(String);

impl Body {
    /// JSON `null`: the body of a document that never got an event.
    pub fn null() -> Self {
        Self("null".to_owned())
    }

    /// A stored body, as the store holds it (not checked: see the type's documentation).
    pub fn from_text(text: String) -> Self {
        Self(text)
    }

    pub fn from_value(value: &Value) -> Self {
        Self(value.to_string())
    }

    /// A view's document (or any serializable value) as a body.
    pub fn encode<T: serde::Serialize + ?Sized>(doc: &T) -> serde_json::Result<Self> {
        serde_json::to_string(doc).map(Self)
    }

    /// The body as the type `T`.
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> serde_json::Result<T> {
        serde_json::from_str(&self.0)
    }

    pub fn to_value(&self) -> serde_json::Result<Value> {
        self.decode()
    }

    pub fn is_null(&self) -> bool {
        self.0.trim() == "null"
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl Default for Body {
    fn default() -> Self {
        Self::null()
    }
}

impl From<Value> for Body {
    fn from(value: Value) -> Self {
        Self::from_value(&value)
    }
}

/// The same JSON: equal text, or text that reads as the same value (a store that keeps
/// documents as BSON writes its own text back).
impl PartialEq for Body {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0 || matches!((self.to_value(), other.to_value()), (Ok(a), Ok(b)) if a == b)
    }
}

/// One entry appended to a log: ordered by `score` (the event's sequence), `entry` is JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct LogAppend {
    pub key: String,
    pub score: u64,
    pub entry: Value,
}

/// A change to a board (a leaderboard, a presence list): a sorted set of members by score,
/// read highest first. Values are absolute, so applying one twice changes nothing.
#[derive(Debug, Clone, PartialEq)]
pub enum BoardOp {
    Set {
        board: String,
        member: String,
        score: f64,
    },
    Remove {
        board: String,
        member: String,
    },
}

/// Write `doc` at `key` (and append `log`, apply `boards`) if the stored revision is `expected`
/// (0 = absent).
#[derive(Debug, Clone, PartialEq)]
pub struct CasWrite {
    pub key: String,
    pub expected: u64,
    pub doc: Document,
    pub log: Vec<LogAppend>,
    pub boards: Vec<BoardOp>,
}

/// What a key holds (see [`DocumentStore::scan`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KeyKind {
    Document,
    Log,
    Board,
    Value,
}

/// One page of [`DocumentStore::scan`]: keys in no particular order, and where to go on.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScanPage {
    pub keys: Vec<(String, KeyKind)>,
    /// `None`: the scan is complete.
    pub next: Option<String>,
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

    /// Applies each write atomically (document, log entries and board changes together) and
    /// independently of the others; returns, per write, whether it won its compare-and-set.
    async fn put_many(&self, writes: &[CasWrite]) -> Result<Vec<bool>>;

    /// Up to `limit` entries of a log with scores above `after`, in score order.
    async fn log_range(&self, key: &str, after: u64, limit: usize) -> Result<Vec<(u64, Value)>>;

    /// Up to `limit` entries of a log whose time (the entry's `at`, see [`entry_at`]) is in
    /// `from_ms..to_ms` (epoch milliseconds, `to_ms` excluded) and whose score is above `after`,
    /// in score order: a timeline by time range, paged by the last score of the previous page.
    /// Entries without a time are in no window. The default reads the log from `after` on and
    /// filters; stores with a secondary index answer from it.
    async fn log_window(
        &self,
        key: &str,
        from_ms: i64,
        to_ms: i64,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Value)>> {
        const PAGE: usize = 500;
        let mut found = Vec::new();
        let mut cursor = after;
        while found.len() < limit {
            let page = self.log_range(key, cursor, PAGE).await?;
            let Some((last, _)) = page.last() else {
                break;
            };
            cursor = *last;
            let full = page.len() == PAGE;
            found.extend(
                page.into_iter()
                    .filter(|(_, e)| entry_at(e).is_some_and(|at| from_ms <= at && at < to_ms))
                    .take(limit - found.len()),
            );
            if !full {
                break;
            }
        }
        Ok(found)
    }

    /// Up to `limit` members of a board from the `offset`-th, highest score first (ties: the
    /// greater member first), only those scoring at least `min_score` if given.
    async fn board_range(
        &self,
        board: &str,
        offset: u64,
        limit: usize,
        min_score: Option<f64>,
    ) -> Result<Vec<(String, f64)>>;

    /// A member's place on a board (0: first, in [`Self::board_range`]'s order) and score.
    async fn board_rank(&self, board: &str, member: &str) -> Result<Option<(u64, f64)>>;

    /// How many members a board has (scoring at least `min_score` if given).
    async fn board_len(&self, board: &str, min_score: Option<f64>) -> Result<u64>;

    /// A plain value (a pointer to the model version served, a rebuild's progress).
    async fn get_value(&self, key: &str) -> Result<Option<String>>;

    async fn set_value(&self, key: &str, value: &str) -> Result<()>;

    /// The keys starting with `prefix`, a page at a time (`cursor`: the previous page's `next`).
    async fn scan(&self, prefix: &str, cursor: Option<String>, limit: usize) -> Result<ScanPage>;

    /// Removes documents, logs, boards and values (a rebuild's old version, a test's keys).
    async fn delete(&self, keys: &[String]) -> Result<()>;

    /// Removes every key starting with `prefix`; returns how many.
    async fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        let mut keys = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.scan(prefix, cursor, 1000).await?;
            keys.extend(page.keys.into_iter().map(|(k, _)| k));
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        keys.sort();
        keys.dedup();
        self.delete(&keys).await?;
        Ok(keys.len() as u64)
    }

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

/// The time of a log entry for [`DocumentStore::log_window`]: its `at` field, epoch
/// milliseconds as a number or an RFC 3339 string.
pub fn entry_at(entry: &Value) -> Option<i64> {
    match entry.get("at")? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.timestamp_millis()),
        _ => None,
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
            body: serde_json::json!({ "v": v }).into(),
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
            boards: vec![],
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
                boards: vec![],
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
                boards: vec![],
            },
            CasWrite {
                key: b.clone(),
                expected: 0,
                doc: doc(1, "x/2", 1, "b1"),
                log: vec![],
                boards: vec![],
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
                boards: vec![],
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

        boards(store, prefix).await;
        values_and_scans(store, prefix).await;
        log_windows(store, prefix).await;
        races(store, prefix).await;
    }

    /// A log read by time range (the entries' `at`), paged by score.
    async fn log_windows(store: &dyn DocumentStore, prefix: &str) {
        let log = format!("{prefix}timeline:{{w}}");
        // Scores 1..=9; times out of step with them (two streams interleaved), one entry as an
        // RFC 3339 string, one without a time.
        let at = [100, 300, 200, 400, 500, 500, 700, 0, 900];
        let log_entries: Vec<LogAppend> = at
            .iter()
            .enumerate()
            .map(|(i, at)| LogAppend {
                key: log.clone(),
                score: i as u64 + 1,
                entry: match i {
                    4 => serde_json::json!({"at": "1970-01-01T00:00:00.500Z", "i": i}),
                    7 => serde_json::json!({"i": i}),
                    _ => serde_json::json!({"at": at, "i": i}),
                },
            })
            .collect();
        let key = format!("{prefix}w");
        let write = CasWrite {
            key: key.clone(),
            expected: 0,
            doc: doc(1, "x/1", 1, "w"),
            log: log_entries,
            boards: vec![],
        };
        assert_eq!(store.put_many(&[write]).await.unwrap(), vec![true]);
        let scores = |page: Vec<(u64, Value)>| page.into_iter().map(|(s, _)| s).collect::<Vec<_>>();
        assert_eq!(
            scores(store.log_window(&log, 200, 600, 0, 10).await.unwrap()),
            vec![2, 3, 4, 5, 6],
            "from included, to excluded, in score order"
        );
        assert_eq!(
            scores(store.log_window(&log, 0, i64::MAX, 0, 100).await.unwrap()),
            vec![1, 2, 3, 4, 5, 6, 7, 9],
            "an entry without a time is in no window"
        );
        // Paging: the last score of a page is the next page's `after`.
        assert_eq!(
            scores(store.log_window(&log, 200, 1000, 0, 2).await.unwrap()),
            vec![2, 3]
        );
        assert_eq!(
            scores(store.log_window(&log, 200, 1000, 3, 2).await.unwrap()),
            vec![4, 5]
        );
        assert_eq!(
            scores(store.log_window(&log, 200, 1000, 7, 2).await.unwrap()),
            vec![9]
        );
        let page = store.log_window(&log, 500, 501, 0, 10).await.unwrap();
        assert_eq!(
            page,
            vec![
                (
                    5,
                    serde_json::json!({"at": "1970-01-01T00:00:00.500Z", "i": 4})
                ),
                (6, serde_json::json!({"at": 500, "i": 5})),
            ]
        );
        assert!(store
            .log_window(&log, 1000, 2000, 0, 10)
            .await
            .unwrap()
            .is_empty());
        assert!(store
            .log_window(&log, 0, 1000, 0, 0)
            .await
            .unwrap()
            .is_empty());
        store.delete(&[key, log]).await.unwrap();
    }

    /// Writers racing with the same expected revision: exactly one wins, only its entry is
    /// written.
    async fn races(store: &dyn DocumentStore, prefix: &str) {
        let key = format!("{prefix}race");
        let log = format!("{prefix}race:log:{{r}}");
        let write = |by: &str| CasWrite {
            key: key.clone(),
            expected: 0,
            doc: doc(1, "x/1", 1, by),
            log: vec![LogAppend {
                key: log.clone(),
                score: 1,
                entry: serde_json::json!({"by": by}),
            }],
            boards: vec![],
        };
        let (a, b) = (write("a"), write("b"));
        let (won_a, won_b) = tokio::join!(
            store.put_many(std::slice::from_ref(&a)),
            store.put_many(std::slice::from_ref(&b))
        );
        let (won_a, won_b) = (won_a.unwrap()[0], won_b.unwrap()[0]);
        assert!(won_a ^ won_b, "exactly one wins");
        let winner = if won_a { "a" } else { "b" };
        assert_eq!(
            store.get(&key).await.unwrap().map(|d| d.body),
            Some(serde_json::json!({ "v": winner }).into())
        );
        assert_eq!(
            store.log_range(&log, 0, 10).await.unwrap(),
            vec![(1, serde_json::json!({ "by": winner }))]
        );
        store.delete(&[key, log]).await.unwrap();
    }

    fn set(board: &str, member: &str, score: f64) -> BoardOp {
        BoardOp::Set {
            board: board.to_owned(),
            member: member.to_owned(),
            score,
        }
    }

    /// Board changes ride on a document's write: applied exactly when it wins.
    async fn boards(store: &dyn DocumentStore, prefix: &str) {
        let board = format!("{prefix}board:level");
        let other = format!("{prefix}board:zone");
        let key = format!("{prefix}d");
        let write = |expected: u64, boards: Vec<BoardOp>| CasWrite {
            key: key.clone(),
            expected,
            doc: doc(expected + 1, "x/1", expected + 1, "d"),
            log: vec![],
            boards,
        };
        let first = write(
            0,
            vec![
                set(&board, "carol", 30.0),
                set(&board, "alice", 50.0),
                set(&board, "bob", 30.0),
                set(&board, "dave", 10.0),
                set(&other, "alice", 1.0),
            ],
        );
        assert_eq!(store.put_many(&[first]).await.unwrap(), vec![true]);
        // A lost compare-and-set changes no board.
        let lost = write(0, vec![set(&board, "eve", 99.0), set(&board, "alice", 0.0)]);
        assert_eq!(store.put_many(&[lost]).await.unwrap(), vec![false]);
        let all = store.board_range(&board, 0, 10, None).await.unwrap();
        let expected: Vec<(String, f64)> = [
            ("alice", 50.0),
            ("carol", 30.0),
            ("bob", 30.0),
            ("dave", 10.0),
        ]
        .iter()
        .map(|(m, s)| ((*m).to_owned(), *s))
        .collect();
        assert_eq!(all, expected, "highest first, ties by the greater member");
        assert_eq!(
            store.board_range(&board, 1, 2, None).await.unwrap(),
            expected[1..3].to_vec()
        );
        assert_eq!(
            store.board_range(&board, 0, 10, Some(30.0)).await.unwrap(),
            expected[..3].to_vec()
        );
        // A page that starts above the minimum and runs past it, and one past it.
        assert_eq!(
            store.board_range(&board, 2, 10, Some(30.0)).await.unwrap(),
            expected[2..3].to_vec()
        );
        assert!(store
            .board_range(&board, 3, 10, Some(30.0))
            .await
            .unwrap()
            .is_empty());
        assert_eq!(
            store.board_rank(&board, "bob").await.unwrap(),
            Some((2, 30.0))
        );
        assert_eq!(
            store.board_rank(&board, "alice").await.unwrap(),
            Some((0, 50.0))
        );
        assert_eq!(store.board_rank(&board, "eve").await.unwrap(), None);
        assert_eq!(store.board_len(&board, None).await.unwrap(), 4);
        assert_eq!(store.board_len(&board, Some(30.0)).await.unwrap(), 3);
        assert_eq!(
            store
                .board_len(&format!("{prefix}board:none"), None)
                .await
                .unwrap(),
            0
        );

        // A score replaced, a member moved from one board to another.
        let next = write(
            1,
            vec![
                set(&board, "dave", 60.0),
                BoardOp::Remove {
                    board: other.clone(),
                    member: "alice".into(),
                },
                BoardOp::Remove {
                    board: other.clone(),
                    member: "nobody".into(),
                },
            ],
        );
        assert_eq!(store.put_many(&[next]).await.unwrap(), vec![true]);
        assert_eq!(
            store.board_rank(&board, "dave").await.unwrap(),
            Some((0, 60.0))
        );
        assert_eq!(store.board_len(&other, None).await.unwrap(), 0);
        store
            .delete(&[key.clone(), board.clone(), other.clone()])
            .await
            .unwrap();
        assert_eq!(store.board_len(&board, None).await.unwrap(), 0);
        assert_eq!(store.get(&key).await.unwrap(), None);
    }

    async fn values_and_scans(store: &dyn DocumentStore, prefix: &str) {
        let pointer = format!("{prefix}current");
        assert_eq!(store.get_value(&pointer).await.unwrap(), None);
        store.set_value(&pointer, "v1").await.unwrap();
        store.set_value(&pointer, "v2").await.unwrap();
        assert_eq!(
            store.get_value(&pointer).await.unwrap().as_deref(),
            Some("v2")
        );

        // Three documents, a log and a board under `<prefix>v9:` (laid out as `Keys` does: a log
        // ends with its document's hash tag, a board does not), and one key beside it.
        let root = format!("{prefix}v9:");
        let writes: Vec<CasWrite> = (0..3)
            .map(|i| CasWrite {
                key: format!("{root}doc:{i}"),
                expected: 0,
                doc: doc(1, "x/1", 1, "s"),
                log: vec![LogAppend {
                    key: format!("{root}log:{{d}}"),
                    score: i + 1,
                    entry: serde_json::json!({"i": i}),
                }],
                boards: vec![set(&format!("{root}board"), &i.to_string(), i as f64)],
            })
            .chain(std::iter::once(CasWrite {
                key: format!("{prefix}v9x"),
                expected: 0,
                doc: doc(1, "x/1", 1, "beside"),
                log: vec![],
                boards: vec![],
            }))
            .collect();
        assert_eq!(store.put_many(&writes).await.unwrap(), vec![true; 4]);
        store.set_value(&format!("{root}value"), "x").await.unwrap();
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = store.scan(&root, cursor, 2).await.unwrap();
            seen.extend(page.keys);
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        seen.sort();
        seen.dedup();
        let mut expected = vec![
            (format!("{root}board"), KeyKind::Board),
            (format!("{root}doc:0"), KeyKind::Document),
            (format!("{root}doc:1"), KeyKind::Document),
            (format!("{root}doc:2"), KeyKind::Document),
            (format!("{root}log:{{d}}"), KeyKind::Log),
            (format!("{root}value"), KeyKind::Value),
        ];
        expected.sort();
        assert_eq!(
            seen, expected,
            "every kind under the prefix, nothing beside it"
        );
        assert_eq!(store.delete_prefix(&root).await.unwrap(), 6);
        assert!(store.scan(&root, None, 10).await.unwrap().keys.is_empty());
        assert!(
            store.get(&format!("{prefix}v9x")).await.unwrap().is_some(),
            "beside it: kept"
        );
        store
            .delete(&[format!("{prefix}v9x"), pointer.clone()])
            .await
            .unwrap();
        assert_eq!(store.get_value(&pointer).await.unwrap(), None);
    }
}
