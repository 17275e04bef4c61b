#!/usr/bin/env bash
# Runs db-users.sql (the db-users Job's script) twice against a throwaway PostgreSQL cluster whose
# master is RDS-like (CREATEROLE, CREATEDB, not a superuser), then checks what the services need.
# Needs root (initdb runs as the postgres user) and the PostgreSQL server binaries. deploy/validate.sh
# runs it when both are there.
# Usage: deploy/k8s/base/setup/test-db-users.sh deploy/k8s/base/setup/db-users.sql
set -euo pipefail
sql=$(readlink -f "$1")
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
run() {
  psql -U chaos_admin -d chaos -v command_api_password=a -v relay_password=b -v registry_password=c \
    -v process_managers_password=e \
    -v monitor_password=d -v master_user=chaos_admin -f "$sql"
}
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
echo "db-users.sql: roles, ownership and connect rights as intended (run twice)"
