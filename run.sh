#!/usr/bin/env bash
# Runs the Chaos World backend locally.
#
#   ./run.sh                 the whole backend in one process on embedded storage (SQLite event
#                            store, in-memory read models rebuilt at start): no servers needed.
#                            Data lives in ./.chaos (override: --data-dir DIR or CHAOS_DATA_DIR).
#   ./run.sh --distributed   the production topology: starts PostgreSQL, Redis, Kafka and the
#                            schema registry (deploy/local/services.sh), then command-api, relay,
#                            projector and query-api as separate processes. Ctrl-C stops them.
#
# Either way: commands on http://127.0.0.1:8080, queries on http://127.0.0.1:8082.
set -euo pipefail
cd "$(dirname "$0")"

# The warehouse links a prebuilt DuckDB (fetched once from the npm registry, then cached).
bash deploy/local/duckdb.sh >/dev/null

if [[ "${1:-}" != "--distributed" ]]; then
  exec cargo run --release --quiet -p chaos-standalone --bin chaos -- "$@"
fi
shift

bash deploy/local/services.sh up
eval "$(bash deploy/local/services.sh env)"
cargo build --release --quiet -p chaos-command-api -p chaos-projectors -p chaos-query-api
logs="${CHAOS_STATE:-/var/tmp/chaos-world}/logs"
mkdir -p "$logs"
pids=()
stop() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop EXIT INT TERM
start() {
  local name=$1; shift
  "$@" >"$logs/$name.log" 2>&1 &
  pids+=($!)
  echo "started $name (pid $!, log $logs/$name.log)" >&2
}
start command-api target/release/command-api
start relay target/release/relay
start projector target/release/projector redis
start query-api target/release/query-api
for url in http://127.0.0.1:8080/readyz http://127.0.0.1:9101/readyz \
           http://127.0.0.1:9102/readyz http://127.0.0.1:8082/readyz; do
  for _ in $(seq 1 150); do
    curl -fs "$url" >/dev/null 2>&1 && break
    sleep 0.2
  done
  curl -fs "$url" >/dev/null || { echo "not ready: $url (see $logs)" >&2; exit 1; }
done
echo "backend ready: commands http://127.0.0.1:8080, queries http://127.0.0.1:8082 (Ctrl-C stops)" >&2
wait
