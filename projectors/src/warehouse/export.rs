//! Parquet files for analysts: one file per table, `<dir>/<table>.parquet`.

use std::path::Path;

use super::writer::{ExportedTable, Writer};
use super::{schema, Error, Result};

/// The order rows are written in: by time, so Parquet's per-row-group min/max statistics let
/// readers skip most of a file when filtering on a time range.
fn order_by(table: &str) -> &'static str {
    match table {
        schema::EVENTS => "global_position",
        schema::CHARACTERS => "created_at, character_id",
        schema::SKILL_CASTS => "cast_at, event_id",
        schema::EXPERIENCE_GAINS => "gained_at, event_id",
        schema::LEVEL_UPS => "leveled_at, event_id",
        schema::ZONE_ENTRIES => "entered_at, event_id",
        _ => "ALL",
    }
}

impl Writer {
    /// Writes every table of [`schema::TABLES`] to `dir`, all from one snapshot, so the files
    /// agree with each other. Each file is written under a temporary name and renamed into
    /// place, so a reader never sees a half-written file.
    pub(crate) fn export_parquet(&mut self, dir: &Path) -> Result<Vec<ExportedTable>> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut written = Vec::with_capacity(schema::TABLES.len());
        let tx = self.transaction()?;
        for table in schema::TABLES {
            let path = dir.join(format!("{table}.parquet"));
            let partial = dir.join(format!(".{table}.parquet.partial"));
            let rows = tx.execute(
                &format!(
                    "COPY (SELECT * FROM {table} ORDER BY {}) TO '{}' (FORMAT PARQUET)",
                    order_by(table),
                    sql_string(&partial)?
                ),
                [],
            )?;
            written.push((table, partial, path, rows));
        }
        tx.commit()?;
        written
            .into_iter()
            .map(|(table, partial, path, rows)| {
                std::fs::rename(&partial, &path).map_err(|source| Error::Io {
                    path: path.clone(),
                    source,
                })?;
                Ok(ExportedTable {
                    table,
                    path,
                    rows: rows as u64,
                })
            })
            .collect()
    }
}

/// A path as the body of a single-quoted SQL string literal.
fn sql_string(path: &Path) -> Result<String> {
    let text = path
        .to_str()
        .ok_or_else(|| Error::Path(path.to_path_buf()))?;
    Ok(text.replace('\'', "''"))
}
