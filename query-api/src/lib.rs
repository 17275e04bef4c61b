//! The read side: serves read models, honouring consistency tokens and ownership. Public
//! profiles are anyone's; private state (a character's sheet, a wallet and its ledger) is its
//! owner's alone, checked with the same JWT the command API issues.

pub mod config;
pub mod routes;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use axum::routing::get;
use axum::{Json, Router};
use chaos_platform::auth::JwtKeys;
use chaos_platform::http::{guard, readiness, service_router, track_metrics};
use chaos_platform::metrics::{register, HttpMetrics, LATENCY_BUCKETS};
use chaos_readmodel::{DocumentStore, Keys};
use prometheus::{Histogram, HistogramOpts, IntCounter, Registry};
use utoipa::{Modify, OpenApi};

use crate::config::{HttpConfig, Settings};

/// Everything a handler needs; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Arc<dyn DocumentStore>,
    pub keys: Keys,
    /// Longest a request waits for a consistency token before answering 503.
    pub max_wait: Duration,
    pub metrics: QueryMetrics,
    pub jwt: JwtKeys,
}

impl AppState {
    pub fn new(store: Arc<dyn DocumentStore>, settings: &Settings, registry: &Registry) -> Self {
        Self {
            store,
            keys: Keys::new(&settings.redis.key_prefix, &settings.redis.model_version),
            max_wait: Duration::from_millis(settings.consistency.max_wait_ms),
            metrics: QueryMetrics::new(registry),
            jwt: JwtKeys::new(&settings.auth.jwt_secret, settings.auth.token_ttl_secs),
        }
    }
}

impl FromRef<AppState> for JwtKeys {
    fn from_ref(state: &AppState) -> Self {
        state.jwt.clone()
    }
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

/// The query API's OpenAPI document.
pub fn document() -> utoipa::openapi::OpenApi {
    #[derive(OpenApi)]
    #[openapi(
        info(
            title = "Chaos World query API",
            version = "1",
            description = "Read models. Send a command's consistency token as `Consistency-Token` \
                to read at least the state that command produced. Public profiles need no \
                token; private state is its owner's (Authorization: Bearer, the command API's \
                token)."
        ),
        paths(
            routes::character_profile,
            routes::character_sheet,
            routes::wallet,
            routes::ledger
        ),
        components(schemas(
            routes::ProfileView,
            routes::SheetView,
            routes::WalletView,
            routes::LedgerPage
        ))
    )]
    struct Doc;
    let mut doc = Doc::openapi();
    chaos_platform::openapi::CommonAnswers { throttled: false }.modify(&mut doc);
    doc
}

pub fn router(state: AppState, registry: Registry, http: &HttpConfig) -> Router {
    let metrics = HttpMetrics::new(&registry, "query-api");
    let store = state.store.clone();
    let check = readiness(move || {
        let store = store.clone();
        async move { store.ping().await.map_err(|e| e.to_string()) }
    });
    let document = Arc::new(document());
    // A consistency wait answers 503 read-model-behind on its own: the request timeout must not
    // cut it short.
    let timeout =
        Duration::from_millis(http.request_timeout_ms).max(state.max_wait + Duration::from_secs(1));
    let api = Router::new()
        .route("/v1/characters/{id}", get(routes::character_profile))
        .route("/v1/characters/{id}/sheet", get(routes::character_sheet))
        .route("/v1/wallets/{id}", get(routes::wallet))
        .route("/v1/wallets/{id}/ledger", get(routes::ledger))
        .route(
            "/openapi.json",
            get(move || {
                let document = document.clone();
                async move { Json(document.as_ref().clone()) }
            }),
        )
        .fallback(routes::not_found)
        .with_state(state);
    let api = guard(api, timeout, http.max_concurrent_requests)
        .route_layer(axum::middleware::from_fn_with_state(metrics, track_metrics));
    service_router(
        api,
        "Chaos World query API",
        registry,
        vec![("read_model", check)],
    )
}
