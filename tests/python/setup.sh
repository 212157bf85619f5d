#!/usr/bin/env bash
# Creates the Python venvs the compatibility tests use, under target/py. Separate venvs:
# grafana-client's urllib3-future replaces urllib3 and breaks schemathesis' requests.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venvs="$root/target/py"
py=${PYTHON:-python3}
ensure_venv() { # name packages...
  local name=$1; shift
  if [ ! -f "$venvs/$name/.ready" ]; then
    mkdir -p "$venvs"
    rm -rf "${venvs:?}/$name"
    "$py" -m venv "$venvs/$name"
    "$venvs/$name/bin/pip" install -q --disable-pip-version-check "$@"
    touch "$venvs/$name/.ready"
  fi
}
ensure_venv gc "grafana-client>=5,<6"
ensure_venv st "schemathesis>=4.30,<5"
ensure_venv gen "openapi-python-client>=0.26"
ensure_venv jwt "pyjwt[crypto]>=2.8,<3" "requests>=2.31"
# openapi-generator (its jar runs on the system java) and what its python client imports.
ensure_venv ogen "openapi-generator-cli>=7.14,<8" "pydantic>=2" "python-dateutil>=2.8" "urllib3>=1.25.3,<3" "typing-extensions>=4.7.1"
