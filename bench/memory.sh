#!/usr/bin/env bash
# Issue 20, item 6, alone: resident memory with 100,000 users under a minute of mixed load,
# the same load as bench/run.sh's memory block without the rest of `make bench`.
# Usage: bench/memory.sh DATA-FOLDER (seeded to 100,000 users over HTTP if it holds fewer;
# reuse a folder to skip the seeding). Needs wrk and the release build.
set -euo pipefail
cd "$(dirname "$0")/.."
data=$1
port=${PORT:-3999}
pw=bench-admin-pw
basic="Authorization: Basic $(printf 'admin:%s' "$pw" | base64)"
u=http://127.0.0.1:$port
env GF_PATHS_DATA="$data" GF_SERVER_HTTP_ADDR=127.0.0.1 GF_SERVER_HTTP_PORT="$port" \
  GF_SECURITY_ADMIN_PASSWORD="$pw" GF_LOG_LEVEL=warn GF_SECURITY_PASSWORD_HASH_ITERATIONS=1000 \
  ./target/release/tollgate server >"$data.log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true' EXIT
until curl -fsS "$u/api/health" >/dev/null 2>&1; do sleep 0.05; done
rss() { awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$pid/status"; }
users() { curl -fsS -H "$basic" "$u/api/admin/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["users"])'; }
echo "RSS right after start: $(rss) MB"
have=$(users) run=0
while [ "$have" -lt 100000 ]; do
  run=$((run + 1))
  PREFIX="bulk-$run" COUNT=$((100000 - have)) wrk -t1 -c32 -d"$(( (100000 - have) / 2000 + 1 ))s" \
    -s bench/seed-users.lua -H "$basic" "$u" >/dev/null
  have=$(users)
done
echo "$have users, RSS $(rss) MB"
COUNT=100000 wrk -t1 -c16 -d60s -s bench/read-users.lua -H "$basic" "$u" >/dev/null &
l1=$!
wrk -t1 -c4 -d60s -H "$basic" "$u/api/admin/stats" >/dev/null &
l2=$!
FIRST_ID=100 COUNT=1000 wrk -t1 -c8 -d60s -s bench/toggle-admin.lua -H "$basic" "$u" >/dev/null &
l3=$!
peak=0
for i in $(seq 12); do
  sleep 5
  r=$(rss)
  echo "t=$((i * 5))s RSS $r MB"
  peak=$(python3 -c "print(max($peak, $r))")
done
wait "$l1" "$l2" "$l3"
echo "peak $peak MB, at the end $(rss) MB"
