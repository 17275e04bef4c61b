//! A batch's rows as Arrow record batches, one per table, assembled where the batch is mapped:
//! the DuckDB thread, the warehouse's critical path, only appends them (the conversion and the
//! freeing of the rows were about a fifth of its time).

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::Arc;

use duckdb::arrow::array::{
    Array, ArrayRef, BooleanArray, FixedSizeBinaryArray, Int16Array, Int32Array, Int64Array,
    ListBuilder, StringArray, StringBuilder, TimestampMillisecondArray,
};
use duckdb::arrow::compute::filter_record_batch;
use duckdb::arrow::datatypes::{Field, Schema};
use duckdb::arrow::record_batch::RecordBatch;
use uuid::Uuid;

use super::{Cell, EventRows, Row};
use crate::warehouse::schema;

/// A mapped batch: per event, its id and stream key or why it cannot be stored; the `events`
/// rows of those that map and their modelled rows, by table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MappedBatch {
    pub(crate) keys: Vec<Result<EventKey, String>>,
    pub(crate) events: TableRows,
    pub(crate) modelled: Vec<TableRows>,
    /// Rows that could not be made Arrow arrays (a mapping bug: a column of mixed kinds): the
    /// batch fails whole when written, as an append of them would.
    pub(crate) broken: Option<String>,
}

/// What the writer needs of an event besides its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EventKey {
    pub(crate) event_id: Uuid,
    /// `(aggregate_type, aggregate_id, sequence)`: unique per event.
    pub(crate) stream_key: (String, String, u64),
}

/// A table's rows from one batch, with the batch index of the event each row came from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TableRows {
    pub(crate) table: &'static str,
    pub(crate) rows: Option<RecordBatch>,
    pub(crate) owners: Vec<u32>,
}

impl TableRows {
    /// The rows of the events `keep` says (by batch index), `None` if there are none.
    pub(crate) fn select(
        &self,
        keep: impl Fn(usize) -> bool,
    ) -> Result<Option<RecordBatch>, String> {
        let Some(rows) = &self.rows else {
            return Ok(None);
        };
        let mask: Vec<bool> = self.owners.iter().map(|&i| keep(i as usize)).collect();
        if mask.iter().all(|&k| k) {
            return Ok(Some(rows.clone()));
        }
        if !mask.iter().any(|&k| k) {
            return Ok(None);
        }
        filter_record_batch(rows, &BooleanArray::from(mask))
            .map(Some)
            .map_err(|e| format!("selecting rows of {}: {e}", self.table))
    }
}

