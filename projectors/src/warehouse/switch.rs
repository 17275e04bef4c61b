//! Switching a warehouse to a rebuilt file, with the live process running.
//!
//! The live warehouse (the `projector warehouse` process or the embedded backend) holds its
//! DuckDB file's lock, so no other process may touch the file. The operators' tool therefore
//! *asks*: it writes `<live>.switch` naming the rebuilt file (closed, beside the live one), and
//! the live process's writer thread, which looks for that file between batches and every
//! [`POLL`] when idle, performs the switch and answers in `<live>.switch.done`. When no process
//! holds the live file, the tool does the same steps itself ([`switch`] decides).
//!
//! The steps, on the thread that owns the live file, between two batches:
//! 1. Merge: every event the live file holds and the rebuilt one lacks (by event id) is copied
//!    into the rebuilt file with its modelled rows; the live feed's offsets are merged in
//!    (each offset the greater of the two). Both files are prefixes of the same history, so
//!    their union holds every event up to the further of the two positions.
//! 2. Close the live file; rename the rebuilt file over it (one `rename(2)`: a reader opening the
//!    path gets the old file or the new one, never a mix); reopen the path.
//! 3. Go on feeding from the live feed's position. What the rebuilt file already holds beyond it
//!    comes again and is refused as `Duplicate` by event id; nothing before it is missing (step
//!    1). So no event is lost or doubled across the switch.
//!
//! A crash anywhere is safe: before the rename the live file is untouched and the request is
//! still there (the merge is redone, idempotently, at the next start); after it the rebuilt file
//! carries the request's id (`warehouse_meta.switched_by`), so the restarted process recognises
//! the request as done and acknowledges it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use duckdb::Connection;
use serde::{Deserialize, Serialize};

use super::schema;
use super::writer::Writer;
use super::{Error, Result};

/// How often an idle live warehouse looks for a switch request.
pub const POLL: Duration = Duration::from_millis(250);

/// A request to switch the live warehouse to `rebuilt` (an absolute path).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchRequest {
    pub id: String,
    pub rebuilt: PathBuf,
}

/// The answer to a [`SwitchRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchAck {
    /// The request's id.
    pub id: String,
    /// `None`: switched. Otherwise why not (the live file is then unchanged).
    pub error: Option<String>,
    /// Events the live file held that the rebuilt one lacked, copied over before the switch.
    pub merged_events: u64,
    /// `live` (the process holding the file did it) or `offline` (no process held it).
    pub by: String,
}

impl SwitchAck {
    pub fn is_ok(&self) -> bool {
        self.error.is_none()
    }
}

/// `<live>.switch`: where a switch request is written.
pub fn request_path(live: &Path) -> PathBuf {
    suffixed(live, ".switch")
}

/// `<live>.switch.done`: where the live process acknowledges it.
pub fn ack_path(live: &Path) -> PathBuf {
    suffixed(live, ".switch.done")
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Switches the warehouse at `live` to the closed, rebuilt file `rebuilt` (same directory):
/// through the process holding `live` if there is one (waiting up to `timeout` for its answer),
/// else directly. `Err` if the switch could not be done or not confirmed in time (a request not
/// answered in time stays in place: the live process carries it out when it next looks).
pub async fn switch(live: &Path, rebuilt: &Path, timeout: Duration) -> Result<SwitchAck> {
    let rebuilt = std::fs::canonicalize(rebuilt).map_err(io(rebuilt))?;
    let live = absolute(live)?;
    let request = SwitchRequest {
        id: uuid::Uuid::new_v4().to_string(),
        rebuilt,
    };
    if super::sink::held_here(&live) {
        // This very process holds it (DuckDB would not refuse a second open here).
        return answered(ask_live(&live, &request, timeout).await?);
    }
    let offline = {
        let (live, request) = (live.clone(), request.clone());
        tokio::task::spawn_blocking(move || switch_offline(&live, &request))
            .await
            .map_err(|_| Error::Closed)?
    };
    let ack = match offline {
        Ok(Some(ack)) => ack,
        Ok(None) => ask_live(&live, &request, timeout).await?,
        Err(e) => return Err(e),
    };
    answered(ack)
}

fn answered(ack: SwitchAck) -> Result<SwitchAck> {
    match &ack.error {
        None => Ok(ack),
        Some(e) => Err(Error::Switch(e.clone())),
    }
}

fn absolute(path: &Path) -> Result<PathBuf> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    let cwd = std::env::current_dir().map_err(io(path))?;
    Ok(cwd.join(path))
}

