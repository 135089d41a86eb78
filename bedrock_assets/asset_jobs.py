"""Asset jobs (kept apart from definitions.py so sensors can target them without a cycle)."""

from __future__ import annotations

import dagster as dg

from bedrock_assets.assets import all_assets
from bedrock_assets.partitions import inputs_partitions

JOB_NAME = "bedrock_batch_job"

# Steps that wait on Bedrock are I/O-bound: the executor must run as many at once as the pool
# allows (the Bedrock quota, 20 per model), not one per CPU (the multiprocess default). Steps
# blocked on the pool do not start a process until they get a slot.
MAX_CONCURRENT_STEPS = 24

# All four assets (and their checks) for one partition; the sensor and the demo launch it.
bedrock_batch_job = dg.define_asset_job(
    JOB_NAME,
    selection=dg.AssetSelection.assets(*all_assets),
    partitions_def=inputs_partitions,
    executor_def=dg.multiprocess_executor.configured({"max_concurrent": MAX_CONCURRENT_STEPS}),
    description="Raw dataset -> JSONL shards -> Bedrock batch jobs -> joined results, for one input.",
)
