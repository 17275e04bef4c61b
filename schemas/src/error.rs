//! The crate's error type.
//!
//! Consumers need one decision from an error: retry later (the registry is down or unhealthy) or
//! dead-letter the message (nothing about it will ever decode). [`Error::is_transient`] answers it;
//! every decode error that is not transient is about the message itself.

/// A convenience alias; every fallible function in this crate returns it.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The aggregate type has no events in this contract.
    #[error("unknown aggregate type {0:?}")]
    UnknownAggregate(String),

    /// The event type is not one of the aggregate's events.
    #[error("unknown event type {event_type:?} for aggregate type {aggregate_type:?}")]
    UnknownEventType {
        aggregate_type: String,
        event_type: String,
    },

    /// No schema in the catalogue has this record name.
    #[error("unknown record {0:?}: no schema in the catalogue")]
    UnknownRecord(String),

    /// An event store row whose JSON payload is not the domain event it claims to be.
    #[error("stored {event_type} payload does not become the domain event: {detail}")]
    StoredPayload { event_type: String, detail: String },

    /// The event type named in the metadata (event store row, envelope) is not the event's own.
    #[error("metadata names event type {declared:?} but the event is {actual:?}")]
    EventTypeMismatch { declared: String, actual: String },

    /// An Avro value with a missing, extra or mistyped field; `field` names it.
    #[error("{record}: field `{field}`: {problem}")]
    Field {
        record: String,
        field: String,
        problem: String,
    },

    /// The bytes are not in the Confluent wire format (magic byte 0, 4-byte schema id, body).
    #[error("not in the schema registry wire format: {0}")]
    BadFrame(String),

    /// The registry has no schema under the id the message carries.
    #[error("schema id {id} is unknown to the schema registry: {detail}")]
    UnknownSchemaId { id: u32, detail: String },

    /// The writer schema (from the registry) is not a usable Avro record schema.
    #[error("writer schema is unusable: {0}")]
    UnusableWriterSchema(String),

    /// The Avro body does not decode with its writer schema, or does not resolve to our reader.
    #[error("cannot decode the Avro body written with {writer}: {source}")]
    Undecodable {
        writer: String,
        #[source]
        source: apache_avro::Error,
    },

    /// The registry could not be reached or answered with a transient failure. Retry later.
    #[error("schema registry unavailable: {0}")]
    RegistryUnavailable(String),

    /// The registry refused a request for a reason a retry will not fix (an incompatible schema,
    /// a malformed request, bad credentials).
    #[error("schema registry refused the request: {0}")]
    RegistryRejected(String),

    /// The schema registry settings could not be built.
    #[error("invalid schema registry settings: {0}")]
    Settings(String),
}

impl Error {
    /// True when retrying the same operation later may succeed (the registry is unreachable or
    /// unhealthy). Projectors retry these with backoff; any other error from
    /// [`crate::AvroCodec::decode`] means the message is poison and belongs in the dead-letter topic.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::RegistryUnavailable(_))
    }

    pub(crate) fn field(record: &str, field: &str, problem: impl Into<String>) -> Self {
        Self::Field {
            record: record.to_owned(),
            field: field.to_owned(),
            problem: problem.into(),
        }
    }
}
