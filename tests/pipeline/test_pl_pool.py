"""The `bedrock_batch` pool caps Bedrock jobs in flight (sqlite instance, multiprocess executor)."""

from __future__ import annotations

import dagster as dg
import polars as pl

from bedrock_assets.runner import materialize_partition
from bedrock_assets.settings import BEDROCK_POOL

from .helpers import failed_steps, jobs_for_bucket, put_input

SPECS = """
batches:
  pooled:
    model_id: anthropic.claude-3-haiku-20240307-v1:0
    prompt: "Say something about {topic}."
    max_records_per_job: 100
"""


def test_pool_limit_two_with_five_shards_never_has_more_than_two_jobs_in_flight(aws_env, write_specs, instance):
    write_specs(SPECS)
    instance.event_log_storage.set_concurrency_slots(BEDROCK_POOL, 2)
    # Slow the emulator down so that jobs overlap if the pool lets them.
    aws_env.emulator.configure(records_per_second=100)
    aws_env.emulator.reset_stats()
    key = put_input(aws_env, "pooled", "topics.csv", pl.DataFrame({"topic": [f"t{i}" for i in range(500)]}))
    run = materialize_partition(instance, key)
    assert run.status == dg.DagsterRunStatus.SUCCESS, failed_steps(instance, run.run_id)
    assert len(jobs_for_bucket(aws_env)) == 5
    peak = aws_env.emulator.stats()["models"]["anthropic.claude-3-haiku-20240307-v1:0"]["peak_in_flight"]
    assert peak == 2  # never more than the pool; and the pool's two slots were really used together


def test_back_to_back_runs_in_one_process_fork_steps_with_each_runs_environment(aws_env, write_specs, instance, monkeypatch):
    # Steps fork from a preloaded forkserver, which keeps the environment it started with; a
    # second run with another bucket must not get steps that still see the first bucket.
    import multiprocessing.forkserver
    from types import SimpleNamespace

    write_specs(SPECS)
    aws_env.emulator.configure(records_per_second=0)
    frame = pl.DataFrame({"topic": [f"t{i}" for i in range(200)]})  # 2 shards of 100
    first = materialize_partition(instance, put_input(aws_env, "pooled", "a.csv", frame))
    assert first.status == dg.DagsterRunStatus.SUCCESS, failed_steps(instance, first.run_id)
    assert multiprocessing.forkserver._forkserver._forkserver_pid is not None  # steps came from the forkserver

    other = SimpleNamespace(**{**aws_env.__dict__, "bucket": aws_env.bucket + "-b"})
    other.s3.create_bucket(Bucket=other.bucket)
    monkeypatch.setenv("BEDROCK_ASSETS_BUCKET", other.bucket)
    second = materialize_partition(instance, put_input(other, "pooled", "b.csv", frame))
    assert second.status == dg.DagsterRunStatus.SUCCESS, failed_steps(instance, second.run_id)
    assert len(jobs_for_bucket(other)) == 2  # the second run's jobs read and wrote its own bucket
    keys = [o["Key"] for o in other.s3.list_objects_v2(Bucket=other.bucket)["Contents"]]
    assert "results/pooled/b.csv/results.parquet" in keys
