//! Published events <-> Avro values and Avro binary bodies (no registry involved).

use std::collections::HashMap;
use std::sync::LazyLock;

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::schema::{NamesRef, ResolvedSchema};
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::Schema;

use crate::binary;
use crate::catalogue::{self, SchemaVersion};
use crate::envelope::{EventEnvelope, PublishedEvent};
use crate::error::{Error, Result};
use crate::registry::AnyEvent;
use crate::value::{self, Fields};

/// The event as an Avro record value of its current schema: `envelope` first, then the event's
/// own fields, in schema order.
///
/// Lossy only where the contract is: times keep millisecond precision, and unsigned numbers
/// beyond the signed wire type's maximum saturate (the domain never produces them).
pub fn to_avro(event: &PublishedEvent) -> Value {
    let mut fields = vec![("envelope".to_owned(), envelope_to_avro(&event.envelope))];
    fields.extend(
        event
            .event
            .to_fields()
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value)),
    );
    Value::Record(fields)
}

/// The event's own fields (no envelope) as compact JSON text, named and ordered as in its
/// current Avro record, each value as apache_avro converts it to JSON (times in epoch millis,
/// uuids as strings, unions as their branch's value): the warehouse's `events.payload`.
/// The same text as converting the whole record and dropping its envelope, without converting
/// the envelope or building the record's map.
///
/// Written straight from the Avro values (the warehouse maps every event through it: building a
/// `serde_json::Value` per field and printing it was most of the mapping's time); a kind this
/// writer does not print itself (a map, a nested record, bytes, a decimal) goes through
/// apache_avro's conversion, so the text is the same either way.
pub fn fields_json(event: &AnyEvent) -> Result<String> {
    let mut out: Vec<u8> = Vec::with_capacity(256);
    out.push(b'{');
    for (i, (name, value)) in event.to_fields().into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json_text(&mut out, name);
        out.push(b':');
        write_json(&mut out, value).map_err(|e| {
            Error::field(
                &catalogue::record_name(event.aggregate_type(), event.event_type()),
                name,
                format!("not representable as JSON: {e}"),
            )
        })?;
    }
    out.push(b'}');
    // Every piece is UTF-8 (Rust strings, ASCII punctuation and numbers).
    String::from_utf8(out).map_err(|e| {
        Error::field(
            &catalogue::record_name(event.aggregate_type(), event.event_type()),
            "*",
            format!("payload JSON is not UTF-8: {e}"),
        )
    })
}

/// `text` as a JSON string (quoted, escaped as serde_json escapes).
fn json_text(out: &mut Vec<u8>, text: &str) {
    // Writing a str into a Vec<u8> cannot fail.
    let _ = serde_json::to_writer(&mut *out, text);
}

/// A value as apache_avro's `TryFrom<Value> for serde_json::Value` would print it.
fn write_json(out: &mut Vec<u8>, value: Value) -> std::result::Result<(), apache_avro::Error> {
    use std::io::Write as _;
    // Writing into a Vec<u8> cannot fail: the results of `write!` are dropped.
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
        Value::Int(n) | Value::Date(n) | Value::TimeMillis(n) => {
            let _ = write!(out, "{n}");
        }
        Value::Long(n)
        | Value::TimeMicros(n)
        | Value::TimestampMillis(n)
        | Value::TimestampMicros(n)
        | Value::TimestampNanos(n)
        | Value::LocalTimestampMillis(n)
        | Value::LocalTimestampMicros(n)
        | Value::LocalTimestampNanos(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) | Value::Enum(_, s) => json_text(out, &s),
        Value::Uuid(u) => json_text(out, &u.to_string()),
        Value::Union(_, inner) => write_json(out, *inner)?,
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json(out, item)?;
            }
            out.push(b']');
        }
        other => {
            let json = serde_json::Value::try_from(other)?;
            let _ = serde_json::to_writer(&mut *out, &json);
        }
    }
    Ok(())
}

