//! The embedded default: command API, query API, read models, warehouse and process managers in
//! one process, with the event store and the read models in SQLite files and the warehouse in a
//! DuckDB file, each resumed from its own checkpoint at start. The same domain, views, process managers and HTTP routers as the production
//! topology, wired by the same builders; only the adapters differ.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chaos_command_api::app::Application;
use chaos_command_api::auth::SqliteAccountStore;
use chaos_eventstore::repository::Repository;
use chaos_eventstore::sqlite::{self, SqliteEventRepository};
use chaos_eventstore::Position;
use chaos_platform::config::{load_config_from, ContentConfig, Environment, TelemetryConfig};
use chaos_projectors::process::{self, ProcessMetrics, ProcessSink};
use chaos_projectors::runner::{
    DeadLetterRecorder, FeedCheckpoint, ProjectorMetrics, ReadModelCheckpoint, ServedCheckpoint,
    SqliteCheckpoint, SqliteDeadLetters, StoreFeed, StoreSource,
};
use chaos_projectors::warehouse::{Warehouse, STORE_FEED};
use chaos_readmodel::{Keys, Served, SqliteStore, ViewProjection};
use secrecy::SecretString;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Where the event store (and everything else that persists) lives.
    pub data_dir: PathBuf,
    pub environment: Environment,
    pub telemetry: TelemetryConfig,
    pub command_api: Api,
    pub query_api: Api,
    pub auth: Auth,
    pub consistency: Consistency,
    #[serde(default)]
    pub content: ContentConfig,
    pub rate_limit: chaos_command_api::config::RateLimitConfig,
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
environment = "development"

[telemetry]
json = false
level = "info"
otlp_endpoint = ""
trace_sample_ratio = 1.0

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

[content]
# A directory of content files; empty: the copy built into the binary.
dir = ""

# As the command API's.
[rate_limit]
per_account_per_sec = 200
burst = 400
auth_per_ip_per_minute = 60
auth_per_ip_burst = 20
login_per_username_per_minute = 10
login_per_username_burst = 5
"#;

/// The command API's configuration for the embedded mode: its defaults, with the binds, secret
/// and mode of `settings`.
fn command_config(settings: &Settings) -> anyhow::Result<chaos_command_api::config::Config> {
    let mut config: chaos_command_api::config::Config = load_config_from(
        chaos_command_api::config::DEFAULTS,
        None,
        std::iter::empty(),
    )?;
    config.environment = settings.environment;
    config.http.bind = settings.command_api.bind.clone();
    config.auth.jwt_secret = settings.auth.jwt_secret.clone();
    config.auth.token_ttl_secs = settings.auth.token_ttl_secs;
    config.content = settings.content.clone();
    config.rate_limit = settings.rate_limit.clone();
    Ok(config)
}

/// The query API's configuration for the embedded mode.
fn query_config(settings: &Settings) -> anyhow::Result<chaos_query_api::config::Settings> {
    let mut config: chaos_query_api::config::Settings =
        load_config_from(chaos_query_api::config::DEFAULTS, None, std::iter::empty())?;
    config.environment = settings.environment;
    config.http.bind = settings.query_api.bind.clone();
    config.auth.jwt_secret = settings.auth.jwt_secret.clone();
    config.auth.token_ttl_secs = settings.auth.token_ttl_secs;
    config.consistency.max_wait_ms = settings.consistency.max_wait_ms;
    Ok(config)
}

/// Most events per read-model batch. A batch reads and writes each document it touches once,
/// so a feed that is behind does less per event in a bigger batch; one that keeps up applies
/// whatever was just appended, whatever the limit. With every request on any of 2,048
/// characters, batches of 1,000 (the store feed's default) fell behind all run (visible p99
/// 6.2–6.8 s); 10,000 kept up (1.2–1.6 s). docs/decisions.md 38.
const VIEWS_BATCH: u32 = 10_000;

/// Events per warehouse batch: each batch is one DuckDB append per table, whose fixed cost
/// dominates small batches.
const WAREHOUSE_BATCH: u32 = 5000;

/// How long the warehouse feed waits after catching up with a partial batch: under load it
/// writes a batch about every half second instead of one per group commit (measured: at 2,900
/// commands/s its DuckDB thread took a third of the process's CPU in small batches). Analytics
/// lag by up to this much more; player queries do not read the warehouse.
const WAREHOUSE_LINGER: Duration = Duration::from_millis(500);

/// The name of the embedded read models' checkpoint for a model version (`chaosctl rebuild`
/// saves the same one for the version it builds).
pub fn views_checkpoint(keys: &Keys) -> String {
    format!("{}views@{}", keys.prefix, keys.model_version)
}

