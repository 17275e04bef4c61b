use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chaos_platform::{load_config, shutdown_signal, telemetry};
use chaos_projectors::readmodel::RedisStore;
use chaos_query_api::config::{Settings, DEFAULTS};
use chaos_query_api::{router, AppState, QueryMetrics};

#[global_allocator]
static GLOBAL: chaos_platform::Allocator = chaos_platform::ALLOCATOR;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings: Settings = load_config(DEFAULTS)?;
    telemetry::init("query-api", &settings.telemetry);
    let store = RedisStore::connect(&settings.redis.url)
        .await
        .context("connecting to Redis")?;
    let registry = prometheus::Registry::new();
    let state = AppState {
        store: Arc::new(store),
        key_prefix: settings.redis.key_prefix,
        model_version: settings.redis.model_version,
        max_wait: Duration::from_millis(settings.consistency.max_wait_ms),
        metrics: QueryMetrics::new(&registry),
    };
    chaos_platform::http::serve(
        &settings.http.bind,
        router(state, registry),
        shutdown_signal(),
    )
    .await
}
