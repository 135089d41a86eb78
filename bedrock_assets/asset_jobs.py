"""Asset jobs (kept apart from definitions.py so sensors can target them without a cycle)."""

from __future__ import annotations

import multiprocessing
import os
from typing import Any

import dagster as dg

from bedrock_assets.assets import all_assets
from bedrock_assets.partitions import inputs_partitions

JOB_NAME = "bedrock_batch_job"

# Steps that wait on Bedrock are I/O-bound: the executor must run as many at once as the pool
# allows (the Bedrock quota, 20 per model), not one per CPU (the multiprocess default, 2 here).
# Not more than the pool either: a step blocked on a pool claim is re-checked with a backoff that
# grows to 15 s, which delays refilling a freed slot (measured: bench/SCHEDULING.md).
MAX_CONCURRENT_STEPS = 20
# Steps start from a `forkserver` (when the platform has one) that has the project imported: a
# step is running ~1 s after its pool slot frees, against ~3 s (idle) to ~28 s (2 busy cores) for
# Dagster's default `spawn`, which re-imports dagster, polars, boto3 and the project in every step
# (bench/SCHEDULING.md). Python keeps one forkserver per process and forks every child with the
# environment the server started with; a process that launches several runs with different env
# (tests, notebooks, `materialize` in a loop) would fork steps with stale settings (seen: a step
# writing to the previous run's bucket). So the server is restarted at a run's start when the
# environment changed since it started. Set `start_method` in run config to override.
FORKSERVER_PRELOAD = ("dagster", "bedrock_assets.definitions")
_forkserver_env: tuple[tuple[str, str], ...] | None = None


def _forkserver_for_this_env() -> None:
    """Stop Python's forkserver if it runs with an environment other than the current one; the
    next step launch starts a fresh one (with the current env)."""
    global _forkserver_env
    from multiprocessing import forkserver  # noqa: PLC0415

    env = tuple(sorted(os.environ.items()))
    server = forkserver._forkserver  # the process-wide singleton Dagster's executor uses
    if env != _forkserver_env and getattr(server, "_forkserver_pid", None) is not None:
        server._stop()  # stdlib's own reset (used by CPython's tests); steps already forked keep running
    _forkserver_env = env


def _with_step_default(config: dict) -> dict:
    if "in_process" in config:
        return {"in_process": config["in_process"] or {}}
    multiprocess = dict(config.get("multiprocess") or {})
    if not multiprocess.get("max_concurrent"):
        multiprocess["max_concurrent"] = MAX_CONCURRENT_STEPS
    if not multiprocess.get("start_method") and "forkserver" in multiprocessing.get_all_start_methods():
        # Preload everything a step imports (dagster, polars, boto3, the assets), not just the
        # module that defines the job (Dagster's default): forking then costs ~0.5 s, not ~2 s.
        multiprocess["start_method"] = {"forkserver": {"preload_modules": list(FORKSERVER_PRELOAD)}}
    return {"multiprocess": multiprocess}


@dg.executor(
    name="bedrock_multi_or_in_process",
    config_schema=dg.multi_or_in_process_executor.config_schema,
    requirements=dg.multi_or_in_process_executor.get_requirements,
)
def _bedrock_executor(init_context: dg.InitExecutorContext) -> Any:
    """Dagster's default executor, with a forkserver that matches this run's environment."""
    start = (init_context.executor_config.get("multiprocess") or {}).get("start_method") or {}
    if "forkserver" in start:
        _forkserver_for_this_env()
    return dg.multi_or_in_process_executor.executor_creation_fn(init_context)


# Dagster's default executor (same run-config shape: `in_process` or `multiprocess`), with
# `max_concurrent` defaulting to MAX_CONCURRENT_STEPS and `start_method` to a forkserver. Set on
# Definitions too, so runs the UI builds (backfills, `__ASSET_JOB`) get it as well.
bedrock_executor = _bedrock_executor.configured(
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
