//! Typed, layered configuration: the service's compiled-in defaults, then an optional TOML file
//! (`--config PATH` or `CHAOS_CONFIG`), then `CHAOS__SECTION__KEY` environment variables.
//! Every setting has a working local default, so a service runs with no configuration at all.

use serde::de::DeserializeOwned;
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
#[error("configuration is invalid: {0}")]
pub struct ConfigError(#[from] ::config::ConfigError);

/// Loads `T` from `defaults` (TOML text), the optional file, and the environment.
pub fn load_config<T: DeserializeOwned>(defaults: &str) -> Result<T, ConfigError> {
    let file = config_path_from_args().or_else(|| std::env::var("CHAOS_CONFIG").ok());
    load_config_from(defaults, file.as_deref(), std::env::vars())
}

/// As [`load_config`], with the file and environment given explicitly (for tests).
pub fn load_config_from<T: DeserializeOwned>(
    defaults: &str,
    file: Option<&str>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<T, ConfigError> {
    use ::config::{Config, Environment, File, FileFormat};
    let env: std::collections::HashMap<String, String> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with("CHAOS__"))
        .collect();
    let mut builder = Config::builder().add_source(File::from_str(defaults, FileFormat::Toml));
    if let Some(path) = file {
        builder = builder.add_source(File::new(path, FileFormat::Toml).required(true));
    }
    let built = builder
        .add_source(
            Environment::with_prefix("CHAOS")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .source(Some(env)),
        )
        .build()?;
    Ok(built.try_deserialize()?)
}

fn config_path_from_args() -> Option<String> {
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--config" {
            return args.next();
        }
        if let Some(path) = arg.strip_prefix("--config=") {
            return Some(path.to_owned());
        }
    }
    None
}

/// Which kind of deployment a service runs in. `development` (the local default) may use the
/// built-in development JWT secret and creates the Kafka topics it needs; `production` refuses
/// the development secret and only checks that its topics exist (operators create them with the
/// cluster's replication and partitions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Development,
    Production,
}

impl Environment {
    pub fn is_production(self) -> bool {
        self == Self::Production
    }

    /// Refuses the built-in development JWT secret outside development mode.
    pub fn check_jwt_secret(self, secret: &secrecy::SecretString) -> anyhow::Result<()> {
        use secrecy::ExposeSecret;
        if self.is_production() && secret.expose_secret() == crate::auth::DEVELOPMENT_SECRET {
            anyhow::bail!(
                "refusing to start in production mode with the built-in development JWT secret: \
                 set auth.jwt_secret (CHAOS__AUTH__JWT_SECRET) from the secret store"
            );
        }
        if self.is_production() && secret.expose_secret().len() < 32 {
            anyhow::bail!("auth.jwt_secret must be at least 32 bytes in production mode");
        }
        Ok(())
    }
}

/// Where a service listens (for the relay and projectors: health and metrics only).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    pub bind: String,
}

/// The Confluent-compatible schema registry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    pub url: String,
}

/// The game content (classes, skills, zones, items, recipes, NPCs): versioned data files,
/// validated when loaded (a bad file stops start-up naming the file, entry and field).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentConfig {
    /// A directory holding the content files; empty: the copy built into the binary.
    #[serde(default)]
    pub dir: String,
}

impl ContentConfig {
    pub fn load(&self) -> anyhow::Result<chaos_domain::Content> {
        if self.dir.is_empty() {
            return Ok(chaos_domain::Content::builtin()?);
        }
        chaos_domain::Content::from_dir(&self.dir)
            .map_err(|e| anyhow::anyhow!("loading the content from {}: {e}", self.dir))
    }
}

/// Settings every service has.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// JSON log lines (for log shippers) instead of human-readable ones.
    pub json: bool,
    /// A `tracing` filter directive, e.g. `info,chaos_projectors=debug`.
    pub level: String,
    /// OTLP/HTTP traces endpoint (e.g. `http://jaeger-collector:4318`); empty: no export.
    #[serde(default)]
    pub otlp_endpoint: String,
    /// Share of traces sampled at the root, 0.0 to 1.0 (a sampled parent is always followed).
    #[serde(default = "default_sample_ratio")]
    pub trace_sample_ratio: f64,
}

fn default_sample_ratio() -> f64 {
    1.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Cfg {
        telemetry: TelemetryConfig,
        http: Http,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Http {
        bind: String,
        body_limit: usize,
    }

    const DEFAULTS: &str = r#"
        [telemetry]
        json = false
        level = "info"
        [http]
        bind = "127.0.0.1:8080"
        body_limit = 16384
    "#;

    #[test]
    fn environment_overrides_defaults_with_typed_values() {
        let env = [
            ("CHAOS__HTTP__BODY_LIMIT".to_string(), "99".to_string()),
            ("CHAOS__TELEMETRY__JSON".to_string(), "true".to_string()),
            ("UNRELATED".to_string(), "x".to_string()),
        ];
        let cfg: Cfg = load_config_from(DEFAULTS, None, env).unwrap();
        assert_eq!(cfg.http.body_limit, 99);
        assert!(cfg.telemetry.json);
        assert_eq!(cfg.http.bind, "127.0.0.1:8080");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let env = [("CHAOS__HTTP__BIND_TYPO".to_string(), "x".to_string())];
        let err = load_config_from::<Cfg>(DEFAULTS, None, env).unwrap_err();
        assert!(err.to_string().contains("bind_typo"), "{err}");
    }
}
