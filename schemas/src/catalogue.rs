//! Every Avro schema version of every event, embedded from `schemas/avro/` at build time.
//!
//! The catalogue is append-only: a published version is never edited or removed, because data
//! written with it sits in Kafka forever (infinite retention) and must stay readable. A new
//! version is a new file `<EventType>.v<N+1>.avsc` plus a new line in [`CATALOGUE`]; the
//! compatibility tests then prove the new version reads data written with every older one.

use std::collections::HashMap;
use std::sync::LazyLock;

use apache_avro::Schema;

/// One version of one event's schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaVersion {
    /// Full Avro record name, `chaos.<aggregate>.<EventType>`. Published: do not change.
    pub record_name: &'static str,
    pub aggregate_type: &'static str,
    pub event_type: &'static str,
    /// 1, 2, ...: the order in which versions were published.
    pub version: u32,
    /// The file, relative to the `schemas/` crate directory.
    pub path: &'static str,
    /// The schema as written in the file; this exact text is what gets registered.
    pub text: &'static str,
}

impl SchemaVersion {
    /// Parses the schema text.
    pub fn parse(&self) -> Result<Schema, apache_avro::Error> {
        Schema::parse_str(self.text)
    }
}

macro_rules! avsc {
    ($aggregate:literal, $event:literal, $version:literal) => {
        SchemaVersion {
            record_name: concat!("chaos.", $aggregate, ".", $event),
            aggregate_type: $aggregate,
            event_type: $event,
            version: $version,
            path: concat!("avro/", $aggregate, "/", $event, ".v", $version, ".avsc"),
            text: include_str!(concat!(
                "../avro/", $aggregate, "/", $event, ".v", $version, ".avsc"
            )),
        }
    };
}

/// All schema versions, grouped by record, oldest version first. Append only (see module docs).
pub static CATALOGUE: &[SchemaVersion] = &[
    avsc!("character", "CharacterCreated", 1),
    avsc!("character", "SkillCast", 1),
    avsc!("character", "ExperienceGained", 1),
    avsc!("character", "LeveledUp", 1),
    avsc!("character", "ZoneEntered", 1),
];

/// The full record name of an event type: `chaos.<aggregate>.<EventType>`.
///
/// Published in the registry subjects and in every message: do not change the format.
pub fn record_name(aggregate_type: &str, event_type: &str) -> String {
    format!("chaos.{aggregate_type}.{event_type}")
}

/// Every version of every record, for compatibility tests, the operator CLI and docs.
pub fn catalogue() -> &'static [SchemaVersion] {
    CATALOGUE
}

/// Every version of one record, oldest first (empty if the record is unknown).
pub fn versions(record_name: &str) -> impl Iterator<Item = &'static SchemaVersion> + '_ {
    CATALOGUE
        .iter()
        .filter(move |v| v.record_name == record_name)
}

/// The newest version of a record: what producers write and consumers read into.
pub fn current_version(record_name: &str) -> Option<&'static SchemaVersion> {
    versions(record_name).max_by_key(|v| v.version)
}

/// The parsed newest schema of a record.
pub fn current_schema(record_name: &str) -> Option<&'static Schema> {
    CURRENT.get(record_name)
}

/// Parsed once on first use. A schema file that does not parse is a build defect that the
/// crate's tests catch, so panicking here cannot reach production unnoticed.
static CURRENT: LazyLock<HashMap<&'static str, Schema>> = LazyLock::new(|| {
    let mut current = HashMap::new();
    for v in CATALOGUE {
        if current_version(v.record_name) == Some(v) {
            let schema = v
                .parse()
                .unwrap_or_else(|e| panic!("{} is not a valid Avro schema: {e}", v.path));
            current.insert(v.record_name, schema);
        }
    }
    current
});
