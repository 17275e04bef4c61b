use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use super::{CharacterCommand, CharacterError, CharacterEvent, CharacterState, AGGREGATE_TYPE};
use crate::aggregate::{Ctx, GameAggregate, GameServices, Reservation};
use crate::ids::AccountId;

/// The character aggregate: `None` until created.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Character(Option<CharacterState>);

impl Character {
    pub fn state(&self) -> Option<&CharacterState> {
        self.0.as_ref()
    }
}

/// The scope of character names in the reservation table: persisted, do not change.
pub const NAME_SCOPE: &str = "character-name";

impl GameAggregate for Character {
    /// 1: `Option<CharacterState>` as of the generic spine (2026-11).
    /// 2: + hp_as_of, dead_since, bag, equipment, encounter, recent_hits (player core, 2026-12).
    const STATE_VERSION: u32 = 2;

    fn decide(
        &self,
        command: CharacterCommand,
        ctx: &Ctx<'_>,
    ) -> Result<Vec<CharacterEvent>, CharacterError> {
        self.decide_at(command, ctx)
    }

    fn owner(&self) -> Option<AccountId> {
        self.0.as_ref().map(|s| s.owner)
    }

    /// Names are unique game-wide, ignoring case.
    fn reservations(events: &[CharacterEvent]) -> Vec<Reservation> {
        events
            .iter()
            .filter_map(|e| match e {
                CharacterEvent::CharacterCreated { name, .. } => Some(Reservation {
                    scope: NAME_SCOPE,
                    value: name.as_str().to_owned(),
                }),
                _ => None,
            })
            .collect()
    }
}

impl Aggregate for Character {
    const TYPE: &'static str = AGGREGATE_TYPE;
    type Command = CharacterCommand;
    type Event = CharacterEvent;
    type Error = CharacterError;
    type Services = GameServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let ctx = services.ctx_at(services.clock.now());
        for event in self.decide(command, &ctx)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match &mut self.0 {
            Some(state) => state.apply(event),
            None => self.0 = CharacterState::created(event),
        }
    }
}
