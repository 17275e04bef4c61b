//! A batch's rows as Arrow record batches, one per table, built where the batch is mapped: each
//! row's values go straight into its table's column builders (no row is kept), and the DuckDB
//! thread, the warehouse's critical path, only appends the finished batches.

use std::collections::HashMap;
use std::sync::Arc;

use duckdb::arrow::array::{
    new_null_array, Array, ArrayRef, BooleanArray, FixedSizeBinaryBuilder, Int16Builder,
    Int32Builder, Int64Builder, ListBuilder, StringBuilder, TimestampMillisecondBuilder,
};
use duckdb::arrow::compute::{concat_batches, filter_record_batch};
use duckdb::arrow::datatypes::{DataType, Field, Schema};
use duckdb::arrow::record_batch::RecordBatch;
use uuid::Uuid;

use super::{Cell, Row};
use crate::warehouse::schema;

/// A mapped batch: per event, its id or why it cannot be stored; the `events`
/// rows of those that map and their modelled rows, by table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MappedBatch {
    pub(crate) keys: Vec<Result<EventKey, String>>,
    pub(crate) events: TableRows,
    pub(crate) modelled: Vec<TableRows>,
    /// Rows that could not be made Arrow arrays (a mapping bug: a column of mixed kinds, rows
    /// of different widths): the batch fails whole when written, as an append of them would.
    pub(crate) broken: Option<String>,
}

/// What the writer needs of an event besides its rows: its id, which the mapping checked is
/// its stream position's (so it stands for the position too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EventKey {
    pub(crate) event_id: Uuid,
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

/// The tables of the events mapped so far (a batch, or a consecutive part of one): what
/// [`super::event_rows`] writes into, a builder per table.
#[derive(Debug)]
pub(crate) struct Tables {
    /// The batch index of the first event.
    first: usize,
    keys: Vec<Result<EventKey, String>>,
    events: TableBuilder,
    /// Few tables: a list looked up by name beats a map.
    modelled: Vec<TableBuilder>,
}

impl Tables {
    /// Tables for the events from batch index `first` on.
    pub(crate) fn new(first: usize) -> Self {
        Self {
            first,
            keys: Vec::new(),
            events: TableBuilder::new(schema::EVENTS),
            modelled: Vec::new(),
        }
    }

    /// The batch index of the event being mapped: the rows pushed until its key is recorded
    /// ([`Self::end_event`]) are its own.
    fn owner(&self) -> u32 {
        index(self.first + self.keys.len())
    }

    /// Records the event's key, or why it cannot be stored; the next event starts.
    pub(crate) fn end_event(&mut self, key: Result<EventKey, String>) {
        self.keys.push(key);
    }

    /// The event's `events` row.
    pub(crate) fn event_row(&mut self, row: Row<'_>) {
        let owner = self.owner();
        self.events.push(owner, row);
    }

    /// One of the event's modelled rows.
    pub(crate) fn push(&mut self, (table, row): (&'static str, Row<'_>)) {
        let owner = self.owner();
        match self.modelled.iter_mut().find(|t| t.table == table) {
            Some(builder) => builder.push(owner, row),
            None => {
                let mut builder = TableBuilder::new(table);
                builder.push(owner, row);
                self.modelled.push(builder);
            }
        }
    }

    /// The mapped batch (the tables of the modelled rows in name order).
    pub(crate) fn finish(self) -> MappedBatch {
        Self::merge(vec![self])
    }