/// Assembles mapped events into their tables (in two threads if `parallel`: `events` in one,
/// the modelled tables in the other). The rows are freed here too.
pub(crate) fn assemble(rows: Vec<Result<EventRows, String>>, parallel: bool) -> MappedBatch {
    let keys = rows
        .iter()
        .map(|r| r.as_ref().map(|r| r.key.clone()).map_err(Clone::clone))
        .collect();
    let events_table = || {
        let (owners, rows): (Vec<u32>, Vec<&Row>) = rows
            .iter()
            .enumerate()
            .filter_map(|(i, r)| Some((index(i), &r.as_ref().ok()?.event)))
            .unzip();
        table(schema::EVENTS, &rows, owners)
    };
    let modelled_tables = || {
        let mut by_table: BTreeMap<&'static str, (Vec<&Row>, Vec<u32>)> = BTreeMap::new();
        for (i, r) in rows.iter().enumerate() {
            if let Ok(r) = r {
                for (t, row) in &r.modelled {
                    let entry = by_table.entry(t).or_default();
                    entry.0.push(row);
                    entry.1.push(index(i));
                }
            }
        }
        by_table
            .into_iter()
            .map(|(t, (rows, owners))| table(t, &rows, owners))
            .collect::<Result<Vec<_>, _>>()
    };
    let (events, modelled) = if parallel {
        std::thread::scope(|scope| {
            let other = scope.spawn(modelled_tables);
            let events = events_table();
            match other.join() {
                Ok(modelled) => (events, modelled),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    } else {
        (events_table(), modelled_tables())
    };
    drop(rows);
    match (events, modelled) {
        (Ok(events), Ok(modelled)) => MappedBatch {
            keys,
            events,
            modelled,
            broken: None,
        },
        (Err(e), _) | (_, Err(e)) => MappedBatch {
            keys,
            events: TableRows {
                table: schema::EVENTS,
                rows: None,
                owners: Vec::new(),
            },
            modelled: Vec::new(),
            broken: Some(e),
        },
    }
}

/// A batch index as stored in [`TableRows::owners`] (a batch is far below 4 billion events).
fn index(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

fn table(name: &'static str, rows: &[&Row], owners: Vec<u32>) -> Result<TableRows, String> {
    let rows = if rows.is_empty() {
        None
    } else {
        Some(columns(rows).map_err(|e| format!("rows of {name}: {e}"))?)
    };
    Ok(TableRows {
        table: name,
        rows,
        owners,
    })
}

/// Column `column` of every row through `pick`, which takes the values of the column's kind:
/// a null stays a null, a value of another kind is an error.
fn cells<'a, R: AsRef<[Cell]>, T>(
    rows: &'a [R],
    column: usize,
    pick: impl Fn(&'a Cell) -> Option<T>,
) -> Result<Vec<Option<T>>, String> {
    rows.iter()
        .map(|row| match cell(row, column) {
            Cell::Null => Ok(None),
            value => pick(value)
                .map(Some)
                .ok_or_else(|| format!("column {column} mixes kinds: {value:?}")),
        })
        .collect()
}

/// A row's value in `column` (every row has every column: [`columns`] checks).
fn cell<R: AsRef<[Cell]>>(row: &R, column: usize) -> &Cell {
    row.as_ref().get(column).unwrap_or(&Cell::Null)
}

/// Arrow's name for the extension type DuckDB reads a 16-byte binary column as a `UUID` by.
pub(crate) const ARROW_UUID: (&str, &str) = ("ARROW:extension:name", "arrow.uuid");

/// The rows as one Arrow record batch, a column per position, typed by the column's values
/// (a column of nulls only is text: DuckDB casts a null to any type).
pub(crate) fn columns<R: AsRef<[Cell]>>(rows: &[R]) -> Result<RecordBatch, String> {
    let width = rows.first().map_or(0, |r| r.as_ref().len());
    if let Some(short) = rows.iter().find(|r| r.as_ref().len() != width) {
        return Err(format!(
            "rows of {width} and of {} values in one append",
            short.as_ref().len()
        ));
    }
    let mut fields = Vec::with_capacity(width);
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(width);
    for column in 0..width {
        let kind = rows
            .iter()
            .map(|row| cell(row, column))
            .find(|v| !matches!(v, Cell::Null))
            .unwrap_or(&Cell::Null);
        let mut metadata = HashMap::new();
        let array: ArrayRef = match kind {
            Cell::Null | Cell::Text(_) => {
                Arc::new(StringArray::from(cells(rows, column, |v| match v {
                    Cell::Text(s) => Some(s.as_str()),
                    _ => None,
                })?))
            }
            Cell::BigInt(_) => Arc::new(Int64Array::from(cells(rows, column, |v| match v {
                Cell::BigInt(n) => Some(*n),
                _ => None,
            })?)),
            Cell::Int(_) => Arc::new(Int32Array::from(cells(rows, column, |v| match v {
                Cell::Int(n) => Some(*n),
                _ => None,
            })?)),
            Cell::SmallInt(_) => Arc::new(Int16Array::from(cells(rows, column, |v| match v {
                Cell::SmallInt(n) => Some(*n),
                _ => None,
            })?)),
            Cell::Millis(_) => Arc::new(TimestampMillisecondArray::from(cells(
                rows,
                column,
                |v| match v {
                    Cell::Millis(t) => Some(*t),
                    _ => None,
                },
            )?)),
            Cell::Uuid(_) => {
                let ids = cells(rows, column, |v| match v {
                    Cell::Uuid(id) => Some(id.as_bytes()),
                    _ => None,
                })?;
                metadata.insert(ARROW_UUID.0.to_owned(), ARROW_UUID.1.to_owned());
                Arc::new(
                    FixedSizeBinaryArray::try_from_sparse_iter_with_size(ids.into_iter(), 16)
                        .map_err(|e| format!("column {column} as uuids: {e}"))?,
                )
            }
            Cell::Texts(_) => {
                let lists = cells(rows, column, |v| match v {
                    Cell::Texts(items) => Some(items),
                    _ => None,
                })?;
                let mut builder = ListBuilder::new(StringBuilder::new());
                for list in lists {
                    match list {
                        Some(items) => {
                            for item in items {
                                builder.values().append_value(item);
                            }
                            builder.append(true);
                        }
                        None => builder.append(false),
                    }
                }
                Arc::new(builder.finish())
            }
        };
        fields.push(
            Field::new(format!("c{column}"), array.data_type().clone(), true)
                .with_metadata(metadata),
        );
        arrays.push(array);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
        .map_err(|e| format!("rows as Arrow: {e}"))
}

#[cfg(test)]
mod tests {
    use duckdb::arrow::datatypes::DataType;

    use super::*;

    #[test]
    fn columns_are_typed_by_their_values_and_refuse_mixed_or_short_rows() {
        let id = Uuid::new_v4();
        let rows = vec![
            vec![
                Cell::Text("a".into()),
                Cell::Null,
                Cell::BigInt(1),
                Cell::Uuid(id),
                Cell::Texts(vec!["x".into(), "y".into()]),
            ],
            vec![
                Cell::Null,
                Cell::Null,
                Cell::BigInt(2),
                Cell::Uuid(id),
                Cell::Texts(vec![]),
            ],
        ];
        let batch = columns(&rows).unwrap();
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.column(0).data_type(), &DataType::Utf8);
        assert_eq!(batch.column(0).null_count(), 1);
        assert_eq!(batch.column(1).null_count(), 2);
        assert_eq!(batch.column(2).data_type(), &DataType::Int64);
        assert_eq!(batch.column(3).data_type(), &DataType::FixedSizeBinary(16));
        assert_eq!(
            batch
                .schema()
                .field(3)
                .metadata()
                .get(ARROW_UUID.0)
                .map(String::as_str),
            Some(ARROW_UUID.1)
        );
        assert!(matches!(batch.column(4).data_type(), DataType::List(_)));

        let mixed = vec![vec![Cell::Int(1)], vec![Cell::Text("x".into())]];
        assert!(matches!(columns(&mixed), Err(m) if m.contains("mixes kinds")));
        let short = vec![vec![Cell::Int(1), Cell::Int(2)], vec![Cell::Int(3)]];
        assert!(matches!(columns(&short), Err(m) if m.contains("rows of 2")));
    }

    #[test]
    fn a_selection_keeps_the_rows_of_the_events_named() {
        let rows: Vec<Row> = (0..4).map(|n| vec![Cell::BigInt(n)]).collect();
        let t = TableRows {
            table: "t",
            rows: Some(columns(&rows).unwrap()),
            // Events 0 and 2 made two rows each.
            owners: vec![0, 0, 2, 2],
        };
        assert_eq!(t.select(|_| true).unwrap(), t.rows);
        assert_eq!(t.select(|i| i == 1).unwrap(), None);
        let kept = t.select(|i| i == 2).unwrap().unwrap();
        assert_eq!(
            kept.column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .values(),
            &[2, 3]
        );
    }
}
