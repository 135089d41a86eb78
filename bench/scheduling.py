"""Scheduling benchmark (issue 6): N shards under a quota of Q with job durations varying 1-5x.

Target: "every freed slot refilled within one poll interval".

One command:

    .venv/bin/python bench/scheduling.py                       # 44 shards, quota 20, poll 5 s, 1 run
    .venv/bin/python bench/scheduling.py --runs 3 --write-md   # median of 3 runs -> bench/SCHEDULING.md

Per run: an in-process emulator (S3 + Bedrock, `max_concurrent_jobs` = quota, paced at
`--rps` records/s per job, enough worker threads that every in-flight job is processed), a fresh
sqlite DAGSTER_HOME with pool `bedrock_batch` = quota, a partition whose shards hold
`--min-records`..`--max-records` records (deterministic, shuffled), written exactly as
`jsonl_shards` writes them (request bodies rendered with `bedrock_assets.shards`), then the real
`batch_job_outputs` graph asset through `execute_job(reconstructable(bedrock_batch_job))` with
the job's multiprocess executor. Measured from the emulator's job list (submitTime/endTime) and
from the Dagster event log (step launch/start/success, the step's own "Completed" log line).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
BATCH = "sched"
SPECS = f"""
batches:
  {BATCH}:
    model_id: {MODEL}
    prompt: "Write one sentence about {{topic}}."
    params: {{max_tokens: 40, temperature: 0.0}}
    max_records_per_job: 50000
