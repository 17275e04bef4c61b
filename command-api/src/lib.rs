//! The write side of Chaos World: HTTP commands with authentication, idempotency, throttling and
//! problem+json errors over the generic command service (`chaos_eventstore::command`); and the
//! relay that publishes the event store to Kafka (its own binary, `relay`).

pub mod app;
pub mod auth;
pub mod config;
pub mod http;
pub mod relay;
pub mod routes;
