//! chaosctl's settings: the same layered configuration as the services (compiled-in defaults,
//! `--config FILE`, `CHAOS__SECTION__KEY`), holding what it needs to reach: the event store, Kafka
//! and the registry, the read-model stores, and the names the services use (consumer groups,
//! checkpoints). The defaults are the services' own local defaults.

use chaos_platform::config::RegistryConfig;
use chaos_platform::kafka::KafkaConfig;
use chaos_readmodel::{MongoConfig, RedisConfig};
use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub database: DatabaseConfig,
    pub kafka: KafkaConfig,
    pub schema_registry: RegistryConfig,
    pub redis: RedisConfig,
    pub mongo: MongoConfig,
    pub embedded: EmbeddedConfig,
    pub warehouse: WarehouseConfig,
    pub relay: RelayConfig,
    pub lag: LagConfig,
    pub rebuild: RebuildConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// The event store (PostgreSQL).
    pub url: SecretString,
}

/// The embedded read models' layout (the query API's defaults, which the embedded mode uses).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddedConfig {
    pub key_prefix: String,
    pub model_version: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarehouseConfig {
    /// The distributed warehouse projector's DuckDB file.
    pub path: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayConfig {
    /// The relay's checkpoint (and stopped-streams) name: `relay.checkpoint` of the relay.
    pub checkpoint: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LagConfig {
    /// Consumer groups whose names start with one of these are reported (the projectors'
    /// `chaos-projector-*` and the process managers' `chaos-pm-*`).
    pub group_prefixes: Vec<String>,
    /// Groups reported even if they match no prefix.
    #[serde(default)]
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RebuildConfig {
    /// Events per batch read from the event store into a document store (Redis, MongoDB, the
    /// embedded read models). Big batches write each document once for several of its events;
    /// many lanes keep each write's document set small (1M events over 10,000 characters into
    /// Redis: 50,000/64 ran at 164,000 events/s, 100,000/64 at 193,000–229,000, 200,000/64 at
    /// 221,000–250,000, about 600 MB resident).
    pub batch: u32,
    /// Events per batch read from the event store into the warehouse (DuckDB appends; 20,000
    /// ran at 63,500 events/s, 200,000 at 54,000).
    pub warehouse_batch: u32,
    /// Events per transaction of a warehouse rebuild from the event store (the feed's position
    /// commits with them; a kill loses at most one transaction's worth of progress).
    pub warehouse_commit: u64,
    /// Parallel lanes a batch from the event store is written in (by document).
    pub lanes: usize,
    /// Most messages per batch read from Kafka.
    pub kafka_batch: usize,
    /// After the switch, how long the live projections get to notice it before the final
    /// catch-up (they read the served version before every batch).
    pub grace_ms: u64,
    /// The consumer group of a rebuild from Kafka is `<group_prefix><key prefix><version>`.
    pub group_prefix: String,
}

pub const DEFAULTS: &str = r#"
[database]
url = "postgres://chaos:chaos@127.0.0.1:5432/chaos"

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

[mongo]
url = "mongodb://127.0.0.1:27017/?directConnection=true"
database = "chaos"
key_prefix = "chaos:"
model_version = "v1"
ca_file = ""

[embedded]
key_prefix = "chaos:"
model_version = "v1"

[warehouse]
path = ".chaos/warehouse/chaos.duckdb"

[relay]
checkpoint = "relay"

[lag]
group_prefixes = ["chaos-"]
groups = []

[rebuild]
batch = 200000
warehouse_batch = 20000
warehouse_commit = 1000000
lanes = 64
kafka_batch = 5000
grace_ms = 3000
group_prefix = "chaosctl-rebuild-"
"#;
