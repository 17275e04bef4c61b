//! The services over TLS, as in production (MSK accepts only TLS with SCRAM; ElastiCache requires
//! TLS and AUTH): the relay, the projector and the process managers talk to the local broker's
//! SASL_SSL listener with SCRAM-SHA-512, the projector and the query API to the TLS Redis with a
//! password, all trusting the local test CA. A command must reach the read model through them.
//!
//! Needs `deploy/local/services.sh up` (which starts the TLS listeners and exports their settings:
//! KAFKA_TLS_BOOTSTRAP_SERVERS, KAFKA_TLS_CA_FILE, KAFKA_SASL_*, REDIS_TLS_URL, REDIS_TLS_CA_FILE)
//! and the binaries.

use std::time::Duration;

use chaos_tests::{Stack, StackOptions};

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: eval \"$(deploy/local/services.sh env)\" exports it")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_runs_over_tls_with_sasl_and_redis_auth() {
    let (bootstrap, ca, mechanism, user, password) = (
        var("KAFKA_TLS_BOOTSTRAP_SERVERS"),
        var("KAFKA_TLS_CA_FILE"),
        var("KAFKA_SASL_MECHANISM"),
        var("KAFKA_SASL_USERNAME"),
        var("KAFKA_SASL_PASSWORD"),
    );
    let (redis_url, redis_ca) = (var("REDIS_TLS_URL"), var("REDIS_TLS_CA_FILE"));
    let mut options = StackOptions::default();
    for binary in ["relay", "projector"] {
        options = options
            .with_env(binary, "CHAOS__KAFKA__BOOTSTRAP_SERVERS", &bootstrap)
            .with_env(binary, "CHAOS__KAFKA__SECURITY_PROTOCOL", "sasl_ssl")
            .with_env(binary, "CHAOS__KAFKA__SASL_MECHANISM", &mechanism)
            .with_env(binary, "CHAOS__KAFKA__SASL_USERNAME", &user)
            .with_env(binary, "CHAOS__KAFKA__SASL_PASSWORD", &password)
            .with_env(binary, "CHAOS__KAFKA__SSL_CA_LOCATION", &ca);
    }
    // The password travels in its own (secret) setting, not in the URL.
    let bare_url = redis_url.replacen(":chaos-secret@", "", 1);
    for binary in ["projector", "query-api"] {
        options = options
            .with_env(binary, "CHAOS__REDIS__URL", &bare_url)
            .with_env(binary, "CHAOS__REDIS__PASSWORD", "chaos-secret")
            .with_env(binary, "CHAOS__REDIS__CA_FILE", &redis_ca);
    }
    let stack = Stack::start(options).await.unwrap();
    let api = stack.commands();
    let player = api.player("secure").await.unwrap();
    let character = api
        .create_character(&player.token, "Sealed", "mage", &[])
        .await
        .unwrap()
        .answer()
        .unwrap();
    let cast = api
        .cast_skill(&player.token, &character.aggregate_id, "fireball", &[])
        .await
        .unwrap()
        .answer()
        .unwrap();
    // Through the relay (TLS + SCRAM), the projector (TLS + SCRAM in, TLS + AUTH out) and the
    // query API (TLS + AUTH): the sheet at the cast's version, and the wallet the process
    // managers opened (their consumer group reads over TLS too).
    let queries = stack.queries();
    let sheet = queries
        .wait_for_version(
            &character.aggregate_id,
            cast.sequence,
            Duration::from_secs(90),
        )
        .await
        .unwrap();
    assert_eq!(sheet["xp"], 5, "{sheet}");
    queries
        .wait_for_wallet(&character.aggregate_id, 1, Duration::from_secs(90))
        .await
        .unwrap();
}
