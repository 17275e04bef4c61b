//! The Avro contract of Chaos World's Kafka topics.
//!
//! - [`catalogue`]: every version of every event schema (`schemas/avro/<aggregate>/<EventType>.v<N>.avsc`),
//!   embedded at build time; the newest version of a record is what producers write.
//! - [`registry`]: the one list of aggregates ([`AGGREGATES`]) and [`AnyEvent`], an event of any
//!   of them; [`AnyEvent::from_stored`] builds one from an event store row.
//! - [`EventEnvelope`], [`PublishedEvent`]: what one message carries.
//! - [`to_avro`] / [`from_avro`]: the explicit mapping between domain events and Avro records;
//!   [`encode_body`] / [`decode_body`]: the registry-free Avro binary path (tests, embedded mode);
//!   [`decode_current_body`] when the writer is known to be the current schema
//!   ([`current_record_of`]), which skips schema resolution.
//! - [`AvroCodec`]: the Confluent wire format with a schema registry, for the relay and projectors.
//! - [`headers`]: the Kafka header names; [`topic_for`] and [`dead_letter_topic`]: topic names.
//!
//! `schemas/EVENTS.md` is the human-readable catalogue of topics, keys, records and headers.

mod avro;
mod binary;
pub mod catalogue;
mod character;
mod codec;
mod consistency;
mod envelope;
mod error;
mod event;
pub mod registry;
mod value;
mod wallet;

#[doc(hidden)]
pub use avro::encode_body_direct;
pub use avro::{
    current_record_of, decode_body, decode_current_body, encode_body, fields_json, from_avro,
    to_avro,
};
pub use catalogue::{current_schema, SchemaVersion};
pub use codec::{frame, subject, unframe, AvroCodec, MAGIC_BYTE};
pub use consistency::{ConsistencyToken, MalformedToken};
pub use envelope::{headers, EventEnvelope, PublishedEvent};
pub use error::{Error, Result};
pub use registry::{AggregateInfo, AnyEvent, AGGREGATES};

/// The topic of an aggregate type's events: `chaos.<aggregate>.events`.
///
/// Published and used by every producer, consumer and analyst: do not change the format.
pub fn topic_for(aggregate_type: &str) -> String {
    format!("chaos.{aggregate_type}.events")
}

/// The dead-letter topic of a projection: `chaos.deadletter.<projection>`.
///
/// Operators' tooling and alerts read these topics by name: do not change the format.
pub fn dead_letter_topic(projection: &str) -> String {
    format!("chaos.deadletter.{projection}")
}
