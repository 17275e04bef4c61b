use chaos_platform::config::{ContentConfig, Environment, TelemetryConfig};
/// The same MongoDB settings as `projector mongo`'s.
pub use chaos_readmodel::MongoConfig;
/// The same Redis settings as the projector's: both sides must agree on the key layout.
pub use chaos_readmodel::RedisConfig;
use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub environment: Environment,
    pub telemetry: TelemetryConfig,
    pub http: HttpConfig,
    pub redis: RedisConfig,
    pub mongo: MongoConfig,
    pub consistency: ConsistencyConfig,
    pub presence: PresenceConfig,
    /// The same files the command API runs (derived stats, item names, zones).
    #[serde(default)]
    pub content: ContentConfig,
    pub auth: AuthConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    pub bind: String,
    pub request_timeout_ms: u64,
    pub max_concurrent_requests: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyConfig {
    pub max_wait_ms: u64,
}

/// Who counts as present in a zone.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresenceConfig {
    /// A character that acted in a zone within this many seconds is present there.
    pub window_secs: u64,
}

/// The command API's token secret: private read models are their owner's alone.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    pub jwt_secret: SecretString,
    pub token_ttl_secs: i64,
}

pub const DEFAULTS: &str = r#"
environment = "development"

[telemetry]
json = false
level = "info"
otlp_endpoint = ""
trace_sample_ratio = 1.0

[http]
bind = "127.0.0.1:8082"
request_timeout_ms = 5000
max_concurrent_requests = 4096

[redis]
url = "redis://127.0.0.1:6379"
key_prefix = "chaos:"
model_version = "v1"
password = ""
ca_file = ""

[mongo]
url = "mongodb://127.0.0.1:27017/?directConnection=true"
database = "chaos"
key_prefix = "chaos:"
model_version = "v1"
ca_file = ""

[consistency]
max_wait_ms = 2000

[presence]
window_secs = 300

[content]
dir = ""

[auth]
# Development only, and the same as the command API's (it issues the tokens).
jwt_secret = "chaos-world-local-development-secret"
token_ttl_secs = 3600
"#;
