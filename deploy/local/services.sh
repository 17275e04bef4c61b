#!/usr/bin/env bash
# Local services for Chaos World development and tests, all on 127.0.0.1:
#   postgres  PostgreSQL (Debian package's binaries), own cluster in the state dir :5432
#             (TLS optional on the same port)
#   redis     redis-server (Debian package), no persistence                     :6379
#             + a second instance, TLS only, password chaos-secret                 :6380
#   kafka     the real Apache Kafka broker from Maven Central, single-node KRaft :9092 (controller :9093)
#             + a SASL_SSL listener, SCRAM-SHA-512 user chaos / chaos-secret      :9094
#   registry  Apicurio Registry 2.4.2 (Maven Central, built once), H2 in state  :8081
#             Confluent-compatible API: http://127.0.0.1:8081/apis/ccompat/v7
#   mongo     MongoDB-wire TEST server SecantusDB (PyPI, in the venv); production  :27017
#             is MongoDB. mongodb://127.0.0.1:27017/?directConnection=true
# The TLS servers use a test CA made once per state dir: $CHAOS_STATE/tls/ca.pem (see `env`).
#
# Usage:
#   deploy/local/services.sh up     [NAME...]   install what is missing, start what is not running,
#                                               wait until each service answers (default: all)
#   deploy/local/services.sh down   [NAME...]   stop (default: all)
#   deploy/local/services.sh down --active [NAME...]
#                                               stop the services of the state dir that last came
#                                               up, whichever it is (they hold the ports)
#   deploy/local/services.sh status             one line per service; exit 1 if any is down
#   deploy/local/services.sh env                `export ...` lines: eval "$(deploy/local/services.sh env)"
#
# Idempotent; a second `up` with everything running takes about a second.
# Environment: CHAOS_CACHE (slow installs: Kafka jars, the registry build and its Maven repository,
#                           Python venv; default ~/.cache/chaos-world)
#              CHAOS_REGISTRY_STORAGE (file: default, kept in the state dir | memory)
#              CHAOS_STATE (data, logs, pid files; default /var/tmp/chaos-world). Everything a run
#                           keeps is in there (PostgreSQL cluster, Kafka log, ...): a new, empty
#                           dir gives brand-new services. One state dir's services at a time.
# Needs root (or sudo) only to apt-get install missing packages and to run PostgreSQL's cluster.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CHAOS_CACHE=${CHAOS_CACHE:-$HOME/.cache/chaos-world}
CHAOS_STATE=${CHAOS_STATE:-/var/tmp/chaos-world}
case $CHAOS_STATE in /*) ;; *) CHAOS_STATE=$PWD/$CHAOS_STATE ;; esac
CHAOS_STATE=${CHAOS_STATE%/}
# The state dir whose services last came up (they hold the ports): see `down --active`.
ACTIVE_FILE=$CHAOS_CACHE/active-state
LOGS=$CHAOS_STATE/logs
RUN=$CHAOS_STATE/run
VENV=$CHAOS_CACHE/venv
REQUIREMENTS=$HERE/requirements.txt

HOST=127.0.0.1
PG_PORT=5432
REDIS_PORT=6379
KAFKA_PORT=9092
KAFKA_CONTROLLER_PORT=9093
REGISTRY_PORT=8081
MONGO_PORT=27017
KAFKA_TLS_PORT=9094
REDIS_TLS_PORT=6380
# TLS twins of the plain servers (test CA per state dir, in $TLS_DIR): Kafka SASL_SSL with
# SCRAM-SHA-512 on :9094, a password-protected TLS Redis on :6380, PostgreSQL TLS on :5432.
TLS_DIR=$CHAOS_STATE/tls
TLS_CA=$TLS_DIR/ca.pem
SASL_USERNAME=chaos
SASL_PASSWORD=chaos-secret
REDIS_TLS_PASSWORD=chaos-secret
KEYSTORE_PASSWORD=chaos-keystore
MONGO_URL="mongodb://$HOST:$MONGO_PORT/?directConnection=true"
PG_MAX_CONNECTIONS=300
PG_DATA=$CHAOS_STATE/postgres/data
PG_RUN=$CHAOS_STATE/postgres/run # unix socket
PG_LOG=$LOGS/postgres-server.log

KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$HERE/kafka/pom.xml")
KAFKA_HOME=$CHAOS_CACHE/kafka-$KAFKA_VERSION
KAFKA_DIR=$CHAOS_STATE/kafka
KAFKA_HEAP=${CHAOS_KAFKA_HEAP:--Xms512m -Xmx512m}

MAVEN_REPO=$CHAOS_CACHE/m2 # the registry build's Maven local repository (~230 MB)
REGISTRY_VERSION=$(sed -n 's:.*<apicurio.version>\(.*\)</apicurio.version>.*:\1:p' "$HERE/registry/pom.xml")
REGISTRY_HOME=$CHAOS_CACHE/apicurio-registry-$REGISTRY_VERSION
REGISTRY_JAR_NAME=apicurio-registry-local-1-runner.jar
# Confluent-compatible base URL. No trailing slash: with one, clients build ...v7//subjects (404).
REGISTRY_URL=http://$HOST:$REGISTRY_PORT/apis/ccompat/v7
REGISTRY_HEAP=${CHAOS_REGISTRY_HEAP:--Xms64m -Xmx192m}
REGISTRY_STORAGE=${CHAOS_REGISTRY_STORAGE:-file}

ALL_SERVICES=(postgres redis kafka registry mongo)

log() { printf 'services: %s\n' "$*" >&2; }
die() { printf 'services: ERROR: %s\n' "$*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# ---------------------------------------------------------------- helpers --

APT_UPDATED=0
apt_install() {
    local pkg need_update=0
    for pkg in "$@"; do
        if ! apt-cache policy "$pkg" 2>/dev/null | grep -q 'Candidate: [0-9]'; then need_update=1; fi
    done
    if [ "$need_update" = 1 ] && [ "$APT_UPDATED" = 0 ]; then
        log "apt-get update"
        as_root apt-get update -qq >>"$LOGS/apt.log" 2>&1 || { tail -n 20 "$LOGS/apt.log" >&2; die "apt-get update failed"; }
        APT_UPDATED=1
    fi
    log "apt-get install $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" \
        >>"$LOGS/apt.log" 2>&1 || { tail -n 20 "$LOGS/apt.log" >&2; die "apt-get install $* failed (log: $LOGS/apt.log)"; }
}

# wait_for NAME TIMEOUT_S LOGFILE COMMAND...: poll COMMAND until it succeeds.
wait_for() {
    local name=$1 timeout=$2 logfile=$3
    shift 3
    local deadline=$((SECONDS + timeout))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            log "$name did not answer within ${timeout}s. Last lines of $logfile:"
            tail -n 40 "$logfile" >&2 2>/dev/null || true
            return 1
        fi
        sleep 0.2
    done
}

port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# pid_alive PIDFILE PATTERN: the pid in PIDFILE runs a command line containing PATTERN.
pid_alive() {
    local pid
    [ -f "$1" ] || return 1
    pid=$(cat "$1" 2>/dev/null) || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$2"
}

# pid_gone PIDFILE: the process this script started (its pid in PIDFILE) has exited. Deliberately
# not pid_alive: right after `cmd &` the pid file names a child that is still this shell, not yet
# exec'd into the service, so its command line does not match the service's pattern yet (CI once
# declared a starting Kafka dead in that window).
pid_gone() {
    local pid
    [ -f "$1" ] || return 1
    pid=$(cat "$1" 2>/dev/null) || return 1
    [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null
}

# stop_pid NAME PIDFILE PATTERN TIMEOUT_S: SIGTERM, wait, then SIGKILL.
stop_pid() {
    local name=$1 pidfile=$2 pattern=$3 timeout=$4 pid deadline
    if ! pid_alive "$pidfile" "$pattern"; then
        rm -f "$pidfile"
        return 0
    fi
    pid=$(cat "$pidfile")
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + timeout))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            log "$name did not stop within ${timeout}s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.2
    done
    rm -f "$pidfile"
}

venv_python() { echo "$VENV/bin/python"; }

ensure_venv() {
    local want have=""
    want=$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)
    [ -f "$VENV/.requirements.sha256" ] && have=$(cat "$VENV/.requirements.sha256")
    if [ -x "$VENV/bin/python" ] && [ "$have" = "$want" ]; then return 0; fi
    command -v python3 >/dev/null || apt_install python3 python3-venv
    if [ ! -x "$VENV/bin/python" ]; then
        log "creating Python venv $VENV"
        mkdir -p "$CHAOS_CACHE"
        if ! python3 -m venv "$VENV" >>"$LOGS/venv.log" 2>&1; then
            rm -rf "$VENV"
            apt_install python3-venv
            python3 -m venv "$VENV" >>"$LOGS/venv.log" 2>&1 || die "python3 -m venv failed (log: $LOGS/venv.log)"
        fi
    fi
    log "pip install -r $(basename "$REQUIREMENTS") into $VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQUIREMENTS" >>"$LOGS/venv.log" 2>&1 ||
        { tail -n 20 "$LOGS/venv.log" >&2; die "pip install failed (log: $LOGS/venv.log)"; }
    "$VENV/bin/python" -c 'from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer' ||
        die "confluent_kafka Avro support does not import in $VENV"
    [ -x "$VENV/bin/secantusd-py" ] || die "secantusd-py missing from $VENV after pip install"
    echo "$want" >"$VENV/.requirements.sha256"
}

# -------------------------------------------------------------------- tls --
# One self-signed test CA and one server certificate (127.0.0.1, localhost) per state dir, made
# once with openssl: ca.pem (give it to clients), server.pem + server.key (PEM), kafka.p12
# (the same key and chain as a PKCS#12 keystore for the Kafka broker).

tls_ensure() {
    [ -f "$TLS_DIR/.complete" ] && return 0
    command -v openssl >/dev/null || apt_install openssl
    local tmp=$TLS_DIR.partial
    rm -rf "$tmp"
    mkdir -p "$tmp"
    chmod 755 "$tmp"
    log "generating a test CA and server certificate in $TLS_DIR"
    {
        openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -keyout "$tmp/ca.key" -out "$tmp/ca.pem" -days 3650 -subj "/CN=Chaos World local test CA" \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" &&
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -keyout "$tmp/server.key" -out "$tmp/server.csr" -subj "/CN=localhost" &&
        printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
            "extendedKeyUsage=serverAuth" "subjectAltName=IP:$HOST,DNS:localhost" >"$tmp/server.ext" &&
        openssl x509 -req -in "$tmp/server.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" -CAcreateserial \
            -days 3650 -sha256 -extfile "$tmp/server.ext" -out "$tmp/server.pem" &&
        openssl pkcs12 -export -in "$tmp/server.pem" -inkey "$tmp/server.key" -certfile "$tmp/ca.pem" \
            -name localhost -passout "pass:$KEYSTORE_PASSWORD" -out "$tmp/kafka.p12" &&
        openssl verify -CAfile "$tmp/ca.pem" "$tmp/server.pem"
    } >>"$LOGS/tls.log" 2>&1 || { tail -n 20 "$LOGS/tls.log" >&2; rm -rf "$tmp"; die "generating the test certificates failed (log: $LOGS/tls.log)"; }
    chmod 644 "$tmp/ca.pem" "$tmp/server.pem"
    chmod 600 "$tmp/ca.key" "$tmp/server.key" "$tmp/kafka.p12"
    rm -f "$tmp/server.csr" "$tmp/server.ext"
    touch "$tmp/.complete"
    rm -rf "$TLS_DIR"
    mv "$tmp" "$TLS_DIR"
}

# --------------------------------------------------------------- postgres --
# Our own cluster in $CHAOS_STATE/postgres/data (initdb from the Debian package's binaries, run
# as the `postgres` OS user: PostgreSQL refuses to run as root), not the Debian system cluster:
# a new state dir gives a brand-new cluster. Unix socket in $CHAOS_STATE/postgres/run only.

# shellcheck disable=SC2012 # version directories are plain numbers
pg_version() { ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -n 1; }
pg_bin() { echo "/usr/lib/postgresql/$(pg_version)/bin/$1"; }
as_postgres() { (cd / && as_root runuser -u postgres -- "$@"); }

# Run psql as the postgres superuser over our socket, ignoring the caller's PG* settings.
pg_admin() {
    (cd / && as_root env -u PGHOST -u PGPORT -u PGUSER -u PGDATABASE -u PGPASSWORD \
        runuser -u postgres -- psql -h "$PG_RUN" -p "$PG_PORT" -X -q -v ON_ERROR_STOP=1 "$@")
}

# Our postmaster is alive (postmaster.pid names a live postgres process).
postgres_ours() {
    local pid
    pid=$(head -n 1 "$PG_DATA/postmaster.pid" 2>/dev/null) || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q postgres
}

postgres_ready() { postgres_ours && pg_isready -q -h "$HOST" -p "$PG_PORT"; }

# Debian's own clusters listening on our port (the apt package creates and starts 15/main).
postgres_stop_system_clusters() {
    command -v pg_lsclusters >/dev/null || return 0
    local v c port st
    while read -r v c port st _; do
        [ "$port" = "$PG_PORT" ] || continue
        if [ "$st" = online ] || [[ "$st" == online,* ]]; then
            log "stopping the Debian system cluster PostgreSQL $v/$c (it holds port $PG_PORT)"
            as_root pg_ctlcluster "$v" "$c" stop >>"$LOGS/postgres.log" 2>&1 ||
                die "pg_ctlcluster $v $c stop failed (log: $LOGS/postgres.log)"
        fi
        # No autostart (init scripts, systemd's postgresql@ units): start.conf 'manual'.
        if [ -f "/etc/postgresql/$v/$c/start.conf" ] && ! grep -qx manual "/etc/postgresql/$v/$c/start.conf"; then
            log "Debian cluster $v/$c: autostart disabled (start.conf: manual)"
            echo manual | as_root tee "/etc/postgresql/$v/$c/start.conf" >/dev/null || true
        fi
    done < <(pg_lsclusters -h 2>/dev/null)
}

# postgres_conf: (re)writes $PG_DATA/chaos.conf and the TLS files; fails (1) when nothing changed.
postgres_conf() {
    local conf
    # TLS with the state dir's test certificate (the server key must belong to postgres, 0600).
    install -o postgres -g postgres -m 600 "$TLS_DIR/server.key" "$CHAOS_STATE/postgres/server.key"
    install -o postgres -g postgres -m 644 "$TLS_DIR/server.pem" "$CHAOS_STATE/postgres/server.pem"
    # Our settings (postgresql.conf includes this file last).
    conf=$(cat <<EOF
# Written by deploy/local/services.sh on each up: edits here are lost.
listen_addresses = '$HOST'
port = $PG_PORT
unix_socket_directories = '$PG_RUN'
max_connections = $PG_MAX_CONNECTIONS
shared_buffers = 128MB
synchronous_commit = on
timezone = 'Etc/UTC'
log_timezone = 'Etc/UTC'
log_line_prefix = '%m [%p] %q%u@%d '
# TLS on the same port, optional for clients (sslmode=prefer uses it, verify-full with the CA).
ssl = on
ssl_cert_file = '$CHAOS_STATE/postgres/server.pem'
ssl_key_file = '$CHAOS_STATE/postgres/server.key'
EOF
    )
    [ "$(cat "$PG_DATA/chaos.conf" 2>/dev/null)" = "$conf" ] && return 1
    printf '%s\n' "$conf" | as_postgres tee "$PG_DATA/chaos.conf" >/dev/null
}

postgres_start() {
    local v
    if [ -z "$(pg_version)" ] || [ ! -x "$(pg_bin initdb)" ]; then apt_install postgresql; fi
    v=$(pg_version)
    [ -x "$(pg_bin initdb)" ] || die "postgresql installed but no $(pg_bin initdb)"
    id -u postgres >/dev/null 2>&1 || die "no 'postgres' OS user (the postgresql package creates it)"
    postgres_stop_system_clusters
    if postgres_ours; then
        # Running (or starting): settings changed since it started (e.g. TLS added) are reloaded.
        if postgres_conf; then
            log "PostgreSQL settings changed: reloading"
            as_postgres "$(pg_bin pg_ctl)" -D "$PG_DATA" reload >>"$LOGS/postgres.log" 2>&1 || die "pg_ctl reload failed"
        fi
        return 0
    fi
    if port_open "$PG_PORT"; then
        local dir
        dir=$(PGPASSWORD=chaos PGCONNECT_TIMEOUT=3 psql -X -h "$HOST" -p "$PG_PORT" -U chaos -d chaos -tAc 'SHOW data_directory' 2>/dev/null || true)
        die "another PostgreSQL listens on $HOST:$PG_PORT (data directory: ${dir:-unknown}); if it is another state dir's, stop it: CHAOS_STATE=${dir%/postgres/data} $0 down"
    fi
    # The postgres user must reach the state dir (mktemp -d makes it 0700).
    mkdir -p "$CHAOS_STATE/postgres"
    as_root chmod a+x "$CHAOS_STATE"
    as_root chown postgres: "$CHAOS_STATE/postgres"
    as_root chmod 700 "$CHAOS_STATE/postgres"
    as_postgres test -x "$CHAOS_STATE/postgres" ||
        die "the postgres OS user cannot reach $CHAOS_STATE (a parent directory is closed to it): use a CHAOS_STATE under /var/tmp"
    as_postgres mkdir -p "$PG_RUN"
    touch "$PG_LOG" && as_root chown postgres: "$PG_LOG"
    if [ ! -f "$PG_DATA/PG_VERSION" ]; then
        log "creating PostgreSQL $v cluster in $PG_DATA"
        as_postgres rm -rf "$PG_DATA"
        as_postgres "$(pg_bin initdb)" -D "$PG_DATA" -U postgres -E UTF8 --locale=C.UTF-8 \
            --auth-local=peer --auth-host=scram-sha-256 >>"$LOGS/postgres-initdb.log" 2>&1 ||
            { tail -n 20 "$LOGS/postgres-initdb.log" >&2; die "initdb failed (log: $LOGS/postgres-initdb.log)"; }
        echo "include 'chaos.conf'" | as_postgres tee -a "$PG_DATA/postgresql.conf" >/dev/null
    fi
    [ "$(cat "$PG_DATA/PG_VERSION")" = "$v" ] ||
        die "$PG_DATA is a PostgreSQL $(cat "$PG_DATA/PG_VERSION") cluster but the installed server is $v: use a new CHAOS_STATE"
    postgres_conf || true
    log "starting PostgreSQL $v ($PG_DATA)"
    echo "=== $(date -Is) starting PostgreSQL $v" >>"$PG_LOG"
    # setsid: the postmaster gets a session of its own (not killed with the caller's process group).
    # -w: PostgreSQL is ready within a second or two; a failure shows at once with its log.
    as_root setsid -w runuser -u postgres -- "$(pg_bin pg_ctl)" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 start \
        >>"$LOGS/postgres.log" 2>&1 </dev/null ||
        { tail -n 20 "$PG_LOG" >&2; die "pg_ctl start failed (log: $PG_LOG)"; }
    STARTED+=(postgres)
}

postgres_wait() {
    local out super db maxconn
    wait_for postgres 30 "$PG_LOG" postgres_ready || return 1
    # (called from `... || die`, so set -e is off in here: check each step)
    out=$(pg_admin -tA -F ' ' -c "SELECT (SELECT count(*) FROM pg_roles WHERE rolname = 'chaos' AND rolsuper AND rolcanlogin),
                                          (SELECT count(*) FROM pg_database WHERE datname = 'chaos'),
                                          current_setting('max_connections')") || return 1
    read -r super db maxconn <<<"$out"
    if [ "$super" != 1 ]; then
        log "creating role chaos (SUPERUSER)"
        pg_admin -c "DO \$\$ BEGIN
                       IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'chaos') THEN
                         ALTER ROLE chaos WITH LOGIN SUPERUSER PASSWORD 'chaos';
                       ELSE
                         CREATE ROLE chaos WITH LOGIN SUPERUSER PASSWORD 'chaos';
                       END IF; END \$\$;" >/dev/null || return 1
    fi
    if [ "$db" != 1 ]; then
        log "creating database chaos"
        pg_admin -c "CREATE DATABASE chaos OWNER chaos" >/dev/null || return 1
    fi
    [ "$maxconn" = "$PG_MAX_CONNECTIONS" ] || { log "max_connections is $maxconn, expected $PG_MAX_CONNECTIONS (see $PG_DATA/chaos.conf)"; return 1; }
    # The URL the services use must work (password auth over TCP).
    PGPASSWORD=chaos psql -X -q -h "$HOST" -p "$PG_PORT" -U chaos -d chaos -tAc 'SELECT 1' >/dev/null ||
        { log "cannot log in as chaos@$HOST:$PG_PORT/chaos"; return 1; }
}

postgres_stop() {
    postgres_ours || return 0
    log "stopping PostgreSQL ($PG_DATA)"
    as_postgres "$(pg_bin pg_ctl)" -D "$PG_DATA" -m fast -w -t 60 stop >>"$LOGS/postgres.log" 2>&1 ||
        log "pg_ctl stop failed (log: $LOGS/postgres.log)"
}

postgres_status() {
    if postgres_ready; then echo "up    postgres  postgres://chaos:chaos@$HOST:$PG_PORT/chaos  (PostgreSQL $(pg_version), $PG_DATA)"
    else echo "down  postgres  $HOST:$PG_PORT"; return 1; fi
}

# ------------------------------------------------------------------ redis --

redis_ready() { [ "$(redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; }

# The TLS twin: a second instance (Redis has one password for all its ports, and the plain one
# has none), TLS only, password required.
redis_tls_cli() {
    REDISCLI_AUTH=$REDIS_TLS_PASSWORD redis-cli --tls --cacert "$TLS_CA" -h "$HOST" -p "$REDIS_TLS_PORT" "$@"
}
redis_tls_ready() { [ "$(redis_tls_cli ping 2>/dev/null)" = PONG ]; }

redis_start() {
    local fresh=0
    if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
        apt_install redis-server
        fresh=1
    fi
    if [ "$fresh" = 1 ]; then
        # The package may have started its own (persistent) instance on 6379: stop it.
        if command -v systemctl >/dev/null && systemctl is-active -q redis-server 2>/dev/null; then
            as_root systemctl disable --now redis-server >>"$LOGS/redis.log" 2>&1 || true
        elif redis_ready; then
            redis-cli -h "$HOST" -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
            wait_for "redis (packaged instance) shutdown" 10 /dev/null bash -c "! (exec 3<>/dev/tcp/$HOST/$REDIS_PORT)" || true
        fi
    fi
    if ! redis_ready; then
        log "starting redis"
        mkdir -p "$CHAOS_STATE/redis"
        # shellcheck disable=SC2094 # redis appends to its own log file; so do we, before it daemonizes
        redis-server --bind "$HOST" --port "$REDIS_PORT" --daemonize yes --save '' --appendonly no \
            --dir "$CHAOS_STATE/redis" --logfile "$LOGS/redis.log" --pidfile "$RUN/redis.pid" >>"$LOGS/redis.log" 2>&1 ||
            { tail -n 20 "$LOGS/redis.log" >&2; die "redis-server failed to start"; }
        STARTED+=(redis)
    fi
    if ! redis_tls_ready; then
        port_open "$REDIS_TLS_PORT" && ! pid_alive "$RUN/redis-tls.pid" redis-server &&
            die "something else listens on $HOST:$REDIS_TLS_PORT but does not answer as our TLS redis"
        log "starting redis (TLS, password) on :$REDIS_TLS_PORT"
        mkdir -p "$CHAOS_STATE/redis-tls"
        # shellcheck disable=SC2094
        redis-server --bind "$HOST" --port 0 --tls-port "$REDIS_TLS_PORT" \
            --tls-cert-file "$TLS_DIR/server.pem" --tls-key-file "$TLS_DIR/server.key" \
            --tls-ca-cert-file "$TLS_CA" --tls-auth-clients no --requirepass "$REDIS_TLS_PASSWORD" \
            --daemonize yes --save '' --appendonly no --dir "$CHAOS_STATE/redis-tls" \
            --logfile "$LOGS/redis-tls.log" --pidfile "$RUN/redis-tls.pid" >>"$LOGS/redis-tls.log" 2>&1 ||
            { tail -n 20 "$LOGS/redis-tls.log" >&2; die "redis-server (TLS) failed to start"; }
        case " ${STARTED[*]} " in *" redis "*) ;; *) STARTED+=(redis) ;; esac
    fi
}

redis_wait() {
    wait_for redis 20 "$LOGS/redis.log" redis_ready || return 1
    wait_for "redis (TLS)" 20 "$LOGS/redis-tls.log" redis_tls_ready
}

redis_stop() {
    # Only ours (pid files in this state dir), never whatever else answers on the ports.
    if pid_alive "$RUN/redis.pid" redis-server; then
        log "stopping redis"
        redis-cli -h "$HOST" -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
    fi
    stop_pid redis "$RUN/redis.pid" redis-server 10
    if pid_alive "$RUN/redis-tls.pid" redis-server; then
        log "stopping redis (TLS)"
        redis_tls_cli shutdown nosave >/dev/null 2>&1 || true
    fi
    stop_pid "redis (TLS)" "$RUN/redis-tls.pid" redis-server 10
}

redis_status() {
    if redis_ready; then
        local tls="TLS :$REDIS_TLS_PORT down"
        redis_tls_ready && tls="+ TLS rediss://$HOST:$REDIS_TLS_PORT (password)"
        echo "up    redis     redis://$HOST:$REDIS_PORT $tls  ($(redis-server --version | awk '{print $3}' | sed 's/^v=//'))"
        redis_tls_ready
    else echo "down  redis     $HOST:$REDIS_PORT"; return 1; fi
}

# ------------------------------------------------------------------ kafka --

kafka_ready() {
    port_open "$KAFKA_PORT" || return 1
    [ -x "$VENV/bin/python" ] || return 0
    "$VENV/bin/python" - "$HOST:$KAFKA_PORT" <<'EOF' 2>/dev/null
import sys
from confluent_kafka.admin import AdminClient
md = AdminClient({"bootstrap.servers": sys.argv[1], "log_level": 0}).list_topics(timeout=3)
sys.exit(0 if md.brokers else 1)
EOF
}

kafka_install() {
    [ -f "$KAFKA_HOME/.complete" ] && return 0
    command -v java >/dev/null || apt_install openjdk-17-jre-headless
    command -v mvn >/dev/null || apt_install maven
    log "installing Apache Kafka $KAFKA_VERSION from Maven Central into $KAFKA_HOME"
    local t0=$SECONDS tmp=$KAFKA_HOME.partial
    rm -rf "$tmp"
    mkdir -p "$tmp"
    mvn -q -B -f "$HERE/kafka/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
        -DoutputDirectory="$tmp/libs" >>"$LOGS/kafka-install.log" 2>&1 ||
        { tail -n 30 "$LOGS/kafka-install.log" >&2; rm -rf "$tmp"; die "Maven could not fetch Kafka $KAFKA_VERSION"; }
    ls "$tmp"/libs/kafka_2.13-*.jar >/dev/null 2>&1 || { rm -rf "$tmp"; die "kafka_2.13 jar missing after Maven run"; }
    rm -rf "$KAFKA_HOME"
    mv "$tmp" "$KAFKA_HOME"
    touch "$KAFKA_HOME/.complete"
    log "Kafka $KAFKA_VERSION installed in $((SECONDS - t0))s"
}

kafka_java() {
    java -cp "$KAFKA_HOME/libs/*" -Dlog4j2.configurationFile="$HERE/kafka/log4j2.xml" -Dkafka.logs.dir="$LOGS" "$@"
}

kafka_start() {
    if kafka_ready; then
        port_open "$KAFKA_TLS_PORT" && return 0
        if pid_alive "$RUN/kafka.pid" kafka.Kafka; then
            # Started from an older server.properties, before the SASL_SSL listener: restart it.
            log "Kafka has no SASL_SSL listener on :$KAFKA_TLS_PORT (older config): restarting it"
            kafka_stop
        else
            log "WARNING: the Kafka on $HOST:$KAFKA_PORT is not ours and has no SASL_SSL listener on :$KAFKA_TLS_PORT"
            return 0
        fi
    fi
    kafka_install
    mkdir -p "$KAFKA_DIR/data"
    sed -e "s#@HOST@#$HOST#g" -e "s#@PORT@#$KAFKA_PORT#g" -e "s#@CONTROLLER_PORT@#$KAFKA_CONTROLLER_PORT#g" \
        -e "s#@TLS_PORT@#$KAFKA_TLS_PORT#g" -e "s#@KEYSTORE@#$TLS_DIR/kafka.p12#g" \
        -e "s#@KEYSTORE_PASSWORD@#$KEYSTORE_PASSWORD#g" \
        -e "s#@DATA_DIR@#$KAFKA_DIR/data#g" "$HERE/kafka/server.properties.in" >"$KAFKA_DIR/server.properties"
    if pid_alive "$RUN/kafka.pid" kafka.Kafka; then
        return 0 # still starting; kafka_wait waits for it
    fi
    if port_open "$KAFKA_PORT" || port_open "$KAFKA_CONTROLLER_PORT" || port_open "$KAFKA_TLS_PORT"; then
        die "something else listens on $HOST:$KAFKA_PORT, :$KAFKA_CONTROLLER_PORT or :$KAFKA_TLS_PORT but does not answer as a Kafka broker"
    fi
    if [ ! -f "$KAFKA_DIR/data/meta.properties" ]; then
        local cluster_id
        cluster_id=$("$VENV/bin/python" -c '
import base64, uuid
while True:
    s = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    if not s.startswith("-"):
        print(s); break')
        log "formatting Kafka KRaft storage (cluster id $cluster_id)"
        kafka_java kafka.tools.StorageTool format -t "$cluster_id" -c "$KAFKA_DIR/server.properties" \
            --add-scram "SCRAM-SHA-512=[name=$SASL_USERNAME,password=$SASL_PASSWORD]" \
            >>"$LOGS/kafka-format.log" 2>&1 || { tail -n 20 "$LOGS/kafka-format.log" >&2; die "Kafka storage format failed"; }
        echo "$SASL_USERNAME" >"$KAFKA_DIR/scram-users"
    fi
    log "starting Kafka $KAFKA_VERSION"
    echo "=== $(date -Is) starting Kafka $KAFKA_VERSION" >>"$LOGS/kafka.out"
    # shellcheck disable=SC2086
    nohup setsid java $KAFKA_HEAP -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError \
        -Djava.awt.headless=true -Dlog4j2.configurationFile="$HERE/kafka/log4j2.xml" -Dkafka.logs.dir="$LOGS" \
        -cp "$KAFKA_HOME/libs/*" kafka.Kafka "$KAFKA_DIR/server.properties" \
        >>"$LOGS/kafka.out" 2>&1 </dev/null &
    echo $! >"$RUN/kafka.pid"
    STARTED+=(kafka)
    KAFKA_T0=$SECONDS
}

kafka_wait() {
    local logf=$LOGS/kafka.log
    [ -f "$logf" ] || logf=$LOGS/kafka.out
    wait_for kafka 120 "$logf" kafka_ready_or_dead || return 1
    if ! kafka_ready; then
        log "Kafka exited during start-up. Last lines of $LOGS/kafka.out and $LOGS/kafka.log:"
        tail -n 20 "$LOGS/kafka.out" "$LOGS/kafka.log" >&2 2>/dev/null || true
        return 1
    fi
    wait_for "kafka SASL_SSL listener" 30 "$LOGS/kafka.log" port_open "$KAFKA_TLS_PORT" || return 1
    if [ -n "${KAFKA_T0:-}" ]; then log "Kafka answered after $((SECONDS - KAFKA_T0))s"; fi
    # Storage formatted before the SCRAM user existed (older state dir): create it now.
    if [ "$(cat "$KAFKA_DIR/scram-users" 2>/dev/null)" != "$SASL_USERNAME" ]; then
        log "creating the Kafka SCRAM-SHA-512 user $SASL_USERNAME"
        "$VENV/bin/python" - "$HOST:$KAFKA_PORT" "$SASL_USERNAME" "$SASL_PASSWORD" <<'EOF' >>"$LOGS/kafka-format.log" 2>&1 || { log "creating the SCRAM user failed (log: $LOGS/kafka-format.log)"; return 1; }
import sys
from confluent_kafka.admin import AdminClient, ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion
admin = AdminClient({"bootstrap.servers": sys.argv[1]})
cred = UserScramCredentialUpsertion(sys.argv[2], ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192), sys.argv[3].encode())
for f in admin.alter_user_scram_credentials([cred]).values():
    f.result(30)
EOF
        echo "$SASL_USERNAME" >"$KAFKA_DIR/scram-users"
    fi
}

# Stop polling early when the JVM we started has died.
kafka_ready_or_dead() {
    kafka_ready && return 0
    if pid_gone "$RUN/kafka.pid"; then return 0; fi
    return 1
}

kafka_stop() { stop_pid kafka "$RUN/kafka.pid" kafka.Kafka 60; }

kafka_status() {
    if kafka_ready; then
        local who="external process"
        pid_alive "$RUN/kafka.pid" kafka.Kafka && who="pid $(cat "$RUN/kafka.pid")"
        local tls="SASL_SSL :$KAFKA_TLS_PORT down"
        port_open "$KAFKA_TLS_PORT" && tls="+ SASL_SSL/SCRAM-SHA-512 $HOST:$KAFKA_TLS_PORT"
        echo "up    kafka     $HOST:$KAFKA_PORT $tls  (Apache Kafka $KAFKA_VERSION, KRaft, $who)"
    else echo "down  kafka     $HOST:$KAFKA_PORT"; return 1; fi
}

# --------------------------------------------------------------- registry --
# Apicurio Registry (the real thing, Confluent-compatible API under /apis/ccompat/v7), built once
# from Maven Central by deploy/local/registry/pom.xml into $CHAOS_CACHE; BACKWARD compatibility
# enforced for every subject. Storage: its embedded H2 database, by default in a file in the state
# dir ($CHAOS_STATE/registry/db.mv.db), so schema ids survive a restart like the Kafka messages
# that carry them (an in-memory registry restarts at id 1 and would hand old ids to other
# schemas); a new state dir starts empty. CHAOS_REGISTRY_STORAGE=memory keeps it in memory only.

registry_http_ok() {
    "$(any_python)" - "$1" <<'EOF' 2>/dev/null
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
    sys.exit(0 if r.status == 200 else 1)
EOF
}

registry_ready() { registry_http_ok "$REGISTRY_URL/subjects"; }

any_python() { if [ -x "$VENV/bin/python" ]; then echo "$VENV/bin/python"; else command -v python3; fi; }

registry_install() {
    local want
    want=$(sha256sum "$HERE/registry/pom.xml" | cut -d' ' -f1)
    [ -f "$REGISTRY_HOME/.complete" ] && [ "$(cat "$REGISTRY_HOME/.complete")" = "$want" ] && return 0
    command -v javac >/dev/null || apt_install openjdk-17-jdk-headless
    command -v mvn >/dev/null || apt_install maven
    log "building Apicurio Registry $REGISTRY_VERSION from Maven Central into $REGISTRY_HOME (about a minute cold)"
    local t0=$SECONDS tmp=$REGISTRY_HOME.partial
    rm -rf "$tmp"
    mkdir -p "$tmp/build"
    cp "$HERE/registry/pom.xml" "$tmp/build/pom.xml"
    (cd "$tmp/build" && nice -n 10 mvn -B -q -Dmaven.repo.local="$MAVEN_REPO" -DskipTests \
        -Dquarkus.class-loading.removed-artifacts=io.apicurio:apicurio-registry-app package) \
        >>"$LOGS/registry-install.log" 2>&1 ||
        { tail -n 30 "$LOGS/registry-install.log" >&2; rm -rf "$tmp"; die "Maven could not build Apicurio Registry $REGISTRY_VERSION (log: $LOGS/registry-install.log)"; }
    [ -f "$tmp/build/target/$REGISTRY_JAR_NAME" ] && [ -d "$tmp/build/target/lib" ] ||
        { rm -rf "$tmp"; die "$REGISTRY_JAR_NAME or lib/ missing after the Maven build"; }
    # Keep the runner jar and its lib/ (the jar's manifest names lib/... relative to itself).
    mv "$tmp/build/target/$REGISTRY_JAR_NAME" "$tmp/build/target/lib" "$tmp/"
    rm -rf "$tmp/build" "$REGISTRY_HOME"
    mv "$tmp" "$REGISTRY_HOME"
    echo "$want" >"$REGISTRY_HOME/.complete"
    log "Apicurio Registry $REGISTRY_VERSION built in $((SECONDS - t0))s"
}

registry_jdbc_url() {
    case $REGISTRY_STORAGE in
    memory) echo "jdbc:h2:mem:registry_db" ;;
    file) echo "jdbc:h2:file:$CHAOS_STATE/registry/db" ;;
    *) die "CHAOS_REGISTRY_STORAGE must be file or memory, not '$REGISTRY_STORAGE'" ;;
    esac
}

registry_start() {
    # The Python stand-in this replaced may still run from an older checkout: stop it.
    if pid_alive "$RUN/registry.pid" schema_registry_standin; then stop_pid "registry stand-in" "$RUN/registry.pid" schema_registry_standin 10; fi
    if registry_ready; then return 0; fi
    if pid_alive "$RUN/registry.pid" "$REGISTRY_JAR_NAME"; then return 0; fi # still starting
    if port_open "$REGISTRY_PORT"; then die "something else listens on $HOST:$REGISTRY_PORT but does not answer as the schema registry ($REGISTRY_URL/subjects)"; fi
    local jdbc
    jdbc=$(registry_jdbc_url)
    registry_install
    mkdir -p "$CHAOS_STATE/registry"
    log "starting Apicurio Registry $REGISTRY_VERSION ($REGISTRY_STORAGE storage)"
    echo "=== $(date -Is) starting Apicurio Registry $REGISTRY_VERSION" >>"$LOGS/registry.log"
    # (exec: the pid recorded is the JVM's)
    # shellcheck disable=SC2086
    (cd "$CHAOS_STATE/registry" && exec nohup setsid java $REGISTRY_HEAP -XX:+UseSerialGC -XX:MaxMetaspaceSize=160m -Xss512k \
        -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true -Djava.io.tmpdir="$CHAOS_STATE/registry" \
        -Dquarkus.http.host="$HOST" -Dquarkus.http.port="$REGISTRY_PORT" \
        -Dregistry.rules.global.compatibility=BACKWARD -Dquarkus.datasource.jdbc.url="$jdbc" \
        -Dquarkus.datasource.jdbc.min-size=2 -Dquarkus.datasource.jdbc.initial-size=2 -Dquarkus.datasource.jdbc.max-size=10 \
        -jar "$REGISTRY_HOME/$REGISTRY_JAR_NAME" >>"$LOGS/registry.log" 2>&1 </dev/null) &
    echo $! >"$RUN/registry.pid"
    STARTED+=(registry)
    REGISTRY_T0=$SECONDS
}

registry_ready_or_dead() {
    registry_ready && return 0
    if pid_gone "$RUN/registry.pid"; then return 0; fi
    return 1
}

registry_wait() {
    wait_for registry 120 "$LOGS/registry.log" registry_ready_or_dead || return 1
    if ! registry_ready; then
        log "the registry exited during start-up. Last lines of $LOGS/registry.log:"
        tail -n 30 "$LOGS/registry.log" >&2 2>/dev/null || true
        return 1
    fi
    if [ -n "${REGISTRY_T0:-}" ]; then log "registry answered after $((SECONDS - REGISTRY_T0))s"; fi
}

registry_stop() {
    if pid_alive "$RUN/registry.pid" schema_registry_standin; then stop_pid "registry stand-in" "$RUN/registry.pid" schema_registry_standin 10; fi
    stop_pid registry "$RUN/registry.pid" "$REGISTRY_JAR_NAME" 30
}

registry_status() {
    if registry_ready; then
        local who="external process"
        pid_alive "$RUN/registry.pid" "$REGISTRY_JAR_NAME" && who="pid $(cat "$RUN/registry.pid")"
        local storage="H2 file in $CHAOS_STATE/registry"
        tr '\0' ' ' <"/proc/$(cat "$RUN/registry.pid" 2>/dev/null)/cmdline" 2>/dev/null | grep -q 'jdbc:h2:mem' && storage="in memory"
        echo "up    registry  $REGISTRY_URL  (Apicurio Registry $REGISTRY_VERSION, $storage, $who)"
    else echo "down  registry  $REGISTRY_URL"; return 1; fi
}

# ------------------------------------------------------------------ mongo --
# A MongoDB-wire TEST server: SecantusDB (PyPI `secantusdb`, on WiredTiger), installed into the
# venv, data in $CHAOS_STATE/mongo. No MongoDB server is installable here; production is MongoDB
# (DocumentDB). It advertises a single-node replica set: clients use directConnection=true.

# A `ping` command in one raw OP_MSG (stdlib only: pymongo's import and exit take a second).
mongo_ready() {
    port_open "$MONGO_PORT" || return 1
    "$(any_python)" - "$HOST" "$MONGO_PORT" <<'EOF' 2>/dev/null
import socket, struct, sys
el = b"\x10ping\x00" + struct.pack("<i", 1) + b"\x02$db\x00" + struct.pack("<i", 6) + b"admin\x00"
doc = struct.pack("<i", 4 + len(el) + 1) + el + b"\x00"
body = struct.pack("<I", 0) + b"\x00" + doc
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2) as s:
    s.sendall(struct.pack("<iiii", 16 + len(body), 1, 0, 2013) + body)
    reply = s.recv(16, socket.MSG_WAITALL)
    n = struct.unpack("<i", reply[:4])[0]
    while len(reply) < n:
        chunk = s.recv(n - len(reply))
        if not chunk:
            break
        reply += chunk
sys.exit(0 if b"\x01ok\x00" + struct.pack("<d", 1.0) in reply else 1)
EOF
}

mongo_start() {
    if mongo_ready; then return 0; fi
    if pid_alive "$RUN/mongo.pid" secantusd-py; then return 0; fi # still starting
    if port_open "$MONGO_PORT"; then die "something else listens on $HOST:$MONGO_PORT but does not answer as the mongo test server"; fi
    [ -x "$VENV/bin/secantusd-py" ] || die "$VENV/bin/secantusd-py missing (secantusdb is in $(basename "$REQUIREMENTS"))"
    mkdir -p "$CHAOS_STATE/mongo/data"
    # An explicit (empty) config file: no auto-discovery of ./secantusd.toml, ~/.secantus/, /etc/secantus/.
    echo "# deploy/local/services.sh passes every setting on the command line" >"$CHAOS_STATE/mongo/secantusd.toml"
    log "starting mongo (SecantusDB $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("secantusdb"))'), a MongoDB-wire test server)"
    echo "=== $(date -Is) starting SecantusDB" >>"$LOGS/mongo.log"
    (cd "$CHAOS_STATE/mongo" && exec nohup setsid "$VENV/bin/secantusd-py" --config "$CHAOS_STATE/mongo/secantusd.toml" \
        --host "$HOST" --port "$MONGO_PORT" --storage-path "$CHAOS_STATE/mongo/data" \
        --cache-size 256M --log-level INFO >>"$LOGS/mongo.log" 2>&1 </dev/null) &
    echo $! >"$RUN/mongo.pid"
    STARTED+=(mongo)
}

mongo_ready_or_dead() {
    mongo_ready && return 0
    if pid_gone "$RUN/mongo.pid"; then return 0; fi
    return 1
}

mongo_wait() {
    wait_for mongo 60 "$LOGS/mongo.log" mongo_ready_or_dead || return 1
    mongo_ready || { log "mongo exited during start-up. Last lines of $LOGS/mongo.log:"; tail -n 30 "$LOGS/mongo.log" >&2; return 1; }
}

mongo_stop() { stop_pid mongo "$RUN/mongo.pid" secantusd-py 30; }

mongo_status() {
    if mongo_ready; then
        local who="external process"
        pid_alive "$RUN/mongo.pid" secantusd-py && who="pid $(cat "$RUN/mongo.pid")"
        echo "up    mongo     $MONGO_URL  (SecantusDB TEST server, $who)"
    else echo "down  mongo     $HOST:$MONGO_PORT"; return 1; fi
}

# --------------------------------------------------------------- commands --

# state_alive DIR: some service of state dir DIR still runs (a pid file names a live service).
state_alive() {
    local f pid
    for f in "$1"/run/*.pid "$1"/postgres/data/postmaster.pid; do
        [ -f "$f" ] || continue
        pid=$(head -n 1 "$f" 2>/dev/null) || continue
        [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
            tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qE 'java|redis-server|postgres|secantus' && return 0
    done
    return 1
}

# Services of one state dir at a time: they all want the same ports.
claim_ports() {
    local prev
    prev=$(cat "$ACTIVE_FILE" 2>/dev/null || true)
    if [ -n "$prev" ] && [ "$prev" != "$CHAOS_STATE" ] && state_alive "$prev"; then
        die "the services of state dir $prev are running and hold the ports; stop them first:
    CHAOS_STATE=$prev $0 down     (or: $0 down --active)"
    fi
    echo "$CHAOS_STATE" >"$ACTIVE_FILE"
}

select_services() {
    local s
    if [ $# -eq 0 ]; then
        SELECTED=("${ALL_SERVICES[@]}")
        return
    fi
    SELECTED=()
    for s in "$@"; do
        case " ${ALL_SERVICES[*]} " in
        *" $s "*) SELECTED+=("$s") ;;
        *) die "unknown service '$s' (known: ${ALL_SERVICES[*]})" ;;
        esac
    done
}

STARTED=()
on_up_exit() {
    local rc=$? s
    if [ "$rc" -ne 0 ] && [ "${#STARTED[@]}" -gt 0 ]; then
        log "start-up failed; stopping what this run started: ${STARTED[*]}"
        for s in "${STARTED[@]}"; do "${s}_stop" || true; done
    fi
    exit "$rc"
}

cmd_up() {
    local t0=$SECONDS s
    select_services "$@"
    mkdir -p "$LOGS" "$RUN" "$CHAOS_CACHE"
    claim_ports
    trap on_up_exit EXIT
    ensure_venv
    tls_ensure
    # Launch everything first, then wait: the Kafka JVM boots while PostgreSQL is set up.
    for s in "${SELECTED[@]}"; do "${s}_start"; done
    for s in "${SELECTED[@]}"; do "${s}_wait" || die "$s did not become ready"; done
    trap - EXIT
    if [ "${#STARTED[@]}" -gt 0 ]; then
        log "up: ${SELECTED[*]} (started ${STARTED[*]}) in $((SECONDS - t0))s"
    else
        log "up: ${SELECTED[*]} already running"
    fi
}

cmd_down() {
    local i
    select_services "$@"
    mkdir -p "$LOGS" "$RUN"
    for ((i = ${#SELECTED[@]} - 1; i >= 0; i--)); do "${SELECTED[$i]}_stop"; done
}

cmd_status() {
    local s rc=0
    for s in "${ALL_SERVICES[@]}"; do "${s}_status" || rc=1; done
    echo "logs: $LOGS   state: $CHAOS_STATE   cache: $CHAOS_CACHE"
    return "$rc"
}

cmd_env() {
    printf 'export %s=%q\n' \
        CHAOS_CACHE "$CHAOS_CACHE" \
        CHAOS_STATE "$CHAOS_STATE" \
        CHAOS_VENV "$VENV" \
        CHAOS_KAFKA_HOME "$KAFKA_HOME" \
        DATABASE_URL "postgres://chaos:chaos@$HOST:$PG_PORT/chaos" \
        REDIS_URL "redis://$HOST:$REDIS_PORT" \
        KAFKA_BOOTSTRAP_SERVERS "$HOST:$KAFKA_PORT" \
        SCHEMA_REGISTRY_URL "$REGISTRY_URL" \
        MONGODB_URL "$MONGO_URL" \
        CHAOS_TLS_CA_FILE "$TLS_CA" \
        DATABASE_TLS_URL "postgres://chaos:chaos@$HOST:$PG_PORT/chaos?sslmode=verify-full&sslrootcert=$TLS_CA" \
        KAFKA_TLS_BOOTSTRAP_SERVERS "$HOST:$KAFKA_TLS_PORT" \
        KAFKA_TLS_CA_FILE "$TLS_CA" \
        KAFKA_SASL_MECHANISM SCRAM-SHA-512 \
        KAFKA_SASL_USERNAME "$SASL_USERNAME" \
        KAFKA_SASL_PASSWORD "$SASL_PASSWORD" \
        REDIS_TLS_URL "rediss://:$REDIS_TLS_PASSWORD@$HOST:$REDIS_TLS_PORT" \
        REDIS_TLS_CA_FILE "$TLS_CA"
}

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; }

main() {
    local cmd=${1:-}
    [ $# -gt 0 ] && shift
    case "$cmd" in
    up) cmd_up "$@" ;;
    down)
        if [ "${1:-}" = --active ]; then
            shift
            local prev
            prev=$(cat "$ACTIVE_FILE" 2>/dev/null || true)
            if [ -n "$prev" ] && [ "$prev" != "$CHAOS_STATE" ]; then
                CHAOS_STATE=$prev exec bash "${BASH_SOURCE[0]}" down "$@"
            fi
        fi
        cmd_down "$@"
        ;;
    status) cmd_status ;;
    env) cmd_env ;;
    -h | --help | help) usage ;;
    *) usage; exit 2 ;;
    esac
}

main "$@"
