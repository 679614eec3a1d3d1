#!/usr/bin/env bash
# Runs every benchmark and writes its figures into docs/benchmarks.md (machine and date included).
# The synthetic 10M-activity store (about 6 GB, 10+ minutes to write) is made once under .bench/.
# Usage: bash scripts/benchmarks.sh [ACTIVITIES]   (default 10000000)
set -euo pipefail
cd "$(dirname "$0")/.."
activities=${1:-10000000}
store=".bench/syn-$((activities / 1000000))m.db"
bash scripts/setup.sh --dev
mkdir -p .bench
.venv/bin/python benchmarks/ingest.py
.venv/bin/python benchmarks/enrich.py
[[ -f "$store" ]] || .venv/bin/python benchmarks/synthetic.py --activities "$activities" --db "$store"
.venv/bin/python benchmarks/metrics.py --db "$store"
.venv/bin/python benchmarks/web.py --db "$store"
.venv/bin/python benchmarks/live.py
