//! The aggregate registry: the one list of the game's aggregates. Topics, the relay's topic
//! table, metric label pre-initialisation, the projectors' subscriptions, the contract suites and
//! the event catalogue checks all derive from [`AGGREGATES`] and [`AnyEvent`].
//!
//! Adding an aggregate is one line in the `aggregates!` invocation below, after its domain module
//! (`chaos_domain::<aggregate>`), its `.avsc` files (`schemas/avro/<aggregate>/`) and its field
//! mapping (`schemas/src/<aggregate>.rs`, an `AvroMapping` impl) exist. See
//! `docs/adding-an-aggregate.md`.

use apache_avro::types::Value;
use chaos_domain::{EventType, GameAggregate, GameEvent};
use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::value::Fields;

/// One aggregate type as the registry knows it.
#[derive(Debug, Clone, Copy)]
pub struct AggregateInfo {
    /// The aggregate type (`character`): persisted, part of topic names, never changes.
    pub name: &'static str,
    /// Its event types and their stored versions.
    pub events: &'static [EventType],
}

impl AggregateInfo {
    /// `chaos.<aggregate>.events`.
    pub fn topic(&self) -> String {
        crate::topic_for(self.name)
    }
}

/// An aggregate's events <-> the fields of their `chaos.<aggregate>.*` Avro records, written by
/// hand against the `.avsc` files: the schemas are the contract, and a change to a Rust enum must
/// not silently change what is published.
pub(crate) trait AvroMapping: Sized {
    /// The event's own fields, in schema order (after `envelope`).
    fn to_fields(&self) -> Vec<(&'static str, Value)>;
    /// Takes the event's own fields out of `f` (the envelope is already taken).
    fn from_fields(event_type: &str, f: &mut Fields) -> Result<Self>;
}

/// Looks up an aggregate by type name.
pub fn aggregate(name: &str) -> Option<&'static AggregateInfo> {
    AGGREGATES.iter().find(|a| a.name == name)
}

/// Every topic of the registry's aggregates.
pub fn topics() -> Vec<String> {
    AGGREGATES.iter().map(AggregateInfo::topic).collect()
}

macro_rules! aggregates {
    ($($variant:ident($event:ty) => $aggregate:ty),* $(,)?) => {
        // Each listed event type is its aggregate's own.
        $(
            const _: fn() = || {
                fn same<A: cqrs_es::Aggregate<Event = E>, E>() {}
                same::<$aggregate, $event>();
            };
        )*

        /// The registered aggregates, in registration order.
        pub static AGGREGATES: &[AggregateInfo] = &[$(
            AggregateInfo {
                name: <$aggregate as cqrs_es::Aggregate>::TYPE,
                events: <<$aggregate as cqrs_es::Aggregate>::Event as GameEvent>::TYPES,
            },
        )*];

        /// A domain event of any registered aggregate, as the relay, the projectors and the
        /// process managers handle it. Grows one variant per aggregate (by the registry).
        #[derive(Debug, Clone, PartialEq)]
        pub enum AnyEvent {
            $($variant($event),)*
        }

        $(
            impl From<$event> for AnyEvent {
                fn from(event: $event) -> Self {
                    Self::$variant(event)
                }
            }
        )*

        impl AnyEvent {
            /// The aggregate type (`character`): persisted and part of topic names.
            pub fn aggregate_type(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => <$aggregate as cqrs_es::Aggregate>::TYPE,)*
                }
            }

            /// The event type (`SkillCast`): persisted and published; never changes.
            pub fn event_type(&self) -> &'static str {
                match self {
                    $(Self::$variant(e) => e.type_name(),)*
                }
            }

            /// When the fact happened, by the rules' clock.
            pub fn occurred_at(&self) -> DateTime<Utc> {
                match self {
                    $(Self::$variant(e) => e.occurred_at(),)*
                }
            }

            /// Rebuilds a domain event from an event store row: aggregate type, event type,
            /// stored version and the JSON payload (older versions go through the aggregate's
            /// upcasters).
            pub fn from_stored(
                aggregate_type: &str,
                event_type: &str,
                event_version: &str,
                payload: &serde_json::Value,
            ) -> Result<AnyEvent> {
                $(
                    if aggregate_type == <$aggregate as cqrs_es::Aggregate>::TYPE {
                        return stored::<$aggregate>(event_type, event_version, payload)
                            .map(Self::$variant);
                    }
                )*
                Err(Error::UnknownAggregate(aggregate_type.to_owned()))
            }

            /// [`Self::from_stored`] from the payload's JSON text, as the stores read it (no
            /// JSON tree in between for an event at its current version).
            pub fn from_stored_json(
                aggregate_type: &str,
                event_type: &str,
                event_version: &str,
                payload: &str,
            ) -> Result<AnyEvent> {
                $(
                    if aggregate_type == <$aggregate as cqrs_es::Aggregate>::TYPE {
                        return stored_json::<$aggregate>(event_type, event_version, payload)
                            .map(Self::$variant);
                    }
                )*
                Err(Error::UnknownAggregate(aggregate_type.to_owned()))
            }

            /// Folds `events` (one aggregate's, in sequence order) into the aggregate's state as
            /// JSON, the way the command side sees it: what operators inspect at any version.
            /// `Err` if an event is of another aggregate type.
            pub fn fold_state(
                aggregate_type: &str,
                events: &[AnyEvent],
            ) -> Result<serde_json::Value> {
                $(
                    if aggregate_type == <$aggregate as cqrs_es::Aggregate>::TYPE {
                        let mut state = <$aggregate>::default();
                        for event in events {
                            match event {
                                Self::$variant(e) => {
                                    cqrs_es::Aggregate::apply(&mut state, e.clone())
                                }
                                #[allow(unreachable_patterns)]
                                other => {
                                    return Err(Error::UnknownAggregate(format!(
                                        "{} event in a {} history",
                                        other.aggregate_type(),
                                        aggregate_type
                                    )))
                                }
                            }
                        }
                        return serde_json::to_value(&state).map_err(|e| Error::StoredPayload {
                            event_type: String::new(),
                            detail: e.to_string(),
                        });
                    }
                )*
                Err(Error::UnknownAggregate(aggregate_type.to_owned()))
            }

            pub(crate) fn to_fields(&self) -> Vec<(&'static str, Value)> {
                match self {
                    $(Self::$variant(e) => AvroMapping::to_fields(e),)*
                }
            }

            pub(crate) fn from_fields(
                aggregate_type: &str,
                event_type: &str,
                f: &mut Fields,
            ) -> Result<AnyEvent> {
                $(
                    if aggregate_type == <$aggregate as cqrs_es::Aggregate>::TYPE {
                        return <$event as AvroMapping>::from_fields(event_type, f)
                            .map(Self::$variant);
                    }
                )*
                Err(Error::UnknownAggregate(aggregate_type.to_owned()))
            }
        }
    };
}

