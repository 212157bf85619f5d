#!/usr/bin/env bash
# End-to-end test of the embedded admin UI. Run from the repo root after `cargo build --release`
# (TOLLGATE_BIN=path/to/tollgate runs another build). Screenshots of every page at 1280 px and
# 390 px go to target/ui-screenshots/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
BIN="${TOLLGATE_BIN:-$ROOT/target/release/tollgate}"
[[ -x "$BIN" ]] || { echo "missing $BIN: run 'cargo build --release' first" >&2; exit 2; }
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
[[ -x "$CHROMIUM" ]] || { echo "missing chromium at $CHROMIUM" >&2; exit 2; }

if [[ ! -d tests/ui/node_modules/playwright-core ]]; then
  (cd tests/ui && npm ci --silent --no-audit --no-fund)
fi

PORT="${UI_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')}"
DATA="$(mktemp -d)"
ADMIN_PW="ui-e2e-$RANDOM$RANDOM"
URL="http://127.0.0.1:$PORT"
LOG="$DATA/server.log"
SERVER_PID=""

cleanup() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$DATA"
}
trap cleanup EXIT INT TERM

# A real provisioning folder: a datasource the test edits and reloads, and two dashboards
# whose panels carry legacy alerts (so pause-all has something to pause).
PROV="$DATA/provisioning"
mkdir -p "$PROV/datasources" "$PROV/dashboards"
cp -r tests/fixtures/provisioning/dashboards-json "$PROV/"
cp tests/fixtures/provisioning/dashboards/dashboards.yaml "$PROV/dashboards/"
cat >"$PROV/datasources/ui.yaml" <<'YAML'
apiVersion: 1
datasources:
  - name: UI Prometheus
    type: prometheus
    uid: ui-prometheus
    access: proxy
    orgId: 1
    url: http://prometheus:9090
YAML

# A license issuer key and a valid token for this instance (the UI uploads it).
ISSUER_KEYS="$("$BIN" license keygen --out "$DATA/issuer.key" | sed -n 's/^license_issuer_keys = //p')"
LICENSE_TOKEN="$("$BIN" license issue --key "$DATA/issuer.key" --sub "$URL/" --company "UI Test" \
  --license-days 365 --token-days 30 --included-users 10 --lid ui-e2e)"

GF_PATHS_DATA="$DATA" GF_SERVER_HTTP_ADDR=127.0.0.1 GF_SERVER_HTTP_PORT="$PORT" \
GF_SERVER_ROOT_URL="$URL/" GF_SECURITY_ADMIN_PASSWORD="$ADMIN_PW" \
GF_ENTERPRISE_LICENSE_ISSUER_KEYS="$ISSUER_KEYS" \
GF_SECURITY_PASSWORD_HASH_ITERATIONS=1000 GF_PATHS_PROVISIONING="$PROV" \
  "$BIN" server >"$LOG" 2>&1 &
SERVER_PID=$!

for _ in $(seq 1 100); do
  if curl -fsS "$URL/api/health" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then echo "server exited early:" >&2; cat "$LOG" >&2; exit 1; fi
  sleep 0.1
done
curl -fsS "$URL/api/health" >/dev/null || { echo "server not healthy at $URL" >&2; cat "$LOG" >&2; exit 1; }

echo "tollgate at $URL (data $DATA)"
status=0
TOLLGATE_URL="$URL" TOLLGATE_ROOT_URL="$URL/" TOLLGATE_ADMIN_PASSWORD="$ADMIN_PW" CHROMIUM="$CHROMIUM" \
TOLLGATE_LICENSE_TOKEN="$LICENSE_TOKEN" TOLLGATE_PROVISIONING="$PROV" \
UI_SCREENSHOTS="${UI_SCREENSHOTS:-$ROOT/target/ui-screenshots}" \
  node tests/ui/e2e.mjs || status=$?
if [[ $status -ne 0 ]]; then
  echo "--- server log (tail) ---" >&2
  tail -n 40 "$LOG" >&2 || true
fi
echo "screenshots: $ROOT/target/ui-screenshots/"
exit $status
