#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs and starts (only where missing) the
# real services the tests use — PostgreSQL, Redis, Apache Kafka, the schema registry (Apicurio),
# a MongoDB-wire test server —
# fetches the prebuilt DuckDB library, then runs formatting, lints, every Rust test (including
# the end-to-end and crash tests in tests/, which start the real binaries), the Python tests and
# the deployment checks. Idempotent; a second run reuses every install and the build.
#
# Environment: CI=true keeps the cargo build in ${CHAOS_CACHE:-~/.cache/chaos-world}/target so a
# fresh clone on the same machine reuses it; CHAOS_CACHE / CHAOS_STATE as in services.sh.
# Prints a timing summary per step; exits non-zero on the first failing step.
set -euo pipefail
cd "$(dirname "$0")"

declare -a timings=()
current=""
step() {
  local name=$1; shift
  local started=$SECONDS
  current=$name
  echo "==> $name" >&2
  "$@"
  timings+=("$(printf '%5ss  %s' $((SECONDS - started)) "$name")")
  current=""
}
summary() {
  local rc=$?
  echo "---- timings (total ${SECONDS}s)" >&2
  for t in "${timings[@]}"; do echo "$t" >&2; done
  if [[ -n "$current" ]]; then echo "FAILED: $current" >&2; fi
  exit "$rc"
}
trap summary EXIT

step "local services" bash deploy/local/services.sh up
eval "$(bash deploy/local/services.sh env)"
export DATABASE_URL REDIS_URL KAFKA_BOOTSTRAP_SERVERS SCHEMA_REGISTRY_URL MONGODB_URL CHAOS_VENV CHAOS_CACHE
# The TLS twins (test CA per state dir): Kafka SASL_SSL/SCRAM, TLS Redis with a password, PostgreSQL TLS.
export CHAOS_TLS_CA_FILE DATABASE_TLS_URL KAFKA_TLS_BOOTSTRAP_SERVERS KAFKA_TLS_CA_FILE KAFKA_SASL_MECHANISM \
  KAFKA_SASL_USERNAME KAFKA_SASL_PASSWORD REDIS_TLS_URL REDIS_TLS_CA_FILE
export CHAOS_SCHEMA_REGISTRY_URL="$SCHEMA_REGISTRY_URL"

duckdb_lib=$(bash deploy/local/duckdb.sh)
export DUCKDB_LIB_DIR="$duckdb_lib"
export LD_LIBRARY_PATH="$duckdb_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# CI checks out a fresh clone each run: keep the build where the next run finds it.
if [[ "${CI:-}" == "true" ]]; then
  export CARGO_TARGET_DIR="${CHAOS_CACHE:-$HOME/.cache/chaos-world}/target"
  # Cargo keeps incremental state per crate version and never collects what later runs no
  # longer use (it grew to 14 GB over a day's runs): past 6 GB it goes, and the workspace's own
  # crates build once in full again.
  incremental="$CARGO_TARGET_DIR/debug/incremental"
  if [[ -d "$incremental" ]] && (($(du -sk "$incremental" | cut -f1) > 6 * 1024 * 1024)); then
    echo "ci: removing $incremental (over 6 GB)" >&2
    rm -rf -- "$incremental"
  fi
fi

clean_test_leftovers() {
  # Each test works in its own database chaos_t_<id>, topic prefix t<id>. and Redis key prefix
  # t<id>: and removes them when it passes; a failed test keeps them for inspection. Remove
  # databases older than two hours (never those of a run still going on next to this one), then
  # the topics and keys whose database is gone.
  psql "$DATABASE_URL" -Atc "
    SELECT datname FROM pg_database
    WHERE datname LIKE 'chaos\_t\_%'
      AND (pg_stat_file('base/' || oid || '/PG_VERSION')).modification < now() - interval '2 hours'" |
    while read -r db; do psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)"; done
  local live
  live=$(psql "$DATABASE_URL" -Atc "SELECT substr(datname, 9) FROM pg_database WHERE datname LIKE 'chaos\_t\_%'" | tr '\n' ' ')
  "$CHAOS_VENV/bin/python" - "$KAFKA_BOOTSTRAP_SERVERS" "$REDIS_URL" "$live" <<'PY'
import re, sys, socket
from urllib.parse import urlparse
from confluent_kafka.admin import AdminClient

bootstrap, redis_url, live = sys.argv[1], sys.argv[2], set(sys.argv[3].split())
admin = AdminClient({"bootstrap.servers": bootstrap})
stale = []
for topic in admin.list_topics(timeout=10).topics:
    m = re.match(r"^t([0-9a-f]{12})\.", topic)
    if (m and m.group(1) not in live) or re.match(r"^smoke[0-9a-f]{6,}\.", topic):
        stale.append(topic)
if stale:
    for f in admin.delete_topics(stale, operation_timeout=30).values():
        try:
            f.result()
        except Exception as e:  # already gone
            print(e, file=sys.stderr)

# Redis keys t<id>:... of finished tests (plain RESP over a socket: no client library needed).
u = urlparse(redis_url)
with socket.create_connection((u.hostname or "127.0.0.1", u.port or 6379), timeout=10) as s:
    f = s.makefile("rwb")
    def call(*args):
        f.write(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
        f.flush()
        return read()
    def read():
        line = f.readline()
        kind, rest = line[:1], line[1:-2]
        if kind == b"*":
            return [read() for _ in range(int(rest))]
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else f.read(n + 2)[:-2]
        if kind == b"-":
            raise RuntimeError(rest.decode())
        return rest
    prefixes = set()
    for key in call(b"KEYS", b"t*:*"):
        m = re.match(rb"^t([0-9a-f]{12}):", key)
        if m and m.group(1).decode() not in live:
            prefixes.add(key)
    stale_keys = sorted(prefixes)
    for i in range(0, len(stale_keys), 500):
        call(b"DEL", *stale_keys[i:i + 500])
PY
}

ensure_components() {
  local installed missing=()
  installed=$(rustup component list --installed 2>/dev/null || true)
  for c in rustfmt clippy; do
    grep -q "^$c" <<<"$installed" || missing+=("$c")
  done
  if ((${#missing[@]})); then rustup component add "${missing[@]}"; fi
}

step "clean test leftovers" clean_test_leftovers
step "toolchain components" ensure_components
step "cargo fmt --check" cargo fmt --all --check
step "cargo clippy" cargo clippy --workspace --all-targets --locked -- -D warnings
# The API docs' links must resolve (a link to a private item is a warning, and an error here).
step "cargo doc" env RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked
# The end-to-end tests start these binaries from the same target directory: build them first.
step "cargo build (binaries)" cargo build --workspace --bins --locked
step "cargo test" cargo test --workspace --locked --no-fail-fast
step "python tests" "$CHAOS_VENV/bin/python" -m pytest -q tests/python
if [[ -f deploy/validate.sh ]]; then
  step "deployment checks" bash deploy/validate.sh
fi
echo "all checks passed" >&2