/// Maps an Avro record value, shaped exactly like the current schema of `record_name` (which
/// is what decoding with that reader schema yields), back to a published event. Strict: a
/// missing, extra or mistyped field is an error that names it, and the envelope's event and
/// aggregate types must be the record's.
pub fn from_avro(record_name: &str, value: Value) -> Result<PublishedEvent> {
    let known = known_record(record_name)?;
    let mut fields = Fields::of(record_name, value)?;
    let mut env_fields = fields.record_field("envelope")?;
    let envelope = envelope_from_avro(&mut env_fields)?;
    env_fields.finish()?;

    let event = AnyEvent::from_fields(known.aggregate_type, known.event_type, &mut fields)?;
    fields.finish()?;

    if envelope.aggregate_type != known.aggregate_type {
        return Err(Error::field(
            &format!("{record_name}.envelope"),
            "aggregate_type",
            format!(
                "is {:?} but the record belongs to {:?}",
                envelope.aggregate_type, known.aggregate_type
            ),
        ));
    }
    if envelope.event_type != known.event_type {
        return Err(Error::EventTypeMismatch {
            declared: envelope.event_type,
            actual: known.event_type.to_owned(),
        });
    }
    Ok(PublishedEvent { envelope, event })
}

/// The Avro binary body (no wire-format header) of the event, written with its current schema.
///
/// # Panics
/// If the event has no schema or [`to_avro`] disagrees with it. Neither can happen with a
/// passing test suite: the coverage and round-trip tests check every event type.
///
/// Written by the direct writer (`binary`), else by apache_avro's (same bytes).
pub fn encode_body(event: &PublishedEvent) -> Vec<u8> {
    let record_name = event.record_name();
    let prepared = prepared(&record_name)
        .unwrap_or_else(|| panic!("{record_name} has no schema in the catalogue"));
    let value = to_avro(event);
    if let Some(body) = write_direct(prepared, &value) {
        return body;
    }
    prepared
        .writer
        .write_value_to_vec(value)
        .unwrap_or_else(|e| panic!("{record_name} does not match its own schema: {e}"))
}

/// The body as the direct writer alone writes it: `None` where it leaves the event to
/// apache_avro's writer. For the contract tests, which check that it takes every event type
/// and writes apache_avro's bytes.
#[doc(hidden)]
pub fn encode_body_direct(event: &PublishedEvent) -> Option<Vec<u8>> {
    write_direct(prepared(&event.record_name())?, &to_avro(event))
}

fn write_direct(prepared: &Prepared, value: &Value) -> Option<Vec<u8>> {
    let mut body = Vec::with_capacity(256);
    binary::write(value, prepared.schema, &prepared.names, None, &mut body).ok()?;
    Some(body)
}

/// Decodes an Avro binary body written with `writer`, resolved to the current schema of the
/// writer's record (Avro schema resolution: data from older versions reads as the current one),
/// then maps it with [`from_avro`].
pub fn decode_body(writer: &Schema, bytes: &[u8]) -> Result<PublishedEvent> {
    let record_name = match writer {
        Schema::Record(r) => r.name.fullname(None),
        other => {
            return Err(Error::UnusableWriterSchema(format!(
                "expected a record schema, found {:?}",
                apache_avro::schema::SchemaKind::from(other)
            )))
        }
    };
    let reader = catalogue::current_schema(&record_name)
        .ok_or_else(|| Error::UnknownRecord(record_name.clone()))?;
    if std::ptr::eq(writer, reader) {
        return decode_current_body(&record_name, bytes);
    }
    let datum_reader = GenericDatumReader::builder(writer)
        .reader_schema(reader)
        .build()
        .map_err(|source| Error::Undecodable {
            writer: record_name.clone(),
            source,
        })?;
    decode_with(&datum_reader, &record_name, bytes)
}

/// Decodes an Avro binary body written with the current schema of `record_name` (no schema
/// resolution needed: the writer is the reader), then maps it with [`from_avro`].
pub fn decode_current_body(record_name: &str, bytes: &[u8]) -> Result<PublishedEvent> {
    let prepared =
        prepared(record_name).ok_or_else(|| Error::UnknownRecord(record_name.to_owned()))?;
    decode_with(&prepared.reader, record_name, bytes)
}

