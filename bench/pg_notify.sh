#!/usr/bin/env bash
# Would a PostgreSQL near cache kept coherent by LISTEN/NOTIFY pay? It saves the load
# statement of a keep-cookie request, but every write then notifies. This measures the
# server side of both with pgbench on a private cluster (initdb in a temporary directory,
# PostgreSQL pinned to CPU 1, pgbench to CPU 0, 32 clients, prepared statements), on
# sessio-sql's table and statements:
#   (a) load + conditional update (what a keep-cookie request runs today),
#   (b) the update alone (a perfect cache with free invalidation),
#   (c) the update alone, with an AFTER UPDATE trigger calling pg_notify and one listener,
#   (d) load + update, with the trigger.
# usage: bash bench/pg_notify.sh            (DUR=8 to change the seconds per row)
set -euo pipefail
DUR=${DUR:-8}
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)}
PG_PORT=3195
PG_DIR=$(mktemp -d)
AS_POSTGRES=()
if [ "$(id -u)" = 0 ]; then
  chown postgres:postgres "$PG_DIR"
  AS_POSTGRES=(setpriv --reuid=postgres --regid=postgres --init-groups --)
fi
"${AS_POSTGRES[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U postgres --no-sync >/dev/null
"${AS_POSTGRES[@]}" taskset -c 1 "$PG_BIN/postgres" -D "$PG_DIR/data" -p "$PG_PORT" -h 127.0.0.1 -k "$PG_DIR" -F -c max_connections=200 >/dev/null 2>&1 &
PG_PID=$!
LISTENER=""
cleanup() {
  [ -n "$LISTENER" ] && kill "$LISTENER" 2>/dev/null
  kill -QUIT "$PG_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$PG_DIR"
}
trap cleanup EXIT
for _ in $(seq 100); do "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" && break; sleep 0.1; done
sql() { "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -Atq -c "$1"; }
NOW="(EXTRACT(EPOCH FROM statement_timestamp()) * 1000)::BIGINT"
sql "CREATE TABLE sessions (session_key TEXT PRIMARY KEY, data BYTEA, version BIGINT NOT NULL,
     expires_at BIGINT NOT NULL, lease_token BYTEA, lease_until BIGINT);
     CREATE INDEX sessions_expiry ON sessions (expires_at);
     INSERT INTO sessions SELECT 'k' || i, '\\x7b22666f6f223a317d', 1, $NOW + 3600000
     FROM generate_series(1, 256) i;"
LOAD="SELECT data, version, expires_at, lease_token, COALESCE(lease_until > $NOW, FALSE),
      COALESCE(data IS NOT NULL AND expires_at > $NOW, FALSE) FROM sessions WHERE session_key = 'k' || :k;"
SAVE="UPDATE sessions SET data = '\\x7b22666f6f223a327d', version = version + 1, expires_at = $NOW + 3600000
      WHERE session_key = 'k' || :k AND version >= 0 AND data IS NOT NULL AND expires_at > $NOW;"
printf '\\set k random(1, 256)\n%s\n%s\n' "$LOAD" "$SAVE" > "$PG_DIR/both.sql"
printf '\\set k random(1, 256)\n%s\n' "$SAVE" > "$PG_DIR/save.sql"
row() { # label script
  local tps
  tps=$(taskset -c 0 "$PG_BIN/pgbench" -h 127.0.0.1 -p "$PG_PORT" -U postgres -n -M prepared -c 32 -j 1 \
        -T "$DUR" -f "$2" postgres 2>/dev/null | awk '/^tps/ { printf "%.0f", $3 }')
  echo "| $1 | $tps |"
}
echo "| statements per request | requests/s |"
echo "|---|---:|"
row "load + update" "$PG_DIR/both.sql"
row "update alone" "$PG_DIR/save.sql"
sql "CREATE FUNCTION sessions_notify() RETURNS trigger LANGUAGE plpgsql AS \$\$
     BEGIN PERFORM pg_notify('sessions_changed', OLD.session_key || ' ' || NEW.version); RETURN NULL; END \$\$;
     CREATE TRIGGER sessions_changed AFTER UPDATE ON sessions FOR EACH ROW EXECUTE FUNCTION sessions_notify();"
# One listening connection, as one app process would hold.
( (echo "LISTEN sessions_changed;"; sleep $((4 * DUR + 10))) |
    taskset -c 0 "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres postgres >/dev/null 2>&1 ) &
LISTENER=$!
sleep 1
row "update alone + NOTIFY trigger, one listener" "$PG_DIR/save.sql"
row "load + update + NOTIFY trigger, one listener" "$PG_DIR/both.sql"
