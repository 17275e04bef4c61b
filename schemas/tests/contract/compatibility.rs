//! Backward compatibility: the current schema of every record reads data written with every
//! stored version of it. Proved twice, independently: apache_avro's schema compatibility
//! checker, and an actual datum written with the old schema and read with the new one.
//! The fixtures under `tests/fixtures/` prove the machinery tells compatible changes from
//! incompatible ones.

use apache_avro::reader::datum::GenericDatumReader;
use std::collections::HashMap;

use apache_avro::schema::{Name, Schema, UuidSchema};
use apache_avro::schema_compatibility::{Compatibility, SchemaCompatibility};
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use chaos_domain::CharacterEvent;
use chaos_schemas::{
    catalogue, current_record_of, current_schema, decode_body, decode_current_body, encode_body,
    to_avro, AnyEvent, Error, PublishedEvent,
};

use crate::common::sample_of;

fn fixture(name: &str) -> Schema {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    Schema::parse_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The checker's verdict on reading data written with `old` using `new`.
fn checker_verdict(old: &Schema, new: &Schema) -> Result<(), String> {
    match SchemaCompatibility::can_read(old, new) {
        Ok(Compatibility::Full) => Ok(()),
        Ok(Compatibility::Partial) => Err("only partially compatible".to_owned()),
        Err(e) => Err(e.to_string()),
    }
}

fn write(schema: &Schema, value: Value) -> Vec<u8> {
    GenericDatumWriter::builder(schema)
        .build()
        .and_then(|w| w.write_value_to_vec(value))
        .expect("the datum matches its writer schema")
}

fn read(writer: &Schema, reader: &Schema, bytes: &[u8]) -> Result<Value, String> {
    let value = GenericDatumReader::builder(writer)
        .reader_schema(reader)
        .build()
        .and_then(|r| r.read_value(&mut &bytes[..]))
        .map_err(|e| e.to_string())?;
    if value.validate(reader) {
        Ok(value)
    } else {
        Err("the resolved value does not validate against the reader".to_owned())
    }
}

/// A datum for any schema: every field filled, unions on their last (non-null) branch, arrays
/// and maps with one element, so resolution exercises every field.
fn sample_value(schema: &Schema) -> Value {
    sample_value_in(schema, &mut HashMap::new())
}

/// `sample_value`, resolving references to named types defined earlier in the same schema.
fn sample_value_in(schema: &Schema, named: &mut HashMap<Name, Schema>) -> Value {
    match schema {
        Schema::Null => Value::Null,
        Schema::Boolean => Value::Boolean(true),
        Schema::Int => Value::Int(7),
        Schema::Long => Value::Long(7),
        Schema::Float => Value::Float(1.5),
        Schema::Double => Value::Double(1.5),
        Schema::Bytes => Value::Bytes(vec![1, 2]),
        Schema::String => Value::String("sample".into()),
        Schema::Uuid(UuidSchema::String) => Value::Uuid(uuid::Uuid::from_u128(7)),
        Schema::TimestampMillis => Value::TimestampMillis(1_700_000_000_000),
        Schema::Array(a) => Value::Array(vec![sample_value_in(&a.items, named)]),
        Schema::Map(m) => Value::Map([("k".to_owned(), sample_value_in(&m.types, named))].into()),
        Schema::Union(u) => {
            let last = u.variants().len() - 1;
            Value::Union(
                last as u32,
                Box::new(sample_value_in(&u.variants()[last], named)),
            )
        }
        Schema::Record(r) => {
            named.insert(r.name.clone(), schema.clone());
            Value::Record(
                r.fields
                    .iter()
                    .map(|f| (f.name.clone(), sample_value_in(&f.schema, named)))
                    .collect(),
            )
        }
        Schema::Ref { name } => {
            let target = named
                .get(name)
                .cloned()
                .unwrap_or_else(|| panic!("{name:?} is referenced before it is defined"));
            sample_value_in(&target, named)
        }
        Schema::Enum(e) => Value::Enum(0, e.symbols[0].clone()),
        other => panic!("extend sample_value for {other:?}"),
    }
}

/// Reads a generic datum written with `old` using `new`.
fn datum_verdict(old: &Schema, new: &Schema) -> Result<(), String> {
    read(old, new, &write(old, sample_value(old))).map(drop)
}

fn check_backward(old: &Schema, new: &Schema) -> Result<(), String> {
    checker_verdict(old, new).map_err(|e| format!("checker: {e}"))?;
    datum_verdict(old, new).map_err(|e| format!("datum: {e}"))
}

#[test]
fn the_current_schema_reads_every_stored_version() {
    for current in catalogue::catalogue()
        .iter()
        .filter(|v| catalogue::current_version(v.record_name) == Some(*v))
    {
        let new = current_schema(current.record_name).unwrap();
        // Includes the current version itself, so the machinery runs on every record today.
        for old_version in catalogue::versions(current.record_name) {
            let old = old_version.parse().unwrap();
            check_backward(&old, new).unwrap_or_else(|e| {
                panic!("{} cannot read {}: {e}", current.path, old_version.path)
            });

            // A realistic datum too, through the full decode path: the current sample narrowed
            // to the old schema's fields (possible whenever the old schema only lacks fields).
            if let Ok(old_datum) = to_avro(&sample_of(current.event_type)).resolve(&old) {
                let decoded = decode_body(&old, &write(&old, old_datum))
                    .unwrap_or_else(|e| panic!("{}: {e}", old_version.path));
                assert_eq!(decoded.envelope, sample_of(current.event_type).envelope);
            }
        }
    }
}

#[test]
fn a_new_optional_field_with_a_default_is_compatible() {
    let v1 = current_schema("chaos.character.SkillCast").unwrap();
    let next = fixture("SkillCast.new-optional-field.avsc");
    check_backward(v1, &next).unwrap();
    // The value read from v1 data gets the default.
    let bytes = write(v1, to_avro(&sample_of("SkillCast")));
    let Value::Record(fields) = read(v1, &next, &bytes).unwrap() else {
        panic!("not a record")
    };
    let critical = fields.iter().find(|(n, _)| n == "critical").unwrap();
    assert_eq!(critical.1, Value::Union(0, Box::new(Value::Null)));
}

#[test]
fn a_new_field_without_a_default_is_detected() {
    let v1 = current_schema("chaos.character.SkillCast").unwrap();
    let next = fixture("SkillCast.new-field-without-default.avsc");
    assert!(checker_verdict(v1, &next).is_err(), "the checker missed it");
    assert!(
        datum_verdict(v1, &next).is_err(),
        "the datum read missed it"
    );
    assert!(check_backward(v1, &next).is_err());
}

#[test]
fn a_type_change_is_detected() {
    let v1 = current_schema("chaos.character.SkillCast").unwrap();
    let next = fixture("SkillCast.type-change.avsc");
    assert!(checker_verdict(v1, &next).is_err(), "the checker missed it");
    assert!(
        datum_verdict(v1, &next).is_err(),
        "the datum read missed it"
    );
}

#[test]
fn older_writers_decode_into_the_current_event() {
    let sample = sample_of("SkillCast");

    // A writer without the optional `target`: the reader fills in the default (None).
    let old = fixture("SkillCast.old-writer-without-target.avsc");
    check_backward(&old, current_schema("chaos.character.SkillCast").unwrap()).unwrap();
    let bytes = write(&old, to_avro(&sample).resolve(&old).unwrap());
    let decoded = decode_body(&old, &bytes).unwrap();
    // Neither the target nor the typed hit (v2) was written: both read as their defaults.
    let expected = without_hit(&sample, true);
    assert_eq!(decoded, expected);

    // A writer with a field the current version dropped: the reader skips it. (The fixture is
    // a v1 writer: it has no `hit`.)
    let old = fixture("SkillCast.old-writer-extra-field.avsc");
    let Value::Record(mut fields) = to_avro(&sample) else {
        panic!("not a record")
    };
    fields.retain(|(name, _)| name != "hit");
    fields.push(("critical".to_owned(), Value::Boolean(true)));
    let bytes = write(&old, Value::Record(fields));
    assert_eq!(
        decode_body(&old, &bytes).unwrap(),
        without_hit(&sample, false)
    );
}

/// `sample` (a `SkillCast`) as a v1 writer could have published it: no `hit`, and without
/// `target` too if `drop_target`.
fn without_hit(sample: &PublishedEvent, drop_target: bool) -> PublishedEvent {
    let mut expected = sample.clone();
    if let AnyEvent::Character(CharacterEvent::SkillCast { target, hit, .. }) = &mut expected.event
    {
        *hit = None;
        if drop_target {
            *target = None;
        }
    }
    expected
}

/// `SkillCast` v2 added the typed `hit`: every cast published as v1 reads as v2 with no hit.
#[test]
fn a_skill_cast_published_as_v1_reads_as_v2_without_a_hit() {
    let v1 = catalogue::versions("chaos.character.SkillCast")
        .find(|v| v.version == 1)
        .unwrap()
        .parse()
        .unwrap();
    let v2 = current_schema("chaos.character.SkillCast").unwrap();
    check_backward(&v1, v2).unwrap();
    let sample = sample_of("SkillCast");
    let bytes = write(&v1, to_avro(&sample).resolve(&v1).unwrap());
    assert_eq!(
        decode_body(&v1, &bytes).unwrap(),
        without_hit(&sample, false)
    );
}

#[test]
fn an_incompatible_writer_is_undecodable_not_a_panic() {
    let writer = fixture("SkillCast.type-change.avsc");
    let bytes = write(&writer, sample_value(&writer));
    let err = decode_body(&writer, &bytes).unwrap_err();
    assert!(matches!(err, Error::Undecodable { .. }), "{err}");
    assert!(!err.is_transient());
}

/// The codec decodes data from a writer that is a record's current schema without schema
/// resolution: a writer counts as current only if it is (in canonical form) exactly the
/// record's newest version, parsed from the text the registry would hand back.
#[test]
fn only_the_newest_version_counts_as_the_current_writer() {
    for version in catalogue::catalogue() {
        let parsed = version.parse().unwrap();
        let newest = catalogue::current_version(version.record_name).unwrap();
        let expected = (version == newest).then_some(version.record_name);
        assert_eq!(current_record_of(&parsed), expected, "{}", version.path);
    }
    assert_eq!(
        current_record_of(&fixture("SkillCast.old-writer-without-target.avsc")),
        None
    );
}

/// Both decoding paths give the same event for data written with the current schema.
#[test]
fn the_current_writer_path_decodes_like_the_resolving_one() {
    for event in crate::common::published_samples() {
        let record_name = event.record_name();
        let bytes = encode_body(&event);
        let fresh = catalogue::current_version(&record_name)
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(decode_body(&fresh, &bytes).unwrap(), event, "{record_name}");
        assert_eq!(
            decode_current_body(&record_name, &bytes).unwrap(),
            event,
            "{record_name}"
        );
    }
    assert!(matches!(
        decode_current_body("chaos.character.NoSuchEvent", &[]),
        Err(Error::UnknownRecord(_))
    ));
}
