//! A direct Avro binary writer for values already shaped like their schema: record fields in
//! schema order, unions with their branch, enums with their index (what [`crate::to_avro`]
//! builds).
//!
//! apache_avro's `GenericDatumWriter` validates the whole value against the schema first, then
//! encodes it looking each record's fields up by name in a hash map it builds per record: in the
//! relay that was two thirds of the time spent encoding an event. This writer walks the schema
//! and the value together once, checking as it goes that each value is of its schema's kind and
//! each record field its schema's name. Anything else ([`Mismatch`]) is left to apache_avro's
//! writer, which encodes the shapes this one does not take (a `null` not wrapped in its union, a
//! string for an enum symbol) or says what is wrong. The bytes are the same either way: the
//! contract tests compare both writers on every event type.

use apache_avro::schema::{NamesRef, NamespaceRef, Schema, UuidSchema};
use apache_avro::types::Value;

/// The value is not in the exact shape this writer takes for its schema.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Mismatch;

/// Appends the Avro binary encoding of `value`, written with `schema`, to `out`. `names`
/// resolves the schema's named references. On `Err`, `out` holds a partial encoding: discard it.
pub(crate) fn write(
    value: &Value,
    schema: &Schema,
    names: &NamesRef<'_>,
    namespace: NamespaceRef<'_>,
    out: &mut Vec<u8>,
) -> Result<(), Mismatch> {
    match (schema, value) {
        (Schema::Ref { name }, _) => {
            let resolved = names
                .get(name.fully_qualified_name(namespace).as_ref())
                .ok_or(Mismatch)?;
            write(value, resolved, names, namespace, out)
        }
        (Schema::Null, Value::Null) => Ok(()),
        (Schema::Boolean, Value::Boolean(b)) => {
            out.push(u8::from(*b));
            Ok(())
        }
        (Schema::Int, Value::Int(n)) | (Schema::Date, Value::Date(n)) => {
            long(i64::from(*n), out);
            Ok(())
        }
        (Schema::Long, Value::Long(n))
        | (Schema::TimestampMillis, Value::TimestampMillis(n))
        | (Schema::TimestampMicros, Value::TimestampMicros(n)) => {
            long(*n, out);
            Ok(())
        }
        (Schema::Float, Value::Float(x)) => {
            out.extend_from_slice(&x.to_le_bytes());
            Ok(())
        }
        (Schema::Double, Value::Double(x)) => {
            out.extend_from_slice(&x.to_le_bytes());
            Ok(())
        }
        (Schema::String, Value::String(s)) => {
            bytes(s.as_bytes(), out);
            Ok(())
        }
        (Schema::Bytes, Value::Bytes(b)) => {
            bytes(b, out);
            Ok(())
        }
        (Schema::Uuid(UuidSchema::String), Value::Uuid(id)) => {
            let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
            bytes(id.hyphenated().encode_lower(&mut text).as_bytes(), out);
            Ok(())
        }
        (Schema::Enum(e), Value::Enum(index, symbol)) => {
            let index = *index as usize;
            if e.symbols.get(index) != Some(symbol) {
                return Err(Mismatch);
            }
            long(index as i64, out);
            Ok(())
        }
        (Schema::Union(u), Value::Union(index, inner)) => {
            let branch = u.variants().get(*index as usize).ok_or(Mismatch)?;
            long(i64::from(*index), out);
            write(inner, branch, names, namespace, out)
        }
        (Schema::Array(a), Value::Array(items)) => {
            if !items.is_empty() {
                long(items.len() as i64, out);
                for item in items {
                    write(item, &a.items, names, namespace, out)?;
                }
            }
            out.push(0);
            Ok(())
        }
        (Schema::Record(r), Value::Record(fields)) => {
            if fields.len() != r.fields.len() {
                return Err(Mismatch);
            }
            let namespace = r.name.namespace().or(namespace);
            for (field, (name, value)) in r.fields.iter().zip(fields) {
                if field.name != *name {
                    return Err(Mismatch);
                }
                write(value, &field.schema, names, namespace, out)?;
            }
            Ok(())
        }
        _ => Err(Mismatch),
    }
}

