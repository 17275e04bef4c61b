//! Parquet files for analysts and other engines, hive-partitioned by day:
//!
//! ```text
//! <dir>/<table>/day=YYYY-MM-DD/data_0.parquet   facts (and the sessions view), by the UTC day
//!                                               of the table's time column
//! <dir>/<table>/data.parquet                    dimensions, content and feed offsets, whole
//! ```
//!
//! Atomic per table: a table is written into a new hidden directory `<dir>/.<table>.<export>`,
//! then `<dir>/<table>` (a symbolic link) is pointed at it with one `rename(2)`, so a reader
//! sees the previous export or the new one, never a mix or a gap. The previous export's
//! directory is kept until the next export (a reader may be in the middle of it); older ones are
//! removed. Every table comes from one snapshot (one read transaction), so the files agree.
//! An empty fact table gets one empty `data.parquet`, so readers still find its schema.

use std::path::{Path, PathBuf};

use duckdb::Connection;

use super::schema::{self, Kind, Table};
use super::{Error, Result};

/// What one export wrote for one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedTable {
    pub table: &'static str,
    /// `<dir>/<table>`: the directory readers open.
    pub path: PathBuf,
    pub rows: u64,
    /// Day partitions written (0 for a table exported whole).
    pub days: u64,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes every table and view of [`schema::CATALOGUE`] to `dir` (see the module docs).
pub(crate) fn write(conn: &Connection, dir: &Path) -> Result<Vec<ExportedTable>> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    // Unique and increasing: a later export's directories sort after an earlier one's.
    let export = format!(
        "{:013}-{}",
        chrono::Utc::now().timestamp_millis(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    conn.execute_batch("BEGIN TRANSACTION")?;
    let written: Result<Vec<(ExportedTable, PathBuf)>> = schema::CATALOGUE
        .iter()
        .map(|table| write_table(conn, dir, table, &export))
        .collect();
    // A read transaction: ending it cannot lose anything.
    let _ = conn.execute_batch("ROLLBACK");
    let written = written?;
    let mut out = Vec::with_capacity(written.len());
    for (table, version) in written {
        publish(dir, table.table, &version)?;
        out.push(table);
    }
    Ok(out)
}

fn write_table(
    conn: &Connection,
    dir: &Path,
    table: &Table,
    export: &str,
) -> Result<(ExportedTable, PathBuf)> {
    let version = dir.join(format!(".{}.{export}", table.name));
    std::fs::create_dir_all(&version).map_err(io(&version))?;
    let (rows, days) = match table.kind {
        Kind::Fact { time } => {
            let rows = conn.execute(
                &format!(
                    "COPY (SELECT *, strftime({time}, '%Y-%m-%d') AS day FROM {name}
                           ORDER BY {order}) TO '{to}' (FORMAT PARQUET, PARTITION_BY (day))",
                    name = table.name,
                    order = table.order_by,
                    to = sql_string(&version)?
                ),
                [],
            )?;
            if rows == 0 {
                // No partitions: one empty file so readers still learn the columns.
                copy_whole(conn, table, &version.join("data.parquet"))?;
            }
            let days = std::fs::read_dir(&version)
                .map_err(io(&version))?
                .filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with("day="))
                .count();
            (rows, days as u64)
        }
        Kind::Dimension | Kind::Content | Kind::Operational => {
            (copy_whole(conn, table, &version.join("data.parquet"))?, 0)
        }
    };
    Ok((
        ExportedTable {
            table: table.name,
            path: dir.join(table.name),
            rows: rows as u64,
            days,
        },
        version,
    ))
}

fn copy_whole(conn: &Connection, table: &Table, file: &Path) -> Result<usize> {
    Ok(conn.execute(
        &format!(
            "COPY (SELECT * FROM {} ORDER BY {}) TO '{}' (FORMAT PARQUET)",
            table.name,
            table.order_by,
            sql_string(file)?
        ),
        [],
    )?)
}

/// Points `<dir>/<table>` at `version` (atomically), then removes the versions older than the
/// one it pointed at before.
fn publish(dir: &Path, table: &str, version: &Path) -> Result<()> {
    let link = dir.join(table);
    let target = version
        .file_name()
        .map(PathBuf::from)
        .ok_or_else(|| Error::Path(version.to_path_buf()))?;
    let previous = std::fs::read_link(&link).ok();
    if previous.is_none() && link.exists() {
        // A real directory or file where the link goes (not ours): set it aside once.
        let aside = dir.join(format!(".{table}.replaced"));
        let _ = std::fs::remove_dir_all(&aside);
        std::fs::rename(&link, &aside).map_err(io(&link))?;
    }
    let staged = dir.join(format!(".{table}.link"));
    let _ = std::fs::remove_file(&staged);
    std::os::unix::fs::symlink(&target, &staged).map_err(io(&staged))?;
    std::fs::rename(&staged, &link).map_err(io(&link))?;
    // The one-file-per-table layout of earlier versions, superseded by the directory.
    let _ = std::fs::remove_file(dir.join(format!("{table}.parquet")));
    // Keep the new version and the one readers may still be in; remove older ones.
    let prefix = format!(".{table}.");
    let keep = [Some(target), previous];
    for entry in std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(|e| e.ok())
    {
        let name = entry.file_name();
        let name_text = name.to_string_lossy();
        let Some(rest) = name_text.strip_prefix(&prefix) else {
            continue;
        };
        // Export versions only (`<13 digit millis>-<id>`), not another table's sharing a prefix.
        let is_version = rest.len() > 14 && rest.as_bytes()[..13].iter().all(u8::is_ascii_digit);
        if is_version && !keep.iter().flatten().any(|k| k.as_os_str() == name) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    Ok(())
}

/// A path as the body of a single-quoted SQL string literal.
fn sql_string(path: &Path) -> Result<String> {
    let text = path
        .to_str()
        .ok_or_else(|| Error::Path(path.to_path_buf()))?;
    Ok(text.replace('\'', "''"))
}
