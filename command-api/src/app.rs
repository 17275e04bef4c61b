//! The command API's router and its wiring to PostgreSQL.

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::{Json, Router};
use chaos_domain::{CharacterServices, Clock, Dice};
use chaos_platform::http::{readiness, service_router, track_metrics};
use chaos_platform::metrics::{register, HttpMetrics};
use prometheus::{IntCounterVec, Opts, Registry};
use utoipa::OpenApi;

use crate::openapi::ApiDoc;
use crate::routes::{accounts, characters};
use crate::state::AppState;

/// The system clock: the only place the write side reads time.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now()
    }
}

/// Thread-local OS-seeded dice.
#[derive(Debug, Clone, Copy, Default)]
pub struct ThreadDice;

impl Dice for ThreadDice {
    fn roll(&self, lo: u32, hi: u32) -> u32 {
        use rand::Rng;
        rand::rng().random_range(lo..=hi.max(lo))
    }
}

pub fn character_services(content: chaos_domain::Content) -> CharacterServices {
    CharacterServices {
        content: Arc::new(content),
        clock: Arc::new(SystemClock),
        dice: Arc::new(ThreadDice),
    }
}

/// `chaos_events_appended_total{aggregate}`.
pub fn appended_counter(registry: &Registry) -> IntCounterVec {
    let appended = register(
        registry,
        IntCounterVec::new(
            Opts::new(
                "chaos_events_appended_total",
                "Events appended to the event store",
            ),
            &["aggregate"],
        )
        .expect("valid metric"),
    );
    // Exported at 0 from the start, so rate() sees the first appends.
    appended.with_label_values(&[chaos_domain::character::AGGREGATE_TYPE]);
    appended
}

/// The HTTP surface: `/v1` commands, OpenAPI + Swagger UI, and the ops endpoints.
pub fn router(state: AppState, registry: Registry, body_limit: usize) -> Router {
    let metrics = HttpMetrics::new(&registry, "command-api");
    let store = state.commands.store().clone();
    let check = readiness(move || {
        let store = store.clone();
        async move { store.ping().await.map_err(|e| e.to_string()) }
    });
    let api = Router::new()
        .route("/v1/accounts", post(accounts::register))
        .route("/v1/sessions", post(accounts::login))
        .route("/v1/characters", post(characters::create))
        .route(
            "/v1/characters/{id}/cast-skill",
            post(characters::cast_skill),
        )
        .route("/v1/characters/{id}/travel", post(characters::travel))
        .route(
            "/v1/characters/{id}/grant-experience",
            post(characters::grant_experience),
        )
        .route("/v1/characters/{id}/events", get(characters::history))
        .route("/openapi.json", get(|| async { Json(ApiDoc::openapi()) }))
        .fallback(not_found)
        .with_state(state)
        .layer(DefaultBodyLimit::max(body_limit))
        .route_layer(axum::middleware::from_fn_with_state(metrics, track_metrics));
    service_router(
        api,
        "Chaos World command API",
        registry,
        vec![("event_store", check)],
    )
}

async fn not_found() -> crate::error::ApiError {
    crate::error::ApiError::NotFound
}
