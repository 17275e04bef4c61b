#!/bin/sh
# Creates the Kafka topics the services need and shows them (kafka-topics Job, setup-jobs.yaml). In
# production mode the services only check that their topics exist, with the partition count and
# replication factor of their configuration; this is what creates them. Idempotent
# (--if-not-exists): an existing topic is never changed; its description is printed so that a
# mismatch shows in the Job's log.
#
# Environment: BOOTSTRAP_SERVERS, TOPICS (space-separated), PARTITIONS, REPLICATION_FACTOR,
# TOPIC_CONFIGS (space-separated key=value, e.g. retention.ms=-1), SECURITY_PROTOCOL
# (SASL_SSL or PLAINTEXT), SASL_USERNAME, SASL_PASSWORD (SCRAM-SHA-512), SSL_CA_FILE (optional PEM
# bundle; default: the JVM's trust store, which has the public roots MSK's certificates chain to).
# Runs in the apache/kafka image (kafka-topics.sh on PATH at /opt/kafka/bin), or anywhere
# KAFKA_TOPICS points at a kafka-topics command.
set -eu

: "${BOOTSTRAP_SERVERS:?}" "${TOPICS:?}" "${PARTITIONS:?}" "${REPLICATION_FACTOR:?}"
KAFKA_TOPICS=${KAFKA_TOPICS:-/opt/kafka/bin/kafka-topics.sh}
config=${TMPDIR:-/tmp}/kafka-client.properties
umask 077
case "${SECURITY_PROTOCOL:-SASL_SSL}" in
  SASL_SSL | sasl_ssl)
    : "${SASL_USERNAME:?}" "${SASL_PASSWORD:?}"
    cat >"$config" <<PROPS
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$SASL_USERNAME" password="$SASL_PASSWORD";
PROPS
    if [ -n "${SSL_CA_FILE:-}" ]; then
      printf 'ssl.truststore.type=PEM\nssl.truststore.location=%s\n' "$SSL_CA_FILE" >>"$config"
    fi
    ;;
  PLAINTEXT | plaintext) echo "security.protocol=PLAINTEXT" >"$config" ;;
  *) echo "unsupported SECURITY_PROTOCOL $SECURITY_PROTOCOL" >&2; exit 2 ;;
esac

set --
for kv in ${TOPIC_CONFIGS:-}; do set -- "$@" --config "$kv"; done
for topic in $TOPICS; do
  "$KAFKA_TOPICS" --bootstrap-server "$BOOTSTRAP_SERVERS" --command-config "$config" \
    --create --if-not-exists --topic "$topic" \
    --partitions "$PARTITIONS" --replication-factor "$REPLICATION_FACTOR" "$@"
done
for topic in $TOPICS; do
  "$KAFKA_TOPICS" --bootstrap-server "$BOOTSTRAP_SERVERS" --command-config "$config" \
    --describe --topic "$topic"
done
rm -f "$config"
