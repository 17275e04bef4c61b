//! The blocking side: one DuckDB connection, used by one thread (see [`super::sink`]).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chaos_domain::Content;
use chaos_eventstore::Position;
use chrono::{DateTime, Utc};
use duckdb::arrow::record_batch::RecordBatch;
use duckdb::{params, Connection};
use uuid::Uuid;

use super::rows::MappedBatch;
use super::{content, schema, views, Error, Result};
use crate::runner::{FeedOffset, Verdict};

/// The WAL a live warehouse gathers before a checkpoint. A checkpoint writes every unique
/// index of `events` in full (DuckDB's ART indexes are serialized whole), so its cost grows
/// with the table: at DuckDB's default 16 MB a growing warehouse spent most of its time
/// checkpointing (measured on a 300,000-event rebuild: 65-570 ms of each 20,000-event batch,
/// rising with the table). The price of a larger WAL is a longer replay when the file is opened
/// after a crash.
pub(crate) const LIVE_CHECKPOINT_THRESHOLD: &str = "256MB";

/// A rebuild target's: it is written as fast as it can be read, and checkpointed once, when
/// it is switched in.
pub(crate) const REBUILD_CHECKPOINT_THRESHOLD: &str = "1GB";

/// Rows of a table, as counted by `Writer::counts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCount {
    pub table: &'static str,
    pub rows: u64,
}

#[derive(Debug)]
pub(crate) struct Writer {
    conn: Connection,
    path: PathBuf,
    content: Arc<Content>,
    /// A store rebuild's: how many events a transaction carries (see
    /// [`Writer::set_store_rebuild`]).
    commit_every: Option<u64>,
    /// The events written in the transaction a store rebuild holds open, if one is open.
    open_tx: Option<u64>,
}

