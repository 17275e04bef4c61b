//! The catalogue matches the files, and every schema follows the contract's conventions.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chaos_schemas::catalogue::{self, CATALOGUE};
use serde_json::Value as Json;

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn avsc_files(dir: &Path, found: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            avsc_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "avsc") {
            let rel = path.strip_prefix(crate_dir()).unwrap();
            found.insert(rel.to_string_lossy().into_owned());
        }
    }
}

#[test]
fn every_schema_file_is_listed_and_every_entry_is_a_file() {
    let mut on_disk = BTreeSet::new();
    avsc_files(&crate_dir().join("avro"), &mut on_disk);
    let listed: BTreeSet<String> = CATALOGUE.iter().map(|v| v.path.to_owned()).collect();
    assert_eq!(
        on_disk, listed,
        "schemas/avro and catalogue::CATALOGUE disagree"
    );
    for v in CATALOGUE {
        let text = std::fs::read_to_string(crate_dir().join(v.path)).unwrap();
        assert_eq!(text, v.text, "{}", v.path);
    }
}

#[test]
fn versions_run_from_one_without_gaps() {
    let mut by_record: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    for v in CATALOGUE {
        by_record.entry(v.record_name).or_default().push(v.version);
    }
    for (record, versions) in by_record {
        let expected: Vec<u32> = (1..=versions.len() as u32).collect();
        assert_eq!(
            versions, expected,
            "{record}: list versions oldest first, from 1"
        );
        let current = catalogue::current_version(record).unwrap();
        assert_eq!(current.version, versions.len() as u32);
        assert!(catalogue::current_schema(record).is_some());
    }
}

#[test]
fn every_schema_is_named_after_its_file_and_its_event() {
    for v in CATALOGUE {
        let schema = v.parse().unwrap_or_else(|e| panic!("{}: {e}", v.path));
        let apache_avro::Schema::Record(record) = &schema else {
            panic!("{} is not a record", v.path)
        };
        assert_eq!(record.name.fullname(None), v.record_name, "{}", v.path);
        assert_eq!(
            record.name.namespace(),
            Some(&*format!("chaos.{}", v.aggregate_type))
        );
        assert_eq!(
            record.fields[0].name, "envelope",
            "{}: envelope comes first",
            v.path
        );
        let aggregate = chaos_schemas::registry::aggregate(v.aggregate_type)
            .unwrap_or_else(|| panic!("{}: unknown aggregate type {}", v.path, v.aggregate_type));
        assert!(
            aggregate.events.iter().any(|e| e.name == v.event_type),
            "{}: not an event type of {}",
            v.path,
            aggregate.name
        );
    }
}

fn json(text: &str) -> Json {
    serde_json::from_str(text).unwrap()
}

/// Every record and every field carries a non-empty "doc".
fn assert_documented(record: &Json, path: &str) {
    let has_doc = |j: &Json| {
        j.get("doc")
            .and_then(Json::as_str)
            .is_some_and(|d| !d.is_empty())
    };
    assert!(has_doc(record), "{path}: record has no doc");
    for field in record["fields"].as_array().unwrap() {
        let name = field["name"].as_str().unwrap();
        assert!(has_doc(field), "{path}: field {name} has no doc");
        if field["type"].get("type").and_then(Json::as_str) == Some("record") {
            assert_documented(&field["type"], &format!("{path}.{name}"));
        }
    }
}

#[test]
fn every_record_and_field_is_documented() {
    for v in CATALOGUE {
        assert_documented(&json(v.text), v.path);
    }
}

#[test]
fn the_envelope_is_identical_in_every_schema() {
    let envelopes: Vec<(&str, Json)> = CATALOGUE
        .iter()
        .map(|v| (v.path, json(v.text)["fields"][0]["type"].clone()))
        .collect();
    let (first_path, first) = &envelopes[0];
    assert_eq!(first["name"], "EventEnvelope");
    assert_eq!(first["namespace"], "chaos");
    let names: Vec<&str> = first["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "event_id",
            "event_type",
            "aggregate_type",
            "aggregate_id",
            "sequence",
            "global_position",
            "occurred_at",
            "correlation_id",
            "causation_id",
            "traceparent"
        ]
    );
    for (path, envelope) in &envelopes {
        assert_eq!(envelope, first, "{path} differs from {first_path}");
    }
}

#[test]
fn events_md_describes_every_record_field_and_header() {
    let doc = std::fs::read_to_string(crate_dir().join("EVENTS.md")).unwrap();
    for aggregate in chaos_schemas::AGGREGATES {
        let heading = format!(
            "## Aggregate `{}` — topic `{}`",
            aggregate.name,
            aggregate.topic()
        );
        assert!(doc.contains(&heading), "EVENTS.md lacks {heading}");
        assert!(
            doc.contains(&format!(
                "| `{}` | `{}` |",
                aggregate.topic(),
                aggregate.name
            )),
            "EVENTS.md: the topic table lacks {}",
            aggregate.topic()
        );
    }
    for v in CATALOGUE {
        let current = catalogue::current_version(v.record_name).unwrap();
        // One section per record, about its current version; older versions are linked from it.
        let heading = format!("### `{}` (v{}", v.record_name, current.version);
        assert!(doc.contains(&heading), "EVENTS.md lacks {heading}");
        let section = &doc[doc.find(&heading).unwrap()..];
        let section = &section[..section[4..].find("\n#").map_or(section.len(), |i| i + 4)];
        let file = v.path.rsplit('/').next().unwrap();
        assert!(
            section.contains(file),
            "EVENTS.md: the {} section does not link {file}",
            v.record_name
        );
        if v.version != current.version {
            continue;
        }
        for field in json(v.text)["fields"].as_array().unwrap().iter().skip(1) {
            let name = field["name"].as_str().unwrap();
            assert!(
                section.contains(&format!("| `{name}` |")),
                "EVENTS.md: {} lacks field {name}",
                v.record_name
            );
        }
    }
    for header in chaos_schemas::headers::ALL {
        assert!(
            doc.contains(&format!("| `{header}` |")),
            "EVENTS.md lacks header {header}"
        );
    }
}
