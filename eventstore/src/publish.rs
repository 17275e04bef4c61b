//! How a stored row becomes a published event: the relay (to Kafka) and the store-fed feed
//! (replays from PostgreSQL, the embedded mode) share this mapping, so both paths deliver
//! byte-identical events to the projections.

use std::borrow::Cow;

use chaos_schemas::{AnyEvent, EventEnvelope, PublishedEvent};
use uuid::Uuid;

use crate::StoredEvent;

/// Namespace of event ids. Ids are derived from (aggregate type, id, sequence), so a re-sent
/// event keeps its id and consumers can deduplicate on it: do not change.
const EVENT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6368_616f_735f_776f_726c_645f_6576_7473);

pub fn event_id(aggregate_type: &str, aggregate_id: &str, sequence: i64) -> Uuid {
    Uuid::new_v5(
        &EVENT_ID_NAMESPACE,
        format!("{aggregate_type}/{aggregate_id}/{sequence}").as_bytes(),
    )
}

/// Maps a stored row to its published form. Fails only if the row cannot be understood (an
/// unknown event type or a payload that does not match it), which is a bug to fix, not data to
/// skip.
pub fn to_published(stored: &StoredEvent) -> chaos_schemas::Result<PublishedEvent> {
    let event = AnyEvent::from_stored_json(
        &stored.aggregate_type,
        &stored.event_type,
        &stored.event_version,
        stored.payload.get(),
    )?;
    let meta = stored.meta();
    let occurred_at = meta.occurred_at().unwrap_or_else(|| event.occurred_at());
    Ok(PublishedEvent {
        envelope: EventEnvelope {
            event_id: event_id(
                &stored.aggregate_type,
                &stored.aggregate_id,
                stored.sequence,
            ),
            event_type: stored.event_type.clone(),
            aggregate_type: stored.aggregate_type.clone(),
            aggregate_id: stored.aggregate_id.clone(),
            sequence: u64::try_from(stored.sequence).unwrap_or(0),
            global_position: stored.position.global_position,
            occurred_at,
            correlation_id: meta.correlation_id.map(Cow::into_owned),
            causation_id: meta.causation_id.map(Cow::into_owned),
            traceparent: meta.traceparent.map(Cow::into_owned),
        },
        event,
    })
}