fn stored<A: GameAggregate>(
    event_type: &str,
    event_version: &str,
    payload: &serde_json::Value,
) -> Result<A::Event> {
    chaos_domain::decode_stored::<A>(event_type, event_version, payload.clone())
        .map_err(|e| stored_error::<A>(event_type, e))
}

fn stored_json<A: GameAggregate>(
    event_type: &str,
    event_version: &str,
    payload: &str,
) -> Result<A::Event> {
    chaos_domain::decode_stored_json::<A>(event_type, event_version, payload)
        .map_err(|e| stored_error::<A>(event_type, e))
}

fn stored_error<A: GameAggregate>(event_type: &str, e: chaos_domain::StoredEventError) -> Error {
    match e {
        chaos_domain::StoredEventError::UnknownEventType { .. } => Error::UnknownEventType {
            aggregate_type: A::TYPE.to_owned(),
            event_type: event_type.to_owned(),
        },
        chaos_domain::StoredEventError::TypeMismatch { declared, actual } => {
            Error::EventTypeMismatch { declared, actual }
        }
        other => Error::StoredPayload {
            event_type: event_type.to_owned(),
            detail: other.to_string(),
        },
    }
}

// The registry. One line per aggregate; the order is the order of topics in listings.
aggregates! {
    Character(chaos_domain::CharacterEvent) => chaos_domain::Character,
    Wallet(chaos_domain::WalletEvent) => chaos_domain::Wallet,
}

#[cfg(test)]
mod tests {
    use chaos_domain::{AccountId, CharacterEvent, CharacterName, WalletEvent};
    use chrono::TimeZone;

    use super::AnyEvent;

    #[test]
    fn fold_state_folds_an_aggregates_own_events_only() {
        let at = chrono::Utc.with_ymd_and_hms(2026, 11, 30, 9, 0, 0).unwrap();
        let owner = AccountId::from_uuid(uuid::Uuid::from_u128(7));
        let created = AnyEvent::Character(CharacterEvent::CharacterCreated {
            owner,
            name: CharacterName::parse("Mend").unwrap(),
            class: "mage".into(),
            level: 1,
            max_hp: 80,
            max_mana: 120,
            zone: "whispering_woods".into(),
            skills: vec!["strike".into()],
            created_at: at,
        });
        let empty = AnyEvent::fold_state("character", &[]).unwrap();
        let one = AnyEvent::fold_state("character", std::slice::from_ref(&created)).unwrap();
        assert_ne!(empty, one);
        assert!(one.to_string().contains("Mend"), "{one}");
        let wallet = AnyEvent::Wallet(WalletEvent::WalletOpened {
            owner,
            character: chaos_domain::CharacterId::from_uuid(uuid::Uuid::from_u128(8)),
            opened_at: at,
        });
        assert!(AnyEvent::fold_state("character", &[created, wallet]).is_err());
        assert!(AnyEvent::fold_state("nope", &[]).is_err());
    }
}
