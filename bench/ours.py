#!/usr/bin/env python
"""The project's data plane on benchmark data: the same functions the Dagster assets call.

    ours.py pre  --input 'D/cot/*.parquet' --work D/ours     # raw_dataset + jsonl_shards
    ours.py post --work D/ours --outputs D/ours_outputs        # joined_results

`pre` = records.read_input -> records.assign_record_ids -> records.parquet (raw_dataset), then
shards.write_shards(scan of records.parquet) (jsonl_shards: validate, render, plan, write, hash).
`post` = results.write_results over every `.jsonl.out` (joined_results). Prints one
`RESULT {json}` line per phase (rows, seconds, rows/s, per-step seconds), like baseline.py.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time

import polars as pl

from bedrock_assets import providers, records, results, shards
from bedrock_assets.specs import RESULTS_CODECS, BatchSpec

# Same work as the baseline: question_answering template over `source`, Claude 3 Haiku,
# max_tokens 1024, jobs of at most 50,000 records.
SPEC = BatchSpec(name="bench", model_id="anthropic.claude-3-haiku-20240307-v1:0",
                 prompt_id="question_answering", params={"max_tokens": 1024})


def _result(phase: str, rows: int, seconds: float, steps: dict[str, float], **extra) -> None:
    res = {"phase": phase, "rows": rows, "seconds": round(seconds, 3),
           "rows_per_s": round(rows / seconds, 1) if seconds else None,
           "steps_s": {k: round(v, 3) for k, v in steps.items()}, **extra}
    print(f"{phase}: {rows:,} rows in {seconds:.2f}s = {res['rows_per_s']:,.0f} rows/s", file=sys.stderr)
    print("RESULT " + json.dumps(res), flush=True)


def cmd_pre(args) -> None:
    """raw_dataset then jsonl_shards; `--step` runs one of them (Dagster runs each asset step
    in its own process, so peak memory is per step)."""
    os.makedirs(args.work, exist_ok=True)
    provider = providers.for_spec(SPEC)
    records_path = os.path.join(args.work, "records.parquet")
    t0 = time.perf_counter()
    steps: dict[str, float] = {}
    if args.step in ("all", "raw"):
        # What raw_dataset runs for a parquet input (one file per partition; a glob here).
        # zstd-1 as raw_dataset writes it for S3 (records_compression), so joined_results copies
        # the same encoded columns the asset would.
        records.write_parquet_records(records.read_input(args.input), records_path, SPEC.id_column, args.input,
                                      compression=records.records_compression("s3://"))
        steps["raw_dataset"] = time.perf_counter() - t0
        if args.step == "raw":
            rows = pl.scan_parquet(records_path).select(pl.len()).collect().item()
            _result("pre_raw", rows, steps["raw_dataset"], steps)
            return
    t1 = time.perf_counter()
    infos = shards.write_shards(pl.scan_parquet(records_path), SPEC, provider,
                                os.path.join(args.work, "shards"), args.input)
    t2 = time.perf_counter()
    steps["jsonl_shards"] = t2 - t1
    with open(os.path.join(args.work, "shards", "manifest.json"), "w") as fh:
        json.dump({"shards": [i.to_dict() for i in infos]}, fh, indent=1)
    rows = sum(i.records for i in infos)
    _result("pre" if args.step == "all" else "pre_shards", rows, t2 - t0, steps,
            shards=len(infos), shard_bytes=sum(i.bytes for i in infos))


def cmd_post(args) -> None:
    provider = providers.for_spec(SPEC)
    with open(os.path.join(args.work, "shards", "manifest.json")) as fh:
        infos = json.load(fh)["shards"]
    outputs = sorted(glob.glob(os.path.join(args.outputs, "**", "*.out"), recursive=True))
    t0 = time.perf_counter()
    summary = results.write_results(
        os.path.join(args.work, "records.parquet"), infos, outputs, provider,
        os.path.join(args.work, "results.parquet"),
        # As joined_results passes it: only a skip_empty spec has skipped rows.
        skipped=shards.empty_text(shards.text_parts(SPEC, provider)) if SPEC.skip_empty else None,
        compression=args.results_compression,
    )
    t1 = time.perf_counter()
    totals = results.read_manifests(outputs)
    _result("post", summary.rows, t1 - t0, {"joined_results": t1 - t0},
            summary=summary.to_dict(), manifest_records=totals.records)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    pre = sub.add_parser("pre")
    pre.add_argument("--input", required=True, help="input file or glob (e.g. 'D/cot/*.parquet')")
    pre.add_argument("--work", required=True)
    pre.add_argument("--step", choices=["all", "raw", "shards"], default="all")
    post = sub.add_parser("post")
    post.add_argument("--work", required=True)
    post.add_argument("--outputs", required=True)
    post.add_argument("--results-compression", default=SPEC.results_compression, choices=RESULTS_CODECS,
                      help="the batch spec's results_compression (default: the spec's default, zstd)")
    args = ap.parse_args(argv)
    {"pre": cmd_pre, "post": cmd_post}[args.cmd](args)


if __name__ == "__main__":
    main()
