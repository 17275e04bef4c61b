//! Conversions between Rust values and Avro values at the contract's wire types, and a strict
//! reader for Avro records.
//!
//! Unsigned domain numbers travel as signed Avro `int`/`long`. The domain keeps them far below
//! the signed maximum (mana, damage and levels are small; experience grants are capped), so
//! writing saturates at the maximum instead of failing, and reading rejects negatives.

use std::collections::VecDeque;

use apache_avro::schema::SchemaKind;
use apache_avro::types::Value;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::{Error, Result};

pub(crate) fn string(s: &str) -> Value {
    Value::String(s.to_owned())
}

/// `["null", "string"]`: branch 0 is null, branch 1 the string.
pub(crate) fn opt_string(s: Option<&str>) -> Value {
    match s {
        None => Value::Union(0, Box::new(Value::Null)),
        Some(s) => Value::Union(1, Box::new(string(s))),
    }
}

pub(crate) fn int_u8(n: u8) -> Value {
    Value::Int(n.into())
}

pub(crate) fn int_u32(n: u32) -> Value {
    Value::Int(i32::try_from(n).unwrap_or(i32::MAX))
}

pub(crate) fn long_u64(n: u64) -> Value {
    Value::Long(i64::try_from(n).unwrap_or(i64::MAX))
}

pub(crate) fn long(n: i64) -> Value {
    Value::Long(n)
}

pub(crate) fn uuid(id: Uuid) -> Value {
    Value::Uuid(id)
}

/// `timestamp-millis`: sub-millisecond precision is dropped.
pub(crate) fn timestamp(t: DateTime<Utc>) -> Value {
    Value::TimestampMillis(t.timestamp_millis())
}

pub(crate) fn strings(items: &[String]) -> Value {
    Value::Array(items.iter().map(|s| string(s)).collect())
}

/// A record value of a nested record type (fields in schema order).
pub(crate) fn record(fields: Vec<(&str, Value)>) -> Value {
    Value::Record(
        fields
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect(),
    )
}

/// An array of values (records, typically).
pub(crate) fn array(items: impl IntoIterator<Item = Value>) -> Value {
    Value::Array(items.into_iter().collect())
}

/// `["null", T1, T2, ...]`: `None` is branch 0, `Some((i, v))` is `v` on branch `i` (from 1).
pub(crate) fn opt_union(branch: Option<(u32, Value)>) -> Value {
    match branch {
        None => Value::Union(0, Box::new(Value::Null)),
        Some((index, value)) => Value::Union(index, Box::new(value)),
    }
}

fn kind(value: &Value) -> String {
    format!("{:?}", SchemaKind::from(value))
}

/// The fields of one Avro record, taken one by one by name. Every field of the schema must be
/// taken exactly once, and [`Fields::finish`] rejects any left over, so a value that does not
/// have exactly the reader schema's shape fails with the offending field named.
#[derive(Debug)]
pub(crate) struct Fields {
    record: String,
    /// Fields are taken in schema order, mostly from the front: a deque makes that O(1).
    fields: VecDeque<(String, Value)>,
}

impl Fields {
    /// `record` labels errors: a record name, or a path such as `chaos.character.SkillCast.envelope`.
    pub(crate) fn of(record: &str, value: Value) -> Result<Self> {
        match value {
            Value::Record(fields) => Ok(Self {
                record: record.to_owned(),
                fields: fields.into(),
            }),
            other => Err(Error::field(
                record,
                "(value)",
                format!("expected a record, found {}", kind(&other)),
            )),
        }
    }

    pub(crate) fn record(&self) -> &str {
        &self.record
    }

    fn take(&mut self, name: &str) -> Result<Value> {
        let at = self.fields.iter().position(|(n, _)| n == name);
        match at.and_then(|i| self.fields.remove(i)) {
            Some((_, value)) => Ok(value),
            None => Err(Error::field(&self.record, name, "missing")),
        }
    }

    fn wrong(&self, name: &str, expected: &str, found: &Value) -> Error {
        Error::field(
            &self.record,
            name,
            format!("expected {expected}, found {}", kind(found)),
        )
    }

    /// A nested record, labelled `<this record>.<name>`.
    pub(crate) fn record_field(&mut self, name: &str) -> Result<Fields> {
        let value = self.take(name)?;
        if !matches!(value, Value::Record(_)) {
            return Err(self.wrong(name, "a record", &value));
        }
        Fields::of(&format!("{}.{name}", self.record), value)
    }

