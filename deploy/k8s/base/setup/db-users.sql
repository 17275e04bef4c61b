-- Database roles of Chaos World, created idempotently by the db-users Job (setup-jobs.yaml) as the
-- RDS master user, against the application database. Run again at every deploy: it converges
-- (creates what is missing, resets the passwords from Secrets Manager, fixes ownership).
--
--   chaos_owner        NOLOGIN: owns the event store's tables. The services create and upgrade their
--                      schema at start (CREATE TABLE IF NOT EXISTS, ALTER TABLE ... ADD COLUMN IF
--                      NOT EXISTS), which needs ownership; they log in as their own roles and act as
--                      chaos_owner (ALTER ROLE ... SET role), so every object stays owned by it.
--   chaos_command_api  LOGIN, the command API.
--   chaos_relay        LOGIN, the relay.
--   chaos_process_managers  LOGIN, the process managers (they append commands' events).
--   chaos_projectors   LOGIN, read only: projector redis and projector mongo read the event store
--                      (gap repairs, rebuilds of a lost read model). SELECT on the event store's
--                      tables, those chaos_owner creates later included (default privileges), but
--                      not on the private tables (:private_tables below: accounts, password hashes);
--                      not a member of chaos_owner; sessions read only.
--   chaos_registry     LOGIN, owner of the separate `registry` database (Apicurio's SQL storage).
--   chaos_monitor      LOGIN, member of pg_monitor: postgres_exporter (transaction age, locks).
--
-- psql variables (-v): command_api_password, relay_password, process_managers_password,
-- projectors_password, registry_password, monitor_password, master_user. Plain SQL only where they are used: psql does not interpolate inside DO blocks.
\set ON_ERROR_STOP on

SELECT format('CREATE ROLE %I NOLOGIN', 'chaos_owner')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'chaos_owner') \gexec
SELECT format('CREATE ROLE %I LOGIN', r)
FROM unnest(ARRAY['chaos_command_api', 'chaos_relay', 'chaos_process_managers', 'chaos_projectors',
                   'chaos_registry', 'chaos_monitor']) AS r
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) \gexec

ALTER ROLE chaos_command_api WITH LOGIN PASSWORD :'command_api_password';
ALTER ROLE chaos_relay WITH LOGIN PASSWORD :'relay_password';
ALTER ROLE chaos_process_managers WITH LOGIN PASSWORD :'process_managers_password';
ALTER ROLE chaos_projectors WITH LOGIN PASSWORD :'projectors_password';
ALTER ROLE chaos_registry WITH LOGIN PASSWORD :'registry_password';
ALTER ROLE chaos_monitor WITH LOGIN PASSWORD :'monitor_password';

-- The services act as the owner role. The master joins the roles whose objects it hands over or
-- creates (existing tables below, the registry database).
GRANT chaos_owner TO chaos_command_api, chaos_relay, chaos_process_managers;
GRANT chaos_owner, chaos_registry TO :"master_user";
ALTER ROLE chaos_command_api SET role = 'chaos_owner';
ALTER ROLE chaos_relay SET role = 'chaos_owner';
ALTER ROLE chaos_process_managers SET role = 'chaos_owner';
GRANT pg_monitor TO chaos_monitor;
-- The readers' sessions are read only even if a statement tried to write (a migration would fail on
-- privileges anyway; this fails it first, with a clear message).
ALTER ROLE chaos_projectors SET default_transaction_read_only = on;

-- Only the application roles connect to the application database.
REVOKE CONNECT, TEMPORARY ON DATABASE :"DBNAME" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"DBNAME" TO chaos_command_api, chaos_relay, chaos_process_managers,
  chaos_projectors, chaos_monitor;
GRANT USAGE, CREATE ON SCHEMA public TO chaos_owner;
GRANT USAGE ON SCHEMA public TO chaos_projectors;

-- Objects created before this Job existed (by the master user) move to chaos_owner (their
-- identity sequences move with them).
SELECT format('ALTER TABLE %I.%I OWNER TO chaos_owner', schemaname, tablename)
FROM pg_tables
WHERE schemaname = 'public' AND tableowner <> 'chaos_owner' \gexec

-- The readers (chaos_projectors): every table of the event store, now and as the services create
-- more (default privileges for what chaos_owner creates: the master is a member), except the
-- tables of the same database that are not the event store's. The default privileges cannot
-- exclude a table by name: the command API, which creates `accounts` at its first start, revokes
-- every other role's grant on it as it starts (command-api/src/auth/accounts.rs), and this
-- script revokes it too.
-- Tables of the database that are not the event store's (keep in step with the services' schemas):
\set private_tables '{accounts}'
ALTER DEFAULT PRIVILEGES FOR ROLE chaos_owner IN SCHEMA public GRANT SELECT ON TABLES TO chaos_projectors;
SELECT format('GRANT SELECT ON TABLE %I.%I TO chaos_projectors', schemaname, tablename)
FROM pg_tables
WHERE schemaname = 'public' AND tablename <> ALL (:'private_tables'::text[]) \gexec
SELECT format('REVOKE ALL ON TABLE %I.%I FROM chaos_projectors', schemaname, tablename)
FROM pg_tables
WHERE schemaname = 'public' AND tablename = ANY (:'private_tables'::text[]) \gexec

-- The schema registry's own database, owned by its role (Apicurio creates its tables there).
SELECT 'CREATE DATABASE registry OWNER chaos_registry'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'registry') \gexec
REVOKE CONNECT, TEMPORARY ON DATABASE registry FROM PUBLIC;
GRANT CONNECT ON DATABASE registry TO chaos_registry;
