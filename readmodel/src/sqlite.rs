//! Read models in a SQLite file: the embedded mode's store. They persist across restarts, so the
//! embedded backend resumes its views from their checkpoint (kept in the same file) instead of
//! rebuilding them from the whole event store at every start. Same contract as Redis.
//!
//! Synchronous SQLite (rusqlite) on tokio's blocking threads, a call per operation: a batch of
//! writes is one blocking call running cached statements in one transaction. (Through sqlx's
//! SQLite driver every statement was a round trip to its worker thread: a rebuild spent as much
//! time in the kernel, switching threads, as in SQLite.)

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde_json::Value;
use tokio::sync::{Notify, Semaphore};

use crate::store::{
    BoardOp, Body, CasWrite, Document, DocumentStore, KeyKind, Result, ScanPage, StoreError, Watch,
};

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS docs (
        key       TEXT PRIMARY KEY,
        revision  INTEGER NOT NULL,
        applied   INTEGER NOT NULL,
        positions TEXT NOT NULL,
        body      TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS logs (
        key   TEXT NOT NULL,
        score INTEGER NOT NULL,
        entry TEXT NOT NULL,
        PRIMARY KEY (key, score)
    );
    CREATE TABLE IF NOT EXISTS boards (
        board  TEXT NOT NULL,
        member TEXT NOT NULL,
        score  REAL NOT NULL,
        PRIMARY KEY (board, member)
    );
    CREATE INDEX IF NOT EXISTS boards_by_score ON boards (board, score DESC, member DESC);
    CREATE TABLE IF NOT EXISTS kv (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS checkpoints (
        name            TEXT PRIMARY KEY,
        global_position INTEGER NOT NULL
    );
";

/// Reads that run at once, each on its own connection, kept open between calls. More callers
/// wait for a slot: a burst of queries neither opens a connection per query nor fills tokio's
/// blocking pool (a blocked read holds a thread of it), and SQLite reads a file on two cores
/// no faster with more.
const READERS: usize = 4;

fn unavailable(e: rusqlite::Error) -> StoreError {
    StoreError::unavailable(e)
}

/// Counts and scores are stored as SQLite integers (`i64`); none comes near `i64::MAX`.
fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn uint(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// The least string above every string that starts with `prefix` (SQLite compares text as
/// UTF-8 bytes, which order as code points): `prefix` with its last character incremented, or
/// `None` if nothing is above (an empty prefix, or one of `char::MAX`s only).
fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = (u32::from(last) + 1..=u32::from(char::MAX)).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// The file's connections: one writer (SQLite has one writer at a time anyway; a batch is one
/// `BEGIN IMMEDIATE` transaction on it) and idle readers (WAL: they read beside the writer).
#[derive(Debug)]
struct Connections {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    /// Reader connections opened so far (at most [`READERS`] while they stay idle between
    /// calls).
    readers_opened: AtomicUsize,
}

impl Connections {
    /// WAL and synchronous = NORMAL: a committed batch survives a crash of the process; the
    /// feed's checkpoint commits with the batch it covers.
    fn connect(path: &Path) -> rusqlite::Result<Connection> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        Ok(conn)
    }

    fn write<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T> {
        let mut conn = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut conn).map_err(unavailable)
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        let idle = self
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match idle {
            Some(conn) => conn,
            None => {
                self.readers_opened.fetch_add(1, Ordering::Relaxed);
                Self::connect(&self.path).map_err(unavailable)?
            }
        };
        let out = f(&conn).map_err(unavailable);
        let mut idle = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < READERS {
            idle.push(conn);
        }
        out
    }
}

/// See the module documentation. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    connections: Arc<Connections>,
    /// [`READERS`] permits: one per read running.
    read_slots: Arc<Semaphore>,
    changed: Arc<Notify>,
}

/// A document write as its columns, made before the blocking call.
struct Row {
    key: String,
    expected: i64,
    revision: i64,
    applied: i64,
    positions: String,
    body: String,
    log: Vec<(String, i64, String)>,
    boards: Vec<BoardOp>,
}

