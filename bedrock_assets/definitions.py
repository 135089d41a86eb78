"""The code location: `bedrock_assets.definitions:defs` (workspace.yaml points here)."""

from __future__ import annotations

import dagster as dg

from bedrock_assets.assets import all_assets
from bedrock_assets.asset_jobs import JOB_NAME, bedrock_batch_job, bedrock_executor
from bedrock_assets.checks import all_checks
from bedrock_assets.resources import default_resources
from bedrock_assets.sensors import new_input_files

__all__ = ["defs", "JOB_NAME"]

defs = dg.Definitions(
    assets=all_assets,
    asset_checks=all_checks,
    jobs=[bedrock_batch_job],
    sensors=[new_input_files],
    resources=default_resources(),
    executor=bedrock_executor,
)
