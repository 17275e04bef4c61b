#!/usr/bin/env bash
# Disaster-recovery drill (docs/dr.md): restore the event store from a backup into a fresh
# database and rebuild every read model from it, measuring each step.
#
#   deploy/dr/drill.sh [--source-db NAME] [--characters C --events-per N] [--models LIST] [--keep]
#
# 1. the source: --source-db (a database of the local cluster holding an event store), or a new
#    one loaded with C characters x N events (default 2,000 x 10 = 20,000 events: the local
#    MongoDB-wire test server is slow, see docs/operations.md);
# 2. backup: pg_dump in the custom format (what the nightly backup job takes);
# 3. restore: pg_restore into a new, empty database (what a restore or a DR region starts from),
#    then the event counts and last global position are compared with the source;
# 4. rebuild from the restored store, each into its own isolated place (a Redis key prefix, a
#    MongoDB database, a warehouse file) so nothing live is touched: `chaosctl rebuild redis`,
#    `rebuild mongo`, `rebuild warehouse`, each `--from store` (--models redis,warehouse: a
#    subset), then `chaosctl verify redis --all`;
# 5. a table of timings (and the rates), then everything the drill made is removed (--keep keeps
#    it and prints where it is).
#
# Runs against the local services (deploy/local/services.sh up) with release binaries
# (cargo build --release -p chaos-chaosctl -p chaos-tests); CHAOS_BIN_DIR points elsewhere.
# Against staging the same steps apply with the stage's URLs: see docs/dr.md "Drill".
set -euo pipefail
cd "$(dirname "$0")/../.."

source_db=""
characters=2000
per=10
models=redis,mongo,warehouse
keep=false
while (($#)); do
  case "$1" in
    --source-db) source_db=$2; shift 2 ;;
    --characters) characters=$2; shift 2 ;;
    --events-per) per=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    --keep) keep=true; shift ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

eval "$(bash deploy/local/services.sh env)"
duckdb_lib=$(bash deploy/local/duckdb.sh)
export LD_LIBRARY_PATH="$duckdb_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
bin=${CHAOS_BIN_DIR:-${CARGO_TARGET_DIR:-target}/release}
for b in chaosctl rebuild_load; do
  [[ -x "$bin/$b" ]] || { echo "missing $bin/$b: cargo build --release -p chaos-chaosctl -p chaos-tests" >&2; exit 2; }
done

id=$(date +%s)
work=$(mktemp -d "${TMPDIR:-/tmp}/chaos-drill.XXXXXX")
restored="chaos_drill_${id}"
server=${DATABASE_URL%/*}
declare -a rows=()
now() { date +%s.%N; }
took() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
row() { rows+=("$(printf '%-38s %8s s   %s' "$1" "$2" "${3:-}")"); echo "==> $1: $2 s ${3:-}" >&2; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.0f events/s", n / s }'; }

made_source=false
cleanup() {
  if $keep; then
    echo "kept: database $restored, Redis prefix drill${id}:, MongoDB database drill_${id}, $work" >&2
    return
  fi
  psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS \"$restored\" WITH (FORCE)" >/dev/null 2>&1 || true
  if $made_source; then
    psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS \"$source_db\" WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  redis-cli -u "$REDIS_URL" --scan --pattern "drill${id}:*" | xargs -r -n 500 redis-cli -u "$REDIS_URL" DEL >/dev/null || true
  "$CHAOS_VENV/bin/python" -c 'import sys; from pymongo import MongoClient; MongoClient(sys.argv[1]).drop_database(sys.argv[2])' \
    "$MONGODB_URL" "drill_${id}" || true
  rm -rf "$work"
}
trap cleanup EXIT

# 1. The source.
if [[ -z "$source_db" ]]; then
  started=$(now)
  out=$("$bin/rebuild_load" --characters "$characters" --events-per "$per")
  source_db=$(sed -n 's/^PostgreSQL database \([^:]*\):.*/\1/p' <<<"$out")
  made_source=true
  row "load the source ($source_db)" "$(took "$started")" "$((characters * per)) events"
fi
source_url="$server/$source_db"
events=$(psql "$source_url" -Atc "SELECT count(*) FROM events")
last=$(psql "$source_url" -Atc "SELECT coalesce(max(global_position), 0) FROM events")

# 2. Backup.
started=$(now)
pg_dump -Fc -d "$source_url" -f "$work/events.dump"
row "backup (pg_dump -Fc)" "$(took "$started")" "$(du -h "$work/events.dump" | cut -f1)"

# 3. Restore into a fresh database, and check it holds what the source held.
started=$(now)
psql "$DATABASE_URL" -qc "CREATE DATABASE \"$restored\"" >/dev/null
pg_restore -j 2 --no-owner -d "$server/$restored" "$work/events.dump"
restore_s=$(took "$started")
row "restore (pg_restore -j 2)" "$restore_s" "$(rate "$events" "$restore_s")"
restored_url="$server/$restored"
got_events=$(psql "$restored_url" -Atc "SELECT count(*) FROM events")
got_last=$(psql "$restored_url" -Atc "SELECT coalesce(max(global_position), 0) FROM events")
if [[ "$got_events/$got_last" != "$events/$last" ]]; then
  echo "the restored store differs: $got_events events up to $got_last, the source $events up to $last" >&2
  exit 1
fi
row "restored store checked" "0.0" "$events events up to global position $last"

# 4. Every read model rebuilt from the restored store, in places of its own.
export CHAOS__DATABASE__URL="$restored_url"
export CHAOS__REDIS__URL="$REDIS_URL" CHAOS__REDIS__KEY_PREFIX="drill${id}:"
export CHAOS__MONGO__URL="$MONGODB_URL" CHAOS__MONGO__DATABASE="drill_${id}"
export CHAOS__MONGO__KEY_PREFIX="drill${id}:"
export CHAOS__WAREHOUSE__PATH="$work/warehouse/chaos.duckdb"
export CHAOS__SCHEMA_REGISTRY__URL="$SCHEMA_REGISTRY_URL"
export CHAOS__KAFKA__BOOTSTRAP_SERVERS="$KAFKA_BOOTSTRAP_SERVERS"
mkdir -p "$work/warehouse"
for model in ${models//,/ }; do
  case $model in redis|mongo|warehouse) ;; *) echo "unknown model $model" >&2; exit 2 ;; esac
  started=$(now)
  "$bin/chaosctl" rebuild "$model" --from store --grace 0 >"$work/rebuild-$model.log" 2>&1 || {
    cat "$work/rebuild-$model.log" >&2
    exit 1
  }
  s=$(took "$started")
  row "rebuild $model --from store" "$s" "$(rate "$events" "$s")"
done
if [[ ",$models," == *,redis,* ]]; then
started=$(now)
"$bin/chaosctl" verify redis --all >"$work/verify.log" 2>&1 || { cat "$work/verify.log" >&2; exit 1; }
row "verify redis --all" "$(took "$started")" "$(tail -1 "$work/verify.log")"
fi

echo
echo "DR drill: $events events, restored and every read model rebuilt"
printf '%s\n' "${rows[@]}"