impl Writer {
    /// Opens (creating if needed) the database file at `path`, or an in-memory database for
    /// `:memory:`, creates what is missing and writes `content` into the dimensions.
    pub(crate) fn open(path: &Path, content: Arc<Content>) -> Result<Self> {
        let conn = if path.as_os_str() == ":memory:" {
            Connection::open_in_memory()?
        } else {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|source| Error::Io {
                    path: parent.to_path_buf(),
                    source,
                })?;
            }
            Connection::open(path)?
        };
        let mut writer = Self {
            conn,
            path: path.to_path_buf(),
            content,
            commit_every: None,
            open_tx: None,
        };
        writer.prepare()?;
        Ok(writer)
    }

    /// Tables, migrations, views, the per-connection staging table, the model version and the
    /// content dimensions.
    fn prepare(&mut self) -> Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute_batch(schema::DDL)?;
        ensure_keys(&tx)?;
        tx.execute_batch(schema::MIGRATIONS)?;
        tx.execute_batch(&views::ddl())?;
        let events: i64 = tx.query_row("SELECT count(*) FROM events", [], |r| r.get(0))?;
        // A file without a model version predates them: model 1.
        let made_by = if events == 0 {
            schema::MODEL_VERSION
        } else {
            1
        };
        tx.execute(
            "INSERT INTO warehouse_meta VALUES ('model_version', ?) ON CONFLICT DO NOTHING",
            [made_by.to_string()],
        )?;
        content::upsert(&tx, &self.content)?;
        tx.commit()?;
        self.conn.execute_batch(schema::STAGING)?;
        self.set_checkpoint_threshold(LIVE_CHECKPOINT_THRESHOLD)?;
        let model = self.model_version()?;
        if model < schema::MODEL_VERSION {
            tracing::warn!(
                path = %self.path.display(),
                file_model = model,
                model = schema::MODEL_VERSION,
                "the warehouse was built by an older model: its older events lack the newer \
                 tables' rows until it is rebuilt (chaosctl rebuild warehouse)"
            );
        }
        Ok(())
    }

    /// How much WAL DuckDB gathers before it checkpoints (`SET checkpoint_threshold`; for
    /// this database, not kept in the file). See [`LIVE_CHECKPOINT_THRESHOLD`].
    pub(crate) fn set_checkpoint_threshold(&self, threshold: &str) -> Result<()> {
        self.conn
            .execute_batch(&format!("SET checkpoint_threshold = '{threshold}'"))?;
        Ok(())
    }

    /// Writes batches as the target of a rebuild from the event store, whose feed brings each
    /// event once, in order, and saves its position through this connection after each batch
    /// (`Warehouse::store_checkpoint`):
    /// - `events` has no keys while it is written ([`schema::DROP_EVENTS_KEYS`]): a key is
    ///   built once over the whole column by [`Self::seal`] instead of being updated row by row
    ///   (a third of the writing);
    /// - one transaction carries `commit_every` events (a batch is never split), the feed's
    ///   saved position among them. DuckDB writes a table's rows straight to the file's blocks
    ///   when a transaction brings a row group's worth (122,880 rows) rather than through the
    ///   write-ahead log and again at the checkpoint; with 20,000-event transactions most of
    ///   the modelled tables never got there. A kill loses the open transaction whole, rows and
    ///   position alike: the rebuild resumes from the last committed position, and no event is
    ///   written twice, which is what makes the missing keys safe.
    pub(crate) fn set_store_rebuild(&mut self, commit_every: u64) -> Result<()> {
        self.commit_pending()?;
        self.conn.execute_batch(schema::DROP_EVENTS_KEYS)?;
        self.commit_every = Some(commit_every.max(1));
        Ok(())
    }

    /// Commits the transaction a store rebuild holds open, if any.
    pub(crate) fn commit_pending(&mut self) -> Result<()> {
        if self.open_tx.take().is_some() {
            self.conn.execute_batch("COMMIT")?;
        }
        Ok(())
    }

    /// Ends the writing of a rebuild: commits, builds the keys of `events` if they are missing
    /// (checking them: an event stored twice fails it) and checkpoints, so the file is whole
    /// without its write-ahead log.
    pub(crate) fn seal(&mut self) -> Result<()> {
        self.commit_pending()?;
        self.commit_every = None;
        ensure_keys(&self.conn)?;
        self.conn.execute_batch("CHECKPOINT")?;
        Ok(())
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The model version the file's rows were made by.
    pub(crate) fn model_version(&self) -> Result<i64> {
        Ok(self
            .meta("model_version")?
            .and_then(|v| v.parse().ok())
            .unwrap_or(1))
    }

    pub(crate) fn meta(&self, key: &str) -> Result<Option<String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT value FROM warehouse_meta WHERE key = ?")?;
        let mut rows = stmt.query([key])?;
        Ok(match rows.next()? {
            Some(row) => Some(row.get(0)?),
            None => None,
        })
    }

    /// The value of `key`, set to `value` first if it has none.
    pub(crate) fn meta_or_insert(&self, key: &str, value: &str) -> Result<String> {
        self.conn.execute(
            "INSERT INTO warehouse_meta VALUES (?, ?) ON CONFLICT DO NOTHING",
            [key, value],
        )?;
        Ok(self.meta(key)?.unwrap_or_else(|| value.to_owned()))
    }

    pub(crate) fn ping(&self) -> Result<()> {
        self.conn.query_row("SELECT 1", [], |_| Ok(()))?;
        Ok(())
    }

    /// Writes a batch and the feed's checkpoint in one transaction; see
    /// [`crate::warehouse::Warehouse::apply_batch`].
    pub(crate) fn apply(
        &mut self,
        batch: MappedBatch,
        checkpoint: &[FeedOffset],
        now: DateTime<Utc>,
    ) -> Result<Vec<Verdict>> {
        if let Some(broken) = &batch.broken {
            return Err(Error::Corrupt(broken.clone()));
        }
        let mut verdicts: Vec<Option<Verdict>> = vec![None; batch.keys.len()];
        // Duplicates within the batch are settled here: one INSERT statement must not carry
        // the same key twice.
        let mut ids: HashSet<Uuid> = HashSet::with_capacity(batch.keys.len());
        let mut candidates: Vec<usize> = Vec::with_capacity(batch.keys.len());
        for (i, key) in batch.keys.iter().enumerate() {
            let key = match key {
                Ok(key) => key,
                Err(reason) => {
                    verdicts[i] = Some(Verdict::DeadLetter(reason.clone()));
                    continue;
                }
            };
            if !ids.insert(key.event_id) {
                verdicts[i] = Some(Verdict::Duplicate);
            } else {
                candidates.push(i);
            }
        }

        let outcome = match self.commit_every {
            Some(every) => {
                self.write_in_open_transaction(&batch, &candidates, checkpoint, now, every)?
            }
            None => self.write_in_own_transaction(&batch, &candidates, checkpoint, now)?,
        };
        for (i, verdict) in outcome {
            verdicts[i] = Some(verdict);
        }
        Ok(verdicts
            .into_iter()
            .map(|v| v.unwrap_or_else(|| Verdict::DeadLetter("no verdict".into())))
            .collect())
    }

    /// A batch in a transaction of its own, committed before this returns.
    fn write_in_own_transaction(
        &mut self,
        batch: &MappedBatch,
        candidates: &[usize],
        checkpoint: &[FeedOffset],
        now: DateTime<Utc>,
    ) -> Result<Vec<(usize, Verdict)>> {
        // `events` rows are appended straight to the table, no conflict check: a feed commits
        // each batch with its offsets, so nearly every batch is new, and the table's key
        // refuses one that is not (the batch after the last saved position after a crash, a
        // redelivery after a rebalance, an event the relay published again) (decision 30).
        // The transaction then rolls back, nothing of it stays, and the batch is staged and
        // inserted skipping the ids already stored. The id is the only key (decision 48): the
        // mapping refused every event whose id is not its stream position's.
        for on in [Conflict::None, Conflict::EventId] {
            let tx = self.conn.transaction()?;
            let written = write(&tx, batch, candidates, checkpoint, now, on)
                .and_then(|outcome| Ok(tx.commit().map(|()| outcome)?));
            match written {
                Err(Error::DuckDb(e)) if is_constraint_violation(&e) && on == Conflict::None => {
                    tracing::info!(
                        error = %e,
                        "a batch holds events already stored (a replay); writing it again \
                         skipping them"
                    );
                }
                other => return other,
            }
        }
        // Not reached: `Conflict::EventId` ends the list, and its outcome is returned.
        Err(Error::Corrupt("no way left to write the batch".into()))
    }

    /// A store rebuild's batch (see [`Self::set_store_rebuild`]): into the open transaction,
    /// committed first if it carries `every` events already. A failure rolls the transaction
    /// back whole, the feed's saved position with it.
    fn write_in_open_transaction(
        &mut self,
        batch: &MappedBatch,
        candidates: &[usize],
        checkpoint: &[FeedOffset],
        now: DateTime<Utc>,
        every: u64,
    ) -> Result<Vec<(usize, Verdict)>> {
        if self.open_tx.is_some_and(|written| written >= every) {
            self.commit_pending()?;
        }
        if self.open_tx.is_none() {
            self.conn.execute_batch("BEGIN TRANSACTION")?;
            self.open_tx = Some(0);
        }
        match write(
            &self.conn,
            batch,
            candidates,
            checkpoint,
            now,
            Conflict::None,
        ) {
            Ok(outcome) => {
                if let Some(written) = &mut self.open_tx {
                    *written += candidates.len() as u64;
                }
                Ok(outcome)
            }
            Err(e) => {
                self.open_tx = None;
                if let Err(rollback) = self.conn.execute_batch("ROLLBACK") {
                    tracing::warn!(error = %rollback, "rolling back a store rebuild's transaction");
                }
                tracing::error!(
                    error = %e,
                    "a store rebuild's transaction failed and was rolled back: the rebuild \
                     resumes from the position committed before it"
                );
                Err(e)
            }
        }
    }

    /// The stored positions of `feed`, by partition.
    pub(crate) fn offsets(&self, feed: &str) -> Result<Vec<FeedOffset>> {
        let mut stmt = self.conn.prepare(
            r#"SELECT "partition", next_offset FROM feed_offsets WHERE feed = ? ORDER BY 1"#,
        )?;
        let offsets = stmt
            .query_map([feed], |row| {
                Ok(FeedOffset::new(feed, row.get(0)?, row.get(1)?))
            })?
            .collect::<duckdb::Result<Vec<_>>>()?;
        Ok(offsets)
    }

    /// Where a store feed stands in the event store's global order, `tx_id` included: the
    /// position saved by [`Self::save_store_position`], else the one `feed_offsets` implies
    /// (the embedded store, whose positions have `tx_id` 0), else the start.
    pub(crate) fn store_position(&self, feed: &str) -> Result<Position> {
        let mut stmt = self
            .conn
            .prepare("SELECT tx_id, global_position FROM store_positions WHERE feed = ?")?;
        let mut rows = stmt.query([feed])?;
        if let Some(row) = rows.next()? {
            return Ok(Position {
                tx_id: row.get(0)?,
                global_position: row.get(1)?,
            });
        }
        Ok(self
            .offsets(feed)?
            .first()
            .map_or(Position::START, |o| Position {
                tx_id: 0,
                global_position: o.next_offset - 1,
            }))
    }

    /// Saves a store feed's position; never moves it backwards.
    pub(crate) fn save_store_position(
        &self,
        feed: &str,
        position: Position,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.conn.execute(
            "INSERT INTO store_positions VALUES (?, ?, ?, ?)
             ON CONFLICT (feed) DO UPDATE SET
                 tx_id = excluded.tx_id, global_position = excluded.global_position,
                 updated_at = excluded.updated_at
             WHERE excluded.tx_id > store_positions.tx_id
                OR (excluded.tx_id = store_positions.tx_id
                    AND excluded.global_position > store_positions.global_position)",
            params![
                feed,
                position.tx_id,
                position.global_position,
                sql_timestamp(now)
            ],
        )?;
        Ok(())
    }

    pub(crate) fn counts(&self) -> Result<Vec<TableCount>> {
        schema::CATALOGUE
            .iter()
            .map(|table| {
                let rows: i64 = self.conn.query_row(
                    &format!("SELECT count(*) FROM {}", table.name),
                    [],
                    |r| r.get(0),
                )?;
                Ok(TableCount {
                    table: table.name,
                    rows: u64::try_from(rows).unwrap_or(0),
                })
            })
            .collect()
    }

    /// For tests and ad-hoc reads on the writer thread.
    pub(crate) fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Checkpoints and closes the file, runs `swap` (which renames another file onto this
    /// path), and opens the path again, whichever file it then is. The reopen is retried until
    /// it succeeds: batches wait rather than go to a database that is not the file's.
    pub(crate) fn replace_file(&mut self, swap: impl FnOnce() -> Result<()>) -> Result<()> {
        self.commit_pending()?;
        // Nothing left in the WAL: a connection cloned earlier ([`Connection::try_clone`])
        // keeps the old database open, and must find nothing to write back by path.
        self.conn.execute_batch("FORCE CHECKPOINT")?;
        let old = std::mem::replace(&mut self.conn, Connection::open_in_memory()?);
        if let Err((_, e)) = old.close() {
            tracing::warn!(error = %e, "closing the replaced warehouse file");
        }
        let swapped = swap();
        let mut delay = std::time::Duration::from_millis(100);
        loop {
            match Self::open(&self.path, self.content.clone()) {
                Ok(reopened) => {
                    *self = reopened;
                    return swapped;
                }
                Err(e) => {
                    tracing::error!(
                        error = %e,
                        path = %self.path.display(),
                        "cannot reopen the warehouse after a switch; retrying"
                    );
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(std::time::Duration::from_secs(5));
                }
            }
        }
    }
}

