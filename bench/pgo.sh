#!/usr/bin/env bash
# The release binary built with profile-guided optimisation (PGO): an instrumented build
# serves a training workload (the hot reads the benchmark measures, sign-ins, user
# creation, listings), LLVM merges the counts, and the final build lays out and inlines
# the code by them. Same source, same crates, same behaviour; on this machine it takes
# about 10% off the server's CPU per authenticated read (bench/README.md, session 18).
# Output: target/release-pgo/tollgate. Takes two release builds (about 15 minutes here).
#
# Needs llvm-profdata of the same LLVM major version as rustc (`rustc -vV`): Debian's
# `llvm-N` package; installed with apt-get when running as root, else the line to run is
# printed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

host=$(rustc -vV | awk '/^host:/ {print $2}')
llvm=$(rustc -vV | awk '/^LLVM version:/ {split($3, v, "."); print v[1]}')
profdata=/usr/lib/llvm-$llvm/bin/llvm-profdata
if [ ! -x "$profdata" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    # A fresh machine's package lists may predate the package: refresh them and retry.
    install() { DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "llvm-$llvm" >/dev/null; }
    install || { apt-get update >/dev/null && install; }
  else
    echo "llvm-profdata for LLVM $llvm is needed: sudo apt-get install llvm-$llvm" >&2
    exit 1
  fi
fi

work=$(mktemp -d /tmp/tollgate-pgo-XXXXXX)
pid=""
cleanup() {
  [ -z "$pid" ] || kill "$pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# An explicit --target keeps the flags off build scripts and proc macros: only the crates
# linked into the binary are instrumented, then optimised.
build() { # target-dir rustflags
  RUSTFLAGS="$2" cargo build --release --quiet --target "$host" --target-dir "$1"
}

echo "pgo: instrumented build" >&2
build target/pgo-instrumented "-Cprofile-generate=$work/raw"

echo "pgo: training run" >&2
pw=pgo-admin-pw
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
u=http://127.0.0.1:$port
# Fewer PBKDF2 iterations: the hash is not on the hot path, and the training is short.
env GF_PATHS_DATA="$work/data" GF_SERVER_HTTP_ADDR=127.0.0.1 GF_SERVER_HTTP_PORT="$port" \
  GF_SECURITY_ADMIN_PASSWORD="$pw" GF_LOG_LEVEL=warn GF_SECURITY_PASSWORD_HASH_ITERATIONS=1000 \
  "target/pgo-instrumented/$host/release/tollgate" server >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 300); do curl -fsS "$u/api/health" >/dev/null 2>&1 && break; sleep 0.1; done
basic="Authorization: Basic $(printf 'admin:%s' "$pw" | base64)"
post() { curl -fsS -H "$basic" -H 'content-type: application/json' -d "$2" "$u$1"; } # path body
field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
key=$(post /api/auth/keys '{"name":"pgo","role":"Viewer"}' | field key)
session=$(curl -fsS -D - -o /dev/null -H 'content-type: application/json' \
  -d "{\"user\":\"admin\",\"password\":\"$pw\"}" "$u/login" \
  | sed -n 's/^[Ss]et-[Cc]ookie: grafana_session=\([^;]*\).*/\1/p')
sa=$(post /api/serviceaccounts '{"name":"pgo"}' | field id)
satoken=$(post "/api/serviceaccounts/$sa/tokens" '{"name":"pgo"}' | field key)
drive() { wrk -t1 -c16 -d2s "$@" >/dev/null; } # [wrk args] url
PREFIX=pgo COUNT=2000 drive -s bench/seed-users.lua -H "$basic" "$u"
drive "$u/api/health"
drive -H "$basic" "$u/api/users/1"
drive -H "Authorization: Bearer $key" "$u/api/user"
drive -H "Cookie: grafana_session=$session" "$u/api/user"
drive -H "$basic" "$u/api/admin/settings"
drive -H "Authorization: Bearer $satoken" "$u/api/admin/settings"
drive -H "$basic" "$u/api/admin/stats"
drive -H "Authorization: Bearer $key" "$u/api/licensing/check"
drive -H "$basic" "$u/api/users/search?perpage=50"
drive -H "$basic" "$u/api/org/users"
# The counts are written when the server exits (SIGTERM: a graceful shutdown).
kill "$pid"
wait "$pid" || true
pid=""

ls "$work"/raw/*.profraw >/dev/null 2>&1 || {
  echo "pgo: the training server wrote no profile (its log: $work/server.log)" >&2
  cat "$work/server.log" >&2
  exit 1
}

echo "pgo: optimised build" >&2
"$profdata" merge -o "$work/merged.profdata" "$work/raw"
build target/pgo-optimised "-Cprofile-use=$work/merged.profdata"
mkdir -p target/release-pgo
cp "target/pgo-optimised/$host/release/tollgate" target/release-pgo/tollgate
echo "pgo: target/release-pgo/tollgate" >&2
