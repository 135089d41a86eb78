"""Terminating a run from the UI (the webserver's terminateRun mutation) stops its Bedrock jobs."""

from __future__ import annotations

import json
import re

import boto3
import dagster as dg
import polars as pl
from conftest import _csv
from ui_support import BACKFILL_STATUS, BATCH, LAUNCH_BACKFILL, ASSETS, wait_for

TERMINATE = """
mutation Terminate($runId: String!) {
  terminateRun(runId: $runId) {
    __typename
    ... on TerminateRunSuccess { run { runId } }
    ... on TerminateRunFailure { message }
    ... on PythonError { message }
  }
}"""
IN_FLIGHT = {"Submitted", "Validating", "Scheduled", "InProgress", "Stopping"}


def test_terminating_a_run_in_the_ui_stops_its_jobs(ui_stack, backfill):
    from bedrock_assets.runner import register_partitions

    key = f"{BATCH}/cancel.csv"  # 600 rows: six 100-record jobs, two at a time (pool 2), 5 s each
    frame = pl.DataFrame({"topic": [f"cancel topic {i}" for i in range(600)]})
    ui_stack.s3.put_object(Bucket=ui_stack.bucket, Key=f"inputs/{key}", Body=_csv(frame))
    with dg.DagsterInstance.from_config(str(ui_stack.home)) as instance:
        register_partitions(instance, [key])
    launched = ui_stack.gql(
        LAUNCH_BACKFILL,
        params={
            "assetSelection": [{"path": [a]} for a in ASSETS],
            "partitionNames": [key],
            "title": "tests/ui terminate",
            "runConfigData": {"execution": {"config": {"in_process": {}}}},
        },
    )["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    bedrock = boto3.client(
        "bedrock", endpoint_url=ui_stack.endpoint, region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )

    def ours():
        jobs = bedrock.list_model_invocation_jobs(maxResults=1000)["invocationJobSummaries"]
        prefix = f"s3://{ui_stack.bucket}/shards/{key}/"
        return [j for j in jobs if j["inputDataConfig"]["s3InputDataConfig"]["s3Uri"].startswith(prefix)]

    wait_for(lambda: any(j["status"] == "InProgress" for j in ours()), 150, "a job of the run InProgress", interval=0.5)
    runs = ui_stack.gql(BACKFILL_STATUS, id=launched["backfillId"])["partitionBackfillOrError"]["runs"]
    assert len(runs) == 1
    result = ui_stack.gql(TERMINATE, runId=runs[0]["runId"])["terminateRun"]
    assert result["__typename"] == "TerminateRunSuccess", result

    settled = wait_for(
        lambda: (lambda js: js if js and not any(j["status"] in IN_FLIGHT for j in js) else None)(ours()),
        90, "no job of the terminated run left in flight", interval=1,
    )
    statuses = [j["status"] for j in settled]
    assert "Stopped" in statuses and len(settled) < 6, statuses  # stopped, and no new job after it
    stopped = [j for j in settled if j["status"] == "Stopped"]
    for job in stopped:
        shard = re.search(r"-s(\d{5})-", job["jobName"]).group(1)

        def record():
            return json.loads(
                ui_stack.s3.get_object(Bucket=ui_stack.bucket, Key=f"jobs/{key}/shard-{shard}.json")["Body"].read()
            )["attempts"][-1]

        # Marked before the Stop call (tests/reliability/test_rl_cancel_record.py), so a Stopped
        # job's record says so at once; its final counts follow when the step has read them.
        assert record().get("stopped_by_cancellation"), record()
        attempt = wait_for(lambda: (lambda a: a if a["status"] == "Stopped" else None)(record()), 30,
                           "the job record's final status", interval=0.5)
        assert attempt.get("stopped_by_cancellation") and attempt["status"] == "Stopped", attempt
