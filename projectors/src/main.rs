use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chaos_platform::http::{ops_router, readiness, serve};
use chaos_platform::kafka::ensure_topics;
use chaos_platform::{load_config, shutdown_signal, telemetry};
use chaos_projectors::config::{Settings, DEFAULTS};
use chaos_projectors::readmodel::{DocumentStore, RedisStore};
use chaos_projectors::runner::{KafkaRunner, ProjectorMetrics, SheetProjection};
use tokio_util::sync::CancellationToken;

/// `projector redis`: the Redis character-sheet projection. (More projections will be
/// subcommands of this binary.)
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let which = std::env::args().nth(1).unwrap_or_else(|| "redis".into());
    if which != "redis" {
        anyhow::bail!("unknown projection {which:?}; available: redis");
    }
    let settings: Settings = load_config(DEFAULTS)?;
    telemetry::init("projector", &settings.telemetry);
    let store = Arc::new(
        RedisStore::connect(&settings.redis.url)
            .await
            .context("connecting to Redis")?,
    );
    let topic = settings.kafka.topic(&chaos_schemas::topic_for(
        chaos_domain::character::AGGREGATE_TYPE,
    ));
    let dead_letter_topic = settings
        .kafka
        .topic(&chaos_schemas::dead_letter_topic("redis"));
    ensure_topics(
        &settings.kafka,
        &[topic.clone(), dead_letter_topic.clone()],
        &[("retention.ms", "-1")],
    )
    .await?;
    let registry = prometheus::Registry::new();
    let metrics = ProjectorMetrics::new(&registry);
    let projection = SheetProjection::new(
        store.clone(),
        settings.redis.key_prefix.clone(),
        settings.redis.model_version.clone(),
    );
    let runner = KafkaRunner::new(
        "redis",
        &settings.kafka,
        &settings.projector.group_id,
        topic,
        dead_letter_topic,
        chaos_schemas::AvroCodec::new(&settings.schema_registry.url)?,
        projection,
        metrics,
        settings.projector.max_batch,
        Duration::from_millis(settings.projector.batch_window_ms),
    )?;
    let shutdown = CancellationToken::new();
    let probe = store.clone();
    let checks = vec![(
        "redis",
        readiness(move || {
            let probe = probe.clone();
            async move { probe.ping().await.map_err(|e| e.to_string()) }
        }),
    )];
    let stop = shutdown.clone();
    let bind = settings.http.bind.clone();
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
    let outcome = runner.run(shutdown.clone()).await;
    shutdown.cancel();
    server.await??;
    outcome
}
