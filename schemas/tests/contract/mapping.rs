//! Domain events <-> Avro records: coverage, round trips, strictness, stored payloads.

use apache_avro::schema::Schema;
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use chaos_schemas::{
    catalogue, current_schema, dead_letter_topic, decode_body, encode_body, encode_body_direct,
    fields_json, from_avro, headers, to_avro, topic_for, AnyEvent, Error, PublishedEvent,
    AGGREGATES,
};
use proptest::prelude::*;

use crate::common::{published_samples, sample_of, t0};
use crate::strategies::{any_event, published_event};

fn schema_of(event: &PublishedEvent) -> &'static Schema {
    current_schema(&event.record_name()).expect("every event has a current schema")
}

fn record_fields(value: &Value) -> &[(String, Value)] {
    match value {
        Value::Record(fields) => fields,
        other => panic!("not a record: {other:?}"),
    }
}

fn schema_field_names(schema: &Schema) -> Vec<String> {
    match schema {
        Schema::Record(r) => r.fields.iter().map(|f| f.name.clone()).collect(),
        other => panic!("not a record schema: {other:?}"),
    }
}

/// Replaces one field of the top-level record (or of `envelope` with a dotted path).
fn with_field(value: Value, path: &str, new: Option<Value>) -> Value {
    let Value::Record(mut fields) = value else {
        panic!("not a record")
    };
    if let Some((outer, inner)) = path.split_once('.') {
        let i = fields.iter().position(|(n, _)| n == outer).unwrap();
        let old = fields.remove(i).1;
        fields.insert(i, (outer.to_owned(), with_field(old, inner, new)));
        return Value::Record(fields);
    }
    match (fields.iter().position(|(n, _)| n == path), new) {
        (Some(i), Some(v)) => fields[i].1 = v,
        (Some(i), None) => {
            fields.remove(i);
        }
        (None, Some(v)) => fields.push((path.to_owned(), v)),
        (None, None) => panic!("no field {path}"),
    }
    Value::Record(fields)
}

/// The registry is the source of truth: every event type of every registered aggregate has a
/// current schema, a topic, and a sample in this suite (so every mapping test covers it).
#[test]
fn every_registered_event_type_has_a_schema_a_topic_and_a_sample() {
    let mut registered = 0;
    for aggregate in AGGREGATES {
        assert_eq!(
            aggregate.topic(),
            format!("chaos.{}.events", aggregate.name),
            "{}: topic",
            aggregate.name
        );
        for event_type in aggregate.events {
            registered += 1;
            let record = catalogue::record_name(aggregate.name, event_type.name);
            assert!(
                catalogue::current_version(&record).is_some(),
                "{record} has no schema: add schemas/avro/{}/{}.v1.avsc",
                aggregate.name,
                event_type.name
            );
            let sample = sample_of(event_type.name);
            assert_eq!(sample.record_name(), record);
            assert_eq!(
                sample.event.schema_version(),
                catalogue::current_version(&record).unwrap().version
            );
        }
    }
    assert_eq!(published_samples().len(), registered);
}

#[test]
fn every_sample_maps_to_its_record_and_back_unchanged() {
    for event in published_samples() {
        let record = event.record_name();
        let value = to_avro(&event);
        assert!(
            value.validate(schema_of(&event)),
            "{record} does not validate"
        );
        // The value has exactly the schema's fields, in the schema's order.
        let names: Vec<_> = record_fields(&value)
            .iter()
            .map(|(n, _)| n.clone())
            .collect();
        assert_eq!(names, schema_field_names(schema_of(&event)), "{record}");
        assert_eq!(from_avro(&record, value).unwrap(), event, "{record}");

        let bytes = encode_body(&event);
        assert_eq!(
            decode_body(schema_of(&event), &bytes).unwrap(),
            event,
            "{record}"
        );
    }
}

/// What apache_avro's own writer makes of the event's value.
fn generic_body(event: &PublishedEvent) -> Vec<u8> {
    GenericDatumWriter::builder(schema_of(event))
        .build()
        .and_then(|w| w.write_value_to_vec(to_avro(event)))
        .expect("the value matches its schema")
}

