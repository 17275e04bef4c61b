//! Where the shared local services are: the variables `deploy/local/services.sh env` prints,
//! with the same local defaults.

use std::path::PathBuf;

/// Connection settings of the shared services every test isolates itself inside.
#[derive(Debug, Clone)]
pub struct ServiceUrls {
    /// An account allowed to `CREATE DATABASE` (the `chaos` superuser locally).
    pub database_url: String,
    pub redis_url: String,
    pub kafka_bootstrap: String,
    pub schema_registry_url: String,
}

fn var(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

impl ServiceUrls {
    pub fn from_env() -> Self {
        Self {
            database_url: var(
                "DATABASE_URL",
                "postgres://chaos:chaos@127.0.0.1:5432/chaos",
            ),
            redis_url: var("REDIS_URL", "redis://127.0.0.1:6379"),
            kafka_bootstrap: var("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
            schema_registry_url: var(
                "SCHEMA_REGISTRY_URL",
                "http://127.0.0.1:8081/apis/ccompat/v7",
            ),
        }
    }
}

/// The repository root (this crate lives in `<root>/tests`).
pub fn repo_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map_or(manifest.clone(), PathBuf::from)
}

/// The Python interpreter of the venv `services.sh` installs (confluent-kafka with Avro):
/// `CHAOS_VENV`, else `$CHAOS_CACHE/venv`, else `~/.cache/chaos-world/venv`.
pub fn venv_python() -> PathBuf {
    let venv = std::env::var("CHAOS_VENV")
        .ok()
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let cache = std::env::var("CHAOS_CACHE")
                .ok()
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
                        .join(".cache/chaos-world")
                });
            cache.join("venv")
        });
    venv.join("bin/python")
}
