//! The embedded default: command API, query API and projections in one process, with the event
//! store in SQLite and read models in memory (rebuilt from the store at start). The same
//! domain, projection code and HTTP APIs as the production topology; only the adapters differ.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chaos_command_api::auth::{JwtKeys, SqliteAccountStore};
use chaos_command_api::names::{SqliteNameRegistry, ABANDONED_AFTER};
use chaos_command_api::ratelimit::RateLimiter;
use chaos_command_api::service::CommandService;
use chaos_command_api::state::AppState as CommandState;
use chaos_command_api::store::es::SqliteCharacterStore;
use chaos_command_api::store::CachedStore;
use chaos_eventstore::sqlite::{self, SqliteEventRepository};
use chaos_eventstore::Position;
use chaos_platform::config::TelemetryConfig;
use chaos_projectors::readmodel::MemoryStore;
use chaos_projectors::runner::{ProjectorMetrics, SheetProjection, StoreFeed};
use chaos_projectors::warehouse::{Warehouse, STORE_FEED};
use secrecy::SecretString;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Where the event store (and everything else that persists) lives.
    pub data_dir: PathBuf,
    pub telemetry: TelemetryConfig,
    pub command_api: Api,
    pub query_api: Api,
    pub auth: Auth,
    pub consistency: Consistency,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Api {
    pub bind: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    pub jwt_secret: SecretString,
    pub token_ttl_secs: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Consistency {
    pub max_wait_ms: u64,
}

pub const DEFAULTS: &str = r#"
data_dir = ".chaos"

[telemetry]
json = false
level = "info"

[command_api]
bind = "127.0.0.1:8080"

[query_api]
bind = "127.0.0.1:8082"

[auth]
# Development only: set CHAOS__AUTH__JWT_SECRET for anything shared.
jwt_secret = "chaos-world-local-development-secret"
token_ttl_secs = 3600

[consistency]
max_wait_ms = 2000
"#;

/// Body size cap for commands (bytes).
const BODY_LIMIT: usize = 16 * 1024;

/// Runs the backend until `shutdown`. `ready` is called once both APIs accept requests.
pub async fn run(
    settings: Settings,
    shutdown: CancellationToken,
    ready: impl FnOnce(Duration) + Send,
) -> anyhow::Result<()> {
    let started = Instant::now();
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("creating data directory {}", settings.data_dir.display()))?;
    let db = settings.data_dir.join("events.db");
    let pool = sqlite::open(&db)
        .await
        .with_context(|| format!("opening {}", db.display()))?;
    let repo = SqliteEventRepository::new(pool.clone());
    let registry = prometheus::Registry::new();

    // Read models: in memory, rebuilt from the event store before the APIs open, so a query
    // never sees a read model older than the data directory.
    let read_models = Arc::new(MemoryStore::default());
    let projection = SheetProjection::new(read_models.clone(), "chaos:".into(), "v1".into());
    let metrics = ProjectorMetrics::new(&registry);
    let feed = StoreFeed::new(
        "sheets",
        Arc::new(repo.log()),
        Arc::new(projection),
        metrics.clone(),
    );
    let rebuild = Instant::now();
    let caught_up = feed.catch_up(Position::START, |_| {}).await?;
    tracing::info!(
        events = caught_up.events,
        applied = caught_up.applied,
        elapsed_ms = rebuild.elapsed().as_millis() as u64,
        data_dir = %settings.data_dir.display(),
        "sheets rebuilt from the event store"
    );

    // The warehouse is a DuckDB file in the data directory: resumed from its own checkpoint.
    let warehouse = Warehouse::open(settings.data_dir.join("warehouse.duckdb")).await?;
    let resume = warehouse
        .offsets(STORE_FEED)
        .await?
        .first()
        .map_or(Position::START, |o| Position {
            tx_id: 0,
            global_position: o.next_offset - 1,
        });
    let analytics = StoreFeed::new(
        "warehouse",
        Arc::new(repo.log()),
        Arc::new(warehouse.clone()),
        metrics,
    );
    let resumed = Instant::now();
    let warehouse_caught_up = analytics.catch_up(resume, |_| {}).await?;
    tracing::info!(
        from = resume.global_position,
        events = warehouse_caught_up.events,
        elapsed_ms = resumed.elapsed().as_millis() as u64,
        "warehouse resumed from its checkpoint"
    );

    let store = CachedStore::new(SqliteCharacterStore::new(repo), 100_000);
    let commands = CommandState {
        commands: CommandService::new(
            Arc::new(store),
            Arc::new(SqliteNameRegistry::new(pool.clone(), ABANDONED_AFTER).await?),
            chaos_command_api::app::character_services(chaos_domain::Content::builtin()?),
            chaos_command_api::app::appended_counter(&registry),
        ),
        accounts: Arc::new(SqliteAccountStore::new(pool).await?),
        jwt: JwtKeys::new(&settings.auth.jwt_secret, settings.auth.token_ttl_secs),
        limiter: Arc::new(RateLimiter::new(200, 400)),
    };
    let queries = chaos_query_api::AppState {
        store: read_models,
        key_prefix: "chaos:".into(),
        model_version: "v1".into(),
        max_wait: Duration::from_millis(settings.consistency.max_wait_ms),
        metrics: chaos_query_api::QueryMetrics::new(&registry),
    };
    let command_router = chaos_command_api::app::router(commands, registry.clone(), BODY_LIMIT);
    let query_router = chaos_query_api::router(queries, registry);

    let command_listener = tokio::net::TcpListener::bind(&settings.command_api.bind)
        .await
        .with_context(|| format!("binding the command API to {}", settings.command_api.bind))?;
    let query_listener = tokio::net::TcpListener::bind(&settings.query_api.bind)
        .await
        .with_context(|| format!("binding the query API to {}", settings.query_api.bind))?;
    tracing::info!(
        command_api = %command_listener.local_addr()?,
        query_api = %query_listener.local_addr()?,
        "embedded backend ready"
    );
    ready(started.elapsed());

    let follow = {
        let shutdown = shutdown.clone();
        let position = caught_up.position;
        tokio::spawn(async move { feed.run(position, shutdown).await })
    };
    let follow_warehouse = {
        let shutdown = shutdown.clone();
        let position = warehouse_caught_up.position;
        tokio::spawn(async move { analytics.run(position, shutdown).await })
    };
    let stop = |s: CancellationToken| async move { s.cancelled().await };
    let (a, b) = tokio::join!(
        axum_serve(command_listener, command_router, stop(shutdown.clone())),
        axum_serve(query_listener, query_router, stop(shutdown.clone())),
    );
    shutdown.cancel();
    follow.await??;
    follow_warehouse.await??;
    warehouse.close().await?;
    a?;
    b?;
    Ok(())
}

async fn axum_serve(
    listener: tokio::net::TcpListener,
    router: chaos_platform::axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    chaos_platform::axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}
