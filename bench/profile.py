#!/usr/bin/env python
"""Where the data plane's time goes: CPU and wall seconds of each sub-step, in one process.

    profile.py --input 'D/cot/*.parquet' --outputs D/ours_out --work /tmp/prof

Sub-steps mirror what the assets call (records.write_records, shards.validate, rendering,
writing+hashing, results.read_outputs, the join, parquet encoding). CPU = user + system time
of this process (all threads), so it is comparable across machines with other load.
Needs `--outputs` from fake_outputs.py over the shards this writes (run it twice, or pass
the outputs of a bench run made with KEEP=1).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import resource
import sys
import time

import polars as pl

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ours import SPEC  # noqa: E402

from bedrock_assets import providers, records, results, shards  # noqa: E402


class Clock:
    def __init__(self) -> None:
        self.rows: list[tuple[str, float, float]] = []

    def __call__(self, name: str, fn):
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        out = fn()
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime
        self.rows.append((name, time.perf_counter() - t0, cpu))
        print(f"{name:40s} wall {self.rows[-1][1]:7.2f}  cpu {cpu:7.2f}", file=sys.stderr, flush=True)
        return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--input", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--outputs", help="folder of .jsonl.out for the shards written to --work")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    clock = Clock()
    provider = providers.for_spec(SPEC)
    rec = os.path.join(args.work, "records.parquet")
    clock("raw_dataset: read + ids + write (write_parquet_records)", lambda: records.write_parquet_records(
        records.read_input(args.input), rec))
    lf = pl.scan_parquet(rec)
    report = clock("jsonl_shards: validate", lambda: shards.validate(lf, SPEC, provider, args.input))
    bounds = shards.plan_shards(report.records, None, SPEC.max_records_per_job, SPEC.min_records_per_job,
                                SPEC.max_bytes_per_file)
    pieces = shards._pieces(report, bounds, shards.PIECE_MAX_ROWS)
    rendered: list = []

    def render() -> None:
        for _, a, b in pieces:
            rendered.append(shards._render_piece(lf, SPEC, provider, a, b, check=True)["line"])

    clock("jsonl_shards: render + check lines (polars)", render)

    def write() -> None:
        with open(os.path.join(args.work, "all.jsonl"), "wb") as fh:
            for s in rendered:
                for buf in shards._line_buffers(s):
                    fh.write(buf)

    def hashing() -> None:
        h = shards.content_digest()
        for s in rendered:
            for buf in shards._line_buffers(s):
                h.update(buf)

    clock("jsonl_shards: write JSONL (page cache)", write)
    clock("jsonl_shards: content digest (xxh3-128)", hashing)
    rendered.clear()
    os.remove(os.path.join(args.work, "all.jsonl"))
    infos = clock("jsonl_shards: write_shards (all of the above)", lambda: shards.write_shards(
        lf, SPEC, provider, os.path.join(args.work, "shards"), args.input))
    if args.outputs:
        files = sorted(glob.glob(os.path.join(args.outputs, "**", "*.jsonl.out"), recursive=True))
        outs = clock("joined_results: read_outputs (lines + JSON decode)",
                     lambda: [results.read_outputs([f], provider).collect() for f in files])
        # Lower bounds for the post step in this stack (not code paths the asset runs): reading
        # the output lines without parsing them, and JSON-decoding only what follows the echoed
        # request (a line cut at `"modelOutput":`), i.e. the answers alone.
        line = pl.col("__json")
        tail = pl.concat_str(pl.lit("{"), line.cast(pl.Binary).bin.slice(
            line.str.find('"modelOutput":', literal=True)).cast(pl.String))
        answer_schema = pl.Struct(results._line_schema(provider))
        # One file at a time, each result dropped, as write_results does.
        clock("floor: read output lines, no parsing", lambda: [
            pl.scan_lines(f, name="__json").select(line.str.len_bytes().sum()).collect().height for f in files])
        clock("floor: read lines + decode modelOutput only", lambda: [
            pl.scan_lines(f, name="__json").select(tail.str.json_decode(answer_schema)).collect().height for f in files])
        clock("joined_results: read_outputs, one file at a time", lambda: [
            results.read_outputs([f], provider).collect().height for f in files])
        clock("joined_results: collect_outputs (what it runs), one file at a time", lambda: [
            results.collect_outputs([f], provider).height for f in files])
        # The answer columns in record order (what _answer_segment hands the encoder), then their
        # encoding alone and the copy of records.parquet's chunks alone.
        answers = [o.sort("record_id").drop("record_id", "__file", "__line") for o in outs]
        del outs
        schema = answers[0].schema

        def encode(codec: str) -> None:
            enc = results._encoder(schema, codec)
            for a in answers:
                for start in range(0, a.height, records.RECORDS_ROW_GROUP_ROWS):
                    enc(a.slice(start, records.RECORDS_ROW_GROUP_ROWS))

        clock("joined_results: encode the answer columns (zstd-1), one thread", lambda: encode("zstd"))
        clock("floor: encode the answer columns, uncompressed, one thread", lambda: encode("none"))
        del answers

        def copy_records() -> None:
            with open(rec, "rb") as src, open(os.path.join(args.work, "copy.bin"), "wb") as dst:
                while block := src.read(1 << 24):
                    dst.write(block)
            os.remove(os.path.join(args.work, "copy.bin"))

        clock("joined_results: copy records.parquet's bytes (read + write)", copy_records)
        clock("joined_results: write_results (all of the above)", lambda: results.write_results(
            rec, infos, files, provider, os.path.join(args.work, "results.parquet")))
    print(json.dumps({"rows": report.rows, "steps": [{"step": n, "wall_s": round(w, 2), "cpu_s": round(c, 2)}
                                                      for n, w, c in clock.rows]}, indent=1))


if __name__ == "__main__":
    main()