/// Opens `<data_dir>/readmodels.db`, provided the read models of the version served (the one a
/// rebuild switched to, else the configured one) describe this event store:
/// read models ahead of it (the event store replaced or restored from an older copy) are dropped
/// and rebuilt from the first event.
async fn open_read_models(
    settings: &Settings,
    configured: &Keys,
    repo: &SqliteEventRepository,
) -> anyhow::Result<SqliteStore> {
    let path = settings.data_dir.join("readmodels.db");
    let store = SqliteStore::open(&path)
        .await
        .with_context(|| format!("opening {}", path.display()))?;
    let served = Served::new(Arc::new(store.clone()), configured.clone(), Duration::ZERO);
    let keys = served.keys().await?;
    let checkpoint = ReadModelCheckpoint {
        store: store.clone(),
        name: views_checkpoint(&keys),
    };
    let at = checkpoint.load().await?;
    if at.global_position > 0 {
        let before = Position {
            tx_id: 0,
            global_position: at.global_position - 1,
        };
        let found = chaos_eventstore::EventLog::read_after(&repo.log(), before, 1).await?;
        if found.first().map(|e| e.position.global_position) != Some(at.global_position) {
            tracing::warn!(
                checkpoint = at.global_position,
                "the read models are ahead of the event store; rebuilding them from the first event"
            );
            store.retain("\u{0}").await?;
        }
    }
    Ok(store)
}

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
    let metrics = ProjectorMetrics::new(&registry);
    // Every store-fed feed records its dead letters in the event store's file, where
    // `chaosctl dead-letters` lists them and asks for redrives.
    let dead_letters: Arc<dyn DeadLetterRecorder> =
        Arc::new(SqliteDeadLetters::new(pool.clone()).await?);

    // The write side, as in production.
    let content = settings.content.load()?;
    let commands = Application::new(
        Repository::sqlite(repo.clone()),
        Arc::new(SqliteAccountStore::new(pool).await?),
        content.clone(),
        &command_config(&settings)?,
        registry.clone(),
    )?;

    // Read models: a SQLite file beside the event store, with the position they reflect, caught
    // up before the APIs open so a query never sees a read model older than the data directory.
    let query = query_config(&settings)?;
    let configured = Keys::new(&query.redis.key_prefix, &query.redis.model_version);
    let read_models = open_read_models(&settings, &configured, &repo).await?;
    // Follows the served version (a `chaosctl rebuild` switches it while this runs) and repairs
    // gaps from the event store (the events between a rebuild's last catch-up and the switch).
    // One store for everything the distributed mode splits between Redis (hot state) and
    // MongoDB (documents and histories).
    let projection = ViewProjection::new(
        Arc::new(read_models.clone()),
        configured.clone(),
        chaos_readmodel::views::embedded(),
    )
    .following_served()
    .with_source(Arc::new(StoreSource::new(Repository::sqlite(repo.clone()))));
    let feed = StoreFeed::new(
        "views",
        Arc::new(repo.log()),
        Arc::new(projection),
        metrics.clone(),
    )
    .with_batch(VIEWS_BATCH)
    // Named after the version served at every save: after a rebuild's switch, the new one's.
    .with_checkpoint(Arc::new(ServedCheckpoint {
        store: read_models.clone(),
        served: Served::new(Arc::new(read_models.clone()), configured, Duration::ZERO),
        name: views_checkpoint,
    }))
    .with_dead_letters(dead_letters.clone());
    let from = feed.resume_position().await?;
    let resumed = Instant::now();
    let caught_up = feed.catch_up_until(from, &shutdown, |_| {}).await?;
    tracing::info!(
        from = from.global_position,
        events = caught_up.events,
        applied = caught_up.applied,
        elapsed_ms = resumed.elapsed().as_millis() as u64,
        data_dir = %settings.data_dir.display(),
        "read models caught up with the event store"
    );

    // The warehouse is a DuckDB file in the data directory, resumed from its own checkpoint
    // while the APIs serve: analytics may lag, player queries may not.
    let warehouse = Warehouse::open(settings.data_dir.join("warehouse.duckdb")).await?;
    let warehouse_from =
        warehouse
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
        metrics.clone(),
    )
    .with_batch(WAREHOUSE_BATCH)
    .with_linger(WAREHOUSE_LINGER)
    .with_dead_letters(dead_letters.clone());

    // Process managers: the same code as `projector process-managers`, fed by the store, each
    // from its own checkpoint in the store.
    let process_metrics = ProcessMetrics::new(&registry);
    let mut managers = Vec::new();
    for manager in process::all() {
        let name = format!("pm-{}", manager.name());
        let checkpoint = Arc::new(SqliteCheckpoint {
            repo: repo.clone(),
            name: format!("process-manager:{}", manager.name()),
        });
        let sink = ProcessSink::new(
            manager,
            commands.state.commands.clone(),
            process_metrics.clone(),
        );
        let feed = StoreFeed::new(&name, Arc::new(repo.log()), Arc::new(sink), metrics.clone())
            .with_checkpoint(checkpoint)
            .with_dead_letters(dead_letters.clone());
        let from = feed.resume_position().await?;
        managers.push((feed, from));
    }

    let queries = chaos_query_api::AppState::new(Arc::new(read_models), &query, &registry)
        .with_content(Arc::new(content));
    let command_router = commands.router();
    let query_router = chaos_query_api::router(queries, registry, &query.http);

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

    let mut followers = Vec::new();
    followers.push(tokio::spawn({
        let shutdown = shutdown.clone();
        let position = caught_up.position;
        async move { feed.run(position, shutdown).await }
    }));
    followers.push(tokio::spawn({
        let shutdown = shutdown.clone();
        async move { analytics.run(warehouse_from, shutdown).await }
    }));
    for (feed, from) in managers {
        let shutdown = shutdown.clone();
        followers.push(tokio::spawn(async move { feed.run(from, shutdown).await }));
    }
    let stop = |s: CancellationToken| async move { s.cancelled().await };
    let (a, b) = tokio::join!(
        chaos_platform::http::serve_on(command_listener, command_router, stop(shutdown.clone())),
        chaos_platform::http::serve_on(query_listener, query_router, stop(shutdown.clone())),
    );
    shutdown.cancel();
    for follower in followers {
        follower.await??;
    }
    warehouse.close().await?;
    a?;
    b?;
    Ok(())
}
