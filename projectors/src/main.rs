use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chaos_eventstore::command::{CommandMetrics, CommandSettings};
use chaos_eventstore::group_commit::{AppendMetrics, GroupCommitConfig};
use chaos_eventstore::repository::Repository;
use chaos_eventstore::snapshot::SnapshotMetrics;
use chaos_eventstore::CommandService;
use chaos_platform::http::{ops_router, readiness, serve, ReadinessCheck};
use chaos_platform::kafka::prepare_topics;
use chaos_platform::{load_config, shutdown_signal, telemetry};
use chaos_projectors::config::{Settings, DEFAULTS};
use chaos_projectors::process::{self, ProcessMetrics, ProcessSink};
use chaos_projectors::runner::{
    Batching, Guardian, KafkaRunner, ProjectionSink, ProjectorMetrics, StoreSource,
};
use chaos_projectors::warehouse::Warehouse;
use chaos_readmodel::{
    DocumentStore, Keys, MongoRole, MongoStore, MongoUser, RedisStore, View, ViewProjection,
};
use secrecy::ExposeSecret;
use tokio_util::sync::CancellationToken;

const USAGE: &str =
    "usage: projector [redis | mongo | mongo-users | warehouse | warehouse export [DIR] | \
                     process-managers] [--config PATH]";

/// `projector redis`: the Redis read models (`chaos_readmodel::views::all`; default).
/// `projector mongo`: the MongoDB documents and histories (`chaos_readmodel::views::documents`).
/// `projector mongo-users`: create or update the MongoDB users of the read models and exit
/// (the deploy's `mongo-users` Job: `mongo.url` names an administrator; see [`mongo_users`]).
/// `projector warehouse`: the DuckDB analytics warehouse.
/// `projector warehouse export [DIR]`: write the warehouse's Parquet files and exit (the
/// projector must be stopped: DuckDB locks its file).
/// `projector process-managers`: every process manager, each in its own consumer group.
#[global_allocator]
static GLOBAL: chaos_platform::Allocator = chaos_platform::ALLOCATOR;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    chaos_platform::disable_transparent_huge_pages();
    let args = positional_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let settings: Settings = load_config(DEFAULTS)?;
    let _telemetry = telemetry::init("projector", &settings.telemetry);
    match args.as_slice() {
        [] | ["redis"] => redis(settings).await,
        ["mongo"] => mongo(settings).await,
        ["mongo-users"] => mongo_users(&settings).await,
        ["warehouse"] => warehouse(settings).await,
        ["warehouse", "export"] => export(&settings, &settings.warehouse.parquet_dir).await,
        ["warehouse", "export", dir] => export(&settings, dir).await,
        ["process-managers"] => process_managers(settings).await,
        _ => anyhow::bail!("{USAGE}"),
    }
}

/// The topics of `sources` under the configured prefix.
fn topics(settings: &Settings, sources: &[&str]) -> Vec<String> {
    sources
        .iter()
        .map(|s| settings.kafka.topic(&chaos_schemas::topic_for(s)))
        .collect()
}

/// The event store, read only: where read models repair gaps and rebuild from.
async fn event_store(settings: &Settings) -> anyhow::Result<Repository> {
    let db = &settings.database;
    let pool = chaos_eventstore::pg::pool_options()
        .max_connections(db.max_connections)
        .acquire_timeout(Duration::from_millis(db.acquire_timeout_ms))
        .connect(db.url.expose_secret())
        .await
        .context("connecting to PostgreSQL")?;
    // Read only: the schema is the command API's to migrate, and a read-only role suffices here.
    Ok(Repository::postgres(
        pool,
        GroupCommitConfig::default(),
        None,
    ))
}

async fn redis(settings: Settings) -> anyhow::Result<()> {
    let store = Arc::new(
        RedisStore::open(&settings.redis)
            .await
            .context("connecting to Redis")?,
    );
    let p = &settings.projector;
    let feed = ViewsFeed {
        name: "redis",
        keys: Keys::new(&settings.redis.key_prefix, &settings.redis.model_version),
        views: chaos_readmodel::views::all(),
        group: p.group_id.clone(),
        batching: Batching::from_millis(p.max_batch, p.batch_window_ms, p.fetch_wait_ms),
        bind: settings.http.bind.clone(),
    };
    serve_views(&settings, store, feed).await
}

async fn mongo(settings: Settings) -> anyhow::Result<()> {
    let m = &settings.mongo;
    let store = Arc::new(
        MongoStore::open(&m.store())
            .await
            .context("connecting to MongoDB")?,
    );
    let feed = ViewsFeed {
        name: "mongo",
        keys: Keys::new(&m.key_prefix, &m.model_version),
        views: chaos_readmodel::views::documents(),
        group: m.group_id.clone(),
        batching: Batching::from_millis(m.max_batch, m.batch_window_ms, m.fetch_wait_ms),
        bind: m.http_bind.clone(),
    };
    serve_views(&settings, store, feed).await
}

