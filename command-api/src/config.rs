use chaos_platform::config::TelemetryConfig;
use secrecy::SecretString;
use serde::Deserialize;

/// The command API's settings. Defaults (below) work against the local services started by
/// `deploy/local/services.sh`; override with a TOML file or `CHAOS__SECTION__KEY`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub telemetry: TelemetryConfig,
    pub http: HttpConfig,
    pub database: DatabaseConfig,
    pub auth: AuthConfig,
    pub rate_limit: RateLimitConfig,
    pub cache: CacheConfig,
}

pub const DEFAULTS: &str = r#"
[telemetry]
json = false
level = "info"

[http]
bind = "127.0.0.1:8080"
body_limit_bytes = 16384

[database]
url = "postgres://chaos:chaos@127.0.0.1:5432/chaos"
max_connections = 32
# Group commit: concurrent commands' events are written together, one statement per batch.
append_writers = 3
append_batch_events = 1024

[auth]
# Development only: production sets CHAOS__AUTH__JWT_SECRET from a secret store.
jwt_secret = "chaos-world-local-development-secret"
token_ttl_secs = 3600

[rate_limit]
per_account_per_sec = 200
burst = 400

[cache]
aggregates = 100000
"#;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    pub bind: String,
    pub body_limit_bytes: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: SecretString,
    pub max_connections: u32,
    /// Batches in flight at once (each holds a connection while it is written).
    pub append_writers: usize,
    /// Most events written by one batch.
    pub append_batch_events: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    pub jwt_secret: SecretString,
    pub token_ttl_secs: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    pub per_account_per_sec: u32,
    pub burst: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// Aggregates kept in memory; 0 disables the cache.
    pub aggregates: usize,
}
