//! The Confluent wire format against a schema registry: `0x00`, the schema id (4 bytes, big
//! endian), then the Avro binary body.
//!
//! Producers register the current schema of each record under `TopicRecordNameStrategy`
//! (subject `<topic>-<record full name>`, several record types per topic). Consumers fetch the
//! writer schema by the id in the message and resolve it to our current reader schema, so
//! messages written with any earlier compatible version still decode.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use apache_avro::Schema;
use schema_registry_converter::async_impl::avro::{AvroDecoder, AvroEncoder};
use schema_registry_converter::async_impl::schema_registry::SrSettings;
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::{
    SchemaType, SubjectNameStrategy, SuppliedSchema,
};

use crate::avro::{current_record_of, decode_body, decode_current_body, encode_body};
use crate::catalogue::{self, SchemaVersion};
use crate::envelope::PublishedEvent;
use crate::error::{Error, Result};

/// The first byte of every wire-format message.
pub const MAGIC_BYTE: u8 = 0;

/// Prefixes an Avro body with the wire-format header.
pub fn frame(schema_id: u32, body: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(5 + body.len());
    bytes.push(MAGIC_BYTE);
    bytes.extend_from_slice(&schema_id.to_be_bytes());
    bytes.extend_from_slice(body);
    bytes
}

/// Splits a wire-format message into its schema id and Avro body.
pub fn unframe(bytes: &[u8]) -> Result<(u32, &[u8])> {
    match bytes {
        [MAGIC_BYTE, a, b, c, d, body @ ..] => Ok((u32::from_be_bytes([*a, *b, *c, *d]), body)),
        [] => Err(Error::BadFrame("empty message".to_owned())),
        [magic, ..] if *magic != MAGIC_BYTE => Err(Error::BadFrame(format!(
            "magic byte is {magic:#04x}, expected 0x00"
        ))),
        short => Err(Error::BadFrame(format!(
            "{} bytes is shorter than the 5-byte header",
            short.len()
        ))),
    }
}

/// The subject a record's schemas are registered under on a topic (`TopicRecordNameStrategy`).
pub fn subject(topic: &str, record_name: &str) -> String {
    format!("{topic}-{record_name}")
}

/// Encodes and decodes published events in the Confluent wire format, with a schema registry.
/// Schemas are cached after the first use of each subject or id.
#[derive(Debug)]
pub struct AvroCodec {
    encoder: AvroEncoder,
    decoder: AvroDecoder,
    /// The id registered for each subject this codec has encoded: a registry id never changes
    /// meaning, so a hit skips the encoder's lookup (which needs the whole schema text).
    registered: RwLock<HashMap<String, u32>>,
    /// What each writer schema id seen is: its record, and whether it is that record's
    /// current schema (decoded without schema resolution) or an older version (resolved per
    /// message).
    writers: RwLock<HashMap<u32, Writer>>,
    /// When [`Self::record_of`] last failed to reach the registry: for `lookup_pause` after
    /// that, it answers ids it does not know with that failure at once. Its callers fall
    /// back to the headers; a hung registry would otherwise hold every such message for a
    /// whole request timeout.
    record_lookup_failed: std::sync::Mutex<Option<Instant>>,
    lookup_pause: Duration,
    /// Registrations take turns: two tasks encoding the first event of a subject at once would
    /// both ask the registry to create it, and Apicurio refuses the second (409).
    registering: tokio::sync::Mutex<()>,
}

impl AvroCodec {
    /// How long one registry request may take before it counts as a transient failure.
    pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

    /// A codec for the registry at `registry_url` (e.g. `http://127.0.0.1:8081/apis/ccompat/v7`, Apicurio).
    pub fn new(registry_url: &str) -> Result<Self> {
        let settings = SrSettings::new_builder(registry_url.trim_end_matches('/').to_owned())
            .set_timeout(Self::REQUEST_TIMEOUT)
            .build()
            .map_err(|e| Error::Settings(e.to_string()))?;
        Ok(Self::with_settings(settings))
    }

    /// A codec with fully custom registry settings (several URLs, authentication, proxy).
    pub fn with_settings(settings: SrSettings) -> Self {
        Self {
            encoder: AvroEncoder::new(settings.clone()),
            decoder: AvroDecoder::new(settings),
            registered: RwLock::default(),
            writers: RwLock::default(),
            record_lookup_failed: std::sync::Mutex::default(),
            lookup_pause: Self::RECORD_LOOKUP_PAUSE,
            registering: tokio::sync::Mutex::default(),
        }
    }

    /// How long [`Self::record_of`] leaves the registry alone after failing to reach it: longer
    /// than a request may take ([`Self::REQUEST_TIMEOUT`]).
    pub const RECORD_LOOKUP_PAUSE: Duration = Duration::from_secs(30);