"""


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shards", type=int, default=44)
    p.add_argument("--quota", type=int, default=20, help="pool bedrock_batch slots = emulator max_concurrent_jobs")
    p.add_argument("--poll-seconds", type=float, default=5.0, help="BEDROCK_ASSETS_POLL_SECONDS")
    p.add_argument("--rps", type=float, default=20.0, help="emulator records/s per job (100..500 records -> 5..25 s)")
    p.add_argument("--min-records", type=int, default=100)
    p.add_argument("--max-records", type=int, default=500)
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--write-md", action="store_true", help="write bench/SCHEDULING.md")
    p.add_argument("--json", type=Path, help="also dump every run's figures to this file")
    return p.parse_args(argv)


# ----------------------------------------------------------------------------- the partition
def record_counts(n: int, lo: int, hi: int, seed: int) -> list[int]:
    """lo..hi evenly spread (1-5x at the defaults), in a seeded shuffled order."""
    counts = [lo + round((hi - lo) * j / max(1, n - 1)) for j in range(n)]
    random.Random(seed).shuffle(counts)
    return counts


def write_partition(s3, bucket: str, partition: str, counts: list[int], tmp: Path) -> dict:
    """Shard files + shards/<partition>/manifest.json in the format `jsonl_shards` writes."""
    import polars as pl

    from bedrock_assets import ledger, pricing, providers, records, shards
    from bedrock_assets.specs import get_spec
    from bedrock_assets.storage import PartitionLayout

    spec = get_spec(BATCH)
    provider = providers.for_spec(spec)
    layout = PartitionLayout(bucket, partition)
    total = sum(counts)
    frame = pl.DataFrame({"topic": [f"topic number {i} of the scheduling benchmark" for i in range(total)]})
    rendered = shards.render_lines(records.assign_record_ids(frame), spec, provider).collect()
    ids, lines = rendered.get_column("record_id").to_list(), rendered.get_column("line").to_list()
    docs, paths, start = [], [], 0
    for j, n in enumerate(counts):
        name = shards.SHARD_NAME.format(j)
        data = "".join(line + "\n" for line in lines[start:start + n]).encode()
        path = tmp / name
        path.write_bytes(data)
        paths.append(path)
        info = shards.ShardInfo(
            name=name, records=n, bytes=len(data), digest=shards.digest_bytes(data),
            first_record_id=ids[start], last_record_id=ids[start + n - 1], row_start=start, row_stop=start + n,
        )
        key = layout.shard_key(name)
        s3.upload_file(str(path), bucket, key)
        docs.append({**info.to_dict(), "key": key, "uri": layout.uri(key)})
        start += n
    # requests.parquet, which each shard step reads for its records' request digests.
    key = shards.MODEL_INPUT_KEY.encode()
    bodies = [line.encode()[line.encode().index(key) + len(key) : -1] for line in lines]
    requests = pl.DataFrame({
        "record_id": ids,
        "request_digest": [ledger.digest_of_body(b, spec.model_id, spec.invocation_type) for b in bodies],
        "shard": [shards.SHARD_NAME.format(j) for j, n in enumerate(counts) for _ in range(n)],
    }).with_columns(pl.lit(True).alias("sent"), pl.lit(False).alias("cached"))
    requests_path = tmp / "requests.parquet"
    requests.write_parquet(requests_path)
    s3.upload_file(str(requests_path), bucket, layout.requests_key)
    estimate = pricing.estimate_batch(spec, provider, paths)
    budget = pricing.check_budget(estimate, spec.budget_usd)
    manifest = {
        "partition": partition, "batch": BATCH, "model_id": spec.model_id, "records": total, "shards": docs,
        "estimate": estimate.to_dict(),
        "budget": {"passed": budget.passed, "message": budget.message, "budget_usd": budget.budget_usd},
    }
    s3.put_object(Bucket=bucket, Key=layout.shards_manifest_key, Body=json.dumps(manifest).encode())
    return manifest


# ----------------------------------------------------------------------------- measurement
def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    if not s:
        return float("nan")
    k = (len(s) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def _ts(value) -> float:
    return value.timestamp() if hasattr(value, "timestamp") else float(value)


def _shard_no(text: str) -> str:
    import re

    m = re.search(r"s(\d{5})-", text) or re.search(r"(\d{5})", text)
    return m.group(1)


def integral_in_flight(jobs: list[dict], a: float, b: float) -> float:
    """Time-integral of jobs in flight over [a, b] (job-seconds)."""
    return sum(max(0.0, min(j["end"], b) - max(j["submit"], a)) for j in jobs)


def step_events(instance, run_id: str) -> dict[str, dict]:
    """Per run_shard_job step: launch (executor), worker started, start, 'Completed' seen, success."""
    import dagster as dg

    steps: dict[str, dict] = {}
    for rec in instance.all_logs(run_id):
        key = rec.step_key or ""
        ev = rec.dagster_event
        if ev is None:
            if "run_shard_job" in key and " Completed " in (rec.user_message or "") and "records" in rec.user_message:
                steps.setdefault(key, {})["seen_end"] = rec.timestamp
            continue
        if "run_shard_job" not in key:
            continue
        d = steps.setdefault(key, {})
        if ev.event_type == dg.DagsterEventType.STEP_WORKER_STARTING:  # "Launching subprocess for ..."
            d["launch"] = rec.timestamp
        elif ev.event_type == dg.DagsterEventType.STEP_WORKER_STARTED:
            d["worker_started"] = rec.timestamp
        elif ev.event_type == dg.DagsterEventType.STEP_START:
            d["start"] = rec.timestamp
        elif ev.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
            d["success"] = rec.timestamp
            d["ok"] = ev.event_type == dg.DagsterEventType.STEP_SUCCESS
    return {_shard_no(k): v for k, v in steps.items()}


def measure(jobs: list[dict], steps: dict[str, dict], quota: int, poll: float) -> dict:
    jobs = sorted(jobs, key=lambda j: j["submit"])
    n = len(jobs)
    t0 = jobs[0]["submit"]
    t_end = max(j["end"] for j in jobs)
    last_submit = jobs[-1]["submit"]
    full_at = jobs[min(quota, n) - 1]["submit"]  # the quota first filled
    # peak in flight (an end at the same instant as a submit frees first)
    points = sorted([(j["submit"], 1) for j in jobs] + [(j["end"], -1) for j in jobs], key=lambda p: (p[0], p[1]))
    cur = peak = 0
    for _, d in points:
        cur += d
        peak = max(peak, cur)
    durations = [j["end"] - j["submit"] for j in jobs]
    ideal = max(sum(durations) / quota, max(durations))
    util = lambda a, b: integral_in_flight(jobs, a, b) / (quota * (b - a)) if b > a else float("nan")  # noqa: E731
    # Freed slot k (k-th job end, in end order) is refilled by the (quota+k)-th submit: the first
    # `quota` steps take the pool's free slots, every later one waits for a slot a step freed.
    ends = sorted(jobs, key=lambda j: j["end"])
    refills = []
    for k in range(n - quota):
        freed, filler = ends[k], jobs[quota + k]
        refills.append({"freed": freed["shard"], "filler": filler["shard"], "end": freed["end"],
                        "submit": filler["submit"], "latency": filler["submit"] - freed["end"]})
    lat = [r["latency"] for r in refills]
    # Where it goes, chained the way Dagster hands slots on: the k-th step to succeed frees the
    # slot the k-th step launched after the first `quota` takes (pool slots are assigned FIFO).
    by_job = {j["shard"]: j for j in jobs}
    done = sorted((s for s in steps if {"seen_end", "success"} <= steps[s].keys() and s in by_job),
                  key=lambda s: steps[s]["success"])
    launched = sorted((s for s in steps if {"launch", "start"} <= steps[s].keys() and s in by_job),
                      key=lambda s: steps[s]["launch"])[quota:]
    chains = []
    for f, nx in zip(done, launched):
        fs, ns = steps[f], steps[nx]
        chains.append({
            "poll_delay": fs["seen_end"] - by_job[f]["end"],  # job ended -> the step's Get sees it
            "step_teardown": fs["success"] - fs["seen_end"],  # outputs check, job record, step output
            "executor_claim": ns["launch"] - fs["success"],  # slot freed -> executor launches the next step
            "spawn": ns["start"] - ns["launch"],  # new process: imports, resources, STEP_START
            "create": by_job[nx]["submit"] - ns["start"],  # download shard, look up name, create job
            "total": by_job[nx]["submit"] - by_job[f]["end"],
        })
    parts = {}
    for name in ("poll_delay", "step_teardown", "executor_claim", "spawn", "create", "total"):
        vals = [c[name] for c in chains]
        if vals:
            parts[name] = {"median": statistics.median(vals), "p95": _pct(vals, 0.95), "max": max(vals)}
    # Jobs slower than records / rate: the emulator (or the machine) fell behind.
    lag = [(j["end"] - j["submit"]) - j["nominal"] for j in jobs if j.get("nominal")]
    launches = sorted(v["launch"] for v in steps.values() if "launch" in v)
    return {
        "jobs": n,
        "statuses": sorted({j["status"] for j in jobs}),
        "peak_in_flight": peak,
        "makespan": t_end - t0,
        "ideal_makespan": ideal,
        "sum_durations": sum(durations),
        "duration_min": min(durations),
        "duration_max": max(durations),
        "ramp_seconds": full_at - t0,
        "first_launch_to_first_submit": t0 - launches[0] if launches else float("nan"),
        "util_backlog": util(t0, last_submit),
        "util_steady": util(full_at, last_submit),
        "util_makespan": util(t0, t_end),
        "refills": len(refills),
        "refill_max": max(lat) if lat else float("nan"),
        "refill_median": statistics.median(lat) if lat else float("nan"),
        "refill_p95": _pct(lat, 0.95),
        "refill_within_poll": sum(1 for x in lat if x <= poll),
        "refill_parts": parts,
        "refill_rows": refills,
        "chains": chains,
        "job_lag_median": statistics.median(lag) if lag else float("nan"),
        "job_lag_max": max(lag) if lag else float("nan"),
        "poll_seconds": poll,
    }


# ----------------------------------------------------------------------------- one run
def one_run(args, run_no: int) -> dict:
    import boto3
    import dagster as dg

    from bedrock_assets.emulator import EmulatorConfig, run_emulator
    from bedrock_assets.settings import BEDROCK_POOL

    load_before = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="bench-sched-"))
    home = tmp / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    (tmp / "batches.yaml").write_text(SPECS)
    cfg = EmulatorConfig(
        host="127.0.0.1", port=0, seed=args.seed, records_per_second=args.rps,
        max_concurrent_jobs=args.quota, worker_threads=args.quota * 2 + 4, log_level="WARNING",
    )
    with run_emulator(cfg) as emu:
        bucket = f"bench-sched-{os.getpid()}-{run_no}"
        os.environ.update({
            **emu.env(),
            "AWS_ENDPOINT_URL": emu.endpoint_url,
            "AWS_REGION": "us-east-1",
            "BEDROCK_ASSETS_BUCKET": bucket,
            "BEDROCK_ASSETS_POLL_SECONDS": str(args.poll_seconds),
            "BEDROCK_ASSETS_SPECS": str(tmp / "batches.yaml"),
            "DAGSTER_HOME": str(home),
        })
        for key in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
            os.environ.pop(key, None)
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=bucket)
        partition = f"{BATCH}/run{run_no}.jsonl"
        counts = record_counts(args.shards, args.min_records, args.max_records, args.seed)
        (tmp / "shards").mkdir()
        write_partition(s3, bucket, partition, counts, tmp / "shards")

        with dg.DagsterInstance.get() as instance:  # initialises the sqlite storages once, here
            instance.event_log_storage.set_concurrency_slots(BEDROCK_POOL, args.quota)
            instance.add_dynamic_partitions("bedrock_inputs", [partition])
            from bedrock_assets.runner import bedrock_batch_job

            target = bedrock_batch_job
            started = time.time()
            with dg.execute_job(
                dg.reconstructable(target),
                instance=instance,
                tags={"dagster/partition": partition},
                asset_selection=[dg.AssetKey("batch_job_outputs")],
                run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
            ) as result:
                run_id, ok = result.run_id, result.success
            wall = time.time() - started
            steps = step_events(instance, run_id)
            first = min((v["start"] for v in steps.values() if "start" in v), default=0.0)
            stamps = [r.timestamp for r in instance.all_logs(run_id) if r.timestamp >= first]
            gap = max((b - a for a, b in zip(stamps, stamps[1:])), default=0.0)

        client = boto3.client("bedrock", region_name="us-east-1")
        jobs = []
        for page in client.get_paginator("list_model_invocation_jobs").paginate():
            for j in page["invocationJobSummaries"]:
                if j["inputDataConfig"]["s3InputDataConfig"]["s3Uri"].startswith(f"s3://{bucket}/"):
                    shard = _shard_no(j["jobName"])
                    jobs.append({"shard": shard, "status": j["status"], "nominal": counts[int(shard)] / args.rps,
                                 "submit": _ts(j["submitTime"]), "end": _ts(j["endTime"])})
        stats = emu.model_stats(MODEL)
    shutil.rmtree(tmp, ignore_errors=True)  # the DAGSTER_HOME, specs and shard files of this run
    m = measure(jobs, steps, args.quota, args.poll_seconds)
    m.update(run_ok=ok, run_wall=wall, event_log_max_gap=gap, load_before=load_before, load_after=os.getloadavg()[0], emulator_peak=stats.get("peak_in_flight"),
             quota_rejections=stats.get("quota_rejections"), records=sum(counts))
    return m


# ----------------------------------------------------------------------------- report
FIG = [
    ("util_steady", "slot utilisation, quota full -> last submit", "{:.1%}"),
    ("util_backlog", "slot utilisation, first submit -> last submit (backlog)", "{:.1%}"),
    ("util_makespan", "slot utilisation, whole makespan", "{:.1%}"),
    ("refill_median", "refill latency median (s)", "{:.1f}"),
    ("refill_p95", "refill latency p95 (s)", "{:.1f}"),
    ("refill_max", "refill latency max (s)", "{:.1f}"),
    ("refill_within_poll", "freed slots refilled within one poll interval", "{}"),
    ("makespan", "makespan, first submit -> last end (s)", "{:.1f}"),
    ("ideal_makespan", "ideal makespan, max(sum of durations / quota, longest) (s)", "{:.1f}"),
    ("ramp_seconds", "first submit -> quota first full (s)", "{:.1f}"),
    ("first_launch_to_first_submit", "first step launch -> first submit (s)", "{:.1f}"),
    ("peak_in_flight", "peak jobs in flight (job list)", "{}"),
    ("emulator_peak", "peak in flight (emulator stats)", "{}"),
    ("quota_rejections", "ServiceQuotaExceeded on create", "{}"),
    ("job_lag_median", "job duration beyond records/rate, median (s)", "{:.1f}"),
    ("job_lag_max", "job duration beyond records/rate, max (s)", "{:.1f}"),
    ("event_log_max_gap", "longest time with no event written, after the first shard step started (s)", "{:.1f}"),
    ("load_before", "load average (1 min) before the run", "{:.1f}"),
    ("load_after", "load average (1 min) after the run", "{:.1f}"),
    ("run_wall", "execute_job wall time (s)", "{:.1f}"),
]


def summary_lines(runs: list[dict]) -> list[str]:
    out = []
    for key, label, fmt in FIG:
        vals = [r[key] for r in runs]
        med = statistics.median(vals)
        shown = fmt.format(int(med) if fmt == "{}" else med)
        if key == "refill_within_poll":
            shown += f" of {runs[0]['refills']}"
        each = ", ".join(fmt.format(v) for v in vals)
        out.append(f"| {label} | **{shown}** | {each} |")
    return out


def parts_lines(runs: list[dict]) -> list[str]:
    names = {
        "poll_delay": "job end -> the step's Get sees it (polling)",
        "step_teardown": "seen -> STEP_SUCCESS (outputs check, job record, step output)",
        "executor_claim": "STEP_SUCCESS -> executor launches the next step (pool claim)",
        "spawn": "launch -> STEP_START (process spawn, imports, resources)",
        "create": "STEP_START -> job submitted (download shard, name lookup, create)",
        "total": "sum: job end -> next job submitted (chained as above)",
    }
    out = []
    for key, label in names.items():
        vals = [r["refill_parts"][key] for r in runs if key in r["refill_parts"]]
        if not vals:
            continue
        med = lambda f: statistics.median(v[f] for v in vals)  # noqa: E731
        out.append(f"| {label} | {med('median'):.1f} | {med('p95'):.1f} | {med('max'):.1f} |")
    return out


def print_run(m: dict) -> None:
    print(f"  run ok={m['run_ok']} jobs={m['jobs']} statuses={m['statuses']} records={m['records']} "
          f"durations {m['duration_min']:.1f}..{m['duration_max']:.1f} s")
    for key, label, fmt in FIG:
        print(f"  {label:<62} {fmt.format(m[key])}")
    for name, v in m["refill_parts"].items():
        print(f"  part {name:<16} median {v['median']:.2f}  p95 {v['p95']:.2f}  max {v['max']:.2f}")


def main(argv=None) -> int:
    args = parse_args(argv)
    runs = []
    for i in range(args.runs):
        print(f"run {i + 1}/{args.runs}: {args.shards} shards, quota {args.quota}, poll {args.poll_seconds}s, "
              f"{args.rps} records/s per job", flush=True)
        m = one_run(args, i)
        print_run(m)
        runs.append(m)
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1, default=str))
    print("\nmedian of", len(runs), "run(s):")
    print("| figure | median | each run |\n|---|---|---|")
    print("\n".join(summary_lines(runs)))
    print("\n| refill latency part | median s | p95 s | max s |\n|---|---|---|---|")
    print("\n".join(parts_lines(runs)))
    if args.write_md:
        write_md(args, runs)
    return 0 if all(r["run_ok"] for r in runs) else 1


def write_md(args, runs: list[dict]) -> None:
    cmd = ".venv/bin/python bench/scheduling.py " + " ".join(sys.argv[1:])
    text = MD_TEMPLATE.format(
        date=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        machine=f"os.cpu_count() = {os.cpu_count()}, Python {platform.python_version()}",
        cmd=cmd, n=len(runs), args=args,
        figures="\n".join(summary_lines(runs)),
        parts="\n".join(parts_lines(runs)),
    )
    path = ROOT / "bench" / "SCHEDULING.md"
    old = path.read_text() if path.exists() else ""
    marker = "<!-- analysis -->"
    tail = old[old.index(marker):] if marker in old else marker + "\n"
    path.write_text(text + "\n" + tail)  # the hand-written analysis below the marker is kept


MD_TEMPLATE = """# Scheduling benchmark: {args.shards} shards, quota {args.quota}, job durations 1-5x

