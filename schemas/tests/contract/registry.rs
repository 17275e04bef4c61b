//! The codec against a real Confluent-compatible schema registry. Runs only when
//! `CHAOS_SCHEMA_REGISTRY_URL` is set (e.g. `http://127.0.0.1:8081/apis/ccompat/v7`, the local Apicurio registry from
//! `deploy/local/`); otherwise it says it was skipped and passes.

use apache_avro::Schema;
use chaos_schemas::{
    current_schema, encode_body, frame, subject, unframe, AnyEvent, AvroCodec, Error,
};
use schema_registry_converter::async_impl::schema_registry::{
    get_schema_by_subject_and_version, post_schema, SrSettings,
};
use schema_registry_converter::schema_registry_common::{SchemaType, SuppliedSchema};

use crate::common::{published_samples, sample_of};

const URL_VAR: &str = "CHAOS_SCHEMA_REGISTRY_URL";

/// Held by each test that talks to the real registry: the local Apicurio registry answers some
/// registrations made concurrently (even under different subjects) with a spurious 409
/// "artifact already exists" (observed 2026-12 with two such tests in parallel), so they take
/// turns.
static REGISTRY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn registry_url() -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().to_owned()),
        _ => {
            println!(
                "skipped: set {URL_VAR} (e.g. http://127.0.0.1:8081/apis/ccompat/v7) to run against a registry"
            );
            None
        }
    }
}

fn fixture_text(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// Deletes this run's subjects (soft, then permanently, as Confluent requires), best effort.
async fn delete_subjects(url: &str, prefix: &str) {
    let client = reqwest::Client::new();
    let Ok(response) = client.get(format!("{url}/subjects")).send().await else {
        return;
    };
    let subjects: Vec<String> = response.json().await.unwrap_or_default();
    for subject in subjects.iter().filter(|s| s.starts_with(prefix)) {
        for query in ["", "?permanent=true"] {
            let _ = client
                .delete(format!("{url}/subjects/{subject}{query}"))
                .send()
                .await;
        }
    }
}

fn supplied(record: &str, text: String) -> SuppliedSchema {
    SuppliedSchema::new(Some(record.to_owned()), SchemaType::Avro, text)
}

#[tokio::test]
async fn codec_round_trips_through_a_real_registry() {
    let Some(url) = registry_url() else { return };
    let _turn = REGISTRY.lock().await;
    let settings = SrSettings::new(url.clone());
    // Fresh subjects every run, so runs never collide with each other or with real topics.
    let topic = format!("chaos.schemastest{}.events", uuid::Uuid::new_v4().simple());
    let producer = AvroCodec::new(&url).unwrap();

    for event in published_samples() {
        let record = event.record_name();
        let bytes = producer.encode(&topic, &event).await.unwrap();
        let (id, body) = unframe(&bytes).unwrap();
        assert_eq!(body, encode_body(&event));

        // Registered under TopicRecordNameStrategy with our schema.
        let registered =
            get_schema_by_subject_and_version(&settings, &subject(&topic, &record), None)
                .await
                .unwrap();
        assert_eq!(registered.id, id, "{record}");
        assert_eq!(
            Schema::parse_str(&registered.schema)
                .unwrap()
                .canonical_form(),
            current_schema(&record).unwrap().canonical_form()
        );

        // A consumer with a cold cache decodes it; encoding again is idempotent.
        let consumer = AvroCodec::new(&url).unwrap();
        assert_eq!(consumer.decode(&bytes).await.unwrap(), event);
        assert_eq!(producer.encode(&topic, &event).await.unwrap(), bytes);
    }

    // A message written by an older writer (without `target`) resolves to the current reader.
    let sample = sample_of("SkillCast");
    let old_text = fixture_text("SkillCast.old-writer-without-target.avsc");
    let old = Schema::parse_str(&old_text).unwrap();
    let old_id = post_schema(
        &settings,
        format!("{topic}-fixture-old-writer"),
        supplied("chaos.character.SkillCast", old_text),
    )
    .await
    .unwrap()
    .id;
    let old_body = apache_avro::writer::datum::GenericDatumWriter::builder(&old)
        .build()
        .and_then(|w| w.write_value_to_vec(chaos_schemas::to_avro(&sample).resolve(&old)?))
        .unwrap();
    let decoded = AvroCodec::new(&url)
        .unwrap()
        .decode(&frame(old_id, &old_body))
        .await
        .unwrap();
    let AnyEvent::Character(chaos_domain::CharacterEvent::SkillCast { target, skill, .. }) =
        decoded.event
    else {
        panic!("not a SkillCast")
    };
    assert_eq!((target, skill.as_str()), (None, "firebolt"));

    // The registry guards the same rule as our tests: an incompatible next version is refused.
    let record = sample.record_name();
    let refused = post_schema(
        &settings,
        subject(&topic, &record),
        supplied(&record, fixture_text("SkillCast.type-change.avsc")),
    )
    .await
    .unwrap_err();
    assert!(!refused.retriable, "{refused}");

    // An id the registry never issued is poison, not an outage.
    let err = producer
        .decode(&frame(i32::MAX as u32, &encode_body(&sample)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::UnknownSchemaId { .. }), "{err}");
    assert!(!err.is_transient());
    delete_subjects(&url, &topic).await;
    println!("ran against {url} with topic {topic}");
}

/// The registry agrees with our compatibility tests: every stored version of every record,
/// registered oldest first under one subject, is accepted by its compatibility rule (BACKWARD
/// in the local registry), so a producer on the newest version can follow one on an older one.
#[tokio::test]
async fn every_version_registers_after_the_ones_before_it() {
    let Some(url) = registry_url() else { return };
    let _turn = REGISTRY.lock().await;
    let settings = SrSettings::new(url.clone());
    let topic = format!(
        "chaos.schemaversions{}.events",
        uuid::Uuid::new_v4().simple()
    );
    for version in chaos_schemas::catalogue::catalogue() {
        let subject = subject(&topic, version.record_name);
        post_schema(
            &settings,
            subject,
            supplied(version.record_name, version.text.to_owned()),
        )
        .await
        .unwrap_or_else(|e| panic!("{} refused after the versions before it: {e}", version.path));
    }
    delete_subjects(&url, &topic).await;
}
