use anyhow::Context;
use chaos_command_api::relay::{self, Relay, RelayMetrics, Settings, DEFAULTS};
use chaos_platform::http::{ops_router, readiness, serve};
use chaos_platform::kafka::prepare_topics;
use chaos_platform::{load_config, shutdown_signal, telemetry};
use secrecy::ExposeSecret;
use tokio_util::sync::CancellationToken;

#[global_allocator]
static GLOBAL: chaos_platform::Allocator = chaos_platform::ALLOCATOR;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    chaos_platform::disable_transparent_huge_pages();
    let settings: Settings = load_config(DEFAULTS)?;
    let _telemetry = telemetry::init("relay", &settings.telemetry);
    let pool = chaos_eventstore::pg::pool_options()
        .max_connections(4)
        .connect(settings.database.url.expose_secret())
        .await
        .context("connecting to PostgreSQL")?;
    chaos_eventstore::pg::migrate(&pool).await?;
    // Every registered aggregate's topic. Kafka is the second copy of history: keep it forever.
    let topics: Vec<String> = chaos_schemas::registry::topics()
        .iter()
        .map(|t| settings.kafka.topic(t))
        .collect();
    prepare_topics(
        &settings.kafka,
        settings.environment,
        &topics,
        &[("retention.ms", "-1")],
    )
    .await?;

    let registry = prometheus::Registry::new();
    let metrics = RelayMetrics::new(&registry);
    let codec = chaos_schemas::AvroCodec::new(&settings.schema_registry.url)?;
    let relay = Relay::new(
        pool.clone(),
        settings.kafka.clone(),
        codec,
        settings.relay,
        metrics,
    )?;

    let shutdown = CancellationToken::new();
    let db = pool.clone();
    let checks = vec![(
        "event_store",
        readiness(move || {
            let db = db.clone();
            async move {
                sqlx::query("SELECT 1")
                    .execute(&db)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        }),
    )];
    let ops = ops_router(registry, checks);
    let stop = shutdown.clone();
    let server = tokio::spawn(async move {
        serve(
            &settings.http.bind,
            ops,
            async move { stop.cancelled().await },
        )
        .await
    });
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        trigger.cancel();
    });
    relay::run(relay, shutdown.clone()).await?;
    shutdown.cancel();
    server.await??;
    Ok(())
}
