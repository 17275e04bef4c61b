#!/usr/bin/env bash
# Runs the images that build.sh wrote, the way the manifests run them, against the local services
# (deploy/local/services.sh up): under runc, as the image's user (65532), read-only root filesystem,
# no capabilities, no new privileges, a tmpfs on /tmp and a writable directory at the warehouse's
# volume path. Checks every process becomes ready, then drives one command through the whole
# pipeline (command-api -> PostgreSQL -> relay -> Kafka -> projector -> Redis -> query-api).
#
# Usage: sudo deploy/images/smoke.sh [--out DIR] [--tls]     (DIR: build.sh's --out, default
#        target/images)
#   --tls  as in the cloud: production mode (topics created beforehand by the kafka-topics Job's
#          script, a real JWT key), Kafka over SASL_SSL/SCRAM-SHA-512, Redis over TLS with a
#          password, PostgreSQL with sslmode=verify-full, all against the local services' TLS
#          twins and their test CA (mounted read-only at /etc/chaos/tls/ca.pem).
# Needs root, and runc, umoci and skopeo (Debian: apt-get install -y runc umoci skopeo). Host
# networking (the containers reach 127.0.0.1); a throwaway database, topic prefix and Redis key
# prefix, all removed at the end.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
out=$REPO/target/images
tls=false
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$(cd "${2:?--out needs a directory}" && pwd); shift ;;
    --tls) tls=true ;;
    *) echo "usage: smoke.sh [--out DIR] [--tls]" >&2; exit 2 ;;
  esac
  shift
done

die() { printf 'smoke: ERROR: %s\n' "$*" >&2; exit 1; }
log() { printf 'smoke: %s\n' "$*" >&2; }

[ "$(id -u)" -eq 0 ] || die "needs root (runc)"
for tool in runc umoci skopeo psql redis-cli curl python3; do
  command -v "$tool" >/dev/null || die "$tool is missing (apt-get install -y runc umoci skopeo)"
done
eval "$(bash "$REPO/deploy/local/services.sh" env)"

