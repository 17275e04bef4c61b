//! What every aggregate of the game is, beyond cqrs-es's [`Aggregate`]: a pure `decide`, typed
//! rule errors with stable codes, versioned events, snapshot-safe state and the cross-aggregate
//! uniqueness it needs. The write side, the relay and the read side are generic over these traits,
//! so an aggregate is its own module plus one registration line (`schemas::registry!`).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use cqrs_es::persist::EventUpcaster;
use cqrs_es::{Aggregate, DomainEvent};

use crate::content::Content;
use crate::ids::AccountId;
use crate::ports::{Clock, Dice};

/// What a decision may consult besides the aggregate's own state: the catalogue, the instant
/// (already cut to the contract's millisecond precision) and the dice.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    pub content: &'a Content,
    pub now: DateTime<Utc>,
    pub dice: &'a dyn Dice,
}

/// The services every aggregate's cqrs-es `handle` receives: the catalogue, time and dice.
#[derive(Debug, Clone)]
pub struct GameServices {
    pub content: Arc<Content>,
    pub clock: Arc<dyn Clock>,
    pub dice: Arc<dyn Dice>,
}

impl GameServices {
    /// The decision context at `now` (cut to milliseconds: events travel as Avro
    /// `timestamp-millis`, so the store and the wire hold the same instants).
    pub fn ctx_at(&self, now: DateTime<Utc>) -> Ctx<'_> {
        use chrono::SubsecRound;
        Ctx {
            content: &self.content,
            now: now.trunc_subsecs(3),
            dice: self.dice.as_ref(),
        }
    }
}

/// One event type of an aggregate and the version its stored payload is written in now.
///
/// `name` is persisted (the `event_type` column), published (Kafka header, Avro record name) and
/// never changes. `version` rises by one whenever the stored payload's shape changes; loading an
/// older version goes through the event's upcasters ([`GameEvent::upcasters`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventType {
    pub name: &'static str,
    pub version: u32,
}

/// An aggregate's events.
///
/// The stored payload is the serde form of the event enum, externally tagged with the event type:
/// `{"SkillCast": {"skill": "fireball", ...}}` (documented per event in `docs/event-store.md`; the
/// golden-file tests in each aggregate pin it). A change to that shape is a new `version` plus an
/// upcaster from the previous one, never a silent edit.
pub trait GameEvent:
    DomainEvent + Clone + PartialEq + std::fmt::Debug + Send + Sync + 'static
{
    /// Every event type of the aggregate with its current stored version.
    const TYPES: &'static [EventType];

    /// The event type name (the enum variant's name).
    fn type_name(&self) -> &'static str;

    /// When the fact happened, by the rules' clock.
    fn occurred_at(&self) -> DateTime<Utc>;

    /// Upcasters that bring older stored payloads to the current version, applied in order.
    fn upcasters() -> Vec<Box<dyn EventUpcaster>> {
        Vec::new()
    }

    /// The current stored version of `event_type`, if it is one of this aggregate's.
    fn current_version(event_type: &str) -> Option<u32> {
        Self::TYPES
            .iter()
            .find(|t| t.name == event_type)
            .map(|t| t.version)
    }
}

/// How a broken rule is answered at the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    /// The aggregate does not exist (HTTP 404).
    NotFound,
    /// The caller may not do this to this aggregate (HTTP 403).
    Forbidden,
    /// The aggregate's state conflicts with the request: it exists already, say (HTTP 409).
    Conflict,
    /// Any other broken game rule (HTTP 422).
    Unprocessable,
}

/// A broken rule. `code()` is published as the problem type `/problems/<code>` that clients match
/// on: never change a code once released.
pub trait RuleError: std::error::Error + Send + Sync + 'static {
    fn code(&self) -> &'static str;
    fn kind(&self) -> RuleKind;
    /// The request field at fault, where there is one.
    fn field(&self) -> Option<&'static str> {
        None
    }
}

/// A value that must be unique across aggregates (a character name, a guild name), claimed by the
/// command service for the aggregate before the events that use it are appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// Persisted: `character-name`, `guild-name`, `username`. Never change one.
    pub scope: &'static str,
    /// The value as the player wrote it; uniqueness ignores ASCII case.
    pub value: String,
}

/// An aggregate of the game.
pub trait GameAggregate:
    Aggregate<Services = GameServices, Event: GameEvent, Error: RuleError>
    + Clone
    + PartialEq
    + std::fmt::Debug
    + 'static
{
    /// Version of this type's serde shape, as stored in snapshots. Raise it whenever a field of
    /// the state changes: snapshots of another version are ignored (the events are folded
    /// instead), never misread.
    const STATE_VERSION: u32;

    /// Validates `command` against the state and the rules, and returns the events recording what
    /// happened. Pure: `ctx` is the only source of time, chance and content.
    fn decide(
        &self,
        command: Self::Command,
        ctx: &Ctx<'_>,
    ) -> Result<Vec<Self::Event>, Self::Error>;

    /// The account that owns the aggregate, once it exists: who may read its private state and
    /// its history.
    fn owner(&self) -> Option<AccountId>;

    /// Whether the aggregate exists (has been created).
    fn exists(&self) -> bool {
        self.owner().is_some()
    }

    /// Values these events claim game-wide (checked and recorded before they are appended).
    fn reservations(_events: &[Self::Event]) -> Vec<Reservation> {
        Vec::new()
    }

    /// Folds events from scratch.
    fn fold(events: impl IntoIterator<Item = Self::Event>) -> Self {
        let mut state = Self::default();
        for event in events {
            state.apply(event);
        }
        state
    }
}

