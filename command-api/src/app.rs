//! The command API's wiring, shared by `main`, the embedded backend and the tests:
//! [`Application::build`] connects to PostgreSQL; [`Application::new`] takes an event store
//! repository and an account store (the embedded mode passes SQLite ones); [`Application::router`]
//! is the HTTP surface either way.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::{DefaultBodyLimit, FromRef};
use axum::routing::get;
use axum::{Extension, Json, Router};
use chaos_domain::Content;
use chaos_eventstore::command::{CommandMetrics, CommandSettings};
use chaos_eventstore::group_commit::{AppendMetrics, GroupCommitConfig};
use chaos_eventstore::repository::Repository;
use chaos_eventstore::snapshot::{SnapshotMetrics, SnapshotPolicy};
use chaos_eventstore::watch::WatchMetrics;
use chaos_eventstore::CommandService;
use chaos_platform::auth::JwtKeys;
use chaos_platform::http::{guard, readiness, service_router, track_metrics};
use chaos_platform::metrics::HttpMetrics;
use prometheus::Registry;
use secrecy::ExposeSecret;

use crate::auth::{AccountStore, PgAccountStore};
use crate::config::{Config, HttpConfig, RateLimitConfig};
use crate::http::extract::TrustForwardedFor;
use crate::http::limits::{KeyedLimit, Limits};

pub use chaos_platform::game::{game_services, SystemClock, ThreadDice};

/// Everything a handler needs, behind one reference count: axum clones the state several times
/// per request (each extractor and middleware that takes it), so a clone is one atomic
/// increment rather than one per field. Reads go through to [`AppParts`].
#[derive(Debug, Clone)]
pub struct AppState(Arc<AppParts>);

/// What an [`AppState`] shares.
#[derive(Debug)]
pub struct AppParts {
    pub commands: CommandService,
    pub accounts: Arc<dyn AccountStore>,
    pub jwt: JwtKeys,
    pub limits: Limits,
}

impl AppState {
    pub fn new(parts: AppParts) -> Self {
        Self(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.0
    }
}

impl FromRef<AppState> for JwtKeys {
    fn from_ref(state: &AppState) -> Self {
        state.jwt.clone()
    }
}

/// The limits a configuration asks for.
pub fn limits(config: &RateLimitConfig) -> Limits {
    let minute = Duration::from_secs(60);
    Limits {
        commands: KeyedLimit::new(
            config.per_account_per_sec,
            Duration::from_secs(1),
            config.burst,
        ),
        auth_per_ip: KeyedLimit::new(
            config.auth_per_ip_per_minute,
            minute,
            config.auth_per_ip_burst,
        ),
        auth_per_username: KeyedLimit::new(
            config.login_per_username_per_minute,
            minute,
            config.login_per_username_burst,
        ),
    }
}

/// The command settings a configuration asks for.
pub fn command_settings(config: &Config) -> CommandSettings {
    CommandSettings {
        cache_capacity: config.cache.aggregates,
        snapshots: SnapshotPolicy {
            every: config.commands.snapshot_every,
        },
        store_timeout: Duration::from_millis(config.commands.store_timeout_ms),
        ..CommandSettings::default()
    }
}

/// A built command API: its state, its metrics registry and its HTTP settings.
#[derive(Debug)]
pub struct Application {
    pub state: AppState,
    pub registry: Registry,
    pub http: HttpConfig,
}

impl Application {
    /// Production wiring: PostgreSQL (migrated), group-committed appends, the built-in content.
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        config
            .environment
            .check_jwt_secret(&config.auth.jwt_secret)?;
        let pool = chaos_eventstore::pg::pool_options()
            .max_connections(config.database.max_connections)
            .acquire_timeout(Duration::from_millis(config.database.acquire_timeout_ms))
            .connect(config.database.url.expose_secret())
            .await
            .context("connecting to PostgreSQL")?;
        chaos_eventstore::pg::migrate(&pool).await?;
        let accounts = PgAccountStore::new(pool.clone()).await?;
        let registry = Registry::new();
        let repository = Repository::postgres(
            pool,
            GroupCommitConfig {
                writers: config.database.append_writers,
                max_batch_events: config.database.append_batch_events,
                notify_interval: Duration::from_millis(config.database.append_notify_interval_ms),
                ..GroupCommitConfig::default()
            },
            Some(AppendMetrics::new(&registry)),
        );
        let application = Self::new(
            repository,
            Arc::new(accounts),
            config.content.load()?,
            config,
            registry,
        )?;
        if config.database.watch_interval_ms > 0 {
            let watch = application.state.commands.store_watch(
                Duration::from_millis(config.database.watch_interval_ms),
                WatchMetrics::new(&application.registry),
            );
            if let Some(watch) = watch {
                watch.spawn().await;
            }
        }
        Ok(application)
    }

    /// Wiring over any event store and account store (the embedded mode, tests).
    pub fn new(
        repository: Repository,
        accounts: Arc<dyn AccountStore>,
        content: Content,
        config: &Config,
        registry: Registry,
    ) -> anyhow::Result<Self> {
        config
            .environment
            .check_jwt_secret(&config.auth.jwt_secret)?;
        let commands = CommandService::new(
            repository,
            game_services(content),
            command_settings(config),
            CommandMetrics::new(&registry),
            SnapshotMetrics::new(&registry),
        );
        let limits = limits(&config.rate_limit);
        limits.spawn_sweeper(Duration::from_secs(60));
        Ok(Self {
            state: AppState::new(AppParts {
                commands,
                accounts,
                jwt: JwtKeys::new(&config.auth.jwt_secret, config.auth.token_ttl_secs),
                limits,
            }),
            registry,
            http: config.http.clone(),
        })
    }

    pub fn router(&self) -> Router {
        router(self.state.clone(), self.registry.clone(), &self.http)
    }
}

/// The HTTP surface: `/v1` commands, OpenAPI + Swagger UI, and the ops endpoints.
pub fn router(state: AppState, registry: Registry, http: &HttpConfig) -> Router {
    let metrics = HttpMetrics::new(&registry, "command-api");
    let commands = state.commands.clone();
    let check = readiness(move || {
        let commands = commands.clone();
        async move { commands.ping().await.map_err(|e| e.to_string()) }
    });
    let document = Arc::new(crate::http::openapi::document());
    let api = crate::routes::router()
        .route(
            "/openapi.json",
            get(move || {
                let document = document.clone();
                async move { Json(document.as_ref().clone()) }
            }),
        )
        .fallback(not_found)
        .with_state(state)
        .layer(DefaultBodyLimit::max(http.body_limit_bytes))
        .layer(Extension(TrustForwardedFor(http.trust_forwarded_for)));
    let api = guard(
        api,
        Duration::from_millis(http.request_timeout_ms),
        http.max_concurrent_requests,
    )
    .route_layer(axum::middleware::from_fn_with_state(metrics, track_metrics));
    service_router(
        api,
        "Chaos World command API",
        registry,
        vec![("event_store", check)],
    )
}

async fn not_found() -> crate::http::ApiError {
    crate::http::ApiError::not_found("not-found", "Not found")
}