/// Writes the request and waits for the live process's answer to it.
async fn ask_live(live: &Path, request: &SwitchRequest, timeout: Duration) -> Result<SwitchAck> {
    let ack = ack_path(live);
    match std::fs::remove_file(&ack) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(&ack)(e)),
    }
    let path = request_path(live);
    write_atomically(&path, &serde_json::to_vec(request).unwrap_or_default())?;
    tracing::info!(live = %live.display(), rebuilt = %request.rebuilt.display(), "switch requested");
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(text) = std::fs::read(&ack) {
            if let Ok(answer) = serde_json::from_slice::<SwitchAck>(&text) {
                if answer.id == request.id {
                    return Ok(answer);
                }
            }
        }
        if Instant::now() >= deadline {
            return Err(Error::Switch(format!(
                "the live warehouse did not answer {} within {timeout:?}; the request stays \
                 in place and is carried out when it next looks",
                path.display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Write to a temporary name, then rename: a reader sees the whole file or none.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let partial = suffixed(path, ".partial");
    std::fs::write(&partial, bytes).map_err(io(&partial))?;
    std::fs::rename(&partial, path).map_err(io(path))
}

/// The switch without a live process: `None` when a process holds the live file (ask it).
fn switch_offline(live: &Path, request: &SwitchRequest) -> Result<Option<SwitchAck>> {
    if !request.rebuilt.is_file() {
        return Err(Error::Switch(format!(
            "{} is not a file",
            request.rebuilt.display()
        )));
    }
    let mut merged = 0;
    if live.exists() {
        let conn = match Connection::open(live) {
            Ok(conn) => conn,
            Err(e) if is_lock_conflict(&e) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        merged = merge_into(&conn, &request.rebuilt, &request.id)?;
        conn.close().map_err(|(_, e)| e)?;
    } else {
        mark(&request.rebuilt, &request.id)?;
    }
    replace(live, &request.rebuilt)?;
    tracing::info!(live = %live.display(), merged, "warehouse switched (no live process)");
    Ok(Some(SwitchAck {
        id: request.id.clone(),
        error: None,
        merged_events: merged,
        by: "offline".into(),
    }))
}

/// DuckDB refuses to open a file another process holds with this error.
fn is_lock_conflict(e: &duckdb::Error) -> bool {
    let text = e.to_string();
    text.contains("Could not set lock") || text.contains("Conflicting lock")
}

/// Records the request id in the rebuilt file (see the module documentation: crash recovery).
fn mark(rebuilt: &Path, id: &str) -> Result<()> {
    let conn = Connection::open(rebuilt)?;
    conn.execute(
        "INSERT OR REPLACE INTO warehouse_meta VALUES ('switched_by', ?)",
        [id],
    )?;
    conn.close().map_err(|(_, e)| e)?;
    Ok(())
}

/// Step 1: copies into `rebuilt` what `live` (the connection's database) holds and it lacks, in
/// one transaction on both, marks `rebuilt` with the request id and checkpoints it (so it has
/// no WAL to carry along when renamed). Returns the number of events copied.
pub(crate) fn merge_into(live: &Connection, rebuilt: &Path, id: &str) -> Result<u64> {
    let path = rebuilt
        .to_str()
        .ok_or_else(|| Error::Path(rebuilt.to_path_buf()))?
        .replace('\'', "''");
    live.execute_batch(&format!("ATTACH '{path}' AS rebuilt"))?;
    let merged = copy_missing(live, id);
    let detached = live
        .execute_batch("CHECKPOINT rebuilt; DETACH rebuilt")
        .map_err(Error::from);
    let merged = merged?;
    detached?;
    Ok(merged)
}

fn copy_missing(live: &Connection, id: &str) -> Result<u64> {
    live.execute_batch("BEGIN TRANSACTION")?;
    let copied = (|| -> Result<u64> {
        live.execute_batch(
            "CREATE OR REPLACE TEMP TABLE switch_missing AS
             SELECT l.event_id FROM main.events l
             WHERE NOT EXISTS (SELECT 1 FROM rebuilt.events r WHERE r.event_id = l.event_id)",
        )?;
        let missing: i64 =
            live.query_row("SELECT count(*) FROM temp.switch_missing", [], |r| r.get(0))?;
        for table in schema::event_tables() {
            live.execute_batch(&format!(
                "INSERT INTO rebuilt.{t} BY NAME SELECT * FROM main.{t}
                 WHERE event_id IN (SELECT event_id FROM temp.switch_missing)",
                t = table.name
            ))?;
        }
        live.execute_batch(
            r#"INSERT INTO rebuilt.feed_offsets SELECT * FROM main.feed_offsets
               ON CONFLICT (feed, "partition") DO UPDATE SET
                   next_offset = greatest(feed_offsets.next_offset, excluded.next_offset),
                   updated_at = excluded.updated_at;
               INSERT INTO rebuilt.store_positions SELECT * FROM main.store_positions
               ON CONFLICT (feed) DO UPDATE SET
                   tx_id = excluded.tx_id, global_position = excluded.global_position,
                   updated_at = excluded.updated_at
               WHERE excluded.tx_id > store_positions.tx_id
                  OR (excluded.tx_id = store_positions.tx_id
                      AND excluded.global_position > store_positions.global_position);
               DROP TABLE temp.switch_missing;"#,
        )?;
        live.execute(
            "INSERT OR REPLACE INTO rebuilt.warehouse_meta VALUES ('switched_by', ?)",
            [id],
        )?;
        Ok(u64::try_from(missing).unwrap_or(0))
    })();
    match copied {
        Ok(n) => {
            live.execute_batch("COMMIT")?;
            Ok(n)
        }
        Err(e) => {
            let _ = live.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// Step 2's rename, with both files closed: the live file's WAL (if a close left one) belongs
/// to the replaced file and must not be replayed against the new one.
fn replace(live: &Path, rebuilt: &Path) -> Result<()> {
    let rebuilt_wal = suffixed(rebuilt, ".wal");
    if rebuilt_wal.exists() {
        return Err(Error::Switch(format!(
            "{} has a write-ahead log: open and close it once (a checkpoint) first",
            rebuilt.display()
        )));
    }
    let wal = suffixed(live, ".wal");
    match std::fs::remove_file(&wal) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(&wal)(e)),
    }
    std::fs::rename(rebuilt, live).map_err(io(live))
}

/// The live side: carries out a pending request, if any, on the thread owning `writer`, and
/// answers it. Called between batches and when idle.
pub(crate) fn serve_request(writer: &mut Writer) {
    let live = writer.path().to_path_buf();
    let path = request_path(&live);
    let Ok(text) = std::fs::read(&path) else {
        return;
    };
    let ack = match serde_json::from_slice::<SwitchRequest>(&text) {
        Err(e) => SwitchAck {
            id: String::new(),
            error: Some(format!("unreadable switch request: {e}")),
            merged_events: 0,
            by: "live".into(),
        },
        Ok(request) => {
            let done_before = !request.rebuilt.exists()
                && writer.meta("switched_by").ok().flatten().as_deref() == Some(&request.id);
            let outcome = if done_before {
                Ok(0)
            } else {
                switch_live(writer, &request)
            };
            match outcome {
                Ok(merged) => {
                    tracing::info!(
                        live = %live.display(),
                        rebuilt = %request.rebuilt.display(),
                        merged,
                        "warehouse switched to the rebuilt file"
                    );
                    SwitchAck {
                        id: request.id,
                        error: None,
                        merged_events: merged,
                        by: "live".into(),
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, rebuilt = %request.rebuilt.display(), "warehouse switch failed; still on the live file");
                    SwitchAck {
                        id: request.id,
                        error: Some(e.to_string()),
                        merged_events: 0,
                        by: "live".into(),
                    }
                }
            }
        }
    };
    let answered = serde_json::to_vec(&ack)
        .map_err(|e| Error::Corrupt(e.to_string()))
        .and_then(|bytes| write_atomically(&ack_path(&live), &bytes));
    if let Err(e) = answered {
        tracing::error!(error = %e, "could not answer the switch request");
        return;
    }
    let _ = std::fs::remove_file(&path);
}

fn switch_live(writer: &mut Writer, request: &SwitchRequest) -> Result<u64> {
    if !request.rebuilt.is_file() {
        return Err(Error::Switch(format!(
            "{} is not a file",
            request.rebuilt.display()
        )));
    }
    let merged = merge_into(writer.connection(), &request.rebuilt, &request.id)?;
    let live = writer.path().to_path_buf();
    let rebuilt = request.rebuilt.clone();
    writer.replace_file(|| replace(&live, &rebuilt))?;
    Ok(merged)
}
