#!/usr/bin/env bash
# The plan benchmark on a machine without package access (the 16-core figures of
# docs/performance.md): polars, duckdb and sniffio come packed in .bench-pack/site.tar.xz
# (unpacked to /tmp with Python's tarfile), the rest (numpy, pyarrow, aiohttp, httpx,
# jinja2, pyyaml, tqdm) is already there. Runs `postback-lab plan -o` against the
# hand-written Polars + DuckDB script at 10M events x 50 rules (same plan checked), then
# the same with every process limited to 8, 4 and 2 cores while the time budget lasts.
# Figures go to $OUT (plan.md, plan.json, device.txt). Finishes within 8 minutes.
#
#   bash benchmarks/device_plan.sh                      # on the device
#   NO_PACK=1 ROWS=100000 PYTHON=.venv/bin/python OUT=/tmp/o bash benchmarks/device_plan.sh  # a try here
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
ROWS=${ROWS:-10000000}
BUDGET_S=${BUDGET_S:-420}   # for the benchmark itself, data generation included
OUT=${OUT:-/tmp/bench-plan-out}
mkdir -p "$OUT"
started=$(date +%s)

if [ -f .bench-pack/site.tar.xz ] && [ -z "${NO_PACK:-}" ]; then
  "$PYTHON" - <<'PY'
import pathlib, tarfile
dest = pathlib.Path("/tmp/pbl-pack")
with tarfile.open(".bench-pack/site.tar.xz") as t:
    t.extractall(dest)
# the folder that holds the polars package is the site dir, wherever the archive put it
found = sorted(p.parent for p in dest.rglob("polars/__init__.py"))
site = found[0].parent if found else dest
link = pathlib.Path("/tmp/site")
if link.is_symlink():
    link.unlink()
if not link.exists():
    link.symlink_to(site)
print(f"unpacked .bench-pack/site.tar.xz: site dir {site} (as /tmp/site)")
PY
  export PYTHONPATH="/tmp/site:$PWD"
else
  echo "no .bench-pack/site.tar.xz: using the packages $PYTHON already has"
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
# bytecode compiled once, for both contenders alike (the packed site comes without it)
targets=(postback_lab benchmarks)
if [ -d /tmp/site ] && [ -f .bench-pack/site.tar.xz ] && [ -z "${NO_PACK:-}" ]; then targets+=(/tmp/site/); fi
"$PYTHON" -m compileall -q -j 0 "${targets[@]}" >/dev/null 2>&1 || true
# the console script is not installed there: bench_plan calls postback_lab.cli:main itself
# when there is no postback-lab next to $PYTHON

{
  echo "nproc: $(nproc)"
  echo "$("$PYTHON" --version 2>&1)"
  "$PYTHON" -c "import polars, duckdb, pyarrow, numpy; print('polars', polars.__version__, '| duckdb', duckdb.__version__, '| pyarrow', pyarrow.__version__, '| numpy', numpy.__version__)"
  grep -m1 "model name" /proc/cpuinfo || true
  free -g | head -2 || true
  uptime
} | tee "$OUT/device.txt"

if [ -n "${SETUP_ONLY:-}" ]; then exit 0; fi
cores=$(nproc)
threads=()
for n in 8 4 2; do
  if [ "$n" -lt "$cores" ]; then threads+=(--threads "$n"); fi
done
left=$(( BUDGET_S - ($(date +%s) - started) ))
"$PYTHON" benchmarks/bench_plan.py --rows "$ROWS" --runs 1 --contenders cli,pl \
  "${threads[@]}" --budget-s "$left" --out "$OUT" 2>&1 | tee "$OUT/bench_plan.log"
echo "device_plan.sh: $(( $(date +%s) - started )) s in all" | tee -a "$OUT/device.txt"