/// The password of each read-model user, from the environment (the deploy's Secret).
const MONGO_USERS: [(&str, &str, MongoRole); 2] = [
    (
        chaos_readmodel::mongo::PROJECTOR_USER,
        "CHAOS_MONGO_PROJECTOR_PASSWORD",
        MongoRole::ReadWrite,
    ),
    (
        chaos_readmodel::mongo::READER_USER,
        "CHAOS_MONGO_READER_PASSWORD",
        MongoRole::Read,
    ),
];

/// Least privilege on MongoDB (DocumentDB): the projector writes as `chaos_projector`
/// (`readWrite` on the read models' database), the query API reads as `chaos_reader`
/// (`read`); only this one-shot command, run at every deploy, holds the administrator's URL.
async fn mongo_users(settings: &Settings) -> anyhow::Result<()> {
    let users = MONGO_USERS
        .iter()
        .map(|(name, variable, role)| {
            let password = std::env::var(variable).unwrap_or_default();
            anyhow::ensure!(!password.is_empty(), "{variable} is not set");
            Ok(MongoUser {
                name: (*name).to_owned(),
                password: password.into(),
                role: *role,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let done = MongoStore::provision_users(&settings.mongo.store(), &users)
        .await
        .context("provisioning the MongoDB users")?;
    for ((name, what), user) in done.iter().zip(&users) {
        tracing::info!(user = %name, role = user.role.name(), outcome = what, "MongoDB user");
    }
    Ok(())
}

/// A projector of views into a document store (Redis, MongoDB): what differs between them.
struct ViewsFeed {
    /// The projection's name: metric label, dead-letter topic (`chaos.deadletter.<name>`),
    /// readiness check.
    name: &'static str,
    keys: Keys,
    views: Vec<Arc<dyn View>>,
    group: String,
    batching: Batching,
    /// The ops server (metrics, health).
    bind: String,
}

/// Runs `feed`'s views over `store` until SIGTERM: the Kafka runner over the views' topics, gaps
/// repaired from the event store, the store rebuilt from the event store when found without its
/// marker (the guardian), readiness from the store's ping.
async fn serve_views(
    settings: &Settings,
    store: Arc<dyn DocumentStore>,
    feed: ViewsFeed,
) -> anyhow::Result<()> {
    let repository = event_store(settings).await?;
    // Writes the served version (a `chaosctl rebuild` switches it while this runs).
    let projection = ViewProjection::new(store.clone(), feed.keys, feed.views)
        .following_served()
        .with_source(Arc::new(StoreSource::new(repository.clone())));
    let check = readiness(move || {
        let probe = store.clone();
        async move { probe.ping().await.map_err(|e| e.to_string()) }
    });
    let topics = topics(settings, &projection.sources());
    let registry = prometheus::Registry::new();
    let metrics = ProjectorMetrics::new(&registry);
    let guardian = Guardian::new(
        feed.name,
        projection.clone(),
        repository.log(),
        metrics.clone(),
    );
    let runner = runner(
        feed.name,
        settings,
        &feed.group,
        topics,
        feed.batching,
        projection,
        &metrics,
    )
    .await?;
    let stop = CancellationToken::new();
    let watching = tokio::spawn(guardian.run(stop.clone()));
    let outcome = serve_runners(vec![runner], &feed.bind, registry, vec![(feed.name, check)]).await;
    stop.cancel();
    let _ = watching.await;
    outcome
}

async fn warehouse(settings: Settings) -> anyhow::Result<()> {
    let w = &settings.warehouse;
    let warehouse = Warehouse::open(&w.path)
        .await
        .with_context(|| format!("opening the warehouse {}", w.path))?;
    let exporter = (w.export_interval_secs > 0).then(|| {
        let warehouse = warehouse.clone();
        let dir = w.parquet_dir.clone();
        let every = Duration::from_secs(w.export_interval_secs);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                match warehouse.export_parquet(&dir).await {
                    Ok(files) => tracing::info!(dir, files = files.len(), "warehouse exported"),
                    Err(e) => tracing::warn!(error = %e, "warehouse export failed"),
                }
            }
        })
    });
    let probe = warehouse.clone();
    let check = readiness(move || {
        let probe = probe.clone();
        async move { probe.ping().await.map_err(|e| e.to_string()) }
    });
    let batching = Batching::from_millis(w.max_batch, w.batch_window_ms, w.fetch_wait_ms);
    let every_topic: Vec<&str> = chaos_schemas::AGGREGATES.iter().map(|a| a.name).collect();
    let topics = topics(&settings, &every_topic);
    let registry = prometheus::Registry::new();
    let group = w.group_id.clone();
    let bind = w.http_bind.clone();
    let metrics = ProjectorMetrics::new(&registry);
    let runner = runner(
        "warehouse",
        &settings,
        &group,
        topics,
        batching,
        warehouse.clone(),
        &metrics,
    )
    .await?;
    let outcome = serve_runners(vec![runner], &bind, registry, vec![("duckdb", check)]).await;
    if let Some(exporter) = exporter {
        exporter.abort();
    }
    warehouse.close().await.context("closing the warehouse")?;
    outcome
}

async fn process_managers(settings: Settings) -> anyhow::Result<()> {
    let db = &settings.database;
    let pool = chaos_eventstore::pg::pool_options()
        .max_connections(db.max_connections)
        .acquire_timeout(Duration::from_millis(db.acquire_timeout_ms))
        .connect(db.url.expose_secret())
        .await
        .context("connecting to PostgreSQL")?;
    chaos_eventstore::pg::migrate(&pool).await?;
    let registry = prometheus::Registry::new();
    let repository = Repository::postgres(
        pool,
        GroupCommitConfig::default(),
        Some(AppendMetrics::new(&registry)),
    );
    let commands = CommandService::new(
        repository,
        chaos_platform::game::game_services(settings.content.load()?),
        // Their targets are commanded by the players meanwhile (a PvP victim casts between two
        // hits): read what was appended since before deciding, rather than lose the race.
        CommandSettings {
            refresh_cached: true,
            ..CommandSettings::default()
        },
        CommandMetrics::new(&registry),
        SnapshotMetrics::new(&registry),
    );
    let metrics = ProcessMetrics::new(&registry);
    let runner_metrics = ProjectorMetrics::new(&registry);
    let pm = &settings.process_managers;
    let batching = Batching::from_millis(pm.max_batch, pm.batch_window_ms, pm.fetch_wait_ms);
    let mut runners = Vec::new();
    for manager in process::all() {
        let name = format!("pm-{}", manager.name());
        let group = format!("{}{}", pm.group_prefix, manager.name());
        let topics = topics(&settings, manager.sources());
        let sink = ProcessSink::new(manager, commands.clone(), metrics.clone());
        runners.push(
            runner(
                &name,
                &settings,
                &group,
                topics,
                batching,
                sink,
                &runner_metrics,
            )
            .await?,
        );
    }
    let store = commands.clone();
    let check = readiness(move || {
        let store = store.clone();
        async move { store.ping().await.map_err(|e| e.to_string()) }
    });
    let bind = pm.http_bind.clone();
    serve_runners(runners, &bind, registry, vec![("event_store", check)]).await
}

async fn export(settings: &Settings, dir: &str) -> anyhow::Result<()> {
    let path = &settings.warehouse.path;
    let warehouse = Warehouse::open(path)
        .await
        .with_context(|| format!("opening the warehouse {path} (is a projector running?)"))?;
    let files = warehouse.export_parquet(dir).await;
    warehouse.close().await?;
    let mut out = std::io::stdout().lock();
    for file in files? {
        writeln!(out, "{}\t{} rows", file.path.display(), file.rows)?;
    }
    Ok(())
}

/// A Kafka runner of `sink` over `topics` (created when missing in development mode, checked in
/// production), with its dead-letter topic `chaos.deadletter.<name>`.
async fn runner(
    name: &str,
    settings: &Settings,
    group_id: &str,
    topics: Vec<String>,
    batching: Batching,
    sink: impl ProjectionSink + 'static,
    metrics: &ProjectorMetrics,
) -> anyhow::Result<KafkaRunner> {
    let dead_letter_topic = settings
        .kafka
        .topic(&chaos_schemas::dead_letter_topic(name));
    let mut all = topics.clone();
    all.push(dead_letter_topic.clone());
    prepare_topics(
        &settings.kafka,
        settings.environment,
        &all,
        &[("retention.ms", "-1")],
    )
    .await?;
    KafkaRunner::new(
        name,
        &settings.kafka,
        group_id,
        topics,
        dead_letter_topic,
        chaos_schemas::AvroCodec::new(&settings.schema_registry.url)?,
        sink,
        metrics.clone(),
        batching,
    )
}

/// Runs the runners until SIGTERM, serving metrics and health on `bind`.
async fn serve_runners(
    runners: Vec<KafkaRunner>,
    bind: &str,
    registry: prometheus::Registry,
    checks: Vec<(&'static str, ReadinessCheck)>,
) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let bind = bind.to_owned();
    let server = tokio::spawn(async move {
        serve(&bind, ops_router(registry, checks), async move {
            stop.cancelled().await
        })
        .await
    });
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        trigger.cancel();
    });
    let runs = runners.into_iter().map(|runner| {
        let shutdown = shutdown.clone();
        async move { runner.run(shutdown).await }
    });
    let outcomes = futures::future::join_all(runs).await;
    shutdown.cancel();
    server.await??;
    outcomes.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    Ok(())
}

/// The command line without `--config PATH` (read by the configuration loader).
fn positional_args() -> Vec<String> {
    let mut out = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--config" {
            args.next();
        } else if !arg.starts_with("--config=") {
            out.push(arg);
        }
    }
    out
}
