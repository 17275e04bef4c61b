//! Published events -> warehouse rows, in the column order of [`super::schema`]. Pure.
//!
//! Times are cut to milliseconds, the precision of the Avro contract, so a warehouse fed from
//! the event store and one fed from Kafka hold the same values.

mod arrow;
mod character;
mod payload;
mod wallet;

#[cfg(test)]
pub(crate) use arrow::TableRows;
pub(crate) use arrow::{assemble, EventKey, MappedBatch};

use chaos_schemas::{AnyEvent, PublishedEvent};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A value of a row, of one of the kinds the warehouse's columns take. [`arrow::columns`] turns
/// a column of them into an Arrow array of the column's own type: no value reaches DuckDB as text
/// to be parsed back (an event id is its 16 bytes, a list is a list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cell {
    Null,
    Text(String),
    BigInt(i64),
    Int(i32),
    SmallInt(i16),
    /// `TIMESTAMP`, milliseconds since the epoch.
    Millis(i64),
    Uuid(Uuid),
    /// `VARCHAR[]`.
    Texts(Vec<String>),
}

/// A row of a table, in its column order.
pub(crate) type Row = Vec<Cell>;

/// One event's rows: its `events` row and the modelled rows it makes (none, one, or one per
/// line of a multi-line event such as a craft's ingredients), by table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EventRows {
    pub(crate) key: EventKey,
    pub(crate) event: Row,
    pub(crate) modelled: Vec<(&'static str, Row)>,
}

/// Maps an event to its rows. `Err` carries the reason the event cannot be stored (a dead
/// letter), which with a passing schema test suite does not happen.
pub(crate) fn event_rows(published: &PublishedEvent) -> Result<EventRows, String> {
    let e = &published.envelope;
    let event_id = Cell::Uuid(e.event_id);
    let event = vec![
        event_id.clone(),
        Cell::Text(e.event_type.clone()),
        Cell::Text(e.aggregate_type.clone()),
        Cell::Text(e.aggregate_id.clone()),
        bigint(e.sequence),
        Cell::BigInt(e.global_position),
        timestamp(e.occurred_at),
        text_opt(e.correlation_id.as_deref()),
        text_opt(e.causation_id.as_deref()),
        Cell::Int(i32::try_from(published.event.schema_version()).unwrap_or(i32::MAX)),
        Cell::Text(payload::json(published)?),
    ];
    let mut modelled = Vec::new();
    let at = Envelope {
        event_id,
        aggregate_id: &e.aggregate_id,
        sequence: bigint(e.sequence),
    };
    match &published.event {
        AnyEvent::Character(domain) => character::rows(&at, domain, &mut modelled),
        AnyEvent::Wallet(domain) => wallet::rows(&at, domain, &mut modelled),
    }
    Ok(EventRows {
        key: EventKey {
            event_id: e.event_id,
            stream_key: (e.aggregate_type.clone(), e.aggregate_id.clone(), e.sequence),
        },
        event,
        modelled,
    })
}

/// Every event of a batch mapped ([`event_rows`], in order) and its tables assembled as Arrow
/// ([`assemble`]), all off the DuckDB thread, which only appends them. A large batch (a
/// rebuild's, a catch-up's) is mapped by two threads: mapping and assembling are as much work
/// as the DuckDB thread's write of the rows, and the writer waits for them.
pub(crate) fn batch_rows(events: &[PublishedEvent]) -> MappedBatch {
    const PARALLEL_FROM: usize = 4_096;
    if events.len() < PARALLEL_FROM {
        return assemble(events.iter().map(event_rows).collect(), false);
    }
    let (first, second) = events.split_at(events.len() / 2);
    let rows = std::thread::scope(|scope| {
        let other = scope.spawn(|| second.iter().map(event_rows).collect::<Vec<_>>());
        let mut rows: Vec<_> = first.iter().map(event_rows).collect();
        match other.join() {
            Ok(more) => rows.extend(more),
            // As if the mapping had run on this thread.
            Err(panic) => std::panic::resume_unwind(panic),
        }
        rows
    });
    assemble(rows, true)
}

/// What every modelled row starts from.
pub(crate) struct Envelope<'a> {
    pub(crate) event_id: Cell,
    pub(crate) aggregate_id: &'a str,
    pub(crate) sequence: Cell,
}

impl Envelope<'_> {
    pub(crate) fn aggregate(&self) -> Cell {
        text(self.aggregate_id)
    }
}

/// A UTC instant as a plain `TIMESTAMP`, at millisecond precision.
pub(crate) fn timestamp(t: DateTime<Utc>) -> Cell {
    Cell::Millis(t.timestamp_millis())
}

/// Domain numbers never come near `i64::MAX`; saturate rather than wrap if one ever did.
pub(crate) fn bigint(n: u64) -> Cell {
    Cell::BigInt(i64::try_from(n).unwrap_or(i64::MAX))
}

pub(crate) fn int(n: u32) -> Cell {
    Cell::Int(i32::try_from(n).unwrap_or(i32::MAX))
}

/// A (signed) quantity as an `INTEGER`.
pub(crate) fn signed(n: i64) -> Cell {
    Cell::Int(i32::try_from(n).unwrap_or(if n < 0 { i32::MIN } else { i32::MAX }))
}

pub(crate) fn text(s: &str) -> Cell {
    Cell::Text(s.to_owned())
}

pub(crate) fn text_opt(s: Option<&str>) -> Cell {
    s.map_or(Cell::Null, text)
}

/// The part of a `kind:detail` label before its first `:` (`loot:wolf` -> `loot`).
pub(crate) fn kind_of(label: &str) -> Cell {
    text(label.split(':').next().unwrap_or(label))
}

/// A `VARCHAR[]` value.
pub(crate) fn texts<S: AsRef<str>>(items: &[S]) -> Cell {
    Cell::Texts(items.iter().map(|s| s.as_ref().to_owned()).collect())
}
