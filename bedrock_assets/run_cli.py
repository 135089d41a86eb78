"""`bedrock-assets run <batch> <file | s3 uri | hf split>`: from a file to answers in one command.

Stages the input (as `bedrock-assets add` does), registers its partition and materializes it
through the same Dagster job the UI and the sensor launch (runner.materialize_partition:
multiprocess executor, the `bedrock_batch` pool, the checks), shows one progress line while it
waits, writes the results to a local file and prints a summary.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, TextIO

from bedrock_assets import settings
from bedrock_assets.cli_env import UserError

OUT_SUFFIXES = (".parquet", ".csv", ".jsonl", ".ndjson")


@dataclasses.dataclass
class RunSummary:
    partition: str
    run_id: str
    rows: int
    answered: int
    errors: int
    skipped: int
    missing: int
    cached: int
    truncated: int  # answered, but cut at max_tokens (stop_reason max_tokens)
    input_tokens: int
    output_tokens: int
    cost_usd: float | None  # this run's answers (cached rows cost nothing); None: price unknown
    seconds: float
    out: Path | None = None

    def table(self) -> str:
        cost = "unknown" if self.cost_usd is None else f"${self.cost_usd:.4f}"
        head = f"{'partition':28} {'rows':>6} {'answered':>8} {'errors':>6} {'cached':>6} {'truncated':>9} {'in tokens':>9} {'out tokens':>10} {'cost':>9}"
        row = (f"{self.partition:28} {self.rows:6} {self.answered:8} {self.errors:6} {self.cached:6} {self.truncated:9} "
               f"{self.input_tokens:9} {self.output_tokens:10} {cost:>9}")
        notes = []
        if self.skipped or self.missing:
            notes.append(f"{self.skipped} skipped (empty text), {self.missing} without any answer")
        if self.truncated:
            notes.append(f"{self.truncated} answer(s) were cut at max_tokens (stop_reason max_tokens): raise params.max_tokens in the spec for full answers")
        notes.append("cost = this run's batch/on-demand tokens at the dated prices; cached rows (answered before, by the ledger) cost nothing")
        return "\n".join([head, row, *notes])


def summarize(results, partition: str, model_id: str, run_id: str, seconds: float) -> RunSummary:
    """Counts and cost from a results.parquet frame (one row per input row)."""
    import polars as pl

    from bedrock_assets import pricing

    def count(expr) -> int:
        return results.filter(expr).height

    def tokens(col: str, by: str | None = None) -> int:
        if col not in results.columns:
            return 0
        frame = results if by is None else results.filter(pl.col("answered_by") == by)
        return int(frame.get_column(col).fill_null(0).sum())

    cost: float | None = 0.0
    for path, by in (("batch", "batch"), ("on-demand", "on-demand")):
        i, o = tokens("input_tokens", by), tokens("output_tokens", by)
        if i or o:
            usd = pricing.actual_cost(model_id, i, o, path).usd
            cost = None if usd is None or cost is None else cost + usd
    truncated = count(pl.col("stop_reason") == "max_tokens") if "stop_reason" in results.columns else 0
    return RunSummary(
        partition=partition, run_id=run_id, rows=results.height,
        answered=count(pl.col("status") == "succeeded"), errors=count(pl.col("status") == "failed"),
        skipped=count(pl.col("status") == "skipped"), missing=count(pl.col("status") == "missing"),
        cached=count(pl.col("answered_by") == "cache"), truncated=truncated,
        input_tokens=tokens("input_tokens"), output_tokens=tokens("output_tokens"), cost_usd=cost, seconds=seconds,
    )


def write_local(results, out: Path) -> None:
    """results.parquet's frame to `out`, format by extension; CSV gets list/struct columns as JSON text."""
    import polars as pl

    out.parent.mkdir(parents=True, exist_ok=True)
    suffix = out.suffix.lower()
    if suffix == ".parquet":
        results.write_parquet(out)
    elif suffix in (".jsonl", ".ndjson"):
        results.write_ndjson(out)
    elif suffix == ".csv":
        nested = [c for c, t in results.schema.items() if isinstance(t, (pl.List, pl.Array, pl.Struct))]
        flat = results.with_columns(
            pl.struct(pl.col(c).alias("v")).struct.json_encode().str.slice(5).str.head(-1).alias(c) for c in nested
        )
        flat.write_csv(out)
    else:
        raise UserError(f"--out {out}: unsupported extension; use one of {', '.join(OUT_SUFFIXES)}")


