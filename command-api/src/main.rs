use std::sync::Arc;

use anyhow::Context;
use chaos_command_api::auth::{JwtKeys, PgAccountStore};
use chaos_command_api::config::{Config, DEFAULTS};
use chaos_command_api::names::{self, PgNameRegistry};
use chaos_command_api::ratelimit::RateLimiter;
use chaos_command_api::service::CommandService;
use chaos_command_api::state::AppState;
use chaos_command_api::store::es::PgCharacterStore;
use chaos_command_api::store::{CachedStore, CharacterStore};
use chaos_command_api::{app, config};
use chaos_eventstore::group_commit::{AppendMetrics, GroupCommitConfig};
use chaos_platform::{load_config, shutdown_signal, telemetry};
use secrecy::ExposeSecret;

#[global_allocator]
static GLOBAL: chaos_platform::Allocator = chaos_platform::ALLOCATOR;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config: Config = load_config(DEFAULTS)?;
    telemetry::init("command-api", &config.telemetry);
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(config.database.max_connections)
        .connect(config.database.url.expose_secret())
        .await
        .context("connecting to PostgreSQL")?;
    chaos_eventstore::pg::migrate(&pool).await?;
    let accounts = PgAccountStore::new(pool.clone()).await?;
    let names = PgNameRegistry::new(pool.clone(), names::ABANDONED_AFTER).await?;
    let content = chaos_domain::Content::builtin()?;
    let registry = prometheus::Registry::new();
    let pg = PgCharacterStore::with_group_commit(
        pool,
        GroupCommitConfig {
            writers: config.database.append_writers,
            max_batch_events: config.database.append_batch_events,
            ..GroupCommitConfig::default()
        },
        Some(AppendMetrics::new(&registry)),
    );
    let store: Arc<dyn CharacterStore> = match config.cache.aggregates {
        0 => Arc::new(pg),
        n => Arc::new(CachedStore::new(pg, n)),
    };
    let state = AppState {
        commands: CommandService::new(
            store,
            Arc::new(names),
            app::character_services(content),
            app::appended_counter(&registry),
        ),
        accounts: Arc::new(accounts),
        jwt: JwtKeys::new(&config.auth.jwt_secret, config.auth.token_ttl_secs),
        limiter: Arc::new(RateLimiter::new(
            config.rate_limit.per_account_per_sec,
            config.rate_limit.burst,
        )),
    };
    let _: &config::HttpConfig = &config.http;
    let router = app::router(state, registry, config.http.body_limit_bytes);
    chaos_platform::http::serve(&config.http.bind, router, shutdown_signal()).await
}