/// A stored event that cannot become a domain event.
#[derive(Debug, thiserror::Error)]
pub enum StoredEventError {
    #[error("{aggregate_type} has no event type {event_type:?}")]
    UnknownEventType {
        aggregate_type: &'static str,
        event_type: String,
    },
    #[error("{event_type} version {version:?} is newer than this build's ({current})")]
    NewerVersion {
        event_type: String,
        version: String,
        current: u32,
    },
    #[error("stored {event_type} v{version} does not deserialize: {source}")]
    Payload {
        event_type: String,
        version: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("metadata names event type {declared:?} but the payload is {actual:?}")]
    TypeMismatch { declared: String, actual: String },
}

/// Rebuilds an event of `A` from its stored form (event type, version, JSON payload): older
/// versions pass through the event's upcasters first. The one way every reader — the command
/// side's loads, the relay, the store-fed replays — turns a row into a domain event (from the
/// payload's text, [`decode_stored_json`]).
pub fn decode_stored<A: GameAggregate>(
    event_type: &str,
    event_version: &str,
    payload: serde_json::Value,
) -> Result<A::Event, StoredEventError> {
    let (stored, current) = versions::<A>(event_type, event_version)?;
    let (payload, version) = upcast::<A>(event_type, event_version, stored < current, payload);
    let event: A::Event =
        serde_json::from_value(payload).map_err(|source| StoredEventError::Payload {
            event_type: event_type.to_owned(),
            version,
            source,
        })?;
    declared_type(event_type, event)
}

/// [`decode_stored`] from the payload's JSON text, as the stores read it: an event at its
/// current version is deserialized straight from the text (no JSON tree in between, the hot
/// path of every feed and load); an older one goes through the upcasters as a tree.
pub fn decode_stored_json<A: GameAggregate>(
    event_type: &str,
    event_version: &str,
    payload: &str,
) -> Result<A::Event, StoredEventError> {
    let (stored, current) = versions::<A>(event_type, event_version)?;
    let payload_error = |source| StoredEventError::Payload {
        event_type: event_type.to_owned(),
        version: event_version.to_owned(),
        source,
    };
    if stored < current {
        let tree = serde_json::from_str(payload).map_err(payload_error)?;
        return decode_stored::<A>(event_type, event_version, tree);
    }
    let event: A::Event = serde_json::from_str(payload).map_err(payload_error)?;
    declared_type(event_type, event)
}

/// The row's stored version and this build's current one, checked: a known event type, not
/// newer than this build knows.
fn versions<A: GameAggregate>(
    event_type: &str,
    event_version: &str,
) -> Result<(u32, u32), StoredEventError> {
    let current = <A::Event as GameEvent>::current_version(event_type).ok_or_else(|| {
        StoredEventError::UnknownEventType {
            aggregate_type: A::TYPE,
            event_type: event_type.to_owned(),
        }
    })?;
    let stored: u32 = event_version.parse().unwrap_or(0);
    if stored > current {
        return Err(StoredEventError::NewerVersion {
            event_type: event_type.to_owned(),
            version: event_version.to_owned(),
            current,
        });
    }
    Ok((stored, current))
}

/// The payload and version after the event's upcasters when the row is `outdated`
/// (unchanged otherwise).
fn upcast<A: GameAggregate>(
    event_type: &str,
    event_version: &str,
    outdated: bool,
    payload: serde_json::Value,
) -> (serde_json::Value, String) {
    use cqrs_es::persist::SerializedEvent;
    if !outdated {
        return (payload, event_version.to_owned());
    }
    let mut serialized = SerializedEvent::new(
        String::new(),
        0,
        A::TYPE.to_owned(),
        event_type.to_owned(),
        event_version.to_owned(),
        payload,
        serde_json::Value::Null,
    );
    for upcaster in <A::Event as GameEvent>::upcasters() {
        if upcaster.can_upcast(&serialized.event_type, &serialized.event_version) {
            serialized = upcaster.upcast(serialized);
        }
    }
    (serialized.payload, serialized.event_version)
}

/// `event` if it is of the type its row declares.
fn declared_type<E: GameEvent>(event_type: &str, event: E) -> Result<E, StoredEventError> {
    if event.type_name() != event_type {
        return Err(StoredEventError::TypeMismatch {
            declared: event_type.to_owned(),
            actual: event.type_name().to_owned(),
        });
    }
    Ok(event)
}

/// The stored payload of `event` (what cqrs-es would write): the externally tagged serde form.
pub fn encode_stored<E: GameEvent>(event: &E) -> serde_json::Value {
    serde_json::to_value(event).unwrap_or(serde_json::Value::Null)
}

/// [`encode_stored`] as the JSON text the store keeps, written straight from the event: the same
/// JSON value, its keys in the event's field order; the write path skips the tree in between.
pub fn encode_stored_text<E: GameEvent>(event: &E) -> String {
    serde_json::to_string(event).unwrap_or_else(|_| String::from("null"))
}
