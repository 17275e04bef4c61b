#!/usr/bin/env bash
# Runs the Chaos World backend locally.
#
#   ./run.sh                 the whole backend in one process on embedded storage (SQLite event
#                            store and read models, a DuckDB warehouse, each resumed from its
#                            checkpoint at start): no servers needed. Data lives in ./.chaos
#                            (override: --data-dir DIR or CHAOS_DATA_DIR).
#   ./run.sh --distributed   the production topology: starts PostgreSQL, Redis, Kafka, the schema
#                            registry and the MongoDB-wire test server (deploy/local/services.sh),
#                            then command-api, relay, the projectors (Redis, MongoDB, warehouse),
#                            the process managers and query-api as separate processes. Ctrl-C
#                            stops them.
#
# Either way: commands on http://127.0.0.1:8080, queries on http://127.0.0.1:8082.
#
# The first run compiles the backend in release mode: on a 2-core machine expect 10 to 15
# minutes (measured 14 min 50 s on a fresh, busy one); cargo prints its progress. Later runs
# start in about a second.
set -euo pipefail
cd "$(dirname "$0")"

# The warehouse links a prebuilt DuckDB (fetched once from the npm registry, then cached).
duckdb_lib=$(bash deploy/local/duckdb.sh)
export LD_LIBRARY_PATH="$duckdb_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

first_build() {
  if [[ ! -x "${CARGO_TARGET_DIR:-target}/release/$1" ]]; then
    echo "first run: compiling the backend in release mode (10 to 15 minutes on 2 cores)..." >&2
  fi
}

if [[ "${1:-}" != "--distributed" ]]; then
  first_build chaos
  exec cargo run --release -p chaos-standalone --bin chaos -- "$@"
fi
shift

bash deploy/local/services.sh up
eval "$(bash deploy/local/services.sh env)"
first_build command-api
cargo build --release -p chaos-command-api -p chaos-projectors -p chaos-query-api
bin="${CARGO_TARGET_DIR:-target}/release"
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
start command-api "$bin/command-api"
start relay "$bin/relay"
start projector-redis "$bin/projector" redis
start projector-mongo "$bin/projector" mongo
start projector-warehouse "$bin/projector" warehouse
start process-managers "$bin/projector" process-managers
start query-api "$bin/query-api"
# command API, relay, projectors (Redis, warehouse, MongoDB), process managers, query API.
for port in 8080 9101 9102 9103 9104 9105 8082; do
  url="http://127.0.0.1:$port/readyz"
  for _ in $(seq 1 300); do
    curl -fs "$url" >/dev/null 2>&1 && break
    sleep 0.2
  done
  curl -fs "$url" >/dev/null || { echo "not ready: $url (see $logs)" >&2; exit 1; }
done
echo "backend ready: commands http://127.0.0.1:8080, queries http://127.0.0.1:8082 (Ctrl-C stops)" >&2
wait