    pub(crate) fn string(&mut self, name: &str) -> Result<String> {
        match self.take(name)? {
            Value::String(s) => Ok(s),
            other => Err(self.wrong(name, "a string", &other)),
        }
    }

    pub(crate) fn opt_string(&mut self, name: &str) -> Result<Option<String>> {
        match self.take(name)? {
            Value::Union(_, inner) => match *inner {
                Value::Null => Ok(None),
                Value::String(s) => Ok(Some(s)),
                other => Err(self.wrong(name, "null or a string", &other)),
            },
            other => Err(self.wrong(name, "a union of null and string", &other)),
        }
    }

    pub(crate) fn int_u8(&mut self, name: &str) -> Result<u8> {
        match self.take(name)? {
            Value::Int(n) => u8::try_from(n)
                .map_err(|_| Error::field(&self.record, name, format!("{n} is not in 0..=255"))),
            other => Err(self.wrong(name, "an int", &other)),
        }
    }

    pub(crate) fn int_u32(&mut self, name: &str) -> Result<u32> {
        match self.take(name)? {
            Value::Int(n) => u32::try_from(n)
                .map_err(|_| Error::field(&self.record, name, format!("{n} is negative"))),
            other => Err(self.wrong(name, "an int", &other)),
        }
    }

    pub(crate) fn long_u64(&mut self, name: &str) -> Result<u64> {
        let n = self.long(name)?;
        u64::try_from(n).map_err(|_| Error::field(&self.record, name, format!("{n} is negative")))
    }

    pub(crate) fn long(&mut self, name: &str) -> Result<i64> {
        match self.take(name)? {
            Value::Long(n) => Ok(n),
            other => Err(self.wrong(name, "a long", &other)),
        }
    }

    pub(crate) fn uuid(&mut self, name: &str) -> Result<Uuid> {
        match self.take(name)? {
            Value::Uuid(id) => Ok(id),
            other => Err(self.wrong(name, "a uuid", &other)),
        }
    }

    pub(crate) fn timestamp(&mut self, name: &str) -> Result<DateTime<Utc>> {
        match self.take(name)? {
            Value::TimestampMillis(ms) => DateTime::from_timestamp_millis(ms).ok_or_else(|| {
                Error::field(&self.record, name, format!("{ms} ms is out of range"))
            }),
            other => Err(self.wrong(name, "a timestamp-millis", &other)),
        }
    }

    /// An enum's symbol (resolution has already mapped it to the reader's symbols).
    pub(crate) fn enum_symbol(&mut self, name: &str) -> Result<String> {
        match self.take(name)? {
            Value::Enum(_, symbol) => Ok(symbol),
            other => Err(self.wrong(name, "an enum symbol", &other)),
        }
    }

    pub(crate) fn strings(&mut self, name: &str) -> Result<Vec<String>> {
        match self.take(name)? {
            Value::Array(items) => items
                .into_iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s),
                    other => Err(self.wrong(name, "an array of strings", &other)),
                })
                .collect(),
            other => Err(self.wrong(name, "an array of strings", &other)),
        }
    }

    /// An array of nested records, each labelled `<this record>.<name>[<i>]`.
    pub(crate) fn records(&mut self, name: &str) -> Result<Vec<Fields>> {
        match self.take(name)? {
            Value::Array(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Value::Record(_) => Fields::of(&format!("{}.{name}[{i}]", self.record), item),
                    other => Err(self.wrong(name, "an array of records", &other)),
                })
                .collect(),
            other => Err(self.wrong(name, "an array of records", &other)),
        }
    }

    /// A `["null", Record1, Record2, ...]` union: `None` for null, else the branch index (from
    /// 1, in the reader schema's order) and the record, labelled `<this record>.<name>`.
    pub(crate) fn opt_union_record(&mut self, name: &str) -> Result<Option<(u32, Fields)>> {
        match self.take(name)? {
            Value::Union(index, inner) => match *inner {
                Value::Null => Ok(None),
                Value::Record(fields) => Ok(Some((
                    index,
                    Fields::of(&format!("{}.{name}", self.record), Value::Record(fields))?,
                ))),
                other => Err(self.wrong(name, "null or a record", &other)),
            },
            other => Err(self.wrong(name, "a union of null and records", &other)),
        }
    }

    /// Fails if any field was not taken: the value has a field the schema does not.
    pub(crate) fn finish(self) -> Result<()> {
        match self.fields.front() {
            None => Ok(()),
            Some((name, _)) => Err(Error::field(&self.record, name, "not in the schema")),
        }
    }
}