impl SqliteStore {
    /// Opens (creating if needed) the file, WAL and synchronous as the event store: a batch the
    /// feed moved its checkpoint past is on disk.
    pub async fn open(path: &std::path::Path) -> Result<Self> {
        let path = path.to_owned();
        let connections = tokio::task::spawn_blocking(move || {
            let writer = Connections::connect(&path)?;
            writer.execute_batch(SCHEMA)?;
            Ok::<_, rusqlite::Error>(Connections {
                path,
                writer: Mutex::new(writer),
                readers: Mutex::new(Vec::new()),
                readers_opened: AtomicUsize::new(0),
            })
        })
        .await
        .map_err(StoreError::unavailable)?
        .map_err(unavailable)?;
        Ok(Self {
            connections: Arc::new(connections),
            read_slots: Arc::new(Semaphore::new(READERS)),
            changed: Arc::new(Notify::new()),
        })
    }

    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T> {
        let connections = self.connections.clone();
        tokio::task::spawn_blocking(move || connections.write(f))
            .await
            .map_err(StoreError::unavailable)?
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T> {
        let slot = self
            .read_slots
            .clone()
            .acquire_owned()
            .await
            .map_err(StoreError::unavailable)?;
        let connections = self.connections.clone();
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            connections.read(f)
        })
        .await
        .map_err(StoreError::unavailable)?
    }

    /// The global position a feed named `name` has applied up to (`None`: never saved).
    pub async fn load_checkpoint(&self, name: &str) -> Result<Option<i64>> {
        self.lookup(
            "SELECT global_position FROM checkpoints WHERE name = ?1",
            name,
        )
        .await
    }

    /// The one column `sql` selects for `key` (its only parameter), if a row has it.
    async fn lookup<T: rusqlite::types::FromSql + Send + 'static>(
        &self,
        sql: &'static str,
        key: &str,
    ) -> Result<Option<T>> {
        let key = key.to_owned();
        self.read(move |conn| {
            conn.prepare_cached(sql)?
                .query_row([key], |row| row.get(0))
                .optional()
        })
        .await
    }

    pub async fn save_checkpoint(&self, name: &str, global_position: i64) -> Result<()> {
        self.upsert(
            "INSERT INTO checkpoints (name, global_position) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET global_position = excluded.global_position",
            name,
            global_position,
        )
        .await
    }

    /// Runs `sql` (an insert-or-update of a key and its value) with `key` and `value`.
    async fn upsert<V: rusqlite::ToSql + Send + 'static>(
        &self,
        sql: &'static str,
        key: &str,
        value: V,
    ) -> Result<()> {
        let key = key.to_owned();
        self.write(move |conn| {
            conn.prepare_cached(sql)?
                .execute(params![key, value])
                .map(drop)
        })
        .await
    }

    /// Removes every document, log, board, value and checkpoint whose key does not start with
    /// `prefix`: the read models of another model version, or of an event store that is gone.
    pub async fn retain(&self, prefix: &str) -> Result<u64> {
        let prefix = prefix.to_owned();
        let length = int(prefix.chars().count() as u64);
        self.write(move |conn| {
            let tx = conn.transaction()?;
            let mut removed = 0;
            for statement in [
                "DELETE FROM docs WHERE substr(key, 1, ?1) <> ?2",
                "DELETE FROM logs WHERE substr(key, 1, ?1) <> ?2",
                "DELETE FROM boards WHERE substr(board, 1, ?1) <> ?2",
                "DELETE FROM kv WHERE substr(key, 1, ?1) <> ?2",
                "DELETE FROM checkpoints WHERE substr(name, 1, ?1) <> ?2",
            ] {
                removed += tx.execute(statement, params![length, prefix])? as u64;
            }
            tx.commit()?;
            Ok(removed)
        })
        .await
    }

    /// Every document key (for checksums and tests).
    pub async fn keys(&self) -> Result<Vec<String>> {
        self.read(|conn| {
            conn.prepare_cached("SELECT key FROM docs ORDER BY key")?
                .query_map([], |row| row.get(0))?
                .collect()
        })
        .await
    }
}

