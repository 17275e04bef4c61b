use chaos_platform::config::{
    ContentConfig, Environment, HttpConfig, RegistryConfig, TelemetryConfig,
};
use chaos_platform::kafka::KafkaConfig;
pub use chaos_readmodel::redis::RedisConfig;
use chaos_readmodel::MongoConfig;
use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub environment: Environment,
    pub telemetry: TelemetryConfig,
    pub http: HttpConfig,
    pub kafka: KafkaConfig,
    pub schema_registry: RegistryConfig,
    pub redis: RedisConfig,
    pub projector: ProjectorConfig,
    /// Used only by `projector warehouse`.
    pub warehouse: WarehouseConfig,
    /// Used only by `projector mongo`.
    pub mongo: MongoProjectorConfig,
    /// Used only by `projector process-managers`: the event store they command.
    pub database: DatabaseConfig,
    pub process_managers: ProcessManagersConfig,
    /// Used only by `projector process-managers`: the rules their commands are decided by.
    #[serde(default)]
    pub content: ContentConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: SecretString,
    pub max_connections: u32,
    pub acquire_timeout_ms: u64,
}

/// `projector process-managers`: every process manager, each its own consumer group.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessManagersConfig {
    /// Consumer group of manager `m` is `<group_prefix><m>`.
    pub group_prefix: String,
    pub max_batch: usize,
    pub batch_window_ms: u64,
    /// As [`ProjectorConfig::fetch_wait_ms`].
    pub fetch_wait_ms: u64,
    /// The ops server (metrics, health) of the process managers.
    pub http_bind: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectorConfig {
    pub group_id: String,
    /// Most messages applied in one batch (one pipelined round trip to the sink).
    pub max_batch: usize,
    /// How long to keep filling a batch once the first message arrived.
    pub batch_window_ms: u64,
    /// How long Kafka may hold a fetch to gather a megabyte (fewer, larger fetches: less CPU
    /// here and in Kafka, up to this much added latency); 0 answers each fetch at once.
    pub fetch_wait_ms: u64,
}

/// The analytics warehouse projection (`projector warehouse`). Its own consumer group, batch
/// size and ops port, so it runs beside the Redis projection with the same configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarehouseConfig {
    /// The DuckDB database file (one process at a time: DuckDB locks it).
    pub path: String,
    /// Where Parquet exports go, one file per table.
    pub parquet_dir: String,
    /// Export to `parquet_dir` this often while running; 0 exports only on
    /// `projector warehouse export`.
    pub export_interval_secs: u64,
    pub group_id: String,
    /// Bigger than the Redis projection's: a DuckDB transaction costs about the same for 10 rows
    /// as for 5,000.
    pub max_batch: usize,
    pub batch_window_ms: u64,
    /// As [`ProjectorConfig::fetch_wait_ms`].
    pub fetch_wait_ms: u64,
    /// The ops server (metrics, health) of the warehouse projector.
    pub http_bind: String,
}

/// The MongoDB projection (`projector mongo`): where the documents go and how the feed runs.
/// Its own consumer group, batch size and ops port, so it runs beside the Redis projection with
/// the same configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MongoProjectorConfig {
    /// See [`MongoConfig`] (`url`, `database`, `key_prefix`, `model_version`, `ca_file`): the
    /// query API reads with the same values.
    pub url: SecretString,
    pub database: String,
    pub key_prefix: String,
    pub model_version: String,
    pub ca_file: String,
    pub group_id: String,
    /// Bigger than the Redis projection's: a batch costs a handful of round trips whatever its
    /// size.
    pub max_batch: usize,
    pub batch_window_ms: u64,
    /// As [`ProjectorConfig::fetch_wait_ms`].
    pub fetch_wait_ms: u64,
    /// The ops server (metrics, health) of the MongoDB projector.
    pub http_bind: String,
}

impl MongoProjectorConfig {
    /// The store's part.
    pub fn store(&self) -> MongoConfig {
        MongoConfig {
            url: self.url.clone(),
            database: self.database.clone(),
            key_prefix: self.key_prefix.clone(),
            model_version: self.model_version.clone(),
            ca_file: self.ca_file.clone(),
        }
    }
}

pub const DEFAULTS: &str = r#"
environment = "development"

[telemetry]
json = false
level = "info"
otlp_endpoint = ""
trace_sample_ratio = 1.0

[http]
bind = "127.0.0.1:9102"

[kafka]
bootstrap_servers = "127.0.0.1:9092"
partitions = 6
replication_factor = 1

[schema_registry]
url = "http://127.0.0.1:8081/apis/ccompat/v7"

[redis]
url = "redis://127.0.0.1:6379"
key_prefix = "chaos:"
model_version = "v1"
password = ""
ca_file = ""

[projector]
group_id = "chaos-projector-redis"
max_batch = 500
batch_window_ms = 2
# Players read their sheets right after their commands: no added latency.
fetch_wait_ms = 0

[warehouse]
path = ".chaos/warehouse/chaos.duckdb"
parquet_dir = ".chaos/warehouse/parquet"
export_interval_secs = 0
group_id = "chaos-projector-warehouse"
max_batch = 5000
batch_window_ms = 50
# Analysts can wait half a second: a few large batches a second (decisions 40 and 46).
fetch_wait_ms = 500
http_bind = "127.0.0.1:9103"

[mongo]
url = "mongodb://127.0.0.1:27017/?directConnection=true"
database = "chaos"
key_prefix = "chaos:"
model_version = "v1"
ca_file = ""
group_id = "chaos-projector-mongo"
max_batch = 2000
batch_window_ms = 20
fetch_wait_ms = 50
http_bind = "127.0.0.1:9104"

[database]
url = "postgres://chaos:chaos@127.0.0.1:5432/chaos"
max_connections = 8
acquire_timeout_ms = 2000

[process_managers]
group_prefix = "chaos-pm-"
max_batch = 200
batch_window_ms = 5
# A PvP hit reaches its victim through the combat manager: a short wait only.
fetch_wait_ms = 20
http_bind = "127.0.0.1:9105"
"#;