    /// The same codec with another [`Self::RECORD_LOOKUP_PAUSE`] (tests).
    #[must_use]
    pub fn with_record_lookup_pause(mut self, pause: Duration) -> Self {
        self.lookup_pause = pause;
        self
    }

    /// Registers (or finds) the event's current schema under `<topic>-<record name>` and returns
    /// the wire-format message. The envelope's types must be the event's own.
    pub async fn encode(&self, topic: &str, event: &PublishedEvent) -> Result<Vec<u8>> {
        let record_name = event.record_name();
        if event.envelope.event_type != event.event.event_type() {
            return Err(Error::EventTypeMismatch {
                declared: event.envelope.event_type.clone(),
                actual: event.event.event_type().to_owned(),
            });
        }
        if event.envelope.aggregate_type != event.event.aggregate_type() {
            return Err(Error::field(
                &format!("{record_name}.envelope"),
                "aggregate_type",
                format!(
                    "is {:?} but the event belongs to {:?}",
                    event.envelope.aggregate_type,
                    event.event.aggregate_type()
                ),
            ));
        }
        let subject = subject(topic, &record_name);
        if let Some(id) = read(&self.registered).get(&subject) {
            return Ok(frame(*id, &encode_body(event)));
        }
        let current = catalogue::current_version(&record_name)
            .ok_or_else(|| Error::UnknownRecord(record_name.clone()))?;
        let _turn = self.registering.lock().await;
        if let Some(id) = read(&self.registered).get(&subject) {
            return Ok(frame(*id, &encode_body(event)));
        }
        let supplied = SuppliedSchema::new(
            Some(record_name.clone()),
            SchemaType::Avro,
            current.text.to_owned(),
        );
        let strategy =
            SubjectNameStrategy::TopicRecordNameStrategyWithSchema(topic.to_owned(), supplied);
        // Apicurio answers a registration that raced another one storing the same schema text
        // (two codecs registering one record under two subjects at once: seen in CI) with
        // "already exists"; asking again at once succeeds, so the codec asks once more itself.
        let mut asked = 0;
        let registered = loop {
            asked += 1;
            match self
                .encoder
                .get_schema_and_id(&subject, strategy.clone())
                .await
            {
                Ok(registered) => break registered,
                Err(e) => {
                    // Failures are cached by the encoder; drop them so a retry re-asks.
                    self.encoder.remove_errors_from_cache();
                    if asked < 2 && created_concurrently(&e) {
                        continue;
                    }
                    return Err(registration_error(e));
                }
            }
        };
        write(&self.registered).insert(subject, registered.id);
        Ok(frame(registered.id, &encode_body(event)))
    }

    /// Decodes a wire-format message: the writer schema comes from the registry by id and is
    /// resolved to our current schema of the same record.
    ///
    /// [`Error::is_transient`] tells a registry outage (retry) from a poison message (bad
    /// header, unknown schema id, unusable schema, undecodable body, unknown record, wrong
    /// fields), which will never decode and belongs in the dead-letter topic.
    pub async fn decode(&self, bytes: &[u8]) -> Result<PublishedEvent> {
        let (id, body) = unframe(bytes)?;
        let known = read(&self.writers).get(&id).copied();
        if let Some(Writer {
            record: Some(record),
            current: true,
        }) = known
        {
            return decode_current_body(record.record_name, body);
        }
        let writer = self
            .decoder
            .get_schema(id)
            .await
            .map_err(|e| self.lookup_error(id, e))?;
        let known = match known {
            Some(known) => known,
            None => self.learn(id, &writer.parsed),
        };
        match known.record {
            Some(record) if known.current => decode_current_body(record.record_name, body),
            _ => decode_body(&writer.parsed, body),
        }
    }

