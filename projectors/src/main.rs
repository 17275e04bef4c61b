use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chaos_platform::http::{ops_router, readiness, serve, ReadinessCheck};
use chaos_platform::kafka::ensure_topics;
use chaos_platform::{load_config, shutdown_signal, telemetry};
use chaos_projectors::config::{Settings, DEFAULTS};
use chaos_projectors::readmodel::{DocumentStore, RedisStore};
use chaos_projectors::runner::{KafkaRunner, ProjectionSink, ProjectorMetrics, SheetProjection};
use chaos_projectors::warehouse::Warehouse;
use tokio_util::sync::CancellationToken;

const USAGE: &str = "usage: projector [redis | warehouse | warehouse export [DIR]] [--config PATH]";

/// `projector redis`: the Redis character-sheet projection (the default).
/// `projector warehouse`: the DuckDB analytics warehouse.
/// `projector warehouse export [DIR]`: write the warehouse's Parquet files and exit (the
/// projector must be stopped: DuckDB locks its file).
#[global_allocator]
static GLOBAL: chaos_platform::Allocator = chaos_platform::ALLOCATOR;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = positional_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let settings: Settings = load_config(DEFAULTS)?;
    telemetry::init("projector", &settings.telemetry);
    match args.as_slice() {
        [] | ["redis"] => redis(settings).await,
        ["warehouse"] => warehouse(settings).await,
        ["warehouse", "export"] => export(&settings, &settings.warehouse.parquet_dir).await,
        ["warehouse", "export", dir] => export(&settings, dir).await,
        _ => anyhow::bail!("{USAGE}"),
    }
}

async fn redis(settings: Settings) -> anyhow::Result<()> {
    let store = Arc::new(
        RedisStore::connect(&settings.redis.url)
            .await
            .context("connecting to Redis")?,
    );
    let projection = SheetProjection::new(
        store.clone(),
        settings.redis.key_prefix.clone(),
        settings.redis.model_version.clone(),
    );
    let probe = store.clone();
    let check = readiness(move || {
        let probe = probe.clone();
        async move { probe.ping().await.map_err(|e| e.to_string()) }
    });
    let p = &settings.projector;
    let batching = (p.max_batch, Duration::from_millis(p.batch_window_ms));
    let bind = settings.http.bind.clone();
    run(
        "redis",
        &settings,
        &p.group_id,
        batching,
        &bind,
        projection,
        ("redis", check),
    )
    .await
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
    let batching = (w.max_batch, Duration::from_millis(w.batch_window_ms));
    let outcome = run(
        "warehouse",
        &settings,
        &w.group_id,
        batching,
        &w.http_bind,
        warehouse.clone(),
        ("duckdb", check),
    )
    .await;
    if let Some(exporter) = exporter {
        exporter.abort();
    }
    warehouse.close().await.context("closing the warehouse")?;
    outcome
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

/// Consumes the character topic into `sink` until SIGTERM, serving metrics and health.
async fn run(
    name: &str,
    settings: &Settings,
    group_id: &str,
    (max_batch, batch_window): (usize, Duration),
    bind: &str,
    sink: impl ProjectionSink + 'static,
    check: (&'static str, ReadinessCheck),
) -> anyhow::Result<()> {
    let topic = settings.kafka.topic(&chaos_schemas::topic_for(
        chaos_domain::character::AGGREGATE_TYPE,
    ));
    let dead_letter_topic = settings
        .kafka
        .topic(&chaos_schemas::dead_letter_topic(name));
    ensure_topics(
        &settings.kafka,
        &[topic.clone(), dead_letter_topic.clone()],
        &[("retention.ms", "-1")],
    )
    .await?;
    let registry = prometheus::Registry::new();
    let metrics = ProjectorMetrics::new(&registry);
    let runner = KafkaRunner::new(
        name,
        &settings.kafka,
        group_id,
        topic,
        dead_letter_topic,
        chaos_schemas::AvroCodec::new(&settings.schema_registry.url)?,
        sink,
        metrics,
        max_batch,
        batch_window,
    )?;
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let bind = bind.to_owned();
    let server = tokio::spawn(async move {
        serve(&bind, ops_router(registry, vec![check]), async move {
            stop.cancelled().await
        })
        .await
    });
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        trigger.cancel();
    });
    let outcome = runner.run(shutdown.clone()).await;
    shutdown.cancel();
    server.await??;
    outcome
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
