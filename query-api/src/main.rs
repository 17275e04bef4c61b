use std::sync::Arc;

use anyhow::Context;
use chaos_platform::{load_config, shutdown_signal, telemetry};
use chaos_query_api::config::{Settings, DEFAULTS};
use chaos_query_api::{router, AppState};
use chaos_readmodel::{Keys, MongoStore, RedisStore};

#[global_allocator]
static GLOBAL: chaos_platform::Allocator = chaos_platform::ALLOCATOR;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    chaos_platform::disable_transparent_huge_pages();
    let settings: Settings = load_config(DEFAULTS)?;
    let _telemetry = telemetry::init("query-api", &settings.telemetry);
    settings
        .environment
        .check_jwt_secret(&settings.auth.jwt_secret)?;
    let store = RedisStore::open(&settings.redis)
        .await
        .context("connecting to Redis")?;
    let documents = MongoStore::open_reader(&settings.mongo)
        .await
        .context("connecting to MongoDB")?;
    let content = settings.content.load()?;
    let registry = prometheus::Registry::new();
    let state = AppState::new(Arc::new(store), &settings, &registry)
        .with_documents(
            Arc::new(documents),
            Keys::new(&settings.mongo.key_prefix, &settings.mongo.model_version),
        )
        .with_content(Arc::new(content));
    let app = router(state, registry, &settings.http);
    chaos_platform::http::serve(&settings.http.bind, app, shutdown_signal()).await
}
