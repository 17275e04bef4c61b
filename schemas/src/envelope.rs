//! What travels on a topic: an envelope of metadata around one domain event.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::catalogue;
use crate::registry::AnyEvent;

/// Metadata every published event carries, whatever its aggregate. Mirrors the `chaos.EventEnvelope`
/// record embedded in every schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventEnvelope {
    pub event_id: Uuid,
    /// The event type, equal to the record's short name (`SkillCast`).
    pub event_type: String,
    pub aggregate_type: String,
    /// Also the Kafka message key, so one aggregate's events stay in order on one partition.
    pub aggregate_id: String,
    /// Position in the aggregate's stream, from 1.
    pub sequence: u64,
    /// Position in the event store's gap-free global order.
    pub global_position: i64,
    /// Carried at millisecond precision on the wire (`timestamp-millis`).
    pub occurred_at: DateTime<Utc>,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
    /// W3C trace context (`00-<trace id>-<span id>-<flags>`).
    pub traceparent: Option<String>,
}

/// One message on a `chaos.<aggregate>.events` topic.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishedEvent {
    pub envelope: EventEnvelope,
    pub event: AnyEvent,
}

impl PublishedEvent {
    /// The Kafka message key: the aggregate id.
    pub fn key(&self) -> &str {
        &self.envelope.aggregate_id
    }

    /// The topic this event is published to.
    pub fn topic(&self) -> String {
        crate::topic_for(&self.envelope.aggregate_type)
    }

    /// The Kafka headers the relay sets, as (name, UTF-8 value) pairs; numbers are decimal.
    /// `correlation_id` and `traceparent` are left out when absent.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let e = &self.envelope;
        let mut headers = vec![
            (headers::EVENT_ID, e.event_id.to_string()),
            (headers::EVENT_TYPE, e.event_type.clone()),
            (
                headers::SCHEMA_VERSION,
                self.event.schema_version().to_string(),
            ),
            (headers::AGGREGATE_TYPE, e.aggregate_type.clone()),
            (headers::SEQUENCE, e.sequence.to_string()),
            (headers::GLOBAL_POSITION, e.global_position.to_string()),
        ];
        if let Some(id) = &e.correlation_id {
            headers.push((headers::CORRELATION_ID, id.clone()));
        }
        if let Some(tp) = &e.traceparent {
            headers.push((headers::TRACEPARENT, tp.clone()));
        }
        headers
    }

    /// The full Avro record name of the event (`chaos.character.SkillCast`).
    pub fn record_name(&self) -> String {
        self.event.record_name()
    }
}

/// Kafka header names set on every event message.
///
/// Consumers, analysts' tools and dashboards filter on these names: do not change them. Values
/// are UTF-8 strings; numbers are written in decimal.
pub mod headers {
    /// The event's UUID (`EventEnvelope.event_id`).
    pub const EVENT_ID: &str = "event_id";
    /// The event type (`SkillCast`).
    pub const EVENT_TYPE: &str = "event_type";
    /// The catalogue version of the record's schema the producer wrote (`1`, `2`, ...).
    pub const SCHEMA_VERSION: &str = "schema_version";
    /// The aggregate type (`character`).
    pub const AGGREGATE_TYPE: &str = "aggregate_type";
    /// The event's sequence in its aggregate's stream.
    pub const SEQUENCE: &str = "sequence";
    /// The event's position in the event store's global order.
    pub const GLOBAL_POSITION: &str = "global_position";
    /// The correlation id, when the event has one.
    pub const CORRELATION_ID: &str = "correlation_id";
    /// The W3C trace context, when the event was traced.
    pub const TRACEPARENT: &str = "traceparent";

    /// All header names, for docs and tests.
    pub const ALL: [&str; 8] = [
        EVENT_ID,
        EVENT_TYPE,
        SCHEMA_VERSION,
        AGGREGATE_TYPE,
        SEQUENCE,
        GLOBAL_POSITION,
        CORRELATION_ID,
        TRACEPARENT,
    ];
}

/// The newest catalogue version of a record, if it has one.
pub(crate) fn current_version_number(record_name: &str) -> Option<u32> {
    catalogue::current_version(record_name).map(|v| v.version)
}