/// Avro's `long` (and `int`): zig-zag, then a little-endian base-128 varint.
fn long(n: i64, out: &mut Vec<u8>) {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// Avro's `bytes` and `string`: the length as a `long`, then the bytes.
fn bytes(b: &[u8], out: &mut Vec<u8>) {
    long(b.len() as i64, out);
    out.extend_from_slice(b);
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use apache_avro::schema::ResolvedSchema;
    use apache_avro::writer::datum::GenericDatumWriter;

    use super::*;

    const SCHEMA: &str = r#"{
      "type": "record", "name": "Outer", "namespace": "test.binary",
      "fields": [
        {"name": "flag", "type": "boolean"},
        {"name": "small", "type": "int"},
        {"name": "big", "type": "long"},
        {"name": "ratio", "type": "double"},
        {"name": "text", "type": "string"},
        {"name": "id", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["a", "b", "c"]}},
        {"name": "maybe", "type": ["null", "string"]},
        {"name": "list", "type": {"type": "array", "items": {
          "type": "record", "name": "Inner", "fields": [
            {"name": "n", "type": "int"}, {"name": "k", "type": "Kind"}
          ]}}},
        {"name": "again", "type": ["null", "Inner"]}
      ]
    }"#;

    fn schema() -> Schema {
        Schema::parse_str(SCHEMA).unwrap()
    }

    fn inner(n: i32, k: u32) -> Value {
        let symbol = ["a", "b", "c"][k as usize].to_owned();
        Value::Record(vec![
            ("n".into(), Value::Int(n)),
            ("k".into(), Value::Enum(k, symbol)),
        ])
    }

    fn outer(list: Vec<Value>, maybe: Option<&str>, again: Option<Value>) -> Value {
        Value::Record(vec![
            ("flag".into(), Value::Boolean(true)),
            ("small".into(), Value::Int(-64)),
            ("big".into(), Value::Long(i64::MIN)),
            ("ratio".into(), Value::Double(-0.25)),
            ("text".into(), Value::String("héllo".into())),
            ("id".into(), Value::Uuid(uuid::Uuid::from_u128(0xfeed_beef))),
            ("at".into(), Value::TimestampMillis(1_764_633_600_123)),
            ("kind".into(), Value::Enum(2, "c".into())),
            (
                "maybe".into(),
                match maybe {
                    None => Value::Union(0, Box::new(Value::Null)),
                    Some(s) => Value::Union(1, Box::new(Value::String(s.into()))),
                },
            ),
            ("list".into(), Value::Array(list)),
            (
                "again".into(),
                match again {
                    None => Value::Union(0, Box::new(Value::Null)),
                    Some(v) => Value::Union(1, Box::new(v)),
                },
            ),
        ])
    }

    fn direct(schema: &Schema, value: &Value) -> Result<Vec<u8>, Mismatch> {
        let resolved = ResolvedSchema::try_from(schema).unwrap();
        let names: HashMap<_, _> = resolved.get_names().clone();
        let mut out = Vec::new();
        write(value, schema, &names, None, &mut out).map(|()| out)
    }

    fn generic(schema: &Schema, value: Value) -> Vec<u8> {
        GenericDatumWriter::builder(schema)
            .build()
            .unwrap()
            .write_value_to_vec(value)
            .unwrap()
    }

    #[test]
    fn writes_the_same_bytes_as_apache_avro() {
        let schema = schema();
        let many: Vec<Value> = (0..200)
            .map(|i| inner(i * 1_000 - 70_000, (i % 3) as u32))
            .collect();
        for value in [
            outer(Vec::new(), None, None),
            outer(vec![inner(1, 0)], Some(""), Some(inner(i32::MAX, 1))),
            outer(
                many,
                Some("a longer text with ünïcode"),
                Some(inner(i32::MIN, 2)),
            ),
        ] {
            assert_eq!(direct(&schema, &value).unwrap(), generic(&schema, value));
        }
    }

    #[test]
    fn leaves_other_shapes_to_apache_avro() {
        let schema = schema();
        let fields = |value: Value| match value {
            Value::Record(fields) => fields,
            _ => unreachable!(),
        };
        let with = |index: usize, replacement: Value| {
            let mut f = fields(outer(Vec::new(), None, None));
            f[index].1 = replacement;
            Value::Record(f)
        };
        // A long where the schema says int, an unwrapped null, a string for an enum symbol, an
        // enum whose index and symbol disagree, a union branch the schema lacks.
        for (index, value) in [
            (1, Value::Long(1)),
            (8, Value::Null),
            (7, Value::String("c".into())),
            (7, Value::Enum(1, "c".into())),
            (8, Value::Union(2, Box::new(Value::Null))),
        ] {
            assert_eq!(direct(&schema, &with(index, value)), Err(Mismatch));
        }
        // Fields out of schema order, and a field missing.
        let mut swapped = fields(outer(Vec::new(), None, None));
        swapped.swap(0, 1);
        assert_eq!(direct(&schema, &Value::Record(swapped)), Err(Mismatch));
        let mut short = fields(outer(Vec::new(), None, None));
        short.pop();
        assert_eq!(direct(&schema, &Value::Record(short)), Err(Mismatch));
    }
}
