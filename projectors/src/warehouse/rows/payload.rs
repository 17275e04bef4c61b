//! `events.payload`: the event's own fields as JSON text, named as in its Avro record (the
//! published contract, not the Rust enum's serde shape); times in epoch millis.

use chaos_schemas::PublishedEvent;

pub(super) fn json(published: &PublishedEvent) -> Result<String, String> {
    let mut record = serde_json::Value::try_from(chaos_schemas::to_avro(published))
        .map_err(|err| format!("event payload is not representable as JSON: {err}"))?;
    // The envelope has its own columns; the payload is the event's own fields.
    if let Some(fields) = record.as_object_mut() {
        fields.remove("envelope");
    }
    Ok(record.to_string())
}
