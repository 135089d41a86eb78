"""`make demo`: the whole flow on the bundled samples against the local emulator.

Starts the emulator on loopback, drops the sample inputs into its S3, materializes every asset for
each sample partition (multiprocess executor, sqlite instance in .dagster_home, pool honoured),
copies the results to ./demo-results and prints a summary.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

SAMPLES = Path(__file__).with_name("samples")
DEMO_INPUTS = [
    ("jokes", SAMPLES / "inputs/jokes/topics.csv"),
    ("sentiment", SAMPLES / "inputs/sentiment/reviews.jsonl"),
    ("embeddings", SAMPLES / "inputs/embeddings/docs.parquet"),
    ("cot-sample", "train"),  # Hugging Face split, loaded from the bundled local dataset folder
]


def prepare_home(home: Path) -> None:
    """A project-local DAGSTER_HOME with the repo's dagster.yaml, so `make dev` shows the runs."""
    home.mkdir(parents=True, exist_ok=True)
    repo_yaml = Path(__file__).resolve().parent.parent / "dagster.yaml"
    if repo_yaml.exists() and not (home / "dagster.yaml").exists():
        shutil.copy(repo_yaml, home / "dagster.yaml")


def point_at_emulator(endpoint: str) -> None:
    # Dummy credentials on purpose: real ones must never be sent anywhere by the demo.
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="demo",
        AWS_SECRET_ACCESS_KEY="demo",
        AWS_REGION=os.environ.get("AWS_REGION", "us-east-1"),
        BEDROCK_ASSETS_POLL_SECONDS="1",
    )
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.pop("AWS_PROFILE", None)


def summarize(partition: str, results_path: Path, manifest: dict) -> dict:
    import polars as pl

    from bedrock_assets import pricing
    from bedrock_assets.specs import get_spec

    df = pl.read_parquet(results_path)
    tokens_in = int(df.get_column("input_tokens").fill_null(0).sum()) if "input_tokens" in df.columns else 0
    tokens_out = int(df.get_column("output_tokens").fill_null(0).sum()) if "output_tokens" in df.columns else 0
    estimate = (manifest.get("estimate") or {}).get("cost") or {}
    actual = pricing.actual_cost(get_spec(partition.split("/")[0]).model_id, tokens_in, tokens_out, "batch")
    return {
        "estimated_usd": estimate.get("usd"),
        "actual_usd": actual.usd,
        "partition": partition,
        "rows_in": df.height,
        "answered": df.filter(pl.col("status") == "succeeded").height,
        "errors": df.filter(pl.col("status") == "failed").height,
        # Answered, but cut at max_tokens: counted apart so "answered" does not hide them.
        "truncated": df.filter(pl.col("stop_reason") == "max_tokens").height if "stop_reason" in df.columns else 0,
        "input_tokens": tokens_in,
        "output_tokens": tokens_out,
        "results": str(results_path),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bedrock-assets demo", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="emulator port (0 = a free one)")
    parser.add_argument("--out", default="demo-results", help="where to copy the results")
    args = parser.parse_args(argv)

    import boto3
    import dagster as dg

    from bedrock_assets import settings
    from bedrock_assets.add import stage_input
    from bedrock_assets.emulator import EmulatorConfig, run_emulator
    from bedrock_assets.runner import materialize_partition
    from bedrock_assets.storage import PartitionLayout, ensure_bucket

    import logging

    logging.getLogger("dagster").setLevel(logging.WARNING)  # step logs stay in the instance
    home = Path(os.environ.get("DAGSTER_HOME") or ".dagster_home").resolve()
    os.environ["DAGSTER_HOME"] = str(home)
    prepare_home(home)
    started = time.monotonic()
    with run_emulator(EmulatorConfig(host="127.0.0.1", port=args.port)) as emulator:
        point_at_emulator(emulator.endpoint_url)
        print(f"emulator: {emulator.endpoint_url}  (S3 + Bedrock batch control plane)")
        s3 = boto3.client("s3", region_name=settings.region())
        ensure_bucket(s3, settings.bucket(), settings.region())
        keys = [stage_input(batch, str(source), s3=s3) for batch, source in DEMO_INPUTS]
        rows = []
        with dg.DagsterInstance.get() as instance:
            for key in keys:
                t0 = time.monotonic()
                # Step logs stay in the instance (open them with `make dev`); the console shows warnings.
                run = materialize_partition(instance, key, console_log_level="WARNING")
                print(f"  {key}: run {run.run_id[:8]} {run.status.value} in {time.monotonic() - t0:.0f}s")
                if run.status != dg.DagsterRunStatus.SUCCESS:
                    print(f"    see the run's logs: DAGSTER_HOME={home} dagster dev, run {run.run_id}")
                    continue
                layout = PartitionLayout(settings.bucket(), key)
                local = Path(args.out) / key / "results.parquet"
                local.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(layout.bucket, layout.results_key, str(local))
                manifest = json.loads(s3.get_object(Bucket=layout.bucket, Key=layout.shards_manifest_key)["Body"].read())
                rows.append(summarize(key, local, manifest))
    def usd(value) -> str:
        return "unknown" if value is None else f"${value:.4f}"

    print(
        f"\n{'partition':26} {'rows in':>7} {'answered':>8} {'errors':>6} {'truncated':>9} {'in tokens':>9} {'out tokens':>10} "
        f"{'est. cost (max)':>15} {'batch cost':>10}"
    )
    for r in rows:
        print(
            f"{r['partition']:26} {r['rows_in']:7} {r['answered']:8} {r['errors']:6} {r['truncated']:9} "
            f"{r['input_tokens']:9} {r['output_tokens']:10} {usd(r['estimated_usd']):>15} {usd(r['actual_usd']):>10}"
        )
    print("est. cost = upper bound before submission (every record uses max_tokens); batch cost = from the jobs' token counts")
    if any(r["truncated"] for r in rows):
        print("truncated = answered, but cut at the spec's max_tokens (stop_reason max_tokens): raise params.max_tokens for full answers")
    print(f"\nresults (Parquet, one row per input row): {Path(args.out).resolve()}/<partition>/results.parquet")
    print(f"runs are in the Dagster instance at {home} (open it with `make dev`)")
    print(f"demo finished in {time.monotonic() - started:.0f}s")
    return 0 if len(rows) == len(keys) else 1


if __name__ == "__main__":
    raise SystemExit(main())
