use std::sync::Arc;

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use super::{CharacterCommand, CharacterError, CharacterEvent, CharacterState, AGGREGATE_TYPE};
use crate::content::Content;
use crate::ports::{Clock, Dice};

/// The character aggregate: `None` until created.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Character(Option<CharacterState>);

impl Character {
    pub fn state(&self) -> Option<&CharacterState> {
        self.0.as_ref()
    }

    /// Folds events from scratch; what the event store does on load.
    pub fn fold(events: impl IntoIterator<Item = CharacterEvent>) -> Self {
        let mut character = Self::default();
        for event in events {
            character.apply(event);
        }
        character
    }
}

/// What command handling needs from outside: the catalogue, time and dice.
#[derive(Debug, Clone)]
pub struct CharacterServices {
    pub content: Arc<Content>,
    pub clock: Arc<dyn Clock>,
    pub dice: Arc<dyn Dice>,
}

impl Aggregate for Character {
    const TYPE: &'static str = AGGREGATE_TYPE;
    type Command = CharacterCommand;
    type Event = CharacterEvent;
    type Error = CharacterError;
    type Services = CharacterServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let now = services.clock.now();
        for event in self.decide(command, &services.content, now, services.dice.as_ref())? {
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
