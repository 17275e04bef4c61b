//! The character sheet: what a client shows of a character. Built only from the events' facts.

use chaos_domain::character::CharacterState;
use chaos_domain::CharacterEvent;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Read-model collection name; part of Redis keys: do not change without a rebuild.
pub const COLLECTION: &str = "character";

/// The character as folded from its events (the domain's own fold: facts only, no rules), plus
/// the read model's identity and freshness. Serialised flat: `{ id, owner, name, ..., updated_at }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CharacterSheet {
    pub id: String,
    #[serde(flatten)]
    pub state: CharacterState,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProjectionError {
    #[error("{event_type} for a character that was never created")]
    NotCreated { event_type: &'static str },
    #[error("CharacterCreated for a character that already exists")]
    AlreadyCreated,
}

/// Folds one event into the sheet, refusing events that cannot follow what the sheet holds.
pub fn apply(
    sheet: Option<CharacterSheet>,
    aggregate_id: &str,
    event: &CharacterEvent,
) -> Result<CharacterSheet, ProjectionError> {
    let updated_at = event.occurred_at();
    match (sheet, event) {
        (None, CharacterEvent::CharacterCreated { .. }) => {
            let state =
                CharacterState::created(event.clone()).ok_or(ProjectionError::NotCreated {
                    event_type: event.type_name(),
                })?;
            Ok(CharacterSheet {
                id: aggregate_id.to_owned(),
                state,
                updated_at,
            })
        }
        (Some(_), CharacterEvent::CharacterCreated { .. }) => Err(ProjectionError::AlreadyCreated),
        (None, other) => Err(ProjectionError::NotCreated {
            event_type: other.type_name(),
        }),
        (Some(mut sheet), _) => {
            sheet.state.apply(event.clone());
            sheet.updated_at = updated_at;
            Ok(sheet)
        }
    }
}

/// The read-model key of a character's sheet under `prefix` and read-model `version` (`v1`):
/// a rebuild writes a new version and the alias switches atomically.
pub fn key(prefix: &str, model_version: &str, aggregate_id: &str) -> String {
    format!("{prefix}{model_version}:{COLLECTION}:{aggregate_id}")
}
