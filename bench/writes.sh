#!/usr/bin/env bash
# Issue 20, item 7's durable-write figure alone: PUT /api/admin/users/:id/permissions at 64
# clients (bench/toggle-admin.lua, as in bench/run.sh) against the poem ceiling's
# GET /api/health, alternated in the same run. Each binary named runs on a fresh data folder
# holding 1,200 users (the audit log on, as by default), so that two builds can be compared
# in the same minutes.
# Usage: bench/writes.sh [SECONDS] [ROUNDS] [BINARY...] (default: 5 3 target/release/tollgate).
# Needs wrk, the release build and the ceiling built as bench/run.sh builds it.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5} rounds=${2:-3}
shift 2 || true
bins=("$@")
[ ${#bins[@]} -gt 0 ] || bins=(target/release/tollgate)
ceiling_bin=target/poem-ceiling/target/release/poem-ceiling
pw=bench-admin-pw
basic="Authorization: Basic $(printf 'admin:%s' "$pw" | base64)"
work=$(mktemp -d)
pids=()
trap 'kill -TERM "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null; rm -rf "$work"' EXIT
"$ceiling_bin" 127.0.0.1:3998 >/dev/null 2>&1 &
pids+=($!)
urls=()
for i in "${!bins[@]}"; do
  port=$((4100 + i))
  env GF_PATHS_DATA="$work/data$i" GF_SERVER_HTTP_ADDR=127.0.0.1 GF_SERVER_HTTP_PORT="$port" \
    GF_SECURITY_ADMIN_PASSWORD="$pw" GF_LOG_LEVEL=warn GF_SECURITY_PASSWORD_HASH_ITERATIONS=1000 \
    "${bins[$i]}" server >"$work/server$i.log" 2>&1 &
  pids+=($!)
  urls+=("http://127.0.0.1:$port")
done
for u in http://127.0.0.1:3998 "${urls[@]}"; do
  until curl -fsS "$u/api/health" >/dev/null 2>&1; do sleep 0.05; done
done
for u in "${urls[@]}"; do
  PREFIX=seed COUNT=1200 wrk -t1 -c32 -d3s -s bench/seed-users.lua -H "$basic" "$u" >/dev/null
done
rps() { echo "$1" | awk '/Requests\/sec/ {print $2}'; }
errors() { echo "$1" | awk '/Non-2xx/ {e+=$5} /Socket errors/ {e+=1} END {print e+0}'; }
for r in $(seq "$rounds"); do
  c=$(rps "$(wrk -t1 -c32 -d"${secs}s" http://127.0.0.1:3998/api/health)")
  line="round $r: ceiling $c req/s"
  for i in "${!urls[@]}"; do
    out=$(FIRST_ID=100 COUNT=1000 wrk -t1 -c64 -d"${secs}s" --latency -s bench/toggle-admin.lua \
      -H "$basic" "${urls[$i]}")
    w=$(rps "$out")
    line+="; ${bins[$i]} $w writes/s ($(python3 -c "print(round($w / $c, 3))") of the ceiling, p99 $(echo "$out" | awk '$1=="99%" {print $2}'), errors $(errors "$out"))"
  done
  echo "$line"
done
