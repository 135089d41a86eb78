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
