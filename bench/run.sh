#!/usr/bin/env bash
# HTTP benchmarks: wrk against the release binary next to a bare poem server (the
# framework ceiling, ../shared/tools/poem-ceiling) measured in the same run. Each scenario
# alternates baseline and tollgate runs; the figure reported is the ratio of the means.
# Every scenario runs twice: on the embedded sled store, then on a throwaway PostgreSQL 15
# cluster this script starts (default durability settings), where the durable-writes
# scenario is compared with `pgbench -N` on the same cluster instead of the poem ceiling.
# Usage: bench/run.sh [seconds-per-run] [rounds]. Writes bench/results/latest.md.
# BENCH_BIN: the tollgate binary to measure (`make bench` passes the PGO build,
# bench/pgo.sh); unset, the plain release build, built here.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
secs=${1:-5}
rounds=${2:-2}
conns=${BENCH_CONNECTIONS:-32}
writers=64
pg_bin=${PG_BIN:-/usr/lib/postgresql/15/bin}
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
[ -x "$pg_bin/initdb" ] || { echo "PostgreSQL 15 is needed: apt-get install postgresql-15" >&2; exit 1; }

bin=${BENCH_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release --quiet
  bin=./target/release/tollgate
fi
[ -x "$bin" ] || { echo "no binary at $bin" >&2; exit 1; }
ceiling_src="$root/../shared/tools/poem-ceiling"
ceiling_dir="$root/target/poem-ceiling"
if [ -d "$ceiling_src" ]; then
  mkdir -p "$ceiling_dir" && cp -r "$ceiling_src"/. "$ceiling_dir"/
fi
(cd "$ceiling_dir" && cargo build --release --quiet)

work=$(mktemp -d /tmp/tollgate-bench-XXXXXX)
pgdir=""
pids=()
cleanup() {
  [ ${#pids[@]} -eq 0 ] || kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  if [ -n "$pgdir" ]; then
    as_postgres "$pg_bin/pg_ctl" -D "$pgdir/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$pgdir"
  fi
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_up() { # base-url
  for _ in $(seq 300); do curl -fsS "$1/api/health" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "$1 did not come up" >&2
  return 1
}
json() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
post() { curl -fsS -H "$basic" -H 'content-type: application/json' -d "$3" "$1$2"; } # base path body

pw=bench-admin-pw
basic="Authorization: Basic $(printf 'admin:%s' "$pw" | base64)"

# start_tollgate NAME [VAR=value...]: a release server on a free port with its own data
# folder, its log in $work/NAME.log. Sets $url to its base URL.
start_tollgate() {
  local name=$1 p
  shift
  p=$(free_port)
  env GF_PATHS_DATA="$work/$name-data" GF_SERVER_HTTP_ADDR=127.0.0.1 GF_SERVER_HTTP_PORT="$p" \
    GF_SECURITY_ADMIN_PASSWORD="$pw" GF_LOG_LEVEL=warn "$@" \
    "$bin" server >"$work/$name.log" 2>&1 &
  pids+=($!)
  last_pid=$!
  url=http://127.0.0.1:$p
  wait_up "$url"
}

rss_mb() { awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; } # pid
now_ms() { date +%s%3N; }

# PostgreSQL tools run as the postgres user when we are root (initdb refuses root).
as_postgres() {
  if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}
# A throwaway cluster: data and socket in a temp folder, a free loopback port, default
# durability (fsync, synchronous_commit and full_page_writes on), default max_connections
# (100: pgbench's 64 plus the tollgate pools fit). Sets $pgport; stopped by cleanup.
start_postgres() {
  pgdir=$(mktemp -d /tmp/tollgate-bench-pg-XXXXXX)
  chmod 755 "$pgdir"
  [ "$(id -u)" != 0 ] || chown postgres:postgres "$pgdir"
  pgport=$(free_port)
  as_postgres "$pg_bin/initdb" -D "$pgdir/data" -A trust -U postgres >"$pgdir/initdb.log"
  as_postgres "$pg_bin/pg_ctl" -D "$pgdir/data" -l "$pgdir/postgres.log" -w \
    -o "-p $pgport -k $pgdir -c listen_addresses=127.0.0.1" start >/dev/null
  for db in tollgate tollgate_stats pgbench; do
    as_postgres "$pg_bin/createdb" -h 127.0.0.1 -p "$pgport" -U postgres "$db"
  done
  as_postgres "$pg_bin/pgbench" -i -q -h 127.0.0.1 -p "$pgport" -U postgres pgbench >"$pgdir/pgbench-init.log" 2>&1
}
pg_url() { echo "postgres://postgres@127.0.0.1:$pgport/$1?sslmode=disable"; } # database

# setup_clients BASE: warms the admin's credential cache (one PBKDF2 at the default
# 600,000 iterations: the point is that it is not on the hot path), then creates an API
# key, a login session and a service account whose token holds one property-level settings
# scope. Sets $key, $session and $satoken.
setup_clients() {
  local b=$1 sa
  curl -fsS -H "$basic" "$b/api/users/1" >/dev/null
  key=$(post "$b" /api/auth/keys '{"name":"bench","role":"Viewer"}' | json key)
  session=$(curl -fsS -D - -o /dev/null -H 'content-type: application/json' \
    -d "{\"user\":\"admin\",\"password\":\"$pw\"}" "$b/login" \
    | sed -n 's/^[Ss]et-[Cc]ookie: grafana_session=\([^;]*\).*/\1/p')
  sa=$(post "$b" /api/serviceaccounts '{"name":"bench-saml"}' | json id)
  post "$b" /api/access-control/roles '{"uid":"bench-saml","name":"custom:bench:saml","global":true,"permissions":[{"action":"settings:read","scope":"settings:auth.saml:enabled"}]}' >/dev/null
  post "$b" "/api/access-control/users/$sa/roles" '{"roleUid":"bench-saml"}' >/dev/null
  satoken=$(post "$b" "/api/serviceaccounts/$sa/tokens" '{"name":"bench"}' | json key)
}

# get_scenarios BASE SUFFIX: sets SCENARIOS ("name|url|header[|baseline]") for the GET
# scenarios; the baseline is the ceiling's `GET /api/health` unless named (`check`: the
# ceiling's `GET /api/licensing/check`, a bare handler answering `true`, as tollgate does).
get_scenarios() {
  local b=$1 sfx=$2
  SCENARIOS=(
    "GET /api/health$sfx|$b/api/health|"
    "GET /api/users/1 (Basic)$sfx|$b/api/users/1|$basic"
    "GET /api/user (API key)$sfx|$b/api/user|Authorization: Bearer $key"
    "GET /api/user (session cookie)$sfx|$b/api/user|Cookie: grafana_session=$session"
    "GET /api/admin/settings (Basic, Grafana Admin)$sfx|$b/api/admin/settings|$basic"
    "GET /api/admin/settings (service-account token, one property scope)$sfx|$b/api/admin/settings|Authorization: Bearer $satoken"
    "GET /api/licensing/check (API key)$sfx|$b/api/licensing/check|Authorization: Bearer $key|check"
  )
}

# The stats scenarios run on servers whose users are seeded over HTTP. They hash passwords
# with 1,000 PBKDF2 iterations so that 100,000 creates take a minute or two, not hours; the
# stats request itself never hashes anything (the admin's credential is cached).
stats_users() { # base
  curl -fsS -H "$basic" "$1/api/admin/stats" | json users
}
seed_users() { # base, target user count (the admin included)
  local b=$1 target=$2 have run=0
  have=$(stats_users "$b")
  while [ "$have" -lt "$target" ]; do
    run=$((run + 1))
    # About 2,000 creates a second on sled on this machine; the loop tops up any shortfall.
    PREFIX="bulk$target-$run" COUNT=$((target - have)) wrk -t1 -c"$conns" \
      -d"$(( (target - have) / 2000 + 1 ))s" -s bench/seed-users.lua -H "$basic" "$b" >/dev/null
    have=$(stats_users "$b")
  done
  echo "stats server $b: $have users" >&2
}

# wrk_figures WRK-OUTPUT -> "req/s p99 errors" (errors: non-2xx answers plus socket
# errors, timeouts included; wrk's own timeout is 2 s).
wrk_figures() {
  echo "$1" | awk '/Requests\/sec/ {rps=$2} $1=="99%" {p99=$2} /Non-2xx/ {err+=$5}
    /Socket errors/ {for (i=4; i<=NF; i+=2) {v=$i; sub(",", "", v); err+=v}}
    END {print rps, p99, err+0}'
}
run_wrk() { # url header -> "req/s p99 errors"
  local args=(-t1 -c"$conns" -d"${secs}s" --latency) out
  [ -z "$2" ] || args+=(-H "$2")
  out=$(wrk "${args[@]}" "$1")
  wrk_figures "$out"
}
ceiling_health() { run_wrk "$ceiling/api/health" ""; }
ceiling_check() { run_wrk "$ceiling/api/licensing/check" ""; }
# Durable writes: request i grants or revokes the Grafana Admin flag of one of the 1,000 users
# from id $2 in turn (bench/toggle-admin.lua), each one a real change.
run_writes() { # base first-user-id -> "req/s p99 errors"
  local out
  out=$(FIRST_ID=$2 COUNT=1000 wrk -t1 -c"$writers" -d"${secs}s" --latency -s bench/toggle-admin.lua -H "$basic" "$1")
  wrk_figures "$out"
}
# pgbench's built-in simple-update script (-N: UPDATE pgbench_accounts, SELECT, INSERT INTO
# pgbench_history, one transaction) on its own database of the same cluster -> "tps - 0".
pgbench_tps() {
  local out tps
  out=$(as_postgres "$pg_bin/pgbench" -h 127.0.0.1 -p "$pgport" -U postgres \
    -N -c "$writers" -j 2 -T "$secs" pgbench 2>&1)
  tps=$(echo "$out" | awk '$1=="tps" {print $3; exit}')
  [ -n "$tps" ] || { echo "pgbench failed: $out" >&2; return 1; }
  echo "$tps - 0"
}

mkdir -p bench/results
out=bench/results/latest.md
{
  echo "tollgate binary: \`$bin\`"
  echo
  echo "| scenario | tollgate req/s | p99 | baseline | baseline req/s | ratio |"
  echo "|---|---:|---:|---|---:|---:|"
} > "$out"

# measure NAME BASELINE-LABEL BASELINE-CMD CMD...: alternates BASELINE-CMD and CMD (each
# prints "rate p99 errors") $rounds times and appends the row of the means to $out. A
# scenario with errors keeps its row, marked, and the script exits 1 at the end.
failed=0
measure() {
  local name=$1 blabel=$2 bcmd=$3 btotal=0 ttotal=0 errors=0 p99s="" r b t p e
  shift 3
  for _ in $(seq "$rounds"); do
    r=$($bcmd); read -r b _ <<<"$r"
    r=$("$@"); read -r t p e <<<"$r"
    btotal=$(python3 -c "print($btotal + $b)")
    ttotal=$(python3 -c "print($ttotal + $t)")
    errors=$((errors + e))
    p99s="$p99s $p"
  done
  if [ "$errors" -gt 0 ]; then
    echo "$name: $errors non-2xx answers or socket errors" >&2
    p99s="$p99s; **$errors errors (non-2xx or timeouts)**"
    failed=1
  fi
  python3 -c "b=$btotal/$rounds; t=$ttotal/$rounds; print(f'| $name | {t:,.0f} | ${p99s# } | $blabel | {b:,.0f} | {t/b:.2f} |')" \
    | tee -a "$out"
}
run_scenarios() { # the GET scenarios in $SCENARIOS, each against the poem ceiling
  local s name url header baseline
  for s in "${SCENARIOS[@]}"; do
    IFS='|' read -r name url header baseline <<<"$s"
    if [ "$baseline" = check ]; then
      measure "$name" "poem /api/licensing/check" ceiling_check run_wrk "$url" "$header"
    else
      measure "$name" "poem /api/health" ceiling_health run_wrk "$url" "$header"
    fi
  done
}
run_stats() { # base suffix: seeds 10, then 100,000 users, measuring stats at each
  local n
  for n in 10 100000; do
    seed_users "$1" "$n"
    SCENARIOS=("GET /api/admin/stats (Basic, $n users)$2|$1/api/admin/stats|$basic")
    run_scenarios
  done
}
# The write scenario runs on the stats servers once they hold 100,000 users (pgbench -N's
# 100,000 accounts), over ids 100 to 1,099 (seeded users, none the admin).
write_first=100

cport=$(free_port)
ceiling=http://127.0.0.1:$cport
"$ceiling_dir/target/release/poem-ceiling" "127.0.0.1:$cport" >/dev/null 2>&1 &
pids+=($!)
wait_up "$ceiling"

# --- sled (the default store) ---
start_tollgate sled
base=$url
setup_clients "$base"
get_scenarios "$base" ""
run_scenarios
start_tollgate sled-stats GF_SECURITY_PASSWORD_HASH_ITERATIONS=1000
stats_base=$url stats_pid=$last_pid
run_stats "$url" ""
# Durable writes at 64 clients: every answer waits for its group-committed flush.
measure "PUT /api/admin/users/:id/permissions (Basic, $writers clients, 1,000 users, durable)" \
  "poem /api/health" ceiling_health run_writes "$url" "$write_first"

# Issue 21: the same durable writes with the audit log on (each write appends its chained
# event in its own transaction) as a ratio to the same server with `[auditing] enabled =
# false`, both on fresh folders seeded alike. Single 5-second runs of fsync-bound writes
# vary by +-20% on this machine, so this pair alternates over more rounds (AUDIT_ROUNDS,
# default 6, at least the run's rounds).
start_tollgate sled-audit-off GF_SECURITY_PASSWORD_HASH_ITERATIONS=1000 GF_AUDITING_ENABLED=false
audit_off=$url
seed_users "$audit_off" 1200
start_tollgate sled-audit-on GF_SECURITY_PASSWORD_HASH_ITERATIONS=1000
seed_users "$url" 1200
audit_rounds=${AUDIT_ROUNDS:-6}
[ "$audit_rounds" -ge "$rounds" ] || audit_rounds=$rounds
rounds=$audit_rounds measure "PUT /api/admin/users/:id/permissions (Basic, $writers clients, durable), auditing on ($audit_rounds rounds)" \
  "the same, auditing off" "run_writes $audit_off $write_first" run_writes "$url" "$write_first"

# Issue 20, item 6: resident memory and start-up, on sled (the default store).
# - Idle: a fresh server on an empty folder, 3 s after its first /api/health.
# - Under load: the 100,000-user stats server above after one more minute of mixed load
#   (reads of every user in turn, stats, and durable writes, at once), its peak VmRSS
#   sampled every 5 s and the figure at the end.
# - Start-up: that server stopped (SIGTERM) and started again on the same folder; the time
#   from the spawn to the first 200 of /api/health.
mem_out=bench/results/memory.md
stats_url=$stats_base stats_pid=$stats_pid
start_tollgate sled-idle
sleep 3
idle_rss=$(rss_mb "$last_pid")
COUNT=100000 wrk -t1 -c16 -d60s -s bench/read-users.lua -H "$basic" "$stats_url" >/dev/null &
load1=$!
wrk -t1 -c4 -d60s -H "$basic" "$stats_url/api/admin/stats" >/dev/null &
load2=$!
FIRST_ID=$write_first COUNT=1000 wrk -t1 -c8 -d60s -s bench/toggle-admin.lua -H "$basic" "$stats_url" >/dev/null &
load3=$!
peak=0
for _ in $(seq 12); do
  sleep 5
  r=$(rss_mb "$stats_pid")
  peak=$(python3 -c "print(max($peak, $r))")
done
wait "$load1" "$load2" "$load3"
load_rss=$(rss_mb "$stats_pid")
kill -TERM "$stats_pid"
while kill -0 "$stats_pid" 2>/dev/null; do sleep 0.05; done
stats_port=${stats_url##*:}
t0=$(now_ms)
env GF_PATHS_DATA="$work/sled-stats-data" GF_SERVER_HTTP_ADDR=127.0.0.1 GF_SERVER_HTTP_PORT="$stats_port" \
  GF_SECURITY_ADMIN_PASSWORD="$pw" GF_LOG_LEVEL=warn GF_SECURITY_PASSWORD_HASH_ITERATIONS=1000 \
  "$bin" server >"$work/sled-stats-restart.log" 2>&1 &
pids+=($!)
until curl -fsS "$stats_url/api/health" >/dev/null 2>&1; do sleep 0.005; done
startup_ms=$(( $(now_ms) - t0 ))
restart_rss=$(rss_mb "$!")
{
  echo "| figure | value | goal (issue 20) |"
  echo "|---|---:|---:|"
  echo "| idle RSS, empty data folder | $idle_rss MB | 30 MB |"
  echo "| RSS with 100,000 users after a minute of mixed load (peak, sampled every 5 s) | $peak MB | 100 MB |"
  echo "| RSS with 100,000 users at the end of that minute | $load_rss MB | 100 MB |"
  echo "| start-up to the first 200 of /api/health, 100,000 users | $startup_ms ms | 200 ms |"
  echo "| RSS right after that start-up | $restart_rss MB | |"
} | tee "$mem_out"

# --- PostgreSQL: the same scenarios on a second pair of servers ---
start_postgres
start_tollgate pg GF_DATABASE_TYPE=postgres GF_DATABASE_URL="$(pg_url tollgate)"
pgbase=$url
setup_clients "$pgbase"
get_scenarios "$pgbase" " (PostgreSQL)"
run_scenarios
start_tollgate pg-stats GF_SECURITY_PASSWORD_HASH_ITERATIONS=1000 \
  GF_DATABASE_TYPE=postgres GF_DATABASE_URL="$(pg_url tollgate_stats)"
run_stats "$url" " (PostgreSQL)"
# Durable writes at 64 clients: every answer waits for its COMMIT (synchronous_commit on).
measure "PUT /api/admin/users/:id/permissions (Basic, $writers clients, 1,000 users, durable) (PostgreSQL)" \
  "pgbench -N, $writers clients (tps)" pgbench_tps run_writes "$url" "$write_first"

echo "wrote $out and $mem_out (wrk -t1 -c$conns -d${secs}s, $rounds rounds, alternating with the baseline)"
[ "$failed" = 0 ] || { echo "some scenarios had errors: see the marked rows" >&2; exit 1; }