Issue 6 target: "every freed slot refilled within one poll interval".

- Date: {date}
- Machine: 2 cores / 24 GiB ({machine})
- Command: `{cmd}`
- Runs: {n} (figures are the median; each run in the last column)
- Setup: in-process emulator (`records_per_second={args.rps}`, `max_concurrent_jobs={args.quota}`),
  fresh sqlite DAGSTER_HOME with pool `bedrock_batch` = {args.quota}, `BEDROCK_ASSETS_POLL_SECONDS={args.poll_seconds}`,
  {args.shards} shards of {args.min_records}..{args.max_records} records (shuffled), the real `batch_job_outputs`
  graph asset via `execute_job(reconstructable(bedrock_batch_job), asset_selection=[batch_job_outputs])`,
  the project's executor as shipped (multiprocess, steps forked from a preloaded forkserver,
  max_concurrent 20 = the pool).

Definitions: utilisation = integral of jobs in flight / (quota x window). Refill latency: the k-th job
to end frees a pool slot that the ({args.quota}+k)-th job to be submitted fills; latency = that
submit - that end (from the emulator's submitTime/endTime), for every slot freed while shards
were still waiting ({args.shards} - {args.quota} of them).

| figure | median | each run |
|---|---|---|
{figures}

Where the refill latency goes (Dagster event log timestamps; median over runs of each run's statistic):

| refill latency part | median s | p95 s | max s |
|---|---|---|---|
{parts}
"""


if __name__ == "__main__":
    sys.exit(main())
