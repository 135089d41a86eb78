#!/usr/bin/env python
"""The project's data plane on benchmark data: the same functions the Dagster assets call.

    ours.py pre  --input 'D/cot/*.parquet' --work D/ours     # raw_dataset + jsonl_shards
    ours.py post --work D/ours --outputs D/ours_outputs        # joined_results

`pre` = records.read_input -> records.assign_record_ids -> records.parquet (raw_dataset), then
shards.write_shards(scan of records.parquet) (jsonl_shards: validate, render, plan, write, hash).
`post` = each shard step's parse into the answer ledger, then joined_results (ledger -> results.parquet,
answers_match_requests). Prints one
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

from bedrock_assets import ledger, providers, records, results, shards
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
    ledger_path = os.path.join(args.work, "ledger-answers.parquet")
    if args.ledger:
        _fake_ledger(ledger_path, args.ledger, provider)  # not timed: earlier runs' answers
    t1 = time.perf_counter()
    # What jsonl_shards runs: the ledger's reusable digests, then render + digest + write, then
    # requests.parquet (uploaded by the asset).
    answered = ledger.reusable(pl.scan_parquet(ledger_path)) if args.ledger else None  # as the asset passes it
    shard_set = shards.write_requests(pl.scan_parquet(records_path), SPEC, provider,
                                      os.path.join(args.work, "shards"), args.input, answered=answered)
    shard_set.requests.write_parquet(os.path.join(args.work, "requests.parquet"), compression="zstd", compression_level=1)
    t2 = time.perf_counter()
    steps["jsonl_shards"] = t2 - t1
    infos = shard_set.shards
    with open(os.path.join(args.work, "shards", "manifest.json"), "w") as fh:
        json.dump({"shards": [i.to_dict() for i in infos]}, fh, indent=1)
    rows = sum(i.records for i in infos)
    _result("pre" if args.step == "all" else "pre_shards", rows, t2 - t0, steps,
            shards=len(infos), shard_bytes=sum(i.bytes for i in infos), ledger_answers=args.ledger,
            cached=shard_set.cached)


def _fake_ledger(path: str, n: int, provider) -> None:
    """A ledger file of `n` answers to requests that are not in the input (nothing cached): the
    cost of reading the ledger and of the anti-join, without cache hits."""
    import numpy as np  # noqa: PLC0415

    digests = ledger.hex_digests(np.random.default_rng(0).bytes(16 * n))
    schema = ledger.ledger_schema(provider)
    frame = pl.DataFrame({ledger.DIGEST: digests}).with_columns(
        pl.lit("an earlier answer").alias("response"), pl.lit(100).cast(pl.Int64).alias("input_tokens"),
    ).with_columns(*[pl.lit(None, dtype).alias(name) for name, dtype in schema.items() if name not in (ledger.DIGEST, "response", "input_tokens")])
    frame.select([pl.col(name).cast(dtype) for name, dtype in schema.items()]).write_parquet(path, compression="zstd", compression_level=1)


def cmd_post(args) -> None:
    """What happens after the jobs: each shard step parses its job's outputs into a ledger file
    (as its job finishes, while other jobs still run), then joined_results joins every row to
    its answer from the ledger and runs answers_match_requests (one render + digest pass)."""
    provider = providers.for_spec(SPEC)
    with open(os.path.join(args.work, "shards", "manifest.json")) as fh:
        infos = json.load(fh)["shards"]
    outputs = sorted(glob.glob(os.path.join(args.outputs, "**", "*.out"), recursive=True))
    records_path = os.path.join(args.work, "records.parquet")
    answers_dir = os.path.join(args.work, "answers")
    os.makedirs(answers_dir, exist_ok=True)
    t0 = time.perf_counter()
    requests = pl.read_parquet(os.path.join(args.work, "requests.parquet"))
    files = []
    for info in infos:  # the shard steps (one process each in Dagster; here one after another)
        mine = [o for o in outputs if os.path.basename(o).startswith(info["name"]) and not results.is_manifest(o)]
        outs = results.collect_outputs(mine, provider)
        rows, _ = ledger.ledger_rows(outs, requests.filter(pl.col("shard") == info["name"]), provider,
                                     answered_by=ledger.AnsweredBy.BATCH, job_arn="bench", attempt=1, partition="bench")
        path = os.path.join(answers_dir, info["name"] + ".parquet")
        rows.write_parquet(path, compression="zstd", compression_level=1)
        files.append(path)
    t1 = time.perf_counter()
    asked = requests.select(ledger.DIGEST).unique().lazy()
    answers = ledger.best_answers(ledger.scan_ledger(files, provider).join(asked, on=ledger.DIGEST, how="semi")).collect()
    summary = results.write_answers(records_path, requests, answers, provider, os.path.join(args.work, "results.parquet"),
                                    skip_empty=SPEC.skip_empty, compression=args.results_compression)
    t2 = time.perf_counter()
    current = shards.request_digests(pl.scan_parquet(records_path), SPEC, provider)
    mismatched = (pl.scan_parquet(os.path.join(args.work, "results.parquet")).select("record_id", ledger.DIGEST)
                  .join(current.lazy(), on="record_id", how="left", suffix="_now")
                  .filter(pl.col(ledger.DIGEST) != pl.col(ledger.DIGEST + "_now")).select(pl.len()).collect().item())
    t3 = time.perf_counter()
    totals = results.read_manifests(outputs)
    _result("post", summary.rows, t3 - t0,
            {"shard_steps_parse_to_ledger": t1 - t0, "joined_results": t3 - t1, "answers_match_requests": t3 - t2},
            summary=summary.to_dict(), manifest_records=totals.records, mismatched=mismatched)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    pre = sub.add_parser("pre")
    pre.add_argument("--input", required=True, help="input file or glob (e.g. 'D/cot/*.parquet')")
    pre.add_argument("--work", required=True)
    pre.add_argument("--step", choices=["all", "raw", "shards"], default="all")
    pre.add_argument("--ledger", type=int, default=0,
                     help="answers in the ledger jsonl_shards reads first (none of them cached); 0: no ledger")
    post = sub.add_parser("post")
    post.add_argument("--work", required=True)
    post.add_argument("--outputs", required=True)
    post.add_argument("--results-compression", default=SPEC.results_compression, choices=RESULTS_CODECS,
                      help="the batch spec's results_compression (default: the spec's default, zstd)")
    args = ap.parse_args(argv)
    {"pre": cmd_pre, "post": cmd_post}[args.cmd](args)


if __name__ == "__main__":
    main()
