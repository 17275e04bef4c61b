//! The write side of Chaos World: HTTP commands with authentication, idempotency and
//! problem+json errors over cqrs-es and postgres-es; and the relay that publishes the event
//! store to Kafka (its own binary, `relay`).

pub mod app;
pub mod auth;
pub mod config;
pub mod error;
pub mod extract;
pub mod names;
pub mod openapi;
pub mod ratelimit;
pub mod relay;
pub mod routes;
pub mod service;
pub mod state;
pub mod store;