# --- progress --------------------------------------------------------------------------------


@dataclasses.dataclass
class Progress:
    stage: str = "starting"
    shards: int = 0
    jobs: int = 0
    jobs_done: int = 0
    done: int = 0
    total: int = 0
    cached: int = 0
    cost_usd: float = 0.0
    estimate_usd: float | None = None

    def line(self, partition: str, seconds: float) -> str:
        parts = [f"[{seconds:4.0f}s] {partition}: {self.stage}"]
        if self.total or self.cached:
            parts.append(f"records {self.done}/{self.total} answered" + (f" (+{self.cached} cached)" if self.cached else ""))
        if self.jobs:
            parts.append(f"jobs {self.jobs_done}/{self.jobs} done")
        cost = f"cost so far ${self.cost_usd:.4f}"
        if self.estimate_usd is not None:
            cost += f" (est. max ${self.estimate_usd:.4f})"
        parts.append(cost)
        return ", ".join(parts)


def read_progress(s3: Any, bedrock: Any, partition: str, model_id: str) -> Progress:
    """Where the partition is, from what the assets wrote to S3 and Bedrock's own job counts."""
    from bedrock_assets import jobs, pricing
    from bedrock_assets.storage import PartitionLayout, get_json, list_keys

    layout = PartitionLayout(settings.bucket(), partition)
    p = Progress()
    manifest = get_json(s3, layout.bucket, layout.shards_manifest_key)
    if manifest is None:
        has_records = any(True for _ in list_keys(s3, layout.bucket, layout.records_key))
        p.stage = "validating and sharding" if has_records else "reading the input"
        return p
    p.stage = "waiting on Bedrock"
    shard_records = {s["name"].removesuffix(".jsonl"): s["records"] for s in manifest.get("shards", [])}
    p.shards, p.total = len(shard_records), sum(shard_records.values())
    p.cached = int((manifest.get("cache") or {}).get("cache_hit_rows") or 0)
    p.estimate_usd = ((manifest.get("estimate") or {}).get("cost") or {}).get("usd")
    in_tok = out_tok = od_in = od_out = 0
    for obj in list_keys(s3, layout.bucket, f"jobs/{partition}/"):
        name = obj["Key"].rsplit("/", 1)[-1].removesuffix(".json")
        if name not in shard_records:
            continue  # jobs.json (the summary)
        record = get_json(s3, layout.bucket, obj["Key"]) or {"attempts": []}
        if not record["attempts"]:
            continue
        last = record["attempts"][-1]
        n = shard_records[name]
        for a in record["attempts"]:
            if a["route"] == "on-demand":
                od_in += int(a.get("input_tokens") or 0)
                od_out += int(a.get("output_tokens") or 0)
                continue
            p.jobs += 1
            status = a.get("status")
            if status in jobs.TERMINAL:
                p.jobs_done += 1
                out = get_json(s3, layout.bucket, a["output_prefix"] + "manifest.json.out") or {}
                in_tok += int(out.get("inputTokenCount") or 0)
                out_tok += int(out.get("outputTokenCount") or 0)
        if last["route"] == "on-demand" and last.get("status") == "Completed":
            p.done += n
            continue
        job = last
        if last.get("status") not in jobs.TERMINAL:
            try:
                live = jobs.describe(bedrock, last["job_arn"])
                job = {"total_records": live.get("totalRecordCount"), "processed_records": live.get("processedRecordCount")}
            except Exception:  # noqa: BLE001 - progress is best effort; the run decides
                job = {}
        total, processed = job.get("total_records") or 0, job.get("processed_records") or 0
        if last.get("outstanding_records") is not None:
            p.done += n - int(last["outstanding_records"])
        elif total:
            p.done += max(0, min(n, n - total + processed))
    if p.total and p.done >= p.total and p.jobs_done == p.jobs:
        p.stage = "joining results"
    for path, i, o in (("batch", in_tok, out_tok), ("on-demand", od_in, od_out)):
        if i or o:
            p.cost_usd += pricing.actual_cost(model_id, i, o, path).usd or 0.0
    return p