run_id=$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')
work=$(mktemp -d /tmp/chaos-smoke.XXXXXX)
smoke_db=chaos_smoke_$run_id
db_url=${DATABASE_URL%/*}/$smoke_db
prefix=smoke$run_id
containers=()

cleanup() {
  local c
  for c in "${containers[@]}"; do
    runc kill "$c" TERM >/dev/null 2>&1 || true
  done
  sleep 2
  for c in "${containers[@]}"; do
    runc delete -f "$c" >/dev/null 2>&1 || true
  done
  psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS $smoke_db WITH (FORCE)" >/dev/null 2>&1 || true
  # Its topics and consumer groups (Kafka's own tools from the local install), and Redis keys.
  if [ -n "${CHAOS_KAFKA_HOME:-}" ] && command -v java >/dev/null 2>&1; then
    java -cp "$CHAOS_KAFKA_HOME/libs/*" org.apache.kafka.tools.TopicCommand \
      --bootstrap-server "$KAFKA_BOOTSTRAP_SERVERS" --delete --topic "$prefix\\..*" >/dev/null 2>&1 || true
    for group in "$prefix-redis" "$prefix-warehouse"; do
      java -cp "$CHAOS_KAFKA_HOME/libs/*" org.apache.kafka.tools.consumer.group.ConsumerGroupCommand \
        --bootstrap-server "$KAFKA_BOOTSTRAP_SERVERS" --delete --group "$group" >/dev/null 2>&1 || true
    done
  fi
  redis-cli -u "$REDIS_URL" --scan --pattern "$prefix:*" 2>/dev/null |
    xargs -r redis-cli -u "$REDIS_URL" del >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

psql "$DATABASE_URL" -qc "CREATE DATABASE $smoke_db" >/dev/null

# start NAME IMAGE ARGS_JSON ENV...: unpack the image into a runc bundle, harden it like the pod
# spec (deploy/k8s/base), start it detached with its output in $work/NAME.log.
start() {
  local name=$1 image=$2 args=$3
  shift 3
  local archive=$out/$image.oci.tar bundle=$work/$name
  [ -f "$archive" ] || die "$archive missing: run deploy/images/build.sh first"
  skopeo copy -q "oci-archive:$archive" "oci:$work/oci:$name"
  umoci unpack --image "$work/oci:$name" "$bundle" >/dev/null
  mkdir -p "$work/$name-data"
  chown 65532:65532 "$work/$name-data"
  python3 - "$bundle/config.json" "$args" "$work/$name-data" "$@" <<'PY'
import json, sys
path, args, data, env = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4:]
c = json.load(open(path))
p = c["process"]
p["terminal"] = False
p["capabilities"] = {k: [] for k in p["capabilities"]}          # drop: [ALL]
p["noNewPrivileges"] = True                                     # allowPrivilegeEscalation: false
if args:
    p["args"] = p["args"][:1] + args                            # entrypoint + the pod's args
p["env"] += env
c["root"]["readonly"] = True                                    # readOnlyRootFilesystem: true
c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "network"]
c["linux"].pop("resources", None)
c["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                    "options": ["nosuid", "nodev", "mode=1777", "size=65536k"]})
c["mounts"].append({"destination": "/var/lib/chaos/warehouse", "type": "bind", "source": data,
                    "options": ["rbind", "rw"]})
ca = next((e.split("=", 1)[1] for e in env if e.startswith("SMOKE_CA_DIR=")), None)
if ca:
    p["env"] = [e for e in p["env"] if not e.startswith("SMOKE_CA_DIR=")]
    c["mounts"].append({"destination": "/etc/chaos/tls", "type": "bind", "source": ca,
                        "options": ["rbind", "ro"]})
json.dump(c, open(path, "w"))
PY
  runc run --detach --bundle "$bundle" "chaos-smoke-$name-$run_id" >"$work/$name.log" 2>&1 ||
    { cat "$work/$name.log" >&2; die "runc could not start $name"; }
  containers+=("chaos-smoke-$name-$run_id")
  local user
  user=$(runc ps "chaos-smoke-$name-$run_id" 2>/dev/null | awk 'NR == 2 { print $1 }')
  log "started $name ($image) as ${user:-?}"
}

wait_ready() { # NAME PORT
  local i
  for i in $(seq 1 60); do
    if curl -fsS -m 2 "http://127.0.0.1:$2/readyz" >/dev/null 2>&1; then
      log "$1 ready on :$2"
      return 0
    fi
    sleep 1
  done
  echo "---- $1 log" >&2
  tail -n 30 "$work/$1.log" >&2
  die "$1 did not become ready on :$2"
}

common=(CHAOS__TELEMETRY__JSON=true)
kafka=(CHAOS__KAFKA__BOOTSTRAP_SERVERS="$KAFKA_BOOTSTRAP_SERVERS" CHAOS__KAFKA__TOPIC_PREFIX="$prefix."
  CHAOS__SCHEMA_REGISTRY__URL="$SCHEMA_REGISTRY_URL")
redis_url=$REDIS_URL
redis=()
if [ "$tls" = true ]; then
  [ -n "${KAFKA_TLS_BOOTSTRAP_SERVERS:-}" ] || die "the local services have no TLS twins (deploy/local/services.sh)"
  mkdir -p "$work/ca"
  cp "$CHAOS_TLS_CA_FILE" "$work/ca/ca.pem"
  chmod 0644 "$work/ca/ca.pem"
  ca=/etc/chaos/tls/ca.pem
  common+=(CHAOS__ENVIRONMENT=production SMOKE_CA_DIR="$work/ca")
  db_url="$db_url?sslmode=verify-full&sslrootcert=$ca"
  kafka=(CHAOS__KAFKA__BOOTSTRAP_SERVERS="$KAFKA_TLS_BOOTSTRAP_SERVERS" CHAOS__KAFKA__TOPIC_PREFIX="$prefix."
    CHAOS__KAFKA__PARTITIONS=6 CHAOS__KAFKA__REPLICATION_FACTOR=1
    CHAOS__KAFKA__SECURITY_PROTOCOL=sasl_ssl CHAOS__KAFKA__SASL_MECHANISM="$KAFKA_SASL_MECHANISM"
    CHAOS__KAFKA__SASL_USERNAME="$KAFKA_SASL_USERNAME" CHAOS__KAFKA__SASL_PASSWORD="$KAFKA_SASL_PASSWORD"
    CHAOS__KAFKA__SSL_CA_LOCATION="$ca" CHAOS__SCHEMA_REGISTRY__URL="$SCHEMA_REGISTRY_URL")
  redis_url=rediss://127.0.0.1:${REDIS_TLS_URL##*:}
  redis=(CHAOS__REDIS__PASSWORD="$(python3 -c 'import sys, urllib.parse as u; print(u.urlparse(sys.argv[1]).password)' "$REDIS_TLS_URL")"
    CHAOS__REDIS__CA_FILE="$ca")
  # Production mode checks the topics: create them as the kafka-topics Job does, with its script,
  # over the same SASL_SSL listener.
  printf '#!/bin/sh\nexec java -cp "%s/libs/*" org.apache.kafka.tools.TopicCommand "$@"\n' "$CHAOS_KAFKA_HOME" >"$work/kafka-topics"
  chmod +x "$work/kafka-topics"
  topics=""
  for t in $(sed -n 's/^ *- TOPICS=//p' "$REPO/deploy/k8s/base/kustomization.yaml"); do topics="$topics $prefix.$t"; done
  KAFKA_TOPICS="$work/kafka-topics" BOOTSTRAP_SERVERS="$KAFKA_TLS_BOOTSTRAP_SERVERS" TOPICS="$topics" \
    PARTITIONS=6 REPLICATION_FACTOR=1 TOPIC_CONFIGS="retention.ms=-1" SECURITY_PROTOCOL=SASL_SSL \
    SASL_USERNAME="$KAFKA_SASL_USERNAME" SASL_PASSWORD="$KAFKA_SASL_PASSWORD" SSL_CA_FILE="$CHAOS_TLS_CA_FILE" \
    sh "$REPO/deploy/k8s/base/setup/kafka-topics.sh" >"$work/kafka-topics.log" 2>&1 ||
    { tail -n 20 "$work/kafka-topics.log" >&2; die "creating the topics over SASL_SSL failed"; }
  log "topics created over SASL_SSL:$topics"
  jwt=(CHAOS__AUTH__JWT_SECRET="$(head -c 48 /dev/urandom | od -An -tx1 | tr -d ' \n')")
else
  jwt=()
fi

start command-api command-api '[]' "${common[@]}" "${jwt[@]}" CHAOS__HTTP__BIND=127.0.0.1:28080 \
  CHAOS__DATABASE__URL="$db_url"
start relay relay '[]' "${common[@]}" "${kafka[@]}" CHAOS__HTTP__BIND=127.0.0.1:29101 \
  CHAOS__DATABASE__URL="$db_url"
start projector-redis projector '["redis"]' "${common[@]}" "${kafka[@]}" CHAOS__HTTP__BIND=127.0.0.1:29102 \
  CHAOS__REDIS__URL="$redis_url" "${redis[@]}" CHAOS__REDIS__KEY_PREFIX="$prefix:" CHAOS__PROJECTOR__GROUP_ID="$prefix-redis"
start projector-warehouse projector '["warehouse"]' "${common[@]}" "${kafka[@]}" \
  CHAOS__WAREHOUSE__HTTP_BIND=127.0.0.1:29103 CHAOS__WAREHOUSE__PATH=/var/lib/chaos/warehouse/chaos.duckdb \
  CHAOS__WAREHOUSE__PARQUET_DIR=/var/lib/chaos/warehouse/parquet CHAOS__WAREHOUSE__GROUP_ID="$prefix-warehouse"
start query-api query-api '[]' "${common[@]}" "${jwt[@]}" CHAOS__HTTP__BIND=127.0.0.1:28082 \
  CHAOS__REDIS__URL="$redis_url" "${redis[@]}" CHAOS__REDIS__KEY_PREFIX="$prefix:"

wait_ready command-api 28080
wait_ready relay 29101
wait_ready projector-redis 29102
wait_ready projector-warehouse 29103
wait_ready query-api 28082

# One command through the pipeline, as the README walkthrough does it.
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
user=smoke$run_id
curl -fsS -X POST 127.0.0.1:28080/v1/accounts -H 'content-type: application/json' \
  -d "{\"username\":\"$user\",\"password\":\"correct horse battery\"}" >/dev/null
token=$(curl -fsS -X POST 127.0.0.1:28080/v1/sessions -H 'content-type: application/json' \
  -d "{\"username\":\"$user\",\"password\":\"correct horse battery\"}" | json '["access_token"]')
answer=$(curl -fsS -X POST 127.0.0.1:28080/v1/characters -H "Authorization: Bearer $token" \
  -H 'content-type: application/json' -d "{\"name\":\"Smoke$run_id\",\"class\":\"mage\"}")
character=$(json '["aggregate_id"]' <<<"$answer")
ct=$(json '["consistency_token"]' <<<"$answer")
sheet=$(curl -fsS -m 10 "127.0.0.1:28082/v1/characters/$character" -H "Consistency-Token: $ct")
log "query-api answered the new character's sheet: $(head -c 120 <<<"$sheet")"

# The hardening held: nothing was written outside /tmp and the volume (the root is read-only, so a
# write would have failed the process), and the processes ran as 65532.
for c in "${containers[@]}"; do
  uid=$(runc ps "$c" 2>/dev/null | awk 'NR == 2 { print $1 }')
  [ "$uid" = 65532 ] || die "$c runs as uid ${uid:-?}, expected 65532"
done
log "ok: 5 processes from 4 images ran as uid 65532 on read-only root filesystems$([ "$tls" = true ] && echo ', production mode, TLS and SASL/SCRAM')"
