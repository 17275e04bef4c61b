//! The blocking side: one DuckDB connection, used by one thread (see [`super::sink`]).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use duckdb::types::Value;
use duckdb::{appender_params_from_iter, params, Connection, Transaction};
use uuid::Uuid;

use super::rows::{self, EventRows};
use super::{schema, Error, Result};
use crate::runner::{FeedOffset, Verdict};

/// Rows of a table, as counted by [`Writer::counts`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCount {
    pub table: &'static str,
    pub rows: u64,
}

/// One Parquet file written by an export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedTable {
    pub table: &'static str,
    pub path: PathBuf,
    pub rows: u64,
}

#[derive(Debug)]
pub(crate) struct Writer {
    conn: Connection,
}

impl Writer {
    /// Opens (creating if needed) the database file at `path`, or an in-memory database for
    /// `:memory:`, and creates the tables that are missing.
    pub(crate) fn open(path: &Path) -> Result<Self> {
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
        conn.execute_batch(schema::DDL)?;
        Ok(Self { conn })
    }

    pub(crate) fn ping(&self) -> Result<()> {
        self.conn.query_row("SELECT 1", [], |_| Ok(()))?;
        Ok(())
    }

    /// Writes a batch and the feed's checkpoint in one transaction; see
    /// [`crate::warehouse::Warehouse::apply_batch`].
    pub(crate) fn apply(
        &mut self,
        batch: Vec<Result<EventRows, String>>,
        checkpoint: &[FeedOffset],
        now: DateTime<Utc>,
    ) -> Result<Vec<Verdict>> {
        let mut verdicts: Vec<Option<Verdict>> = vec![None; batch.len()];
        // Duplicates and conflicts within the batch are settled here: one INSERT statement
        // must not carry the same key twice.
        let mut ids: HashSet<Uuid> = HashSet::new();
        let mut streams: HashSet<(String, String, u64)> = HashSet::new();
        let mut candidates: Vec<(usize, EventRows)> = Vec::new();
        for (i, rows) in batch.into_iter().enumerate() {
            let rows = match rows {
                Ok(rows) => rows,
                Err(reason) => {
                    verdicts[i] = Some(Verdict::DeadLetter(reason));
                    continue;
                }
            };
            if !ids.insert(rows.event_id) {
                verdicts[i] = Some(Verdict::Duplicate);
            } else if !streams.insert(rows.stream_key.clone()) {
                verdicts[i] = Some(Verdict::DeadLetter(conflict(&rows)));
            } else {
                candidates.push((i, rows));
            }
        }

        let tx = self.conn.transaction()?;
        let inserted = insert_events(&tx, &candidates)?;
        let mut typed: HashMap<&'static str, Vec<Vec<Value>>> = HashMap::new();
        let mut already = tx.prepare("SELECT count(*) FROM events WHERE event_id = ?")?;
        for (i, rows) in candidates {
            if inserted.contains(&rows.event_id) {
                if let Some((table, row)) = rows.typed {
                    typed.entry(table).or_default().push(row);
                }
                verdicts[i] = Some(Verdict::Applied);
            } else {
                // Not inserted: either this very event is already stored (a replay), or another
                // event holds its (aggregate, sequence), which only a corrupt feed produces.
                let present: i64 =
                    already.query_row([rows.event_id.to_string()], |row| row.get(0))?;
                verdicts[i] = Some(if present > 0 {
                    Verdict::Duplicate
                } else {
                    Verdict::DeadLetter(conflict(&rows))
                });
            }
        }
        drop(already);
        for (table, rows) in typed {
            append(&tx, table, None, &rows)?;
        }
        store_offsets(&tx, checkpoint, now)?;
        tx.commit()?;
        Ok(verdicts
            .into_iter()
            .map(|v| v.unwrap_or_else(|| Verdict::DeadLetter("no verdict".into())))
            .collect())
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

    pub(crate) fn counts(&self) -> Result<Vec<TableCount>> {
        schema::TABLES
            .iter()
            .map(|table| {
                let rows: i64 =
                    self.conn
                        .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?;
                Ok(TableCount {
                    table,
                    rows: u64::try_from(rows).unwrap_or(0),
                })
            })
            .collect()
    }

    pub(crate) fn transaction(&mut self) -> duckdb::Result<Transaction<'_>> {
        self.conn.transaction()
    }

    /// For tests and ad-hoc reads on the writer thread.
    pub(crate) fn connection(&self) -> &Connection {
        &self.conn
    }
}

fn conflict(rows: &EventRows) -> String {
    let (aggregate_type, aggregate_id, sequence) = &rows.stream_key;
    format!(
        "event {} conflicts with another event at {aggregate_type} {aggregate_id} sequence {sequence}",
        rows.event_id
    )
}

/// Appends the candidates' `events` rows to the staging table and moves those not yet stored
/// into `events`; returns the ids actually inserted.
fn insert_events(tx: &Transaction<'_>, candidates: &[(usize, EventRows)]) -> Result<HashSet<Uuid>> {
    tx.execute_batch(&format!("DELETE FROM {}", schema::STAGED_EVENTS))?;
    if candidates.is_empty() {
        return Ok(HashSet::new());
    }
    let rows: Vec<&Vec<Value>> = candidates.iter().map(|(_, r)| &r.event).collect();
    append(tx, schema::STAGED_EVENTS, Some("temp"), &rows)?;
    let mut stmt = tx.prepare(&format!(
        "INSERT INTO events SELECT * FROM {} ON CONFLICT DO NOTHING RETURNING event_id::VARCHAR",
        schema::STAGED_EVENTS
    ))?;
    let ids = stmt
        .query_map([], |row| row.get::<_, String>(0))?
        .collect::<duckdb::Result<Vec<_>>>()?;
    ids.iter()
        .map(|id| Uuid::parse_str(id).map_err(|e| Error::Corrupt(format!("event id {id:?}: {e}"))))
        .collect()
}

/// Bulk-appends rows (in column order) to `table` of the database file, or of `catalog`
/// (`temp`), inside the transaction.
fn append<R: AsRef<[Value]>>(
    tx: &Transaction<'_>,
    table: &str,
    catalog: Option<&str>,
    rows: &[R],
) -> Result<()> {
    let mut appender = match catalog {
        Some(catalog) => tx.appender_to_catalog_and_db(table, catalog, "main")?,
        None => tx.appender(table)?,
    };
    for row in rows {
        appender.append_row(appender_params_from_iter(row.as_ref().iter()))?;
    }
    // Explicitly: a flush on drop would swallow a constraint error.
    appender.flush()?;
    Ok(())
}

fn store_offsets(
    tx: &Transaction<'_>,
    checkpoint: &[FeedOffset],
    now: DateTime<Utc>,
) -> Result<()> {
    if checkpoint.is_empty() {
        return Ok(());
    }
    // Never moves backwards: a replay of older messages leaves the high-water mark alone.
    let mut stmt = tx.prepare(
        r#"INSERT INTO feed_offsets (feed, "partition", next_offset, updated_at)
           VALUES (?, ?, ?, ?)
           ON CONFLICT (feed, "partition") DO UPDATE SET
               next_offset = greatest(feed_offsets.next_offset, excluded.next_offset),
               updated_at = excluded.updated_at"#,
    )?;
    for offset in checkpoint {
        stmt.execute(params![
            offset.feed,
            offset.partition,
            offset.next_offset,
            rows::timestamp(now)
        ])?;
    }
    Ok(())
}