impl Drop for Writer {
    /// A store rebuild's open transaction is committed: closing the warehouse (an interrupted
    /// rebuild) keeps what was written, its position with it.
    fn drop(&mut self) {
        if let Err(e) = self.commit_pending() {
            tracing::error!(error = %e, path = %self.path.display(), "committing on close");
        }
    }
}

/// Creates the key of `events` ([`schema::EVENTS_KEYS`]) unless the file has its keys as
/// constraints of the table (an older file), and drops the key that files made before decision
/// 48 had besides ([`schema::RETIRED_KEYS`]).
fn ensure_keys(conn: &Connection) -> Result<()> {
    conn.execute_batch(schema::RETIRED_KEYS)?;
    let constraints: i64 = conn.query_row(
        "SELECT count(*) FROM duckdb_constraints()
         WHERE database_name = current_database() AND schema_name = 'main'
           AND table_name = 'events' AND constraint_type IN ('PRIMARY KEY', 'UNIQUE')",
        [],
        |r| r.get(0),
    )?;
    if constraints == 0 {
        conn.execute_batch(schema::EVENTS_KEYS)?;
    }
    Ok(())
}

/// Which key an `events` insert skips conflicting rows on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conflict {
    /// None: rows are appended, and a key conflict fails the statement.
    None,
    /// `event_id`: rows already stored are skipped. (An older file's stream-position
    /// constraint never conflicts apart from it: the mapping checked every id is its
    /// position's.)
    EventId,
}

