#!/usr/bin/env bash
# The team tracking server: PostgreSQL + an MLflow server with basic-auth, all on 127.0.0.1.
#
#   scripts/tracking_server.sh start [--dir DIR] [--port PORT] [--pg-port PORT]   (make tracking-server)
#   scripts/tracking_server.sh stop  [--dir DIR]                                   (make tracking-server-stop)
#
# DIR (default .tracking/, git-ignored) holds the PostgreSQL cluster (pg/, owned by the
# `postgres` user when run as root), the proxied artifacts (artifacts/), the auth ini, logs,
# the recorded ports (pg.port, mlflow.port) and PIDs (mlflow.pid; PostgreSQL's is pg/postmaster.pid).
# PORT defaults to $TRACKING_PORT or 5050, PostgreSQL's to $TRACKING_PG_PORT or 5051: fixed
# ports, so conf/tracking/server.yaml (which reads the same two variables) knows both URLs.
#
# PostgreSQL holds three databases: mlflow (runs, models), mlflow_auth (users) and optuna (the
# shared hyperparameter studies, tune.storage's default with tracking=server). The optuna
# database belongs to its own role `optuna`, which can reach nothing else, so tuning workers
# never hold credentials of the MLflow store.
#
# Secrets come only from the environment and are never written to a file or a log:
#   MLFLOW_FLASK_SERVER_SECRET_KEY, MLFLOW_AUTH_ADMIN_PASSWORD (admin's password, first start),
#   TUNE_STORAGE_PASSWORD (the optuna role's password, set at every start).
# The mlflow role has a random password (pgpass, mode 0600, read by libpq via PGPASSFILE),
# so no other local user can reach the store behind the server's back.
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PY:-$REPO/.venv/bin/python}"
MLFLOW_BIN="$(dirname "$PY")/mlflow"
DIR="${TRACKING_DIR:-$REPO/.tracking}"
PORT="${TRACKING_PORT:-5050}"
PG_PORT="${TRACKING_PG_PORT:-5051}"
HEALTH_TIMEOUT="${TRACKING_HEALTH_TIMEOUT:-90}"
DB_USER=mlflow

die() { echo "tracking-server: $*" >&2; exit 1; }

cmd="${1:-}"; shift || true
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dir) DIR="$2"; shift 2 ;;
    --port) PORT="$2"; shift 2 ;;
    --pg-port) PG_PORT="$2"; shift 2 ;;
    *) die "unknown argument $1 (usage: $0 start|stop [--dir DIR] [--port PORT] [--pg-port PORT])" ;;
  esac
done
mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"
PGDATA_DIR="$DIR/pg"

pg_bin() {  # the directory of Debian's PostgreSQL binaries (newest major), or nothing
  local d
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  [[ -n "$d" && -x "$d/pg_ctl" ]] && echo "$d" || true
}

