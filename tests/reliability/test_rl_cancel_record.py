"""A terminated run's job record says `stopped_by_cancellation` by the time anyone can see the job
Stopping or Stopped, however slow the step is after its Stop call.

The race (tests/ui/test_ui_terminate.py failed once on a loaded machine): the step asked Bedrock
to stop the job, waited for Stopped, and only then wrote the record. Anyone looking in between
(the UI, a test, a re-run; or nobody ever, if the worker was killed in that window) saw a Stopped
job whose record did not say the run had stopped it. Here the window is made long on purpose
through the step's own log hook (`ShardRun.log`, which the step calls right after the Stop
request): the hook waits until Bedrock reports the job Stopped, then reads the record.

The interrupt is a real SIGINT to this process, as Dagster's termination sends to a run worker;
the second case delivers it right after CreateModelInvocationJob returned, before the job was
recorded at all.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import boto3
import polars as pl
import pytest

from bedrock_assets import attempts, providers, records, settings, shards
from bedrock_assets.specs import get_spec
from bedrock_assets.storage import PartitionLayout

from pipeline.helpers import jobs_for_bucket

from .conftest import wait_until

SPECS = """
batches:
  jokes:
    model_id: anthropic.claude-3-haiku-20240307-v1:0
    prompt: "Tell me a joke about {topic}."
"""


def _shard_run(env, tmp_path: Path, log) -> attempts.ShardRun:
    spec = get_spec("jokes")
    provider = providers.for_spec(spec)
    layout = PartitionLayout(env.bucket, "jokes/cancel.csv")
    lf = records.assign_record_ids(pl.DataFrame({"topic": [f"cancel {i}" for i in range(150)]}).lazy())
    (info,) = shards.write_shards(lf, spec, provider, tmp_path, "cancel.csv")
    env.s3.upload_file(str(tmp_path / info.name), env.bucket, layout.shard_key(info.name))
    shard = {**info.to_dict(), "key": layout.shard_key(info.name), "uri": layout.uri(layout.shard_key(info.name)), "nonce": ""}
    return attempts.ShardRun(
        partition=layout.partition, shard=shard, spec=spec, provider=provider, layout=layout,
        role_arn=settings.role_arn(), poll_seconds=0.3, backoff_cap=1.0,
        storage_options=settings.polars_storage_options(), log=log, warn=log,
    )


@pytest.mark.parametrize("interrupt_after", ["InProgress", "created job"])
def test_the_record_says_cancelled_before_the_job_shows_stopped(aws_env, write_specs, tmp_path, interrupt_after):
    write_specs(SPECS)
    aws_env.emulator.configure(records_per_second=20)  # 150 records: ~7 s InProgress, time to interrupt
    bedrock = boto3.client("bedrock", region_name="us-east-1")
    seen: dict = {}

    def log(line: str) -> None:
        if interrupt_after in line and "interrupted" not in seen:
            seen["interrupted"] = line
            os.kill(os.getpid(), signal.SIGINT)  # what Dagster's termination sends the run worker
        if line.endswith("stop requested"):
            # A loaded machine: the step is slow right after its Stop call. Meanwhile Bedrock
            # finishes stopping, and an observer reads the record.
            job = wait_until(
                lambda: (lambda js: js[0] if js and js[0]["status"] == "Stopped" else None)(jobs_for_bucket(aws_env)),
                timeout=60, interval=0.2, what="the job Stopped in Bedrock",
            )
            body = aws_env.s3.get_object(Bucket=aws_env.bucket, Key="jobs/jokes/cancel.csv/shard-00000.json")["Body"].read()
            seen["record_while_stopped"] = json.loads(body)
            seen["job"] = job

    run = _shard_run(aws_env, tmp_path, log)
    with pytest.raises(KeyboardInterrupt):
        attempts.drive_shard(run, bedrock, boto3.client("bedrock-runtime", region_name="us-east-1"), aws_env.s3)

    assert "record_while_stopped" in seen, f"the job was never stopped (interrupted at {seen.get('interrupted')!r})"
    attempt = seen["record_while_stopped"]["attempts"][-1]
    assert attempt.get("stopped_by_cancellation") is True, attempt
    assert attempt["job_arn"] == seen["job"]["jobArn"]
    # And once the step is done, the record has the job's final state.
    final = json.loads(aws_env.s3.get_object(Bucket=aws_env.bucket, Key="jobs/jokes/cancel.csv/shard-00000.json")["Body"].read())
    assert final["attempts"][-1]["status"] == "Stopped" and final["attempts"][-1]["stopped_by_cancellation"] is True
    assert [j["status"] for j in jobs_for_bucket(aws_env)] == ["Stopped"]  # one job, stopped; nothing created after it
