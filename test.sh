#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs and starts (only where missing) the
# real services the tests use — PostgreSQL, Redis, Apache Kafka, the schema registry stand-in —
# fetches the prebuilt DuckDB library, then runs formatting, lints, every Rust test, the Python
# tests and the deployment checks. Idempotent; a second run reuses every install and the build.
set -euo pipefail
cd "$(dirname "$0")"

declare -a timings=()
step() {
  local name=$1; shift
  local started=$SECONDS
  echo "==> $name" >&2
  "$@"
  timings+=("$(printf '%5ss  %s' $((SECONDS - started)) "$name")")
}
summary() {
  echo "---- timings" >&2
  for t in "${timings[@]}"; do echo "$t" >&2; done
}
trap summary EXIT

step "local services" bash deploy/local/services.sh up
eval "$(bash deploy/local/services.sh env)"
export DATABASE_URL REDIS_URL KAFKA_BOOTSTRAP_SERVERS SCHEMA_REGISTRY_URL
export CHAOS_SCHEMA_REGISTRY_URL="$SCHEMA_REGISTRY_URL"

duckdb_lib=$(bash deploy/local/duckdb.sh)
export DUCKDB_LIB_DIR="$duckdb_lib"
export LD_LIBRARY_PATH="$duckdb_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# CI checks out a fresh clone each run: keep the build where the next run finds it.
if [[ "${CI:-}" == "true" ]]; then
  export CARGO_TARGET_DIR="${CHAOS_CACHE:-$HOME/.cache/chaos-world}/target"
fi

clean_test_leftovers() {
  # Databases and topics made by earlier test runs (tests use their own, uniquely named).
  psql "$DATABASE_URL" -Atc "SELECT datname FROM pg_database WHERE datname LIKE 'chaos\_t\_%'" |
    while read -r db; do psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS $db" >/dev/null; done
  "$CHAOS_VENV/bin/python" - "$KAFKA_BOOTSTRAP_SERVERS" <<'PY'
import re, sys
from confluent_kafka.admin import AdminClient
admin = AdminClient({"bootstrap.servers": sys.argv[1]})
stale = [t for t in admin.list_topics(timeout=10).topics if re.match(r"^(t|smoke)[0-9a-f]{6,}\.", t)]
if stale:
    for f in admin.delete_topics(stale, operation_timeout=30).values():
        try:
            f.result()
        except Exception as e:  # already gone
            print(e, file=sys.stderr)
PY
}

step "clean test leftovers" clean_test_leftovers
step "toolchain" rustup component add rustfmt clippy
step "cargo fmt --check" cargo fmt --all --check
step "cargo clippy" cargo clippy --workspace --all-targets --locked -- -D warnings
step "cargo build (binaries)" cargo build --workspace --bins --locked
step "cargo test" cargo test --workspace --locked
step "python tests" "$CHAOS_VENV/bin/python" -m pytest -q tests/python
if [[ -x deploy/validate.sh || -f deploy/validate.sh ]]; then
  step "deployment checks" bash deploy/validate.sh
fi
echo "all checks passed" >&2
