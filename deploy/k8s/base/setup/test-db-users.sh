#!/usr/bin/env bash
# Runs db-users.sql (the db-users Job's script) twice against a throwaway PostgreSQL cluster whose
# master is RDS-like (CREATEROLE, CREATEDB, not a superuser), then checks what the services need:
# on a database whose tables the master created before the Job existed, and on a new one (a new
# stage: the Job runs first, then the command API creates the event store's schema, taken from
# eventstore/src/pg.rs, and its accounts table, taken from command-api/src/auth/accounts.rs), where
# the projectors' read-only role runs the event-store reads the projectors make and cannot read the
# accounts.
# Needs root (initdb runs as the postgres user), the PostgreSQL server binaries and python3.
# deploy/validate.sh runs it when they are there.
# Usage: deploy/k8s/base/setup/test-db-users.sh deploy/k8s/base/setup/db-users.sql eventstore/src/pg.rs \
#          command-api/src/auth/accounts.rs
set -euo pipefail
sql=$(readlink -f "$1")
schema_rs=$(readlink -f "$2")
accounts_rs=$(readlink -f "$3")
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
dir=$(mktemp -d /tmp/chaos-pgtest.XXXXXX)
chown postgres "$dir"
port=$((40000 + RANDOM % 10000))
as_pg() { runuser -u postgres -- "$@"; }
cleanup() { as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap cleanup EXIT
as_pg "$bin/initdb" -D "$dir/data" -A trust -U postgres >/dev/null
as_pg "$bin/pg_ctl" -D "$dir/data" -o "-p $port -k $dir -c listen_addresses=''" -l "$dir/log" -w start >/dev/null
psql() { # quiet unless it fails; NOTICEs of the idempotent re-run are expected
  local rc=0
  command psql -X -q -h "$dir" -p "$port" "$@" >"$dir/out" 2>&1 || rc=$?
  grep -v -e NOTICE -e 'already exists, skipping' "$dir/out" || true
  return "$rc"
}
# An RDS-like master: may create roles and databases, is not a superuser.
psql -U postgres -d postgres -c "CREATE ROLE chaos_admin LOGIN CREATEROLE CREATEDB PASSWORD 'x'" -c "CREATE DATABASE chaos OWNER chaos_admin"
# Tables created by the master before the Job existed (as the services did when they used it).
psql -U chaos_admin -d chaos -c "CREATE TABLE events (id bigint GENERATED ALWAYS AS IDENTITY, payload json)" 
run() { # [database]
  psql -U chaos_admin -d "${1:-chaos}" -v command_api_password=a -v relay_password=b -v registry_password=c \
    -v process_managers_password=e -v projectors_password=f \
    -v monitor_password=d -v master_user=chaos_admin -f "$sql"
}
fails() { # what, psql arguments...: the statement must be refused
  local what="$1"
  shift
  if psql -v ON_ERROR_STOP=1 "$@"; then echo "not refused: $what"; exit 1; fi
}
# A session may turn the read-only default off: privileges alone must refuse the projectors' writes.
rw="SET default_transaction_read_only = off"
run; run   # idempotent
# The services' start-up schema statements work as their own roles and leave chaos_owner owning all.
for role in chaos_command_api chaos_relay chaos_process_managers; do
  psql -U "$role" -d chaos -v ON_ERROR_STOP=1 \
    -c "CREATE TABLE IF NOT EXISTS events (id bigint)" \
    -c "ALTER TABLE events ADD COLUMN IF NOT EXISTS tx_id xid8 NOT NULL DEFAULT pg_current_xact_id()" \
    -c "CREATE TABLE IF NOT EXISTS checkpoints_$role (name text PRIMARY KEY)" \
    -c "INSERT INTO events (payload) VALUES ('{}')" 
done
owners=$(psql -U postgres -d chaos -Atc "SELECT string_agg(DISTINCT tableowner, ',') FROM pg_tables WHERE schemaname = 'public'")
[ "$owners" = chaos_owner ] || { echo "tables owned by $owners, expected chaos_owner"; exit 1; }
psql -U chaos_registry -d registry -v ON_ERROR_STOP=1 -c "CREATE TABLE apicurio_probe (id int)"
if psql -U chaos_registry -d chaos -c "SELECT 1" >/dev/null 2>&1; then echo "chaos_registry may connect to chaos"; exit 1; fi
psql -U chaos_monitor -d chaos -v ON_ERROR_STOP=1 -Atc "SELECT count(*) >= 0 FROM pg_stat_activity WHERE xact_start IS NOT NULL" >/dev/null

# The projectors' role reads what existed before the Job and what the services created after it
# (default privileges), writes nothing, and is not the owner.
psql -U chaos_projectors -d chaos -v ON_ERROR_STOP=1 \
  -c "SELECT count(*) FROM events" -c "SELECT count(*) FROM checkpoints_chaos_relay" >/dev/null
fails "chaos_projectors INSERT" -U chaos_projectors -d chaos -c "$rw" -c "INSERT INTO events (payload) VALUES ('{}')"
fails "chaos_projectors CREATE TABLE" -U chaos_projectors -d chaos -c "$rw" -c "CREATE TABLE probe (id int)"
fails "chaos_projectors SET ROLE chaos_owner" -U chaos_projectors -d chaos -c "SET ROLE chaos_owner"
[ "$(psql -U chaos_projectors -d chaos -Atc 'SHOW default_transaction_read_only')" = on ] ||
  { echo "chaos_projectors sessions are not read only"; exit 1; }

# A new stage: the Job runs on an empty database, then the command API creates the event store's
# schema (eventstore/src/pg.rs, SCHEMA, as its migrate runs it) and its accounts table, and appends.
psql -U postgres -d postgres -c "CREATE DATABASE store OWNER chaos_admin"
run store
python3 - "$schema_rs" >"$dir/schema.sql" <<'PYEOF'
import re, sys
src = open(sys.argv[1]).read()
body = src.split("const SCHEMA: &[&str] = &[", 1)[1].split("\n];", 1)[0]
body = "\n".join(l for l in body.splitlines() if not l.strip().startswith("//"))
statements = [s.replace('\\"', '"').replace("\\\\", "\\")
              for s in re.findall(r'"((?:[^"\\]|\\.)*)"', body)]
if len(statements) < 5 or not any("CREATE TABLE IF NOT EXISTS events" in s for s in statements):
    sys.exit(f"{sys.argv[1]}: the SCHEMA statements were not found")
print("BEGIN;")
for s in statements:
    print(s + ";")
print("COMMIT;")
PYEOF
# The command API's accounts table and what it runs after creating it (PRIVATE_ACCOUNTS).
python3 - "$accounts_rs" >"$dir/accounts.sql" <<'PYEOF'
import re, sys
src = open(sys.argv[1]).read()
table = re.search(r'"(CREATE TABLE IF NOT EXISTS accounts \((?:[^"\\]|\\.)*)"', src)
private = re.search(r'const PRIVATE_ACCOUNTS: &str = "((?:[^"\\]|\\.)*)";', src)
if not table or not private:
    sys.exit(f"{sys.argv[1]}: the accounts statements were not found")
print(table.group(1) + ";")
print(private.group(1) + ";")
PYEOF
psql -U chaos_command_api -d store -v ON_ERROR_STOP=1 -f "$dir/schema.sql" -f "$dir/accounts.sql" \
  -c "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
      VALUES ('character', 'c1', 1, 'CharacterCreated', '1', '{}', '{}')" \
  -c "INSERT INTO aggregate_snapshots (aggregate_type, aggregate_id, state_version, last_sequence, payload)
      VALUES ('character', 'c1', 1, 1, '{}')"
# The projectors' reads (eventstore/src/pg.rs: PgEventLog, history_page, snapshots; LISTEN for appends).
reads=$(psql -U chaos_projectors -d store -v ON_ERROR_STOP=1 -At \
  -c "LISTEN chaos_events_appended" \
  -c "SELECT count(*) FROM events
      WHERE (tx_id, global_position) > ('0'::xid8, 0)
        AND tx_id < (SELECT chaos_append_horizon(1667785075, 1))" \
  -c "SELECT count(*) FROM events WHERE aggregate_type = 'character' AND aggregate_id = 'c1' AND sequence > 0" \
  -c "SELECT count(*) FROM aggregate_snapshots" \
  -c "SELECT count(*) FROM checkpoints" -c "SELECT count(*) FROM reservations" | tr '\n' ' ')
[ "$reads" = "1 1 1 0 0 " ] || { echo "chaos_projectors read '$reads' on a new stage, expected '1 1 1 0 0 '"; exit 1; }
fails "chaos_projectors DELETE" -U chaos_projectors -d store -c "$rw" -c "DELETE FROM events"
fails "chaos_projectors UPDATE checkpoints" -U chaos_projectors -d store -c "$rw" -c "UPDATE checkpoints SET global_position = 0"
fails "chaos_projectors ALTER TABLE" -U chaos_projectors -d store -c "$rw" -c "ALTER TABLE events ADD COLUMN probe int"
# accounts, created by the command API after the Job: the default privileges grant it, and the
# command API takes the grant back as it creates the table. Still private after the Job's next run.
fails "chaos_projectors SELECT accounts" -U chaos_projectors -d store -c "SELECT count(*) FROM accounts"
run store
fails "chaos_projectors SELECT accounts" -U chaos_projectors -d store -c "SELECT count(*) FROM accounts"
psql -U chaos_projectors -d store -v ON_ERROR_STOP=1 -c "SELECT count(*) FROM events" >/dev/null
echo "db-users.sql: roles, ownership, connect rights and the projectors' read-only access as intended (run twice; new stage)"
