use chaos_platform::config::{HttpConfig, TelemetryConfig};
/// The same Redis settings as the projector's: both sides must agree on the key layout.
pub use chaos_projectors::config::RedisConfig;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub telemetry: TelemetryConfig,
    pub http: HttpConfig,
    pub redis: RedisConfig,
    pub consistency: ConsistencyConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyConfig {
    pub max_wait_ms: u64,
}

pub const DEFAULTS: &str = r#"
[telemetry]
json = false
level = "info"

[http]
bind = "127.0.0.1:8082"

[redis]
url = "redis://127.0.0.1:6379"
key_prefix = "chaos:"
model_version = "v1"

[consistency]
max_wait_ms = 2000
"#;
