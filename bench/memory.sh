#!/usr/bin/env bash
# Peak memory against the number of rows (issue 6: "10M rows run with the same peak RSS (± 20 %)
# as 1M rows"), for the three data-plane steps, each in its own process as Dagster runs them.
#
# usage: bench/memory.sh [ROWS ...]        (default: 1000000 10000000)
# For each ROWS: generate the input once as ONE parquet file, as a partition is one input file
# (kept in bench/data/<ROWS>/cot1, gitignored), then
# raw_dataset, jsonl_shards, fake outputs, joined_results (bench/ours.py, the assets' own
# functions), every step under /usr/bin/time -v. Fake outputs are made 20 shards at a time and
# those shards deleted, so 10M rows need ~45 GB of disk at peak instead of ~60. Prints a table
# (and writes bench/data/memory.md); KEEP=1 keeps the work folder.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
SHARED=${BENCH_SHARED:-$ROOT/../shared/bench}
ALL_ROWS=("$@")
[ ${#ALL_ROWS[@]} -gt 0 ] || ALL_ROWS=(1000000 10000000)
REPORT="$HERE/data/memory.md"
mkdir -p "$HERE/data"

step() {  # step DIR NAME CMD...
  local dir=$1 name=$2; shift 2
  echo "== $(basename "$(dirname "$dir")") $name" >&2
  /usr/bin/time -v -o "$dir/$name.time" "$@" > "$dir/$name.out" 2> "$dir/$name.err" || { cat "$dir/$name.err" >&2; exit 1; }
  sync
}

field() {  # field FILE REGEX -> the value after ": "
  grep -E "$2" "$1" | head -1 | sed 's/.*: //'
}

{
  echo "# Peak memory vs rows ($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB)"
  echo
  echo "| rows | step | wall (m:ss) | peak RSS MiB |"
  echo "|---|---|---|---|"
} > "$REPORT"

for ROWS in "${ALL_ROWS[@]}"; do
  D="$HERE/data/$ROWS"
  W="$D/mem"
  rm -rf "$W"; mkdir -p "$W"
  if [ ! -f "$D/cot1/.done" ]; then
    rm -rf "$D/cot1"
    "$PY" "$SHARED/gen_cot.py" --rows "$ROWS" --out "$D/cot1" --files 1
    touch "$D/cot1/.done"
  fi
  step "$W" raw "$PY" "$HERE/ours.py" pre --step raw --input "$D/cot1/part-00000.parquet" --work "$W"
  step "$W" shards "$PY" "$HERE/ours.py" pre --step shards --input "$D/cot1/part-00000.parquet" --work "$W"
  mkdir -p "$W/batch" "$W/out"
  ls "$W"/shards/*.jsonl | xargs -n 20 | while read -r group; do
    mv $group "$W/batch/"
    "$PY" "$SHARED/fake_outputs.py" --in "$W/batch" --out "$W/out" > /dev/null
    rm -f "$W"/batch/*.jsonl
  done
  step "$W" post "$PY" "$HERE/ours.py" post --work "$W" --outputs "$W/out"
  for s in raw shards post; do
    wall=$(field "$W/$s.time" "Elapsed")
    rss=$(( $(field "$W/$s.time" "Maximum resident") / 1024 ))
    echo "| $ROWS | $s | $wall | $rss |" >> "$REPORT"
  done
  [ -n "${KEEP:-}" ] || rm -rf "$W"
done
cat "$REPORT"
