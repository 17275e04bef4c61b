use chaos_platform::config::{ContentConfig, Environment, TelemetryConfig};
use secrecy::SecretString;
use serde::Deserialize;

/// The command API's settings. Defaults (below) work against the local services started by
/// `deploy/local/services.sh`; override with a TOML file or `CHAOS__SECTION__KEY`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub environment: Environment,
    pub telemetry: TelemetryConfig,
    pub http: HttpConfig,
    pub database: DatabaseConfig,
    pub auth: AuthConfig,
    pub rate_limit: RateLimitConfig,
    pub cache: CacheConfig,
    pub commands: CommandsConfig,
    #[serde(default)]
    pub content: ContentConfig,
}

pub const DEFAULTS: &str = r#"
environment = "development"

[content]
# A directory of content files; empty: the copy built into the binary.
dir = ""

[telemetry]
json = false
level = "info"
otlp_endpoint = ""
trace_sample_ratio = 1.0

[http]
bind = "127.0.0.1:8080"
body_limit_bytes = 16384
# A request still running after this answers 503 with Retry-After.
request_timeout_ms = 5000
# Requests served at once; more answer 503 with Retry-After at once instead of queueing.
max_concurrent_requests = 2048
# Behind an ingress: take the client address for throttling from X-Forwarded-For.
trust_forwarded_for = false

[database]
url = "postgres://chaos:chaos@127.0.0.1:5432/chaos"
max_connections = 32
# Waiting longer than this for a connection (the database is down or saturated) fails the
# request with 503 instead of hanging.
acquire_timeout_ms = 1000
# Group commit: concurrent commands' events are written together, one statement per batch.
append_writers = 3
append_batch_events = 1024
# The least time between two announcements of commits to the relay (one NOTIFY each). At most
# the relay's batch_interval_ms: a relay reading under load does not wait for them (decision 49).
append_notify_interval_ms = 20
# The least time between two reads of the store watch, which marks the cached aggregates other
# writers (the process managers, other replicas) appended to, so their next command reads what
# it missed instead of losing the append's race (decision 52). 0: no watch.
watch_interval_ms = 50

[auth]
# Development only: production sets CHAOS__AUTH__JWT_SECRET from a secret store (a service in
# production mode refuses to start with this one).
jwt_secret = "chaos-world-local-development-secret"
token_ttl_secs = 3600

[rate_limit]
per_account_per_sec = 200
burst = 400
# Logins and registrations per client address, and logins per username.
auth_per_ip_per_minute = 60
auth_per_ip_burst = 20
login_per_username_per_minute = 10
login_per_username_burst = 5

[cache]
aggregates = 100000

[commands]
# A snapshot every this many events of an aggregate (0: never).
snapshot_every = 250
# Longest wait for the event store on one load or append.
store_timeout_ms = 2000
"#;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    pub bind: String,
    pub body_limit_bytes: usize,
    pub request_timeout_ms: u64,
    pub max_concurrent_requests: usize,
    pub trust_forwarded_for: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: SecretString,
    pub max_connections: u32,
    pub acquire_timeout_ms: u64,
    /// Batches in flight at once (each holds a connection while it is written).
    pub append_writers: usize,
    /// Most events written by one batch.
    pub append_batch_events: usize,
    /// The least time between two NOTIFYs announcing commits to the relay.
    pub append_notify_interval_ms: u64,
    /// The least time between two reads of the store watch; 0 runs none.
    pub watch_interval_ms: u64,
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
    pub auth_per_ip_per_minute: u32,
    pub auth_per_ip_burst: u32,
    pub login_per_username_per_minute: u32,
    pub login_per_username_burst: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// Aggregates kept in memory; 0 disables the cache.
    pub aggregates: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandsConfig {
    pub snapshot_every: u64,
    pub store_timeout_ms: u64,
}
