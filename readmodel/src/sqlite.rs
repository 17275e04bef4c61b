//! Read models in a SQLite file: the embedded mode's store. They persist across restarts, so the
//! embedded backend resumes its views from their checkpoint (kept in the same file) instead of
//! rebuilding them from the whole event store at every start. Same contract as Redis.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::Row;
use tokio::sync::Notify;

use crate::store::{
    BoardOp, CasWrite, Document, DocumentStore, KeyKind, Result, ScanPage, StoreError, Watch,
};

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS docs (
        key       TEXT PRIMARY KEY,
        revision  INTEGER NOT NULL,
        applied   INTEGER NOT NULL,
        positions TEXT NOT NULL,
        body      TEXT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS logs (
        key   TEXT NOT NULL,
        score INTEGER NOT NULL,
        entry TEXT NOT NULL,
        PRIMARY KEY (key, score)
    )",
    "CREATE TABLE IF NOT EXISTS boards (
        board  TEXT NOT NULL,
        member TEXT NOT NULL,
        score  REAL NOT NULL,
        PRIMARY KEY (board, member)
    )",
    "CREATE INDEX IF NOT EXISTS boards_by_score ON boards (board, score DESC, member DESC)",
    "CREATE TABLE IF NOT EXISTS kv (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS checkpoints (
        name            TEXT PRIMARY KEY,
        global_position INTEGER NOT NULL
    )",
];

fn unavailable(e: sqlx::Error) -> StoreError {
    StoreError::unavailable(e)
}

/// See the module documentation. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    changed: Arc<Notify>,
}

impl SqliteStore {
    /// Opens (creating if needed) the file, WAL and synchronous as the event store: a batch the
    /// feed moved its checkpoint past is on disk.
    pub async fn open(path: &std::path::Path) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .map_err(unavailable)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(unavailable)?;
        for statement in SCHEMA {
            sqlx::query(statement)
                .execute(&pool)
                .await
                .map_err(unavailable)?;
        }
        Ok(Self {
            pool,
            changed: Arc::new(Notify::new()),
        })
    }

    /// The global position a feed named `name` has applied up to (`None`: never saved).
    pub async fn load_checkpoint(&self, name: &str) -> Result<Option<i64>> {
        sqlx::query_scalar("SELECT global_position FROM checkpoints WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)
    }

    pub async fn save_checkpoint(&self, name: &str, global_position: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO checkpoints (name, global_position) VALUES (?, ?)
             ON CONFLICT (name) DO UPDATE SET global_position = excluded.global_position",
        )
        .bind(name)
        .bind(global_position)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    /// Removes every document, log, board, value and checkpoint whose key does not start with
    /// `prefix`: the
    /// read models of another model version, or of an event store that is gone.
    pub async fn retain(&self, prefix: &str) -> Result<u64> {
        let length = i64::try_from(prefix.chars().count()).unwrap_or(i64::MAX);
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let mut removed = 0;
        for statement in [
            "DELETE FROM docs WHERE substr(key, 1, ?) <> ?",
            "DELETE FROM logs WHERE substr(key, 1, ?) <> ?",
            "DELETE FROM boards WHERE substr(board, 1, ?) <> ?",
            "DELETE FROM kv WHERE substr(key, 1, ?) <> ?",
            "DELETE FROM checkpoints WHERE substr(name, 1, ?) <> ?",
        ] {
            removed += sqlx::query(statement)
                .bind(length)
                .bind(prefix)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?
                .rows_affected();
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(removed)
    }

    /// Every document key (for checksums and tests).
    pub async fn keys(&self) -> Result<Vec<String>> {
        sqlx::query_scalar("SELECT key FROM docs ORDER BY key")
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)
    }
}

