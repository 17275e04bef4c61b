//! The read side: serves read models, honouring consistency tokens.

pub mod config;
pub mod routes;

use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::{Json, Router};
use chaos_platform::http::{readiness, service_router, track_metrics};
use chaos_platform::metrics::{register, HttpMetrics, LATENCY_BUCKETS};
use chaos_projectors::readmodel::DocumentStore;
use prometheus::{Histogram, HistogramOpts, IntCounter, Registry};
use utoipa::OpenApi;

/// Everything a handler needs; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Arc<dyn DocumentStore>,
    pub key_prefix: String,
    pub model_version: String,
    /// Longest a request waits for a consistency token before answering 503.
    pub max_wait: Duration,
    pub metrics: QueryMetrics,
}

#[derive(Debug, Clone)]
pub struct QueryMetrics {
    pub consistency_wait: Histogram,
    pub consistency_timeouts: IntCounter,
}

impl QueryMetrics {
    pub fn new(registry: &Registry) -> Self {
        Self {
            consistency_wait: register(
                registry,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "chaos_query_consistency_wait_seconds",
                        "Time spent waiting for a read model to reach a consistency token",
                    )
                    .buckets(LATENCY_BUCKETS.to_vec()),
                )
                .expect("valid metric"),
            ),
            consistency_timeouts: register(
                registry,
                IntCounter::new(
                    "chaos_query_consistency_timeouts_total",
                    "Queries answered 503 because the read model did not catch up in time",
                )
                .expect("valid metric"),
            ),
        }
    }
}

#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Chaos World query API",
        version = "1",
        description = "Read models. Send a command's consistency token as `Consistency-Token` \
            to read at least the state that command produced."
    ),
    paths(routes::character_sheet),
    components(schemas(routes::SheetView))
)]
pub struct ApiDoc;

pub fn router(state: AppState, registry: Registry) -> Router {
    let metrics = HttpMetrics::new(&registry, "query-api");
    let store = state.store.clone();
    let check = readiness(move || {
        let store = store.clone();
        async move { store.ping().await.map_err(|e| e.to_string()) }
    });
    let api = Router::new()
        .route("/v1/characters/{id}", get(routes::character_sheet))
        .route("/openapi.json", get(|| async { Json(ApiDoc::openapi()) }))
        .fallback(routes::not_found)
        .with_state(state)
        .route_layer(axum::middleware::from_fn_with_state(metrics, track_metrics));
    service_router(
        api,
        "Chaos World query API",
        registry,
        vec![("read_model", check)],
    )
}
