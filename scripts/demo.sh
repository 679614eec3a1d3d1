#!/usr/bin/env bash
# Sets Parvis up and imports the bundled sample community (French Language Meta
# Stack Exchange, CC BY-SA) into the embedded default store, then shows it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/parvis demo
