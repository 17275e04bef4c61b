//! Values unique across aggregates: character names today, guild names next. A rule that spans
//! aggregates cannot live in one aggregate's `decide`; instead an aggregate declares the values
//! its events claim ([`chaos_domain::GameAggregate::reservations`]) and the command service
//! reserves each in the `reservations` table, keyed by scope and the lower-cased value, before it
//! appends.
//!
//! Reserving is idempotent for the same aggregate (a retried command reserves again). Once the
//! aggregate's events are appended the reservation is confirmed and is the aggregate's for good.
//! A reservation whose append never happened (the store went away between the two writes) would
//! hold the value for nobody: one unconfirmed, older than `abandoned_after` and whose aggregate
//! has no events is taken over by the next aggregate that asks for the value.
//!
//! Usernames use the same table (scope `username`, aggregate type `account`), confirmed once the
//! account row exists.

use std::time::Duration;

/// How long an unused reservation blocks its value by default.
pub const ABANDONED_AFTER: Duration = Duration::from_secs(60);

/// One value to reserve for one aggregate.
#[derive(Debug, Clone, Copy)]
pub struct ReservationRequest<'a> {
    /// Persisted (`character-name`, `guild-name`): never change a scope's name.
    pub scope: &'a str,
    pub value: &'a str,
    pub aggregate_type: &'a str,
    pub aggregate_id: &'a str,
    pub abandoned_after: Duration,
}

impl ReservationRequest<'_> {
    /// What uniqueness is checked on: the value with ASCII letters lower-cased.
    pub fn key(&self) -> String {
        self.value.to_ascii_lowercase()
    }
}
