"""Cost of reading a JSONL / CSV input whole-file typed vs. typed from its first 10,000 lines.

raw_dataset infers JSONL types over the whole file (records.JSON_INFER_ROWS = None) so a key
first seen late, or a value whose type changes late, is not lost or fatal. This measures what
that costs on a generated file: `records.write_input_records` (what raw_dataset runs, local file
-> records.parquet) with inference over the first 10,000 lines vs. over every line; and the CSV
read (always strings, no inference) for comparison. Every row has the same keys, so both JSONL
settings see the same schema and the difference is the inference pass alone.

    python bench/input_inference.py --rows 1000000 --runs 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import polars as pl

from bedrock_assets import records


def generate(folder: Path, rows: int) -> dict[str, Path]:
    frame = pl.DataFrame({"n": pl.int_range(rows, eager=True)}).select(
        pl.col("n"),
        pl.format("topic {} about cats and dogs and the weather today", pl.col("n")).alias("topic"),
        (pl.col("n") * 0.5).alias("score"),
        pl.concat_list(pl.lit("a"), pl.col("n").cast(pl.String)).alias("tags"),
    )
    paths = {"jsonl": folder / "in.jsonl", "csv": folder / "in.csv"}
    frame.write_ndjson(paths["jsonl"])
    frame.drop("tags").write_csv(paths["csv"])
    return paths


def timed(path: Path, dest: Path, infer: int | None) -> float:
    records.JSON_INFER_ROWS = infer
    start = time.perf_counter()
    records.write_input_records(path, dest, compression="zstd")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-infer-") as tmp:
        folder = Path(tmp)
        paths = generate(folder, args.rows)
        sizes = {k: p.stat().st_size / 1e6 for k, p in paths.items()}
        cases = [("jsonl, first 10,000 lines", paths["jsonl"], 10_000), ("jsonl, whole file", paths["jsonl"], None),
                 ("csv (strings, no inference)", paths["csv"], None)]
        times: dict[str, list[float]] = {label: [] for label, _, _ in cases}
        for _ in range(args.runs):  # interleaved, so drift on a shared machine hits every case alike
            for label, path, infer in cases:
                times[label].append(timed(path, folder / "records.parquet", infer))
        print(f"{args.rows:,} rows; jsonl {sizes['jsonl']:.0f} MB, csv {sizes['csv']:.0f} MB; median of {args.runs} [min-max] s")
        for label, values in times.items():
            print(f"  {label:32s} {statistics.median(values):6.2f}  [{min(values):.2f}-{max(values):.2f}]")


if __name__ == "__main__":
    main()