as_pg() {  # run a PostgreSQL command as the cluster's owner (root may not run them)
  if [[ $EUID -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

ensure_postgres() {
  [[ -n "$(pg_bin)" ]] && return 0
  [[ $EUID -eq 0 ]] || die "PostgreSQL is not installed; run: sudo apt-get install -y postgresql"
  echo "tracking-server: installing PostgreSQL (Debian package postgresql)" >&2
  apt-get -o DPkg::Lock::Timeout=300 update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q postgresql >&2
  [[ -n "$(pg_bin)" ]] || die "PostgreSQL binaries not found under /usr/lib/postgresql after install"
}

port_busy() {
  "$PY" -c 'import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(("127.0.0.1", int(sys.argv[1]))) != 0)' "$1"
}

alive() {  # running (a zombie left for its parent to reap does not count)
  [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null && [[ "$(ps -o stat= -p "$1" 2>/dev/null)" != Z* ]]
}

group_alive() {  # any live (non-zombie) process left in process group $1
  [[ -n "${1:-}" ]] || return 1
  ps -e -o pgid=,stat= | awk -v g="$1" '$1 == g && $2 !~ /^Z/ {found = 1} END {exit !found}'
}

pg_running() { [[ -f "$PGDATA_DIR/postmaster.pid" ]] && as_pg "$(pg_bin)/pg_ctl" -D "$PGDATA_DIR" status >/dev/null 2>&1; }

optuna_database() {  # the role and database of the shared studies, its schema created once
  local pgport="$1"
  # over the cluster's socket as its superuser (local connections are trusted; the socket's
  # folder is the cluster's, closed to other users). The password travels in the environment
  # and the statement is kept out of PostgreSQL's log.
  "$PY" - "$PGDATA_DIR" "$pgport" "$DB_USER" <<'PYEOF' || die "could not set up the optuna database (see $DIR/pg.log)"
import os, sys
import psycopg2
from psycopg2 import sql
host, port, superuser = sys.argv[1:4]
conn = psycopg2.connect(host=host, port=port, user=superuser, dbname="postgres")
conn.autocommit = True  # CREATE DATABASE runs outside a transaction
cur = conn.cursor()
cur.execute("SET log_statement = 'none'")
cur.execute("SET log_min_error_statement = 'panic'")
cur.execute("SELECT 1 FROM pg_roles WHERE rolname = 'optuna'")
if cur.fetchone() is None:
    cur.execute("CREATE ROLE optuna LOGIN")
cur.execute("ALTER ROLE optuna LOGIN PASSWORD %s", (os.environ["TUNE_STORAGE_PASSWORD"],))
cur.execute("SELECT 1 FROM pg_database WHERE datname = 'optuna'")
if cur.fetchone() is None:
    cur.execute("CREATE DATABASE optuna OWNER optuna")
# every role may connect to every database by default: the optuna role may not
for db in ("postgres", "mlflow", "mlflow_auth"):
    cur.execute(sql.SQL("REVOKE CONNECT ON DATABASE {} FROM PUBLIC").format(sql.Identifier(db)))
conn.close()
PYEOF
  # Optuna creates its tables on first use, and workers starting together on an empty
  # database race on that (optuna#1092): create them here, once, as the database's owner
  "$PY" -c 'import sys, optuna; optuna.storages.RDBStorage(sys.argv[1])' \
    "postgresql+psycopg2://optuna@/optuna?host=$PGDATA_DIR&port=$pgport" >>"$DIR/optuna-init.log" 2>&1 \
    || die "could not create Optuna's tables (see $DIR/optuna-init.log)"
}

stop() {
  local pid="" i
  [[ -f "$DIR/mlflow.pid" ]] && pid="$(cat "$DIR/mlflow.pid")"
  if group_alive "$pid"; then
    # SIGTERM to its process group (started with setsid): the server and its uvicorn worker;
    # whatever is left after 15 s is killed
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 150); do group_alive "$pid" || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    echo "tracking-server: MLflow server (pid $pid) stopped"
  fi
  rm -f "$DIR/mlflow.pid"
  if [[ -n "$(pg_bin)" ]] && pg_running; then
    as_pg "$(pg_bin)/pg_ctl" -D "$PGDATA_DIR" -m fast -w stop >/dev/null
    echo "tracking-server: PostgreSQL stopped"
  fi
}

start() {
  [[ -n "${MLFLOW_FLASK_SERVER_SECRET_KEY:-}" ]] \
    || die "set MLFLOW_FLASK_SERVER_SECRET_KEY (e.g. export MLFLOW_FLASK_SERVER_SECRET_KEY=\$(openssl rand -hex 32))"
  [[ -n "${MLFLOW_AUTH_ADMIN_PASSWORD:-}" ]] \
    || die "set MLFLOW_AUTH_ADMIN_PASSWORD (the admin user's password; at least 12 characters)"
  (( ${#MLFLOW_AUTH_ADMIN_PASSWORD} >= 12 )) \
    || die "MLFLOW_AUTH_ADMIN_PASSWORD is too short (MLflow's policy: at least 12 characters)"
  [[ -n "${TUNE_STORAGE_PASSWORD:-}" ]] \
    || die "set TUNE_STORAGE_PASSWORD (the password of the shared Optuna studies' database)"
  [[ -x "$MLFLOW_BIN" ]] || die "no MLflow at $MLFLOW_BIN (run: make install)"
  "$PY" -c 'import psycopg2, flask_wtf' 2>/dev/null \
    || die "psycopg2 / Flask-WTF / Optuna missing in $(dirname "$PY") (run: make install)"

  if [[ -f "$DIR/mlflow.pid" ]] && alive "$(cat "$DIR/mlflow.pid")"; then
    echo "tracking-server: already running at http://127.0.0.1:$(cat "$DIR/mlflow.port")"
    return 0
  fi
  port_busy "$PORT" && die "port $PORT on 127.0.0.1 is in use (choose another: TRACKING_PORT=...)"
  if ! pg_running; then
    port_busy "$PG_PORT" \
      && die "port $PG_PORT on 127.0.0.1 is in use (choose another: TRACKING_PG_PORT=...)"
  fi
  ensure_postgres
  local bin; bin="$(pg_bin)"

  # --- PostgreSQL: a cluster under DIR, owned by postgres, 127.0.0.1 only ---------------------
  if [[ $EUID -eq 0 ]]; then
    runuser -u postgres -- test -x "$DIR" \
      || die "the postgres user cannot enter $DIR (make its parent directories world-executable)"
  fi
  umask 077
  if [[ ! -f "$DIR/pgpass.secret" ]]; then
    "$PY" -c 'import secrets; print(secrets.token_hex(24))' > "$DIR/pgpass.secret"
  fi
  local pgpw; pgpw="$(cat "$DIR/pgpass.secret")"
  if [[ ! -f "$PGDATA_DIR/PG_VERSION" ]]; then
    mkdir -p "$PGDATA_DIR"
    local pwfile="$PGDATA_DIR.pwfile"
    printf '%s\n' "$pgpw" > "$pwfile"
    if [[ $EUID -eq 0 ]]; then chown postgres: "$PGDATA_DIR" "$pwfile"; fi
    as_pg "$bin/initdb" -D "$PGDATA_DIR" -U "$DB_USER" --pwfile="$pwfile" \
      --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1 \
      || { rm -f "$pwfile"; die "initdb failed (see $DIR/initdb.log)"; }
    rm -f "$pwfile"
  fi
  # from here on, a failed start stops whatever it started (die exits; the trap runs stop)
  trap 'stop >&2' EXIT
  local pgport
  if pg_running; then
    pgport="$(cat "$DIR/pg.port")"
  else
    pgport="$PG_PORT"
    if [[ $EUID -eq 0 ]]; then touch "$DIR/pg.log"; chown postgres: "$DIR/pg.log"; fi
    as_pg "$bin/pg_ctl" -D "$PGDATA_DIR" -l "$DIR/pg.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $pgport -k $PGDATA_DIR" start >/dev/null \
      || die "PostgreSQL did not start (see $DIR/pg.log)"
    echo "$pgport" > "$DIR/pg.port"
  fi
  local db
  for db in mlflow mlflow_auth; do
    if ! as_pg "$bin/psql" -h "$PGDATA_DIR" -p "$pgport" -U "$DB_USER" -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname='$db'" | grep -q 1; then
      as_pg "$bin/createdb" -h "$PGDATA_DIR" -p "$pgport" -U "$DB_USER" "$db"
    fi
  done
  printf '127.0.0.1:%s:*:%s:%s\n' "$pgport" "$DB_USER" "$pgpw" > "$DIR/pgpass"
  chmod 600 "$DIR/pgpass"
  optuna_database "$pgport"

  # --- MLflow: backend and auth users in PostgreSQL, proxied artifacts ------------------------
  local base="postgresql+psycopg2://$DB_USER@127.0.0.1:$pgport"
  mkdir -p "$DIR/artifacts"
  cat > "$DIR/basic_auth.ini" <<EOF
# Written by scripts/tracking_server.sh. The admin password comes from MLFLOW_AUTH_ADMIN_PASSWORD
# (first start only); the database password from PGPASSFILE. No secret is stored here.
[mlflow]
default_permission = NO_PERMISSIONS
database_uri = $base/mlflow_auth
admin_username = admin
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
grant_default_workspace_access = false
auth_cache_ttl_seconds = 60
EOF
  (
    cd "$DIR"
    # no job runner: it serves MLflow's GenAI jobs (prompt optimisation, trace scorers), none
    # of which this project uses, and costs eight more Python processes (~1 GiB) per server
    MLFLOW_AUTH_CONFIG_PATH="$DIR/basic_auth.ini" PGPASSFILE="$DIR/pgpass" \
      MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false \
      setsid env -u TUNE_STORAGE_PASSWORD "$MLFLOW_BIN" server \
        --backend-store-uri "$base/mlflow" \
        --artifacts-destination "$DIR/artifacts" \
        --host 127.0.0.1 --port "$PORT" --workers 1 --app-name basic-auth \
        >"$DIR/mlflow.log" 2>&1 </dev/null &
    echo $! > "$DIR/mlflow.pid"
  )
  echo "$PORT" > "$DIR/mlflow.port"
  local pid; pid="$(cat "$DIR/mlflow.pid")"
  local url="http://127.0.0.1:$PORT"
  local deadline=$((SECONDS + HEALTH_TIMEOUT))
  until "$PY" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + "/health", timeout=2)' "$url" 2>/dev/null; do
    if ! alive "$pid" || (( SECONDS > deadline )); then
      echo "tracking-server: MLflow server did not become healthy; last lines of $DIR/mlflow.log:" >&2
      tail -n 15 "$DIR/mlflow.log" >&2 || true
      exit 1
    fi
    sleep 0.5
  done
  trap - EXIT
  echo "tracking-server: MLflow at $url (backend PostgreSQL 127.0.0.1:$pgport, files in $DIR)"
  echo "tracking-server: shared Optuna studies at postgresql+psycopg2://optuna@127.0.0.1:$pgport/optuna (password: TUNE_STORAGE_PASSWORD)"
  echo "$url"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  *) die "usage: $0 start|stop [--dir DIR] [--port PORT]" ;;
esac
