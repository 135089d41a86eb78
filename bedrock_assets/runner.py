"""Run the pipeline for a partition from Python (the demo, the CLI and tests use this).

Runs go through `execute_job` on a reconstructable job with the multiprocess executor, so the
`bedrock_batch` pool is honoured exactly as in `dagster dev` (the in-process executor is serial
and the ephemeral instance ignores pools).
"""

from __future__ import annotations

import dagster as dg


def bedrock_batch_job() -> dg.JobDefinition:
    from bedrock_assets.definitions import JOB_NAME, defs

    return defs.resolve_job_def(JOB_NAME)


def register_partitions(instance: dg.DagsterInstance, keys: list[str]) -> None:
    from bedrock_assets.partitions import inputs_partitions

    instance.add_dynamic_partitions(inputs_partitions.name, sorted(set(keys)))


def materialize_partition(
    instance: dg.DagsterInstance,
    partition_key: str,
    *,
    raise_on_error: bool = False,
    tags: dict[str, str] | None = None,
    in_process: bool = False,
    console_log_level: str | None = None,
    fresh_answers: bool = False,
) -> dg.DagsterRun:
    """Materialize all four assets (and their checks) for one partition; returns the finished run.

    `in_process=True` runs every step in this process (faster to start, but steps run one at a
    time and pools are not enforced); the default multiprocess executor is what `dagster dev` uses.
    `fresh_answers=True` asks every request again, ignoring the answer ledger (jsonl_shards' config).
    """
    register_partitions(instance, [partition_key])
    run_config: dict = {}
    if console_log_level:
        run_config["loggers"] = {"console": {"config": {"log_level": console_log_level}}}
    if fresh_answers:
        run_config["ops"] = {"jsonl_shards": {"config": {"fresh_answers": True}}}
    run_tags = {"dagster/partition": partition_key, **(tags or {})}
    if in_process:
        result = bedrock_batch_job().execute_in_process(
            instance=instance, partition_key=partition_key, tags=tags, run_config=run_config or None,
            raise_on_error=raise_on_error,
        )
        run_id = result.run_id
    else:
        with dg.execute_job(
            dg.reconstructable(bedrock_batch_job),
            instance=instance,
            run_config=run_config or None,
            tags=run_tags,
            raise_on_error=raise_on_error,
        ) as result:
            run_id = result.run_id
    run = instance.get_run_by_id(run_id)
    assert run is not None
    return run
