"""The pipeline against the emulator's realistic job states: a job that sits in Submitted and
Validating for several polls, a cross-region inference-profile id (read back as an ARN), and a
cancel that arrives just as the job ends."""

from __future__ import annotations

import json

import dagster as dg
import polars as pl
import pytest

from bedrock_assets import attempts, providers, specs
from bedrock_assets.runner import materialize_partition
from bedrock_assets.storage import PartitionLayout

from .helpers import failed_steps, jobs_for_bucket, put_input, read_json, read_results

PROFILE = "us.anthropic.claude-3-5-haiku-20241022-v1:0"
SPECS = f"""
batches:
  slow-start:
    model_id: {PROFILE}
    prompt: "Tell me a joke about {{topic}}."
    params: {{max_tokens: 50}}
    stuck_after_minutes: 1
"""


def test_a_profile_id_job_slow_to_validate_is_waited_for_and_not_reported_stuck(aws_env, write_specs, instance):
    # Each early state outlasts several 0.3 s polls (BEDROCK_ASSETS_POLL_SECONDS in conftest).
    aws_env.emulator.configure(submitted_seconds=1.0, validating_seconds=1.0)
    write_specs(SPECS)
    key = put_input(aws_env, "slow-start", "topics.csv", pl.DataFrame({"topic": [f"t{i}" for i in range(120)]}))
    run = materialize_partition(instance, key, in_process=True)
    assert run.status == dg.DagsterRunStatus.SUCCESS, failed_steps(instance, run.run_id)
    assert read_results(aws_env, key).get_column("status").to_list() == ["succeeded"] * 120

    (job,) = jobs_for_bucket(aws_env)
    assert job["modelId"] == f"arn:aws:bedrock:us-east-1:{job['jobArn'].split(':')[4]}:inference-profile/{PROFILE}"
    layout = PartitionLayout(aws_env.bucket, key)
    records = [read_json(aws_env, o["Key"]) for o in aws_env.s3.list_objects_v2(
        Bucket=aws_env.bucket, Prefix=layout.job_record_key("x").rsplit("/", 1)[0] + "/")["Contents"]]
    (attempt,) = [r for r in records if "attempts" in r][0]["attempts"]
    assert attempt["status"] == "Completed" and attempt["stuck"] is False
    assert attempt["queued_seconds"] >= 1.5  # Submitted + Validating counted as queue time
    logs = [e.user_message for e in instance.all_logs(run.run_id) if e.user_message]
    for state in ("Submitted", "Validating"):
        # Counts read 0 before validation: the progress line says "?/?" instead of "0/0".
        assert any(f": {state} ?/? records" in line for line in logs), state
    assert not any("still Submitted" in line or "still Validating" in line for line in logs)


def test_cancel_arriving_as_the_job_ends_records_the_completed_job(aws_env):
    """The stop request meets a job that has already ended (AWS answers ValidationException
    "... State was: Completed"): the shard's job record keeps the job's real end and the
    cancellation still propagates."""
    spec = specs.parse_specs(SPECS)["slow-start"]
    layout = PartitionLayout(aws_env.bucket, "slow-start/cancel.csv")
    name = "shard-00000.jsonl"
    body = spec.template.format(topic="x")
    lines = [json.dumps({"recordId": f"R{i:010d}", "modelInput": {
        "anthropic_version": "bedrock-2023-05-31", "max_tokens": 20,
        "messages": [{"role": "user", "content": [{"type": "text", "text": f"{body} {i}"}]}]}},
        separators=(",", ":")) for i in range(100)]
    shard_key = layout.shard_key(name)
    aws_env.s3.put_object(Bucket=aws_env.bucket, Key=shard_key, Body=("\n".join(lines) + "\n").encode())

    interrupted: list[str] = []

    def log(line: str) -> None:
        if ": Completed " in line and not interrupted:  # terminated the moment the job's end is seen
            interrupted.append(line)
            raise KeyboardInterrupt

    run = attempts.ShardRun(
        partition=layout.partition, shard={"name": name, "key": shard_key, "uri": layout.uri(shard_key),
                                           "digest": "cancel-at-end", "records": 100},
        spec=spec, provider=providers.for_spec(spec), layout=layout, role_arn="arn:aws:iam::123456789012:role/r",
        poll_seconds=0.2, backoff_cap=1.0, storage_options={}, log=log, warn=log,
    )
    import boto3

    with pytest.raises(KeyboardInterrupt):
        attempts.drive_shard(run, boto3.client("bedrock", region_name="us-east-1"), boto3.client("bedrock-runtime", region_name="us-east-1"), aws_env.s3)
    (attempt,) = read_json(aws_env, layout.job_record_key(name))["attempts"]
    assert attempt["stopped_by_cancellation"] is True
    assert attempt["status"] == "Completed" and attempt["processed_records"] == 100
    assert jobs_for_bucket(aws_env)[0]["status"] == "Completed"
