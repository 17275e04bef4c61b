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
pub(crate) use arrow::{EventKey, MappedBatch, Tables};

use std::borrow::Cow;

use chaos_schemas::{AnyEvent, PublishedEvent};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A value of a row, of one of the kinds the warehouse's columns take, borrowed from the event
/// where it can be. [`arrow`] puts it straight into an Arrow builder of the column's own type:
/// no value reaches DuckDB as text to be parsed back (an event id is its 16 bytes, a list is a
/// list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cell<'a> {
    Null,
    Text(Cow<'a, str>),
    BigInt(i64),
    Int(i32),
    SmallInt(i16),
    /// `TIMESTAMP`, milliseconds since the epoch.
    Millis(i64),
    Uuid(Uuid),
    /// `VARCHAR[]`.
    Texts(Vec<Cow<'a, str>>),
}

/// A row of a table, in its column order.
pub(crate) type Row<'a> = Vec<Cell<'a>>;

/// Maps an event into `tables`: its `events` row and the modelled rows it makes (none, one, or
/// one per line of a multi-line event such as a craft's ingredients). An event that cannot be
/// stored writes no row and its key records why (a dead letter): an id that is not its stream
/// position's, or a payload JSON cannot represent (which with a passing schema test suite does
/// not happen).
pub(crate) fn event_rows(published: &PublishedEvent, tables: &mut Tables) {
    let e = &published.envelope;
    // The id is the warehouse's one key, and it stands for the stream position only if it is
    // the position's id: an event that claims another id (at a stored event's position, or at
    // none) is refused here, so no two rows share a position (decision 48).
    if !chaos_eventstore::publish::is_event_id(
        e.event_id,
        &e.aggregate_type,
        &e.aggregate_id,
        e.sequence,
    ) {
        tables.end_event(Err(format!(
            "event id {} is not the id of {} {} sequence {}: refused, as it could stand beside \
             another event at that stream position",
            e.event_id, e.aggregate_type, e.aggregate_id, e.sequence
        )));
        return;
    }
    let payload = match payload::json(published) {
        Ok(payload) => payload,
        Err(reason) => {
            tables.end_event(Err(reason));
            return;
        }
    };
    let event_id = Cell::Uuid(e.event_id);
    tables.event_row(vec![
        event_id.clone(),
        text(&e.event_type),
        text(&e.aggregate_type),
        text(&e.aggregate_id),
        bigint(e.sequence),
        Cell::BigInt(e.global_position),
        timestamp(e.occurred_at),
        text_opt(e.correlation_id.as_deref()),
        text_opt(e.causation_id.as_deref()),
        Cell::Int(i32::try_from(published.event.schema_version()).unwrap_or(i32::MAX)),
        Cell::Text(Cow::Owned(payload)),
    ]);
    let at = Envelope {
        event_id,
        aggregate_id: &e.aggregate_id,
        sequence: bigint(e.sequence),
    };
    match &published.event {
        AnyEvent::Character(domain) => character::rows(&at, domain, tables),
        AnyEvent::Wallet(domain) => wallet::rows(&at, domain, tables),
    }
    tables.end_event(Ok(EventKey {
        event_id: e.event_id,
    }));
}

/// Every event of a batch mapped ([`event_rows`], in order) into Arrow tables, off the DuckDB
/// thread, which only appends them. A large batch (a rebuild's, a catch-up's) is mapped by two
/// threads, each half into tables of its own, joined after: mapping is as much work as the
/// DuckDB thread's write of the rows, and the writer waits for it.
pub(crate) fn batch_rows(events: &[PublishedEvent]) -> MappedBatch {
    const PARALLEL_FROM: usize = 4_096;
    let map = |events: &[PublishedEvent], first: usize| {
        let mut tables = Tables::new(first);
        for event in events {
            event_rows(event, &mut tables);
        }
        tables
    };
    if events.len() < PARALLEL_FROM {
        return map(events, 0).finish();
    }
    let half = events.len() / 2;
    let (first, second) = events.split_at(half);
    let parts = std::thread::scope(|scope| {
        let other = scope.spawn(|| map(second, half));
        let first = map(first, 0);
        match other.join() {
            Ok(second) => vec![first, second],
            // As if the mapping had run on this thread.
            Err(panic) => std::panic::resume_unwind(panic),
        }
    });
    Tables::merge(parts)
}

/// What every modelled row starts from.
pub(crate) struct Envelope<'a> {
    pub(crate) event_id: Cell<'static>,
    pub(crate) aggregate_id: &'a str,
    pub(crate) sequence: Cell<'static>,
}

impl<'a> Envelope<'a> {
    pub(crate) fn aggregate(&self) -> Cell<'a> {
        text(self.aggregate_id)
    }
}

/// A UTC instant as a plain `TIMESTAMP`, at millisecond precision.
pub(crate) fn timestamp(t: DateTime<Utc>) -> Cell<'static> {
    Cell::Millis(t.timestamp_millis())
}

/// Domain numbers never come near `i64::MAX`; saturate rather than wrap if one ever did.
pub(crate) fn bigint(n: u64) -> Cell<'static> {
    Cell::BigInt(i64::try_from(n).unwrap_or(i64::MAX))
}

pub(crate) fn int(n: u32) -> Cell<'static> {
    Cell::Int(i32::try_from(n).unwrap_or(i32::MAX))
}

/// A (signed) quantity as an `INTEGER`.
pub(crate) fn signed(n: i64) -> Cell<'static> {
    Cell::Int(i32::try_from(n).unwrap_or(if n < 0 { i32::MIN } else { i32::MAX }))
}

pub(crate) fn text(s: &str) -> Cell<'_> {
    Cell::Text(Cow::Borrowed(s))
}

pub(crate) fn text_opt(s: Option<&str>) -> Cell<'_> {
    s.map_or(Cell::Null, text)
}

/// The part of a `kind:detail` label before its first `:` (`loot:wolf` -> `loot`).
pub(crate) fn kind_of(label: &str) -> Cell<'_> {
    text(label.split(':').next().unwrap_or(label))
}

/// A `VARCHAR[]` value.
pub(crate) fn texts<S: AsRef<str>>(items: &[S]) -> Cell<'_> {
    Cell::Texts(items.iter().map(|s| Cow::Borrowed(s.as_ref())).collect())
}
