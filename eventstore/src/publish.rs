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

/// The id of the event at `sequence` of an aggregate's stream: a version-5 uuid of
/// `<aggregate_type>/<aggregate_id>/<sequence>`, so the id and the stream position name the
/// same event (the warehouse keys its rows by the id alone and refuses an event whose id is not
/// its position's: [`is_event_id`]).
pub fn event_id(aggregate_type: &str, aggregate_id: &str, sequence: i64) -> Uuid {
    use std::io::Write as _;
    // The name is built on the stack when it fits (it nearly always does: ids are uuids), as
    // the relay and every warehouse mapping derive one per event.
    let mut name = [0u8; 128];
    let capacity = name.len();
    let mut rest = &mut name[..];
    if write!(rest, "{aggregate_type}/{aggregate_id}/{sequence}").is_ok() {
        let len = capacity - rest.len();
        return Uuid::new_v5(&EVENT_ID_NAMESPACE, &name[..len]);
    }
    Uuid::new_v5(
        &EVENT_ID_NAMESPACE,
        format!("{aggregate_type}/{aggregate_id}/{sequence}").as_bytes(),
    )
}

/// Whether `id` is the id [`event_id`] derives for that stream position (a sequence beyond
/// `i64` has none).
pub fn is_event_id(id: Uuid, aggregate_type: &str, aggregate_id: &str, sequence: u64) -> bool {
    i64::try_from(sequence).is_ok_and(|s| event_id(aggregate_type, aggregate_id, s) == id)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The id of a name spelled out, as ids were derived before the stack buffer: stored and
    /// published ids must not change.
    fn spelled(aggregate_type: &str, aggregate_id: &str, sequence: i64) -> Uuid {
        Uuid::new_v5(
            &EVENT_ID_NAMESPACE,
            format!("{aggregate_type}/{aggregate_id}/{sequence}").as_bytes(),
        )
    }

    #[test]
    fn ids_are_the_v5_uuids_of_their_stream_positions() {
        let long = "x".repeat(300);
        for (t, id, seq) in [
            ("character", "0b6c6f5e-5d2a-4b8e-9a51-3f0e8c1d2a77", 1),
            ("wallet", "w", i64::MAX),
            ("character", long.as_str(), 42),
            // The name exactly fills the buffer, and one byte more.
            ("t", &"y".repeat(124), 7),
            ("t", &"y".repeat(125), 7),
        ] {
            assert_eq!(event_id(t, id, seq), spelled(t, id, seq), "{t}/{id}/{seq}");
        }
        // A fixed value (Python's uuid.uuid5 of the same namespace and name): the namespace and
        // the name's shape are a published contract.
        assert_eq!(
            event_id("character", "c-1", 2).to_string(),
            "fcb67a13-f99e-55db-bdf2-b9e6530abd75"
        );
    }

    #[test]
    fn an_id_is_recognised_at_its_own_position_only() {
        let id = event_id("character", "c-1", 2);
        assert!(is_event_id(id, "character", "c-1", 2));
        assert!(!is_event_id(id, "character", "c-1", 3));
        assert!(!is_event_id(id, "character", "c-2", 2));
        assert!(!is_event_id(id, "wallet", "c-1", 2));
        assert!(!is_event_id(Uuid::new_v4(), "character", "c-1", 2));
        assert!(!is_event_id(id, "character", "c-1", u64::MAX));
    }
}