    /// The mapped batch of consecutive parts of one batch, in order (each part's owners are
    /// batch indices already: see [`Tables::new`]).
    pub(crate) fn merge(parts: Vec<Tables>) -> MappedBatch {
        let mut keys = Vec::new();
        let mut events = Vec::new();
        let mut modelled: std::collections::BTreeMap<&'static str, Vec<Result<TableRows, String>>> =
            std::collections::BTreeMap::new();
        let mut broken = None;
        for part in parts {
            keys.extend(part.keys);
            events.push(part.events.finish());
            for table in part.modelled {
                let name = table.table;
                modelled.entry(name).or_default().push(table.finish());
            }
        }
        let mut concat = |name: &'static str, parts: Vec<Result<TableRows, String>>| match parts
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .and_then(|parts| concat_parts(name, parts))
        {
            Ok(rows) => rows,
            Err(e) => {
                broken.get_or_insert(e);
                TableRows {
                    table: name,
                    rows: None,
                    owners: Vec::new(),
                }
            }
        };
        let events = concat(schema::EVENTS, events);
        let modelled = modelled
            .into_iter()
            .map(|(name, parts)| concat(name, parts))
            .collect();
        match broken {
            None => MappedBatch {
                keys,
                events,
                modelled,
                broken: None,
            },
            Some(e) => MappedBatch {
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
}

/// One table's rows of consecutive parts as one record batch. A column can be typed in one
/// part and all nulls (text) in another: the nulls take the other part's type.
fn concat_parts(name: &'static str, parts: Vec<TableRows>) -> Result<TableRows, String> {
    let mut owners = Vec::new();
    let mut batches: Vec<RecordBatch> = Vec::new();
    for part in parts {
        owners.extend(part.owners);
        batches.extend(part.rows);
    }
    let rows = match batches.len() {
        0 => None,
        1 => batches.pop(),
        _ => {
            let width = batches[0].num_columns();
            if let Some(other) = batches.iter().find(|b| b.num_columns() != width) {
                return Err(format!(
                    "rows of {name}: rows of {width} and of {} values in one append",
                    other.num_columns()
                ));
            }
            // Each column's type: that of the first part where it is not all nulls.
            let fields: Vec<Field> = (0..width)
                .map(|c| {
                    let typed = batches
                        .iter()
                        .find(|b| b.column(c).null_count() < b.num_rows())
                        .unwrap_or(&batches[0]);
                    typed.schema().field(c).clone()
                })
                .collect();
            let schema = Arc::new(Schema::new(fields));
            let aligned = batches
                .iter()
                .map(|b| {
                    let columns = (0..width)
                        .map(|c| {
                            let column = b.column(c);
                            let wanted = schema.field(c).data_type();
                            if column.data_type() == wanted {
                                Ok(column.clone())
                            } else if column.null_count() == column.len() {
                                Ok(new_null_array(wanted, column.len()))
                            } else {
                                Err(format!(
                                    "rows of {name}: column {c} mixes kinds: {} and {wanted}",
                                    column.data_type()
                                ))
                            }
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    RecordBatch::try_new(schema.clone(), columns)
                        .map_err(|e| format!("rows of {name} as Arrow: {e}"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Some(
                concat_batches(&schema, &aligned)
                    .map_err(|e| format!("rows of {name} as Arrow: {e}"))?,
            )
        }
    };
    Ok(TableRows {
        table: name,
        rows,
        owners,
    })
}

/// A batch index as stored in [`TableRows::owners`] (a batch is far below 4 billion events).
fn index(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// One table's rows, built column by column as they are pushed.
#[derive(Debug)]
struct TableBuilder {
    table: &'static str,
    columns: Vec<Column>,
    owners: Vec<u32>,
    /// The first mistake in the rows pushed (a mapping bug): the table cannot be appended.
    broken: Option<String>,
}

impl TableBuilder {
    fn new(table: &'static str) -> Self {
        Self {
            table,
            columns: Vec::new(),
            owners: Vec::new(),
            broken: None,
        }
    }

    fn push(&mut self, owner: u32, row: Row<'_>) {
        if self.broken.is_some() {
            return;
        }
        if self.owners.is_empty() {
            self.columns = (0..row.len()).map(|_| Column::Nulls(0)).collect();
        } else if row.len() != self.columns.len() {
            self.broken = Some(format!(
                "rows of {}: rows of {} and of {} values in one append",
                self.table,
                self.columns.len(),
                row.len()
            ));
            return;
        }
        for (c, (column, value)) in self.columns.iter_mut().zip(row).enumerate() {
            if let Err(e) = column.push(value) {
                self.broken = Some(format!("rows of {}: column {c} {e}", self.table));
                return;
            }
        }
        self.owners.push(owner);
    }

    fn finish(self) -> Result<TableRows, String> {
        if let Some(e) = self.broken {
            return Err(e);
        }
        let rows = if self.owners.is_empty() {
            None
        } else {
            let (fields, arrays): (Vec<Field>, Vec<ArrayRef>) = self
                .columns
                .into_iter()
                .enumerate()
                .map(|(c, column)| column.finish(c))
                .unzip();
            Some(
                RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
                    .map_err(|e| format!("rows of {} as Arrow: {e}", self.table))?,
            )
        };
        Ok(TableRows {
            table: self.table,
            rows,
            owners: self.owners,
        })
    }
}

/// Arrow's name for the extension type DuckDB reads a 16-byte binary column as a `UUID` by.
pub(crate) const ARROW_UUID: (&str, &str) = ("ARROW:extension:name", "arrow.uuid");

/// A column being built, typed by its first value that is not a null (a column of nulls only
/// is text: DuckDB casts a null to any type).
#[derive(Debug)]
enum Column {
    /// Nulls only so far, this many.
    Nulls(usize),
    Text(StringBuilder),
    BigInt(Int64Builder),
    Int(Int32Builder),
    SmallInt(Int16Builder),
    Millis(TimestampMillisecondBuilder),
    Uuid(FixedSizeBinaryBuilder),
    Texts(ListBuilder<StringBuilder>),
}

impl Column {
    /// A builder of `value`'s kind holding `nulls` nulls.
    fn of(value: &Cell<'_>, nulls: usize) -> Self {
        let mut column = match value {
            Cell::Null | Cell::Text(_) => Self::Text(StringBuilder::new()),
            Cell::BigInt(_) => Self::BigInt(Int64Builder::new()),
            Cell::Int(_) => Self::Int(Int32Builder::new()),
            Cell::SmallInt(_) => Self::SmallInt(Int16Builder::new()),
            Cell::Millis(_) => Self::Millis(TimestampMillisecondBuilder::new()),
            Cell::Uuid(_) => Self::Uuid(FixedSizeBinaryBuilder::new(16)),
            Cell::Texts(_) => Self::Texts(ListBuilder::new(StringBuilder::new())),
        };
        for _ in 0..nulls {
            // A null is of every kind.
            let _ = column.push(Cell::Null);
        }
        column
    }

    fn push(&mut self, value: Cell<'_>) -> Result<(), String> {
        if let Self::Nulls(nulls) = self {
            if matches!(value, Cell::Null) {
                *nulls += 1;
                return Ok(());
            }
            *self = Self::of(&value, *nulls);
        }
        match (self, value) {
            (Self::Text(b), Cell::Text(s)) => b.append_value(s),
            (Self::Text(b), Cell::Null) => b.append_null(),
            (Self::BigInt(b), Cell::BigInt(n)) => b.append_value(n),
            (Self::BigInt(b), Cell::Null) => b.append_null(),
            (Self::Int(b), Cell::Int(n)) => b.append_value(n),
            (Self::Int(b), Cell::Null) => b.append_null(),
            (Self::SmallInt(b), Cell::SmallInt(n)) => b.append_value(n),
            (Self::SmallInt(b), Cell::Null) => b.append_null(),
            (Self::Millis(b), Cell::Millis(t)) => b.append_value(t),
            (Self::Millis(b), Cell::Null) => b.append_null(),
            (Self::Uuid(b), Cell::Uuid(id)) => b
                .append_value(id.as_bytes())
                .map_err(|e| format!("as uuids: {e}"))?,
            (Self::Uuid(b), Cell::Null) => b.append_null(),
            (Self::Texts(b), Cell::Texts(items)) => {
                for item in items {
                    b.values().append_value(item);
                }
                b.append(true);
            }
            (Self::Texts(b), Cell::Null) => b.append(false),
            (column, value) => {
                return Err(format!(
                    "mixes kinds: {value:?} after values of {}",
                    column.kind()
                ))
            }
        }
        Ok(())
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::Nulls(_) => "no kind",
            Self::Text(_) => "text",
            Self::BigInt(_) => "bigint",
            Self::Int(_) => "int",
            Self::SmallInt(_) => "smallint",
            Self::Millis(_) => "timestamp",
            Self::Uuid(_) => "uuid",
            Self::Texts(_) => "text list",
        }
    }

    /// The column as an Arrow array and its field (named `c<position>`).
    fn finish(self, position: usize) -> (Field, ArrayRef) {
        let mut metadata = HashMap::new();
        let array: ArrayRef = match self {
            Self::Nulls(n) => new_null_array(&DataType::Utf8, n),
            Self::Text(mut b) => Arc::new(b.finish()),
            Self::BigInt(mut b) => Arc::new(b.finish()),
            Self::Int(mut b) => Arc::new(b.finish()),
            Self::SmallInt(mut b) => Arc::new(b.finish()),
            Self::Millis(mut b) => Arc::new(b.finish()),
            Self::Uuid(mut b) => {
                metadata.insert(ARROW_UUID.0.to_owned(), ARROW_UUID.1.to_owned());
                Arc::new(b.finish())
            }
            Self::Texts(mut b) => Arc::new(b.finish()),
        };
        (
            Field::new(format!("c{position}"), array.data_type().clone(), true)
                .with_metadata(metadata),
            array,
        )
    }
}

#[cfg(test)]
mod tests {
    use duckdb::arrow::array::Int64Array;
    use duckdb::arrow::datatypes::DataType;

    use super::*;

    fn key(n: u128) -> Result<EventKey, String> {
        Ok(EventKey {
            event_id: Uuid::from_u128(n),
        })
    }

    /// One event per row of `rows`, into table `t`.
    fn tables(first: usize, rows: Vec<Row<'static>>) -> Tables {
        let mut tables = Tables::new(first);
        for (i, row) in rows.into_iter().enumerate() {
            tables.push(("t", row));
            tables.end_event(key((first + i) as u128));
        }
        tables
    }

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
        let batch = tables(0, rows).finish();
        assert_eq!(batch.broken, None);
        assert_eq!(batch.keys.len(), 2);
        let t = &batch.modelled[0];
        assert_eq!(t.owners, vec![0, 1]);
        let t = t.rows.as_ref().unwrap();
        assert_eq!(t.num_rows(), 2);
        assert_eq!(t.column(0).data_type(), &DataType::Utf8);
        assert_eq!(t.column(0).null_count(), 1);
        assert_eq!(t.column(1).data_type(), &DataType::Utf8);
        assert_eq!(t.column(1).null_count(), 2);
        assert_eq!(t.column(2).data_type(), &DataType::Int64);
        assert_eq!(t.column(3).data_type(), &DataType::FixedSizeBinary(16));
        assert_eq!(
            t.schema()
                .field(3)
                .metadata()
                .get(ARROW_UUID.0)
                .map(String::as_str),
            Some(ARROW_UUID.1)
        );
        assert!(matches!(t.column(4).data_type(), DataType::List(_)));

        let mixed = vec![vec![Cell::Int(1)], vec![Cell::Text("x".into())]];
        let batch = tables(0, mixed).finish();
        assert!(matches!(&batch.broken, Some(m) if m.contains("mixes kinds")));
        assert!(batch.modelled.is_empty());
        let short = vec![vec![Cell::Int(1), Cell::Int(2)], vec![Cell::Int(3)]];
        let batch = tables(0, short).finish();
        assert!(matches!(&batch.broken, Some(m) if m.contains("rows of 2")));
    }

    #[test]
    fn parts_join_in_order_with_their_null_columns_typed_by_the_other_parts() {
        let part = |first: usize, n: i64, value: Cell<'static>| {
            tables(
                first,
                vec![
                    vec![Cell::BigInt(n), value.clone()],
                    vec![Cell::BigInt(n + 1), value],
                ],
            )
        };
        let joined = Tables::merge(vec![
            part(0, 0, Cell::Null),
            part(2, 2, Cell::Int(7)),
            part(4, 4, Cell::Null),
        ]);
        assert_eq!(joined.broken, None);
        assert_eq!(joined.keys, (0..6).map(key).collect::<Vec<_>>());
        let t = &joined.modelled[0];
        assert_eq!(t.owners, vec![0, 1, 2, 3, 4, 5]);
        let rows = t.rows.as_ref().unwrap();
        assert_eq!(rows.column(1).data_type(), &DataType::Int32);
        assert_eq!(rows.column(1).null_count(), 4);
        assert_eq!(
            rows.column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .values(),
            &[0, 1, 2, 3, 4, 5]
        );
        // The same rows mapped as one part.
        let mut whole = Vec::new();
        for (n, value) in [(0, Cell::Null), (2, Cell::Int(7)), (4, Cell::Null)] {
            whole.push(vec![Cell::BigInt(n), value.clone()]);
            whole.push(vec![Cell::BigInt(n + 1), value]);
        }
        assert_eq!(joined, tables(0, whole).finish());

        let clash = Tables::merge(vec![part(0, 0, Cell::Int(1)), part(2, 2, Cell::BigInt(1))]);
        assert!(matches!(&clash.broken, Some(m) if m.contains("mixes kinds")));
    }

    #[test]
    fn a_selection_keeps_the_rows_of_the_events_named() {
        let mut t = Tables::new(0);
        // Events 0 and 2 made two rows each, event 1 none.
        for (event, rows) in [(0, 2), (1, 0), (2, 2)] {
            for n in 0..rows {
                t.push(("t", vec![Cell::BigInt(event * 10 + n)]));
            }
            t.end_event(key(event as u128));
        }
        let t = t.finish().modelled.remove(0);
        assert_eq!(t.owners, vec![0, 0, 2, 2]);
        assert_eq!(t.select(|_| true).unwrap(), t.rows);
        assert_eq!(t.select(|i| i == 1).unwrap(), None);
        let kept = t.select(|i| i == 2).unwrap().unwrap();
        assert_eq!(
            kept.column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .values(),
            &[20, 21]
        );
    }
}
