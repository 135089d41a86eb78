"""Asset jobs (kept apart from definitions.py so sensors can target them without a cycle)."""

from __future__ import annotations

import dagster as dg

from bedrock_assets.assets import all_assets
from bedrock_assets.partitions import inputs_partitions

JOB_NAME = "bedrock_batch_job"

# Steps that wait on Bedrock are I/O-bound: the executor must run as many at once as the pool
# allows (the Bedrock quota, 20 per model), not one per CPU (the multiprocess default, 2 here).
# Steps blocked on the pool do not start a process until they get a slot.
MAX_CONCURRENT_STEPS = 24


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
