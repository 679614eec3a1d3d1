#!/usr/bin/env bash
# Sets Parvis up and imports the bundled sample community (French Language Meta
# Stack Exchange, CC BY-SA) into the embedded default store, shows it, and opens
# the web cockpit on it at http://127.0.0.1:8000/ (Ctrl+C stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/parvis demo --serve "$@"
