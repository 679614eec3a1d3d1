#!/usr/bin/env bash
# Sets everything up (Python packages, PostgreSQL server binaries) and runs the
# whole test suite, with the linters and the type checker, on SQLite and PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
export CI="${CI:-}"
.venv/bin/ruff check parvis tests benchmarks
.venv/bin/mypy --strict parvis
.venv/bin/pytest -q -p no:cacheprovider "$@"
