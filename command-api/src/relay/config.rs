use chaos_platform::config::{Environment, HttpConfig, RegistryConfig, TelemetryConfig};
use chaos_platform::kafka::KafkaConfig;
use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub environment: Environment,
    pub telemetry: TelemetryConfig,
    pub http: HttpConfig,
    pub database: DatabaseConfig,
    pub kafka: KafkaConfig,
    pub schema_registry: RegistryConfig,
    pub relay: RelayConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: SecretString,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayConfig {
    /// Most events read and produced per batch. Live, a batch is what was appended since the
    /// last one; catching up on a backlog, larger batches cost less per event
    /// (`relay_bench --batch N`: about 52,000 events/s at 250, 75,000 at 1,000, 100,000 at
    /// 5,000).
    pub batch_size: u32,
    /// Longest wait for a NOTIFY before looking anyway (the polling fallback).
    pub poll_interval_ms: u64,
    /// Live (no backlog), a batch starts at least this long after the one before it began, so
    /// a busy store's appends go out in fewer, larger batches: each one costs a read, a
    /// produce request per partition (librdkafka sends one partition per request), the
    /// consumers' fetches it wakes and a checkpoint, whatever its size (decision 45). 0: at
    /// once. An event waits up to this long more before it is read.
    pub batch_interval_ms: u64,
    /// Checkpoint row name; two relays with different names publish independently.
    pub checkpoint: String,
    /// The advisory lock key that elects the active instance.
    pub lock_key: i64,
    /// How often a standby tries to take the lock.
    pub standby_retry_ms: u64,
}

pub const DEFAULTS: &str = r#"
environment = "development"

[telemetry]
json = false
level = "info"
otlp_endpoint = ""
trace_sample_ratio = 1.0

[http]
bind = "127.0.0.1:9101"

[database]
url = "postgres://chaos:chaos@127.0.0.1:5432/chaos"

[kafka]
bootstrap_servers = "127.0.0.1:9092"
partitions = 6
replication_factor = 1

[schema_registry]
url = "http://127.0.0.1:8081/apis/ccompat/v7"

[relay]
batch_size = 5000
poll_interval_ms = 100
batch_interval_ms = 40
checkpoint = "relay"
lock_key = 7326002
standby_retry_ms = 1000
"#;