    /// The record (aggregate and event type) a wire-format message holds, from the schema id
    /// in its header alone: its body is not read. The writer schema is fetched from the
    /// registry once per id, as for [`Self::decode`]. `Ok(None)`: the schema is no record of
    /// the catalogue (decoding refuses it). A consumer skips the events it does not want with
    /// this, without decoding them or reading their headers. After a failure to reach the
    /// registry, an id not known yet fails at once (`RegistryUnavailable`) for
    /// [`Self::RECORD_LOOKUP_PAUSE`]: the caller falls back to the headers meanwhile.
    pub async fn record_of(&self, bytes: &[u8]) -> Result<Option<&'static SchemaVersion>> {
        let (id, _) = unframe(bytes)?;
        if let Some(known) = read(&self.writers).get(&id) {
            return Ok(known.record);
        }
        let failed = *lock(&self.record_lookup_failed);
        if failed.is_some_and(|at| at.elapsed() < self.lookup_pause) {
            return Err(Error::RegistryUnavailable(format!(
                "schema id {id}: a registry lookup failed less than {:?} ago",
                self.lookup_pause
            )));
        }
        match self.decoder.get_schema(id).await {
            Ok(writer) => Ok(self.learn(id, &writer.parsed).record),
            Err(e) => {
                let e = self.lookup_error(id, e);
                if e.is_transient() {
                    *lock(&self.record_lookup_failed) = Some(Instant::now());
                }
                Err(e)
            }
        }
    }

    /// Remembers what writer schema `id` is.
    fn learn(&self, id: u32, writer: &Schema) -> Writer {
        let current = current_record_of(writer);
        let record = match writer {
            Schema::Record(r) => catalogue::current_version(&r.name.fullname(None)),
            _ => None,
        };
        let known = Writer {
            record,
            current: current.is_some(),
        };
        write(&self.writers).insert(id, known);
        known
    }

    fn lookup_error(&self, id: u32, e: SRCError) -> Error {
        if e.retriable {
            return Error::RegistryUnavailable(e.to_string());
        }
        match http_status(&e) {
            Some(404) => Error::UnknownSchemaId {
                id,
                detail: e.to_string(),
            },
            None if UNUSABLE_SCHEMA.iter().any(|m| e.error.contains(m)) => {
                Error::UnusableWriterSchema(format!("schema id {id}: {e}"))
            }
            // Any other failure (5xx, auth, a malformed answer) is the registry's, not the
            // message's. The decoder caches non-retriable failures: drop them so a retry re-asks.
            _ => {
                self.decoder.remove_errors_from_cache();
                Error::RegistryUnavailable(e.to_string())
            }
        }
    }
}

/// What a writer schema id is (see [`AvroCodec::record_of`]).
#[derive(Debug, Clone, Copy)]
struct Writer {
    /// The catalogue's current version of the writer's record, if the catalogue has it.
    record: Option<&'static SchemaVersion>,
    /// The writer is that current version (equal in Parsing Canonical Form).
    current: bool,
}

/// The caches hold plain maps that no panic can leave half-written: a poisoned lock is still
/// good to use.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Messages schema_registry_converter 6 gives when the schema it fetched is not usable Avro.
const UNUSABLE_SCHEMA: [&str; 4] = [
    "failed to parse Avro schema",
    "cant be turned into a Schema",
    "is not supported",
    "problem with reference",
];

/// How Apicurio answers a registration that raced another one creating the same subject (another
/// process, another codec): a 409 like an incompatible schema's, but asking again succeeds.
const CREATED_CONCURRENTLY: &str = "already exists";

fn created_concurrently(e: &SRCError) -> bool {
    http_status(e) == Some(409) && e.to_string().contains(CREATED_CONCURRENTLY)
}

fn registration_error(e: SRCError) -> Error {
    match http_status(&e) {
        _ if e.retriable => Error::RegistryUnavailable(e.to_string()),
        Some(408 | 429 | 500..=599) => Error::RegistryUnavailable(e.to_string()),
        Some(409) if created_concurrently(&e) => Error::RegistryUnavailable(e.to_string()),
        _ => Error::RegistryRejected(e.to_string()),
    }
}

/// The HTTP status of a failed registry call. schema_registry_converter 6 reports it only in
/// its message ("... failed with status 404 Not Found").
fn http_status(e: &SRCError) -> Option<u16> {
    let (_, rest) = e.error.split_once("with status ")?;
    rest.get(..3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let bytes = frame(0x0102_0304, b"body");
        assert_eq!(&bytes[..5], &[0, 1, 2, 3, 4]);
        assert_eq!(unframe(&bytes).unwrap(), (0x0102_0304, &b"body"[..]));
    }

    #[test]
    fn bad_frames_are_poison() {
        for bytes in [&[][..], &[0, 0, 1][..], &[1, 0, 0, 0, 1, 2][..]] {
            let err = unframe(bytes).unwrap_err();
            assert!(matches!(err, Error::BadFrame(_)), "{err}");
            assert!(!err.is_transient());
        }
    }

    #[test]
    fn http_status_is_read_from_the_message() {
        let e = SRCError::new(
            "HTTP request to schema registry failed with status 404 Not Found",
            None,
            false,
        );
        assert_eq!(http_status(&e), Some(404));
        assert_eq!(http_status(&SRCError::new("other", None, false)), None);
    }

    #[test]
    fn registration_failures_are_classified() {
        let status = |s: &str| SRCError::new(&format!("failed with status {s}"), None, false);
        assert!(registration_error(status("503 Service Unavailable")).is_transient());
        assert!(registration_error(status("500 Internal Server Error")).is_transient());
        assert!(!registration_error(status("409 Conflict")).is_transient());
        let raced = SRCError::new(
            "HTTP request to schema registry failed with status 409 Conflict",
            Some(
                "error_code: 409, message: An artifact with ID 't-chaos.wallet.WalletOpened' \
                 in group 'null' already exists."
                    .to_owned(),
            ),
            false,
        );
        assert!(
            registration_error(raced).is_transient(),
            "a registration that raced another is retried"
        );
        assert!(registration_error(SRCError::new("x", None, true)).is_transient());
    }
}
