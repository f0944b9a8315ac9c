#!/usr/bin/env bash
# Every plan figure of docs/performance.md in one run on a quiet many-core machine without
# package access (see device_plan.sh for the packed dependencies): 10M events x 50 rules on
# all cores (2 runs each) and where its peak memory is, 100k events on all cores and on 2
# (medians of 5: start-up included), and 2M events on 2 cores (3 runs each), ours against
# the Polars script, same plans checked. Figures go to $OUT (one folder per table). About
# 3 minutes.
#
#   bash benchmarks/device_figures.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
OUT=${OUT:-/tmp/bench-figures}
mkdir -p "$OUT"
started=$(date +%s)
# unpack the dependencies and print the machine (the benchmark itself is left out)
ROWS=0 BUDGET_S=0 OUT="$OUT/machine" PYTHON="$PYTHON" SETUP_ONLY=1 bash benchmarks/device_plan.sh
if [ -f .bench-pack/site.tar.xz ] && [ -z "${NO_PACK:-}" ]; then export PYTHONPATH="/tmp/site:$PWD"; else export PYTHONPATH="$PWD"; fi
bench() {  # NAME ARGS...
  local name=$1; shift
  echo "== $name ($(( $(date +%s) - started )) s in)"
  "$PYTHON" benchmarks/bench_plan.py --contenders cli,pl --out "$OUT/$name" "$@" 2>&1 \
    | tee "$OUT/$name.log" || echo "$name failed"
}
bench 10m-all --rows 10000000 --runs 2 --budget-s 200
echo "== 10m-memory ($(( $(date +%s) - started )) s in)"
"$PYTHON" benchmarks/bench_plan_memory.py --rows 10000000 2>&1 | tee "$OUT/10m-memory.log" || true
bench 100k-all --rows 100000 --runs 5
bench 100k-2 --rows 100000 --runs 5 --cores 2
bench 2m-2 --rows 2000000 --runs 3 --cores 2 --budget-s 150
echo "device_figures.sh: $(( $(date +%s) - started )) s in all" | tee "$OUT/done.txt"