/// A key conflict: "Constraint Error: ..." from a statement, "Failed to append: Duplicate key
/// ... violates ... constraint" from the appender.
fn is_constraint_violation(e: &duckdb::Error) -> bool {
    let message = e.to_string();
    message.contains("Constraint Error") || message.contains("Duplicate key")
}

/// In the caller's transaction: the candidates' `events` rows (`candidates`: indices in the
/// batch), the modelled rows of those that went in, the feed's offsets. Returns each
/// candidate's verdict by its index in the batch.
fn write(
    tx: &Connection,
    batch: &MappedBatch,
    candidates: &[usize],
    checkpoint: &[FeedOffset],
    now: DateTime<Utc>,
    on: Conflict,
) -> Result<Vec<(usize, Verdict)>> {
    let key = |i: usize| batch.keys[i].as_ref().ok();
    let inserted = insert_events(tx, batch, candidates, on)?;
    let mut verdicts = Vec::with_capacity(candidates.len());
    let mut went_in = vec![false; batch.keys.len()];
    for &i in candidates {
        let stored = match &inserted {
            None => true,
            Some(ids) => key(i).is_some_and(|k| ids.contains(&k.event_id)),
        };
        if stored {
            went_in[i] = true;
            verdicts.push((i, Verdict::Applied));
        } else {
            // Not inserted: this very event is already stored (a replay). The id is the one
            // key, and it names the stream position too, so nothing else refuses a row.
            verdicts.push((i, Verdict::Duplicate));
        }
    }
    for table in &batch.modelled {
        if let Some(rows) = table.select(|i| went_in[i]).map_err(Error::Corrupt)? {
            append(tx, table.table, None, rows)?;
        }
    }
    store_offsets(tx, checkpoint, now)?;
    Ok(verdicts)
}

