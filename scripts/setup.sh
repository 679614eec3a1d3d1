#!/usr/bin/env bash
# Installs what Parvis needs on a fresh Debian machine with Python 3.11+:
# a virtual environment in .venv with Parvis and, with --dev, the test tools
# and the PostgreSQL server binaries the test suite starts a throwaway cluster from.
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
[[ "${1:-}" == "--dev" ]] && dev=1

python=${PYTHON:-python3}
"$python" - <<'PY'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"Parvis needs Python 3.11 or newer; {sys.executable} is {sys.version.split()[0]}")
PY

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

if ! "$python" -c 'import venv, ensurepip' 2>/dev/null; then
    as_root apt-get update -qq
    as_root apt-get install -y -qq python3-venv
fi

if [[ $dev -eq 1 ]] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql
fi

# Headless Chromium for the web cockpit's browser tests (Playwright drives the Debian build).
if [[ $dev -eq 1 ]] && ! command -v chromium >/dev/null 2>&1; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
fi

[[ -x .venv/bin/python ]] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if [[ $dev -eq 1 ]]; then
    .venv/bin/python -m pip install -q -e '.[dev]'
else
    .venv/bin/python -m pip install -q .
fi