#[test]
fn the_direct_writer_takes_every_event_type_and_writes_apache_avros_bytes() {
    for event in published_samples() {
        let direct = encode_body_direct(&event)
            .unwrap_or_else(|| panic!("{} is left to apache_avro", event.record_name()));
        assert_eq!(direct, generic_body(&event), "{}", event.record_name());
    }
}

#[test]
fn to_avro_output_resolves_against_the_schema() {
    for event in published_samples() {
        let schema = schema_of(&event);
        let value = to_avro(&event);
        assert_eq!(value.clone().resolve(schema).unwrap(), value);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_event_round_trips(event in published_event()) {
        let record = event.record_name();
        let value = to_avro(&event);
        prop_assert!(value.validate(schema_of(&event)));
        prop_assert_eq!(&from_avro(&record, value).unwrap(), &event);
        let bytes = encode_body(&event);
        prop_assert_eq!(&bytes, &generic_body(&event));
        prop_assert_eq!(&decode_body(schema_of(&event), &bytes).unwrap(), &event);
    }
}

#[test]
fn timestamps_travel_at_millisecond_precision() {
    let mut event = sample_of("ZoneEntered");
    event.envelope.occurred_at = t0() + chrono::Duration::microseconds(1_234_567);
    let back = from_avro(&event.record_name(), to_avro(&event)).unwrap();
    assert_eq!(
        back.envelope.occurred_at,
        t0() + chrono::Duration::milliseconds(1_234)
    );
}

#[test]
fn a_missing_field_is_named() {
    let event = sample_of("SkillCast");
    let record = event.record_name();
    for (path, field) in [
        ("mana_cost", "mana_cost"),
        ("envelope.sequence", "sequence"),
    ] {
        let value = with_field(to_avro(&event), path, None);
        match from_avro(&record, value) {
            Err(Error::Field {
                field: f, problem, ..
            }) => {
                assert_eq!(f, field);
                assert_eq!(problem, "missing");
            }
            other => panic!("{path}: {other:?}"),
        }
    }
}

#[test]
fn a_mistyped_field_is_named() {
    let event = sample_of("SkillCast");
    let record = event.record_name();
    let cases = [
        ("skill", Value::Int(3)),
        ("target", Value::String("bare, not a union".into())),
        ("mana_cost", Value::Int(-1)),
        ("cast_at", Value::Long(5)),
        ("envelope.event_id", Value::String("not-a-uuid".into())),
    ];
    for (path, bad) in cases {
        let value = with_field(to_avro(&event), path, Some(bad));
        let err = from_avro(&record, value).unwrap_err();
        let field = path.rsplit('.').next().unwrap();
        assert!(
            matches!(&err, Error::Field { field: f, .. } if f == field),
            "{path}: {err}"
        );
        assert!(err.to_string().contains(field), "{err}");
    }
}

#[test]
fn an_extra_field_is_rejected() {
    let event = sample_of("ZoneEntered");
    let value = with_field(to_avro(&event), "surprise", Some(Value::Boolean(true)));
    let err = from_avro(&event.record_name(), value).unwrap_err();
    assert!(err.to_string().contains("surprise"), "{err}");
}

#[test]
fn invalid_domain_values_are_rejected_with_the_field() {
    let event = sample_of("CharacterCreated");
    let record = event.record_name();
    for (field, bad) in [("owner", "not-a-uuid"), ("name", "9lives")] {
        let value = with_field(to_avro(&event), field, Some(Value::String(bad.into())));
        let err = from_avro(&record, value).unwrap_err();
        assert!(
            matches!(&err, Error::Field { field: f, .. } if f == field),
            "{err}"
        );
    }
    let value = with_field(to_avro(&event), "level", Some(Value::Int(256)));
    assert!(from_avro(&record, value).is_err());
}

#[test]
fn the_envelope_must_agree_with_the_record() {
    let event = sample_of("ZoneEntered");
    let value = with_field(
        to_avro(&event),
        "envelope.event_type",
        Some(Value::String("SkillCast".into())),
    );
    assert!(matches!(
        from_avro(&event.record_name(), value),
        Err(Error::EventTypeMismatch { .. })
    ));
    let value = with_field(
        to_avro(&event),
        "envelope.aggregate_type",
        Some(Value::String("guild".into())),
    );
    assert!(from_avro(&event.record_name(), value).is_err());
    // A record that is not in the catalogue.
    assert!(matches!(
        from_avro("chaos.character.Teleported", to_avro(&event)),
        Err(Error::UnknownRecord(_))
    ));
    // Another record's value under this record's name.
    let err = from_avro("chaos.character.SkillCast", to_avro(&event)).unwrap_err();
    assert!(matches!(err, Error::Field { .. }), "{err}");
}

#[test]
fn decode_body_rejects_trailing_and_truncated_bytes() {
    let event = sample_of("SkillCast");
    let schema = schema_of(&event);
    let mut bytes = encode_body(&event);
    bytes.push(0);
    assert!(matches!(
        decode_body(schema, &bytes),
        Err(Error::BadFrame(_))
    ));
    bytes.truncate(bytes.len() - 4);
    let err = decode_body(schema, &bytes).unwrap_err();
    assert!(matches!(err, Error::Undecodable { .. }), "{err}");
    assert!(!err.is_transient());
}

/// An event as the store keeps it.
struct Stored {
    /// What the command path writes (`encode_stored_text`).
    text: String,
    /// The stored value (`encode_stored`, the externally tagged serde form).
    value: serde_json::Value,
    /// Its stored `event_version`.
    version: String,
}

fn stored(event: &AnyEvent) -> Stored {
    fn of<E: chaos_domain::GameEvent>(e: &E) -> Stored {
        Stored {
            text: chaos_domain::encode_stored_text(e),
            value: chaos_domain::encode_stored(e),
            version: cqrs_es::DomainEvent::event_version(e),
        }
    }
    match event {
        AnyEvent::Character(e) => of(e),
        AnyEvent::Wallet(e) => of(e),
    }
}

#[test]
fn stored_payloads_are_the_externally_tagged_serde_form() {
    for sample in published_samples() {
        let Stored {
            value: payload,
            version,
            ..
        } = stored(&sample.event);
        let event_type = sample.event.event_type();
        assert!(payload.get(event_type).is_some(), "externally tagged");
        let back = AnyEvent::from_stored(
            sample.event.aggregate_type(),
            event_type,
            &version,
            &payload,
        )
        .unwrap();
        assert_eq!(back, sample.event);
    }
    let payload = serde_json::json!({
        "ZoneEntered": {"from_zone": "a", "to_zone": "b", "entered_at": "2026-11-21T12:00:00Z"}
    });
    let event = AnyEvent::from_stored("character", "ZoneEntered", "1", &payload).unwrap();
    assert_eq!(event.record_name(), "chaos.character.ZoneEntered");
    assert_eq!(event.event_type(), "ZoneEntered");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The command path writes each event straight to text (`encode_stored_text`): the same
    /// JSON as the stored value (its keys in the event's field order, which JSON leaves free),
    /// and it reads back as the event.
    #[test]
    fn stored_text_is_the_stored_value(event in any_event()) {
        let Stored {
            text,
            value: tree,
            version,
        } = stored(&event);
        let payload: serde_json::Value = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(&payload, &tree);
        let back = AnyEvent::from_stored(event.aggregate_type(), event.event_type(), &version, &payload)
            .unwrap();
        prop_assert_eq!(back, event);
    }
}

#[test]
fn stored_payloads_that_lie_are_rejected() {
    let payload = serde_json::json!({
        "ZoneEntered": {"from_zone": "a", "to_zone": "b", "entered_at": "2026-11-21T12:00:00Z"}
    });
    assert!(matches!(
        AnyEvent::from_stored("character", "SkillCast", "1", &payload),
        Err(Error::EventTypeMismatch { .. })
    ));
    assert!(matches!(
        AnyEvent::from_stored("guild", "ZoneEntered", "1", &payload),
        Err(Error::UnknownAggregate(_))
    ));
    assert!(matches!(
        AnyEvent::from_stored("character", "Teleported", "1", &payload),
        Err(Error::UnknownEventType { .. })
    ));
    let broken = serde_json::json!({"ZoneEntered": {"from_zone": "a"}});
    assert!(matches!(
        AnyEvent::from_stored("character", "ZoneEntered", "1", &broken),
        Err(Error::StoredPayload { .. })
    ));
}

#[test]
fn topic_and_header_names_are_the_published_ones() {
    assert_eq!(topic_for("character"), "chaos.character.events");
    assert_eq!(dead_letter_topic("redis"), "chaos.deadletter.redis");
    assert_eq!(
        headers::ALL,
        [
            "event_id",
            "event_type",
            "schema_version",
            "aggregate_type",
            "sequence",
            "global_position",
            "correlation_id",
            "traceparent"
        ]
    );
    let event = sample_of("SkillCast");
    assert_eq!(event.topic(), "chaos.character.events");
    assert_eq!(event.key(), event.envelope.aggregate_id);
    let h = event.headers();
    let get = |name: &str| h.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str());
    assert_eq!(get(headers::EVENT_TYPE), Some("SkillCast"));
    let current = catalogue::current_version("chaos.character.SkillCast")
        .unwrap()
        .version
        .to_string();
    assert_eq!(get(headers::SCHEMA_VERSION), Some(current.as_str()));
    assert_eq!(get(headers::SEQUENCE), Some("2"));
    assert_eq!(get(headers::GLOBAL_POSITION), Some("1002"));
    assert_eq!(get(headers::CORRELATION_ID), Some("corr-1"));
    let mut bare = event.clone();
    bare.envelope.correlation_id = None;
    bare.envelope.traceparent = None;
    assert_eq!(bare.headers().len(), 6);
}