/// Writes the candidates' `events` rows: with [`Conflict::None`] appended to `events` (all go
/// in, or the statement fails: `None` is returned), else staged and moved into `events` unless
/// already stored (the ids actually inserted are returned).
fn insert_events(
    tx: &Connection,
    batch: &MappedBatch,
    candidates: &[usize],
    on: Conflict,
) -> Result<Option<HashSet<Uuid>>> {
    let mut chosen = vec![false; batch.keys.len()];
    for &i in candidates {
        chosen[i] = true;
    }
    let rows = batch.events.select(|i| chosen[i]).map_err(Error::Corrupt)?;
    if on == Conflict::None {
        if let Some(rows) = rows {
            append(tx, schema::EVENTS, None, rows)?;
        }
        return Ok(None);
    }
    tx.prepare_cached(&format!("DELETE FROM {}", schema::STAGED_EVENTS))?
        .execute([])?;
    let Some(rows) = rows else {
        return Ok(Some(HashSet::new()));
    };
    append(tx, schema::STAGED_EVENTS, Some("temp"), rows)?;
    // Naming the conflict target matters: DuckDB 1.5's `ON CONFLICT DO NOTHING` without one
    // checks each row the slow way (seconds per thousand rows once the table holds a few
    // hundred thousand).
    let mut stmt = tx.prepare_cached(&format!(
        "INSERT INTO events SELECT * FROM {} ON CONFLICT (event_id) DO NOTHING \
         RETURNING event_id::VARCHAR",
        schema::STAGED_EVENTS
    ))?;
    let ids = stmt
        .query_map([], |row| row.get::<_, String>(0))?
        .collect::<duckdb::Result<Vec<_>>>()?;
    ids.iter()
        .map(|id| parse_id(id))
        .collect::<Result<_>>()
        .map(Some)
}