#[async_trait]
impl DocumentStore for SqliteStore {
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Document>>> {
        let mut out = Vec::with_capacity(keys.len());
        let mut conn = self.pool.acquire().await.map_err(unavailable)?;
        for key in keys {
            let row =
                sqlx::query("SELECT revision, applied, positions, body FROM docs WHERE key = ?")
                    .bind(key)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(unavailable)?;
            out.push(
                row.map(|r| {
                    let corrupt = |e: serde_json::Error| StoreError::Corrupt {
                        key: key.clone(),
                        reason: e.to_string(),
                    };
                    let positions: String = r.try_get("positions").map_err(unavailable)?;
                    let body: String = r.try_get("body").map_err(unavailable)?;
                    Ok(Document {
                        revision: u64::try_from(
                            r.try_get::<i64, _>("revision").map_err(unavailable)?,
                        )
                        .unwrap_or(0),
                        applied: u64::try_from(
                            r.try_get::<i64, _>("applied").map_err(unavailable)?,
                        )
                        .unwrap_or(0),
                        positions: serde_json::from_str(&positions).map_err(corrupt)?,
                        body: serde_json::from_str(&body).map_err(corrupt)?,
                    })
                })
                .transpose()?,
            );
        }
        Ok(out)
    }

    /// One transaction for all the writes; each wins or loses its compare-and-set on its own.
    async fn put_many(&self, writes: &[CasWrite]) -> Result<Vec<bool>> {
        if writes.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(unavailable)?;
        let mut won = Vec::with_capacity(writes.len());
        for w in writes {
            let revision = i64::try_from(w.doc.revision).unwrap_or(i64::MAX);
            let applied = i64::try_from(w.doc.applied).unwrap_or(i64::MAX);
            let positions = serde_json::to_string(&w.doc.positions).unwrap_or_default();
            let body = w.doc.body.to_string();
            let changed = if w.expected == 0 {
                sqlx::query(
                    "INSERT INTO docs (key, revision, applied, positions, body) VALUES (?, ?, ?, ?, ?)
                     ON CONFLICT (key) DO NOTHING",
                )
                .bind(&w.key)
                .bind(revision)
                .bind(applied)
                .bind(positions)
                .bind(body)
                .execute(&mut *tx)
                .await
            } else {
                sqlx::query(
                    "UPDATE docs SET revision = ?, applied = ?, positions = ?, body = ?
                     WHERE key = ? AND revision = ?",
                )
                .bind(revision)
                .bind(applied)
                .bind(positions)
                .bind(body)
                .bind(&w.key)
                .bind(i64::try_from(w.expected).unwrap_or(i64::MAX))
                .execute(&mut *tx)
                .await
            }
            .map_err(unavailable)?
            .rows_affected()
                == 1;
            if changed {
                for entry in &w.log {
                    sqlx::query(
                        "INSERT INTO logs (key, score, entry) VALUES (?, ?, ?)
                         ON CONFLICT (key, score) DO UPDATE SET entry = excluded.entry",
                    )
                    .bind(&entry.key)
                    .bind(i64::try_from(entry.score).unwrap_or(i64::MAX))
                    .bind(entry.entry.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?;
                }
                for op in &w.boards {
                    match op {
                        BoardOp::Set {
                            board,
                            member,
                            score,
                        } => sqlx::query(
                            "INSERT INTO boards (board, member, score) VALUES (?, ?, ?)
                             ON CONFLICT (board, member) DO UPDATE SET score = excluded.score",
                        )
                        .bind(board)
                        .bind(member)
                        .bind(score),
                        BoardOp::Remove { board, member } => {
                            sqlx::query("DELETE FROM boards WHERE board = ? AND member = ?")
                                .bind(board)
                                .bind(member)
                        }
                    }
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?;
                }
            }
            won.push(changed);
        }
        tx.commit().await.map_err(unavailable)?;
        if won.contains(&true) {
            self.changed.notify_waiters();
        }
        Ok(won)
    }

    async fn log_range(&self, key: &str, after: u64, limit: usize) -> Result<Vec<(u64, Value)>> {
        let rows = sqlx::query(
            "SELECT score, entry FROM logs WHERE key = ? AND score > ? ORDER BY score LIMIT ?",
        )
        .bind(key)
        .bind(i64::try_from(after).unwrap_or(i64::MAX))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(|r| {
                let score: i64 = r.try_get("score").map_err(unavailable)?;
                let entry: String = r.try_get("entry").map_err(unavailable)?;
                let value = serde_json::from_str(&entry).map_err(|e| StoreError::Corrupt {
                    key: key.to_owned(),
                    reason: e.to_string(),
                })?;
                Ok((u64::try_from(score).unwrap_or(0), value))
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
        sqlx::query_as(
            "SELECT member, score FROM boards WHERE board = ? AND score >= ?
             ORDER BY score DESC, member DESC LIMIT ? OFFSET ?",
        )
        .bind(board)
        .bind(min_score.unwrap_or(f64::NEG_INFINITY))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)
    }

    async fn board_rank(&self, board: &str, member: &str) -> Result<Option<(u64, f64)>> {
        let Some(score): Option<f64> =
            sqlx::query_scalar("SELECT score FROM boards WHERE board = ? AND member = ?")
                .bind(board)
                .bind(member)
                .fetch_optional(&self.pool)
                .await
                .map_err(unavailable)?
        else {
            return Ok(None);
        };
        let ahead: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM boards
             WHERE board = ? AND (score > ? OR (score = ? AND member > ?))",
        )
        .bind(board)
        .bind(score)
        .bind(score)
        .bind(member)
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(Some((u64::try_from(ahead).unwrap_or(0), score)))
    }

    async fn board_len(&self, board: &str, min_score: Option<f64>) -> Result<u64> {
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM boards WHERE board = ? AND score >= ?")
                .bind(board)
                .bind(min_score.unwrap_or(f64::NEG_INFINITY))
                .fetch_one(&self.pool)
                .await
                .map_err(unavailable)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn get_value(&self, key: &str) -> Result<Option<String>> {
        sqlx::query_scalar("SELECT value FROM kv WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)
    }

    async fn set_value(&self, key: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO kv (key, value) VALUES (?, ?)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    /// In key order; the cursor is the last key of the previous page.
    async fn scan(&self, prefix: &str, cursor: Option<String>, limit: usize) -> Result<ScanPage> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT key, kind FROM (
                 SELECT key, 0 AS kind FROM docs
                 UNION SELECT key, 1 FROM logs
                 UNION SELECT board, 2 FROM boards
                 UNION SELECT key, 3 FROM kv
             ) WHERE substr(key, 1, ?) = ? AND key > ? ORDER BY key LIMIT ?",
        )
        .bind(i64::try_from(prefix.chars().count()).unwrap_or(i64::MAX))
        .bind(prefix)
        .bind(cursor.unwrap_or_default())
        .bind(i64::try_from(limit.max(1)).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        let next = (rows.len() >= limit.max(1))
            .then(|| rows.last().map(|(k, _)| k.clone()))
            .flatten();
        let keys = rows
            .into_iter()
            .map(|(key, kind)| {
                let kind = match kind {
                    0 => KeyKind::Document,
                    1 => KeyKind::Log,
                    2 => KeyKind::Board,
                    _ => KeyKind::Value,
                };
                (key, kind)
            })
            .collect();
        Ok(ScanPage { keys, next })
    }

    async fn delete(&self, keys: &[String]) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        for key in keys {
            for statement in [
                "DELETE FROM docs WHERE key = ?",
                "DELETE FROM logs WHERE key = ?",
                "DELETE FROM boards WHERE board = ?",
                "DELETE FROM kv WHERE key = ?",
            ] {
                sqlx::query(statement)
                    .bind(key)
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?;
            }
        }
        tx.commit().await.map_err(unavailable)
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
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::DocumentStore;

    #[tokio::test]
    async fn sqlite_store_meets_the_contract() {
        let dir = std::env::temp_dir().join(format!("chaos-rm-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = super::SqliteStore::open(&dir.join("readmodels.db"))
            .await
            .unwrap();
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
                body: serde_json::json!({}),
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
