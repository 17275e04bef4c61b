//! The character aggregate's tests: given/when/then per rule (one file per area), golden stored
//! payloads, and property tests of the invariants.

mod combat;
mod inventory;
mod lifecycle;
mod props;
mod robustness;
mod stored;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::test::{AggregateTestExecutor, TestFramework};

use super::*;
use crate::aggregate::{Ctx, GameAggregate, GameServices};
use crate::content::Content;
use crate::ids::{AccountId, CharacterId, CharacterName};
use crate::ports::{Dice, FixedClock, LowestRoll};

pub(super) fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).unwrap()
}

pub(super) fn owner() -> AccountId {
    AccountId::from_uuid(uuid::Uuid::from_u128(1))
}

pub(super) fn stranger() -> AccountId {
    AccountId::from_uuid(uuid::Uuid::from_u128(2))
}

pub(super) fn char_id(n: u128) -> CharacterId {
    CharacterId::from_uuid(uuid::Uuid::from_u128(0xc0de_0000 + n))
}

pub(super) fn content() -> Arc<Content> {
    Arc::new(Content::builtin().unwrap())
}

pub(super) fn services_at(now: DateTime<Utc>) -> GameServices {
    services_with(now, Arc::new(LowestRoll))
}

pub(super) fn services_with(now: DateTime<Utc>, dice: Arc<dyn Dice>) -> GameServices {
    GameServices {
        content: content(),
        clock: Arc::new(FixedClock(now)),
        dice,
    }
}

pub(super) fn given(events: Vec<CharacterEvent>) -> AggregateTestExecutor<Character> {
    TestFramework::<Character>::with(services_at(t0())).given(events)
}

pub(super) fn given_at(
    now: DateTime<Utc>,
    events: Vec<CharacterEvent>,
) -> AggregateTestExecutor<Character> {
    TestFramework::<Character>::with(services_at(now)).given(events)
}

pub(super) fn ctx(content: &Content, now: DateTime<Utc>) -> Ctx<'_> {
    Ctx {
        content,
        now,
        dice: &LowestRoll,
    }
}

/// Dice that land on the given faces in order (clamped to each roll's range), then on the
/// lowest face.
#[derive(Debug, Default)]
pub(super) struct ScriptedDice(Mutex<VecDeque<u32>>);

impl ScriptedDice {
    pub(super) fn new(faces: &[u32]) -> Arc<Self> {
        Arc::new(Self(Mutex::new(faces.iter().copied().collect())))
    }
}

impl Dice for ScriptedDice {
    fn roll(&self, lo: u32, hi: u32) -> u32 {
        self.0
            .lock()
            .unwrap()
            .pop_front()
            .map_or(lo, |face| face.clamp(lo, hi.max(lo)))
    }
}

pub(super) fn created(class: &str) -> CharacterEvent {
    let content = Content::builtin().unwrap();
    let def = &content.classes[class];
    CharacterEvent::CharacterCreated {
        owner: owner(),
        name: CharacterName::parse("Aria").unwrap(),
        class: class.into(),
        level: 1,
        max_hp: def.max_hp(1),
        max_mana: def.max_mana(1),
        zone: "whispering_woods".into(),
        skills: def.starting_skills.clone(),
        created_at: t0(),
    }
}

pub(super) fn cast(skill: &str) -> CharacterCommand {
    CharacterCommand::CastSkill {
        actor: owner(),
        skill: skill.into(),
        target: None,
    }
}

pub(super) fn cast_at(skill: &str, target: TargetRef) -> CharacterCommand {
    CharacterCommand::CastSkill {
        actor: owner(),
        skill: skill.into(),
        target: Some(target),
    }
}

pub(super) fn npc(id: &str) -> TargetRef {
    TargetRef::Npc { npc: id.into() }
}

pub(super) fn entered(to: &str) -> CharacterEvent {
    CharacterEvent::ZoneEntered {
        from_zone: "whispering_woods".into(),
        to_zone: to.into(),
        entered_at: t0(),
    }
}

/// `ItemsAcquired` of one item into an empty bag (or onto `before` of it).
pub(super) fn acquired(item: &str, quantity: u32, before: u32) -> CharacterEvent {
    CharacterEvent::ItemsAcquired {
        items: vec![ItemChange {
            item: item.into(),
            quantity,
            quantity_after: before + quantity,
        }],
        source: "grant:test".into(),
        acquired_at: t0(),
    }
}

/// Events that level a fresh character up to `level` (and its maxima with it).
pub(super) fn leveled_to(class: &str, level: u8) -> Vec<CharacterEvent> {
    let content = Content::builtin().unwrap();
    let character = Character::fold([created(class)]);
    let xp = content.progression.xp_to_reach_level[usize::from(level)];
    if xp == 0 {
        return Vec::new();
    }
    character
        .decide(
            CharacterCommand::GrantExperience {
                amount: xp,
                source: "test".into(),
            },
            &ctx(&content, t0()),
        )
        .unwrap()
}

/// The events `command` produces on the character folded from `history`.
pub(super) fn decide_on(
    history: &[CharacterEvent],
    command: CharacterCommand,
    now: DateTime<Utc>,
    dice: &dyn Dice,
) -> Result<Vec<CharacterEvent>, CharacterError> {
    let content = Content::builtin().unwrap();
    Character::fold(history.iter().cloned()).decide(
        command,
        &Ctx {
            content: &content,
            now,
            dice,
        },
    )
}

pub(super) fn secs(n: i64) -> Duration {
    Duration::seconds(n)
}
