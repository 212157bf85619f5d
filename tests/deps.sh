#!/usr/bin/env bash
# Installs what `make test` needs and is not there yet; `make test` runs it first, so a fresh
# Debian machine with only the Rust toolchain and Python needs nothing else. `make run` needs
# none of this.
#
#   system tools  the Debian packages below, through apt-get when running as root; otherwise
#                 it stops and prints the exact command to run
#   Python venvs  under target/py (tests/python/setup.sh): the real Python clients
#   Node packages tests/ui/node_modules (npm ci): playwright-core, which drives chromium
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

missing=()
need() { # package, then the check that says it is there
  local pkg=$1; shift
  "$@" >/dev/null 2>&1 || missing+=("$pkg")
}
have() { command -v "$1"; }
# Each line: why the tests need it.
need curl have curl                              # the scripts wait for the server with curl
need slapd test -x /usr/sbin/slapd               # tests/api/slapd.rs starts a real directory
need ldap-utils have ldapadd                     # ... and loads it with ldapadd/ldapmodify
need postgresql compgen -G '/usr/lib/postgresql/*/bin/initdb' # the PostgreSQL backend's tests
need chromium test -x "${CHROMIUM:-/usr/bin/chromium}"          # tests/ui: the admin UI
need nodejs have node                            # tests/ui runs on Node
need npm have npm                                # ... with playwright-core from npm
need default-jre-headless have java              # openapi-generator's jar (tests/python)
need python3-venv python3 -c 'import venv, ensurepip' # the Python clients' venvs

if ((${#missing[@]})); then
  cmd="apt-get install -y --no-install-recommends ${missing[*]}"
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "tests/deps.sh: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "tests/deps.sh: the tests need Debian packages that are not installed. Run:" >&2
    echo "    sudo apt-get update && sudo $cmd" >&2
    echo "then run make test again." >&2
    exit 1
  fi
fi

./tests/python/setup.sh
if [[ ! -d tests/ui/node_modules/playwright-core ]]; then
  (cd tests/ui && npm ci --silent --no-audit --no-fund)
fi