/// One transaction for all the writes; each wins or loses its compare-and-set on its own.
fn put_rows(conn: &mut Connection, rows: &[Row]) -> rusqlite::Result<Vec<bool>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut won = Vec::with_capacity(rows.len());
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO docs (key, revision, applied, positions, body) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (key) DO NOTHING",
        )?;
        let mut update = tx.prepare_cached(
            "UPDATE docs SET revision = ?2, applied = ?3, positions = ?4, body = ?5
             WHERE key = ?1 AND revision = ?6",
        )?;
        let mut log = tx.prepare_cached(
            "INSERT INTO logs (key, score, entry) VALUES (?1, ?2, ?3)
             ON CONFLICT (key, score) DO UPDATE SET entry = excluded.entry",
        )?;
        let mut set = tx.prepare_cached(
            "INSERT INTO boards (board, member, score) VALUES (?1, ?2, ?3)
             ON CONFLICT (board, member) DO UPDATE SET score = excluded.score",
        )?;
        let mut remove =
            tx.prepare_cached("DELETE FROM boards WHERE board = ?1 AND member = ?2")?;
        for w in rows {
            let changed = if w.expected == 0 {
                insert.execute(params![w.key, w.revision, w.applied, w.positions, w.body])?
            } else {
                update.execute(params![
                    w.key,
                    w.revision,
                    w.applied,
                    w.positions,
                    w.body,
                    w.expected
                ])?
            } == 1;
            if changed {
                for (key, score, entry) in &w.log {
                    log.execute(params![key, score, entry])?;
                }
                for op in &w.boards {
                    match op {
                        BoardOp::Set {
                            board,
                            member,
                            score,
                        } => set.execute(params![board, member, score])?,
                        BoardOp::Remove { board, member } => {
                            remove.execute(params![board, member])?
                        }
                    };
                }
            }
            won.push(changed);
        }
    }
    tx.commit()?;
    Ok(won)
}

fn first(row: &rusqlite::Row<'_>) -> rusqlite::Result<String> {
    row.get(0)
}

fn corrupt(key: &str) -> impl Fn(serde_json::Error) -> StoreError + '_ {
    move |e| StoreError::Corrupt {
        key: key.to_owned(),
        reason: e.to_string(),
    }
}

