"""Asset jobs (kept apart from definitions.py so sensors can target them without a cycle)."""

from __future__ import annotations

import dagster as dg

from bedrock_assets.assets import all_assets
from bedrock_assets.partitions import inputs_partitions

JOB_NAME = "bedrock_batch_job"

# Steps that wait on Bedrock are I/O-bound: the executor must run as many at once as the pool
# allows (the Bedrock quota, 20 per model), not one per CPU (the multiprocess default, 2 here).
# Not more than the pool either: a step blocked on a pool claim is re-checked with a backoff that
# grows to 15 s, which delays refilling a freed slot (measured: bench/SCHEDULING.md).
MAX_CONCURRENT_STEPS = 20
# Steps start with `spawn` (Dagster's default): each re-imports dagster, polars, boto3 and the
# project, ~28 s per refill on 2 busy cores (bench/SCHEDULING.md). A preloaded `forkserver` cuts
# that to ~1 s, but Python keeps one forkserver per process with the environment of its first
# start, so a process that launches several runs with different env (tests, notebooks) would fork
# steps with stale settings. Left as spawn until that is handled.


def _with_step_default(config: dict) -> dict:
    if "in_process" in config:
        return {"in_process": config["in_process"] or {}}
    multiprocess = dict(config.get("multiprocess") or {})
    if not multiprocess.get("max_concurrent"):
        multiprocess["max_concurrent"] = MAX_CONCURRENT_STEPS
    return {"multiprocess": multiprocess}


# Dagster's default executor (same run-config shape: `in_process` or `multiprocess`), with
# `max_concurrent` defaulting to MAX_CONCURRENT_STEPS. Set on Definitions too, so runs the UI
# builds (backfills, `__ASSET_JOB`) get it as well.
bedrock_executor = dg.multi_or_in_process_executor.configured(
    _with_step_default,
    name="bedrock_executor",
    config_schema=dg.Field(
        dg.Selector({"in_process": dg.Field(dg.Permissive(), is_required=False), "multiprocess": dg.Field(dg.Permissive(), is_required=False)}),
        default_value={"multiprocess": {}},
    ),
)

# All four assets (and their checks) for one partition; the sensor and the demo launch it.
bedrock_batch_job = dg.define_asset_job(
    JOB_NAME,
    selection=dg.AssetSelection.assets(*all_assets),
    partitions_def=inputs_partitions,
    executor_def=bedrock_executor,
    description="Raw dataset -> JSONL shards -> Bedrock batch jobs -> joined results, for one input.",
)
