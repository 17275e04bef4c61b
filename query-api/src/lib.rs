//! The read side: serves read models, honouring consistency tokens and ownership. Public
//! profiles, careers and leaderboards are anyone's; private state (a character's sheet,
//! inventory and timeline, a wallet and its ledger) is its owner's alone, checked with the same
//! JWT the command API issues. Hot state comes from Redis, documents and histories from MongoDB
//! (in the embedded mode both from its SQLite read models); each follows its served version, so
//! a rebuild's switch reaches readers within a second.

pub mod config;
pub mod routes;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chaos_domain::Content;
use chaos_platform::auth::JwtKeys;
use chaos_platform::http::{guard, readiness, service_router, track_metrics};
use chaos_platform::metrics::{register, HttpMetrics, LATENCY_BUCKETS};
use chaos_readmodel::{DocumentStore, Keys, Served};
use prometheus::{Histogram, HistogramOpts, IntCounter, Registry};
use utoipa::{Modify, OpenApi};

use crate::config::{HttpConfig, Settings};

/// One read-model store and the layout served in it.
#[derive(Debug, Clone)]
pub struct Models {
    pub store: Arc<dyn DocumentStore>,
    pub served: Served,
}

impl Models {
    /// Follows `configured`'s served version in `store`, looking again every second.
    pub fn new(store: Arc<dyn DocumentStore>, configured: Keys) -> Self {
        Self {
            served: Served::new(store.clone(), configured, Duration::from_secs(1)),
            store,
        }
    }

    /// The layout to read now (503 if the store cannot say).
    pub async fn keys(&self) -> Result<Keys, Response> {
        self.served.keys().await.map_err(|e| {
            tracing::error!(error = %e, "read model unavailable");
            chaos_platform::http::Problem::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "dependency-unavailable",
                "Service unavailable",
            )
            .detail("the read model is unavailable; retry later")
            .retry_after(1)
            .into_response()
        })
    }
}

/// Everything a handler needs; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Hot state: sheets, wallets, ledgers, boards (Redis; the embedded store).
    pub hot: Models,
    /// Documents and histories: careers, timelines (MongoDB; the embedded store).
    pub documents: Models,
    /// The game content: derived stats, item names, zones.
    pub content: Arc<Content>,
    /// Who acted within this long is present in a zone.
    pub presence_window: Duration,
    /// Longest a request waits for a consistency token before answering 503.
    pub max_wait: Duration,
    pub metrics: QueryMetrics,
    pub jwt: JwtKeys,
}

impl AppState {
    /// Hot state and documents both in `store` (the embedded mode, tests), with the built-in
    /// content; see [`Self::with_documents`] and [`Self::with_content`].
    pub fn new(store: Arc<dyn DocumentStore>, settings: &Settings, registry: &Registry) -> Self {
        let keys = Keys::new(&settings.redis.key_prefix, &settings.redis.model_version);
        Self {
            hot: Models::new(store.clone(), keys.clone()),
            documents: Models::new(store, keys),
            content: Arc::new(Content::builtin().expect("the built-in content is valid")),
            presence_window: Duration::from_secs(settings.presence.window_secs),
            max_wait: Duration::from_millis(settings.consistency.max_wait_ms),
            metrics: QueryMetrics::new(registry),
            jwt: JwtKeys::new(&settings.auth.jwt_secret, settings.auth.token_ttl_secs),
        }
    }

    /// Documents and histories from `store` (MongoDB), laid out as `keys`.
    pub fn with_documents(mut self, store: Arc<dyn DocumentStore>, keys: Keys) -> Self {
        self.documents = Models::new(store, keys);
        self
    }

    pub fn with_content(mut self, content: Arc<Content>) -> Self {
        self.content = content;
        self
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
    #[openapi(info(
        title = "Chaos World query API",
        version = "1",
        description = "Read models. Send a command's consistency token as `Consistency-Token` \
            to read at least the state that command produced. Public profiles, careers, \
            leaderboards and zone presence need no token; private state is its owner's \
            (Authorization: Bearer, the command API's token)."
    ))]
    struct Doc;
    let mut doc = Doc::openapi();
    for part in routes::documents() {
        doc.merge(part);
    }
    chaos_platform::openapi::CommonAnswers { throttled: false }.modify(&mut doc);
    doc
}

pub fn router(state: AppState, registry: Registry, http: &HttpConfig) -> Router {
    let metrics = HttpMetrics::new(&registry, "query-api");
    let hot = state.hot.store.clone();
    let documents = state.documents.store.clone();
    let check = readiness(move || {
        let (hot, documents) = (hot.clone(), documents.clone());
        async move {
            hot.ping().await.map_err(|e| format!("hot state: {e}"))?;
            documents
                .ping()
                .await
                .map_err(|e| format!("documents: {e}"))
        }
    });
    let document = Arc::new(document());
    // A consistency wait answers 503 read-model-behind on its own: the request timeout must not
    // cut it short.
    let timeout =
        Duration::from_millis(http.request_timeout_ms).max(state.max_wait + Duration::from_secs(1));
    let api = routes::router()
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
