//! The domain events of every aggregate type, as one type for the relay and projectors.

use chaos_domain::character::AGGREGATE_TYPE as CHARACTER;
use chaos_domain::CharacterEvent;
use serde::Deserialize;

use crate::catalogue;
use crate::envelope::current_version_number;
use crate::error::{Error, Result};

/// A domain event of any aggregate type. Grows one variant per aggregate type.
#[derive(Debug, Clone, PartialEq)]
pub enum DomainEvent {
    Character(CharacterEvent),
}

impl DomainEvent {
    /// Rebuilds a domain event from an event store row: its aggregate type, event type and the
    /// cqrs-es JSON payload (the serde form of the aggregate's event enum, externally tagged:
    /// `{"SkillCast": {...}}`).
    pub fn from_stored(
        aggregate_type: &str,
        event_type: &str,
        payload: &serde_json::Value,
    ) -> Result<DomainEvent> {
        match aggregate_type {
            CHARACTER => {
                if !CharacterEvent::TYPES.contains(&event_type) {
                    return Err(Error::UnknownEventType {
                        aggregate_type: aggregate_type.to_owned(),
                        event_type: event_type.to_owned(),
                    });
                }
                let event = CharacterEvent::deserialize(payload).map_err(|source| {
                    Error::StoredPayload {
                        event_type: event_type.to_owned(),
                        source,
                    }
                })?;
                if event.type_name() != event_type {
                    return Err(Error::EventTypeMismatch {
                        declared: event_type.to_owned(),
                        actual: event.type_name().to_owned(),
                    });
                }
                Ok(DomainEvent::Character(event))
            }
            other => Err(Error::UnknownAggregate(other.to_owned())),
        }
    }

    /// The aggregate type (`character`): persisted and part of topic names.
    pub fn aggregate_type(&self) -> &'static str {
        match self {
            Self::Character(_) => CHARACTER,
        }
    }

    /// The event type (`SkillCast`): persisted and published; never changes for a variant.
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::Character(e) => e.type_name(),
        }
    }

    /// The full Avro record name (`chaos.character.SkillCast`).
    pub fn record_name(&self) -> String {
        catalogue::record_name(self.aggregate_type(), self.event_type())
    }

    /// The catalogue version of the schema this event is written with (the newest one).
    pub fn schema_version(&self) -> u32 {
        current_version_number(&self.record_name())
            .expect("every domain event has a schema; the coverage test checks it")
    }
}