class ProgressLine:
    """One line updated in place on a terminal; elsewhere (a log, a test) a line when it changes,
    at most every `every` seconds, so a long wait is not a flood."""

    def __init__(self, stream: TextIO, partition: str, model_id: str, every: float = 2.0, quiet_seconds: float = 30.0):
        import boto3

        self.stream, self.partition, self.model_id, self.every = stream, partition, model_id, every
        self.quiet_seconds = quiet_seconds
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self.s3 = boto3.client("s3", region_name=settings.region())
        self.bedrock = boto3.client("bedrock", region_name=settings.region())
        self.started = time.monotonic()
        self.stop = threading.Event()
        self.last = ""
        self.last_print = 0.0
        self.thread = threading.Thread(target=self._loop, name="bedrock-assets-progress", daemon=True)

    def __enter__(self) -> "ProgressLine":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        if self.tty and self.last:
            self.stream.write("\n")
            self.stream.flush()

    def _loop(self) -> None:
        stage = ""
        while not self.stop.wait(1.0 if self.tty else self.every):
            try:
                p = read_progress(self.s3, self.bedrock, self.partition, self.model_id)
            except Exception:  # noqa: BLE001 - progress is best effort; never fails the run
                continue
            now = time.monotonic()
            line = p.line(self.partition, now - self.started)
            if self.tty:
                self.stream.write("\r" + line[:160].ljust(min(160, len(self.last))))
                self.stream.flush()
                self.last = line
            elif p.stage != stage or now - self.last_print >= self.quiet_seconds:
                # A new stage at once; otherwise one line per `quiet_seconds` (hours of waiting on
                # Bedrock are a few hundred lines in a log, not one per poll).
                self.stream.write(line + "\n")
                self.stream.flush()
                stage, self.last_print = p.stage, now


# --- the run ---------------------------------------------------------------------------------


def failure_message(instance, run_id: str) -> str:
    """The first failed step and its error's first line (the assets' errors name file, row, column)."""
    import dagster as dg

    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
        event = record.dagster_event
        data = event.step_failure_data
        text = ""
        if data.user_failure_data is not None and data.user_failure_data.description:
            text = data.user_failure_data.description
        elif data.error is not None:
            text = data.error.message
        first = (text.strip().splitlines() or ["(no message)"])[0]
        return f"step {event.step_key} failed: {first}"
    run = instance.get_run_by_id(run_id)
    return f"run ended {run.status.value if run else 'unknown'}"


def execute(
    batch: str,
    source: str,
    *,
    name: str | None = None,
    out: Path | None = None,
    fresh_answers: bool = False,
    progress: TextIO | None = None,
    log: Callable[[str], None] = lambda _: None,
):
    """Stage, register and materialize one input; returns (results frame, RunSummary).

    The environment (emulator or AWS, specs file) must already be set: see `cli_env`."""
    import dagster as dg
    import polars as pl

    from bedrock_assets import cli_env
    from bedrock_assets.add import stage_input
    from bedrock_assets.runner import materialize_partition
    from bedrock_assets.specs import get_spec
    from bedrock_assets.storage import PartitionLayout

    spec = get_spec(batch)  # unknown batch, bad specs file: before anything is uploaded
    if not spec.is_hf and not source.startswith("s3://") and not Path(source).is_file():
        raise UserError(f"no such input file: {source}")
    if out is not None and out.suffix.lower() not in OUT_SUFFIXES:
        raise UserError(f"--out {out}: unsupported extension; use one of {', '.join(OUT_SUFFIXES)}")
    home = cli_env.ensure_dagster_home()
    target = cli_env.prepare_aws()
    log(f"{'emulator ' + target.endpoint if target.emulator else 'AWS ' + target.region}, bucket {target.bucket}, DAGSTER_HOME={home}")
    key = stage_input(batch, source, s3=target.s3, name=name)
    started = time.monotonic()
    with dg.DagsterInstance.get() as instance:
        with ProgressLine(progress, key, spec.model_id) if progress is not None else _nothing():
            # Step logs, warnings and errors (with their stack traces) stay in the instance, where
            # the UI shows them; the console gets the progress line and, on failure, one line
            # naming the failed step and its error (failure_message).
            run = materialize_partition(instance, key, console_log_level="CRITICAL", fresh_answers=fresh_answers)
        if run.status != dg.DagsterRunStatus.SUCCESS:
            raise RunFailed(f"{key}: run {run.run_id[:8]} {run.status.value}: {failure_message(instance, run.run_id)} "
                            f"(full logs: DAGSTER_HOME={home} dagster dev, run {run.run_id})")
    layout = PartitionLayout(target.bucket, key)
    body = target.s3.get_object(Bucket=layout.bucket, Key=layout.results_key)["Body"].read()
    results = pl.read_parquet(io.BytesIO(body))
    summary = summarize(results, key, spec.model_id, run.run_id, time.monotonic() - started)
    if out is not None:
        write_local(results, out)
        summary.out = out
    return results, summary