/// The record whose current schema `writer` is (equal in Avro's Parsing Canonical Form), if
/// it is one: such data decodes with [`decode_current_body`].
pub fn current_record_of(writer: &Schema) -> Option<&'static str> {
    let Schema::Record(r) = writer else {
        return None;
    };
    let record_name = r.name.fullname(None);
    let version = catalogue::current_version(&record_name)?;
    let current = catalogue::current_schema(&record_name)?;
    (current == writer).then_some(version.record_name)
}

fn decode_with(
    reader: &GenericDatumReader<'_>,
    record_name: &str,
    bytes: &[u8],
) -> Result<PublishedEvent> {
    let mut rest = bytes;
    let value = reader
        .read_value(&mut rest)
        .map_err(|source| Error::Undecodable {
            writer: record_name.to_owned(),
            source,
        })?;
    if !rest.is_empty() {
        return Err(Error::BadFrame(format!(
            "{} bytes left over after the {record_name} body",
            rest.len()
        )));
    }
    from_avro(record_name, value)
}

/// A writer and a reader of one record's current schema, with the schema's names resolved.
/// Built once per record: resolving the names per message was about a third of the time
/// spent encoding or decoding an event.
struct Prepared {
    schema: &'static Schema,
    /// The schema's named types, for [`binary::write`].
    names: NamesRef<'static>,
    writer: GenericDatumWriter<'static>,
    reader: GenericDatumReader<'static>,
}

fn prepared(record_name: &str) -> Option<&'static Prepared> {
    PREPARED.get(record_name)
}

/// A current schema that does not resolve is a build defect the crate's tests catch (every
/// record is encoded and decoded by them), so panicking here cannot reach production unnoticed.
static PREPARED: LazyLock<HashMap<&'static str, Prepared>> = LazyLock::new(|| {
    catalogue::current_schemas()
        .map(|(version, schema)| {
            let unusable =
                |e: apache_avro::Error| -> ! { panic!("{} cannot be prepared: {e}", version.path) };
            let prepared = Prepared {
                schema,
                names: ResolvedSchema::try_from(schema)
                    .unwrap_or_else(|e| unusable(e))
                    .get_names()
                    .clone(),
                writer: GenericDatumWriter::builder(schema)
                    .build()
                    .unwrap_or_else(|e| unusable(e)),
                reader: GenericDatumReader::builder(schema)
                    .build()
                    .unwrap_or_else(|e| unusable(e)),
            };
            (version.record_name, prepared)
        })
        .collect()
});

fn known_record(record_name: &str) -> Result<&'static SchemaVersion> {
    catalogue::current_version(record_name)
        .ok_or_else(|| Error::UnknownRecord(record_name.to_owned()))
}

fn envelope_to_avro(e: &EventEnvelope) -> Value {
    Value::Record(vec![
        ("event_id".to_owned(), value::uuid(e.event_id)),
        ("event_type".to_owned(), value::string(&e.event_type)),
        (
            "aggregate_type".to_owned(),
            value::string(&e.aggregate_type),
        ),
        ("aggregate_id".to_owned(), value::string(&e.aggregate_id)),
        ("sequence".to_owned(), value::long_u64(e.sequence)),
        ("global_position".to_owned(), value::long(e.global_position)),
        ("occurred_at".to_owned(), value::timestamp(e.occurred_at)),
        (
            "correlation_id".to_owned(),
            value::opt_string(e.correlation_id.as_deref()),
        ),
        (
            "causation_id".to_owned(),
            value::opt_string(e.causation_id.as_deref()),
        ),
        (
            "traceparent".to_owned(),
            value::opt_string(e.traceparent.as_deref()),
        ),
    ])
}

fn envelope_from_avro(f: &mut Fields) -> Result<EventEnvelope> {
    Ok(EventEnvelope {
        event_id: f.uuid("event_id")?,
        event_type: f.string("event_type")?,
        aggregate_type: f.string("aggregate_type")?,
        aggregate_id: f.string("aggregate_id")?,
        sequence: f.long_u64("sequence")?,
        global_position: f.long("global_position")?,
        occurred_at: f.timestamp("occurred_at")?,
        correlation_id: f.opt_string("correlation_id")?,
        causation_id: f.opt_string("causation_id")?,
        traceparent: f.opt_string("traceparent")?,
    })
}
