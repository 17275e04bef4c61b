//! Kafka client settings shared by the relay, the projectors and the operator tools.

use std::collections::BTreeMap;

use rdkafka::ClientConfig;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    pub bootstrap_servers: String,
    /// `plaintext` (local), `ssl`, `sasl_plaintext` or `sasl_ssl` (MSK with SCRAM).
    #[serde(default = "default_protocol")]
    pub security_protocol: String,
    /// `SCRAM-SHA-512` (MSK), `SCRAM-SHA-256` or `PLAIN`; used with a `sasl_*` protocol.
    #[serde(default)]
    pub sasl_mechanism: String,
    #[serde(default)]
    pub sasl_username: String,
    #[serde(default)]
    pub sasl_password: secrecy::SecretString,
    /// PEM file of the CA that signed the brokers' certificates; empty: the system roots.
    #[serde(default)]
    pub ssl_ca_location: String,
    /// Prepended to every topic name (isolates tests and tenants on a shared cluster). Empty in
    /// production: analysts rely on the plain `chaos.<aggregate>.events` names.
    #[serde(default)]
    pub topic_prefix: String,
    /// Partitions for topics this service creates when they are missing.
    pub partitions: i32,
    pub replication_factor: i32,
    /// Raw librdkafka options passed through unchanged (`security.protocol`, `sasl.*`, ...).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

fn default_protocol() -> String {
    "plaintext".to_owned()
}

impl KafkaConfig {
    pub fn topic(&self, name: &str) -> String {
        format!("{}{name}", self.topic_prefix)
    }

    /// Client settings: the brokers, the security settings, then the raw `options` (which win).
    pub fn client_config(&self) -> ClientConfig {
        use secrecy::ExposeSecret;
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap_servers)
            .set("security.protocol", &self.security_protocol);
        if self.security_protocol.starts_with("sasl") {
            config
                .set("sasl.mechanism", &self.sasl_mechanism)
                .set("sasl.username", &self.sasl_username)
                .set("sasl.password", self.sasl_password.expose_secret());
        }
        if !self.ssl_ca_location.is_empty() {
            config.set("ssl.ca.location", &self.ssl_ca_location);
        }
        for (k, v) in &self.options {
            config.set(k, v);
        }
        config
    }
}

/// Deletes topics; ones that do not exist are fine. For test clean-up and operator tools.
pub async fn delete_topics(client: &ClientConfig, topics: &[String]) -> anyhow::Result<()> {
    use rdkafka::admin::{AdminClient, AdminOptions};
    use rdkafka::client::DefaultClientContext;

    let admin: AdminClient<DefaultClientContext> = client.create()?;
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    let options = AdminOptions::new().operation_timeout(Some(std::time::Duration::from_secs(10)));
    // Per-topic errors (UnknownTopicOrPartition) are expected for topics never created.
    let _ = admin.delete_topics(&names, &options).await?;
    Ok(())
}

/// The topics a service needs: in development mode created when missing; in production mode only
/// checked (operators create topics with the cluster's replication, partitions and retention),
/// failing with the list of missing ones.
pub async fn prepare_topics(
    config: &KafkaConfig,
    environment: crate::config::Environment,
    topics: &[String],
    topic_config: &[(&str, &str)],
) -> anyhow::Result<()> {
    if environment.is_production() {
        check_topics(config, topics).await
    } else {
        ensure_topics(config, topics, topic_config).await
    }
}

/// Fails unless every topic exists.
pub async fn check_topics(config: &KafkaConfig, topics: &[String]) -> anyhow::Result<()> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = config.client_config().create()?;
    let wanted = topics.to_vec();
    let metadata = tokio::task::spawn_blocking(move || {
        consumer.fetch_metadata(None, std::time::Duration::from_secs(30))
    })
    .await??;
    let present: std::collections::HashSet<&str> =
        metadata.topics().iter().map(|t| t.name()).collect();
    let missing: Vec<&String> = wanted
        .iter()
        .filter(|t| !present.contains(t.as_str()))
        .collect();
    if !missing.is_empty() {
        anyhow::bail!(
            "Kafka topics missing (production mode does not create topics): {}",
            missing
                .iter()
                .map(|t| t.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

/// Creates the topics that are missing (an existing topic is left as it is).
pub async fn ensure_topics(
    config: &KafkaConfig,
    topics: &[String],
    topic_config: &[(&str, &str)],
) -> anyhow::Result<()> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::types::RDKafkaErrorCode;

    let admin: AdminClient<DefaultClientContext> = config.client_config().create()?;
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| {
            let mut topic = NewTopic::new(
                t,
                config.partitions,
                TopicReplication::Fixed(config.replication_factor),
            );
            for (k, v) in topic_config {
                topic = topic.set(k, v);
            }
            topic
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(std::time::Duration::from_secs(30)));
    for result in admin.create_topics(new.iter(), &options).await? {
        match result {
            Ok(name) => tracing::info!(topic = %name, "topic created"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => anyhow::bail!("creating topic {name} failed: {code}"),
        }
    }
    Ok(())
}
