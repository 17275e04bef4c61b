//! An order-independent digest of a warehouse's content: equal for two warehouses holding the
//! same events (and written with the same content catalogue), whatever feed, batch boundaries or
//! arrival order built them. Used to prove a rebuild equals the live warehouse before switching.
//!
//! Per table: the row count and the sum (as a 128-bit integer, so nothing wraps) of DuckDB's
//! `hash()` of every row's columns. A sum, unlike a XOR, still tells a row stored twice from a
//! row stored once. Views are derived and left out, as are the operational tables (where each
//! feed stands differs between warehouses fed differently). The hash is DuckDB's own: compare
//! checksums made by the same DuckDB version (the one this crate links).

use duckdb::Connection;
use uuid::Uuid;

use super::schema::{self, Kind};
use super::Result;

/// See the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    /// `(table, rows, sum of row hashes)` per stored analyst table, in catalogue order.
    pub tables: Vec<TableDigest>,
    /// All of `tables` in one value (a UUIDv5 of their text), for printing and comparing.
    pub digest: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDigest {
    pub table: &'static str,
    pub rows: u64,
    pub hash_sum: String,
}

/// Namespace of the combined digest: do not change (printed digests are compared over time).
const DIGEST_NAMESPACE: Uuid = Uuid::from_u128(0x6368_616f_735f_7761_7265_686f_7573_6531);

/// Computes the checksum on `conn` in one read transaction (a consistent snapshot).
pub(crate) fn compute(conn: &Connection) -> Result<Checksum> {
    conn.execute_batch("BEGIN TRANSACTION")?;
    let result = tables(conn);
    // A read-only transaction: ending it cannot lose anything.
    let _ = conn.execute_batch("ROLLBACK");
    let tables = result?;
    let text: String = tables
        .iter()
        .map(|t| format!("{}:{}:{};", t.table, t.rows, t.hash_sum))
        .collect();
    Ok(Checksum {
        digest: Uuid::new_v5(&DIGEST_NAMESPACE, text.as_bytes()).to_string(),
        tables,
    })
}

fn tables(conn: &Connection) -> Result<Vec<TableDigest>> {
    let mut out = Vec::new();
    for table in schema::CATALOGUE {
        if table.view || table.kind == Kind::Operational {
            continue;
        }
        let columns = columns(conn, table.name)?;
        let (rows, hash_sum): (i64, String) = conn.query_row(
            &format!(
                "SELECT count(*), coalesce(sum(hash({})::HUGEINT), 0)::VARCHAR FROM {}",
                columns.join(", "),
                table.name
            ),
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        out.push(TableDigest {
            table: table.name,
            rows: u64::try_from(rows).unwrap_or(0),
            hash_sum,
        });
    }
    Ok(out)
}

/// The table's columns, quoted, in their declared order.
fn columns(conn: &Connection, table: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare(
        "SELECT column_name FROM duckdb_columns()
         WHERE database_name = current_database() AND schema_name = 'main' AND table_name = ?
         ORDER BY column_index",
    )?;
    let names = stmt
        .query_map([table], |r| r.get::<_, String>(0))?
        .collect::<duckdb::Result<Vec<_>>>()?;
    Ok(names
        .into_iter()
        .map(|n| format!("\"{}\"", n.replace('"', "\"\"")))
        .collect())
}