/// Nested records (`ItemChange` in an array, `NpcHit` in a union) are read as strictly as the
/// top level: a missing or extra field is named with its path.
#[test]
fn nested_records_are_strict_too() {
    let event = sample_of("ItemsAcquired");
    let record = event.record_name();
    let Value::Record(mut fields) = to_avro(&event) else {
        panic!("not a record")
    };
    let items = fields.iter_mut().find(|(n, _)| n == "items").unwrap();
    let Value::Array(changes) = &mut items.1 else {
        panic!("not an array")
    };
    let Value::Record(first) = &mut changes[0] else {
        panic!("not a record")
    };
    first.retain(|(n, _)| n != "quantity_after");
    let err = from_avro(&record, Value::Record(fields)).unwrap_err();
    assert!(
        matches!(&err, Error::Field { record: r, field, .. } if r.ends_with(".items[0]") && field == "quantity_after"),
        "{err}"
    );

    let event = sample_of("SkillCast");
    let value = with_field(
        to_avro(&event),
        "hit",
        Some(Value::Union(
            1,
            Box::new(Value::Record(vec![
                ("npc".into(), Value::String("wolf".into())),
                ("hp_before".into(), Value::Int(60)),
                ("damage".into(), Value::Int(21)),
                ("hp_after".into(), Value::Int(39)),
                ("critical".into(), Value::Boolean(true)),
            ])),
        )),
    );
    let err = from_avro(&event.record_name(), value).unwrap_err();
    assert!(err.to_string().contains("critical"), "{err}");
}

/// The warehouse's payload text: the Avro record's own fields as JSON, in schema order, the
/// same values as converting the whole record and dropping its envelope.
#[test]
fn fields_json_is_the_record_without_its_envelope() {
    for event in published_samples() {
        let text = fields_json(&event.event).unwrap();
        // Exactly the text of apache_avro's JSON conversion, field by field.
        let Value::Record(own_fields) = to_avro(&event) else {
            panic!("not a record")
        };
        let converted = own_fields
            .into_iter()
            .skip(1) // the envelope
            .map(|(name, value)| {
                let json = serde_json::Value::try_from(value).unwrap();
                format!("{}:{json}", serde_json::Value::from(name))
            })
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(text, format!("{{{converted}}}"), "{}", event.record_name());
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut record = serde_json::Value::try_from(to_avro(&event)).unwrap();
        let fields = record.as_object_mut().unwrap();
        fields.remove("envelope");
        assert_eq!(&parsed, &record, "{}", event.record_name());
        // Schema order: the first own field of the record comes first.
        let Schema::Record(schema) = schema_of(&event) else {
            panic!("not a record schema")
        };
        let first = &schema.fields[1].name;
        assert!(text.starts_with(&format!("{{\"{first}\":")), "{text}");
    }
}
