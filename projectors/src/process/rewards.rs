//! `rewards`: the game's own grants. A created character gets a wallet (its id is the
//! character's); a level-up grants the gold its event carries, once per level.

use chaos_domain::{CharacterEvent, CharacterId, Currency, Wallet, WalletCommand};
use chaos_schemas::{AnyEvent, PublishedEvent};

use super::{ProcessManager, Step};

/// See the module documentation.
#[derive(Debug, Clone, Copy)]
pub struct Rewards;

impl ProcessManager for Rewards {
    fn name(&self) -> &'static str {
        "rewards"
    }

    fn sources(&self) -> &'static [&'static str] {
        &[chaos_domain::character::AGGREGATE_TYPE]
    }

    fn event_types(&self) -> &'static [&'static str] {
        &["CharacterCreated", "LeveledUp"]
    }

    fn react(&self, event: &PublishedEvent) -> Vec<Step> {
        let id = &event.envelope.aggregate_id;
        match &event.event {
            AnyEvent::Character(CharacterEvent::CharacterCreated { owner, .. }) => {
                let Ok(character) = CharacterId::parse(id) else {
                    return Vec::new();
                };
                vec![Step::command::<Wallet>(
                    id.clone(),
                    WalletCommand::Open {
                        owner: *owner,
                        character,
                    },
                )]
            }
            AnyEvent::Character(CharacterEvent::LeveledUp {
                level, gold_reward, ..
            }) if *gold_reward > 0 => vec![Step::command::<Wallet>(
                id.clone(),
                WalletCommand::Grant {
                    currency: Currency::Gold,
                    amount: *gold_reward,
                    source: "level-up".into(),
                    // One grant per level: the wallet refuses a second one with this reference.
                    reference: format!("levelup:{level}"),
                },
            )],
            _ => Vec::new(),
        }
    }
}