class RunFailed(Exception):
    """The Dagster run did not succeed; the message names the failed step and its error."""


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return None


def default_out(partition: str) -> Path:
    return Path("results") / f"{partition}.parquet"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bedrock-assets run", description=__doc__.splitlines()[0])
    parser.add_argument("batch", help="batch name from the specs file (--specs, $BEDROCK_ASSETS_SPECS or the packaged batches.yaml)")
    parser.add_argument("source", help="local file (.csv .parquet .jsonl), s3://bucket/key, or a Hugging Face split")
    parser.add_argument("--specs", help="batch specs YAML file (default: $BEDROCK_ASSETS_SPECS, else the packaged batches.yaml)")
    parser.add_argument("--out", help="results file: .parquet, .csv or .jsonl (default: ./results/<batch>/<input name>.parquet)")
    parser.add_argument("--name", help="input name (default: the file name / split)")
    parser.add_argument("--emulator", action="store_true", help="run against a local emulator started in this process (no AWS needed)")
    parser.add_argument("--fresh-answers", action="store_true", help="ask every request again, ignoring the answer ledger")
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    args = parser.parse_args(argv)

    from bedrock_assets import cli_env

    def body() -> int:
        if args.specs:
            path = Path(args.specs).expanduser()
            if not path.is_file():
                raise UserError(f"--specs {args.specs}: no such file")
            os.environ[settings.ENV_SPECS] = str(path.resolve())  # step processes read it too
        if args.emulator and os.environ.get("AWS_ENDPOINT_URL") and cli_env.is_emulator(os.environ["AWS_ENDPOINT_URL"]):
            args.emulator = False  # one is already running and configured: use it
        out = Path(args.out) if args.out else None
        with cli_env.local_emulator() if args.emulator else _nothing() as endpoint:
            if endpoint:
                print(f"emulator: {endpoint} (in this process; its S3 and jobs end with the command)")
            if out is None:
                from bedrock_assets.specs import get_spec
                from bedrock_assets.storage import check_input_name

                spec = get_spec(args.batch)
                base = args.name or (args.source if spec.is_hf else args.source.rstrip("/").rsplit("/", 1)[-1])
                out = default_out(f"{args.batch}/{check_input_name(base)}")
            try:
                _, summary = execute(
                    args.batch, args.source, name=args.name, out=out, fresh_answers=args.fresh_answers,
                    progress=None if args.quiet else sys.stdout, log=print,
                )
            except RunFailed as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 1
        print()
        print(summary.table())
        print(f"\nresults ({summary.rows} rows, one per input row): {summary.out}")
        print(f"run {summary.run_id} in {summary.seconds:.0f}s; it is in the Dagster instance at {os.environ['DAGSTER_HOME']}")
        return 0

    return cli_env.run_main(body)


if __name__ == "__main__":
    raise SystemExit(main())
