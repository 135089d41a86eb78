#!/usr/bin/env bash
# Benchmark the project's data plane against the baseline, on the same data, in the same run.
#
# usage: bench/run.sh [ROWS] [RUNS]      (defaults: 2200000 rows, 3 runs)
# Data lives under bench/data/ (gitignored): the generated input is kept per ROWS and reused;
# each run's intermediates are removed after the run (2.2M rows need ~15 GB at peak).
# Each run: baseline pre -> fake outputs -> baseline post, then ours pre -> fake -> ours post,
# every step under /usr/bin/time -v. Summary (medians, ratios): bench/data/<ROWS>/summary.json
# and a markdown table on stdout. env: PYTHON (default: the project venv), KEEP=1 keeps outputs,
# LEDGER=N gives jsonl_shards a ledger of N earlier answers to read and anti-join against (none
# of them cached: the cost of the cache when it saves nothing),
# ONLY=ours skips the baseline (e.g. to check that peak memory does not grow with ROWS).
set -euo pipefail
ROWS=${1:-2200000}
RUNS=${2:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
SHARED=${BENCH_SHARED:-$ROOT/../shared/bench}  # the shared/ folder beside the repo
D="$HERE/data/$ROWS"
mkdir -p "$D"
# Run a snapshot of the package taken now, so edits made during a long benchmark do not mix
# code versions between runs (PYTHONPATH takes precedence over the editable install).
rm -rf "$D/snapshot"; mkdir -p "$D/snapshot"
cp -r "$ROOT/bedrock_assets" "$D/snapshot/"
find "$D/snapshot" -name __pycache__ -prune -exec rm -rf {} +
{ date -u; uname -a; nproc; grep -m1 "model name" /proc/cpuinfo; free -m | head -2; "$PY" -c "import polars, pyarrow, sys; print('python', sys.version.split()[0], 'polars', polars.__version__, 'pyarrow', pyarrow.__version__)"; } > "$D/machine.txt"

if [ ! -f "$D/cot/.done" ]; then
  rm -rf "$D/cot"
  "$PY" "$SHARED/gen_cot.py" --rows "$ROWS" --out "$D/cot" --files 4
  touch "$D/cot/.done"
fi

step() {  # step RUN NAME CMD...
  local run=$1 name=$2; shift 2
  echo "== run $run $name" >&2
  /usr/bin/time -v -o "$D/run$run/$name.time" "$@" > "$D/run$run/$name.out" 2> "$D/run$run/$name.err" || {
    cat "$D/run$run/$name.err" >&2; exit 1; }
  sync  # flush dirty pages so the next step does not pay for this one's writeback
}

for run in $(seq 1 "$RUNS"); do
  R="$D/run$run"
  rm -rf "$R"; mkdir -p "$R"
  uptime > "$R/load.txt"
  if [ "${ONLY:-}" != ours ]; then
    step "$run" base_pre  "$PY" "$SHARED/baseline.py" pre --input "$D/cot" --work "$R/base"
    step "$run" base_fake "$PY" "$SHARED/fake_outputs.py" --in "$R/base/batch_inputs_json/bench" --out "$R/base_out"
    step "$run" base_post "$PY" "$SHARED/baseline.py" post --work "$R/base" --outputs "$R/base_out"
    rm -rf "$R/base" "$R/base_out"
  fi
  # raw_dataset and jsonl_shards are separate Dagster steps (separate processes): timed apart,
  # summed for the pre phase; the phase's peak memory is the larger of the two.
  step "$run" ours_raw    env PYTHONPATH="$D/snapshot" "$PY" "$HERE/ours.py" pre --step raw --input "$D/cot/*.parquet" --work "$R/ours"
  step "$run" ours_shards env PYTHONPATH="$D/snapshot" "$PY" "$HERE/ours.py" pre --step shards --input "$D/cot/*.parquet" --work "$R/ours" --ledger "${LEDGER:-0}"
  step "$run" ours_fake "$PY" "$SHARED/fake_outputs.py" --in "$R/ours/shards" --out "$R/ours_out"
  step "$run" ours_post env PYTHONPATH="$D/snapshot" "$PY" "$HERE/ours.py" post --work "$R/ours" --outputs "$R/ours_out"
  uptime >> "$R/load.txt"
  [ -n "${KEEP:-}" ] || rm -rf "$R/ours" "$R/ours_out"
done

"$PY" "$HERE/summarize.py" "$D" "$ROWS"
