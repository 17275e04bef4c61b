//! A character's profile document: the public profile (name, class, level, zone) with its
//! history and totals — when it was created, each level reached, the zones visited, casts by
//! skill, experience gained, currency granted and spent, events by type. From the character's
//! events and its wallet's. A MongoDB view (`views::documents`): a document to read whole or
//! query by any field.
//!
//! The two streams arrive with no order between them (a wallet's first grant may come before
//! the character's creation), so the character's part is absent until its creation is applied
//! and the totals count from whichever came first. Event types it does not know (new ones) are
//! counted by type and change nothing else.

use std::collections::BTreeMap;

use chaos_domain::{CharacterEvent, WalletEvent};
use chaos_schemas::{AnyEvent, PublishedEvent};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::view::{read, write, Change, View};

/// The stored name of the view: part of its keys. Do not change without a rebuild.
pub const NAME: &str = "profile";

/// The profile document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProfileDoc {
    pub id: String,
    /// Absent until the character's creation is applied.
    pub character: Option<ProfileCharacter>,
    /// Skill -> casts.
    pub casts_by_skill: BTreeMap<String, u64>,
    pub xp_gained: u64,
    /// Currency -> total granted.
    pub granted: BTreeMap<String, u64>,
    /// Currency -> total spent.
    pub spent: BTreeMap<String, u64>,
    /// Event type -> events, of both streams.
    pub events_by_type: BTreeMap<String, u64>,
    /// The latest event's time.
    pub last_event_at: Option<DateTime<Utc>>,
}

/// The character's part: public, with its history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileCharacter {
    pub name: String,
    pub class: String,
    pub level: u8,
    pub zone: String,
    pub created_at: DateTime<Utc>,
    /// The level it was created at, then every level-up, in order.
    pub level_history: Vec<LevelReached>,
    /// Zone -> visits (its creation's zone counts as one).
    pub zones_visited: BTreeMap<String, ZoneVisits>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelReached {
    pub level: u8,
    pub at: DateTime<Utc>,
    /// The character event that reached it.
    pub sequence: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZoneVisits {
    pub first_at: DateTime<Utc>,
    pub visits: u64,
}

impl ProfileCharacter {
    fn visit(&mut self, zone: &str, at: DateTime<Utc>) {
        self.zone = zone.to_owned();
        self.zones_visited
            .entry(zone.to_owned())
            .or_insert(ZoneVisits {
                first_at: at,
                visits: 0,
            })
            .visits += 1;
    }
}

/// See the module documentation.
#[derive(Debug, Clone, Copy)]
pub struct ProfileView;

fn character(doc: &mut ProfileDoc, event: &CharacterEvent, sequence: u64) -> Result<(), String> {
    let c = match (&mut doc.character, event) {
        (
            None,
            CharacterEvent::CharacterCreated {
                name,
                class,
                level,
                zone,
                created_at,
                ..
            },
        ) => {
            doc.character = Some(ProfileCharacter {
                name: name.to_string(),
                class: class.clone(),
                level: *level,
                zone: zone.clone(),
                created_at: *created_at,
                level_history: vec![LevelReached {
                    level: *level,
                    at: *created_at,
                    sequence,
                }],
                zones_visited: [(
                    zone.clone(),
                    ZoneVisits {
                        first_at: *created_at,
                        visits: 1,
                    },
                )]
                .into(),
            });
            return Ok(());
        }
        (Some(_), CharacterEvent::CharacterCreated { .. }) => {
            return Err("CharacterCreated for a character that already exists".into())
        }
        (None, other) => {
            return Err(format!(
                "{} for a character that was never created",
                chaos_domain::GameEvent::type_name(other)
            ))
        }
        (Some(c), _) => c,
    };
    match event {
        CharacterEvent::SkillCast { skill, .. } => {
            *doc.casts_by_skill.entry(skill.clone()).or_default() += 1;
        }
        CharacterEvent::ExperienceGained { amount, .. } => doc.xp_gained += amount,
        CharacterEvent::LeveledUp {
            level, leveled_at, ..
        } => {
            c.level = *level;
            c.level_history.push(LevelReached {
                level: *level,
                at: *leveled_at,
                sequence,
            });
        }
        CharacterEvent::ZoneEntered {
            to_zone,
            entered_at,
            ..
        } => c.visit(to_zone, *entered_at),
        CharacterEvent::CharacterRespawned {
            from_zone,
            zone,
            respawned_at,
            ..
        } if zone != from_zone => c.visit(zone, *respawned_at),
        // Anything else (combat, items, and types added later) is counted by type only.
        _ => {}
    }
    Ok(())
}

fn wallet(doc: &mut ProfileDoc, event: &WalletEvent) {
    match event {
        WalletEvent::CurrencyGranted {
            currency, amount, ..
        } => *doc.granted.entry(currency.to_string()).or_default() += amount,
        WalletEvent::CurrencySpent {
            currency, amount, ..
        } => *doc.spent.entry(currency.to_string()).or_default() += amount,
        _ => {}
    }
}

impl View for ProfileView {
    fn name(&self) -> &'static str {
        NAME
    }

    fn sources(&self) -> &'static [&'static str] {
        &[
            chaos_domain::character::AGGREGATE_TYPE,
            chaos_domain::wallet::AGGREGATE_TYPE,
        ]
    }

    fn doc_id(&self, event: &PublishedEvent) -> Option<String> {
        // A wallet's id is its character's.
        Some(event.envelope.aggregate_id.clone())
    }

    fn apply(&self, body: Option<&Value>, event: &PublishedEvent) -> Result<Change, String> {
        let mut doc: ProfileDoc = read(body)?.unwrap_or_default();
        doc.id = event.envelope.aggregate_id.clone();
        if let AnyEvent::Character(e) = &event.event {
            character(&mut doc, e, event.envelope.sequence)?;
        } else if let AnyEvent::Wallet(e) = &event.event {
            wallet(&mut doc, e);
        } else {
            return Err(format!(
                "{} events are not in profiles",
                event.event.aggregate_type()
            ));
        }
        *doc.events_by_type
            .entry(event.envelope.event_type.clone())
            .or_default() += 1;
        let at = event.event.occurred_at();
        doc.last_event_at = Some(doc.last_event_at.map_or(at, |last| last.max(at)));
        Ok(Change {
            body: write(&doc)?,
            log: Vec::new(),
        })
    }
}