fn parse_id(id: &str) -> Result<Uuid> {
    Uuid::parse_str(id).map_err(|e| Error::Corrupt(format!("event id {id:?}: {e}")))
}

/// Bulk-appends rows (Arrow, in column order: [`super::rows::MappedBatch`]) to `table` of the
/// database file, or of `catalog` (`temp`), inside the transaction. DuckDB casts a column to the
/// table's type where they differ (a column of nulls only).
pub(crate) fn append(
    tx: &Connection,
    table: &str,
    catalog: Option<&str>,
    rows: RecordBatch,
) -> Result<()> {
    let mut appender = match catalog {
        Some(catalog) => tx.appender_to_catalog_and_db(table, catalog, "main")?,
        None => tx.appender(table)?,
    };
    appender.append_record_batch(rows)?;
    // Explicitly: a flush on drop would swallow a constraint error.
    appender.flush()?;
    Ok(())
}

/// A statement parameter of type `TIMESTAMP`, at millisecond precision like the rows'.
fn sql_timestamp(t: DateTime<Utc>) -> duckdb::types::Value {
    duckdb::types::Value::Timestamp(duckdb::types::TimeUnit::Millisecond, t.timestamp_millis())
}

fn store_offsets(tx: &Connection, checkpoint: &[FeedOffset], now: DateTime<Utc>) -> Result<()> {
    // One statement for every partition, its plan cached by the number of partitions (it was
    // an upsert per partition, prepared again at every batch).
    let mut highest: BTreeMap<(&str, i32), i64> = BTreeMap::new();
    for offset in checkpoint {
        let next = highest
            .entry((offset.feed.as_str(), offset.partition))
            .or_insert(offset.next_offset);
        *next = (*next).max(offset.next_offset);
    }
    if highest.is_empty() {
        return Ok(());
    }
    let rows = vec!["(?, ?, ?, ?)"; highest.len()].join(", ");
    // Never moves backwards: a replay of older messages leaves the high-water mark alone.
    let mut stmt = tx.prepare_cached(&format!(
        r#"INSERT INTO feed_offsets (feed, "partition", next_offset, updated_at)
           VALUES {rows}
           ON CONFLICT (feed, "partition") DO UPDATE SET
               next_offset = greatest(feed_offsets.next_offset, excluded.next_offset),
               updated_at = excluded.updated_at"#
    ))?;
    let at = sql_timestamp(now);
    let values: Vec<duckdb::types::Value> = highest
        .into_iter()
        .flat_map(|((feed, partition), next)| {
            [
                duckdb::types::Value::Text(feed.to_owned()),
                duckdb::types::Value::Int(partition),
                duckdb::types::Value::BigInt(next),
                at.clone(),
            ]
        })
        .collect();
    stmt.execute(duckdb::params_from_iter(values))?;
    Ok(())
}