#[async_trait]
impl DocumentStore for SqliteStore {
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Document>>> {
        let wanted = keys.to_vec();
        let rows = self
            .read(move |conn| {
                let mut get = conn.prepare_cached(
                    "SELECT revision, applied, positions, body FROM docs WHERE key = ?1",
                )?;
                wanted
                    .iter()
                    .map(|key| {
                        get.query_row([key], |r| {
                            Ok((
                                r.get::<_, i64>(0)?,
                                r.get::<_, i64>(1)?,
                                r.get::<_, String>(2)?,
                                r.get::<_, String>(3)?,
                            ))
                        })
                        .optional()
                    })
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .await?;
        keys.iter()
            .zip(rows)
            .map(|(key, row)| {
                row.map(|(revision, applied, positions, body)| {
                    Ok(Document {
                        revision: uint(revision),
                        applied: uint(applied),
                        positions: serde_json::from_str(&positions).map_err(corrupt(key))?,
                        body: Body::from_text(body),
                    })
                })
                .transpose()
            })
            .collect()
    }

    /// One transaction for all the writes; each wins or loses its compare-and-set on its own.
    async fn put_many(&self, writes: &[CasWrite]) -> Result<Vec<bool>> {
        if writes.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<Row> = writes
            .iter()
            .map(|w| Row {
                key: w.key.clone(),
                expected: int(w.expected),
                revision: int(w.doc.revision),
                applied: int(w.doc.applied),
                positions: serde_json::to_string(&w.doc.positions).unwrap_or_default(),
                body: w.doc.body.as_str().to_owned(),
                log: w
                    .log
                    .iter()
                    .map(|e| (e.key.clone(), int(e.score), e.entry.to_string()))
                    .collect(),
                boards: w.boards.clone(),
            })
            .collect();
        let won = self.write(move |conn| put_rows(conn, &rows)).await?;
        if won.contains(&true) {
            self.changed.notify_waiters();
        }
        Ok(won)
    }

    async fn log_range(&self, key: &str, after: u64, limit: usize) -> Result<Vec<(u64, Value)>> {
        let (wanted, after, limit) = (key.to_owned(), int(after), int(limit as u64));
        let rows = self
            .read(move |conn| {
                conn.prepare_cached(
                    "SELECT score, entry FROM logs WHERE key = ?1 AND score > ?2
                     ORDER BY score LIMIT ?3",
                )?
                .query_map(params![wanted, after, limit], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .await?;
        rows.into_iter()
            .map(|(score, entry)| {
                let value = serde_json::from_str(&entry).map_err(corrupt(key))?;
                Ok((uint(score), value))
            })
            .collect()
    }

    async fn board_range(
        &self,
        board: &str,
        offset: u64,
        limit: usize,
        min_score: Option<f64>,
    ) -> Result<Vec<(String, f64)>> {
        let board = board.to_owned();
        let min = min_score.unwrap_or(f64::NEG_INFINITY);
        let (limit, offset) = (int(limit as u64), int(offset));
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT member, score FROM boards WHERE board = ?1 AND score >= ?2
                 ORDER BY score DESC, member DESC LIMIT ?3 OFFSET ?4",
            )?
            .query_map(params![board, min, limit, offset], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect()
        })
        .await
    }

    async fn board_rank(&self, board: &str, member: &str) -> Result<Option<(u64, f64)>> {
        let (board, member) = (board.to_owned(), member.to_owned());
        self.read(move |conn| {
            let Some(score): Option<f64> = conn
                .prepare_cached("SELECT score FROM boards WHERE board = ?1 AND member = ?2")?
                .query_row(params![board, member], |r| r.get(0))
                .optional()?
            else {
                return Ok(None);
            };
            let ahead: i64 = conn
                .prepare_cached(
                    "SELECT count(*) FROM boards
                     WHERE board = ?1 AND (score > ?2 OR (score = ?2 AND member > ?3))",
                )?
                .query_row(params![board, score, member], |r| r.get(0))?;
            Ok(Some((uint(ahead), score)))
        })
        .await
    }

    async fn board_len(&self, board: &str, min_score: Option<f64>) -> Result<u64> {
        let board = board.to_owned();
        let min = min_score.unwrap_or(f64::NEG_INFINITY);
        let n: i64 = self
            .read(move |conn| {
                conn.prepare_cached("SELECT count(*) FROM boards WHERE board = ?1 AND score >= ?2")?
                    .query_row(params![board, min], |r| r.get(0))
            })
            .await?;
        Ok(uint(n))
    }

    async fn get_value(&self, key: &str) -> Result<Option<String>> {
        self.lookup("SELECT value FROM kv WHERE key = ?1", key)
            .await
    }

    async fn set_value(&self, key: &str, value: &str) -> Result<()> {
        self.upsert(
            "INSERT INTO kv (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            key,
            value.to_owned(),
        )
        .await
    }

    /// In key order; the cursor is the last key of the previous page. Each kind's table is read
    /// through its key index from where the page starts, at most a page of keys each (one query
    /// over all four had SQLite sort every row past the cursor for every page: a checksum of a
    /// million log entries took 21 s in scans).
    async fn scan(&self, prefix: &str, cursor: Option<String>, limit: usize) -> Result<ScanPage> {
        let limit = limit.max(1);
        let (low, high) = (prefix.to_owned(), prefix_end(prefix));
        let after = cursor.unwrap_or_default();
        let mut keys: Vec<(String, KeyKind)> = self
            .read(move |conn| {
                let mut keys = Vec::new();
                for (table, column, kind) in [
                    ("docs", "key", KeyKind::Document),
                    ("logs", "key", KeyKind::Log),
                    ("boards", "board", KeyKind::Board),
                    ("kv", "key", KeyKind::Value),
                ] {
                    let below = if high.is_some() {
                        format!("AND {column} < ?4")
                    } else {
                        String::new()
                    };
                    let sql = format!(
                        "SELECT DISTINCT {column} FROM {table} \
                         WHERE {column} >= ?1 AND {column} > ?2 {below} ORDER BY {column} LIMIT ?3"
                    );
                    let mut statement = conn.prepare_cached(&sql)?;
                    let page = int(limit as u64);
                    let rows = match &high {
                        Some(high) => {
                            statement.query_map(params![low, after, page, high], first)?
                        }
                        None => statement.query_map(params![low, after, page], first)?,
                    };
                    for key in rows {
                        keys.push((key?, kind));
                    }
                }
                Ok(keys)
            })
            .await?;
        keys.sort();
        let next = if keys.len() > limit {
            // The page ends after every kind of its last key (a key held by two kinds is not
            // split across pages: the next page starts after the key).
            let last = keys[limit - 1].0.clone();
            keys.retain(|(k, _)| *k <= last);
            Some(last)
        } else if keys.len() == limit {
            keys.last().map(|(k, _)| k.clone())
        } else {
            None
        };
        Ok(ScanPage { keys, next })
    }

    async fn delete(&self, keys: &[String]) -> Result<()> {
        let keys = keys.to_vec();
        self.write(move |conn| {
            let tx = conn.transaction()?;
            for key in &keys {
                for statement in [
                    "DELETE FROM docs WHERE key = ?1",
                    "DELETE FROM logs WHERE key = ?1",
                    "DELETE FROM boards WHERE board = ?1",
                    "DELETE FROM kv WHERE key = ?1",
                ] {
                    tx.prepare_cached(statement)?.execute([key])?;
                }
            }
            tx.commit()
        })
        .await
    }

    async fn watch(&self, _key: &str) -> Option<Watch> {
        Some(Watch {
            changed: self.changed.clone(),
            // Writes in this process signal; another process writing the file is seen by polling.
            fallback_poll: Duration::from_millis(100),
            registration: None,
        })
    }

    async fn ping(&self) -> Result<()> {
        self.read(|conn| {
            conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
                .map(drop)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use crate::DocumentStore;

    #[test]
    fn a_prefix_ends_at_its_last_character_incremented() {
        use super::prefix_end;
        assert_eq!(prefix_end("chaos:v2:").as_deref(), Some("chaos:v2;"));
        assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(
            prefix_end("\u{D7FF}").as_deref(),
            Some("\u{E000}"),
            "past the surrogates"
        );
        assert_eq!(prefix_end(""), None);
        assert_eq!(prefix_end("\u{10FFFF}"), None);
        // Every string under the prefix sorts below the end, as UTF-8 bytes (SQLite's order).
        let end = prefix_end("é").unwrap();
        for under in ["é", "é\u{10FFFF}", "éz"] {
            assert!(under.as_bytes() < end.as_bytes(), "{under}");
        }
    }

    /// A store in a new file of a new temporary directory (removed by the test).
    async fn fresh() -> (std::path::PathBuf, super::SqliteStore) {
        let dir = std::env::temp_dir().join(format!("chaos-rm-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = super::SqliteStore::open(&dir.join("readmodels.db"))
            .await
            .unwrap();
        (dir, store)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_burst_of_reads_shares_a_few_connections() {
        use std::sync::atomic::Ordering;
        let (dir, store) = fresh().await;
        let reads: Vec<_> = (0..256)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move { store.load_checkpoint(&format!("feed{i}")).await })
            })
            .collect();
        for read in reads {
            assert_eq!(read.await.unwrap().unwrap(), None);
        }
        let opened = store.connections.readers_opened.load(Ordering::Relaxed);
        assert!(
            (1..=super::READERS).contains(&opened),
            "{opened} reader connections for 256 reads"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn sqlite_store_meets_the_contract() {
        let (dir, store) = fresh().await;
        crate::store::contract::run(&store, "t:").await;
        // Checkpoints survive a reopen.
        store.save_checkpoint("views", 42).await.unwrap();
        let again = super::SqliteStore::open(&dir.join("readmodels.db"))
            .await
            .unwrap();
        assert_eq!(again.load_checkpoint("views").await.unwrap(), Some(42));
        assert_eq!(again.load_checkpoint("other").await.unwrap(), None);
        // Keeping one prefix drops the rest, taken literally (case and wildcards).
        let put = |key: &str| crate::CasWrite {
            key: key.to_owned(),
            expected: 0,
            doc: crate::Document {
                revision: 1,
                applied: 1,
                positions: [("x/1".to_owned(), 1)].into(),
                body: serde_json::json!({}).into(),
            },
            log: vec![],
            boards: vec![],
        };
        let writes = [put("v_2:a"), put("v_2:b"), put("vX2:c"), put("V_2:a")];
        assert_eq!(
            again.put_many(&writes).await.unwrap(),
            vec![true, true, true, true]
        );
        again.save_checkpoint("v_2:views", 7).await.unwrap();
        assert_eq!(
            again.retain("v_2:").await.unwrap(),
            3,
            "two documents, one checkpoint"
        );
        assert_eq!(again.keys().await.unwrap(), vec!["v_2:a", "v_2:b"]);
        assert_eq!(again.load_checkpoint("v_2:views").await.unwrap(), Some(7));
        assert_eq!(again.load_checkpoint("views").await.unwrap(), None);
        let _ = std::fs::remove_dir_all(dir);
    }
}
