//! What the catalogue knows about any event: its record name and schema version.

use crate::catalogue;
use crate::envelope::current_version_number;
use crate::registry::AnyEvent;

impl AnyEvent {
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
