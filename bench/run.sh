#!/usr/bin/env bash
# HTTP benchmarks: wrk against the release binary next to a bare poem server (the
# framework ceiling, ../shared/tools/poem-ceiling) measured in the same run. Each scenario
# alternates ceiling and tollgate runs; the figure reported is the ratio of the means.
# Usage: bench/run.sh [seconds-per-run] [rounds]. Writes bench/results/latest.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
secs=${1:-5}
rounds=${2:-2}
conns=${BENCH_CONNECTIONS:-32}
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }

cargo build --release --quiet
ceiling_src="$root/../shared/tools/poem-ceiling"
ceiling_dir="$root/target/poem-ceiling"
if [ -d "$ceiling_src" ]; then
  mkdir -p "$ceiling_dir" && cp -r "$ceiling_src"/. "$ceiling_dir"/
fi
(cd "$ceiling_dir" && cargo build --release --quiet)

work=$(mktemp -d /tmp/tollgate-bench-XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base=http://127.0.0.1:$port
ceiling=http://127.0.0.1:$cport
pw=bench-admin-pw
# The default (strong) password hashing: the point is that PBKDF2 is not on the hot path.
GF_PATHS_DATA="$work/data" GF_SERVER_HTTP_ADDR=127.0.0.1 GF_SERVER_HTTP_PORT=$port \
  GF_SECURITY_ADMIN_PASSWORD=$pw GF_LOG_LEVEL=warn ./target/release/tollgate server >"$work/server.log" 2>&1 &
tg=$!
"$ceiling_dir/target/release/poem-ceiling" "127.0.0.1:$cport" >/dev/null 2>&1 &
cp=$!
trap 'kill $tg $cp ${st:-} 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do curl -fsS "$base/api/health" >/dev/null 2>&1 && curl -fsS "$ceiling/api/health" >/dev/null 2>&1 && break; sleep 0.1; done

basic="Authorization: Basic $(printf 'admin:%s' "$pw" | base64)"
# Warm the credential cache (one PBKDF2 at 600,000 iterations).
curl -fsS -H "$basic" "$base/api/users/1" >/dev/null

key=$(curl -fsS -H "$basic" -H 'content-type: application/json' -d '{"name":"bench","role":"Viewer"}' \
  "$base/api/auth/keys" | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
session=$(curl -fsS -D - -o /dev/null -H 'content-type: application/json' \
  -d "{\"user\":\"admin\",\"password\":\"$pw\"}" "$base/login" \
  | sed -n 's/^[Ss]et-[Cc]ookie: grafana_session=\([^;]*\).*/\1/p')

# A service account whose token holds one property-level settings scope.
json() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
post() { curl -fsS -H "$basic" -H 'content-type: application/json' -d "$2" "$base$1"; }
sa=$(post /api/serviceaccounts '{"name":"bench-saml"}' | json id)
post /api/access-control/roles '{"uid":"bench-saml","name":"custom:bench:saml","global":true,"permissions":[{"action":"settings:read","scope":"settings:auth.saml:enabled"}]}' >/dev/null
post "/api/access-control/users/$sa/roles" '{"roleUid":"bench-saml"}' >/dev/null
satoken=$(post "/api/serviceaccounts/$sa/tokens" '{"name":"bench"}' | json key)

SCENARIOS=(
  "GET /api/health|$base/api/health|"
  "GET /api/users/1 (Basic)|$base/api/users/1|$basic"
  "GET /api/user (API key)|$base/api/user|Authorization: Bearer $key"
  "GET /api/user (session cookie)|$base/api/user|Cookie: grafana_session=$session"
  "GET /api/admin/settings (Basic, Grafana Admin)|$base/api/admin/settings|$basic"
  "GET /api/admin/settings (service-account token, one property scope)|$base/api/admin/settings|Authorization: Bearer $satoken"
)

# The stats scenarios run on a second server whose users are seeded over HTTP. It hashes
# passwords with 1,000 PBKDF2 iterations so that 100,000 creates take seconds, not hours;
# the stats request itself never hashes anything (the admin's credential is cached).
sport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sbase=http://127.0.0.1:$sport
GF_PATHS_DATA="$work/stats-data" GF_SERVER_HTTP_ADDR=127.0.0.1 GF_SERVER_HTTP_PORT=$sport \
  GF_SECURITY_ADMIN_PASSWORD=$pw GF_SECURITY_PASSWORD_HASH_ITERATIONS=1000 GF_LOG_LEVEL=warn \
  ./target/release/tollgate server >"$work/stats-server.log" 2>&1 &
st=$!
for _ in $(seq 100); do curl -fsS "$sbase/api/health" >/dev/null 2>&1 && break; sleep 0.1; done
stats_users() {
  curl -fsS -H "$basic" "$sbase/api/admin/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["users"])'
}
seed_users() { # target user count (the admin included)
  local target=$1 have run=0
  have=$(stats_users)
  while [ "$have" -lt "$target" ]; do
    run=$((run + 1))
    # About 2,000 creates a second on this machine; the loop tops up any shortfall.
    PREFIX="bulk$target-$run" COUNT=$((target - have)) wrk -t1 -c"$conns" \
      -d"$(( (target - have) / 2000 + 1 ))s" -s bench/seed-users.lua -H "$basic" "$sbase" >/dev/null
    have=$(stats_users)
  done
  echo "stats server: $have users" >&2
}

run_wrk() { # url header -> "reqs p99ms"
  local url=$1 header=$2 out
  if [ -n "$header" ]; then
    out=$(wrk -t1 -c"$conns" -d"${secs}s" --latency -H "$header" "$url")
  else
    out=$(wrk -t1 -c"$conns" -d"${secs}s" --latency "$url")
  fi
  local rps p99 non2xx
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  non2xx=$(echo "$out" | awk '/Non-2xx/ {print $5}')
  [ -z "$non2xx" ] || { echo "non-2xx responses for $url: $non2xx" >&2; exit 1; }
  echo "$rps $p99"
}

mkdir -p bench/results
out=bench/results/latest.md
{
  echo "| scenario | tollgate req/s | p99 | ceiling req/s | ratio |"
  echo "|---|---:|---:|---:|---:|"
} > "$out"
run_scenarios() {
for s in "${SCENARIOS[@]}"; do
  IFS='|' read -r name url header <<<"$s"
  ceil_total=0; tg_total=0; p99=""
  for _ in $(seq "$rounds"); do
    read -r c _ <<<"$(run_wrk "$ceiling/api/health" "")"
    read -r t p <<<"$(run_wrk "$url" "$header")"
    ceil_total=$(python3 -c "print($ceil_total + $c)")
    tg_total=$(python3 -c "print($tg_total + $t)")
    p99="$p99 $p"
  done
  line=$(python3 -c "c=$ceil_total/$rounds; t=$tg_total/$rounds; print(f'| $name | {t:,.0f} | ${p99# } | {c:,.0f} | {t/c:.2f} |')")
  echo "$line" | tee -a "$out"
done
}
run_scenarios

# Durable writes at 64 clients: every answer waits for its group-committed flush.
wid=$(post /api/admin/users '{"login":"bench-writes","password":"bench-writes-pw"}' | json id)
wceil=0; wtotal=0; wp99=""
for _ in $(seq "$rounds"); do
  read -r c _ <<<"$(run_wrk "$ceiling/api/health" "")"
  wout=$(USER_ID=$wid wrk -t1 -c64 -d"${secs}s" --latency -s bench/toggle-admin.lua -H "$basic" "$base")
  non2xx=$(echo "$wout" | awk '/Non-2xx/ {print $5}')
  [ -z "$non2xx" ] || { echo "non-2xx responses for the write scenario: $non2xx" >&2; exit 1; }
  w=$(echo "$wout" | awk '/Requests\/sec/ {print $2}')
  wp99="$wp99 $(echo "$wout" | awk '$1=="99%" {print $2}')"
  wceil=$(python3 -c "print($wceil + $c)")
  wtotal=$(python3 -c "print($wtotal + $w)")
done
python3 -c "c=$wceil/$rounds; t=$wtotal/$rounds; print(f'| PUT /api/admin/users/:id/permissions (Basic, 64 clients, durable) | {t:,.0f} | ${wp99# } | {c:,.0f} | {t/c:.2f} |')" | tee -a "$out"

for n in 10 100000; do
  seed_users "$n"
  SCENARIOS=("GET /api/admin/stats (Basic, $n users)|$sbase/api/admin/stats|$basic")
  run_scenarios
done
echo "wrote $out (wrk -t1 -c$conns -d${secs}s, $rounds rounds, alternating with the ceiling)"
