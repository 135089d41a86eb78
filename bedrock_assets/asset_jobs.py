"""Asset jobs (kept apart from definitions.py so sensors can target them without a cycle)."""

from __future__ import annotations

import dagster as dg

from bedrock_assets.assets import all_assets
from bedrock_assets.partitions import inputs_partitions

JOB_NAME = "bedrock_batch_job"

# All four assets (and their checks) for one partition; the sensor and the demo launch it.
bedrock_batch_job = dg.define_asset_job(
    JOB_NAME,
    selection=dg.AssetSelection.assets(*all_assets),
    partitions_def=inputs_partitions,
    description="Raw dataset -> JSONL shards -> Bedrock batch jobs -> joined results, for one input.",
)
