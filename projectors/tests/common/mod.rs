//! What the projectors' integration tests share.

use chaos_domain::ports::LowestRoll;
use chaos_domain::{
    AccountId, Character, CharacterCommand, CharacterName, Content, Ctx, GameAggregate, GameEvent,
};
use chaos_eventstore::sqlite::SqliteEventRepository;
use chrono::{Duration as Span, TimeZone, Utc};
use cqrs_es::persist::{PersistedEventRepository, SerializedEvent};

/// Plays a few characters through the real rules and stores their events.
pub(crate) async fn history(repo: &SqliteEventRepository) -> Vec<String> {
    let content = Content::builtin().unwrap();
    let mut ids = Vec::new();
    for (n, class) in ["mage", "warrior", "cleric"].iter().enumerate() {
        let id = uuid::Uuid::new_v4().to_string();
        let owner = AccountId::from_uuid(uuid::Uuid::from_u128(n as u128 + 1));
        let mut state = Character::default();
        let mut sequence = 0;
        let mut now = Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).unwrap();
        let mut commands = vec![CharacterCommand::Create {
            owner,
            name: CharacterName::parse(&format!("Hero{n}")).unwrap(),
            class: (*class).into(),
        }];
        commands.extend((0..12).map(|_| CharacterCommand::CastSkill {
            actor: owner,
            skill: "strike".into(),
            target: None,
        }));
        commands.push(CharacterCommand::TravelTo {
            actor: owner,
            zone: "starter_meadow".into(),
        });
        for command in commands {
            now += Span::seconds(1);
            let ctx = Ctx {
                content: &content,
                now,
                dice: &LowestRoll,
            };
            let events = state.decide(command, &ctx).unwrap();
            let serialized: Vec<SerializedEvent> = events
                .iter()
                .map(|e| {
                    sequence += 1;
                    SerializedEvent::new(
                        id.clone(),
                        sequence,
                        "character".into(),
                        e.type_name().into(),
                        cqrs_es::DomainEvent::event_version(e),
                        serde_json::to_value(e).unwrap(),
                        serde_json::json!({ "occurred_at": now.to_rfc3339() }),
                    )
                })
                .collect();
            repo.persist::<Character>(&serialized, None).await.unwrap();
            for e in events {
                cqrs_es::Aggregate::apply(&mut state, e);
            }
        }
        ids.push(id);
    }
    ids
}
