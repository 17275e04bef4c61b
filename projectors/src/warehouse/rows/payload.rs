//! `events.payload`: the event's own fields as JSON text, named as in its Avro record (the
//! published contract, not the Rust enum's serde shape); times in epoch millis.

use chaos_schemas::PublishedEvent;

pub(super) fn json(published: &PublishedEvent) -> Result<String, String> {
    chaos_schemas::fields_json(&published.event)
        .map_err(|err| format!("event payload is not representable as JSON: {err}"))
}
