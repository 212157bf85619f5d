#!/usr/bin/env bash
# Real clients against the real release binary: grafana-client, grafana-api-sdk, Ansible's
# community.grafana, clients generated from openapi/tollgate.json (openapi-python-client and
# openapi-generator), and schemathesis over every operation (venvs: setup.sh).
# Each test gets a server of its own on an empty data folder (only the admin and the main
# org), so it can expect exact counts. `run.sh [test...]` runs only the named tests
# (gc browser jwt sdk ansible gen ogen st).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
py=${PYTHON:-python3}
venvs=target/py
# The binary under test: the release build unless TOLLGATE_BIN names another one.
bin=${TOLLGATE_BIN:-target/release/tollgate}
case $bin in /*) ;; *) bin="$root/$bin" ;; esac

"$root/tests/python/setup.sh"

work=$(mktemp -d /tmp/tollgate-py-XXXXXX)
free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
# Where grafana-api-sdk's test starts a license issuer for the renewal call.
export TOLLGATE_LICENSE_ISSUER_PORT=$(free_port)
export TOLLGATE_HOST=127.0.0.1 TOLLGATE_PORT=$port TOLLGATE_URL=http://127.0.0.1:$port
export TOLLGATE_ADMIN_PASSWORD=python-admin-pw
# A license issuer key for the PyJWT interoperability test.
export TOLLGATE_BIN="$bin" TOLLGATE_ISSUER_KEY="$work/issuer.key"
issuer_keys=$("$bin" license keygen --out "$TOLLGATE_ISSUER_KEY" | sed -n 's/^license_issuer_keys = //p')
export TOLLGATE_ISSUER_KID=${issuer_keys%%:*}
# Brute-force protection off: schemathesis' auth checks send wrong credentials from the
# admin's own address, and after 50 failures the address would be blocked for the admin too
# (every later case a 401 that tests nothing). It is tested in tests/api/brute_force.rs.
server=
serve() { # a fresh server on a new, empty data folder
  local data
  data=$(mktemp -d "$work/data-XXXXXX")
  GF_PATHS_DATA="$data" GF_SERVER_HTTP_ADDR=127.0.0.1 GF_SERVER_HTTP_PORT=$port \
    GF_SERVER_ROOT_URL="$TOLLGATE_URL/" GF_ENTERPRISE_LICENSE_ISSUER_KEYS="$issuer_keys" \
    GF_ENTERPRISE_LICENSE_URL="http://127.0.0.1:$TOLLGATE_LICENSE_ISSUER_PORT/api/licenses/renew" \
    GF_SECURITY_ADMIN_PASSWORD=$TOLLGATE_ADMIN_PASSWORD GF_SECURITY_PASSWORD_HASH_ITERATIONS=1000 \
    GF_SECURITY_DISABLE_BRUTE_FORCE_LOGIN_PROTECTION=true \
    "$bin" server >"$data.log" 2>&1 &
  server=$!
  for _ in $(seq 100); do
    curl -fsS "$TOLLGATE_URL/api/health" >/dev/null 2>&1 && return
    sleep 0.1
  done
  curl -fsS "$TOLLGATE_URL/api/health" >/dev/null
}
stop() {
  [ -n "$server" ] || return 0
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  server=
}
cleanup() { stop; rm -rf "$work"; }
trap cleanup EXIT
tests=("$@")
# run NAME TITLE COMMAND...: the test on a fresh server, unless other tests were named.
run() {
  local name=$1 title=$2; shift 2
  [ ${#tests[@]} -eq 0 ] || [[ " ${tests[*]} " == *" $name "* ]] || return 0
  echo "== $title"
  serve
  "$@"
  stop
}

generated_client() {
  "$venvs/gen/bin/openapi-python-client" generate --path openapi/tollgate.json \
    --output-path "$work/pkgs/tollgate_client" --meta none >/dev/null
  PYTHONPATH="$work/pkgs" "$venvs/gen/bin/python" tests/python/test_generated_client.py
}

openapi_generator_client() {
  "$venvs/ogen/bin/openapi-generator-cli" generate -i openapi/tollgate.json -g python \
    -o "$work/ogen" --package-name tollgate_ogen >/dev/null
  # Installed into its venv (its dependencies are there already: setup.sh).
  "$venvs/ogen/bin/pip" install -q --disable-pip-version-check --no-deps --no-index \
    --no-build-isolation --force-reinstall "$work/ogen"
  "$venvs/ogen/bin/python" tests/python/test_openapi_generator_client.py
}

schemathesis() {
  # Some users to act on, so per-user operations reach their logic and not only 404.
  for i in 1 2 3 4 5 6; do
    curl -fsS -u "admin:$TOLLGATE_ADMIN_PASSWORD" -H 'content-type: application/json' \
      -d "{\"login\":\"fuzz$i\",\"password\":\"fuzzpass$i\"}" "$TOLLGATE_URL/api/admin/users" >/dev/null
  done
  TOLLGATE_ADMIN_UID=$(curl -fsS -u "admin:$TOLLGATE_ADMIN_PASSWORD" "$TOLLGATE_URL/api/user" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["uid"])')
  export TOLLGATE_ADMIN_UID
  # Every check; the few widened ones, per operation and with the reason, are in
  # tests/python/schemathesis.toml.
  PYTHONPATH=tests/python SCHEMATHESIS_HOOKS=st_hooks "$venvs/st/bin/schemathesis" \
    --config-file tests/python/schemathesis.toml run openapi/tollgate.json \
    --url "$TOLLGATE_URL" -a "admin:$TOLLGATE_ADMIN_PASSWORD" \
    --max-time "${SCHEMATHESIS_SECONDS:-90}" --seed 1 \
    --checks all \
    --report junit --report-dir "$work/st-report"
}

run gc "grafana-client" "$venvs/gc/bin/python" tests/python/test_grafana_client.py
run browser "browser-style flow (requests)" "$venvs/st/bin/python" tests/python/test_browser_flow.py
run jwt "license tokens and PyJWT" "$venvs/jwt/bin/python" tests/python/test_license_pyjwt.py
run sdk "grafana-api-sdk" "$venvs/sdk/bin/python" tests/python/test_grafana_api_sdk.py
run ansible "ansible community.grafana" "$venvs/ansible/bin/python" tests/python/test_ansible_grafana.py
run gen "openapi-python-client" generated_client
run ogen "openapi-generator (python)" openapi_generator_client
run st "schemathesis" schemathesis
echo "python compatibility tests: ok"
