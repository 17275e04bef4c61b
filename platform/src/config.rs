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

/// Settings every service has.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// JSON log lines (for log shippers) instead of human-readable ones.
    pub json: bool,
    /// A `tracing` filter directive, e.g. `info,chaos_projectors=debug`.
    pub level: String,
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
